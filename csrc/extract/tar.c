/* Tar headers: ustar, pax ('x' records; 'g' is read and ignored, as
 * containerd and Go's archive/tar do) and GNU ('L' long names, 'K' long
 * link targets, base-256 numbers).  Headers are parsed in place in the
 * decompressed chunks; pax and GNU payloads are gathered in one buffer
 * (`ext`) that lives until the entry they describe has been returned.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define EXT_MAX      (16u << 20) /* pax/GNU payload per entry: xattrs can be big, not this big */
#define NAME_MAX_LEN 4095

struct xref { /* an xattr, as offsets into ext */
  size_t name, value, len;
};

struct pending { /* what pax and GNU headers say about the next entry */
  int path, link, size, uid, gid, mtime, major, minor, longname, longlink;
  size_t path_off, path_len, link_off, link_len;
  size_t longname_off, longlink_off;
  uint64_t v_size, v_uid, v_gid, v_major, v_minor;
  int64_t v_mtime;
  long v_nsec;
  struct xref *x;
  size_t nx, capx;
};

struct sjx_tar {
  struct sjx_stream *s;
  struct sjx_chunk cur;
  int have;           /* cur is held */
  size_t off;         /* read position in cur */
  uint64_t pos;       /* stream offset, for messages */
  uint64_t remaining; /* content bytes of the current entry not yet read */
  uint64_t padding;   /* then this many bytes to the next block */
  int ended;

  uint8_t *ext;
  size_t ext_len, ext_cap;
  struct pending p;

  struct sjx_entry e;
  struct sjx_xattr *xattrs;
  size_t capxattrs;
  char name[NAME_MAX_LEN + 1]; /* as archived, NUL-terminated */
  char path[NAME_MAX_LEN + 1];
  char link[NAME_MAX_LEN + 1];
};

struct sjx_tar *sjx_tar_new(struct sjx_stream *s) {
  struct sjx_tar *t = calloc(1, sizeof *t);
  if (t)
    t->s = s;
  return t;
}

void sjx_tar_free(struct sjx_tar *t) {
  if (!t)
    return;
  if (t->have)
    sjx_stream_release(t->s, &t->cur);
  free(t->ext);
  free(t->p.x);
  free(t->xattrs);
  free(t);
}

/* ---- reading the stream ---- */

static int next_chunk(struct sjx_tar *t, struct sj_extract_error *err) {
  if (t->have) {
    sjx_stream_release(t->s, &t->cur);
    t->have = 0;
  }
  int r = sjx_stream_next(t->s, &t->cur, err);
  if (r == 1) {
    t->have = 1;
    t->off = 0;
  }
  return r;
}

/* 1 and *blk, 0 at a clean end of data, -1 error */
static int next_block(struct sjx_tar *t, const uint8_t **blk, struct sj_extract_error *err) {
  if (!t->have || t->off == t->cur.len) {
    int r = next_chunk(t, err);
    if (r <= 0)
      return r;
  }
  if (t->cur.len - t->off < SJX_BLOCK)
    return sjx_fail(err, EBADMSG, NULL, "truncated tar stream (a partial block at byte %llu)",
                    (unsigned long long)t->pos);
  *blk = t->cur.data + t->off;
  t->off += SJX_BLOCK;
  t->pos += SJX_BLOCK;
  return 1;
}

/* Up to `max` contiguous bytes: 1, or -1 (the stream ended first). */
static int read_span(struct sjx_tar *t, uint64_t max, const uint8_t **p, size_t *n,
                     struct sj_extract_error *err) {
  if (!t->have || t->off == t->cur.len) {
    int r = next_chunk(t, err);
    if (r < 0)
      return -1;
    if (r == 0)
      return sjx_fail(err, EBADMSG, t->name[0] ? t->name : NULL,
                      "truncated tar stream (ends inside an entry, at byte %llu)",
                      (unsigned long long)t->pos);
  }
  size_t avail = t->cur.len - t->off;
  *n = max < avail ? (size_t)max : avail;
  *p = t->cur.data + t->off;
  t->off += *n;
  t->pos += *n;
  return 1;
}

static int skip(struct sjx_tar *t, uint64_t n, struct sj_extract_error *err) {
  while (n) {
    const uint8_t *p;
    size_t k = 0;
    if (read_span(t, n, &p, &k, err) < 0)
      return -1;
    n -= k;
  }
  return 0;
}

