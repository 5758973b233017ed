/* sj_pack(): the walk feeds the stream; the stream compresses, hashes and
 * writes on a thread of its own. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

int sj_pack(const struct sj_pack_opts *o, struct sj_pack_stats *st, struct sj_pack_error *err) {
  struct sjp_stream *s = NULL;

  memset(st, 0, sizeof *st);
  err->err = 0;
  err->path[0] = 0;
  err->msg[0] = 0;
  if (o->compression != SJP_COMP_NONE && o->compression != SJP_COMP_GZIP &&
      o->compression != SJP_COMP_ZSTD)
    return sjp_fail(err, EINVAL, NULL, "unknown compression %d", o->compression);
  if (sjp_stream_start(&s, o, err) < 0)
    return -1;
  if (sjp_walk(o, s, st, err) < 0 || sjp_tar_end(s, err) < 0) {
    sjp_stream_finish(s, 1, NULL, NULL);
    return -1;
  }
  return sjp_stream_finish(s, 0, st, err);
}
