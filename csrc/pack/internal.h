/* Internals of the layer writer, shared by its files (from the top):
 *   driver.c  sj_pack(): the walk feeds the stream
 *   walk.c    the tree walk: entries, xattrs, hardlinks, whiteouts
 *   tar.c     tar headers (ustar + PAX records)
 *   stream.c  the tar stream: hashed, compressed on a thread, written
 *   error.c   the first error, naming its path
 * SHA-256 is the extractor's (csrc/extract/sha256.c).  Names internal to the
 * writer start with sjp_; sj_pack (pack.h) is its entry point.
 */
#ifndef SANGJA_PACK_INT_H
#define SANGJA_PACK_INT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pack.h"

#define SJP_BLOCK 512

/* ---- errors (error.c) ---- */

/* Fill *e (unless already set) with `<path>: <fmt>` (or `<fmt>` without a
 * path) and return -1. */
int sjp_fail(struct sj_pack_error *e, int err, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same, ending in ": <strerror(err)>". */
int sjp_fail_sys(struct sj_pack_error *e, int err, const char *path, const char *what);

/* ---- the tar stream (stream.c) ---- */

struct sjp_stream;

int sjp_stream_start(struct sjp_stream **out, const struct sj_pack_opts *o,
                     struct sj_pack_error *err);
/* Room for the next bytes of the stream: *p, *avail (> 0, a multiple of
 * SJP_BLOCK while everything written so far is).  -1 if the compressor
 * has failed (its error goes to *err). */
int sjp_reserve(struct sjp_stream *s, uint8_t **p, size_t *avail, struct sj_pack_error *err);
/* n bytes of the room given by sjp_reserve are written. */
void sjp_commit(struct sjp_stream *s, size_t n);
/* Copies n bytes into the stream. */
int sjp_write(struct sjp_stream *s, const void *data, size_t n, struct sj_pack_error *err);
/* Zeros up to the next block boundary. */
int sjp_pad(struct sjp_stream *s, struct sj_pack_error *err);
uint64_t sjp_offset(const struct sjp_stream *s);
/* Ends the stream (abort: drop it), joins the compressor, fills the
 * digests and byte counts (unless abort), frees s.  -1 on failure. */
int sjp_stream_finish(struct sjp_stream *s, int abort, struct sj_pack_stats *st,
                      struct sj_pack_error *err);

/* ---- tar headers (tar.c) ---- */

struct sjp_xattr {
  const char *name;
  const uint8_t *value;
  size_t len;
};

struct sjp_hdr {
  const char *name; /* as written: relative, a directory's ends in "/" */
  char type;        /* '0' file, '1' hardlink, '2' symlink, '3' chr, '4' blk, '5' dir, '6' fifo */
  uint32_t mode;    /* permission bits incl. setuid/setgid/sticky */
  uint32_t uid, gid;
  uint64_t size; /* content bytes that follow (regular files) */
  int64_t mtime;
  const char *link; /* link target (types '1', '2'), else NULL */
  uint32_t devmajor, devminor;
  const struct sjp_xattr *xattrs;
  size_t n_xattrs;
};

struct sjp_tar; /* the PAX record buffer, reused between headers */

struct sjp_tar *sjp_tar_new(void);
void sjp_tar_free(struct sjp_tar *t);
/* Writes the header (a PAX 'x' header first where needed); the caller then
 * writes h->size content bytes and sjp_pad(). */
int sjp_tar_header(struct sjp_tar *t, struct sjp_stream *s, const struct sjp_hdr *h,
                   struct sj_pack_error *err);
/* The two zero blocks that end an archive. */
int sjp_tar_end(struct sjp_stream *s, struct sj_pack_error *err);

/* ---- the walk (walk.c) ---- */

int sjp_walk(const struct sj_pack_opts *o, struct sjp_stream *s, struct sj_pack_stats *st,
             struct sj_pack_error *err);

#endif
