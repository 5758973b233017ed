/* Applying tar entries to the layer directory.
 *
 * Every name is created with an *at() call in a directory fd obtained by
 * resolve.c (confined to the root), with O_EXCL/O_NOFOLLOW or
 * their equivalents, so an existing symlink is never written through.
 *
 * Replacing: the layer starts empty, so a name exists only if this layer
 * created it.  A hash set of (directory, name) for everything created
 * (names.c) lets the common case - a new name - go straight to creation
 * (possibly on a writer thread, pool.c); a hit drains the writers and looks: a directory over a
 * directory merges, anything else is removed first (recursively for a
 * directory), as the image spec says of entries that change type.
 *
 * Whiteouts (overlayfs form): ".wh.x" -> char device 0:0 "x", unless this
 * layer has "x" itself (whiteouts only hide lower layers); ".wh..wh..opq"
 * -> trusted.overlay.opaque=y on the directory, which hides lower layers
 * and leaves this layer's entries alone whatever their order.  A directory
 * that replaces one of our whiteouts is made opaque for the same reason.
 *
 * Metadata order: data, then owner (chown clears setuid/setgid and file
 * capabilities), then xattrs, then mode, then times (inode.c).  Directories
 * get all of it at the end, deepest first, once nothing more is created in
 * them (dirmeta.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "internal.h"

#define WH_PREFIX     ".wh."
#define WH_META       ".wh..wh."
#define WH_OPAQUE     ".wh..wh..opq"
#define MAX_HELD_DIRS 4096

/* ---- the context ---- */

static mode_t read_umask(void) {
  /* umask() would change it for every thread of the process: read it */
  FILE *f = fopen("/proc/self/status", "re");
  char line[128];
  unsigned m = 07777; /* unknown: always chmod */
  if (!f)
    return m;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "Umask: %o", &m) == 1)
      break;
  fclose(f);
  return (mode_t)m;
}

int sjx_ctx_init(struct sjx_ctx *c, const struct sj_extract_opts *o, struct sj_extract_stats *st,
                 struct sj_extract_error *err) {
  struct stat rst;
  memset(c, 0, sizeof *c);
  c->root_fd = o->root_fd;
  c->lower_fds = o->lower_fds;
  c->n_lowers = o->lower_fds ? o->n_lowers : 0;
  c->umask = read_umask();
  c->euid = geteuid();
  c->egid = getegid();
  c->stats = st;
  c->err = err;
  pthread_mutex_init(&c->err_lock, NULL);
  if (fstat(o->root_fd, &rst) < 0)
    return sjx_fail_sys(err, errno, NULL, "the layer directory");
  if (!S_ISDIR(rst.st_mode))
    return sjx_fail(err, ENOTDIR, NULL, "the layer directory is not a directory");
  /* in a setgid directory new inodes take its group (and new directories
   * the setgid bit, so it propagates) */
  c->new_gid = (rst.st_mode & S_ISGID) ? rst.st_gid : c->egid;
  /* directories held open until the end: a share of the fd limit (the
   * process may unpack several layers at once); the rest are opened again */
  struct rlimit rl;
  c->max_held_dirs = 0;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
    c->max_held_dirs = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur / 8 > MAX_HELD_DIRS
                           ? MAX_HELD_DIRS
                           : (size_t)(rl.rlim_cur / 8);
  return 0;
}

void sjx_ctx_destroy(struct sjx_ctx *c) {
  sjx_resolve_forget(c);
  free(c->cache_path);
  free(c->cache_canon);
  free(c->names);
  sjx_dirmeta_free(c);
  pthread_mutex_destroy(&c->err_lock);
}

/* ---- removing what an entry replaces ---- */

static int rmtree_at(int dirfd, const char *name) {
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return -1;
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return -1;
  }
  int removed;
  do { /* rescan until empty: removing while reading may skip entries */
    struct dirent *de;
    removed = 0;
    rewinddir(d);
    while ((de = readdir(d))) {
      if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
        continue;
      int r = unlinkat(fd, de->d_name, 0);
      if (r < 0 && (errno == EISDIR || errno == EPERM))
        r = rmtree_at(fd, de->d_name);
      if (r < 0) {
        closedir(d);
        return -1;
      }
      removed = 1;
    }
  } while (removed);
  closedir(d);
  return unlinkat(dirfd, name, AT_REMOVEDIR);
}

enum { GONE, MERGE };

/* The name exists (maybe): drains the writers and removes it, unless a
 * directory meets a directory (MERGE).  *was_whiteout if it was ours. */
