/* Compressed bytes in, tar stream out, both hashed:
 *
 *   inflate thread: read(in_fd) -> input ring -> gunzip/unzstd -> output ring
 *   hashing:        input ring -> sha256 (digest), output ring -> sha256 (diff_id)
 *   caller:         output ring -> tar parser -> files
 *
 * The output ring is NSLOTS chunks of CHUNK bytes; a chunk is reused once
 * it is hashed and the caller has released it.  Every chunk but the last
 * is full, and CHUNK is a multiple of the tar block size, so a tar header
 * never straddles two chunks.  The input ring (NIN buffers) holds the
 * compressed bytes until they are hashed.
 *
 * Hashing is a job, not a thread: whoever holds the hash token (`hashing`)
 * hashes the next chunk, in order, together with the compressed input read
 * so far (sjx_sha256_update2: the two messages side by side, ~1.5x faster
 * than one after the other).  The caller hashes each chunk it takes that
 * nobody has hashed yet; the inflate thread hashes the chunks ahead of the
 * caller whenever it has to wait for room, and whatever is left once it is
 * done.  So on two CPUs the two threads share the ~0.08 s of hashing of a
 * 120 MB layer as their loads allow (a third thread, on two CPUs, costs
 * more in switches and stalls than it overlaps).  With three CPUs or more
 * a hash thread of its own takes all it can.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <isa-l/igzip_lib.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "internal.h"
#include "sha256.h"

#define CHUNK               (256 * 1024)
#define NSLOTS              16
#define INBUF               (256 * 1024)
#define NIN                 16 /* as much compressed as output: room for incompressible data */
#define ZSTD_WINDOW_LOG_MAX 27 /* libzstd's default limit: 128 MiB of window */

struct slot {
  uint8_t *buf;
  size_t len;
  int pending; /* 2: not hashed, not released by the caller; 0: free */
};

struct sjx_stream {
  int fd;
  int comp; /* requested, then found */
  int gzip_impl;
  uint64_t max_bytes;

  pthread_t inflater, hasher;
  int have_inflater, have_hasher;

  pthread_mutex_t lock;
  pthread_cond_t cv_data;  /* a chunk or input buffer was published, or the end */
  pthread_cond_t cv_space; /* a chunk or input buffer was released, or the hash token */
  struct slot slots[NSLOTS];
  uint8_t *arena;
  uint64_t produced;  /* chunks published */
  uint64_t main_next; /* next chunk for the caller */
  uint64_t hash_next; /* next chunk to hash */
  uint8_t *in[NIN];   /* the input ring */
  size_t in_len[NIN];
  int in_pending[NIN];   /* not hashed yet */
  uint64_t in_produced;  /* input buffers filled */
  uint64_t hash_in_next; /* next one to hash */
  int hashing;           /* the hash token is taken */
  int eof;               /* the inflate thread is done */
  int abort;
  int failed; /* the inflate thread failed: perr */
  struct sj_extract_error perr;

  /* inflate thread only */
  const uint8_t *ip; /* unread input */
  size_t ilen;
  int in_eof;
  int member_done;  /* gzip: a member ended, another may follow */
  size_t zstd_hint; /* last ZSTD_decompressStream result: 0 = frame complete */
  struct inflate_state *isal;
  z_stream z;
  int z_ready;
  ZSTD_DCtx *zd;
  uint64_t in_bytes, out_bytes;

  /* the holder of the hash token only */
  size_t hash_in_off; /* bytes of input buffer hash_in_next already hashed */
  struct sjx_sha256 sha_c, sha_u;
};

static const char *comp_name(int comp) {
  return comp == SJ_COMP_GZIP ? "gzip" : comp == SJ_COMP_ZSTD ? "zstd" : "tar";
}

static int hash_some(struct sjx_stream *s);

/* ---- input ---- */

/* Reads at least `want` bytes (or to EOF) into the next input buffer,
 * once it is hashed (hashing meanwhile if nobody is), and publishes them. */
