/* Small fd and file helpers, safe in the forked child: no malloc, no stdio
 * streams, no locks.  snprintf into a stack buffer is fine.
 */
#ifndef SANGJA_UTIL_H
#define SANGJA_UTIL_H

#include <stddef.h>

#pragma GCC visibility push(hidden)

/* Write all of buf (retrying EINTR and short writes).  0 or -1 + errno. */
int sj_write_all(int fd, const void *buf, size_t len);
/* Write value to fd (-1: fail, errno kept) and close it; the write's errno survives. */
int sj_write_close(int fd, const char *value);
/* Open path and write the string value to it.  0 or -1 + errno. */
int sj_write_file(const char *path, const char *value);

/* Close fds >= from except those in keep[] (duplicates/negatives allowed). */
void sj_close_fds_except(int from, const int *keep, size_t nkeep);

/* Every signal disposition back to default, then all signals unblocked
 * (a child of the runtime, before it runs anything else). */
void sj_reset_signals(void);

/* "/proc/self/fd/<fd>" into buf (at least 32 bytes). */
const char *sj_fdpath(char *buf, size_t size, int fd);

#pragma GCC visibility pop

#endif
