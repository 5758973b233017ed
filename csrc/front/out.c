/* The front end's output: see out.h. */
#include "out.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void sj_buf_add(struct sj_buf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d)
      abort();
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = 0;
}

void sj_buf_str(struct sj_buf *b, const char *s) {
  sj_buf_add(b, s, strlen(s));
}

void sj_buf_printf(struct sj_buf *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n >= (int)sizeof tmp) {
    char *big = malloc(n + 1);
    if (!big)
      abort();
    va_start(ap, fmt);
    vsnprintf(big, n + 1, fmt, ap);
    va_end(ap);
    sj_buf_add(b, big, n);
    free(big);
    return;
  }
  sj_buf_add(b, tmp, n > 0 ? n : 0);
}

/* One UTF-8 sequence at s: its code point and length; a byte that starts none is taken
 * alone as U+DC80..U+DCFF (Python's surrogateescape of argv and paths). */
static unsigned utf8_next(const unsigned char *s, int *len) {
  unsigned c = s[0];
  int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  unsigned cp = n == 2 ? c & 0x1f : n == 3 ? c & 0x0f : c & 0x07;
  for (int i = 1; i < n; i++) {
    if ((s[i] & 0xc0) != 0x80) {
      n = 0;
      break;
    }
    cp = cp << 6 | (s[i] & 0x3f);
  }
  if (n == 1)
    cp = c;
  if (n == 0 || (n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
      cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) {
    *len = 1;
    return 0xdc00 | c;
  }
  *len = n;
  return cp;
}

void sj_buf_json_str(struct sj_buf *b, const char *str) {
  const unsigned char *s = (const unsigned char *)str;
  sj_buf_add(b, "\"", 1);
  while (*s) {
    int n;
    unsigned cp = utf8_next(s, &n);
    s += n;
    switch (cp) {
    case '"':
      sj_buf_add(b, "\\\"", 2);
      continue;
    case '\\':
      sj_buf_add(b, "\\\\", 2);
      continue;
    case '\n':
      sj_buf_add(b, "\\n", 2);
      continue;
    case '\r':
      sj_buf_add(b, "\\r", 2);
      continue;
    case '\t':
      sj_buf_add(b, "\\t", 2);
      continue;
    case '\b':
      sj_buf_add(b, "\\b", 2);
      continue;
    case '\f':
      sj_buf_add(b, "\\f", 2);
      continue;
    }
    if (cp >= 0x20 && cp <= 0x7e) {
      char c = (char)cp;
      sj_buf_add(b, &c, 1);
    } else if (cp >= 0x10000) {
      cp -= 0x10000;
      sj_buf_printf(b, "\\u%04x\\u%04x", 0xd800 | (cp >> 10), 0xdc00 | (cp & 0x3ff));
    } else {
      sj_buf_printf(b, "\\u%04x", cp);
    }
  }
  sj_buf_add(b, "\"", 1);
}

/* UTC with nanoseconds (sangja.log.now_rfc3339). */
static void now_rfc3339(char *out, size_t size) {
  struct timespec ts;
  struct tm tm;
  char head[32];
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  strftime(head, sizeof head, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, size, "%s.%09ldZ", head, ts.tv_nsec);
}

void sj_log_write(const struct sj_log *log, const char *level, const char *msg) {
  struct sj_buf b = {0};
  char now[64];
  if (log->fd < 0 && !strcmp(level, "error"))
    return;
  now_rfc3339(now, sizeof now);
  if (log->json) {
    sj_buf_str(&b, "{\"level\":");
    sj_buf_json_str(&b, level);
    sj_buf_str(&b, ",\"msg\":");
    sj_buf_json_str(&b, msg);
    sj_buf_str(&b, ",\"time\":");
    sj_buf_json_str(&b, now);
    sj_buf_str(&b, "}\n");
  } else {
    sj_buf_printf(&b, "time=\"%s\" level=%s msg=\"", now, level);
    for (const char *p = msg; *p; p++) {
      if (*p == '\\' || *p == '"')
        sj_buf_add(&b, "\\", 1);
      if (*p == '\n')
        sj_buf_add(&b, "\\n", 2);
      else
        sj_buf_add(&b, p, 1);
    }
    sj_buf_str(&b, "\"\n");
  }
  if (write(log->fd >= 0 ? log->fd : 2, b.data, b.len) < 0) {
    /* nothing to tell: the log is where we would say it */
  }
  free(b.data);
}
