/* The extractor's errors: the first one is kept, naming the tar entry it
 * concerns (sj_extract_error). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* An entry name as shown in a message: control bytes escaped, very long
 * names shortened in the middle. */
static void show_name(const char *in, char *out, size_t cap) {
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

int sjx_fail(struct sj_extract_error *e, int err, const char *entry, const char *fmt, ...) {
  char what[SJ_EXTRACT_MSG_MAX / 2], shown[SJ_EXTRACT_MSG_MAX / 3];
  va_list ap;
  if (!e || e->msg[0])
    return -1; /* the first error is the one to report */
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  e->err = err;
  if (entry) {
    snprintf(e->entry, sizeof e->entry, "%s", entry);
    show_name(entry, shown, sizeof shown);
    snprintf(e->msg, sizeof e->msg, "layer entry \"%s\": %s", shown, what);
  } else {
    e->entry[0] = 0;
    snprintf(e->msg, sizeof e->msg, "layer: %s", what);
  }
  return -1;
}

int sjx_fail_sys(struct sj_extract_error *e, int err, const char *entry, const char *what) {
  char buf[128];
  return sjx_fail(e, err, entry, "%s: %s", what, strerror_r(err, buf, sizeof buf));
}
