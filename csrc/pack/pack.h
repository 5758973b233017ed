/* The layer writer: a directory tree in, one compressed OCI layer blob out,
 * in a single streaming pass -- the mirror of the extractor (extract.h).
 *
 *   - the tree: an overlay upper dir or a whole root, walked through
 *     directory fds (openat, O_NOFOLLOW): a symlink is stored as a symlink
 *     and never followed, whatever it points at
 *   - tar: ustar headers, PAX records where ustar falls short (long names
 *     and link targets, big sizes, ids, times, device numbers) and for
 *     xattrs (SCHILY.xattr.*, incl. security.capability); hardlinks as
 *     links; devices, fifos; names sorted byte-wise within each directory,
 *     a directory before its contents
 *   - overlayfs whiteouts become OCI ones: a char device 0:0 "x" -> ".wh.x",
 *     a directory with trusted.overlay.opaque=y (or user.overlay.opaque=y)
 *     -> the directory plus "dir/.wh..wh..opq"; overlayfs's own xattrs are
 *     never written
 *   - mtimes clamped to source_date_epoch when asked; no atime, ctime,
 *     user or group names: the same tree gives the same bytes
 *   - compression: gzip (ISA-L igzip, or zlib), zstd, or none
 *   - sha256 of the tar stream (the diff_id) and of the compressed stream
 *     (the blob digest), computed on the way
 *
 * sj_pack() is thread-safe and may run without the GIL: it calls no Python
 * and keeps no global state.
 */
#ifndef SANGJA_PACK_H
#define SANGJA_PACK_H

#include <stdint.h>

/* sj_pack_opts.compression */
enum {
  SJP_COMP_NONE = 1,
  SJP_COMP_GZIP = 2,
  SJP_COMP_ZSTD = 3,
};

/* sj_pack_opts.gzip_impl */
enum {
  SJP_GZIP_ISAL = 0, /* ISA-L igzip: levels 0-3, ~20x zlib -6 here */
  SJP_GZIP_ZLIB = 1, /* zlib: levels 1-9 */
};

#define SJP_LEVEL_DEFAULT (-1000) /* isal 1, zlib 6, zstd 3 (zstd has negative levels) */
#define SJP_NO_EPOCH      INT64_MIN

struct sj_pack_opts {
  int root_fd; /* the tree, O_DIRECTORY; its own entry is not written */
  int out_fd;  /* the blob, written sequentially */
  int compression;
  int gzip_impl;
  int level;                 /* SJP_LEVEL_DEFAULT or the implementation's level */
  int64_t source_date_epoch; /* SJP_NO_EPOCH, or the latest mtime written */
  int one_file_system;       /* don't descend into directories on another file system */
};

struct sj_pack_stats {
  uint64_t entries;          /* tar entries (whiteouts and opaque markers incl.) */
  uint64_t files;            /* regular files with content */
  uint64_t file_bytes;       /* their content */
  uint64_t hardlinks;        /* entries written as links to an earlier one */
  uint64_t whiteouts;        /* char 0:0 -> ".wh.x" */
  uint64_t opaques;          /* opaque directories -> ".wh..wh..opq" */
  uint64_t sockets_skipped;  /* tar has no socket type */
  uint64_t mounts_skipped;   /* one_file_system: directories not descended into */
  uint64_t tar_bytes;        /* the uncompressed stream */
  uint64_t compressed_bytes; /* what was written to out_fd */
  char diff_id[72];          /* "sha256:<hex>" of the tar stream */
  char digest[72];           /* "sha256:<hex>" of the bytes written */
};

#define SJP_PATH_MAX 4096 /* a name in the layer (as the extractor's limit) */
#define SJP_MSG_MAX  (SJP_PATH_MAX + 512)

struct sj_pack_error {
  int err;                 /* errno-style code */
  char path[SJP_PATH_MAX]; /* the path in the tree concerned, or "" */
  char msg[SJP_MSG_MAX];   /* one line, names the path */
};

/* Returns 0 and fills *stats, or -1 and fills *err.  On failure out_fd
 * holds a partial blob: the caller removes it. */
int sj_pack(const struct sj_pack_opts *opts, struct sj_pack_stats *stats,
            struct sj_pack_error *err);

#endif