int sjx_tar_data(struct sjx_tar *t, const uint8_t **p, size_t *n, struct sj_extract_error *err) {
  if (!t->remaining)
    return 0;
  if (read_span(t, t->remaining, p, n, err) < 0)
    return -1;
  t->remaining -= *n;
  return 1;
}

int sjx_tar_drain(struct sjx_tar *t, struct sj_extract_error *err) {
  for (;;) {
    int r = next_chunk(t, err);
    if (r <= 0)
      return r;
  }
}

/* Appends a header's payload (size bytes + padding) to ext; returns its offset. */
static int read_payload(struct sjx_tar *t, uint64_t size, size_t *off,
                        struct sj_extract_error *err) {
  if (size > EXT_MAX || t->ext_len + size + 1 > EXT_MAX)
    return sjx_fail(err, EFBIG, NULL, "tar extended header over %u MiB at byte %llu", EXT_MAX >> 20,
                    (unsigned long long)t->pos);
  if (t->ext_len + size + 1 > t->ext_cap) {
    size_t cap = t->ext_cap ? t->ext_cap : 4096;
    while (cap < t->ext_len + size + 1)
      cap *= 2;
    uint8_t *n = realloc(t->ext, cap);
    if (!n)
      return sjx_fail_sys(err, ENOMEM, NULL, "tar extended header");
    t->ext = n;
    t->ext_cap = cap;
  }
  *off = t->ext_len;
  uint64_t left = size;
  while (left) {
    const uint8_t *p;
    size_t k;
    if (read_span(t, left, &p, &k, err) < 0)
      return -1;
    memcpy(t->ext + t->ext_len, p, k);
    t->ext_len += k;
    left -= k;
  }
  t->ext[t->ext_len++] = 0; /* payloads are strings more often than not */
  return skip(t, (SJX_BLOCK - size % SJX_BLOCK) % SJX_BLOCK, err);
}

/* ---- numbers ---- */

/* Octal (space/NUL padded) or GNU base-256.  -1 if malformed. */
static int parse_num(const uint8_t *f, size_t n, int64_t *out) {
  if (f[0] & 0x80) {
    int neg = f[0] == 0xff;
    uint64_t v = neg ? ~(uint64_t)0 : 0;
    for (size_t i = 1; i < n; i++) {
      if (!neg && v >> 55)
        return -1;
      if (neg && i < n - 8 && f[i] != 0xff)
        return -1;
      v = v << 8 | f[i];
    }
    if (!neg && v > INT64_MAX)
      return -1;
    *out = (int64_t)v;
    return 0;
  }
  size_t i = 0;
  uint64_t v = 0;
  while (i < n && f[i] == ' ')
    i++;
  for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
    if (v >> 60)
      return -1;
    v = v * 8 + (uint64_t)(f[i] - '0');
  }
  for (; i < n; i++) /* then only terminators */
    if (f[i] != ' ' && f[i] != 0)
      return -1;
  *out = (int64_t)v;
  return 0;
}

static int parse_dec(const char *s, size_t n, uint64_t *out) {
  uint64_t v = 0;
  if (!n)
    return -1;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - 9) / 10)
      return -1;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  *out = v;
  return 0;
}

/* pax time: [-]seconds[.fraction] */
static int parse_time(const char *s, size_t n, int64_t *sec, long *nsec) {
  int neg = n && s[0] == '-';
  size_t i = neg, dot = i;
  while (dot < n && s[dot] != '.')
    dot++;
  uint64_t whole;
  if (parse_dec(s + i, dot - i, &whole) < 0 || whole > INT64_MAX)
    return -1;
  long frac = 0;
  int digits = 0;
  for (size_t j = dot + 1; j < n; j++) {
    if (s[j] < '0' || s[j] > '9')
      return -1;
    if (digits < 9)
      frac = frac * 10 + (s[j] - '0'), digits++;
  }
  while (digits++ < 9)
    frac *= 10;
  if (!neg) {
    *sec = (int64_t)whole, *nsec = frac;
  } else if (frac) {
    *sec = -(int64_t)whole - 1, *nsec = 1000000000L - frac;
  } else {
    *sec = -(int64_t)whole, *nsec = 0;
  }
  return 0;
}

