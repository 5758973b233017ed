/* Creating the init: clone3 (directly, or from an intermediate process that
 * first joins existing namespaces and sets time namespace offsets).  The
 * caller and the init then talk over the sync socket (sync.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "error.h"
#include "init.h"
#include "sync.h"
#include "syscalls.h"
#include "trampoline.h"
#include "util.h"

#define SJ_MAX_JOINS 32

/* ---- the child side entry points ---- */

static int has_join(const struct sj_plan *plan, int nstype) {
  for (size_t i = 0; i < plan->njoins; i++)
    if (plan->joins[i].nstype == nstype)
      return 1;
  return 0;
}

/* Namespaces the init itself is cloned with.  The cgroup namespace is
 * unshared by the init after GO, once the parent has moved it into its
 * cgroup (else the namespace root would be the caller's cgroup); the time
 * namespace is unshared by the intermediate when offsets must be written
 * before any process enters it. */
static uint64_t init_clone_flags(const struct sj_plan *plan) {
  uint64_t flags = (unsigned int)plan->clone_flags;
  flags &= ~(uint64_t)CLONE_NEWCGROUP;
  if (plan->timens_offsets)
    flags &= ~(uint64_t)CLONE_NEWTIME;
  return flags;
}

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

/* clone3 arguments for the init itself: its namespaces and, on cgroup v2,
 * its cgroup (so it never runs a single instruction outside it). */
static void init_clone_args(const struct sj_plan *plan, struct sj_clone_args *args) {
  args->flags |= init_clone_flags(plan);
  if (plan->cgroup_fd >= 0) {
    args->flags |= CLONE_INTO_CGROUP;
    args->cgroup = (uint64_t)plan->cgroup_fd;
  }
}

/* fds the child must not close early: stdio, the preserved range, and the
 * few fds of the plan.  Everything else inherited from Python goes at once,
 * so that a pipe held by the caller's caller is not kept open by an init
 * that may wait on its exec fifo for a long time. */
static void close_inherited_fds(const struct sj_plan *plan, int sync_fd, int tramp_fd) {
  int fixed[] = {sync_fd,
                 plan->exec_fifo_fd,
                 plan->console_fd,
                 plan->log_fd,
                 plan->cgroup_fd,
                 plan->exec_pidfd,
                 plan->exec_root_fd,
                 tramp_fd,
                 plan->stdio_fds[0],
                 plan->stdio_fds[1],
                 plan->stdio_fds[2]};
  size_t nfixed = sizeof fixed / sizeof fixed[0];
  int keep[nfixed + plan->nmounts];
  memcpy(keep, fixed, sizeof fixed);
  for (size_t i = 0; i < plan->nmounts; i++) /* the detached trees of the mounts */
    keep[nfixed + i] = plan->mounts[i].tree_fd;
  int from = 3 + (plan->preserve_fds > 0 ? plan->preserve_fds : 0);
  sj_close_fds_except(from, keep, nfixed + plan->nmounts);
}

/* The caller's choice of stdio (a build step's pipe) takes 0-2 in the init
 * only: the caller's own never change, whatever its other threads spawn
 * meanwhile.  Each is first moved above 2, as one may be another's source;
 * the sources above 2 are closed then (an intermediate keeps them for us). */
static void adopt_stdio(const struct sj_plan *plan) {
  int moved[3] = {-1, -1, -1};
  for (int i = 0; i < 3; i++) {
    if (plan->stdio_fds[i] < 0)
      continue;
    moved[i] = fcntl(plan->stdio_fds[i], F_DUPFD_CLOEXEC, 3);
    if (moved[i] < 0)
      _exit(125); /* the caller sees the init die during setup */
  }
  for (int i = 0; i < 3; i++) {
    if (moved[i] < 0)
      continue;
    if (dup2(moved[i], i) < 0)
      _exit(125);
    close(moved[i]);
  }
  for (int i = 0; i < 3; i++)
    if (plan->stdio_fds[i] > 2)
      close(plan->stdio_fds[i]); /* twice if two are one fd: EBADF, harmless */
}

