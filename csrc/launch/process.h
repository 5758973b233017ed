/* The process's attributes and its last steps (process.c): its own procfs,
 * hostname, sysctls, personality, rlimits, stdio ownership, cwd, executable
 * lookup, LSM labels, the exec fifo and execve. */
#ifndef SANGJA_PROCESS_H
#define SANGJA_PROCESS_H

#include "ctx.h"

#pragma GCC visibility push(hidden)

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