/* ---- pax records ---- */

static int url_decode(char *s) /* LIBARCHIVE.xattr names are %-encoded */
{
  char *w = s;
  for (char *r = s; *r; r++) {
    if (*r == '%' && r[1] && r[2]) {
      char hex[3] = {r[1], r[2], 0}, *end;
      long v = strtol(hex, &end, 16);
      if (*end)
        return -1;
      *w++ = (char)v;
      r += 2;
    } else {
      *w++ = *r;
    }
  }
  *w = 0;
  return 0;
}

static int b64_value(int c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  return c == '+' ? 62 : c == '/' ? 63 : -1;
}

static long b64_decode(uint8_t *s, size_t n) /* in place; -1 if malformed */
{
  uint32_t acc = 0;
  int bits = 0;
  size_t w = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '=')
      break;
    int v = b64_value(s[i]);
    if (v < 0)
      return -1;
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      s[w++] = (uint8_t)(acc >> bits);
    }
  }
  return (long)w;
}

static int add_xattr(struct sjx_tar *t, size_t name, size_t value, size_t len,
                     struct sj_extract_error *err) {
  struct pending *p = &t->p;
  for (size_t i = 0; i < p->nx; i++) /* bsdtar writes both SCHILY and LIBARCHIVE forms */
    if (!strcmp((char *)t->ext + p->x[i].name, (char *)t->ext + name)) {
      p->x[i].value = value, p->x[i].len = len;
      return 0;
    }
  if (p->nx == p->capx) {
    size_t cap = p->capx ? p->capx * 2 : 8;
    struct xref *n = realloc(p->x, cap * sizeof *n);
    if (!n)
      return sjx_fail_sys(err, ENOMEM, NULL, "xattrs");
    p->x = n, p->capx = cap;
  }
  p->x[p->nx++] = (struct xref){name, value, len};
  return 0;
}

#define KEY_IS(lit)         (klen == sizeof(lit) - 1 && !memcmp(key, lit, klen))
#define KEY_HAS_PREFIX(lit) (klen > sizeof(lit) - 1 && !memcmp(key, lit, sizeof(lit) - 1))

static int parse_pax(struct sjx_tar *t, size_t off, size_t size, struct sj_extract_error *err) {
  struct pending *p = &t->p;
  size_t i = off, end = off + size;
  while (i < end) {
    char *rec = (char *)t->ext + i;
    size_t left = end - i, nlen = 0;
    uint64_t len;
    if (!*rec) /* NUL padding after the last record */
      break;
    while (nlen < left && rec[nlen] >= '0' && rec[nlen] <= '9')
      nlen++;
    if (parse_dec(rec, nlen, &len) < 0 || len > left || len < nlen + 3 || rec[nlen] != ' ' ||
        rec[len - 1] != '\n')
      return sjx_fail(err, EBADMSG, NULL, "malformed pax record at byte %llu",
                      (unsigned long long)t->pos);
    char *key = rec + nlen + 1;
    char *eq = memchr(key, '=', len - nlen - 2);
    if (!eq)
      return sjx_fail(err, EBADMSG, NULL, "malformed pax record at byte %llu",
                      (unsigned long long)t->pos);
    size_t klen = (size_t)(eq - key);
    char *val = eq + 1;
    size_t vlen = (size_t)(rec + len - 1 - val);
    size_t voff = (size_t)((uint8_t *)val - t->ext);
    uint64_t u = 0;
    int bad = 0;

    *eq = 0;          /* terminates the key (xattr names) */
    rec[len - 1] = 0; /* and the value */
    if (KEY_IS("path")) {
      p->path = vlen > 0, p->path_off = voff, p->path_len = vlen;
    } else if (KEY_IS("linkpath")) {
      p->link = vlen > 0, p->link_off = voff, p->link_len = vlen;
    } else if (KEY_IS("size")) {
      bad = parse_dec(val, vlen, &p->v_size) < 0 || p->v_size > INT64_MAX;
      p->size = 1;
    } else if (KEY_IS("uid") || KEY_IS("gid")) {
      bad = parse_dec(val, vlen, &u) < 0 || u > UINT32_MAX - 1;
      if (key[0] == 'u')
        p->uid = 1, p->v_uid = u;
      else
        p->gid = 1, p->v_gid = u;
    } else if (KEY_IS("mtime")) {
      bad = parse_time(val, vlen, &p->v_mtime, &p->v_nsec) < 0;
      p->mtime = 1;
    } else if (KEY_IS("SCHILY.devmajor") || KEY_IS("SCHILY.devminor")) {
      bad = parse_dec(val, vlen, &u) < 0 || u > UINT32_MAX;
      if (key[11] == 'a') /* devmAjor / devmInor */
        p->major = 1, p->v_major = u;
      else
        p->minor = 1, p->v_minor = u;
    } else if (KEY_HAS_PREFIX("SCHILY.xattr.")) {
      size_t name = (size_t)((uint8_t *)key + 13 - t->ext);
      if (add_xattr(t, name, voff, vlen, err) < 0)
        return -1;
    } else if (KEY_HAS_PREFIX("LIBARCHIVE.xattr.")) {
      long n = b64_decode((uint8_t *)val, vlen);
      if (n < 0 || url_decode(key + 17) < 0)
        bad = 1;
      else if (add_xattr(t, (size_t)((uint8_t *)key + 17 - t->ext), voff, (size_t)n, err) < 0)
        return -1;
    } else if (KEY_HAS_PREFIX("GNU.sparse.")) {
      return sjx_fail(err, ENOTSUP, NULL,
                      "sparse files (GNU.sparse pax records) are not supported");
    }
    if (bad)
      return sjx_fail(err, EBADMSG, NULL, "bad pax %s value \"%.*s\"", key,
                      (int)(vlen < 64 ? vlen : 64), val);
    i += len;
  }
  return 0;
}

