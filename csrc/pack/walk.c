/* The tree walk: every entry below the root, depth first, each directory's
 * names sorted byte-wise (a directory before its contents, its opaque
 * marker and whiteouts before its other entries, as the OCI spec advises).
 *
 * Nothing is reached through a path: each directory is opened from its
 * parent's fd (O_NOFOLLOW), each file from its directory's fd, and checked
 * to be the inode the listing saw; so a symlink is written as a symlink and
 * never followed, and an entry swapped while the walk runs is an error, not
 * a file from elsewhere.  xattrs are read through the open fd, or for
 * symlinks, devices and fifos (which cannot be opened for that) through
 * /proc/self/fd/<dir fd>/<name> with the l*xattr calls, which resolve the
 * name in that directory without following it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "internal.h"

#define OVL_TRUSTED "trusted.overlay."
#define OVL_USER    "user.overlay."
#define WH_PREFIX   ".wh."
#define WH_OPAQUE   ".wh..wh..opq"
#define DENTS_BUF   (64 * 1024)

/* An overlayfs whiteout: a character device 0:0. */
#define IS_WHITEOUT(st) (S_ISCHR((st)->st_mode) && (st)->st_rdev == 0)

struct ent {
  const char *name;
  struct stat st;
};

struct link { /* the first path of an inode with more than one link */
  dev_t dev;
  ino_t ino;
  char *path;
};

struct walk {
  struct sjp_stream *s;
  struct sjp_tar *tar;
  struct sj_pack_stats *st;
  struct sj_pack_error *err;
  int clamp;
  int64_t epoch;
  int one_fs;
  dev_t root_dev;
  int proc; /* /proc/self/fd is there: xattrs of symlinks and devices */

  char path[SJP_PATH_MAX + 16]; /* the entry being written, relative */
  size_t plen;

  uint8_t *dents;

  /* xattrs of the current entry */
  char *xnames;
  size_t xnames_cap;
  uint8_t *xvals;
  size_t xvals_cap, xvals_len;
  struct sjp_xattr *xa;
  size_t nxa, xa_cap;
  size_t *xoff; /* value offsets, until xvals stops moving */
  size_t xoff_cap;

  struct link *links;
  size_t links_cap, links_len;

  char target[SJP_PATH_MAX + 1];
};

/* ---- paths ---- */

/* path = <dir path> + prefix + name (+ "/"); -1 if too long */
static int push_name(struct walk *w, size_t dirlen, const char *prefix, const char *name,
                     int slash) {
  size_t pl = strlen(prefix), nl = strlen(name);
  if (dirlen + pl + nl + 1 >= SJP_PATH_MAX) {
    w->path[dirlen] = 0;
    return sjp_fail(w->err, ENAMETOOLONG, w->path,
                    "name too long for a layer: \"%s%.40s...\" (%zu bytes)", prefix, name,
                    dirlen + pl + nl);
  }
  memcpy(w->path + dirlen, prefix, pl);
  memcpy(w->path + dirlen + pl, name, nl);
  w->plen = dirlen + pl + nl;
  if (slash)
    w->path[w->plen++] = '/';
  w->path[w->plen] = 0;
  return 0;
}

static int64_t mtime_of(const struct walk *w, const struct stat *st) {
  int64_t t = st->st_mtim.tv_sec;
  return w->clamp && t > w->epoch ? w->epoch : t;
}

static int changed(struct walk *w, int e) {
  return sjp_fail(w->err, e ? e : EAGAIN, w->path, "changed while the layer was being written (%s)",
                  e == ENOENT ? "removed" : "replaced");
}

/* ---- hardlinks ---- */

static size_t link_slot(const struct walk *w, dev_t dev, ino_t ino) {
  uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ULL ^ (uint64_t)dev * 0xc2b2ae3d27d4eb4fULL;
  size_t mask = w->links_cap - 1, i = (size_t)(h >> 17) & mask;
  while (w->links[i].path && (w->links[i].dev != dev || w->links[i].ino != ino))
    i = (i + 1) & mask;
  return i;
}

