/* The init's program, from clone to execve, in the order the steps must run.
 * C only, no allocation: this runs in a copy of a Python process.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "init.h"
#include "util.h"

void sj_child_die(int sync_fd, const struct sj_error *err) {
  struct sj_msg msg;
  memset(&msg, 0, sizeof msg);
  msg.type = SJ_MSG_ERROR;
  msg.err = err->err;
  snprintf(msg.text, sizeof msg.text, "%s", err->msg);
  sj_send_msg(sync_fd, &msg);
  _exit(1);
}

/* Were we reparented?  In a new pid namespace the parent is outside it and
 * getppid() is 0 either way: there the sync socket (closed when the parent
 * dies) is what tells. */
static int parent_alive(const struct sj_ctx *ctx) {
  pid_t ppid = getppid();
  return ppid == 0 || ppid == ctx->ppid;
}

/* Block until the parent says GO; a closed socket means it is gone. */
static int wait_go(struct sj_ctx *ctx, struct sj_error *err) {
  struct sj_msg msg;
  if (sj_sync_recv(ctx->sync_fd, &msg, err) < 0)
    return -1;
  if (msg.type == SJ_MSG_GO)
    return 0;
  if (msg.type == SJ_MSG_CLOSED)
    _exit(1); /* the parent closed the socket: nobody to report to */
  return sj_failx(err, EPROTO, "unexpected message %u from the parent", msg.type);
}

static int send_type(struct sj_ctx *ctx, uint32_t type, struct sj_error *err) {
  return sj_sync_send(ctx->sync_fd, type, err);
}

/* Move ourselves into each v1 hierarchy's cgroup: "0" is the writing thread,
 * which the kernel moves without the global threadgroup lock (see launch.h). */
int sj_join_cgroups(const struct sj_plan *plan, struct sj_error *err) {
  for (size_t i = 0; i < plan->ncgroup_join; i++)
    if (sj_write_file(plan->cgroup_join[i], "0") < 0)
      return sj_fail(err, errno, "cgroup join %s", plan->cgroup_join[i]);
  return 0;
}

#define SJ_KEYCTL_JOIN_SESSION_KEYRING 1

/* A session keyring of our own, so the container does not share the
 * caller's keys (as runc; without --no-new-keyring). */
static int join_session_keyring(const struct sj_plan *plan, struct sj_error *err) {
  if (!plan->session_keyring)
    return 0;
  char name[SJ_ERRMSG_MAX / 2];
  snprintf(name, sizeof name, "_ses.%s", plan->session_keyring);
  if (syscall(SYS_keyctl, SJ_KEYCTL_JOIN_SESSION_KEYRING, name) < 0 && errno != ENOSYS)
    return sj_fail(err, errno, "join session keyring %s", name);
  return 0;
}

/* Steps that run right after GO, in the namespaces we were cloned into. */
static int enter_namespaces(struct sj_ctx *ctx, struct sj_error *err) {
  const struct sj_plan *plan = ctx->plan;
  if (ctx->exec) {
    /* The intermediate joined the rest (see spawn.c): the cgroup namespace
     * now that we are in the container's cgroups. */
    int rc = 0;
    if (plan->exec_nstypes & CLONE_NEWCGROUP)
      rc = setns(plan->exec_pidfd, CLONE_NEWCGROUP);
    int saved = errno;
    close(plan->exec_pidfd);
    if (rc < 0)
      return sj_fail(err, saved, "join the container's cgroup namespace");
    /* No mount namespace to join: the init's root is a chroot; so is ours. */
    if (plan->exec_root_fd >= 0) {
      rc = fchdir(plan->exec_root_fd) < 0 || chroot(".") < 0 || chdir("/") < 0 ? -1 : 0;
      saved = errno;
      close(plan->exec_root_fd);
      if (rc < 0)
        return sj_fail(err, saved, "enter the container's root");
    }
  } else if (sj_join_cgroups(plan, err) < 0) {
    return -1;
  }
  /* Now that the parent has put us in our cgroup, it can be the root. */
  if ((plan->clone_flags & CLONE_NEWCGROUP) && unshare(CLONE_NEWCGROUP) < 0)
    return sj_fail(err, errno, "unshare cgroup namespace");
  if (ctx->userns) {
    /* Become the namespace's root (the parent has written the maps). */
    if (sj_setresgid(0, 0, 0) < 0)
      return sj_fail(err, errno, "setresgid to root in the user namespace");
    if (sj_setresuid(0, 0, 0) < 0)
      return sj_fail(err, errno, "setresuid to root in the user namespace");
  }
  if (plan->setsid && setsid() < 0)
    return sj_fail(err, errno, "setsid");
  return join_session_keyring(plan, err);
}

