/* tmpcopyup: a tmpfs mounted over a directory starts with a copy of what
 * that directory held (podman asks for it on /run, /tmp, /var/tmp of
 * read-only containers; runc and crun support it).  Runs in the init before
 * pivot_root: the copy goes from an fd of the covered directory, taken
 * before the mount, to the new tmpfs, never following a symlink, with no
 * allocation (getdents64 into stack buffers). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "copyup.h"
#include "error.h"
#include "paths.h"
#include "syscalls.h"
#include "util.h"

struct sj_dirent64 {
  unsigned long long d_ino;
  long long d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

#define COPYUP_MAX_DEPTH 64

static int copy_meta(int dir, const char *name, const struct stat *st) {
  if (fchownat(dir, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
    return -1;
  if (!S_ISLNK(st->st_mode) && fchmodat(dir, name, st->st_mode & 07777, 0) < 0)
    return -1;
  struct timespec ts[2] = {st->st_atim, st->st_mtim};
  return utimensat(dir, name, ts, AT_SYMLINK_NOFOLLOW);
}

static int copy_file(int sdir, int ddir, const char *name, const struct stat *st) {
  int in = openat(sdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (in < 0)
    return -1;
  int out = openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  int rc = out < 0 ? -1 : 0;
  for (off_t left = st->st_size; rc == 0 && left > 0;) {
    ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) { /* EXDEV on old kernels, or the file shrank: plain copy */
      char buf[8192];
      while ((n = read(in, buf, sizeof buf)) > 0)
        if (sj_write_all(out, buf, (size_t)n) < 0)
          break;
      rc = n < 0 ? -1 : 0;
      break;
    }
    left -= n;
  }
  int saved = errno;
  close(in);
  if (out >= 0)
    close(out);
  errno = saved;
  return rc;
}

/* On failure, `failed` names the entry (relative to the covered directory's level). */
static int copy_tree(int sdir, int ddir, int depth, char *failed, size_t fsize) {
  if (depth > COPYUP_MAX_DEPTH)
    return errno = ELOOP, -1;
  char buf[4096];
  long n;
  while ((n = syscall(SYS_getdents64, sdir, buf, sizeof buf)) > 0) {
    for (long off = 0; off < n;) {
      struct sj_dirent64 *d = (struct sj_dirent64 *)(buf + off);
      off += d->d_reclen;
      const char *name = d->d_name;
      if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        continue;
      struct stat st;
      if (fstatat(sdir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        goto fail;
      int rc;
      if (S_ISDIR(st.st_mode)) {
        rc = mkdirat(ddir, name, 0700);
        int s = rc < 0 ? -1 : openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int t = s < 0 ? -1 : openat(ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        rc = t < 0 ? -1 : copy_tree(s, t, depth + 1, failed, fsize);
        int saved = errno;
        if (s >= 0)
          close(s);
        if (t >= 0)
          close(t);
        errno = saved;
        if (rc < 0)
          return -1; /* failed names the entry further down */
      } else if (S_ISREG(st.st_mode)) {
        rc = copy_file(sdir, ddir, name, &st);
      } else if (S_ISLNK(st.st_mode)) {
        char target[PATH_MAX];
        ssize_t len = readlinkat(sdir, name, target, sizeof target - 1);
        if (len >= 0)
          target[len] = '\0';
        rc = len < 0 ? -1 : symlinkat(target, ddir, name);
      } else {
        rc = mknodat(ddir, name, st.st_mode, st.st_rdev);
      }
      if (rc < 0 || copy_meta(ddir, name, &st) < 0)
        goto fail;
      continue;
    fail:
      snprintf(failed, fsize, "%s", name);
      return -1;
    }
  }
  return n < 0 ? -1 : 0;
}

int sj_copyup_prepare(struct sj_ctx *ctx, const struct sj_mount *m) {
  /* Missing: nothing to copy (the mount point will be created empty). */
  int fd = sj_open_in_root(ctx->rootfd, m->target, O_RDONLY | O_DIRECTORY);
  return fd < 0 && errno == ENOENT ? -2 : fd;
}

int sj_copyup(struct sj_ctx *ctx, const struct sj_mount *m, int src, struct sj_error *err) {
  int dst = sj_open_in_root(ctx->rootfd, m->target, O_RDONLY | O_DIRECTORY);
  if (dst < 0)
    return sj_fail(err, errno, "tmpcopyup %s: open the new mount", m->target);
  char failed[NAME_MAX + 1] = ".";
  struct stat st;
  int rc = fstat(src, &st);
  if (rc == 0) /* the tmpfs root takes the covered directory's owner and mode */
    rc = fchown(dst, st.st_uid, st.st_gid) < 0 || fchmod(dst, st.st_mode & 07777) < 0 ? -1 : 0;
  if (rc == 0)
    rc = copy_tree(src, dst, 0, failed, sizeof failed);
  int saved = errno;
  close(dst);
  if (rc < 0)
    return sj_fail(err, saved, "tmpcopyup %s: copy %s", m->target, failed);
  return 0;
}
