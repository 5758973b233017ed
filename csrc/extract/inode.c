/* One inode of the layer with its metadata: a regular file (its content,
 * then owner, xattrs, mode, times: chown clears setuid/setgid and file
 * capabilities, so it comes before the mode), a symlink or a node by name;
 * and the writer jobs, the regular files and symlinks whose names are known
 * to be new, which a writer thread (pool.c) or the driver runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "internal.h"

#ifndef SYS_setxattrat
#define SYS_setxattrat 463 /* Linux 6.13, in the syscall table all architectures share */
#endif

static int reserved_xattr(const char *name) {
  /* overlayfs reads these on the layer: only our whiteout conversion may set them */
  return !strncmp(name, "trusted.overlay.", 16) || !strncmp(name, "user.overlay.", 13);
}

static int skippable_xattr_error(int e) {
  /* the file system has no such namespace, or (EPERM) user.* on a symlink or device */
  return e == ENOTSUP || e == EOPNOTSUPP || e == EPERM;
}

static long setxattr_nofollow(int dirfd, const char *name, const char *key, const void *value,
                              size_t len) {
  struct {
    uint64_t value;
    uint32_t size, flags;
  } args = {(uint64_t)(uintptr_t)value, (uint32_t)len, 0};
  long r = syscall(SYS_setxattrat, dirfd, name, AT_SYMLINK_NOFOLLOW, key, &args, sizeof args);
  if (r == 0 || errno != ENOSYS)
    return r;
  char path[64 + 256]; /* before 6.13: the directory through its fd */
  snprintf(path, sizeof path, "/proc/self/fd/%d/%s", dirfd, name);
  return lsetxattr(path, key, value, len, 0);
}

/* fd >= 0: on the open file; else dirfd/name, not following a symlink */
int sjx_set_xattrs(struct sjx_ctx *c, int fd, int dirfd, const char *name, const struct sjx_meta *m,
                   const char *entry, struct sj_extract_error *err) {
  for (size_t i = 0; i < m->nx; i++) {
    const struct sjx_xattr *x = &m->x[i];
    long r;
    if (reserved_xattr(x->name)) {
      __atomic_add_fetch(&c->stats->xattrs_skipped, 1, __ATOMIC_RELAXED);
      continue;
    }
    if (fd >= 0)
      r = fsetxattr(fd, x->name, x->value, x->len, 0);
    else
      r = setxattr_nofollow(dirfd, name, x->name, x->value, x->len);
    if (r < 0) {
      if (!skippable_xattr_error(errno)) {
        char what[300];
        snprintf(what, sizeof what, "setxattr %s", x->name);
        return sjx_fail_sys(err, errno, entry, what);
      }
      __atomic_add_fetch(&c->stats->xattrs_skipped, 1, __ATOMIC_RELAXED);
    }
  }
  return 0;
}

int sjx_need_chown(const struct sjx_ctx *c, const struct sjx_meta *m) {
  return m->uid != c->euid || m->gid != c->new_gid;
}

static int need_chmod(const struct sjx_ctx *c, const struct sjx_meta *m) {
  return (m->mode & 07000) || (m->mode & c->umask & 0777);
}

void sjx_times_of(const struct sjx_meta *m, struct timespec ts[2]) {
  ts[0].tv_sec = ts[1].tv_sec = (time_t)m->mtime;
  ts[0].tv_nsec = ts[1].tv_nsec = m->nsec;
}

/* owner, xattrs, mode, times of an open regular file */
int sjx_finish_fd(struct sjx_ctx *c, int fd, const struct sjx_meta *m, const char *entry,
                  struct sj_extract_error *err) {
  struct timespec ts[2];
  int chowned = sjx_need_chown(c, m);
  if (chowned && fchown(fd, m->uid, m->gid) < 0)
    return sjx_fail_sys(err, errno, entry, "chown");
  if (sjx_set_xattrs(c, fd, -1, NULL, m, entry, err) < 0)
    return -1;
  if ((chowned || need_chmod(c, m)) && fchmod(fd, m->mode) < 0)
    return sjx_fail_sys(err, errno, entry, "chmod");
  sjx_times_of(m, ts);
  if (futimens(fd, ts) < 0)
    return sjx_fail_sys(err, errno, entry, "set mtime");
  return 0;
}

