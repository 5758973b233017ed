/* The container init's setup steps, between clone and execve.  Each step
 * returns 0, or -1 with err filled ("step: strerror"); init.c runs them in
 * order and reports the first failure over the sync socket.
 */
#ifndef SANGJA_INIT_H
#define SANGJA_INIT_H

#include <limits.h>
#include <sys/types.h>

#include "launch.h"

/* State of the child while it sets itself up. */
struct sj_ctx {
  const struct sj_plan *plan;
  int sync_fd;      /* child end of the sync socket */
  pid_t ppid;       /* the caller of sj_spawn; a change means it died */
  int userns;       /* created or joined a user namespace */
  int mntns;        /* created or joined a mount namespace */
  int own_root;     /* create: we set up a root of our own (in our mount namespace,
                       or, without one, a rootfs other than the runtime's /) */
  int exec;         /* joining an existing container (plan->exec_pidfd) */
  int rootfd;       /* O_PATH of the rootfs bind mount (before pivot), or -1 */
  int null_tree;    /* mount fd: clone of the host /dev/null for masking, or -1 */
  int null_attached;/* null_tree has been moved into our namespace */
  int tramp_fd;     /* the exec trampoline's sealed memfd (see launch.h) */
  int procfd;       /* a procfs of our own (pids only), or -1: see process.c */
  int sysfd;        /* a full one, for the sysctls only, or -1 */
  mode_t umask0;    /* the umask inherited from the parent */
  char exec_path[PATH_MAX]; /* argv[0] resolved against PATH */
  char home_env[PATH_MAX + 8]; /* "HOME=..." when the env has none, else "" */
  int fds_cloexec;  /* every fd past the preserved ones is close-on-exec already */
};

/* Internal to the extension: not exported from the shared object. */
#pragma GCC visibility push(hidden)

/* init.c */
__attribute__((noreturn)) void sj_init_main(struct sj_ctx *ctx);
/* Report err to the parent over the sync socket and _exit(1). */
__attribute__((noreturn)) void sj_child_die(int sync_fd, const struct sj_error *err);
/* Write "0" to every plan->cgroup_join file (joins them; see launch.h). */
int sj_join_cgroups(const struct sj_plan *plan, struct sj_error *err);

/* hooks.c: run hooks[0..n) of `stage` with the state as the container sees
 * it ({"pid":getpid(),"status":status,...}); err names the stage. */
int sj_run_init_hooks(struct sj_ctx *ctx, const struct sj_hook *hooks, size_t n,
                      const char *stage, const char *status, struct sj_error *err);

/* mounts.c */
int sj_rootfs_prepare(struct sj_ctx *ctx, struct sj_error *err);
int sj_rootfs_mounts(struct sj_ctx *ctx, struct sj_error *err);
int sj_rootfs_devices(struct sj_ctx *ctx, struct sj_error *err);
int sj_grab_dev_null(struct sj_ctx *ctx, struct sj_error *err);

/* copyup.c: tmpcopyup.  prepare: an fd of the directory the mount will cover
 * (-2: none there), taken before mounting; copyup: copy it into the mount. */
int sj_copyup_prepare(struct sj_ctx *ctx, const struct sj_mount *m);
int sj_copyup(struct sj_ctx *ctx, const struct sj_mount *m, int src, struct sj_error *err);
int sj_enter_rootfs(struct sj_ctx *ctx, struct sj_error *err);
int sj_readonly_paths(struct sj_ctx *ctx, struct sj_error *err);
int sj_masked_paths(struct sj_ctx *ctx, struct sj_error *err);
int sj_root_readonly(struct sj_ctx *ctx, struct sj_error *err);

/* console.c */
int sj_setup_console(struct sj_ctx *ctx, struct sj_error *err);