__attribute__((noreturn)) static void run_init(const struct sj_plan *plan, int sync_fd, pid_t ppid,
                                               int tramp_fd) {
  struct sj_ctx ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.plan = plan;
  ctx.sync_fd = sync_fd;
  ctx.ppid = ppid;
  ctx.tramp_fd = tramp_fd;
  ctx.procfd = -1;
  ctx.sysfd = -1;
  ctx.exec = plan->exec_pidfd >= 0;
  ctx.userns = (plan->clone_flags & CLONE_NEWUSER) || has_join(plan, CLONE_NEWUSER) ||
               (ctx.exec && (plan->exec_nstypes & CLONE_NEWUSER));
  ctx.mntns = (plan->clone_flags & CLONE_NEWNS) || has_join(plan, CLONE_NEWNS);
  ctx.own_root = !ctx.exec && (ctx.mntns || (plan->rootfs && strcmp(plan->rootfs, "/") != 0));
  ctx.rootfd = -1;
  ctx.null_tree = -1;
  adopt_stdio(plan);
  close_inherited_fds(plan, sync_fd, tramp_fd);
  if (plan->cgroup_fd >= 0)
    close(plan->cgroup_fd); /* used by our clone3 only: no host cgroup fd until execve */
  if (ctx.exec) {
    /* The socket stays open until execve (the caller waits for it to close):
     * never inside the preserved range, which execve keeps open. */
    if (plan->preserve_fds > 0 && sync_fd < 3 + plan->preserve_fds) {
      int moved = fcntl(sync_fd, F_DUPFD_CLOEXEC, 3 + plan->preserve_fds);
      if (moved >= 0) {
        close(sync_fd);
        ctx.sync_fd = moved;
      }
    }
  }
  sj_init_main(&ctx);
}

/* Join the namespaces of the plan: all paths are opened first (a mount
 * namespace joined early would change what they name), the non-user ones
 * joined, then the user namespace, then those that needed its privileges. */
static int join_namespaces(const struct sj_plan *plan, struct sj_error *err) {
  int fds[SJ_MAX_JOINS];
  int pending[SJ_MAX_JOINS];
  size_t n = plan->njoins;
  int rc = -1;

  if (n > SJ_MAX_JOINS)
    return sj_failx(err, E2BIG, "too many namespaces to join (%zu)", n);
  for (size_t i = 0; i < n; i++)
    fds[i] = -1;
  for (size_t i = 0; i < n; i++) {
    fds[i] = open(plan->joins[i].path, O_RDONLY | O_CLOEXEC);
    if (fds[i] < 0) {
      sj_fail(err, errno, "open %s", plan->joins[i].path);
      goto out;
    }
  }
  for (size_t i = 0; i < n; i++) {
    pending[i] = 0;
    if (plan->joins[i].nstype == CLONE_NEWUSER)
      continue;
    if (setns(fds[i], plan->joins[i].nstype) == 0)
      continue;
    if (errno != EPERM) {
      sj_fail(err, errno, "setns %s", plan->joins[i].path);
      goto out;
    }
    pending[i] = 1; /* may need the capabilities of the user ns */
  }
  for (size_t i = 0; i < n; i++) {
    if (plan->joins[i].nstype == CLONE_NEWUSER && setns(fds[i], CLONE_NEWUSER) < 0) {
      sj_fail(err, errno, "setns %s", plan->joins[i].path);
      goto out;
    }
  }
  for (size_t i = 0; i < n; i++) {
    if (pending[i] && setns(fds[i], plan->joins[i].nstype) < 0) {
      sj_fail(err, errno, "setns %s", plan->joins[i].path);
      goto out;
    }
  }
  rc = 0;
out:
  for (size_t i = 0; i < n; i++)
    if (fds[i] >= 0)
      close(fds[i]);
  return rc;
}

