/* The bpf() calls behind cgroup v2 device control (see bpf.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <linux/bpf.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bpf.h"

#define SJ_MAX_OLD_PROGS 64

/* err = "<step>: <strerror>" (runs in the runtime, never in a forked child). */
__attribute__((format(printf, 3, 4))) static int fail(struct sj_error *err, int errnum,
                                                      const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  va_end(ap);
  if (n >= 0 && (size_t)n < sizeof err->msg)
    snprintf(err->msg + n, sizeof err->msg - (size_t)n, ": %s", strerror(errnum));
  err->err = errnum;
  return -1;
}

static long sj_bpf(int cmd, union bpf_attr *attr) {
  return syscall(SYS_bpf, cmd, attr, sizeof *attr);
}

/* The ids of the device programs attached to the cgroup now. */
static int query_old(int cgroup_fd, uint32_t *ids, uint32_t *n, struct sj_error *err) {
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.query.target_fd = (uint32_t)cgroup_fd;
  attr.query.attach_type = BPF_CGROUP_DEVICE;
  attr.query.prog_ids = (uint64_t)(uintptr_t)ids;
  attr.query.prog_cnt = *n;
  /* ENOSPC: more than fit; the first *n are filled in all the same */
  if (sj_bpf(BPF_PROG_QUERY, &attr) < 0 && errno != ENOSPC)
    return fail(err, errno, "bpf query the device programs of the cgroup");
  *n = attr.query.prog_cnt < *n ? attr.query.prog_cnt : *n;
  return 0;
}

static int load(const void *insns, size_t ninsns, struct sj_error *err) {
  static const char license[] = "Apache";
  char log[2048];
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = (uint64_t)(uintptr_t)insns;
  attr.insn_cnt = (uint32_t)ninsns;
  attr.license = (uint64_t)(uintptr_t)license;
  int fd = (int)sj_bpf(BPF_PROG_LOAD, &attr);
  if (fd >= 0)
    return fd;
  int saved = errno;
  if (saved == EACCES || saved == EINVAL) { /* again, with the verifier's log */
    log[0] = '\0';
    attr.log_buf = (uint64_t)(uintptr_t)log;
    attr.log_size = sizeof log;
    attr.log_level = 1;
    fd = (int)sj_bpf(BPF_PROG_LOAD, &attr);
    if (fd >= 0)
      return fd;
    if (log[0]) {
      log[sizeof log - 1] = '\0';
      return fail(err, saved, "bpf load the device program (verifier: %.300s)", log);
    }
  }
  return fail(err, saved, "bpf load the device program");
}

static int detach(int cgroup_fd, uint32_t id, struct sj_error *err) {
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_id = id;
  int fd = (int)sj_bpf(BPF_PROG_GET_FD_BY_ID, &attr);
  if (fd < 0)
    return errno == ENOENT ? 0 : fail(err, errno, "bpf get the old device program %u", id);
  memset(&attr, 0, sizeof attr);
  attr.target_fd = (uint32_t)cgroup_fd;
  attr.attach_bpf_fd = (uint32_t)fd;
  attr.attach_type = BPF_CGROUP_DEVICE;
  int rc = (int)sj_bpf(BPF_PROG_DETACH, &attr);
  int saved = errno;
  close(fd);
  if (rc < 0 && saved != ENOENT)
    return fail(err, saved, "bpf detach the old device program %u", id);
  return 0;
}

int sj_cgroup_attach_device_program(int cgroup_fd, const void *insns, size_t ninsns,
                                    struct sj_error *err) {
  uint32_t old[SJ_MAX_OLD_PROGS];
  uint32_t nold = SJ_MAX_OLD_PROGS;
  if (query_old(cgroup_fd, old, &nold, err) < 0)
    return -1;
  int prog = load(insns, ninsns, err);
  if (prog < 0)
    return -1;
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.target_fd = (uint32_t)cgroup_fd;
  attr.attach_bpf_fd = (uint32_t)prog;
  attr.attach_type = BPF_CGROUP_DEVICE;
  attr.attach_flags = BPF_F_ALLOW_MULTI;
  int rc = (int)sj_bpf(BPF_PROG_ATTACH, &attr);
  int saved = errno;
  close(prog); /* the attachment holds the program */
  if (rc < 0)
    return fail(err, saved, "bpf attach the device program");
  for (uint32_t i = 0; i < nold; i++)
    if (detach(cgroup_fd, old[i], err) < 0)
      return -1;
  return 0;
}
