/* Small fd and file helpers, safe in the forked child. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

int sj_write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int sj_write_close(int fd, const char *value) {
  if (fd < 0)
    return -1;
  int rc = sj_write_all(fd, value, strlen(value));
  int saved = errno; /* the write's error, not close's */
  close(fd);
  errno = saved;
  return rc;
}

int sj_write_file(const char *path, const char *value) {
  return sj_write_close(open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY), value);
}

void sj_close_fds_except(int from, const int *keep, size_t nkeep) {
  int sorted[nkeep > 0 ? nkeep : 1];
  size_t n = 0;
  /* Insertion sort of the fds to keep (a few, plus one per mount the
   * runtime opened for the init), skipping those below from. */
  for (size_t i = 0; i < nkeep; i++) {
    int fd = keep[i];
    if (fd < from)
      continue;
    size_t j = n;
    while (j > 0 && sorted[j - 1] > fd) {
      sorted[j] = sorted[j - 1];
      j--;
    }
    sorted[j] = fd;
    n++;
  }
  unsigned int cur = (unsigned int)from;
  for (size_t i = 0; i < n; i++) {
    unsigned int fd = (unsigned int)sorted[i];
    if (fd > cur)
      close_range(cur, fd - 1, 0);
    if (fd + 1 > cur)
      cur = fd + 1;
  }
  close_range(cur, ~0U, 0);
}

const char *sj_fdpath(char *buf, size_t size, int fd) {
  snprintf(buf, size, "/proc/self/fd/%d", fd);
  return buf;
}

void sj_reset_signals(void) {
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  /* SIG_IGN survives execve, handlers would be Python's: both go.  glibc
   * refuses its two internal signals (EINVAL), which is harmless. */
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      sigaction(sig, &dfl, NULL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
}
