/* The exec trampoline, launch side (trampoline.c; the program itself is
 * csrc/sangja-exec/). */
#ifndef SANGJA_TRAMPOLINE_H
#define SANGJA_TRAMPOLINE_H

#include "launch.h"

#pragma GCC visibility push(hidden)

/* The sealed memfd holding the trampoline (caller side, CLOEXEC). */
int sj_trampoline_create(struct sj_error *err);
/* An execveat through it: execs `path` with argv and envp, reporting a
 * failure as `report` says (see csrc/sangja-exec/main.c).  Returns only on
 * failure (-1 + errno). */
int sj_trampoline_exec(int tfd, const char *path, const char *report, const char *const *argv,
                       const char *const *envp);

#pragma GCC visibility pop

#endif
