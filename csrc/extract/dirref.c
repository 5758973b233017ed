/* Directories of the layer as refcounted handles, shared by the resolve
 * cache, the directory records and queued writer jobs; and openat2, which
 * every confined lookup goes through.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

int sjx_openat2(int dirfd, const char *path, int flags, uint64_t resolve) {
  struct open_how how = {.flags = (uint64_t)flags | O_CLOEXEC, .resolve = resolve};
  int fd;
  for (int tries = 0; tries < 8; tries++) { /* EAGAIN: a concurrent rename; retry */
    fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    if (fd >= 0 || errno != EAGAIN)
      break;
  }
  return fd;
}

/* ---- refcounted directory handles ---- */

static uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  return x ^ (x >> 33);
}

uint64_t sjx_dir_id(const struct stat *st) {
  return mix64((uint64_t)st->st_dev * 0x9e3779b97f4a7c15ULL ^ (uint64_t)st->st_ino);
}

struct sjx_dir *sjx_dir_open(int fd, struct stat *st, struct sj_extract_error *err,
                             const char *entry) {
  struct sjx_dir *d;
  if (fstat(fd, st) < 0) {
    int e = errno;
    close(fd);
    sjx_fail_sys(err, e, entry, "fstat");
    return NULL;
  }
  if (!(d = malloc(sizeof *d))) {
    close(fd);
    sjx_fail_sys(err, ENOMEM, entry, "directory handle");
    return NULL;
  }
  d->fd = fd;
  d->refs = 1;
  d->id = sjx_dir_id(st);
  return d;
}

struct sjx_dir *sjx_dir_new(int fd, struct sj_extract_error *err, const char *entry) {
  struct stat st;
  return sjx_dir_open(fd, &st, err, entry);
}

struct sjx_dir *sjx_dir_ref(struct sjx_dir *d) {
  __atomic_add_fetch(&d->refs, 1, __ATOMIC_RELAXED);
  return d;
}

void sjx_dir_unref(struct sjx_dir *d) {
  if (d && __atomic_sub_fetch(&d->refs, 1, __ATOMIC_ACQ_REL) == 0) {
    close(d->fd);
    free(d);
  }
}
