/* The seccomp filter as BPF, built with libseccomp in the runtime process.
 * The init receives only the finished program (plan->seccomp_bpf), so the
 * container never links, maps or runs libseccomp. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "seccomp_compile.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
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

/* ---- the ENOSYS stub ----
 *
 * Prepended to libseccomp's program (its jumps are relative: it runs the
 * same after it):
 *
 *     ld  [arch]
 *     jeq ARCH_1, sec_1          (one per architecture)
 *     ...
 *     ja  filter
 *   sec_i:
 *     ld  [nr]
 *     (x86_64: x32 calls have bit 30 set and their own numbers)
 *     jgt MAX_i, enosys, filter
 *     ...
 *   to_filter: ja filter
 *   enosys:    ret ERRNO(ENOSYS)
 *   filter:    (libseccomp's program)
 */

#define SJ_STUB_MAX 512
#define SJ_X32_BIT 0x40000000U
#define SJ_MAX_ARCHES 32

struct stub_arch {
  uint32_t audit;    /* the kernel's AUDIT_ARCH_* */
  int64_t max;       /* the highest number the profile names, -1: none */
  int64_t max_x32;   /* x86_64 only: the same for x32 (bit 30 set), -1: none */
  int is_s390;       /* syscall 0 is the multiplexer of numbers the kernel does not know */
};

static int64_t highest_nr(uint32_t token, const struct sj_scmp_filter *f) {
  int64_t max = -1;
  for (size_t i = 0; i < f->nnames; i++) {
    int nr = seccomp_syscall_resolve_name_arch(token, f->names[i]);
    if (nr >= 0 && nr > max) /* negative: unknown there, or one of libseccomp's pseudo ones */
      max = nr;
  }
  return max;
}

/* The architectures of the filter (the listed ones and the native one), by
 * the kernel's arch value, with the highest number the profile names. */
static size_t stub_arches(const struct sj_scmp_filter *f, struct stub_arch *out) {
  uint32_t tokens[SJ_MAX_ARCHES + 1];
  size_t ntok = 0;
  tokens[ntok++] = seccomp_arch_native();
  for (size_t i = 0; i < f->narches && ntok <= SJ_MAX_ARCHES; i++)
    tokens[ntok++] = f->arches[i];
  size_t n = 0;
  for (size_t t = 0; t < ntok; t++) {
    int x32 = tokens[t] == SCMP_ARCH_X32;
    uint32_t audit = x32 ? SCMP_ARCH_X86_64 : tokens[t]; /* x32 runs as x86_64 */
    size_t k = 0;
    while (k < n && out[k].audit != audit)
      k++;
    if (k == n) {
      if (n == SJ_MAX_ARCHES)
        continue;
      out[n].audit = audit;
      out[n].max = out[n].max_x32 = -1;
      out[n].is_s390 = audit == SCMP_ARCH_S390 || audit == SCMP_ARCH_S390X;
      n++;
    }
    int64_t max = highest_nr(tokens[t], f);
    if (x32 && max >= 0)
      out[k].max_x32 = max | SJ_X32_BIT;
    else if (!x32)
      out[k].max = max;
  }
  return n;
}

static struct sock_filter insn(uint16_t code, uint32_t k, uint8_t jt, uint8_t jf) {
  struct sock_filter i = {.code = code, .jt = jt, .jf = jf, .k = k};
  return i;
}

/* A conditional jump's offset from pc to target, or -1 if it does not fit. */
static int rel(size_t pc, size_t target) {
  return target > pc && target - pc - 1 <= 255 ? (int)(target - pc - 1) : -1;
}

/* Build the stub into prog; -> its length, or -1 (too long: ENOSYS is no
 * reason to refuse a profile, the caller goes on without it). */
