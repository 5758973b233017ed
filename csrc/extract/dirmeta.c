/* Directories' metadata: recorded as they are made, applied at the end
 * (owner, xattrs, mode, times), deepest first, once nothing more is created
 * in them.  A directory is held open from its creation (within a share of
 * the fd limit), else opened again by path and checked to be the one made.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

struct sjx_dirmeta {
  char *path;
  struct sjx_dir *dir; /* held open since it was made, or NULL: open by path */
  uint64_t seq;
  size_t depth;
  dev_t dev;
  ino_t ino;
  uint32_t mode, uid, gid;
  int64_t mtime; /* INT64_MIN: leave it */
  long nsec;
  struct sjx_xattr *x;
  size_t nx;
};

int sjx_record_dir(struct sjx_ctx *c, const char *path, size_t len, const struct stat *st,
                   struct sjx_dir *dir, uint32_t mode, uint32_t uid, uint32_t gid, int64_t mtime,
                   long nsec, const struct sjx_xattr *x, size_t nx, const char *entry) {
  if (c->dirs_len == c->dirs_cap) {
    size_t cap = c->dirs_cap ? c->dirs_cap * 2 : 256;
    struct sjx_dirmeta *n = realloc(c->dirs, cap * sizeof *n);
    if (!n)
      return sjx_fail_sys(c->err, ENOMEM, entry, "directory list");
    c->dirs = n, c->dirs_cap = cap;
  }
  struct sjx_dirmeta *d = &c->dirs[c->dirs_len];
  memset(d, 0, sizeof *d);
  d->path = strndup(path, len);
  if (!d->path)
    return sjx_fail_sys(c->err, ENOMEM, entry, "directory list");
  if (nx) { /* rare: copy names and values into one block */
    size_t bytes = nx * sizeof *d->x;
    for (size_t i = 0; i < nx; i++)
      bytes += strlen(x[i].name) + 1 + x[i].len;
    d->x = malloc(bytes);
    if (!d->x) {
      free(d->path);
      return sjx_fail_sys(c->err, ENOMEM, entry, "directory list");
    }
    char *p = (char *)(d->x + nx);
    for (size_t i = 0; i < nx; i++) {
      size_t nl = strlen(x[i].name) + 1;
      d->x[i].name = memcpy(p, x[i].name, nl);
      p += nl;
      d->x[i].value = memcpy(p, x[i].value, x[i].len);
      d->x[i].len = x[i].len;
      p += x[i].len;
    }
    d->nx = nx;
  }
  d->seq = c->seq++;
  d->depth = len ? 1 : 0;
  for (size_t i = 0; i < len; i++)
    d->depth += path[i] == '/';
  d->dev = st->st_dev, d->ino = st->st_ino;
  if (dir && c->held_dirs < c->max_held_dirs) {
    d->dir = sjx_dir_ref(dir);
    c->held_dirs++;
  }
  d->mode = mode, d->uid = uid, d->gid = gid;
  d->mtime = mtime, d->nsec = nsec;
  c->dirs_len++;
  return 0;
}

static int cmp_dirs(const void *a, const void *b) {
  const struct sjx_dirmeta *x = a, *y = b;
  if (x->depth != y->depth)
    return x->depth > y->depth ? -1 : 1;         /* deepest first */
  return x->seq < y->seq ? -1 : x->seq > y->seq; /* then in archive order */
}

int sjx_finish_dirs(struct sjx_ctx *c) {
  if (sjx_drain(c) < 0)
    return -1;
  if (c->dirs_len)
    qsort(c->dirs, c->dirs_len, sizeof *c->dirs, cmp_dirs);
  for (size_t i = 0; i < c->dirs_len; i++) {
    struct sjx_dirmeta *d = &c->dirs[i];
    struct sjx_meta m = {d->mode, d->uid, d->gid, d->mtime, d->nsec, d->x, d->nx};
    struct stat st;
    int fd;
    if (d->dir) {
      /* held since it was made: this very directory, or (replaced by
       * a later entry) an unlinked one, where nothing shows */
      fd = d->dir->fd;
    } else {
      fd = *d->path ? sjx_openat2(c->root_fd, d->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW,
                                  RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
                    : dup(c->root_fd);
      if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
          continue; /* replaced by a later entry */
        return sjx_fail_sys(c->err, errno, d->path, "open directory");
      }
      if (fstat(fd, &st) < 0 || st.st_ino != d->ino || st.st_dev != d->dev) {
        close(fd); /* not the directory we made */
        continue;
      }
    }
    int rc = 0;
    if (sjx_need_chown(c, &m) && fchown(fd, m.uid, m.gid) < 0)
      rc = sjx_fail_sys(c->err, errno, d->path, "chown");
    if (!rc)
      rc = sjx_set_xattrs(c, fd, -1, NULL, &m, d->path, c->err);
    if (!rc && fchmod(fd, m.mode) < 0)
      rc = sjx_fail_sys(c->err, errno, d->path, "chmod");
    if (!rc && m.mtime != INT64_MIN) {
      struct timespec ts[2];
      sjx_times_of(&m, ts);
      if (futimens(fd, ts) < 0)
        rc = sjx_fail_sys(c->err, errno, d->path, "set mtime");
    }
    if (d->dir) {
      sjx_dir_unref(d->dir);
      d->dir = NULL;
    } else {
      close(fd);
    }
    if (rc)
      return -1;
  }
  return 0;
}

void sjx_dirmeta_free(struct sjx_ctx *c) {
  for (size_t i = 0; i < c->dirs_len; i++) {
    free(c->dirs[i].path);
    free(c->dirs[i].x);
    sjx_dir_unref(c->dirs[i].dir);
  }
  free(c->dirs);
}
