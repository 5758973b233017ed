/* Tar headers as registries and Docker expect them: a ustar header per
 * entry ("ustar\0" "00", numeric owners only), preceded by a PAX 'x' header
 * whenever ustar cannot hold a value: a name that does not fit name/prefix,
 * a link target over 100 bytes, an id, size, mtime or device number too big
 * for its octal field (or a negative mtime), and every xattr
 * (SCHILY.xattr.<name>, the form GNU tar, bsdtar, Go and our extractor
 * read).  Sub-second times are not written, nor atime or ctime: they would
 * make the same tree give different bytes.  The archive ends with two zero
 * blocks (as Go's archive/tar ends it: no padding to a 10 KiB record).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define EXT_MAX (64u << 20) /* PAX records of one entry (xattr values are < 64 KiB each) */

struct sjp_tar {
  char *rec;
  size_t len, cap;
};

struct sjp_tar *sjp_tar_new(void) {
  return calloc(1, sizeof(struct sjp_tar));
}

void sjp_tar_free(struct sjp_tar *t) {
  if (t) {
    free(t->rec);
    free(t);
  }
}

/* ---- fields ---- */

/* v in a field of w bytes: w-1 octal digits and a NUL; 0 if it does not fit */
static int octal(uint8_t *f, size_t w, uint64_t v) {
  if (w - 1 < 22 && v >> (3 * (w - 1)))
    return 0;
  f[w - 1] = 0;
  for (size_t i = w - 1; i-- > 0; v >>= 3)
    f[i] = (uint8_t)('0' + (v & 7));
  return 1;
}

static int fits(size_t w, uint64_t v) {
  return !(v >> (3 * (w - 1)));
}

/* ---- PAX records: "<len> <key>=<value>\n", len counting itself ---- */

static int record(struct sjp_tar *t, const char *key, const char *key2, const void *val,
                  size_t vlen, const char *path, struct sj_pack_error *err) {
  size_t klen = strlen(key) + (key2 ? strlen(key2) : 0);
  size_t body = 1 + klen + 1 + vlen + 1; /* " key=value\n" */
  size_t digits = 1, total;
  for (;;) {
    total = body + digits;
    size_t d = 1;
    for (size_t x = total; x >= 10; x /= 10)
      d++;
    if (d == digits)
      break;
    digits = d;
  }
  if (t->len + total > EXT_MAX)
    return sjp_fail(err, E2BIG, path, "PAX records over %u MiB (xattrs?)", EXT_MAX >> 20);
  if (t->len + total > t->cap) {
    size_t cap = t->cap ? t->cap : 4096;
    while (cap < t->len + total)
      cap *= 2;
    char *n = realloc(t->rec, cap);
    if (!n)
      return sjp_fail_sys(err, ENOMEM, path, "PAX records");
    t->rec = n, t->cap = cap;
  }
  char *w = t->rec + t->len;
  w += sprintf(w, "%zu %s%s=", total, key, key2 ? key2 : "");
  memcpy(w, val, vlen);
  w[vlen] = '\n';
  t->len += total;
  return 0;
}

static int record_num(struct sjp_tar *t, const char *key, int64_t v, const char *path,
                      struct sj_pack_error *err) {
  char buf[32];
  int n = snprintf(buf, sizeof buf, "%lld", (long long)v);
  return record(t, key, NULL, buf, (size_t)n, path, err);
}

/* name = prefix "/" rest with prefix <= 155 and rest <= 100 bytes: the split
 * point, or 0 if there is none */
static size_t split_point(const char *name, size_t n) {
  if (n > 256)
    return 0;
  size_t i = n - 1 < 155 ? n - 1 : 155;
  /* a directory's trailing "/" stays with the last component */
  if (name[n - 1] == '/' && i == n - 1)
    i--;
  for (; i > 0; i--)
    if (name[i] == '/')
      return n - i - 1 <= 100 && n - i - 1 > 0 ? i : 0;
  return 0;
}

static void base_name(const char *name, const char **b, size_t *n) {
  size_t len = strlen(name);
  while (len > 1 && name[len - 1] == '/')
    len--;
  size_t start = len;
  while (start > 0 && name[start - 1] != '/')
    start--;
  *b = name + start;
  *n = len - start;
}