static int read_input(struct sjx_stream *s, size_t want) {
  unsigned slot = (unsigned)(s->in_produced % NIN);
  size_t have = 0;
  pthread_mutex_lock(&s->lock);
  while (s->in_pending[slot] && !s->abort)
    if (!hash_some(s))
      pthread_cond_wait(&s->cv_space, &s->lock);
  pthread_mutex_unlock(&s->lock);
  while (have < want && !s->in_eof) {
    ssize_t n = read(s->fd, s->in[slot] + have, INBUF - have);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return sjx_fail_sys(&s->perr, errno, NULL, "read");
    if (n == 0)
      s->in_eof = 1;
    have += (size_t)n;
  }
  s->ip = s->in[slot];
  s->ilen = have;
  if (have) {
    s->in_bytes += have;
    pthread_mutex_lock(&s->lock);
    s->in_len[slot] = have;
    s->in_pending[slot] = 1;
    s->in_produced++;
    pthread_cond_broadcast(&s->cv_data);
    pthread_mutex_unlock(&s->lock);
  }
  return 0;
}

static int refill(struct sjx_stream *s) {
  return s->ilen || s->in_eof ? 0 : read_input(s, 1);
}

static int detect(struct sjx_stream *s) {
  const uint8_t *p = s->ip;
  size_t n = s->ilen;
  if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b)
    return SJ_COMP_GZIP;
  /* a zstd frame, or a skippable frame (magic 0x184D2A5?) */
  if (n >= 4 && ((p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd) ||
                 ((p[0] & 0xf0) == 0x50 && p[1] == 0x2a && p[2] == 0x4d && p[3] == 0x18)))
    return SJ_COMP_ZSTD;
  if (n >= 6 && !memcmp(p,
                        "\xfd"
                        "7zXZ\0",
                        6))
    return sjx_fail(&s->perr, ENOTSUP, NULL, "xz compression is not supported");
  if (n >= 3 && !memcmp(p, "BZh", 3))
    return sjx_fail(&s->perr, ENOTSUP, NULL, "bzip2 compression is not supported");
  return SJ_COMP_NONE;
}

/* ---- decompressors: fill buf[0..cap) or reach the end ---- */