/* The first path of st's inode, or NULL after remembering this one as it. */
static const char *link_first(struct walk *w, const struct stat *st, const char *path) {
  if (w->links_len * 2 >= w->links_cap) {
    size_t cap = w->links_cap ? w->links_cap * 2 : 256;
    struct link *old = w->links, *n = calloc(cap, sizeof *n);
    if (!n)
      return (const char *)-1;
    size_t oldcap = w->links_cap;
    w->links = n, w->links_cap = cap;
    for (size_t i = 0; i < oldcap; i++)
      if (old[i].path)
        w->links[link_slot(w, old[i].dev, old[i].ino)] = old[i];
    free(old);
  }
  size_t i = link_slot(w, st->st_dev, st->st_ino);
  if (w->links[i].path)
    return w->links[i].path;
  char *p = strdup(path);
  if (!p)
    return (const char *)-1;
  w->links[i] = (struct link){st->st_dev, st->st_ino, p};
  w->links_len++;
  return NULL;
}

/* ---- xattrs ---- */

static int grow(void **buf, size_t *cap, size_t need) {
  if (need <= *cap)
    return 0;
  size_t c = *cap ? *cap : 256;
  while (c < need)
    c *= 2;
  void *n = realloc(*buf, c);
  if (!n)
    return -1;
  *buf = n, *cap = c;
  return 0;
}

static ssize_t x_list(int fd, const char *proc, char *buf, size_t cap) {
  return fd >= 0 ? flistxattr(fd, buf, cap) : llistxattr(proc, buf, cap);
}

static ssize_t x_get(int fd, const char *proc, const char *name, void *buf, size_t cap) {
  return fd >= 0 ? fgetxattr(fd, name, buf, cap) : lgetxattr(proc, name, buf, cap);
}

static int cmp_xattr(const void *a, const void *b) {
  return strcmp(((const struct sjp_xattr *)a)->name, ((const struct sjp_xattr *)b)->name);
}

/* The entry's xattrs into w->xa (sorted by name), without overlayfs's own
 * and without security.selinux (a label of this host, not of the image).
 * fd: the entry open, or -1 to go through /proc (dfd, name). */