static int enter_time_namespace(const struct sj_plan *plan, struct sj_error *err) {
  if (unshare(CLONE_NEWTIME) < 0)
    return sj_fail(err, errno, "unshare time namespace");
  if (sj_write_file("/proc/self/timens_offsets", plan->timens_offsets) < 0)
    return sj_fail(err, errno, "write /proc/self/timens_offsets");
  return 0;
}

/* exec: the container's v1 cgroups (by their host paths, so first), then
 * the init's namespaces at once through its pidfd.  The kernel installs the
 * user namespace first and checks the others with its credentials; the pid
 * namespace applies to our children, the time namespace to us too.  The
 * cgroup namespace is left to the process, once it has been cloned into the
 * unified cgroup (with nsdelegate, CLONE_INTO_CGROUP from a cgroup outside
 * the namespace's root would be refused). */
static int join_container(const struct sj_plan *plan, struct sj_error *err) {
  if (sj_join_cgroups(plan, err) < 0)
    return -1;
  int nstypes = plan->exec_nstypes & ~CLONE_NEWCGROUP;
  if (nstypes && setns(plan->exec_pidfd, nstypes) < 0) {
    if (errno == ESRCH)
      return sj_failx(err, ESRCH, "cannot exec in a stopped container");
    return sj_fail(err, errno, "join the container's namespaces (setns 0x%x)",
                   (unsigned int)nstypes);
  }
  return 0;
}

/* The intermediate: joins, then clones the init as a sibling (CLONE_PARENT:
 * the init is a child of the caller), reports its pid and exits. */
__attribute__((noreturn)) static void run_intermediate(const struct sj_plan *plan, int sync_fd,
                                                       pid_t ppid, int tramp_fd) {
  struct sj_error err;
  memset(&err, 0, sizeof err);
  /* Signals stay blocked (as the caller left them) until the init has
   * reset its own dispositions. */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != ppid)
    _exit(1);
  prctl(PR_SET_NAME, "sangja:nsenter", 0, 0, 0);
  close_inherited_fds(plan, sync_fd, tramp_fd);

  if (plan->exec_pidfd >= 0) {
    /* Not dumpable (nor its child, until execve): we are about to enter
     * the container holding fds of the host. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (join_container(plan, &err) < 0)
      sj_child_die(sync_fd, &err);
  }
  if (join_namespaces(plan, &err) < 0)
    sj_child_die(sync_fd, &err);
  if (plan->timens_offsets && enter_time_namespace(plan, &err) < 0)
    sj_child_die(sync_fd, &err);

  struct sj_clone_args args;
  memset(&args, 0, sizeof args);
  args.flags = CLONE_PARENT;
  init_clone_args(plan, &args);
  /* exit_signal must be 0 with CLONE_PARENT (EINVAL otherwise): the init
   * inherits ours, SIGCHLD, towards the caller. */
  pid_t pid = (pid_t)sj_clone3(&args);
  if (pid == 0)
    run_init(plan, sync_fd, ppid, tramp_fd);
  if (pid < 0) {
    sj_fail(&err, errno, "clone3");
    sj_child_die(sync_fd, &err);
  }
  struct sj_msg msg;
  memset(&msg, 0, sizeof msg);
  msg.type = SJ_MSG_PID;
  msg.value = pid;
  if (sj_send_msg(sync_fd, &msg) < 0)
    _exit(1); /* the caller is gone; the init dies with it (PDEATHSIG) */
  _exit(0);
}

/* ---- the caller side ---- */

static void reap(pid_t pid) {
  while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR)
    ;
}

static void kill_and_reap(pid_t pid) {
  kill(pid, SIGKILL);
  reap(pid);
}

