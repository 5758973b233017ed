/* The layer writer's errors: the first one is kept, naming the path in the
 * tree it concerns (sj_pack_error). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* A path as shown in a message: control bytes escaped, very long paths
 * shortened in the middle. */
static void show_path(const char *in, char *out, size_t cap) {
  size_t n = strlen(in), w = 0;
  for (size_t i = 0; i < n && w + 8 < cap; i++) {
    unsigned char ch = (unsigned char)in[i];
    if (n > 600 && i == 250) {
      w += (size_t)snprintf(out + w, cap - w, "...");
      i = n - 250;
      ch = (unsigned char)in[i];
    }
    if (ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\')
      w += (size_t)snprintf(out + w, cap - w, "\\x%02x", ch);
    else
      out[w++] = (char)ch;
  }
  out[w] = 0;
}

int sjp_fail(struct sj_pack_error *e, int err, const char *path, const char *fmt, ...) {
  char what[SJP_MSG_MAX / 2], shown[SJP_MSG_MAX / 3];
  va_list ap;
  if (!e || e->msg[0])
    return -1; /* the first error is the one to report */
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  e->err = err;
  if (path) {
    snprintf(e->path, sizeof e->path, "%s", path);
    show_path(path[0] ? path : ".", shown, sizeof shown);
    snprintf(e->msg, sizeof e->msg, "\"%s\": %s", shown, what);
  } else {
    e->path[0] = 0;
    snprintf(e->msg, sizeof e->msg, "%s", what);
  }
  return -1;
}

int sjp_fail_sys(struct sj_pack_error *e, int err, const char *path, const char *what) {
  char buf[128];
  return sjp_fail(e, err, path, "%s: %s", what, strerror_r(err, buf, sizeof buf));
}