static int build_stub(const struct sj_scmp_filter *f, struct sock_filter *prog) {
  struct stub_arch arches[SJ_MAX_ARCHES];
  size_t narch = stub_arches(f, arches);
  /* Sections, then their sizes, so that every jump is known on the way. */
  size_t nsec = 0, secsize[SJ_MAX_ARCHES];
  struct stub_arch *sec[SJ_MAX_ARCHES];
  for (size_t i = 0; i < narch; i++) {
    struct stub_arch *a = &arches[i];
    int x86 = a->audit == SCMP_ARCH_X86_64;
    if (a->max < 0 && a->max_x32 < 0)
      continue;
    size_t size = 1 + (a->is_s390 ? 1 : 0);
    if (x86)
      size += (a->max >= 0 ? 1 : 0) + (a->max_x32 >= 0 ? 1 : 0) + 1; /* + the jset */
    else
      size += 1;
    sec[nsec] = a;
    secsize[nsec++] = size;
  }
  if (nsec == 0)
    return 0;
  size_t start = 1 + nsec + 1, total = start;
  for (size_t i = 0; i < nsec; i++)
    total += secsize[i];
  size_t to_filter = total, enosys = total + 1, len = total + 2;
  if (len > SJ_STUB_MAX)
    return -1;
  size_t pc = 0;
  prog[pc++] = insn(BPF_LD | BPF_W | BPF_ABS, 4, 0, 0); /* seccomp_data.arch */
  size_t at = start;
  for (size_t i = 0; i < nsec; i++, pc++) {
    int j = rel(pc, at);
    if (j < 0)
      return -1;
    prog[pc] = insn(BPF_JMP | BPF_JEQ | BPF_K, sec[i]->audit, (uint8_t)j, 0);
    at += secsize[i];
  }
  prog[pc] = insn(BPF_JMP | BPF_JA, (uint32_t)(enosys + 1 - pc - 1), 0, 0);
  pc++;
  for (size_t i = 0; i < nsec; i++) {
    struct stub_arch *a = sec[i];
    prog[pc++] = insn(BPF_LD | BPF_W | BPF_ABS, 0, 0, 0); /* seccomp_data.nr */
    if (a->is_s390) {
      int je = rel(pc, enosys);
      if (je < 0)
        return -1;
      prog[pc] = insn(BPF_JMP | BPF_JEQ | BPF_K, 0, (uint8_t)je, 0);
      pc++;
    }
    int x86 = a->audit == SCMP_ARCH_X86_64;
    size_t end = pc + secsize[i] - 1 - (a->is_s390 ? 1 : 0); /* the next section */
    if (x86) {
      /* jset bit 30: x32 (its check, or the filter), else x86_64 (its check,
       * or the filter) */
      size_t x32_at = a->max >= 0 ? pc + 2 : pc + 1;
      int jt = a->max_x32 >= 0 ? rel(pc, x32_at) : rel(pc, to_filter);
      int jf = a->max >= 0 ? 0 : rel(pc, to_filter);
      if (jt < 0 || jf < 0)
        return -1;
      prog[pc] = insn(BPF_JMP | BPF_JSET | BPF_K, SJ_X32_BIT, (uint8_t)jt, (uint8_t)jf);
      pc++;
    }
    int64_t maxes[2] = {a->max, x86 ? a->max_x32 : -1};
    for (int m = 0; m < 2; m++) {
      if (maxes[m] < 0)
        continue;
      int jt = rel(pc, enosys), jf = rel(pc, to_filter);
      if (jt < 0 || jf < 0)
        return -1;
      prog[pc] = insn(BPF_JMP | BPF_JGT | BPF_K, (uint32_t)maxes[m], (uint8_t)jt, (uint8_t)jf);
      pc++;
    }
    if (pc != end)
      return -1;
  }
  prog[pc++] = insn(BPF_JMP | BPF_JA, 1, 0, 0); /* to_filter: over the ret */
  prog[pc++] = insn(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS, 0, 0);
  return pc == len ? (int)len : -1;
}

static int write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
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
  if (f->names) {
    static struct sock_filter stub[SJ_STUB_MAX];
    int n = build_stub(f, stub);
    if (n > 0 && write_all(fd, stub, (size_t)n * sizeof stub[0]) < 0) {
      fail(err, -errno, "seccomp: %s", "write the ENOSYS stub");
      rc = -1;
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