/* Wait for the intermediate's report; returns the init's pid or -1. */
static pid_t collect_intermediate(pid_t mid, int sync_fd, struct sj_error *err) {
  struct sj_msg msg;
  if (sj_sync_recv(sync_fd, &msg, err) < 0) {
    kill_and_reap(mid);
    return -1;
  }
  reap(mid);
  if (msg.type == SJ_MSG_PID && msg.value > 0)
    return (pid_t)msg.value;
  if (msg.type == SJ_MSG_ERROR || msg.type == SJ_MSG_CLOSED) {
    err->err = msg.err;
    snprintf(err->msg, sizeof err->msg, "%s", msg.text);
    return -1;
  }
  sj_failx(err, EPROTO, "unexpected message %u from the intermediate process", msg.type);
  return -1;
}

static int set_oom_score_adj(pid_t pid, int value, struct sj_error *err) {
  /* Written by the caller, not the init: lowering it needs CAP_SYS_RESOURCE
   * in the initial user namespace, which an init in a new one never has. */
  char path[64], text[24];
  snprintf(path, sizeof path, "/proc/%d/oom_score_adj", (int)pid);
  snprintf(text, sizeof text, "%d", value);
  if (sj_write_file(path, text) < 0)
    return sj_fail(err, errno, "write %s", path);
  return 0;
}

int sj_spawn(const struct sj_plan *plan, struct sj_spawned *out, struct sj_error *err) {
  int sv[2];
  pid_t pid = -1, mid = -1;
  int pidfd = -1;
  int clone_errno = 0;

  memset(err, 0, sizeof *err);
  /* What the init execs last (see launch.h); ours is closed once it exists. */
  int tramp_fd = sj_trampoline_create(err);
  if (tramp_fd < 0)
    return -1;
  int above = 3 + (plan->preserve_fds > 0 ? plan->preserve_fds : 0);
  if (tramp_fd < above) { /* never in stdio or the range execve passes on */
    int moved = fcntl(tramp_fd, F_DUPFD_CLOEXEC, above);
    close(tramp_fd);
    if (moved < 0)
      return sj_fail(err, errno, "create the exec trampoline: dup");
    tramp_fd = moved;
  }
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    close(tramp_fd);
    return sj_fail(err, errno, "socketpair");
  }

  /* All signals blocked across clone: the child must never run one of
   * Python's handlers; it unblocks once its dispositions are default. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t ppid = getpid();
  struct sj_clone_args args;
  memset(&args, 0, sizeof args);
  args.exit_signal = SIGCHLD;
  if (plan->njoins > 0 || plan->timens_offsets || plan->exec_pidfd >= 0) {
    mid = (pid_t)sj_clone3(&args); /* a plain fork, without atfork handlers */
    if (mid == 0)
      run_intermediate(plan, sv[1], ppid, tramp_fd);
    clone_errno = errno;
  } else {
    args.flags = CLONE_PIDFD;
    init_clone_args(plan, &args);
    args.pidfd = (uint64_t)(uintptr_t)&pidfd;
    pid = (pid_t)sj_clone3(&args);
    if (pid == 0)
      run_init(plan, sv[1], ppid, tramp_fd);
    clone_errno = errno;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  close(sv[1]);
  close(tramp_fd);

  if (pid < 0 && mid < 0) {
    close(sv[0]);
    return sj_fail(err, clone_errno, "clone3");
  }
  if (mid > 0) {
    pid = collect_intermediate(mid, sv[0], err);
    if (pid < 0) {
      close(sv[0]);
      return -1;
    }
    /* The init is our child and unreaped, so its pid cannot be reused. */
    pidfd = sj_pidfd_open(pid);
    if (pidfd < 0) {
      sj_fail(err, errno, "pidfd_open");
      goto fail;
    }
  }
  if (plan->has_oom_score_adj && set_oom_score_adj(pid, plan->oom_score_adj, err) < 0)
    goto fail;

  out->pid = pid;
  out->pidfd = pidfd;
  out->sync_fd = sv[0];
  return 0;

fail:
  kill_and_reap(pid);
  if (pidfd >= 0)
    close(pidfd);
  close(sv[0]);
  return -1;
}