/* ---- names ---- */

/* Normalizes a member name: drops "./", "//" and a trailing "/"; refuses
 * absolute names and ".." (the layer root is the root). */
static int normalize(const char *in, size_t n, char *out, const char *entry,
                     struct sj_extract_error *err) {
  size_t w = 0, i = 0;
  if (memchr(in, 0, n))
    return sjx_fail(err, EBADMSG, entry, "NUL byte in a name");
  if (n && in[0] == '/')
    return sjx_fail(err, EXDEV, entry, "path escapes the layer root (absolute name)");
  while (i < n) {
    size_t j = i;
    while (j < n && in[j] != '/')
      j++;
    size_t len = j - i;
    if (len == 2 && in[i] == '.' && in[i + 1] == '.')
      return sjx_fail(err, EXDEV, entry, "path escapes the layer root (\"..\" component)");
    if (len && !(len == 1 && in[i] == '.')) {
      if (w + len + 1 > NAME_MAX_LEN)
        return sjx_fail(err, ENAMETOOLONG, entry, "name too long");
      if (w)
        out[w++] = '/';
      memcpy(out + w, in + i, len);
      w += len;
    }
    i = j + 1;
  }
  out[w] = 0;
  return 0;
}

static size_t field_len(const uint8_t *f, size_t n) {
  const uint8_t *z = memchr(f, 0, n);
  return z ? (size_t)(z - f) : n;
}

static int checksum_ok(const uint8_t *b) {
  int64_t want;
  if (parse_num(b + 148, 8, &want) < 0)
    return 0;
  uint64_t u = 0;
  int64_t s = 0;
  for (int i = 0; i < SJX_BLOCK; i++) {
    uint8_t c = (i >= 148 && i < 156) ? ' ' : b[i];
    u += c;
    s += (int8_t)c; /* some old tars summed signed chars */
  }
  return (int64_t)u == want || s == want;
}

static int all_zero(const uint8_t *b) {
  for (int i = 0; i < SJX_BLOCK; i++)
    if (b[i])
      return 0;
  return 1;
}

static int set_string(char *dst, const char *src, size_t n, struct sj_extract_error *err) {
  if (n > NAME_MAX_LEN)
    return sjx_fail(err, ENAMETOOLONG, NULL, "name of %zu bytes is too long: \"%.200s...\"", n,
                    src);
  memcpy(dst, src, n);
  dst[n] = 0;
  return 0;
}

