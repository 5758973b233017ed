/* Loading the finished seccomp program (seccomp.c). */
#ifndef SANGJA_SECCOMP_H
#define SANGJA_SECCOMP_H

#include "launch.h"

#pragma GCC visibility push(hidden)

/* Load plan->seccomp_bpf; *listener gets the notify fd
 * (SECCOMP_FILTER_FLAG_NEW_LISTENER), else -1.  No filter: 0, nothing done. */
int sj_seccomp_load(const struct sj_plan *plan, int *listener, struct sj_error *err);

#pragma GCC visibility pop

#endif
