/* The container's filesystem (mounts.c): root propagation, the mount list,
 * devices, pivot_root, read-only and masked paths. */
#ifndef SANGJA_MOUNTS_H
#define SANGJA_MOUNTS_H

#include "ctx.h"

#pragma GCC visibility push(hidden)

int sj_rootfs_prepare(struct sj_ctx *ctx, struct sj_error *err);
int sj_rootfs_mounts(struct sj_ctx *ctx, struct sj_error *err);
int sj_rootfs_devices(struct sj_ctx *ctx, struct sj_error *err);
int sj_grab_dev_null(struct sj_ctx *ctx, struct sj_error *err);
int sj_enter_rootfs(struct sj_ctx *ctx, struct sj_error *err);
int sj_readonly_paths(struct sj_ctx *ctx, struct sj_error *err);
int sj_masked_paths(struct sj_ctx *ctx, struct sj_error *err);
int sj_root_readonly(struct sj_ctx *ctx, struct sj_error *err);

#pragma GCC visibility pop

#endif
