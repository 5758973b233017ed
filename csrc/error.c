/* Error texts: errno + the step that failed, safe in the forked child. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

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

static int vfail(struct sj_error *err, int errnum, int with_errno, const char *fmt,
                 va_list ap) {
  int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  if (n < 0)
    n = 0;
  if (with_errno && (size_t)n + 2 < sizeof err->msg) {
    snprintf(err->msg + n, sizeof err->msg - (size_t)n, ": %s", sj_strerror(errnum));
    /* Lower case, as Go prints errno texts: engines match "permission denied",
     * "no such file or directory" to choose their exit codes (126, 127). */
    char *c = err->msg + n + 2;
    if (*c >= 'A' && *c <= 'Z' && c[1] >= 'a' && c[1] <= 'z')
      *c = (char)(*c - 'A' + 'a');
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
