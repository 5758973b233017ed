/* The exec trampoline, launch side: the sealed memfd that holds the program
 * (csrc/sangja-exec/main.c, embedded at build time), made by the caller
 * of sj_spawn and inherited by the init, and the execveat through it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "error.h"
#include "sj_trampoline_blob.h"
#include "syscalls.h"
#include "trampoline.h"
#include "util.h"

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif

int sj_trampoline_create(struct sj_error *err) {
  /* MFD_EXEC says so explicitly (kernels with vm.memfd_noexec); older
   * kernels refuse the flag, and their memfds are executable anyway. */
  int fd = memfd_create("sangja-exec", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
  if (fd < 0 && errno == EINVAL)
    fd = memfd_create("sangja-exec", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0)
    return sj_fail(err, errno, "create the exec trampoline: memfd_create");
  /* Execute-only: a process that may not read what it runs is not dumpable
   * (nothing in the container can reach the trampoline's /proc entries), unless
   * it has CAP_DAC_OVERRIDE or CAP_DAC_READ_SEARCH over the memfd. */
  if (sj_write_all(fd, sj_trampoline_blob, sizeof sj_trampoline_blob) < 0 || fchmod(fd, 0111) < 0) {
    sj_fail(err, errno, "create the exec trampoline: write");
    close(fd);
    return -1;
  }
  /* Nothing can change it from now on: not its bytes, size or mode. */
  (void)fcntl(fd, F_ADD_SEALS, F_SEAL_EXEC); /* 6.3+ */
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0) {
    sj_fail(err, errno, "create the exec trampoline: seal");
    close(fd);
    return -1;
  }
  return fd;
}

int sj_trampoline_exec(int tfd, const char *path, const char *report, const char *const *argv,
                       const char *const *envp) {
  static const char *const empty[] = {NULL};
  size_t n = 0;
  while (argv && argv[n])
    n++;
  const char *targv[n + 3];
  targv[0] = path;
  targv[1] = report;
  for (size_t i = 0; i < n; i++)
    targv[i + 2] = argv[i];
  targv[n + 2] = NULL;
  return (int)syscall(SYS_execveat, tfd, "", (char *const *)targv,
                      (char *const *)(envp ? envp : empty), AT_EMPTY_PATH);
}