/* Everything that happens with the host's filesystem still visible. */
static int setup_before_pivot(struct sj_ctx *ctx, struct sj_error *err) {
  const struct sj_plan *plan = ctx->plan;
  if (ctx->own_root) {
    if (sj_rootfs_prepare(ctx, err) < 0 || sj_rootfs_mounts(ctx, err) < 0 ||
        sj_rootfs_devices(ctx, err) < 0)
      return -1;
  } else if (plan->nmounts || plan->ndevices || plan->nmasked || plan->nreadonly ||
             plan->root_readonly) {
    /* The runtime's own / as the rootfs, in its own mount namespace: every
     * mount would land on the host's paths. */
    return sj_failx(err, EINVAL, "a rootfs of / without a mount namespace of its own takes "
                                 "no mounts, devices, masked or read-only paths");
  }
  if (sj_set_hostname(ctx, err) < 0)
    return -1;
  if (ctx->own_root && plan->nmasked > 0 && sj_grab_dev_null(ctx, err) < 0)
    return -1;
  return 0;
}

/* Everything inside the new root, still as (namespace) root.  The console
 * comes first: /dev/console is created before the root may go read-only. */
static int setup_after_pivot(struct sj_ctx *ctx, struct sj_error *err) {
  if (sj_setup_console(ctx, err) < 0 || sj_set_sysctls(ctx, err) < 0 || sj_make_cwd(ctx, err) < 0)
    return -1;
  if (ctx->own_root && (sj_readonly_paths(ctx, err) < 0 || sj_masked_paths(ctx, err) < 0 ||
                     sj_root_readonly(ctx, err) < 0))
    return -1;
  return 0;
}

/* The container itself (create only): rootfs, hooks around pivot_root,
 * console, sysctls, read-only and masked paths. */
static int setup_container(struct sj_ctx *ctx, struct sj_error *err) {
  const struct sj_plan *plan = ctx->plan;
  sj_procfs_early(ctx);
  if (sj_loopback_up(ctx, err) < 0 || setup_before_pivot(ctx, err) < 0)
    return -1;
  /* prestart and createRuntime: run by the parent, in the runtime namespace. */
  if (plan->hook_sync && (send_type(ctx, SJ_MSG_HOOKS, err) < 0 || wait_go(ctx, err) < 0))
    return -1;
  /* createContainer: ours, in the container namespace, before pivot_root. */
  if (sj_run_init_hooks(ctx, plan->create_container_hooks, plan->ncreate_container_hooks,
                        "createContainer", "creating", err) < 0)
    return -1;
  if (ctx->own_root && sj_enter_rootfs(ctx, err) < 0)
    return -1;
  return setup_after_pivot(ctx, err);
}

/* Become the configured user with the configured capabilities, in the
 * order that is safe (the fds not kept were closed when we started):
 * chdir -> bounding set -> keep-caps -> setgroups/setgid/setuid -> verify
 * the cwd -> clear keep-caps -> effective/permitted/inheritable/ambient
 * (with `extra` kept in effective and permitted, see setup_process).
 * cwd is tried first as root (it may be reachable only by the user, e.g.
 * over root-squashing NFS: then again once we are the user); either way it
 * is verified, as the user, to lie inside the container (CVE-2024-21626). */
static int become_user(struct sj_ctx *ctx, uint64_t extra, struct sj_error *err) {
  int cwd_done = 0;
  if (sj_chdir_cwd(ctx, 0, &cwd_done, err) < 0 || sj_fix_stdio_owner(ctx, err) < 0)
    return -1;
  if (sj_drop_bounding(ctx, err) < 0 || sj_set_keepcaps(1, err) < 0 ||
      sj_switch_ids(ctx, err) < 0)
    return -1;
  if (sj_chdir_cwd(ctx, 1, &cwd_done, err) < 0 || sj_set_keepcaps(0, err) < 0)
    return -1;
  return sj_apply_caps(ctx, extra, err);
}

/* Load the seccomp filter; its notify listener, if any, goes to the parent
 * (which passes it on to the listener socket and then says GO). */
static int load_seccomp(struct sj_ctx *ctx, struct sj_error *err) {
  int listener;
  if (sj_seccomp_load(ctx->plan, &listener, err) < 0)
    return -1;
  if (listener < 0)
    return 0;
  int rc = 0;
  if (sj_send_msg_fd(ctx->sync_fd, SJ_MSG_SECCOMP, listener) < 0)
    rc = sj_fail(err, errno, "seccomp: send the listener fd to the runtime");
  close(listener);
  return rc < 0 ? -1 : wait_go(ctx, err);
}

#define SJ_CAP_SYS_ADMIN 21

/* The process: what the init and an exec'd process both go through, in
 * the container's root. */
