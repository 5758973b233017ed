/* sj_extract(): the loop that ties the stream, the tar reader and the
 * writer together. */
#include <errno.h>
#include <linux/magic.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "internal.h"

/* Writer threads, by default: on a disk file system, creating an inode may
 * wait for the disk (ext4 reading its bitmaps and inode tables, or making
 * room in its journal: ~0.7 ms a file on a throttled disk here), and the
 * writers overlap those waits.  In memory (tmpfs) nothing waits, so they
 * only pay off with CPUs to spare: with two, inflating and the driver
 * (which hashes too) keep both busy, and writers only add switching
 * (the 120 MB debian layer: ~0.20 s without, ~0.23 s with two). */
#define DEFAULT_WORKERS             2
#define MIN_CPUS_FOR_MEMORY_WORKERS 3

static int in_memory(int dirfd) {
  struct statfs sf;
  return fstatfs(dirfd, &sf) == 0 && (sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC);
}

/* CPUs this thread may run on */
static int cpus(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) < 0)
    return 1;
  return CPU_COUNT(&set);
}

int sj_extract(const struct sj_extract_opts *o, struct sj_extract_stats *st,
               struct sj_extract_error *err) {
  struct sjx_ctx c;
  struct sjx_stream *s = NULL;
  struct sjx_tar *t = NULL;
  uint64_t max_entries = o->max_entries ? o->max_entries : SJ_EXTRACT_DEFAULT_MAX_ENTRIES;
  int ncpu = o->workers < 0 || o->hash_thread < 0 ? cpus() : 0;
  int workers = o->workers >= 0                                               ? o->workers
                : ncpu < MIN_CPUS_FOR_MEMORY_WORKERS && in_memory(o->root_fd) ? 0
                                                                              : DEFAULT_WORKERS;
  /* inflating takes one CPU; the hashing gets its own with a third */
  int hash_thread = o->hash_thread >= 0 ? o->hash_thread > 0 : ncpu >= 3;

  memset(st, 0, sizeof *st);
  err->err = 0;
  err->entry[0] = 0;
  err->msg[0] = 0;
  if (sjx_ctx_init(&c, o, st, err) < 0)
    goto fail;
  if (sjx_stream_start(&s, o, hash_thread, err) < 0)
    goto fail;
  if (!(t = sjx_tar_new(s))) {
    sjx_fail_sys(err, ENOMEM, NULL, "tar reader");
    goto fail;
  }
  if (workers > 0 && !(c.pool = sjx_pool_new(&c, workers))) {
    sjx_fail_sys(err, EAGAIN, NULL, "starting the writer threads");
    goto fail;
  }

  for (;;) {
    struct sjx_entry *e;
    int r = sjx_tar_next(t, &e, err);
    if (r < 0)
      goto fail;
    if (r == 0)
      break;
    if (++st->entries > max_entries) {
      sjx_fail(err, EFBIG, NULL, "more than %llu entries (the limit)",
               (unsigned long long)max_entries);
      goto fail;
    }
    if (sjx_apply(&c, t, e) < 0)
      goto fail;
  }
  /* the padding after the end-of-archive blocks is part of the diff_id,
   * and a gzip CRC or a truncation shows only at the very end */
  if (sjx_tar_drain(t, err) < 0)
    goto fail;
  if (sjx_finish_dirs(&c) < 0)
    goto fail;
  sjx_pool_free(c.pool);
  c.pool = NULL;
  sjx_tar_free(t);
  t = NULL;
  int rc = sjx_stream_finish(s, 0, st, err);
  s = NULL;
  if (rc < 0)
    goto fail;
  sjx_ctx_destroy(&c);
  return 0;

fail:
  sjx_pool_free(c.pool);
  c.pool = NULL;
  sjx_tar_free(t);
  if (s) {
    /* garbage from a corrupt stream may reach the tar parser before the
     * decompressor notices: its message is the useful one then */
    struct sj_extract_error serr = {0};
    if (sjx_stream_finish(s, 1, NULL, &serr) < 0 && err->err == EBADMSG && !err->entry[0])
      *err = serr;
  }
  sjx_ctx_destroy(&c);
  return -1;
}