/* Builds t->e from a header block and the pending pax/GNU values. */
static int build_entry(struct sjx_tar *t, const uint8_t *b, char type,
                       struct sj_extract_error *err) {
  struct pending *p = &t->p;
  struct sjx_entry *e = &t->e;
  int64_t v;
  int ustar = !memcmp(b + 257, "ustar\0", 6);

  /* the name: pax path > GNU long name > ustar prefix/name */
  if (p->path) {
    if (set_string(t->name, (char *)t->ext + p->path_off, p->path_len, err) < 0)
      return -1;
  } else if (p->longname) {
    const char *s = (char *)t->ext + p->longname_off;
    if (set_string(t->name, s, strlen(s), err) < 0)
      return -1;
  } else {
    size_t nl = field_len(b, 100), pl = ustar ? field_len(b + 345, 155) : 0, w = 0;
    if (pl) {
      memcpy(t->name, b + 345, pl);
      t->name[pl] = '/';
      w = pl + 1;
    }
    memcpy(t->name + w, b, nl);
    t->name[w + nl] = 0;
  }
  if (!t->name[0])
    return sjx_fail(err, EBADMSG, NULL, "tar entry with an empty name at byte %llu",
                    (unsigned long long)t->pos);
  if (strlen(t->name) != (p->path ? p->path_len : strlen(t->name)))
    return sjx_fail(err, EBADMSG, t->name, "NUL byte in a name");
  if (normalize(t->name, strlen(t->name), t->path, t->name, err) < 0)
    return -1;

  /* the link target */
  t->link[0] = 0;
  if (type == '1' || type == '2') {
    if (p->link) {
      if (set_string(t->link, (char *)t->ext + p->link_off, p->link_len, err) < 0)
        return -1;
      if (strlen(t->link) != p->link_len)
        return sjx_fail(err, EBADMSG, t->name, "NUL byte in the link target");
    } else if (p->longlink) {
      const char *s = (char *)t->ext + p->longlink_off;
      if (set_string(t->link, s, strlen(s), err) < 0)
        return -1;
    } else {
      size_t ll = field_len(b + 157, 100);
      memcpy(t->link, b + 157, ll);
      t->link[ll] = 0;
    }
    if (!t->link[0])
      return sjx_fail(err, EBADMSG, t->name, "empty link target");
    if (type == '1') {
      char norm[NAME_MAX_LEN + 1];
      if (normalize(t->link, strlen(t->link), norm, t->name, err) < 0)
        return -1;
      strcpy(t->link, norm);
    }
  }

  e->type = type;
  e->name = t->name;
  e->path = t->path;
  e->link = t->link;

  if (parse_num(b + 100, 8, &v) < 0)
    return sjx_fail(err, EBADMSG, t->name, "bad mode field");
  e->mode = (uint32_t)v & 07777;

  if (p->uid)
    e->uid = (uint32_t)p->v_uid;
  else if (parse_num(b + 108, 8, &v) < 0 || v < 0 || v > UINT32_MAX - 1)
    return sjx_fail(err, EBADMSG, t->name, "bad uid field");
  else
    e->uid = (uint32_t)v;
  if (p->gid)
    e->gid = (uint32_t)p->v_gid;
  else if (parse_num(b + 116, 8, &v) < 0 || v < 0 || v > UINT32_MAX - 1)
    return sjx_fail(err, EBADMSG, t->name, "bad gid field");
  else
    e->gid = (uint32_t)v;

  if (p->size)
    e->size = p->v_size;
  else if (parse_num(b + 124, 12, &v) < 0 || v < 0)
    return sjx_fail(err, EBADMSG, t->name, "bad size field");
  else
    e->size = (uint64_t)v;

  if (p->mtime) {
    e->mtime = p->v_mtime;
    e->mtime_nsec = p->v_nsec;
  } else if (parse_num(b + 136, 12, &v) < 0) {
    return sjx_fail(err, EBADMSG, t->name, "bad mtime field");
  } else {
    e->mtime = v;
    e->mtime_nsec = 0;
  }

  e->devmajor = e->devminor = 0;
  if (type == '3' || type == '4') {
    if (p->major)
      e->devmajor = (uint32_t)p->v_major;
    else if (parse_num(b + 329, 8, &v) < 0 || v < 0 || v > UINT32_MAX)
      return sjx_fail(err, EBADMSG, t->name, "bad device major field");
    else
      e->devmajor = (uint32_t)v;
    if (p->minor)
      e->devminor = (uint32_t)p->v_minor;
    else if (parse_num(b + 337, 8, &v) < 0 || v < 0 || v > UINT32_MAX)
      return sjx_fail(err, EBADMSG, t->name, "bad device minor field");
    else
      e->devminor = (uint32_t)v;
  }

  if (p->nx > t->capxattrs) {
    struct sjx_xattr *n = realloc(t->xattrs, p->nx * sizeof *n);
    if (!n)
      return sjx_fail_sys(err, ENOMEM, t->name, "xattrs");
    t->xattrs = n, t->capxattrs = p->nx;
  }
  for (size_t i = 0; i < p->nx; i++)
    t->xattrs[i] =
        (struct sjx_xattr){(char *)t->ext + p->x[i].name, t->ext + p->x[i].value, p->x[i].len};
  e->xattrs = t->xattrs;
  e->n_xattrs = p->nx;
  return 0;
}