static int read_xattrs(struct walk *w, int fd, int dfd, const char *name, int *opaque) {
  char proc[64 + 256] = "";
  ssize_t n;

  w->nxa = 0;
  w->xvals_len = 0;
  if (opaque)
    *opaque = 0;
  if (fd < 0) {
    if (!w->proc)
      return 0;
    snprintf(proc, sizeof proc, "/proc/self/fd/%d/%s", dfd, name);
  }
  /* (a size of 0 would ask for the size instead: there is always room) */
  if (grow((void **)&w->xnames, &w->xnames_cap, 1024) < 0)
    return sjp_fail_sys(w->err, ENOMEM, w->path, "xattrs");
  while ((n = x_list(fd, proc, w->xnames, w->xnames_cap)) < 0) {
    if (errno == ENOTSUP)
      return 0;
    ssize_t need = errno == ERANGE ? x_list(fd, proc, NULL, 0) : -1;
    if (need < 0)
      return sjp_fail_sys(w->err, errno, w->path, "listing xattrs");
    if (grow((void **)&w->xnames, &w->xnames_cap, (size_t)need + 1) < 0)
      return sjp_fail_sys(w->err, ENOMEM, w->path, "xattrs");
  }
  if (!n)
    return 0;
  for (char *x = w->xnames; x < w->xnames + n; x += strlen(x) + 1) {
    const char *ovl = !strncmp(x, OVL_TRUSTED, sizeof OVL_TRUSTED - 1) ? x + sizeof OVL_TRUSTED - 1
                      : !strncmp(x, OVL_USER, sizeof OVL_USER - 1)     ? x + sizeof OVL_USER - 1
                                                                       : NULL;
    int is_opaque = ovl && !strcmp(ovl, "opaque");
    if (ovl && (!strcmp(ovl, "redirect") || !strcmp(ovl, "metacopy")))
      return sjp_fail(w->err, ENOTSUP, w->path,
                      "has the overlayfs xattr %s: a directory renamed (redirect_dir)"
                      " or a metadata-only copy (metacopy) cannot be written as a"
                      " layer; mount the overlay with redirect_dir=off,metacopy=off",
                      x);
    if ((ovl && !is_opaque) || !strcmp(x, "security.selinux"))
      continue;
    if (!is_opaque && strchr(x, '='))
      return sjp_fail(w->err, EINVAL, w->path,
                      "xattr name \"%.200s\" holds '=': a PAX record cannot carry it", x);
    ssize_t v;
    for (;;) {
      if (grow((void **)&w->xvals, &w->xvals_cap, w->xvals_len + 256) < 0)
        return sjp_fail_sys(w->err, ENOMEM, w->path, "xattrs");
      v = x_get(fd, proc, x, w->xvals + w->xvals_len, w->xvals_cap - w->xvals_len);
      if (v >= 0 || errno != ERANGE)
        break;
      ssize_t need = x_get(fd, proc, x, NULL, 0);
      if (need < 0)
        break;
      if (grow((void **)&w->xvals, &w->xvals_cap, w->xvals_len + (size_t)need + 1) < 0)
        return sjp_fail_sys(w->err, ENOMEM, w->path, "xattrs");
    }
    if (v < 0 && errno == ENODATA) /* removed since the listing */
      continue;
    if (v < 0)
      return sjp_fail_sys(w->err, errno, w->path, "reading an xattr");
    if (is_opaque) {
      if (opaque && v == 1 && w->xvals[w->xvals_len] == 'y')
        *opaque = 1;
      continue;
    }
    if (grow((void **)&w->xa, &w->xa_cap, (w->nxa + 1) * sizeof *w->xa) < 0 ||
        grow((void **)&w->xoff, &w->xoff_cap, (w->nxa + 1) * sizeof *w->xoff) < 0)
      return sjp_fail_sys(w->err, ENOMEM, w->path, "xattrs");
    w->xa[w->nxa] = (struct sjp_xattr){x, NULL, (size_t)v};
    w->xoff[w->nxa++] = w->xvals_len;
    w->xvals_len += (size_t)v;
  }
  for (size_t i = 0; i < w->nxa; i++)
    w->xa[i].value = w->xvals + w->xoff[i];
  qsort(w->xa, w->nxa, sizeof *w->xa, cmp_xattr);
  return 0;
}

/* ---- entries ---- */

static int header(struct walk *w, char type, const struct stat *st, uint64_t size, const char *link,
                  int with_xattrs) {
  struct sjp_hdr h = {
      .name = w->path,
      .type = type,
      .mode = st->st_mode & 07777,
      .uid = st->st_uid,
      .gid = st->st_gid,
      .size = size,
      .mtime = mtime_of(w, st),
      .link = link,
      .xattrs = with_xattrs ? w->xa : NULL,
      .n_xattrs = with_xattrs ? w->nxa : 0,
  };
  if (type == '3' || type == '4') {
    h.devmajor = major(st->st_rdev);
    h.devminor = minor(st->st_rdev);
  }
  w->st->entries++;
  return sjp_tar_header(w->tar, w->s, &h, w->err);
}

static int same_inode(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
         (a->st_mode & S_IFMT) == (b->st_mode & S_IFMT);
}

static int walk_dir(struct walk *w, int dfd);

