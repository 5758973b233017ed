/* The state of the launched process (the init, or an exec'd process) while
 * it sets itself up: what every step between clone and execve reads.
 */
#ifndef SANGJA_CTX_H
#define SANGJA_CTX_H

#include <limits.h>
#include <sys/types.h>

#include "launch.h"

/* State of the child while it sets itself up. */
struct sj_ctx {
  const struct sj_plan *plan;
  int sync_fd;                 /* child end of the sync socket */
  pid_t ppid;                  /* the caller of sj_spawn; a change means it died */
  int userns;                  /* created or joined a user namespace */
  int mntns;                   /* created or joined a mount namespace */
  int own_root;                /* create: we set up a root of our own (in our mount namespace,
                                  or, without one, a rootfs other than the runtime's /) */
  int exec;                    /* joining an existing container (plan->exec_pidfd) */
  int rootfd;                  /* O_PATH of the rootfs bind mount (before pivot), or -1 */
  int null_tree;               /* mount fd: clone of the host /dev/null for masking, or -1 */
  int null_attached;           /* null_tree has been moved into our namespace */
  int tramp_fd;                /* the exec trampoline's sealed memfd (see launch.h) */
  int procfd;                  /* a procfs of our own (pids only), or -1: see process.c */
  int sysfd;                   /* a full one, for the sysctls only, or -1 */
  mode_t umask0;               /* the umask inherited from the parent */
  char exec_path[PATH_MAX];    /* argv[0] resolved against PATH */
  char home_env[PATH_MAX + 8]; /* "HOME=..." when the env has none, else "" */
  int fds_cloexec;             /* every fd past the preserved ones is close-on-exec already */
};

#endif
