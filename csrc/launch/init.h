/* The launched process's program, from clone to execve, in the order the
 * steps must run (init.c): each step returns 0, or -1 with err filled
 * ("step: errno text"); the first failure goes to the caller over the sync
 * socket.
 */
#ifndef SANGJA_INIT_H
#define SANGJA_INIT_H

#include "ctx.h"

#pragma GCC visibility push(hidden)

/* The init's program, from clone to execve (spawn.c calls it in the child). */
__attribute__((noreturn)) void sj_init_main(struct sj_ctx *ctx);
/* Write "0" to every plan->cgroup_join file (joins them; see launch.h). */
int sj_join_cgroups(const struct sj_plan *plan, struct sj_error *err);

#pragma GCC visibility pop

#endif