static int emit_dir(struct walk *w, int dfd, const struct ent *e) {
  struct stat st;
  int opaque, rc = -1;
  int fd = openat(dfd, e->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT || errno == ELOOP || errno == ENOTDIR
               ? changed(w, errno)
               : sjp_fail_sys(w->err, errno, w->path, "opening the directory");
  if (fstat(fd, &st) < 0) {
    sjp_fail_sys(w->err, errno, w->path, "stat");
    goto out;
  }
  if (!same_inode(&st, &e->st)) {
    changed(w, 0);
    goto out;
  }
  if (read_xattrs(w, fd, dfd, e->name, &opaque) < 0 || header(w, '5', &st, 0, NULL, 1) < 0)
    goto out;
  size_t dirlen = w->plen;
  if (opaque) {
    /* the marker hides what lower layers have in the directory */
    if (push_name(w, dirlen, WH_OPAQUE, "", 0) < 0 || header(w, '0', &st, 0, NULL, 0) < 0)
      goto out;
    w->st->opaques++;
    w->path[w->plen = dirlen] = 0;
  }
  if (w->one_fs && st.st_dev != w->root_dev) {
    w->st->mounts_skipped++;
    rc = 0;
    goto out;
  }
  rc = walk_dir(w, fd);
out:
  close(fd);
  return rc;
}

/* The regular file the listing saw, open for reading.  A device or fifo swapped in
 * meanwhile is never opened for real (opening some devices does things): the name is
 * pinned with O_PATH and checked first, then that very inode is opened through
 * /proc/self/fd.  Without /proc: a direct open, O_NONBLOCK (a fifo does not wait). */
static int open_file(struct walk *w, int dfd, const struct ent *e, struct stat *st) {
  int flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, fd = -1, pin = -1;
  char proc[64];
  if (w->proc) {
    pin = openat(dfd, e->name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (pin < 0)
      return errno == ENOENT ? changed(w, errno) : sjp_fail_sys(w->err, errno, w->path, "open");
    if (fstat(pin, st) < 0) {
      sjp_fail_sys(w->err, errno, w->path, "stat");
      close(pin);
      return -1;
    }
    if (!same_inode(st, &e->st)) {
      close(pin);
      return changed(w, 0);
    }
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", pin);
    flags &= ~O_NOFOLLOW; /* the magic link itself is followed, to the pinned inode */
  }
  for (int noatime = 1; noatime >= 0 && fd < 0; noatime--) {
    int f = flags | (noatime ? O_NOATIME : 0);
    fd = pin >= 0 ? open(proc, f) : openat(dfd, e->name, f);
    /* O_NOATIME: only for the owner (or CAP_FOWNER) */
    if (fd < 0 && (errno != EPERM || !noatime))
      break;
  }
  int er = errno;
  if (pin >= 0)
    close(pin);
  if (fd < 0)
    return er == ENOENT || er == ELOOP ? changed(w, er) : sjp_fail_sys(w->err, er, w->path, "open");
  if (fstat(fd, st) < 0) {
    sjp_fail_sys(w->err, errno, w->path, "stat");
    close(fd);
    return -1;
  }
  if (!same_inode(st, &e->st)) {
    close(fd);
    return changed(w, 0);
  }
  return fd;
}

static int emit_file(struct walk *w, int dfd, const struct ent *e) {
  struct stat st, after;
  int rc = -1;
  int fd = open_file(w, dfd, e, &st);
  if (fd < 0)
    return -1;
  if (read_xattrs(w, fd, dfd, e->name, NULL) < 0 ||
      header(w, '0', &st, (uint64_t)st.st_size, NULL, 1) < 0)
    goto out;
  uint64_t left = (uint64_t)st.st_size;
  while (left) {
    uint8_t *p;
    size_t room;
    if (sjp_reserve(w->s, &p, &room, w->err) < 0)
      goto out;
    ssize_t n = read(fd, p, left < room ? (size_t)left : room);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      sjp_fail_sys(w->err, errno, w->path, "read");
      goto out;
    }
    if (n == 0) {
      sjp_fail(w->err, EAGAIN, w->path,
               "changed while the layer was being written (shrank by %llu bytes)",
               (unsigned long long)left);
      goto out;
    }
    sjp_commit(w->s, (size_t)n);
    left -= (uint64_t)n;
  }
  if (sjp_pad(w->s, w->err) < 0)
    goto out;
  if (fstat(fd, &after) < 0) {
    sjp_fail_sys(w->err, errno, w->path, "stat");
    goto out;
  }
  if (after.st_size != st.st_size || after.st_mtim.tv_sec != st.st_mtim.tv_sec ||
      after.st_mtim.tv_nsec != st.st_mtim.tv_nsec) {
    sjp_fail(w->err, EAGAIN, w->path, "changed while the layer was being written (written to)");
    goto out;
  }
  w->st->files++;
  w->st->file_bytes += (uint64_t)st.st_size;
  rc = 0;
out:
  close(fd);
  return rc;
}

static int emit_symlink(struct walk *w, int dfd, const struct ent *e) {
  ssize_t n = readlinkat(dfd, e->name, w->target, sizeof w->target);
  if (n < 0)
    return errno == ENOENT || errno == EINVAL ? changed(w, errno)
                                              : sjp_fail_sys(w->err, errno, w->path, "readlink");
  if ((size_t)n >= sizeof w->target)
    return sjp_fail(w->err, ENAMETOOLONG, w->path, "symlink target too long");
  if (n == 0)
    return sjp_fail(w->err, EINVAL, w->path, "empty symlink target");
  w->target[n] = 0;
  if (read_xattrs(w, -1, dfd, e->name, NULL) < 0)
    return -1;
  return header(w, '2', &e->st, 0, w->target, 1);
}

static int emit_entry(struct walk *w, int dfd, const struct ent *e, size_t dirlen) {
  const struct stat *st = &e->st;
  int dir = S_ISDIR(st->st_mode);
  if (push_name(w, dirlen, "", e->name, dir) < 0)
    return -1;
  if (dir)
    return emit_dir(w, dfd, e);
  if (S_ISSOCK(st->st_mode)) { /* tar has no socket type (GNU tar skips them too) */
    w->st->sockets_skipped++;
    return 0;
  }
  if (st->st_nlink > 1) {
    const char *first = link_first(w, st, w->path);
    if (first == (const char *)-1)
      return sjp_fail_sys(w->err, ENOMEM, w->path, "hardlinks");
    if (first) {
      w->st->hardlinks++;
      return header(w, '1', st, 0, first, 0);
    }
  }
  switch (st->st_mode & S_IFMT) {
  case S_IFREG:
    return emit_file(w, dfd, e);
  case S_IFLNK:
    return emit_symlink(w, dfd, e);
  case S_IFCHR:
  case S_IFBLK:
  case S_IFIFO:
    if (read_xattrs(w, -1, dfd, e->name, NULL) < 0)
      return -1;
    return header(w, S_ISCHR(st->st_mode) ? '3' : S_ISBLK(st->st_mode) ? '4' : '6', st, 0, NULL, 1);
  default:
    return sjp_fail(w->err, ENOTSUP, w->path, "unknown file type 0%o",
                    (unsigned)(st->st_mode & S_IFMT));
  }
}

/* ---- directories ---- */

static int cmp_ent(const void *a, const void *b) {
  return strcmp(((const struct ent *)a)->name, ((const struct ent *)b)->name);
}

struct listing {
  char *names;
  size_t names_len, names_cap;
  struct ent *ents;
  size_t n, cap;
};

static void listing_free(struct listing *l) {
  free(l->names);
  free(l->ents);
}

/* The directory's names (not . and ..) with their lstat. */
static int list_dir(struct walk *w, int dfd, struct listing *l) {
  size_t *offs = NULL, noffs = 0, capoffs = 0;
  for (;;) {
    ssize_t n = getdents64(dfd, w->dents, DENTS_BUF);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      free(offs);
      return sjp_fail_sys(w->err, errno, w->path, "reading the directory");
    }
    if (n == 0)
      break;
    for (ssize_t off = 0; off < n;) {
      struct dirent64 *d = (struct dirent64 *)(w->dents + off);
      off += d->d_reclen;
      const char *nm = d->d_name;
      if (nm[0] == '.' && (!nm[1] || (nm[1] == '.' && !nm[2])))
        continue;
      size_t len = strlen(nm) + 1;
      if (grow((void **)&l->names, &l->names_cap, l->names_len + len) < 0 ||
          grow((void **)&offs, &capoffs, (noffs + 1) * sizeof *offs) < 0) {
        free(offs);
        return sjp_fail_sys(w->err, ENOMEM, w->path, "directory listing");
      }
      memcpy(l->names + l->names_len, nm, len);
      offs[noffs++] = l->names_len;
      l->names_len += len;
    }
  }
  if (noffs && !(l->ents = malloc(noffs * sizeof *l->ents))) {
    free(offs);
    return sjp_fail_sys(w->err, ENOMEM, w->path, "directory listing");
  }
  for (size_t i = 0; i < noffs; i++) {
    struct ent *e = &l->ents[l->n];
    e->name = l->names + offs[i];
    if (fstatat(dfd, e->name, &e->st, AT_SYMLINK_NOFOLLOW) < 0) {
      int er = errno;
      free(offs);
      push_name(w, w->plen, "", e->name, 0);
      return er == ENOENT ? changed(w, er) : sjp_fail_sys(w->err, er, w->path, "stat");
    }
    l->n++;
  }
  free(offs);
  qsort(l->ents, l->n, sizeof *l->ents, cmp_ent);
  return 0;
}

