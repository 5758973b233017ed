/* The privilege drop (caps.c), in this order (see become_user in init.c). */
#ifndef SANGJA_CAPS_H
#define SANGJA_CAPS_H

#include <stdint.h>

#include "ctx.h"

#pragma GCC visibility push(hidden)

int sj_drop_bounding(struct sj_ctx *ctx, struct sj_error *err);
int sj_set_keepcaps(int on, struct sj_error *err);
int sj_switch_ids(struct sj_ctx *ctx, struct sj_error *err); /* groups, gid, uid */
/* The final sets, with `extra` kept in effective and permitted (see launch.h,
 * seccomp: CAP_SYS_ADMIN until the filter is loaded); sj_drop_extra_caps
 * then sets them without it (one capset). */
int sj_apply_caps(struct sj_ctx *ctx, uint64_t extra, struct sj_error *err);
int sj_drop_extra_caps(struct sj_ctx *ctx, struct sj_error *err);

#pragma GCC visibility pop

#endif
