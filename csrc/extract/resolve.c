/* Parent directories of tar entries, confined to the layer root.
 *
 * Fast path: openat2(RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS) of the whole
 * parent path.  Symlinks inside the layer are followed, but one that is
 * absolute or climbs above the root makes the kernel fail with EXDEV, and
 * the entry is refused: writing through such a link is what a hostile layer
 * does, and never what a layer built from a real tree needs.
 *
 * Slow path (a component is missing, or is one of our whiteouts): walk
 * the path a component at a time the way the merged overlay will see it -
 * this layer first, then the lower layers (nearest first) with whiteouts
 * and opaque directories honoured - and create the missing directories in
 * this layer.  A directory that exists below is created with its owner,
 * mode, mtime and xattrs (containerd does the same); a symlink below (bin ->
 * usr/bin on merged-/usr systems) is followed, under the same rules as the
 * kernel's.  Without lower layers this is plain "mkdir -p".
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "internal.h"

#define MAX_SYMLINKS 40

const char *sjx_resolved_path(const struct sjx_ctx *c) {
  return c->cache_canon ? c->cache_canon : c->cache_path;
}

void sjx_resolve_forget(struct sjx_ctx *c) {
  sjx_dir_unref(c->cache_dir);
  c->cache_dir = NULL;
}

void sjx_resolve_prime(struct sjx_ctx *c, const char *path, const char *canon, struct sjx_dir *d) {
  size_t len = strlen(path);
  sjx_resolve_forget(c);
  free(c->cache_canon);
  c->cache_canon = NULL;
  if (len + 1 > c->cache_cap) {
    char *n = realloc(c->cache_path, len + 1);
    if (!n)
      return; /* no cache: the next lookup opens it */
    c->cache_path = n, c->cache_cap = len + 1;
  }
  if (strcmp(canon, path) && !(c->cache_canon = strdup(canon)))
    return;
  memcpy(c->cache_path, path, len + 1);
  c->cache_dir = sjx_dir_ref(d);
}

/* ---- the merged-view walk ---- */

struct frame {
  int fd0;     /* the directory in this layer, or -1: to be created */
  int *lower;  /* per lower layer: its directory here, or -1 */
  int replace; /* this layer has a whiteout with this name: unlink it first */
  int opaque;  /* the new directory must hide the lower ones */
  int src;     /* lower layer to copy the directory's metadata from, or -1 */
  char name[256];
};

struct walk {
  struct sjx_ctx *c;
  const char *entry;
  struct frame *f;
  size_t depth, cap; /* f[0] is the root; f[depth] the current directory */
  int nl;
};

static void frame_close(struct walk *w, struct frame *f, int is_root) {
  if (!is_root) {
    if (f->fd0 >= 0)
      close(f->fd0);
    for (int i = 0; i < w->nl; i++)
      if (f->lower[i] >= 0)
        close(f->lower[i]);
  }
  free(f->lower);
}

static void walk_free(struct walk *w) {
  for (size_t i = 0; w->f && i <= w->depth; i++)
    frame_close(w, &w->f[i], i == 0);
  free(w->f);
}

static struct frame *push(struct walk *w, const char *name, size_t len) {
  if (w->depth + 1 >= w->cap) {
    size_t cap = w->cap ? w->cap * 2 : 16;
    struct frame *n = realloc(w->f, cap * sizeof *n);
    if (!n)
      return NULL;
    w->f = n, w->cap = cap;
  }
  struct frame *f = &w->f[++w->depth];
  memset(f, 0, sizeof *f);
  f->fd0 = -1;
  f->src = -1;
  memcpy(f->name, name, len);
  f->name[len] = 0;
  f->lower = malloc(sizeof(int) * (size_t)(w->nl ? w->nl : 1));
  if (!f->lower) {
    w->depth--;
    return NULL;
  }
  for (int i = 0; i < w->nl; i++)
    f->lower[i] = -1;
  return f;
}

static int is_opaque(int dirfd) {
  char v[2];
  return fgetxattr(dirfd, SJX_OPAQUE_XATTR, v, sizeof v) == 1 && v[0] == 'y';
}

