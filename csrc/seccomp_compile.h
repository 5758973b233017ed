/* Building a seccomp BPF program with libseccomp, in the runtime (never in
 * the container's init, which only loads the bytes: see seccomp_load.c). */
#ifndef SANGJA_SECCOMP_COMPILE_H
#define SANGJA_SECCOMP_COMPILE_H

#include <stddef.h>
#include <stdint.h>

#include "launch.h"

struct sj_scmp_arg {
  unsigned int index; /* syscall argument 0..5 */
  uint64_t value, value_two;
  int op; /* enum scmp_compare: SCMP_CMP_NE .. SCMP_CMP_MASKED_EQ */
};

struct sj_scmp_rule {
  int nr;          /* native syscall number (sj_scmp_resolve_syscall) */
  uint32_t action; /* SCMP_ACT_* with its data (errno, trace value) */
  const struct sj_scmp_arg *args;
  size_t nargs; /* all must match (AND) */
};

struct sj_scmp_filter {
  uint32_t default_action;
  const uint32_t *arches; /* libseccomp arch tokens; the native one is always there */
  size_t narches;
  const struct sj_scmp_rule *rules;
  size_t nrules;
  /* The ENOSYS stub (as runc's): when names is not NULL, a syscall numbered
   * above every one the profile names (names: all of them, whatever their
   * action) answers ENOSYS instead of the default action, on every
   * architecture of the filter, so that programs (and libc) fall back from a
   * call newer than the profile (clone3, faccessat2, openat2, close_range)
   * to the older one it allows. */
  const char *const *names;
  size_t nnames;
};

/* Native syscall number for a name, or -1 when this libseccomp does not know it. */
int sj_scmp_resolve_syscall(const char *name);
/* libseccomp's arch token for a name ("x86_64", "aarch64", ...), 0 if unknown. */
uint32_t sj_scmp_resolve_arch(const char *name);
/* 1 if this kernel knows SECCOMP_FILTER_FLAG_* `flag` (asked as libseccomp asks: a
 * filter with no program is EFAULT once the flags passed), else 0. */
int sj_scmp_flag_supported(unsigned int flag);
/* Write the program (struct sock_filter[]) to fd. 0, or -1 with err naming the step. */
int sj_scmp_compile(const struct sj_scmp_filter *f, int fd, struct sj_error *err);

#endif
