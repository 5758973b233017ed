/* The container's terminal: a pty from the container's own devpts, the
 * master handed to whoever listens on the console socket (runc's protocol:
 * one SCM_RIGHTS message, the pty's path as payload), the slave becoming
 * the init's controlling terminal, stdio and /dev/console.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>

#include "init.h"
#include "util.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

static int send_fd(int sock, int fd, const char *name) {
  char cbuf[CMSG_SPACE(sizeof(int))];
  memset(cbuf, 0, sizeof cbuf);
  struct iovec iov = {.iov_base = (void *)name, .iov_len = strlen(name)};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                       .msg_controllen = sizeof cbuf};
  struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cmsg), &fd, sizeof fd);
  ssize_t n;
  do
    n = sendmsg(sock, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n < 0 ? -1 : 0;
}

/* Open the master; fill path with its slave's name. */
static int open_master(const struct sj_plan *plan, char *path, size_t size,
                       struct sj_error *err) {
  int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0)
    return sj_fail(err, errno, "console: open /dev/ptmx");
  int unlock = 0;
  unsigned int n = 0;
  if (ioctl(master, TIOCSPTLCK, &unlock) < 0) {
    sj_fail(err, errno, "console: unlockpt");
    goto fail;
  }
  if (ioctl(master, TIOCGPTN, &n) < 0) {
    sj_fail(err, errno, "console: ptsname");
    goto fail;
  }
  snprintf(path, size, "/dev/pts/%u", n);
  if (plan->console_rows || plan->console_cols) {
    struct winsize ws = {.ws_row = (unsigned short)plan->console_rows,
                         .ws_col = (unsigned short)plan->console_cols};
    if (ioctl(master, TIOCSWINSZ, &ws) < 0) {
      sj_fail(err, errno, "console: set the window size");
      goto fail;
    }
  }
  return master;
fail:
  close(master);
  return -1;
}

/* The slave, from the master itself when the kernel can (no path lookup
 * that a crafted /dev/pts could divert). */
static int open_slave(int master, const char *path, struct sj_error *err) {
  int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0)
    slave = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NOFOLLOW);
  if (slave < 0)
    return sj_fail(err, errno, "console: open %s", path);
  /* It is the master's peer, by device number (a path could have been
   * anything: what becomes /dev/console must be this pty, CVE-2025-52565). */
  struct stat st;
  unsigned int n = 0;
  if (fstat(slave, &st) < 0 || !S_ISCHR(st.st_mode) || major(st.st_rdev) < 136 ||
      major(st.st_rdev) > 143 || ioctl(master, TIOCGPTN, &n) < 0 ||
      (((major(st.st_rdev) - 136) << 8) | minor(st.st_rdev)) != n) {
    close(slave);
    return sj_failx(err, EINVAL, "console: %s is not the pty's slave", path);
  }
  if (slave <= 2) { /* stdio was closed: keep it clear of the dup3 targets */
    int moved = fcntl(slave, F_DUPFD_CLOEXEC, 3);
    close(slave);
    if (moved < 0)
      return sj_fail(err, errno, "console: dup %s", path);
    slave = moved;
  }
  return slave;
}

/* The mount point for /dev/console: a regular file of our own making.
 * Whatever the rootfs left there (a symlink to a procfs file, a device) is
 * replaced, never followed. */
static int console_target(struct sj_ctx *ctx, struct sj_error *err) {
  char name[NAME_MAX + 1];
  int dir = sj_parent_in_root(ctx->rootfd, "/dev/console", name, sizeof name);
  if (dir < 0)
    return sj_fail(err, errno, "console: create /dev/console");
  struct stat st;
  int fd = -1;
  if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode) &&
      unlinkat(dir, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0) {
    sj_fail(err, errno, "console: remove what the rootfs has at /dev/console");
    goto out;
  }
  int made = openat(dir, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY,
                    0644);
  if (made < 0) {
    sj_fail(err, errno, "console: create /dev/console");
    goto out;
  }
  close(made);
  fd = openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    sj_fail(err, errno, "console: open /dev/console");
out:
  close(dir);
  return fd;
}

/* /dev/console is the pty too (systemd and friends write there). */
static int mount_dev_console(struct sj_ctx *ctx, int slave, struct sj_error *err) {
  int target = console_target(ctx, err);
  if (target < 0)
    return -1;
  int tree = sj_open_tree(slave, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
  int rc = 0;
  if (tree < 0 ||
      sj_move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    rc = sj_fail(err, errno, "console: mount the pty on /dev/console");
  if (tree >= 0)
    close(tree);
  close(target);
  return rc;
}

static int make_controlling(int slave, struct sj_error *err) {
  if (setsid() < 0 && errno != EPERM) /* EPERM: already a session leader */
    return sj_fail(err, errno, "console: setsid");
  if (ioctl(slave, TIOCSCTTY, 0) < 0)
    return sj_fail(err, errno, "console: set the controlling terminal");
  for (int fd = 0; fd <= 2; fd++)
    if (dup3(slave, fd, 0) < 0)
      return sj_fail(err, errno, "console: dup the pty onto fd %d", fd);
  return 0;
}

int sj_setup_console(struct sj_ctx *ctx, struct sj_error *err) {
  const struct sj_plan *plan = ctx->plan;
  if (plan->console_fd < 0)
    return 0;
  char path[32];
  int master = open_master(plan, path, sizeof path, err);
  if (master < 0)
    return -1;
  int slave = open_slave(master, path, err);
  if (slave < 0) {
    close(master);
    return -1;
  }
  int rc = 0;
  if (send_fd(plan->console_fd, master, path) < 0)
    rc = sj_fail(err, errno, "console: send the pty master to the console socket");
  close(master);
  close(plan->console_fd);
  if (rc == 0 && ctx->own_root)
    rc = mount_dev_console(ctx, slave, err);
  if (rc == 0)
    rc = make_controlling(slave, err);
  close(slave);
  return rc;
}
