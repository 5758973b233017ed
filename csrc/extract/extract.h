/* The layer extractor: one compressed OCI layer blob in, an unpacked
 * overlayfs-ready directory out, in a single streaming pass.
 *
 *   - input: gzip (ISA-L, or zlib), zstd or plain tar, told apart by magic
 *   - tar: ustar, pax (path, linkpath, size, uid, gid, mtime, xattrs) and
 *     GNU (long names, long link targets, base-256 numbers)
 *   - OCI whiteouts become overlayfs whiteouts: ".wh.x" -> char device 0:0
 *     named x, ".wh..wh..opq" -> trusted.overlay.opaque=y on the directory
 *   - every write is relative to the layer root fd and confined to it
 *   - sha256 of the compressed bytes (the layer digest) and of the tar
 *     stream (the diff_id) are computed on the way
 *
 * sj_extract() is thread-safe and may run without the GIL: it calls no
 * Python and keeps no global state.
 */
#ifndef SANGJA_EXTRACT_H
#define SANGJA_EXTRACT_H

#include <stdint.h>

/* sj_extract_opts.compression and sj_extract_stats.compression */
enum {
  SJ_COMP_AUTO = 0, /* by magic bytes */
  SJ_COMP_NONE = 1,
  SJ_COMP_GZIP = 2,
  SJ_COMP_ZSTD = 3,
};

/* sj_extract_opts.gzip_impl */
enum {
  SJ_GZIP_ISAL = 0, /* ISA-L igzip: about twice as fast as zlib here */
  SJ_GZIP_ZLIB = 1,
};

#define SJ_EXTRACT_DEFAULT_MAX_BYTES   (32ULL << 30) /* 32 GiB uncompressed */
#define SJ_EXTRACT_DEFAULT_MAX_ENTRIES (4U << 20)    /* 4 Mi entries */

struct sj_extract_opts {
  int in_fd;   /* the blob, read sequentially to EOF */
  int root_fd; /* the (empty) layer directory, O_DIRECTORY */
  /* Optional: the unpacked parent layers, nearest first.  Used only to
   * resolve parent directories this layer does not contain itself (a
   * file under "bin/" when a lower layer has bin -> usr/bin), the way
   * the merged overlay will see them.  Never written. */
  const int *lower_fds;
  int n_lowers;
  uint64_t max_bytes;   /* uncompressed tar stream; 0 = default */
  uint64_t max_entries; /* tar entries; 0 = default */
  int workers;          /* writer threads: 0 = none, <0 = default */
  int compression;      /* SJ_COMP_* (AUTO detects) */
  int gzip_impl;        /* SJ_GZIP_* */
  int hash_thread;      /* hashing on a thread of its own: 1, or 0 (by the
                           caller's thread), <0 = by the number of CPUs */
};

struct sj_extract_stats {
  uint64_t entries;          /* tar entries applied (incl. whiteouts) */
  uint64_t compressed_bytes; /* bytes read from in_fd */
  uint64_t tar_bytes;        /* uncompressed stream length */
  uint64_t file_bytes;       /* regular file content written */
  uint64_t whiteouts;        /* ".wh.x" turned into 0:0 devices */
  uint64_t opaques;          /* ".wh..wh..opq" markers */
  uint64_t xattrs_skipped;   /* xattrs the filesystem refused (ENOTSUP) */
  int compression;           /* SJ_COMP_* actually found */
  char digest[72];           /* "sha256:<hex>" of the compressed bytes */
  char diff_id[72];          /* "sha256:<hex>" of the tar stream */
};

#define SJ_EXTRACT_ENTRY_MAX 4096
#define SJ_EXTRACT_MSG_MAX   (SJ_EXTRACT_ENTRY_MAX + 512)

struct sj_extract_error {
  int err;                          /* errno-style code */
  char entry[SJ_EXTRACT_ENTRY_MAX]; /* the tar entry concerned, or "" */
  char msg[SJ_EXTRACT_MSG_MAX];     /* one line, names the entry */
};

/* Returns 0 and fills *stats, or -1 and fills *err.  On failure the
 * directory may hold a partial layer: the caller removes it. */
int sj_extract(const struct sj_extract_opts *opts, struct sj_extract_stats *stats,
               struct sj_extract_error *err);

#endif