static int make_room(struct sjx_ctx *c, const struct sjx_entry *e, struct sjx_dir *dir,
                     const char *base, int *was_whiteout) {
  struct stat st;
  if (was_whiteout)
    *was_whiteout = 0;
  if (sjx_drain(c) < 0)
    return -1;
  if (fstatat(dir->fd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno == ENOENT)
      return GONE;
    return sjx_fail_sys(c->err, errno, e->name, "lstat");
  }
  if (S_ISDIR(st.st_mode)) {
    if (e->type == '5')
      return MERGE;
    if (rmtree_at(dir->fd, base) < 0)
      return sjx_fail_sys(c->err, errno, e->name, "removing the directory it replaces");
    sjx_resolve_forget(c); /* the cached directory may have been inside */
    return GONE;
  }
  if (was_whiteout)
    *was_whiteout = SJX_IS_WHITEOUT(&st);
  if (unlinkat(dir->fd, base, 0) < 0)
    return sjx_fail_sys(c->err, errno, e->name, "removing the entry it replaces");
  return GONE;
}

/* ---- directories ---- */

static int join_path(char *out, size_t cap, const char *dir, const char *base) {
  int n = *dir ? snprintf(out, cap, "%s/%s", dir, base) : snprintf(out, cap, "%s", base);
  return n < 0 || (size_t)n >= cap ? -1 : n;
}