static int walk_dir(struct walk *w, int dfd) {
  struct listing l = {0};
  size_t dirlen = w->plen;
  int rc = list_dir(w, dfd, &l);
  /* whiteouts first: ".wh.x" sorts by x among them */
  for (size_t i = 0; !rc && i < l.n; i++) {
    const struct ent *e = &l.ents[i];
    if (!IS_WHITEOUT(&e->st))
      continue;
    rc = push_name(w, dirlen, WH_PREFIX, e->name, 0);
    if (!rc) {
      w->st->whiteouts++;
      struct stat st = e->st;
      st.st_mode = (st.st_mode & 07777) | S_IFREG;
      rc = header(w, '0', &st, 0, NULL, 0);
    }
  }
  for (size_t i = 0; !rc && i < l.n; i++)
    if (!IS_WHITEOUT(&l.ents[i].st))
      rc = emit_entry(w, dfd, &l.ents[i], dirlen);
  w->path[w->plen = dirlen] = 0;
  listing_free(&l);
  return rc;
}

int sjp_walk(const struct sj_pack_opts *o, struct sjp_stream *s, struct sj_pack_stats *st,
             struct sj_pack_error *err) {
  struct walk w = {
      .s = s,
      .st = st,
      .err = err,
      .clamp = o->source_date_epoch != SJP_NO_EPOCH,
      .epoch = o->source_date_epoch,
      .one_fs = o->one_file_system,
      .proc = access("/proc/self/fd", X_OK) == 0,
  };
  struct stat rst;
  int rc = -1;
  /* our own fd: the listing moves its offset */
  int fd = openat(o->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return sjp_fail_sys(err, errno, "", "opening the tree");
  if (fstat(fd, &rst) < 0) {
    sjp_fail_sys(err, errno, "", "stat");
    goto out;
  }
  w.root_dev = rst.st_dev;
  if (!(w.tar = sjp_tar_new()) || !(w.dents = malloc(DENTS_BUF))) {
    sjp_fail_sys(err, ENOMEM, NULL, "the walk");
    goto out;
  }
  rc = walk_dir(&w, fd);
out:
  close(fd);
  sjp_tar_free(w.tar);
  free(w.dents);
  free(w.xnames);
  free(w.xvals);
  free(w.xa);
  free(w.xoff);
  for (size_t i = 0; i < w.links_cap; i++)
    free(w.links[i].path);
  free(w.links);
  return rc;
}
