/* Error texts: errno + the step that failed, safe in the forked child. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

const char *sj_strerror(int errnum) {
#ifdef __GLIBC__
  /* strerrordesc_np: static, untranslated, no buffer (strerror may
   * format unknown values into a per-thread buffer and is localized). */
  const char *s = strerrordesc_np(errnum);
  return s ? s : "Unknown error";
#else
  return strerror(errnum);
#endif
}

const char *sj_errno_text(int errnum, char *buf, size_t size) {
  snprintf(buf, size, "%s", sj_strerror(errnum));
  /* The first letter only, and not that of an initialism ("RFS specific error"). */
  if (buf[0] >= 'A' && buf[0] <= 'Z' && buf[1] >= 'a' && buf[1] <= 'z')
    buf[0] = (char)(buf[0] - 'A' + 'a');
  return buf;
}

static int vfail(struct sj_error *err, int errnum, int with_errno, const char *fmt, va_list ap) {
  int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  if (n < 0)
    n = 0;
  if (with_errno && (size_t)n + 2 < sizeof err->msg) {
    err->msg[n] = ':';
    err->msg[n + 1] = ' ';
    sj_errno_text(errnum, err->msg + n + 2, sizeof err->msg - (size_t)n - 2);
  }
  err->err = errnum;
  return -1;
}

int sj_fail(struct sj_error *err, int errnum, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfail(err, errnum, 1, fmt, ap);
  va_end(ap);
  return -1;
}

int sj_failx(struct sj_error *err, int errnum, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfail(err, errnum, 0, fmt, ap);
  va_end(ap);
  return -1;
}