static void checksum(uint8_t *b) {
  unsigned sum = 0;
  memset(b + 148, ' ', 8);
  for (int i = 0; i < SJP_BLOCK; i++)
    sum += b[i];
  snprintf((char *)b + 148, 8, "%06o", sum); /* "dddddd\0" then the space left */
  b[155] = ' ';
}

static void fill_common(uint8_t *b, char type, uint32_t mode, uint32_t uid, uint32_t gid,
                        uint64_t size, int64_t mtime) {
  octal(b + 100, 8, mode & 07777);
  octal(b + 108, 8, fits(8, uid) ? uid : 0);
  octal(b + 116, 8, fits(8, gid) ? gid : 0);
  octal(b + 124, 12, fits(12, size) ? size : 0);
  octal(b + 136, 12, mtime >= 0 && fits(12, (uint64_t)mtime) ? (uint64_t)mtime : 0);
  b[156] = (uint8_t)type;
  memcpy(b + 257,
         "ustar\0"
         "00",
         8);
}

int sjp_tar_header(struct sjp_tar *t, struct sjp_stream *s, const struct sjp_hdr *h,
                   struct sj_pack_error *err) {
  uint8_t b[SJP_BLOCK];
  size_t nlen = strlen(h->name), split = 0;
  size_t llen = h->link ? strlen(h->link) : 0;
  const char *path = h->name;

  t->len = 0;
  if (nlen > 100 && !(split = split_point(h->name, nlen)) &&
      record(t, "path", NULL, h->name, nlen, path, err) < 0)
    return -1;
  if (llen > 100 && record(t, "linkpath", NULL, h->link, llen, path, err) < 0)
    return -1;
  if (!fits(8, h->uid) && record_num(t, "uid", h->uid, path, err) < 0)
    return -1;
  if (!fits(8, h->gid) && record_num(t, "gid", h->gid, path, err) < 0)
    return -1;
  if (!fits(12, h->size) && record_num(t, "size", (int64_t)h->size, path, err) < 0)
    return -1;
  if ((h->mtime < 0 || !fits(12, (uint64_t)h->mtime)) &&
      record_num(t, "mtime", h->mtime, path, err) < 0)
    return -1;
  if (!fits(8, h->devmajor) && record_num(t, "SCHILY.devmajor", h->devmajor, path, err) < 0)
    return -1;
  if (!fits(8, h->devminor) && record_num(t, "SCHILY.devminor", h->devminor, path, err) < 0)
    return -1;
  for (size_t i = 0; i < h->n_xattrs; i++)
    if (record(t, "SCHILY.xattr.", h->xattrs[i].name, h->xattrs[i].value, h->xattrs[i].len, path,
               err) < 0)
      return -1;

  if (t->len) {
    /* the 'x' header's own name only shows in listings: PaxHeaders/<base> */
    const char *base;
    size_t blen;
    base_name(h->name, &base, &blen);
    memset(b, 0, sizeof b);
    memcpy(b, "PaxHeaders/", 11);
    memcpy(b + 11, base, blen < 89 ? blen : 89);
    fill_common(b, 'x', 0644, 0, 0, t->len, h->mtime);
    checksum(b);
    if (sjp_write(s, b, sizeof b, err) < 0 || sjp_write(s, t->rec, t->len, err) < 0 ||
        sjp_pad(s, err) < 0)
      return -1;
  }

  memset(b, 0, sizeof b);
  if (split) {
    memcpy(b + 345, h->name, split);
    memcpy(b, h->name + split + 1, nlen - split - 1);
  } else {
    memcpy(b, h->name, nlen < 100 ? nlen : 100); /* a long one: the PAX path rules */
  }
  if (h->link)
    memcpy(b + 157, h->link, llen < 100 ? llen : 100);
  fill_common(b, h->type, h->mode, h->uid, h->gid, h->size, h->mtime);
  octal(b + 329, 8, fits(8, h->devmajor) ? h->devmajor : 0);
  octal(b + 337, 8, fits(8, h->devminor) ? h->devminor : 0);
  checksum(b);
  return sjp_write(s, b, sizeof b, err);
}

int sjp_tar_end(struct sjp_stream *s, struct sj_pack_error *err) {
  static const uint8_t zeros[2 * SJP_BLOCK];
  return sjp_write(s, zeros, sizeof zeros, err);
}
