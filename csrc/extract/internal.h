/* Internals of the layer extractor, shared by its files (from the top):
 *   driver.c   sj_extract(): tar entries in, each applied by write.c
 *   write.c    applying an entry: replacing, whiteouts, the extraction context
 *   resolve.c  parent directories: in-layer, or through lower layers
 *   dirmeta.c  directories' metadata, applied at the end
 *   pool.c     writer threads for regular files and symlinks
 *   inode.c    one inode with its metadata; the writer jobs
 *   names.c    the set of names created in this layer
 *   dirref.c   refcounted directory handles, openat2
 *   tar.c      tar header parsing (ustar, pax, GNU)
 *   stream.c   read + decompress + hash on their own threads
 *   sha256.c   SHA-256 (the layer writer, csrc/pack/, uses it too)
 *   error.c    the first error, naming its entry
 * Names internal to the extractor start with sjx_; sj_extract (extract.h)
 * is its entry point.
 */
#ifndef SANGJA_EXTRACT_INT_H
#define SANGJA_EXTRACT_INT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "extract.h"

#define SJX_BLOCK        512
#define SJX_OPAQUE_XATTR "trusted.overlay.opaque"

/* An overlayfs whiteout: a character device 0:0 (what ".wh.x" becomes). */
#define SJX_IS_WHITEOUT(st) (S_ISCHR((st)->st_mode) && (st)->st_rdev == 0)

/* ---- errors (error.c) ---- */

/* Fill *e (unless already set) with `layer entry "<entry>": <fmt>` (or
 * `layer data: <fmt>` without an entry) and return -1. */