static int fill_plain(struct sjx_stream *s, uint8_t *buf, size_t cap, size_t *len, int *end) {
  size_t got = 0;
  if (s->ilen) { /* the bytes read for the magic */
    size_t k = s->ilen < cap ? s->ilen : cap;
    memcpy(buf, s->ip, k);
    s->ip += k, s->ilen -= k, got = k;
  }
  while (got < cap && !s->in_eof) {
    ssize_t n = read(s->fd, buf + got, cap - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return sjx_fail_sys(&s->perr, errno, NULL, "read");
    if (n == 0)
      s->in_eof = 1;
    got += (size_t)n;
    s->in_bytes += (uint64_t)n;
  }
  *len = got;
  *end = s->in_eof && !s->ilen;
  return 0;
}

/* After a gzip member: zero padding is tolerated, anything else must be
 * another member.  Returns 1 at the real end. */
static int gzip_between_members(struct sjx_stream *s, int *zeros) {
  for (;;) {
    if (!s->ilen) {
      if (refill(s) < 0)
        return -1;
      if (!s->ilen)
        return 1;
    }
    while (s->ilen && *s->ip == 0)
      s->ip++, s->ilen--, *zeros = 1;
    if (!s->ilen)
      continue;
    if (*zeros)
      return sjx_fail(&s->perr, EBADMSG, NULL, "corrupt gzip stream: data after the zero padding");
    return 0;
  }
}

static const char *isal_error(int r) {
  switch (r) {
  case ISAL_INVALID_BLOCK:
    return "invalid deflate block";
  case ISAL_INVALID_SYMBOL:
    return "invalid deflate symbol";
  case ISAL_INVALID_LOOKBACK:
    return "invalid back-reference distance";
  case ISAL_INVALID_WRAPPER:
    return "bad gzip header";
  case ISAL_UNSUPPORTED_METHOD:
    return "unsupported gzip method";
  case ISAL_INCORRECT_CHECKSUM:
    return "CRC mismatch";
  case ISAL_NEED_DICT:
    return "needs a preset dictionary";
  default:
    return "decoder error";
  }
}

static int fill_isal(struct sjx_stream *s, uint8_t *buf, size_t cap, size_t *len, int *end) {
  struct inflate_state *st = s->isal;
  int zeros = 0;
  st->next_out = buf;
  st->avail_out = (uint32_t)cap;
  while (st->avail_out) {
    if (s->member_done) {
      int r = gzip_between_members(s, &zeros);
      if (r < 0)
        return -1;
      if (r == 1) {
        *end = 1;
        break;
      }
      isal_inflate_reset(st);
      st->crc_flag = ISAL_GZIP;
      s->member_done = 0;
    }
    if (!s->ilen && refill(s) < 0)
      return -1;
    uint32_t out_before = st->avail_out;
    size_t in_before = s->ilen;
    st->next_in = (uint8_t *)s->ip;
    st->avail_in = (uint32_t)s->ilen;
    int r = isal_inflate(st);
    s->ip = st->next_in;
    s->ilen = st->avail_in;
    if (r < 0)
      return sjx_fail(&s->perr, EBADMSG, NULL, "corrupt gzip stream: %s", isal_error(r));
    if (st->block_state == ISAL_BLOCK_FINISH) {
      s->member_done = 1;
      continue;
    }
    if (s->in_eof && !s->ilen && !in_before && st->avail_out == out_before)
      return sjx_fail(&s->perr, EBADMSG, NULL, "truncated gzip stream (%llu compressed bytes)",
                      (unsigned long long)s->in_bytes);
  }
  *len = cap - st->avail_out;
  return 0;
}

static int fill_zlib(struct sjx_stream *s, uint8_t *buf, size_t cap, size_t *len, int *end) {
  z_stream *z = &s->z;
  int zeros = 0;
  z->next_out = buf;
  z->avail_out = (uInt)cap;
  while (z->avail_out) {
    if (s->member_done) {
      int r = gzip_between_members(s, &zeros);
      if (r < 0)
        return -1;
      if (r == 1) {
        *end = 1;
        break;
      }
      inflateReset(z);
      s->member_done = 0;
    }
    if (!s->ilen && refill(s) < 0)
      return -1;
    uInt out_before = z->avail_out;
    size_t in_before = s->ilen;
    z->next_in = (Bytef *)s->ip;
    z->avail_in = (uInt)s->ilen;
    int r = inflate(z, Z_NO_FLUSH);
    s->ip = z->next_in;
    s->ilen = z->avail_in;
    if (r == Z_STREAM_END) {
      s->member_done = 1;
      continue;
    }
    if (r != Z_OK && r != Z_BUF_ERROR)
      return sjx_fail(&s->perr, EBADMSG, NULL, "corrupt gzip stream: %s",
                      z->msg ? z->msg : "zlib error");
    if (s->in_eof && !s->ilen && !in_before && z->avail_out == out_before)
      return sjx_fail(&s->perr, EBADMSG, NULL, "truncated gzip stream (%llu compressed bytes)",
                      (unsigned long long)s->in_bytes);
  }
  *len = cap - z->avail_out;
  return 0;
}

static int fill_zstd(struct sjx_stream *s, uint8_t *buf, size_t cap, size_t *len, int *end) {
  ZSTD_outBuffer out = {buf, cap, 0};
  while (out.pos < cap) {
    if (!s->ilen && refill(s) < 0)
      return -1;
    ZSTD_inBuffer in = {s->ip, s->ilen, 0};
    size_t out_before = out.pos;
    size_t r = ZSTD_decompressStream(s->zd, &out, &in);
    s->ip += in.pos;
    s->ilen -= in.pos;
    if (ZSTD_isError(r)) {
      if (ZSTD_getErrorCode(r) == ZSTD_error_frameParameter_windowTooLarge)
        return sjx_fail(&s->perr, EFBIG, NULL, "zstd frame needs a window over %u MiB",
                        1u << (ZSTD_WINDOW_LOG_MAX - 20));
      return sjx_fail(&s->perr, EBADMSG, NULL, "corrupt zstd stream: %s", ZSTD_getErrorName(r));
    }
    if (s->in_eof && !s->ilen && !in.pos && out.pos == out_before) {
      /* nothing left: fine if the last frame was complete (a call
       * without progress reports the next frame's header size) */
      if (s->zstd_hint)
        return sjx_fail(&s->perr, EBADMSG, NULL, "truncated zstd stream (%llu compressed bytes)",
                        (unsigned long long)s->in_bytes);
      *end = 1;
      break;
    }
    s->zstd_hint = r;
  }
  *len = out.pos;
  return 0;
}

static int fill(struct sjx_stream *s, uint8_t *buf, size_t *len, int *end) {
  *end = 0;
  switch (s->comp) {
  case SJ_COMP_GZIP:
    return s->gzip_impl == SJ_GZIP_ZLIB ? fill_zlib(s, buf, CHUNK, len, end)
                                        : fill_isal(s, buf, CHUNK, len, end);
  case SJ_COMP_ZSTD:
    return fill_zstd(s, buf, CHUNK, len, end);
  default:
    return fill_plain(s, buf, CHUNK, len, end);
  }
}

static int setup_decoder(struct sjx_stream *s) {
  if (read_input(s, 6) < 0) /* enough for the magic */
    return -1;
  int found = detect(s);
  if (found < 0)
    return -1;
  if (s->comp != SJ_COMP_AUTO && s->comp != found)
    return sjx_fail(&s->perr, EBADMSG, NULL, "expected a %s stream, found %s", comp_name(s->comp),
                    comp_name(found));
  s->comp = found;
  if (found == SJ_COMP_GZIP && s->gzip_impl == SJ_GZIP_ZLIB) {
    if (inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK)
      return sjx_fail(&s->perr, ENOMEM, NULL, "cannot set up zlib");
    s->z_ready = 1;
  } else if (found == SJ_COMP_GZIP) {
    s->isal = malloc(sizeof *s->isal);
    if (!s->isal)
      return sjx_fail_sys(&s->perr, ENOMEM, NULL, "inflate state");
    isal_inflate_init(s->isal);
    s->isal->crc_flag = ISAL_GZIP;
  } else if (found == SJ_COMP_ZSTD) {
    s->zd = ZSTD_createDCtx();
    if (!s->zd)
      return sjx_fail(&s->perr, ENOMEM, NULL, "cannot set up zstd");
  }
  return 0;
}

/* ---- hashing: by the holder of the hash token ---- */

/* The unhashed rest of the oldest input buffer not fully hashed: 0 if none. */
static size_t input_span(struct sjx_stream *s, const uint8_t **p) {
  size_t n = 0;
  pthread_mutex_lock(&s->lock);
  if (s->hash_in_next < s->in_produced) {
    unsigned i = (unsigned)(s->hash_in_next % NIN);
    *p = s->in[i] + s->hash_in_off;
    n = s->in_len[i] - s->hash_in_off;
  }
  pthread_mutex_unlock(&s->lock);
  return n;
}

/* n more bytes of that buffer are hashed; a finished buffer goes back to
 * the inflate thread. */
static void input_hashed(struct sjx_stream *s, size_t n) {
  unsigned i = (unsigned)(s->hash_in_next % NIN);
  s->hash_in_off += n;
  if (s->hash_in_off < s->in_len[i])
    return;
  pthread_mutex_lock(&s->lock);
  s->in_pending[i] = 0;
  s->hash_in_next++;
  s->hash_in_off = 0;
  pthread_cond_broadcast(&s->cv_space);
  pthread_mutex_unlock(&s->lock);
}

/* An output chunk, side by side with the input read so far. */
static void hash_chunk(struct sjx_stream *s, const uint8_t *p, size_t n) {
  while (n) {
    const uint8_t *in;
    size_t k = input_span(s, &in);
    if (!k) {
      sjx_sha256_update(&s->sha_u, p, n);
      return;
    }
    if (k > n)
      k = n;
    sjx_sha256_update2(&s->sha_c, in, k, &s->sha_u, p, k);
    input_hashed(s, k);
    p += k, n -= k;
  }
}

/* Called with the lock held (dropped meanwhile): unless someone else holds
 * the token, hashes the next chunk, or else the input read so far.
 * 1 if it hashed anything. */
static int hash_some(struct sjx_stream *s) {
  if (s->hashing || s->abort)
    return 0;
  if (s->hash_next < s->produced) {
    struct slot *sl = &s->slots[s->hash_next % NSLOTS];
    s->hashing = 1;
    pthread_mutex_unlock(&s->lock);
    hash_chunk(s, sl->buf, sl->len);
    pthread_mutex_lock(&s->lock);
    s->hash_next++;
    if (--sl->pending == 0)
      pthread_cond_broadcast(&s->cv_space);
  } else if (s->hash_in_next < s->in_produced) {
    s->hashing = 1;
    pthread_mutex_unlock(&s->lock);
    const uint8_t *p;
    size_t n;
    while ((n = input_span(s, &p))) {
      sjx_sha256_update(&s->sha_c, p, n);
      input_hashed(s, n);
    }
    pthread_mutex_lock(&s->lock);
  } else {
    return 0;
  }
  s->hashing = 0;
  pthread_cond_broadcast(&s->cv_space);
  return 1;
}

/* Called with the lock held, once the inflate thread is done: hashes all
 * that is left, taking turns with whoever else hashes. */
static void hash_rest(struct sjx_stream *s) {
  while (!s->abort && (s->hash_next < s->produced || s->hash_in_next < s->in_produced))
    if (!hash_some(s))
      pthread_cond_wait(&s->cv_space, &s->lock);
}

/* ---- threads ---- */

static void *inflate_main(void *arg) {
  struct sjx_stream *s = arg;
  pthread_setname_np(pthread_self(), "sj-inflate");
  int ok = setup_decoder(s) == 0;
  while (ok) {
    struct slot *sl = &s->slots[s->produced % NSLOTS];
    pthread_mutex_lock(&s->lock);
    while (sl->pending && !s->abort) /* no room: hash ahead of the caller */
      if (!hash_some(s))
        pthread_cond_wait(&s->cv_space, &s->lock);
    int stop = s->abort;
    pthread_mutex_unlock(&s->lock);
    if (stop)
      break;

    size_t len = 0;
    int end = 0;
    if (fill(s, sl->buf, &len, &end) < 0) {
      ok = 0;
      break;
    }
    if (len) {
      s->out_bytes += len;
      if (s->out_bytes > s->max_bytes) {
        sjx_fail(&s->perr, EFBIG, NULL, "layer expands to more than %llu bytes (the limit)",
                 (unsigned long long)s->max_bytes);
        ok = 0;
        break;
      }
      pthread_mutex_lock(&s->lock);
      sl->len = len;
      sl->pending = 2;
      s->produced++;
      pthread_cond_broadcast(&s->cv_data);
      pthread_mutex_unlock(&s->lock);
    }
    if (end)
      break;
  }
  pthread_mutex_lock(&s->lock);
  s->failed = !ok;
  s->eof = 1;
  pthread_cond_broadcast(&s->cv_data);
  if (ok)
    hash_rest(s);
  pthread_mutex_unlock(&s->lock);
  return NULL;
}

static void *hash_main(void *arg) {
  struct sjx_stream *s = arg;
  pthread_setname_np(pthread_self(), "sj-hash");
  pthread_mutex_lock(&s->lock);
  while (!s->abort && !s->eof) {
    if (!hash_some(s))
      pthread_cond_wait(s->hashing ? &s->cv_space : &s->cv_data, &s->lock);
  }
  if (!s->failed)
    hash_rest(s);
  pthread_mutex_unlock(&s->lock);
  return NULL;
}

/* Our threads never take signals: they belong to the embedding process. */
static int start_thread(pthread_t *t, void *(*fn)(void *), void *arg) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int r = pthread_create(t, NULL, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return r;
}

static void stream_free(struct sjx_stream *s) {
  free(s->arena);
  free(s->isal);
  if (s->z_ready)
    inflateEnd(&s->z);
  ZSTD_freeDCtx(s->zd);
  pthread_mutex_destroy(&s->lock);
  pthread_cond_destroy(&s->cv_data);
  pthread_cond_destroy(&s->cv_space);
  free(s);
}

int sjx_stream_start(struct sjx_stream **out, const struct sj_extract_opts *o, int hash_thread,
                     struct sj_extract_error *err) {
  struct sjx_stream *s = calloc(1, sizeof *s);
  if (!s)
    return sjx_fail_sys(err, ENOMEM, NULL, "stream");
  s->fd = o->in_fd;
  s->comp = o->compression;
  s->gzip_impl = o->gzip_impl;
  s->max_bytes = o->max_bytes ? o->max_bytes : SJ_EXTRACT_DEFAULT_MAX_BYTES;
  pthread_mutex_init(&s->lock, NULL);
  pthread_cond_init(&s->cv_data, NULL);
  pthread_cond_init(&s->cv_space, NULL);
  sjx_sha256_init(&s->sha_c);
  sjx_sha256_init(&s->sha_u);
  if (posix_memalign((void **)&s->arena, 4096, (size_t)NSLOTS * CHUNK + (size_t)NIN * INBUF)) {
    stream_free(s);
    return sjx_fail_sys(err, ENOMEM, NULL, "stream buffers");
  }
  for (int i = 0; i < NSLOTS; i++)
    s->slots[i].buf = s->arena + (size_t)i * CHUNK;
  for (int i = 0; i < NIN; i++)
    s->in[i] = s->arena + (size_t)NSLOTS * CHUNK + (size_t)i * INBUF;

  int r = start_thread(&s->inflater, inflate_main, s);
  if (r) {
    stream_free(s);
    return sjx_fail_sys(err, r, NULL, "starting the inflate thread");
  }
  s->have_inflater = 1;
  if (hash_thread) {
    r = start_thread(&s->hasher, hash_main, s);
    if (r) {
      sjx_stream_finish(s, 1, NULL, NULL);
      return sjx_fail_sys(err, r, NULL, "starting the hash thread");
    }
    s->have_hasher = 1;
  }
  *out = s;
  return 0;
}

int sjx_stream_next(struct sjx_stream *s, struct sjx_chunk *c, struct sj_extract_error *err) {
  pthread_mutex_lock(&s->lock);
  while (s->main_next >= s->produced && !s->eof)
    pthread_cond_wait(&s->cv_data, &s->lock);
  if (s->main_next < s->produced) {
    struct slot *sl = &s->slots[s->main_next % NSLOTS];
    c->data = sl->buf;
    c->len = sl->len;
    c->slot = (unsigned)(s->main_next % NSLOTS);
    s->main_next++;
    /* this chunk and any before it that nobody has hashed: ours to
     * hash (unless someone is at it: it then goes on, or we do next
     * time) */
    while (s->hash_next < s->main_next && hash_some(s))
      ;
    pthread_mutex_unlock(&s->lock);
    return 1;
  }
  int failed = s->failed;
  pthread_mutex_unlock(&s->lock);
  if (failed) {
    if (err && !err->msg[0])
      *err = s->perr;
    return -1;
  }
  return 0;
}

void sjx_stream_release(struct sjx_stream *s, struct sjx_chunk *c) {
  pthread_mutex_lock(&s->lock);
  if (--s->slots[c->slot].pending == 0)
    pthread_cond_broadcast(&s->cv_space);
  pthread_mutex_unlock(&s->lock);
}

int sjx_stream_finish(struct sjx_stream *s, int abort, struct sj_extract_stats *st,
                      struct sj_extract_error *err) {
  if (abort) {
    pthread_mutex_lock(&s->lock);
    s->abort = 1;
    pthread_cond_broadcast(&s->cv_data);
    pthread_cond_broadcast(&s->cv_space);
    pthread_mutex_unlock(&s->lock);
  }
  if (s->have_inflater)
    pthread_join(s->inflater, NULL);
  if (s->have_hasher)
    pthread_join(s->hasher, NULL);
  int rc = 0;
  if (s->failed) {
    if (err && !err->msg[0])
      *err = s->perr;
    rc = -1;
  }
  if (st && !rc && !abort) {
    pthread_mutex_lock(&s->lock);
    hash_rest(s); /* normally done: the threads hash it all before they end */
    pthread_mutex_unlock(&s->lock);
    st->compression = s->comp;
    st->compressed_bytes = s->in_bytes;
    st->tar_bytes = s->out_bytes;
    sjx_sha256_final_hex(&s->sha_u, st->diff_id);
    if (s->comp == SJ_COMP_NONE) /* the same bytes */
      memcpy(st->digest, st->diff_id, sizeof st->digest);
    else
      sjx_sha256_final_hex(&s->sha_c, st->digest);
  }
  stream_free(s);
  return rc;
}
