/* Loading the finished seccomp program in the init (or an exec'd process):
 * one syscall, no libseccomp (the program was built by the caller, see
 * csrc/seccomp/compile.c).  When it runs is init.c's business (setup_process).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "error.h"
#include "seccomp.h"
#include "syscalls.h"

int sj_seccomp_load(const struct sj_plan *plan, int *listener, struct sj_error *err) {
  *listener = -1;
  if (!plan->seccomp_bpf || plan->seccomp_len == 0)
    return 0;
  size_t n = plan->seccomp_len / sizeof(struct sock_filter);
  if (n == 0 || n > BPF_MAXINSNS || plan->seccomp_len % sizeof(struct sock_filter))
    return sj_failx(err, EINVAL, "seccomp: a program of %zu bytes is not a BPF program",
                    plan->seccomp_len);
  struct sock_fprog prog = {
      .len = (unsigned short)n,
      .filter = (struct sock_filter *)(uintptr_t)plan->seccomp_bpf,
  };
  long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, plan->seccomp_flags, &prog);
  if (rc < 0) {
    if (errno == EINVAL && plan->seccomp_flags)
      return sj_fail(err, errno, "seccomp: load the filter (flags %#x: does the kernel have them?)",
                     plan->seccomp_flags);
    if (errno == EACCES)
      return sj_fail(err, errno,
                     "seccomp: load the filter (without noNewPrivileges it needs "
                     "CAP_SYS_ADMIN)");
    return sj_fail(err, errno, "seccomp: load the filter");
  }
  if (plan->seccomp_flags & SECCOMP_FILTER_FLAG_NEW_LISTENER)
    *listener = (int)rc;
  return 0;
}