/* the same by name, for symlinks (no mode) and devices */
int sjx_finish_at(struct sjx_ctx *c, int dirfd, const char *name, const struct sjx_meta *m,
                  int is_link, const char *entry, struct sj_extract_error *err) {
  struct timespec ts[2];
  int chowned = sjx_need_chown(c, m);
  if (chowned && fchownat(dirfd, name, m->uid, m->gid, AT_SYMLINK_NOFOLLOW) < 0)
    return sjx_fail_sys(err, errno, entry, "chown");
  if (sjx_set_xattrs(c, -1, dirfd, name, m, entry, err) < 0)
    return -1;
  /* not a symlink: we just made it, so no flag is needed not to follow */
  if (!is_link && (chowned || need_chmod(c, m)) && fchmodat(dirfd, name, m->mode, 0) < 0)
    return sjx_fail_sys(err, errno, entry, "chmod");
  sjx_times_of(m, ts);
  if (utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
    return sjx_fail_sys(err, errno, entry, "set mtime");
  return 0;
}

int sjx_write_all(int fd, const uint8_t *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return -1;
    p += w, n -= (size_t)w;
  }
  return 0;
}

int sjx_create_file(int dirfd, const char *name, uint32_t mode) {
  return openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 07777);
}

int sjx_write_job(struct sjx_ctx *c, const struct sjx_job *j, struct sj_extract_error *err) {
  struct sjx_meta m = {j->mode, j->uid, j->gid, j->mtime, j->mtime_nsec, j->xattrs, j->n_xattrs};
  if (j->type == '2') {
    if (symlinkat((const char *)j->data, j->dir->fd, j->name) < 0)
      return sjx_fail_sys(err, errno, j->entry, "symlink");
    return sjx_finish_at(c, j->dir->fd, j->name, &m, 1, j->entry, err);
  }
  int fd = sjx_create_file(j->dir->fd, j->name, j->mode);
  if (fd < 0)
    return sjx_fail_sys(err, errno, j->entry, "create");
  int rc = 0;
  if (sjx_write_all(fd, j->data, j->size) < 0)
    rc = sjx_fail_sys(err, errno, j->entry, "write");
  else
    rc = sjx_finish_fd(c, fd, &m, j->entry, err);
  if (close(fd) < 0 && !rc)
    rc = sjx_fail_sys(err, errno, j->entry, "close");
  if (!rc)
    __atomic_add_fetch(&c->stats->file_bytes, j->size, __ATOMIC_RELAXED);
  return rc;
}

/* One allocation: the job, its name, entry, xattrs and content. */
struct sjx_job *sjx_job_new(struct sjx_dir *dir, const char *base, const struct sjx_entry *e,
                            size_t datalen) {
  size_t nb = strlen(base) + 1, ne = strlen(e->name) + 1, xb = 0;
  for (size_t i = 0; i < e->n_xattrs; i++)
    xb += strlen(e->xattrs[i].name) + 1 + e->xattrs[i].len;
  size_t total =
      sizeof(struct sjx_job) + e->n_xattrs * sizeof(struct sjx_xattr) + nb + ne + xb + datalen + 1;
  struct sjx_job *j = malloc(total);
  if (!j)
    return NULL;
  char *p = (char *)(j + 1);
  j->next = NULL;
  j->dir = sjx_dir_ref(dir);
  j->type = e->type;
  j->mode = e->mode, j->uid = e->uid, j->gid = e->gid;
  j->mtime = e->mtime, j->mtime_nsec = e->mtime_nsec;
  j->xattrs = (struct sjx_xattr *)p;
  j->n_xattrs = e->n_xattrs;
  p += e->n_xattrs * sizeof(struct sjx_xattr);
  for (size_t i = 0; i < e->n_xattrs; i++) {
    size_t nl = strlen(e->xattrs[i].name) + 1;
    memcpy(p, e->xattrs[i].name, nl);
    j->xattrs[i].name = p;
    p += nl;
    memcpy(p, e->xattrs[i].value, e->xattrs[i].len);
    j->xattrs[i].value = (uint8_t *)p;
    j->xattrs[i].len = e->xattrs[i].len;
    p += e->xattrs[i].len;
  }
  j->name = memcpy(p, base, nb);
  p += nb;
  j->entry = memcpy(p, e->name, ne);
  p += ne;
  j->data = (uint8_t *)p;
  j->size = datalen;
  j->data[datalen] = 0;
  return j;
}