static int apply_dir(struct sjx_ctx *c, const struct sjx_entry *e, struct sjx_dir *dir,
                     const char *base) {
  char path[SJ_EXTRACT_ENTRY_MAX];
  struct stat st;
  uint64_t key = sjx_name_key(dir->id, base);
  int n = join_path(path, sizeof path, sjx_resolved_path(c), base);
  if (n < 0)
    return sjx_fail(c->err, ENAMETOOLONG, e->name, "name too long");

  int opaque = 0, r = GONE;
  if (sjx_names_has(c, key) && (r = make_room(c, e, dir, base, &opaque)) < 0)
    return -1;
  if (r == GONE && mkdirat(dir->fd, base, 0700) < 0)
    return sjx_fail_sys(c->err, errno, e->name, "mkdir");
  if (sjx_names_add(c, key) < 0)
    return sjx_fail_sys(c->err, ENOMEM, e->name, "name set");
  /* open: for the opaque marker, for its metadata at the end, and as the
   * parent of the entries that follow (archives list a directory's
   * contents right after it) */
  int fd = openat(dir->fd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return sjx_fail_sys(c->err, errno, e->name, "open directory");
  if (opaque && fsetxattr(fd, SJX_OPAQUE_XATTR, "y", 1, 0) < 0) {
    /* replaces our whiteout: the lower directory stays hidden */
    int err = errno;
    close(fd);
    return sjx_fail_sys(c->err, err, e->name, "setxattr " SJX_OPAQUE_XATTR);
  }
  struct sjx_dir *nd = sjx_dir_open(fd, &st, c->err, e->name);
  if (!nd)
    return -1;
  int rc = sjx_record_dir(c, path, (size_t)n, &st, nd, e->mode, e->uid, e->gid, e->mtime,
                          e->mtime_nsec, e->xattrs, e->n_xattrs, e->name);
  if (!rc)
    sjx_resolve_prime(c, e->path, path, nd);
  sjx_dir_unref(nd);
  return rc;
}

/* ---- the other entry types ---- */

/* Before creating base in dir: a name this layer may already have made
 * is cleared (or, for a directory, merged). */
static int prepare_name(struct sjx_ctx *c, const struct sjx_entry *e, struct sjx_dir *dir,
                        const char *base) {
  uint64_t key = sjx_name_key(dir->id, base);
  if (sjx_names_has(c, key))
    return make_room(c, e, dir, base, NULL) < 0 ? -1 : 0;
  if (sjx_names_add(c, key) < 0)
    return sjx_fail_sys(c->err, ENOMEM, e->name, "name set");
  return 0;
}

static int apply_file(struct sjx_ctx *c, struct sjx_tar *t, const struct sjx_entry *e,
                      struct sjx_dir *dir, const char *base) {
  const uint8_t *p;
  size_t n;
  int r;
  if (prepare_name(c, e, dir, base) < 0)
    return -1;

  if (c->pool && e->size <= sjx_pool_max_job_bytes()) {
    struct sjx_job *j = sjx_job_new(dir, base, e, (size_t)e->size);
    if (!j)
      return sjx_fail_sys(c->err, ENOMEM, e->name, "job");
    size_t got = 0;
    while ((r = sjx_tar_data(t, &p, &n, c->err)) == 1) {
      memcpy(j->data + got, p, n);
      got += n;
    }
    if (r < 0) {
      sjx_dir_unref(j->dir);
      free(j);
      return -1;
    }
    return sjx_pool_submit(c->pool, j) < 0 ? sjx_writer_failed(c) : 0;
  }

  /* on this thread, straight from the stream */
  struct sjx_meta m = {e->mode, e->uid, e->gid, e->mtime, e->mtime_nsec, e->xattrs, e->n_xattrs};
  int fd = sjx_create_file(dir->fd, base, e->mode);
  if (fd < 0)
    return sjx_fail_sys(c->err, errno, e->name, "create");
  int rc = 0;
  while (!rc && (r = sjx_tar_data(t, &p, &n, c->err)) == 1)
    if (sjx_write_all(fd, p, n) < 0)
      rc = sjx_fail_sys(c->err, errno, e->name, "write");
  if (!rc && r < 0)
    rc = -1;
  if (!rc)
    rc = sjx_finish_fd(c, fd, &m, e->name, c->err);
  if (close(fd) < 0 && !rc)
    rc = sjx_fail_sys(c->err, errno, e->name, "close");
  if (!rc) /* the writer threads add to it too */
    __atomic_add_fetch(&c->stats->file_bytes, e->size, __ATOMIC_RELAXED);
  return rc;
}

static int apply_symlink(struct sjx_ctx *c, const struct sjx_entry *e, struct sjx_dir *dir,
                         const char *base) {
  if (prepare_name(c, e, dir, base) < 0)
    return -1;
  size_t len = strlen(e->link);
  struct sjx_job *j = sjx_job_new(dir, base, e, len);
  if (!j)
    return sjx_fail_sys(c->err, ENOMEM, e->name, "job");
  memcpy(j->data, e->link, len);
  j->size = 0; /* no content bytes to account for */
  if (c->pool)
    return sjx_pool_submit(c->pool, j) < 0 ? sjx_writer_failed(c) : 0;
  int rc = sjx_write_job(c, j, c->err);
  sjx_dir_unref(j->dir);
  free(j);
  return rc;
}

static int apply_hardlink(struct sjx_ctx *c, const struct sjx_entry *e, struct sjx_dir *dir,
                          const char *base) {
  struct sjx_dir *tdir;
  const char *tbase;
  struct stat st;
  if (sjx_drain(c) < 0) /* the target may still be queued */
    return -1;
  if (sjx_lookup_parent(c, e->name, e->link, &tdir, &tbase) < 0) {
    if (c->err->err == ENOENT) { /* say it of the whole target, not a component */
      c->err->msg[0] = 0;
      return sjx_fail(c->err, ENOENT, e->name, "hardlink target \"%s\" is not in this layer",
                      e->link);
    }
    return -1;
  }
  int rc = -1;
  if (!*tbase) {
    sjx_fail(c->err, EPERM, e->name, "hardlink to the layer root");
  } else if (fstatat(tdir->fd, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno == ENOENT)
      sjx_fail(c->err, ENOENT, e->name, "hardlink target \"%s\" is not in this layer", e->link);
    else
      sjx_fail_sys(c->err, errno, e->name, "hardlink target");
  } else if (S_ISDIR(st.st_mode)) {
    sjx_fail(c->err, EPERM, e->name, "hardlink to a directory (\"%s\")", e->link);
  } else if (tdir->id == dir->id && !strcmp(tbase, base)) {
    rc = 0; /* a link to itself */
  } else if (prepare_name(c, e, dir, base) == 0) {
    /* flags 0: a link to a symlink links the symlink, never its target */
    if (linkat(tdir->fd, tbase, dir->fd, base, 0) < 0)
      sjx_fail_sys(c->err, errno, e->name, "link");
    else
      rc = 0;
  }
  sjx_dir_unref(tdir);
  return rc;
}

static int apply_node(struct sjx_ctx *c, const struct sjx_entry *e, struct sjx_dir *dir,
                      const char *base) {
  mode_t type = e->type == '3' ? S_IFCHR : e->type == '4' ? S_IFBLK : S_IFIFO;
  struct sjx_meta m = {e->mode, e->uid, e->gid, e->mtime, e->mtime_nsec, e->xattrs, e->n_xattrs};
  if (prepare_name(c, e, dir, base) < 0)
    return -1;
  if (mknodat(dir->fd, base, type | (e->mode & 0777), makedev(e->devmajor, e->devminor)) < 0)
    return sjx_fail_sys(c->err, errno, e->name, "mknod");
  return sjx_finish_at(c, dir->fd, base, &m, 0, e->name, c->err);
}

static int apply_whiteout(struct sjx_ctx *c, const struct sjx_entry *e, struct sjx_dir *dir,
                          const char *victim) {
  struct stat st;
  uint64_t key = sjx_name_key(dir->id, victim);
  if (!*victim || !strcmp(victim, ".") || !strcmp(victim, ".."))
    return sjx_fail(c->err, EBADMSG, e->name, "invalid whiteout name");
  if (sjx_names_has(c, key)) {
    if (sjx_drain(c) < 0)
      return -1;
    if (fstatat(dir->fd, victim, &st, AT_SYMLINK_NOFOLLOW) == 0)
      return 0; /* this layer's own entry: a whiteout only hides lower layers */
  }
  if (mknodat(dir->fd, victim, S_IFCHR, makedev(0, 0)) < 0) {
    if (errno == EEXIST)
      return 0;
    return sjx_fail_sys(c->err, errno, e->name, "mknod (whiteout)");
  }
  if (sjx_names_add(c, key) < 0)
    return sjx_fail_sys(c->err, ENOMEM, e->name, "name set");
  c->stats->whiteouts++;
  return 0;
}

static int apply_opaque(struct sjx_ctx *c, const struct sjx_entry *e) {
  struct sjx_dir *dir;
  char parent[SJ_EXTRACT_ENTRY_MAX];
  const char *slash = strrchr(e->path, '/');
  size_t len = slash ? (size_t)(slash - e->path) : 0;
  memcpy(parent, e->path, len);
  parent[len] = 0;
  if (sjx_resolve_dir(c, e->name, parent, &dir) < 0)
    return -1;
  int rc = 0;
  if (fsetxattr(dir->fd, SJX_OPAQUE_XATTR, "y", 1, 0) < 0)
    rc = sjx_fail_sys(c->err, errno, e->name,
                      "marking the directory opaque (setxattr " SJX_OPAQUE_XATTR ")");
  else
    c->stats->opaques++;
  sjx_dir_unref(dir);
  return rc;
}

/* AUFS bookkeeping (".wh..wh.plnk/...", ".wh..wh.aufs") has no meaning here. */
static int aufs_meta(const char *path) {
  for (const char *p = path; p; p = strchr(p, '/')) {
    if (*p == '/')
      p++;
    if (!strncmp(p, WH_META, sizeof WH_META - 1) && strncmp(p, WH_OPAQUE, sizeof WH_OPAQUE - 1))
      return 1;
  }
  return 0;
}

int sjx_apply(struct sjx_ctx *c, struct sjx_tar *t, const struct sjx_entry *e) {
  struct sjx_dir *dir;
  const char *base;
  struct stat st;

  if (!*e->path) { /* "." or "./": the layer root itself */
    if (e->type != '5')
      return sjx_fail(c->err, EBADMSG, e->name, "the layer root must be a directory");
    if (fstat(c->root_fd, &st) < 0)
      return sjx_fail_sys(c->err, errno, e->name, "fstat");
    return sjx_record_dir(c, "", 0, &st, NULL, e->mode, e->uid, e->gid, e->mtime, e->mtime_nsec,
                          e->xattrs, e->n_xattrs, e->name);
  }
  if (aufs_meta(e->path))
    return 0;
  const char *slash = strrchr(e->path, '/');
  const char *last = slash ? slash + 1 : e->path;
  if (!strcmp(last, WH_OPAQUE))
    return apply_opaque(c, e);

  if (sjx_resolve_parent(c, e->name, e->path, &dir, &base) < 0)
    return -1;
  int rc;
  if (!strncmp(base, WH_PREFIX, sizeof WH_PREFIX - 1))
    rc = apply_whiteout(c, e, dir, base + sizeof WH_PREFIX - 1);
  else
    switch (e->type) {
    case '5':
      rc = apply_dir(c, e, dir, base);
      break;
    case '0':
      rc = apply_file(c, t, e, dir, base);
      break;
    case '2':
      rc = apply_symlink(c, e, dir, base);
      break;
    case '1':
      rc = apply_hardlink(c, e, dir, base);
      break;
    default:
      rc = apply_node(c, e, dir, base);
      break;
    }
  sjx_dir_unref(dir);
  return rc;
}