static int setup_process(struct sj_ctx *ctx, struct sj_error *err) {
  const struct sj_plan *plan = ctx->plan;
  /* no_new_privs first: from here on no execve can gain privileges. */
  if (plan->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return sj_fail(err, errno, "prctl PR_SET_NO_NEW_PRIVS");
  /* Our own procfs for the LSM attributes and the exec fifo, made while we
   * may still mount. */
  if ((plan->exec_fifo_fd >= 0 || plan->apparmor_profile || plan->selinux_label) &&
      sj_procfs(ctx, 0, err) < 0)
    return -1;
  sj_default_home(ctx);
  if (sj_set_process_attrs(ctx, err) < 0 || sj_set_lsm_labels(ctx, err) < 0)
    return -1;
  /* The parent may exit as soon as it has READY: stop dying with it.  Done
   * before any filter is loaded (its rules may cover prctl or getppid); if
   * the parent dies from here on, sending READY fails and we exit.  If it
   * died already, we were reparented and nobody wants us. */
  if (prctl(PR_SET_PDEATHSIG, 0) < 0 || !parent_alive(ctx))
    _exit(1);
  /* The filter comes last, after every check of ours: the cwd, the
   * executable (faccessat2), the exec fifo.  A profile written before those
   * calls existed (an allow-list without faccessat2) must not break us.
   * Without no_new_privs loading it needs CAP_SYS_ADMIN: kept until then. */
  int filter = plan->seccomp_bpf && plan->seccomp_len;
  uint64_t admin = 1ULL << SJ_CAP_SYS_ADMIN;
  uint64_t extra = filter && !plan->no_new_privs && !(plan->cap_effective & admin) ? admin : 0;
  if (become_user(ctx, extra, err) < 0)
    return -1;
  if (sj_lookup_exec(ctx, err) < 0 || sj_check_exec_fifo(ctx, err) < 0)
    return -1;
  umask(plan->umask >= 0 ? (mode_t)plan->umask : ctx->umask0);
  sj_prepare_exec_fds(ctx);
  if (filter && load_seccomp(ctx, err) < 0)
    return -1;
  /* Under the filter: the one capset that drops CAP_SYS_ADMIN again. */
  if (extra && sj_drop_extra_caps(ctx, err) < 0) {
    char why[SJ_ERRMSG_MAX];
    memcpy(why, err->msg, sizeof why);
    return sj_failx(err, err->err, "seccomp: drop CAP_SYS_ADMIN after loading the filter "
                                   "(without noNewPrivileges the profile must allow capset): %.380s",
                    why);
  }
  return 0;
}

static int setup(struct sj_ctx *ctx, struct sj_error *err) {
  if (wait_go(ctx, err) < 0 || enter_namespaces(ctx, err) < 0)
    return -1;
  if (ctx->exec) {
    /* setns already put us in the container's root and cwd. */
    if (sj_setup_console(ctx, err) < 0)
      return -1;
  } else if (setup_container(ctx, err) < 0) {
    return -1;
  }
  return setup_process(ctx, err);
}

/* After `start` released us: the startContainer hooks, then tell it. */
static void wait_start(struct sj_ctx *ctx) {
  const struct sj_plan *plan = ctx->plan;
  struct sj_error err, hook_err;
  memset(&err, 0, sizeof err);
  int fd = sj_open_exec_fifo(ctx, &err);
  if (fd == -2) {
    sj_late_error(ctx, &err);
    _exit(1);
  }
  int failed = sj_run_init_hooks(ctx, plan->start_container_hooks, plan->nstart_container_hooks,
                                 "startContainer", "created", &hook_err) < 0;
  if (fd >= 0) {
    if (sj_release_exec_fifo(ctx, fd, failed ? &hook_err : NULL, &err) < 0) {
      sj_late_error(ctx, &err);
      _exit(1);
    }
  } else if (failed) {
    sj_late_error(ctx, &hook_err); /* no `start` to tell */
  }
  if (failed)
    _exit(1);
}

void sj_init_main(struct sj_ctx *ctx) {
  struct sj_error err;
  memset(&err, 0, sizeof err);

  sj_reset_signals(); /* the caller of clone blocked them all */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || !parent_alive(ctx))
    _exit(1);
  prctl(PR_SET_NAME, ctx->exec ? "sangja:exec" : "sangja:init", 0, 0, 0); /* until execve */
  /* Not dumpable until execve: no ptrace and no /proc/<pid> access from
   * processes that join the container while we hold host resources. */
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  /* A known umask while creating mount points; the plan's is set last. */
  ctx->umask0 = umask(022);

  if (setup(ctx, &err) < 0)
    sj_child_die(ctx->sync_fd, &err);

  if (send_type(ctx, SJ_MSG_READY, &err) < 0)
    _exit(1);
  if (ctx->exec) { /* kept until execve: the caller learns how that went */
    sj_exec(ctx);
  }
  close(ctx->sync_fd);
  ctx->sync_fd = -1;
  wait_start(ctx);
  sj_exec(ctx);
}
