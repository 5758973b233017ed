/* The extractor's errors: the first one is kept, naming the tar entry it
 * concerns (sj_extract_error). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "shown.h"

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
    sjx_show_name(entry, shown, sizeof shown);
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
