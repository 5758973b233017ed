/* Raw syscalls of the launch path, and the kernel constants and structs they
 * take that glibc 2.36 may lack or hide behind <linux/mount.h>.
 *
 * Raw, because this runs in the forked child of a (possibly multi-threaded)
 * Python process: glibc's set*id wrappers would signal the parent's threads.
 */
#ifndef SANGJA_SYSCALLS_H
#define SANGJA_SYSCALLS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/mount.h> /* first: its MOUNT_ATTR_* etc. win over our fallbacks */
#include <sys/syscall.h>
#include <unistd.h>

/* ---- constants glibc 2.36 may lack or hide behind <linux/mount.h> ---- */

#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOVE_MOUNT_T_EMPTY_PATH
#define MOVE_MOUNT_T_EMPTY_PATH 0x00000040
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#endif
#ifndef MOUNT_ATTR__ATIME
#define MOUNT_ATTR__ATIME 0x00000070
#endif
#ifndef FSOPEN_CLOEXEC
#define FSOPEN_CLOEXEC 0x00000001
#endif
#ifndef FSMOUNT_CLOEXEC
#define FSMOUNT_CLOEXEC 0x00000001
#endif
#define SJ_FSCONFIG_SET_FLAG   0
#define SJ_FSCONFIG_SET_STRING 1
#ifndef FSCONFIG_CMD_CREATE
#define FSCONFIG_CMD_CREATE 6
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

/* The kernel ABI structs, under our own names so that they never clash
 * with whichever of <sys/mount.h> / <linux/mount.h> got included. */
struct sj_mount_attr {
  uint64_t attr_set;
  uint64_t attr_clr;
  uint64_t propagation;
  uint64_t userns_fd;
};

struct sj_open_how {
  uint64_t flags;
  uint64_t mode;
  uint64_t resolve;
};
#define SJ_RESOLVE_NO_XDEV       0x01
#define SJ_RESOLVE_NO_MAGICLINKS 0x02
#define SJ_RESOLVE_NO_SYMLINKS   0x04
#define SJ_RESOLVE_BENEATH       0x08
#define SJ_RESOLVE_IN_ROOT       0x10

struct sj_clone_args {
  uint64_t flags;
  uint64_t pidfd;
  uint64_t child_tid;
  uint64_t parent_tid;
  uint64_t exit_signal;
  uint64_t stack;
  uint64_t stack_size;
  uint64_t tls;
  uint64_t set_tid;
  uint64_t set_tid_size;
  uint64_t cgroup;
};

/* ---- raw syscalls ---- */

static inline long sj_clone3(struct sj_clone_args *args) {
  return syscall(SYS_clone3, args, sizeof *args);
}
static inline int sj_openat2(int dirfd, const char *path, uint64_t flags, uint64_t resolve) {
  struct sj_open_how how = {.flags = flags, .mode = 0, .resolve = resolve};
  return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}
static inline int sj_open_tree(int dirfd, const char *path, unsigned int flags) {
  return (int)syscall(SYS_open_tree, dirfd, path, flags);
}
static inline int sj_move_mount(int from_dfd, const char *from, int to_dfd, const char *to,
                                unsigned int flags) {
  return (int)syscall(SYS_move_mount, from_dfd, from, to_dfd, to, flags);
}
static inline int sj_mount_setattr(int dfd, const char *path, unsigned int flags,
                                   struct sj_mount_attr *attr) {
  return (int)syscall(SYS_mount_setattr, dfd, path, flags, attr, sizeof *attr);
}
static inline int sj_fsopen(const char *fstype, unsigned int flags) {
  return (int)syscall(SYS_fsopen, fstype, flags);
}
static inline int sj_fsconfig(int fd, unsigned int cmd, const char *key, const void *value,
                              int aux) {
  return (int)syscall(SYS_fsconfig, fd, cmd, key, value, aux);
}
static inline int sj_fsmount(int fd, unsigned int flags, unsigned int attr_flags) {
  return (int)syscall(SYS_fsmount, fd, flags, attr_flags);
}
static inline int sj_pidfd_open(pid_t pid) {
  return (int)syscall(SYS_pidfd_open, pid, 0);
}
static inline int sj_pivot_root(const char *new_root, const char *put_old) {
  return (int)syscall(SYS_pivot_root, new_root, put_old);
}
/* The credential syscalls, raw: glibc's wrappers would try to broadcast
 * the change to threads that existed in the Python parent. */
static inline int sj_setresuid(uid_t r, uid_t e, uid_t s) {
  return (int)syscall(SYS_setresuid, r, e, s);
}
static inline int sj_setresgid(gid_t r, gid_t e, gid_t s) {
  return (int)syscall(SYS_setresgid, r, e, s);
}
static inline int sj_setgroups(size_t n, const gid_t *gids) {
  return (int)syscall(SYS_setgroups, n, gids);
}
/* The kernel's getcwd: glibc turns "(unreachable)/x" into ENOENT. */
static inline long sj_getcwd(char *buf, size_t size) {
  return syscall(SYS_getcwd, buf, size);
}

#endif