static void reset_pending(struct sjx_tar *t) {
  struct xref *x = t->p.x;
  size_t capx = t->p.capx;
  memset(&t->p, 0, sizeof t->p);
  t->p.x = x, t->p.capx = capx;
  t->ext_len = 0;
}

int sjx_tar_next(struct sjx_tar *t, struct sjx_entry **out, struct sj_extract_error *err) {
  if (t->ended)
    return 0;
  if (skip(t, t->remaining + t->padding, err) < 0)
    return -1;
  t->remaining = t->padding = 0;
  reset_pending(t);
  t->e.name = NULL;
  t->name[0] = 0;

  for (;;) {
    const uint8_t *b = NULL;
    int64_t v;
    int r = next_block(t, &b, err);
    if (r < 0)
      return -1;
    if (r == 0) {
      /* no end-of-archive blocks: accepted (Go's archive/tar does too) unless
       * an extended header promised another entry */
      if (t->ext_len)
        return sjx_fail(err, EBADMSG, NULL, "truncated tar stream (ends after an extended header)");
      t->ended = 1;
      return 0;
    }
    if (all_zero(b)) {
      t->ended = 1;
      return 0;
    }
    if (!checksum_ok(b))
      return sjx_fail(err, EBADMSG, NULL,
                      "not a tar stream, or corrupt: bad header checksum at byte %llu",
                      (unsigned long long)(t->pos - SJX_BLOCK));
    char type = (char)b[156];
    if (parse_num(b + 124, 12, &v) < 0 || v < 0)
      return sjx_fail(err, EBADMSG, NULL, "bad size field at byte %llu",
                      (unsigned long long)(t->pos - SJX_BLOCK));
    uint64_t size = (uint64_t)v;
    size_t off;

    switch (type) {
    case 'x':
      if (read_payload(t, size, &off, err) < 0 || parse_pax(t, off, size, err) < 0)
        return -1;
      continue;
    case 'L':
    case 'K':
      if (read_payload(t, size, &off, err) < 0)
        return -1;
      if (type == 'L')
        t->p.longname = 1, t->p.longname_off = off;
      else
        t->p.longlink = 1, t->p.longlink_off = off;
      continue;
    case 'g': /* global pax records: ignored */
    case 'V': /* GNU volume label */
      if (skip(t, size + (SJX_BLOCK - size % SJX_BLOCK) % SJX_BLOCK, err) < 0)
        return -1;
      continue;
    case 'S':
      return sjx_fail(err, ENOTSUP, NULL, "GNU sparse files are not supported");
    case 'M':
      return sjx_fail(err, ENOTSUP, NULL, "multi-volume tar archives are not supported");
    case '0':
    case '\0':
    case '7':
      type = '0';
      break;
    case 'D': /* GNU dump directory: a directory with a listing as content */
      type = '5';
      break;
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
      break;
    default:
      if (build_entry(t, b, '0', err) < 0)
        return -1;
      return sjx_fail(err, ENOTSUP, t->name, "unsupported tar entry type 0x%02x ('%c')",
                      (unsigned char)type, type > 0x20 && type < 0x7f ? type : '?');
    }
    if (build_entry(t, b, type, err) < 0)
      return -1;
    /* only regular files carry content we read; the rest is skipped */
    uint64_t content = t->p.size ? t->p.v_size : size;
    t->remaining = content;
    t->padding = (SJX_BLOCK - content % SJX_BLOCK) % SJX_BLOCK;
    if (type != '0')
      t->e.size = 0;
    *out = &t->e;
    return 1;
  }
}
