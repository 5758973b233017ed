/* OCI hooks the init runs itself (createContainer, startContainer); the
 * runtime's own stages go through sj_run_hook (launch.h). */
#ifndef SANGJA_HOOKS_H
#define SANGJA_HOOKS_H

#include "ctx.h"

#pragma GCC visibility push(hidden)

/* Run hooks[0..n) of `stage` with the state as the container sees it
 * ({"pid":getpid(),"status":status,...}); err names the stage. */
int sj_run_init_hooks(struct sj_ctx *ctx, const struct sj_hook *hooks, size_t n, const char *stage,
                      const char *status, struct sj_error *err);

#pragma GCC visibility pop

#endif
