/* The layer writer's errors: the first one is kept, naming the path in the
 * tree it concerns (sj_pack_error). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../extract/shown.h"
#include "internal.h"

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
    sjx_show_name(path[0] ? path : ".", shown, sizeof shown);
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
