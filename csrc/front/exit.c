/* The front end's ways out: hand the call to the Python CLI, or fail with a message. */
#include "exit.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char **g_argv;
static struct sj_log *g_log;

void sj_exit_init(char **argv, struct sj_log *log) {
  g_argv = argv;
  g_log = log;
}

/* The Python CLI, with argv unchanged. Its path: `sangja-py` beside our own binary. */
void sj_hand_off(void) {
  char self[PATH_MAX], py[PATH_MAX + 16];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n < 0) {
    fprintf(stderr, "sangja: readlink /proc/self/exe: %s\n", strerror(errno));
    _exit(1);
  }
  self[n] = 0;
  char *slash = strrchr(self, '/');
  if (slash)
    *slash = 0;
  snprintf(py, sizeof py, "%s/sangja-py", self);
  execv(py, g_argv);
  fprintf(stderr, "sangja: exec %s: %s\n", py, strerror(errno));
  _exit(1);
}

void sj_die(const char *fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  sj_log_write(g_log, "error", msg);
  fprintf(stderr, "sangja: %s\n", msg);
  exit(1);
}

void sj_warn(const char *fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  sj_log_write(g_log, "warning", msg);
}
