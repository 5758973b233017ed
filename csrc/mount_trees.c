/* Mount sources the runtime opens itself, before the init exists: a detached
 * copy of each (open_tree), made in the runtime's namespaces with its
 * credentials, which the init only moves into place.  Used where the init
 * could not do the bind itself: in a user namespace (a source under a
 * directory only the host's root may enter is out of its reach), and for
 * idmapped mounts (MOUNT_ATTR_IDMAP needs privileges over the source's
 * filesystem, and a user namespace holding the mapping).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "launch.h"
#include "util.h"

#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x00100000
#endif

int sj_source_tree(const char *source, int recursive, int userns_fd, int idmap_recursive,
                   struct sj_error *err) {
  memset(err, 0, sizeof *err);
  int tree = sj_open_tree(AT_FDCWD, source,
                          OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0));
  if (tree < 0)
    return sj_fail(err, errno, "mount %s: open_tree", source);
  /* A slave of the source's peers: what the host mounts below the source
   * later still reaches the container, nothing goes the other way. */
  struct sj_mount_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.propagation = MS_SLAVE;
  if (sj_mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr) < 0) {
    sj_fail(err, errno, "mount %s: make the copy a slave", source);
    goto fail;
  }
  if (userns_fd >= 0) {
    memset(&attr, 0, sizeof attr);
    attr.attr_set = MOUNT_ATTR_IDMAP;
    attr.userns_fd = (uint64_t)userns_fd;
    if (sj_mount_setattr(tree, "", AT_EMPTY_PATH | (idmap_recursive ? AT_RECURSIVE : 0),
                         &attr) < 0) {
      if (errno == EINVAL)
        sj_fail(err, errno, "mount %s: idmap (does its filesystem support idmapped mounts?)",
                source);
      else
        sj_fail(err, errno, "mount %s: idmap", source);
      goto fail;
    }
  }
  return tree;
fail:
  close(tree);
  return -1;
}

/* The holder of the namespace: waits until its end of the pipe reads EOF. */
__attribute__((noreturn)) static void hold_userns(int rd, int wr) {
  char c;
  close(wr);
  while (read(rd, &c, 1) < 0 && errno == EINTR)
    ;
  _exit(0);
}

static int write_map(pid_t pid, const char *name, const char *text, struct sj_error *err) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
  if (sj_write_file(path, text) < 0)
    return sj_fail(err, errno, "idmap: write %s (%s)", name, text);
  return 0;
}

int sj_userns_fd(const char *uid_map, const char *gid_map, struct sj_error *err) {
  memset(err, 0, sizeof *err);
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0)
    return sj_fail(err, errno, "idmap: pipe");
  /* No signal of the caller's (Python's handlers) may run in the child. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  struct sj_clone_args args;
  memset(&args, 0, sizeof args);
  args.flags = CLONE_NEWUSER;
  args.exit_signal = SIGCHLD;
  pid_t pid = (pid_t)sj_clone3(&args); /* a plain fork, without atfork handlers */
  if (pid == 0)
    hold_userns(p[0], p[1]);
  int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  close(p[0]);
  if (pid < 0) {
    close(p[1]);
    return sj_fail(err, clone_errno, "idmap: clone a user namespace");
  }
  int fd = -1;
  char path[64];
  if (write_map(pid, "uid_map", uid_map, err) == 0 && write_map(pid, "gid_map", gid_map, err) == 0) {
    snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      sj_fail(err, errno, "idmap: open %s", path);
  }
  close(p[1]); /* the holder exits */
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
    ;
  return fd;
}