static int open_dir_at(int dirfd, const char *name) {
  return openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* What the merged view has under the current directory as `name`. */
enum { FOUND_NONE, FOUND_DIR, FOUND_SYMLINK, FOUND_OTHER };

/* Looks `name` up in the lower layers that make up the current directory;
 * fills the new frame's lower fds for a directory, or *layer for a symlink. */
static int lookup_lowers(struct walk *w, const struct frame *cur, const char *name,
                         struct frame *nf, int *layer) {
  int found = FOUND_NONE;
  for (int i = 0; i < w->nl; i++) {
    struct stat st;
    if (cur->lower[i] < 0)
      continue;
    if (fstatat(cur->lower[i], name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      if (errno == ENOENT)
        continue;
      return sjx_fail_sys(w->c->err, errno, w->entry, "looking up a lower layer");
    }
    if (SJX_IS_WHITEOUT(&st))
      break;
    if (!S_ISDIR(st.st_mode)) {
      if (found == FOUND_NONE) {
        found = S_ISLNK(st.st_mode) ? FOUND_SYMLINK : FOUND_OTHER;
        *layer = i;
      }
      break;
    }
    int fd = open_dir_at(cur->lower[i], name);
    if (fd < 0)
      return sjx_fail_sys(w->c->err, errno, w->entry, "opening a lower layer");
    nf->lower[i] = fd;
    if (found == FOUND_NONE) {
      found = FOUND_DIR;
      nf->src = i;
    }
    if (is_opaque(fd))
      break;
  }
  return found;
}

/* Replaces the walked part of the path with a symlink's target: the rest
 * becomes target + "/" + rest[pos..]. */
static int expand_link(struct walk *w, int dirfd, const char *name, char **rest, size_t *restlen,
                       size_t pos, int *nlinks) {
  char target[4096];
  ssize_t n = readlinkat(dirfd, name, target, sizeof target);
  if (n < 0)
    return sjx_fail_sys(w->c->err, errno, w->entry, "readlink");
  if ((size_t)n >= sizeof target || ++*nlinks > MAX_SYMLINKS)
    return sjx_fail(w->c->err, ELOOP, w->entry, "too many levels of symbolic links");
  if (n && target[0] == '/')
    return sjx_fail(w->c->err, EXDEV, w->entry,
                    "path escapes the layer root (through symlink \"%s\" -> \"%.*s\")", name,
                    (int)n, target);
  size_t tail = pos < *restlen ? *restlen - pos : 0;
  char *nr = malloc((size_t)n + 1 + tail + 1);
  if (!nr)
    return sjx_fail_sys(w->c->err, ENOMEM, w->entry, "resolve");
  memcpy(nr, target, (size_t)n);
  nr[n] = '/';
  memcpy(nr + n + 1, *rest + (*restlen - tail), tail);
  nr[n + 1 + tail] = 0;
  free(*rest);
  *rest = nr;
  *restlen = (size_t)n + 1 + tail;
  return 0;
}

static int copy_xattrs(struct walk *w, int from, int to) {
  char names[8192], value[65536];
  ssize_t n = flistxattr(from, names, sizeof names);
  if (n < 0)
    return errno == ENOTSUP ? 0 : sjx_fail_sys(w->c->err, errno, w->entry, "listxattr");
  for (char *p = names; p < names + n; p += strlen(p) + 1) {
    if (!strncmp(p, "trusted.overlay.", 16))
      continue; /* the lower layer's own whiteout state */
    ssize_t v = fgetxattr(from, p, value, sizeof value);
    if (v < 0)
      continue;
    if (fsetxattr(to, p, value, (size_t)v, 0) < 0 && errno != ENOTSUP)
      return sjx_fail_sys(w->c->err, errno, w->entry, "setxattr");
  }
  return 0;
}

/* Creates the directories of the walk that this layer lacks. */
static int materialize(struct walk *w) {
  struct sjx_ctx *c = w->c;
  char path[4096];
  size_t plen = 0;
  for (size_t i = 1; i <= w->depth; i++) {
    struct frame *f = &w->f[i], *parent = &w->f[i - 1];
    size_t nlen = strlen(f->name);
    if (plen + nlen + 2 > sizeof path)
      return sjx_fail(c->err, ENAMETOOLONG, w->entry, "name too long");
    if (plen)
      path[plen++] = '/';
    memcpy(path + plen, f->name, nlen + 1);
    plen += nlen;
    if (f->fd0 >= 0)
      continue;
    if (f->replace && unlinkat(parent->fd0, f->name, 0) < 0 && errno != ENOENT)
      return sjx_fail_sys(c->err, errno, w->entry, "replacing a whiteout");
    if (mkdirat(parent->fd0, f->name, 0700) < 0)
      return sjx_fail_sys(c->err, errno, w->entry, "mkdir (parent directory)");
    f->fd0 = open_dir_at(parent->fd0, f->name);
    if (f->fd0 < 0)
      return sjx_fail_sys(c->err, errno, w->entry, "open (parent directory)");
    if (f->opaque && fsetxattr(f->fd0, SJX_OPAQUE_XATTR, "y", 1, 0) < 0)
      return sjx_fail_sys(c->err, errno, w->entry, "setxattr " SJX_OPAQUE_XATTR);

    struct stat pst;
    if (fstat(parent->fd0, &pst) < 0)
      return sjx_fail_sys(c->err, errno, w->entry, "fstat");
    if (sjx_names_add(c, sjx_name_key(sjx_dir_id(&pst), f->name)) < 0)
      return sjx_fail_sys(c->err, ENOMEM, w->entry, "name set");

    struct stat st;
    if (f->src >= 0 && fstat(f->lower[f->src], &st) == 0) {
      if (copy_xattrs(w, f->lower[f->src], f->fd0) < 0)
        return -1;
      struct stat own;
      if (fstat(f->fd0, &own) < 0)
        return sjx_fail_sys(c->err, errno, w->entry, "fstat");
      if (sjx_record_dir(c, path, plen, &own, NULL, st.st_mode & 07777, st.st_uid, st.st_gid,
                         st.st_mtim.tv_sec, st.st_mtim.tv_nsec, NULL, 0, w->entry) < 0)
        return -1;
    } else {
      if (fstat(f->fd0, &st) < 0)
        return sjx_fail_sys(c->err, errno, w->entry, "fstat");
      if (sjx_record_dir(c, path, plen, &st, NULL, 0755, c->euid, c->new_gid, INT64_MIN, 0, NULL, 0,
                         w->entry) < 0)
        return -1;
    }
  }
  return 0;
}

static int canon_path(struct walk *w) {
  size_t len = 0;
  for (size_t i = 1; i <= w->depth; i++)
    len += strlen(w->f[i].name) + 1;
  char *p = malloc(len + 1), *q = p;
  if (!p)
    return sjx_fail_sys(w->c->err, ENOMEM, w->entry, "resolve");
  for (size_t i = 1; i <= w->depth; i++) {
    if (i > 1)
      *q++ = '/';
    q = stpcpy(q, w->f[i].name);
  }
  *q = 0;
  free(w->c->cache_canon);
  w->c->cache_canon = p;
  return 0;
}

static int walk(struct sjx_ctx *c, const char *entry, const char *p, size_t len, int create,
                int *out_fd) {
  struct walk w = {.c = c, .entry = entry, .nl = c->n_lowers};
  int rc = -1, nlinks = 0;
  size_t restlen = len;
  char *rest = malloc(len + 1);
  if (!rest)
    return sjx_fail_sys(c->err, ENOMEM, entry, "resolve");
  memcpy(rest, p, len);
  rest[len] = 0;

  /* f[0]: the roots (not ours to close) */
  w.f = calloc(16, sizeof *w.f);
  w.cap = 16;
  if (!w.f || !(w.f[0].lower = malloc(sizeof(int) * (size_t)(w.nl ? w.nl : 1)))) {
    sjx_fail_sys(c->err, ENOMEM, entry, "resolve");
    goto out;
  }
  w.f[0].fd0 = c->root_fd;
  for (int i = 0; i < w.nl; i++)
    w.f[0].lower[i] = c->lower_fds[i];

  size_t pos = 0;
  while (pos < restlen) {
    size_t end = pos;
    while (end < restlen && rest[end] != '/')
      end++;
    char name[256];
    size_t nlen = end - pos;
    if (nlen > 255) {
      sjx_fail(c->err, ENAMETOOLONG, entry, "path component too long");
      goto out;
    }
    memcpy(name, rest + pos, nlen);
    name[nlen] = 0;
    pos = end + 1;
    if (!nlen || !strcmp(name, "."))
      continue;
    if (!strcmp(name, "..")) {
      if (w.depth == 0) {
        sjx_fail(c->err, EXDEV, entry, "path escapes the layer root (through a symlink)");
        goto out;
      }
      frame_close(&w, &w.f[w.depth], 0);
      w.depth--;
      continue;
    }

    struct frame *cur = &w.f[w.depth];
    struct stat st;
    int have0 = 0;
    if (cur->fd0 >= 0) {
      if (fstatat(cur->fd0, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
        have0 = 1;
      else if (errno != ENOENT) {
        sjx_fail_sys(c->err, errno, entry, "lookup");
        goto out;
      }
    }
    if (have0 && S_ISLNK(st.st_mode)) {
      if (expand_link(&w, cur->fd0, name, &rest, &restlen, pos, &nlinks) < 0)
        goto out;
      pos = 0;
      continue;
    }
    if (have0 && !S_ISDIR(st.st_mode) && !SJX_IS_WHITEOUT(&st)) {
      sjx_fail(c->err, ENOTDIR, entry, "parent \"%s\" is not a directory", name);
      goto out;
    }

    struct frame *nf = push(&w, name, nlen);
    if (!nf) {
      sjx_fail_sys(c->err, ENOMEM, entry, "resolve");
      goto out;
    }
    cur = &w.f[w.depth - 1];
    if (have0 && S_ISDIR(st.st_mode)) {
      nf->fd0 = open_dir_at(cur->fd0, name);
      if (nf->fd0 < 0) {
        sjx_fail_sys(c->err, errno, entry, "open");
        goto out;
      }
      if (w.nl && !is_opaque(nf->fd0)) {
        int layer;
        if (lookup_lowers(&w, cur, name, nf, &layer) < 0)
          goto out;
        nf->src = -1; /* exists here: keep its own metadata */
      }
      continue;
    }
    if (have0) { /* our whiteout: the lower entry is deleted, start afresh */
      nf->replace = nf->opaque = 1;
    } else if (w.nl) {
      int layer = -1;
      int found = lookup_lowers(&w, cur, name, nf, &layer);
      if (found < 0)
        goto out;
      if (found == FOUND_SYMLINK) {
        frame_close(&w, nf, 0);
        w.depth--;
        if (expand_link(&w, cur->lower[layer], name, &rest, &restlen, pos, &nlinks) < 0)
          goto out;
        pos = 0;
        continue;
      }
    }
    if (!create) {
      sjx_fail(c->err, ENOENT, entry, "\"%s\" is not in this layer", name);
      goto out;
    }
  }
  if (create && materialize(&w) < 0)
    goto out;
  if (canon_path(&w) < 0)
    goto out;
  *out_fd = w.depth ? dup(w.f[w.depth].fd0) : dup(c->root_fd);
  if (*out_fd < 0)
    sjx_fail_sys(c->err, errno, entry, "dup");
  else
    rc = 0;
out:
  walk_free(&w);
  free(rest);
  return rc;
}

/* ---- entry points ---- */

static int get_dir(struct sjx_ctx *c, const char *entry, const char *p, size_t len, int create,
                   struct sjx_dir **out) {
  if (c->cache_dir && c->cache_path && strlen(c->cache_path) == len &&
      !memcmp(c->cache_path, p, len)) {
    *out = sjx_dir_ref(c->cache_dir);
    return 0;
  }
  if (len + 1 > c->cache_cap) {
    char *n = realloc(c->cache_path, len + 1);
    if (!n)
      return sjx_fail_sys(c->err, ENOMEM, entry, "resolve");
    c->cache_path = n, c->cache_cap = len + 1;
  }
  sjx_resolve_forget(c);
  free(c->cache_canon);
  c->cache_canon = NULL;
  memcpy(c->cache_path, p, len);
  c->cache_path[len] = 0;

  int fd, drained = 0;
  if (!len) {
    fd = dup(c->root_fd);
  } else {
  again:
    fd = sjx_openat2(c->root_fd, c->cache_path, O_RDONLY | O_DIRECTORY,
                     RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
    /* missing: maybe a symlink still queued for a writer; wait, look again.
     * (Success needs no wait: writers only add names, never replace.) */
    if (fd < 0 && (errno == ENOENT || errno == ENOTDIR) && c->pool && !drained) {
      if (sjx_drain(c) < 0)
        return -1;
      drained = 1;
      goto again;
    }
    if (fd < 0 && errno == EXDEV)
      return sjx_fail(c->err, EXDEV, entry, "path escapes the layer root (through a symlink)");
    if (fd < 0 && errno == ELOOP)
      return sjx_fail(c->err, ELOOP, entry, "too many levels of symbolic links");
    if (fd < 0 && errno != ENOENT && errno != ENOTDIR)
      return sjx_fail_sys(c->err, errno, entry, "open parent directory");
    if (fd < 0 && walk(c, entry, c->cache_path, len, create, &fd) < 0)
      return -1;
  }
  if (fd < 0)
    return sjx_fail_sys(c->err, errno, entry, "open parent directory");
  struct sjx_dir *d = sjx_dir_new(fd, c->err, entry);
  if (!d)
    return -1;
  c->cache_dir = d;
  *out = sjx_dir_ref(d);
  return 0;
}

static void split(const char *path, size_t *plen, const char **base) {
  const char *slash = strrchr(path, '/');
  *plen = slash ? (size_t)(slash - path) : 0;
  *base = slash ? slash + 1 : path;
}

int sjx_resolve_parent(struct sjx_ctx *c, const char *entry, const char *path, struct sjx_dir **dir,
                       const char **base) {
  size_t plen;
  split(path, &plen, base);
  return get_dir(c, entry, path, plen, 1, dir);
}

int sjx_lookup_parent(struct sjx_ctx *c, const char *entry, const char *path, struct sjx_dir **dir,
                      const char **base) {
  size_t plen;
  split(path, &plen, base);
  return get_dir(c, entry, path, plen, 0, dir);
}

int sjx_resolve_dir(struct sjx_ctx *c, const char *entry, const char *path, struct sjx_dir **dir) {
  return get_dir(c, entry, path, strlen(path), 1, dir);
}
