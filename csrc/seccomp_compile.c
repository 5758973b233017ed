/* The seccomp filter as BPF, built with libseccomp in the runtime process.
 * The init receives only the finished program (plan->seccomp_bpf), so the
 * container never links, maps or runs libseccomp. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "seccomp_compile.h"

#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int sj_scmp_resolve_syscall(const char *name) {
  int nr = seccomp_syscall_resolve_name(name);
  return nr == __NR_SCMP_ERROR ? -1 : nr;
}

uint32_t sj_scmp_resolve_arch(const char *name) {
  return seccomp_arch_resolve_name(name);
}

int sj_scmp_flag_supported(unsigned int flag) {
  /* SECCOMP_SET_MODE_FILTER (1) with a NULL program: nothing is loaded. */
  long rc = syscall(SYS_seccomp, 1, flag, NULL);
  return rc < 0 && errno == EFAULT;
}

static int fail(struct sj_error *err, int rc, const char *fmt, const char *what) {
  /* libseccomp returns -errno */
  err->err = rc < 0 ? -rc : rc;
  int n = snprintf(err->msg, sizeof err->msg, fmt, what);
  if (n >= 0 && (size_t)n < sizeof err->msg)
    snprintf(err->msg + n, sizeof err->msg - (size_t)n, ": %s", strerror(err->err));
  return -1;
}

int sj_scmp_compile(const struct sj_scmp_filter *f, int fd, struct sj_error *err) {
  memset(err, 0, sizeof *err);
  scmp_filter_ctx ctx = seccomp_init(f->default_action);
  if (!ctx)
    return fail(err, -EINVAL, "seccomp: default action %s", "rejected");
  int rc = 0;
  char what[64];
  /* The runtime sets no_new_privs itself, as the config says: not libseccomp. */
  if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)) < 0) {
    fail(err, rc, "seccomp: %s", "set the no_new_privs attribute");
    goto out;
  }
  for (size_t i = 0; i < f->narches; i++) {
    rc = seccomp_arch_add(ctx, f->arches[i]);
    if (rc < 0 && rc != -EEXIST) {
      snprintf(what, sizeof what, "%#x", f->arches[i]);
      fail(err, rc, "seccomp: add architecture %s", what);
      goto out;
    }
  }
  for (size_t i = 0; i < f->nrules; i++) {
    const struct sj_scmp_rule *r = &f->rules[i];
    struct scmp_arg_cmp cmp[6];
    if (r->nargs > 6) {
      snprintf(what, sizeof what, "%d", r->nr);
      fail(err, -EINVAL, "seccomp: syscall %s has more than 6 argument conditions", what);
      goto out;
    }
    for (size_t j = 0; j < r->nargs; j++) {
      cmp[j].arg = r->args[j].index;
      cmp[j].op = (enum scmp_compare)r->args[j].op;
      cmp[j].datum_a = r->args[j].value;
      cmp[j].datum_b = r->args[j].value_two;
    }
    rc = seccomp_rule_add_array(ctx, r->action, r->nr, (unsigned int)r->nargs, cmp);
    /* A rule whose action is the default one is refused (EACCES): it is a no-op. */
    if (rc < 0 && rc != -EACCES) {
      char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, r->nr);
      snprintf(what, sizeof what, "%s", name ? name : "?");
      free(name);
      fail(err, rc, "seccomp: add a rule for %s", what);
      goto out;
    }
  }
  if ((rc = seccomp_export_bpf(ctx, fd)) < 0) {
    fail(err, rc, "seccomp: %s", "export the BPF program");
    goto out;
  }
  rc = 0;
out:
  seccomp_release(ctx);
  return rc < 0 ? -1 : 0;
}