int sjx_fail(struct sj_extract_error *e, int err, const char *entry, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same, ending in ": <strerror(err)>". */
int sjx_fail_sys(struct sj_extract_error *e, int err, const char *entry, const char *what);

/* ---- the decompressed stream (stream.c) ---- */

struct sjx_stream;

struct sjx_chunk {
  const uint8_t *data;
  size_t len; /* a multiple of SJX_BLOCK, except maybe the last chunk */
  unsigned slot;
};

/* hash_thread: hash on a thread of its own; else sjx_stream_next does it. */
int sjx_stream_start(struct sjx_stream **out, const struct sj_extract_opts *o, int hash_thread,
                     struct sj_extract_error *err);
/* 1: *c is the next chunk; 0: end of data; -1: the stream failed (*err).
 * The caller reads to the end (0) before sjx_stream_finish(s, 0, ...). */
int sjx_stream_next(struct sjx_stream *s, struct sjx_chunk *c, struct sj_extract_error *err);
void sjx_stream_release(struct sjx_stream *s, struct sjx_chunk *c);
/* Stops (abort) or waits for the end of the stream, joins the threads,
 * fills the digests and byte counts, frees s.  -1 if the stream failed. */
int sjx_stream_finish(struct sjx_stream *s, int abort, struct sj_extract_stats *st,
                      struct sj_extract_error *err);

/* ---- the tar reader (tar.c) ---- */

struct sjx_xattr {
  const char *name;
  const uint8_t *value;
  size_t len;
};

struct sjx_entry {
  char type;        /* '0' file, '1' hardlink, '2' symlink, '3' chr, '4' blk, '5' dir, '6' fifo */
  const char *name; /* as archived (for messages) */
  const char *path; /* normalized: no "./", no trailing "/", "" = the root */
  const char *link; /* symlink target as archived; hardlink target normalized */
  uint32_t mode;    /* permission bits incl. setuid/setgid/sticky */
  uint32_t uid, gid;
  uint64_t size; /* content bytes following the header (regular files) */
  int64_t mtime;
  long mtime_nsec;
  uint32_t devmajor, devminor;
  struct sjx_xattr *xattrs;
  size_t n_xattrs;
};

struct sjx_tar;

struct sjx_tar *sjx_tar_new(struct sjx_stream *s);
void sjx_tar_free(struct sjx_tar *t);
/* 1: *e is the next entry (valid until the next call); 0: end of archive;
 * -1: error.  Skips the entry's unread content first. */
int sjx_tar_next(struct sjx_tar *t, struct sjx_entry **e, struct sj_extract_error *err);
/* The entry's content, in pieces: 1 (with p, n), 0 at its end, -1 error. */
int sjx_tar_data(struct sjx_tar *t, const uint8_t **p, size_t *n, struct sj_extract_error *err);
/* Reads the rest of the stream (padding after the end of the archive: it
 * counts in the diff_id). */
int sjx_tar_drain(struct sjx_tar *t, struct sj_extract_error *err);

/* ---- directory handles (dirref.c) ---- */

/* An open directory of the layer, shared (refcounted) by the driver's
 * cache and by queued writer jobs. */
struct sjx_dir {
  int fd;
  int refs;    /* atomic */
  uint64_t id; /* dev/inode hash: keys the names created under it */
};

struct stat;
uint64_t sjx_dir_id(const struct stat *st);
/* Both take over fd (closed on failure); _open also returns its stat. */
struct sjx_dir *sjx_dir_new(int fd, struct sj_extract_error *err, const char *entry);
struct sjx_dir *sjx_dir_open(int fd, struct stat *st, struct sj_extract_error *err,
                             const char *entry);
struct sjx_dir *sjx_dir_ref(struct sjx_dir *d);
void sjx_dir_unref(struct sjx_dir *d);
int sjx_openat2(int dirfd, const char *path, int flags, uint64_t resolve);

/* ---- parent directories (resolve.c) ---- */

struct sjx_ctx;

/* The directory that holds `path`'s last component, created (like mkdir -p)
 * if needed; *base points into path.  Never leaves the layer root. */
int sjx_resolve_parent(struct sjx_ctx *c, const char *entry, const char *path, struct sjx_dir **dir,
                       const char **base);
/* The path (in this layer, without symlinks through lower layers) of the
 * directory the last resolve returned; valid until the next resolve. */
const char *sjx_resolved_path(const struct sjx_ctx *c);
/* The same without creating anything: for hardlink targets. */
int sjx_lookup_parent(struct sjx_ctx *c, const char *entry, const char *path, struct sjx_dir **dir,
                      const char **base);
/* Opens the directory `path` itself (for opaque markers), creating it. */
int sjx_resolve_dir(struct sjx_ctx *c, const char *entry, const char *path, struct sjx_dir **dir);
void sjx_resolve_forget(struct sjx_ctx *c); /* drop the cache after removals */
/* The directory d, just made at `path` (as the archive names it; `canon`:
 * where it is in this layer), becomes the cached parent. */
void sjx_resolve_prime(struct sjx_ctx *c, const char *path, const char *canon, struct sjx_dir *d);

/* ---- writer threads (pool.c) ---- */

struct sjx_pool;

/* A regular file or symlink to create in dir (O_EXCL: the name is new). */
struct sjx_job {
  struct sjx_job *next;
  struct sjx_dir *dir;
  char type; /* '0' or '2' */
  uint32_t mode, uid, gid;
  int64_t mtime;
  long mtime_nsec;
  size_t size;   /* content bytes in data */
  uint8_t *data; /* file content (or the symlink target, NUL-terminated) */
  char *name;    /* last component */
  char *entry;   /* for messages */
  struct sjx_xattr *xattrs;
  size_t n_xattrs;
  /* one allocation holds all of the above */
};

struct sjx_pool *sjx_pool_new(struct sjx_ctx *c, int nthreads);
/* Takes ownership of j; may block while the queue is full.  -1 if a worker
 * has failed (its error is in the ctx). */
int sjx_pool_submit(struct sjx_pool *p, struct sjx_job *j);
/* Waits until every queued job is done.  -1 if one failed. */
int sjx_pool_drain(struct sjx_pool *p);
void sjx_pool_free(struct sjx_pool *p);
size_t sjx_pool_max_job_bytes(void);
/* Waits for the writer threads (their error becomes c->err). */
int sjx_drain(struct sjx_ctx *c);
/* After a drain or submit failed: the writer's error becomes c->err; -1. */
int sjx_writer_failed(struct sjx_ctx *c);

/* ---- one inode and its metadata; the writer jobs (inode.c) ---- */

struct sjx_meta {
  uint32_t mode, uid, gid;
  int64_t mtime;
  long nsec;
  const struct sjx_xattr *x;
  size_t nx;
};

/* owner, xattrs (fd >= 0: on the open file; else dirfd/name, not following a
 * symlink) */
int sjx_set_xattrs(struct sjx_ctx *c, int fd, int dirfd, const char *name, const struct sjx_meta *m,
                   const char *entry, struct sj_extract_error *err);
int sjx_need_chown(const struct sjx_ctx *c, const struct sjx_meta *m);
struct timespec;
void sjx_times_of(const struct sjx_meta *m, struct timespec ts[2]);
/* owner, xattrs, mode, times of an open regular file */
int sjx_finish_fd(struct sjx_ctx *c, int fd, const struct sjx_meta *m, const char *entry,
                  struct sj_extract_error *err);
/* the same by name, for symlinks (no mode) and devices */
int sjx_finish_at(struct sjx_ctx *c, int dirfd, const char *name, const struct sjx_meta *m,
                  int is_link, const char *entry, struct sj_extract_error *err);
int sjx_write_all(int fd, const uint8_t *p, size_t n);
/* A new regular file (O_EXCL, never through a symlink). */
int sjx_create_file(int dirfd, const char *name, uint32_t mode);
struct sjx_entry;
/* One allocation: the job, its name, entry, xattrs and room for datalen
 * content bytes. */
struct sjx_job *sjx_job_new(struct sjx_dir *dir, const char *base, const struct sjx_entry *e,
                            size_t datalen);
/* Used by the writer threads as well (errors go to *err). */
int sjx_write_job(struct sjx_ctx *c, const struct sjx_job *j, struct sj_extract_error *err);

/* ---- the set of names created in this layer (names.c) ---- */

/* keyed by (directory id, name) */
uint64_t sjx_name_key(uint64_t dir_id, const char *name);
int sjx_names_add(struct sjx_ctx *c, uint64_t key);
int sjx_names_has(const struct sjx_ctx *c, uint64_t key);

/* ---- the extraction context, applying entries (write.c) ---- */

struct sjx_dirmeta; /* directory metadata applied at the end */

struct sjx_ctx {
  int root_fd;
  const int *lower_fds;
  int n_lowers;
  mode_t umask;
  uid_t euid;
  gid_t egid;

  struct sjx_pool *pool; /* NULL: write everything on the driver thread */

  /* resolve cache: the last parent directory */
  char *cache_path;
  size_t cache_cap;
  struct sjx_dir *cache_dir;
  char *cache_canon; /* where the walk put it, if not at cache_path */

  /* hashes of (directory, name) created in this layer: a hit means "may
   * exist" and forces the careful path (drain the writers, look) */
  uint64_t *names;
  size_t names_cap, names_len;

  struct sjx_dirmeta *dirs;
  size_t dirs_len, dirs_cap;
  size_t held_dirs, max_held_dirs; /* directory fds kept for the final pass */

  struct sj_extract_stats *stats;

  gid_t new_gid; /* the group new inodes get */

  struct sj_extract_error *err; /* the driver thread's errors */
  pthread_mutex_t err_lock;
  struct sj_extract_error werr; /* the first writer thread error */
  int failed;                   /* atomic: werr is set */
  uint64_t seq;                 /* directory records, in order */
};

int sjx_ctx_init(struct sjx_ctx *c, const struct sj_extract_opts *o, struct sj_extract_stats *st,
                 struct sj_extract_error *err);
void sjx_ctx_destroy(struct sjx_ctx *c);

/* One tar entry: creates, replaces, whites out.  For regular files reads
 * the content from t. */
int sjx_apply(struct sjx_ctx *c, struct sjx_tar *t, const struct sjx_entry *e);

/* ---- directories' metadata (dirmeta.c) ---- */

/* Remembers a directory's metadata for sjx_finish_dirs (mtime INT64_MIN:
 * leave it).  dir: its open handle, kept (within max_held_dirs) so that it
 * needs no lookup then; else st identifies it: its inode is checked. */
int sjx_record_dir(struct sjx_ctx *c, const char *path, size_t len, const struct stat *st,
                   struct sjx_dir *dir, uint32_t mode, uint32_t uid, uint32_t gid, int64_t mtime,
                   long nsec, const struct sjx_xattr *x, size_t nx, const char *entry);
/* After the last entry: directory owners, modes, xattrs, mtimes. */
int sjx_finish_dirs(struct sjx_ctx *c);
void sjx_dirmeta_free(struct sjx_ctx *c);

#endif
