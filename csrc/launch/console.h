/* The container's terminal (console.c). */
#ifndef SANGJA_CONSOLE_H
#define SANGJA_CONSOLE_H

#include "ctx.h"

#pragma GCC visibility push(hidden)

int sj_setup_console(struct sj_ctx *ctx, struct sj_error *err);

#pragma GCC visibility pop

#endif
