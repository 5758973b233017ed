/* The front end's output: a growing buffer, JSON as the Python CLI writes it (sangja.jsonio:
 * ASCII only, Python's escapes), and runc's --log lines (text or json). */
#ifndef SJ_FRONT_OUT_H
#define SJ_FRONT_OUT_H

#include <stddef.h>

struct sj_buf {
  char *data;
  size_t len, cap;
};

void sj_buf_add(struct sj_buf *b, const char *s, size_t n);
void sj_buf_str(struct sj_buf *b, const char *s);
void sj_buf_printf(struct sj_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string, quoted, as json.dumps(ensure_ascii=True) writes it. */
void sj_buf_json_str(struct sj_buf *b, const char *s);

/* --log: where log lines go (-1: stderr), their format, and the lowest level written. */
struct sj_log {
  int fd;
  int json;
  int debug;
};

/* One log line at `level` ("warning", "error"): to the log file; with none, a warning goes
 * to stderr and an error does not (the CLI prints it once, as `sangja: msg`). */
void sj_log_write(const struct sj_log *log, const char *level, const char *msg);

#endif
