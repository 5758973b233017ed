/* tmpcopyup (copyup.c). */
#ifndef SANGJA_COPYUP_H
#define SANGJA_COPYUP_H

#include "ctx.h"

#pragma GCC visibility push(hidden)

/* prepare: an fd of the directory the mount will cover (-2: none there),
 * taken before mounting; copyup: copy it into the mount. */
int sj_copyup_prepare(struct sj_ctx *ctx, const struct sj_mount *m);
int sj_copyup(struct sj_ctx *ctx, const struct sj_mount *m, int src, struct sj_error *err);

#pragma GCC visibility pop

#endif