/* caps.c: the privilege drop, in this order (see become_user in init.c) */
int sj_drop_bounding(struct sj_ctx *ctx, struct sj_error *err);
int sj_set_keepcaps(int on, struct sj_error *err);
int sj_switch_ids(struct sj_ctx *ctx, struct sj_error *err); /* groups, gid, uid */
/* The final sets, with `extra` kept in effective and permitted (see launch.h,
 * seccomp: CAP_SYS_ADMIN until the filter is loaded); sj_drop_extra_caps
 * then sets them without it (one capset). */
int sj_apply_caps(struct sj_ctx *ctx, uint64_t extra, struct sj_error *err);
int sj_drop_extra_caps(struct sj_ctx *ctx, struct sj_error *err);

/* seccomp_load.c: load plan->seccomp_bpf; *listener gets the notify fd
 * (SECCOMP_FILTER_FLAG_NEW_LISTENER), else -1.  No filter: 0, nothing done. */
int sj_seccomp_load(const struct sj_plan *plan, int *listener, struct sj_error *err);

/* trampoline.c: the sealed memfd holding the exec trampoline (caller side,
 * CLOEXEC), and an execveat through it: execs `path` with argv
 * and envp, reporting a failure as `report` says (see trampoline/).
 * Returns only on failure (-1 + errno). */
int sj_trampoline_create(struct sj_error *err);
int sj_trampoline_exec(int tfd, const char *path, const char *report,
                       const char *const *argv, const char *const *envp);

/* process.c */
/* A procfs of our own, never the container's /proc (which its image or
 * mounts may have replaced): full (with /proc/sys, ctx->sysfd, closed once
 * the sysctls are written) or pids-only (ctx->procfd).  Made on first use;
 * sj_procfs_early makes what the plan will need while the runtime's /proc
 * is still in view (a user namespace may mount one only then). */
int sj_procfs(struct sj_ctx *ctx, int full, struct sj_error *err);
void sj_procfs_early(struct sj_ctx *ctx);
int sj_set_hostname(struct sj_ctx *ctx, struct sj_error *err);
int sj_set_sysctls(struct sj_ctx *ctx, struct sj_error *err);
int sj_set_process_attrs(struct sj_ctx *ctx, struct sj_error *err); /* personality, rlimits */
int sj_fix_stdio_owner(struct sj_ctx *ctx, struct sj_error *err);
/* chdir to the cwd (as root: EACCES is left for as_user), and as_user
 * verify the cwd lies inside the container. */
int sj_chdir_cwd(struct sj_ctx *ctx, int as_user, int *done, struct sj_error *err);
int sj_lookup_exec(struct sj_ctx *ctx, struct sj_error *err);
int sj_make_cwd(struct sj_ctx *ctx, struct sj_error *err);
/* A new network namespace starts with lo down: up it goes, as runc does. */
int sj_loopback_up(struct sj_ctx *ctx, struct sj_error *err);
/* Before the filter: the preserved fds lose close-on-exec, every later one
 * gets it (so nothing after depends on close_range being allowed). */
void sj_prepare_exec_fds(struct sj_ctx *ctx);
void sj_default_home(struct sj_ctx *ctx);
int sj_set_lsm_labels(struct sj_ctx *ctx, struct sj_error *err);
int sj_check_exec_fifo(struct sj_ctx *ctx, struct sj_error *err);
/* Block until `start` opens the fifo; returns the fifo's write fd (or -1
 * without a fifo), -2 + err on failure. */
int sj_open_exec_fifo(struct sj_ctx *ctx, struct sj_error *err);
/* Tell `start` we are going ("0"), or why not ("1" + fail->msg); closes fd. */
int sj_release_exec_fifo(struct sj_ctx *ctx, int fd, const struct sj_error *fail,
                         struct sj_error *err);
__attribute__((noreturn)) void sj_exec(struct sj_ctx *ctx);
/* After READY there is no one to report to: write "text\n" to log_fd/stderr. */
void sj_late_error(struct sj_ctx *ctx, const struct sj_error *err);

#pragma GCC visibility pop

#endif
