/* The init's process attributes and its last steps: its own procfs,
 * hostname, sysctls, personality, rlimits, stdio ownership, cwd, executable
 * lookup, LSM labels, the exec fifo and execve.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <limits.h>
#include <sched.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#include "init.h"
#include "util.h"

#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif

#define SJ_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

int sj_set_hostname(struct sj_ctx *ctx, struct sj_error *err) {
  const struct sj_plan *plan = ctx->plan;
  if (plan->hostname && sethostname(plan->hostname, strlen(plan->hostname)) < 0)
    return sj_fail(err, errno, "sethostname %s", plan->hostname);
  if (plan->domainname && setdomainname(plan->domainname, strlen(plan->domainname)) < 0)
    return sj_fail(err, errno, "setdomainname %s", plan->domainname);
  return 0;
}

/* ---- a procfs of our own ----
 *
 * Everything the init writes to procfs (sysctls, LSM attributes) and the
 * exec fifo's reopening go through a procfs instance we mount ourselves,
 * detached (fsopen/fsmount: it is never attached anywhere, so nothing in
 * the container can cover or replace it), of the pid namespace we are in.
 * Never through the container's /proc, which an image or a mount may have
 * faked (CVE-2019-16884, CVE-2023-27561).  The one kept for later is
 * pids-only (subset=pid: no /proc/sys, nothing the container's own /proc
 * does not show); the full one is only opened for the sysctls and closed.
 * The uid/gid maps, setgroups and oom_score_adj are written by the parent,
 * through the runtime's /proc. */

#define SJ_PROC_ROOT_INO 1

static int mount_procfs(int pids_only) {
  int fs = sj_fsopen("proc", FSOPEN_CLOEXEC);
  if (fs < 0)
    return -1;
  int mnt = -1;
  if (pids_only && sj_fsconfig(fs, SJ_FSCONFIG_SET_STRING, "subset", "pid", 0) < 0) {
    close(fs);
    return -1;
  }
  if (sj_fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0)
    mnt = sj_fsmount(fs, FSMOUNT_CLOEXEC,
                     MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
  int saved = errno;
  close(fs);
  errno = saved;
  return mnt;
}

/* Where we may not mount one (an old kernel; a user namespace whose mount
 * namespace shows no full procfs), the container's /proc, if it is the
 * root of a procfs. */
static int verified_proc_dir(struct sj_error *err) {
  int fd = sj_openat2(AT_FDCWD, "/proc", O_PATH | O_DIRECTORY | O_CLOEXEC,
                      SJ_RESOLVE_NO_SYMLINKS | SJ_RESOLVE_NO_MAGICLINKS);
  if (fd < 0)
    return sj_fail(err, errno, "open /proc (is /proc mounted in the container?)");
  struct statfs sfs;
  struct stat st;
  if (fstatfs(fd, &sfs) < 0 || sfs.f_type != PROC_SUPER_MAGIC || fstat(fd, &st) < 0 ||
      st.st_ino != SJ_PROC_ROOT_INO) {
    close(fd);
    return sj_failx(err, EINVAL, "/proc in the container is not a procfs");
  }
  return fd;
}

int sj_procfs(struct sj_ctx *ctx, int full, struct sj_error *err) {
  int *slot = full ? &ctx->sysfd : &ctx->procfd;
  if (*slot >= 0)
    return *slot;
  int fd = mount_procfs(!full);
  if (fd < 0 && !full && errno == EINVAL)
    fd = mount_procfs(0); /* before 5.8: no subset=pid */
  if (fd < 0)
    fd = verified_proc_dir(err);
  if (fd >= 0)
    *slot = fd;
  return fd;
}

void sj_procfs_early(struct sj_ctx *ctx) {
  const struct sj_plan *plan = ctx->plan;
  if (plan->nsysctls && ctx->sysfd < 0)
    ctx->sysfd = mount_procfs(0);
  if ((plan->exec_fifo_fd >= 0 || plan->apparmor_profile || plan->selinux_label) &&
      ctx->procfd < 0) {
    ctx->procfd = mount_procfs(1);
    if (ctx->procfd < 0 && errno == EINVAL)
      ctx->procfd = mount_procfs(0);
  }
}

int sj_set_sysctls(struct sj_ctx *ctx, struct sj_error *err) {
  const struct sj_plan *plan = ctx->plan;
  if (plan->nsysctls == 0)
    return 0;
  int proc = sj_procfs(ctx, 1, err);
  if (proc < 0) {
    char why[SJ_ERRMSG_MAX];
    memcpy(why, err->msg, sizeof why);
    return sj_failx(err, err->err, "sysctl: %.480s", why);
  }
  /* The values belong to the namespaces we are in, whichever procfs shows them. */
  int dir = sj_openat2(proc, "sys", O_PATH | O_DIRECTORY | O_CLOEXEC,
                       SJ_RESOLVE_BENEATH | SJ_RESOLVE_NO_SYMLINKS | SJ_RESOLVE_NO_XDEV);
  int saved = errno;
  close(proc); /* an unmasked /proc/sys: gone as soon as it has served */
  ctx->sysfd = -1;
  if (dir < 0)
    return sj_fail(err, saved, "sysctl: open /proc/sys");
  int rc = 0;
  for (size_t i = 0; i < plan->nsysctls && rc == 0; i++) {
    const struct sj_sysctl *s = &plan->sysctls[i];
    int fd = sj_openat2(dir, s->path, O_WRONLY | O_CLOEXEC | O_NOCTTY,
                        SJ_RESOLVE_BENEATH | SJ_RESOLVE_NO_SYMLINKS | SJ_RESOLVE_NO_XDEV);
    if (fd < 0) {
      rc = sj_fail(err, errno, "sysctl: open /proc/sys/%s", s->path);
      break;
    }
    if (sj_write_all(fd, s->value, strlen(s->value)) < 0)
      rc = sj_fail(err, errno, "sysctl: write %s to /proc/sys/%s", s->value, s->path);
    close(fd);
  }
  close(dir);
  return rc;
}

static const char *rlimit_name(int resource, char *buf, size_t size) {
  static const char *const names[] = {
      "RLIMIT_CPU",     "RLIMIT_FSIZE",   "RLIMIT_DATA",     "RLIMIT_STACK",
      "RLIMIT_CORE",    "RLIMIT_RSS",     "RLIMIT_NPROC",    "RLIMIT_NOFILE",
      "RLIMIT_MEMLOCK", "RLIMIT_AS",      "RLIMIT_LOCKS",    "RLIMIT_SIGPENDING",
      "RLIMIT_MSGQUEUE", "RLIMIT_NICE",   "RLIMIT_RTPRIO",   "RLIMIT_RTTIME",
  };
  if (resource >= 0 && (size_t)resource < sizeof names / sizeof names[0])
    return names[resource];
  snprintf(buf, size, "resource %d", resource);
  return buf;
}

int sj_set_process_attrs(struct sj_ctx *ctx, struct sj_error *err) {
  const struct sj_plan *plan = ctx->plan;
  if (plan->personality != -1 && personality((unsigned long)plan->personality) == -1)
    return sj_fail(err, errno, "personality 0x%lx", (unsigned long)plan->personality);
  for (size_t i = 0; i < plan->nrlimits; i++) {
    const struct sj_rlimit *r = &plan->rlimits[i];
    struct rlimit lim = {.rlim_cur = (rlim_t)r->soft, .rlim_max = (rlim_t)r->hard};
    if (setrlimit((__rlimit_resource_t)r->resource, &lim) < 0) {
      char buf[32];
      return sj_fail(err, errno, "setrlimit %s", rlimit_name(r->resource, buf, sizeof buf));
    }
  }
  return 0;
}

/* Give the user its stdio (a pipe or pty created by root would otherwise
 * not be reopenable through /dev/stdout), as runc does.  /dev/null and
 * files we may not chown (owner unmapped in a user ns, read-only) stay. */
int sj_fix_stdio_owner(struct sj_ctx *ctx, struct sj_error *err) {
  uid_t uid = ctx->plan->uid;
  for (int fd = 0; fd <= 2; fd++) {
    struct stat st;
    if (fstat(fd, &st) < 0)
      continue;
    /* Pipes, fifos, sockets and terminals only, as the user must be able to
     * reopen them through /proc/self/fd.  Unlike runc, never a regular file
     * or another device: stdio redirected to a host file must not change
     * that file's owner. */
    int pipe_like = S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode);
    if (!(pipe_like || (S_ISCHR(st.st_mode) && isatty(fd))) || st.st_uid == uid)
      continue;
    if (fchown(fd, uid, (gid_t)-1) < 0 && errno != EINVAL && errno != EPERM && errno != EROFS)
      return sj_fail(err, errno, "chown stdio fd %d", fd);
  }
  return 0;
}

int sj_loopback_up(struct sj_ctx *ctx, struct sj_error *err) {
  if (!(ctx->plan->clone_flags & CLONE_NEWNET))
    return 0;
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0)
    return sj_fail(err, errno, "bring lo up: socket");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  int rc = ioctl(s, SIOCGIFFLAGS, &ifr);
  if (rc == 0 && !(ifr.ifr_flags & IFF_UP)) {
    ifr.ifr_flags |= IFF_UP;
    rc = ioctl(s, SIOCSIFFLAGS, &ifr);
  }
  int saved = errno;
  close(s);
  if (rc < 0)
    return sj_fail(err, saved, "bring lo up");
  return 0;
}

/* The cwd, resolved in the root we are in (never through a magic link: a
 * cwd of /proc/self/fd/N would be one of our own fds). -> O_PATH fd or -1. */
static int open_cwd(const char *cwd, int flags) {
  int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0)
    return -1;
  int fd = sj_open_in_root(root, cwd, flags);
  if (fd < 0 && errno == ELOOP) {
    /* A magic link (or a symlink loop) as the last component: that is no
     * directory of the container's. */
    int link = sj_open_in_root(root, cwd, O_PATH | O_NOFOLLOW);
    if (link >= 0) {
      close(link);
      errno = ENOTDIR;
    } else {
      errno = ELOOP;
    }
  }
  int saved = errno;
  close(root);
  errno = saved;
  return fd;
}

/* A missing cwd is created (0755, as root, before the root may go
 * read-only), as runc does. */
int sj_make_cwd(struct sj_ctx *ctx, struct sj_error *err) {
  const char *cwd = ctx->plan->cwd;
  if (!cwd || !*cwd)
    return 0;
  int fd = open_cwd(cwd, O_PATH);
  if (fd >= 0 || errno != ENOENT) {
    if (fd >= 0)
      close(fd);
    return 0; /* there, or chdir will say what is wrong with it */
  }
  int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0)
    return sj_fail(err, errno, "open /");
  fd = sj_mkdir_in_root(root, cwd, 0755);
  int saved = errno;
  close(root);
  if (fd < 0)
    return sj_fail(err, saved, "create cwd %s", cwd);
  close(fd);
  return 0;
}

/* One /etc/passwd line (name:passwd:uid:gid:gecos:home:shell, changed in
 * place): 1 and HOME set when it is uid's entry, else 0. */
static int passwd_home(struct sj_ctx *ctx, char *line) {
  char *f[7] = {line};
  int nf = 1;
  for (char *p = line; *p && nf < 7; p++)
    if (*p == ':') {
      *p = '\0';
      f[nf++] = p + 1;
    }
  char *end;
  if (nf < 6 || !*f[2])
    return 0;
  unsigned long uid = strtoul(f[2], &end, 10);
  if (*end != '\0' || uid != (unsigned long)ctx->plan->uid)
    return 0;
  if (*f[5])
    snprintf(ctx->home_env, sizeof ctx->home_env, "HOME=%s", f[5]);
  return 1;
}

/* HOME from the container's /etc/passwd entry of our uid ("/" without
 * one), when the process env does not set it: what runc and shells expect.
 * The last line counts too when the file does not end with a newline. */
void sj_default_home(struct sj_ctx *ctx) {
  const struct sj_plan *plan = ctx->plan;
  ctx->home_env[0] = '\0';
  for (const char *const *e = plan->envp; e && *e; e++)
    if (strncmp(*e, "HOME=", 5) == 0)
      return;
  snprintf(ctx->home_env, sizeof ctx->home_env, "HOME=/");
  int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return;
  char buf[8192], line[4096];
  size_t len = 0;
  ssize_t n;
  int done = 0;
  while (!done && (n = read(fd, buf, sizeof buf)) > 0) {
    for (ssize_t i = 0; i < n && !done; i++) {
      if (buf[i] != '\n') {
        if (len < sizeof line - 1)
          line[len++] = buf[i];
        continue;
      }
      line[len] = '\0';
      len = 0;
      done = passwd_home(ctx, line);
    }
  }
  if (!done && len > 0) {
    line[len] = '\0';
    passwd_home(ctx, line);
  }
  close(fd);
}

int sj_chdir_cwd(struct sj_ctx *ctx, int as_user, int *done, struct sj_error *err) {
  const char *cwd = ctx->plan->cwd && *ctx->plan->cwd ? ctx->plan->cwd : "/";
  if (!*done) {
    int fd = open_cwd(cwd, O_PATH | O_DIRECTORY);
    int rc = fd < 0 ? -1 : fchdir(fd);
    int saved = errno;
    if (fd >= 0)
      close(fd);
    if (rc < 0) {
      if (!as_user && saved == EACCES)
        return 0; /* try again once we are the user */
      return sj_fail(err, saved, "chdir %s", cwd);
    }
    *done = 1;
  }
  if (!as_user)
    return 0;
  /* A cwd reached through a mount from outside the root (an fd the init
   * held: /proc/self/fd/N, CVE-2024-21626) is reported by the kernel as
   * "(unreachable)/...": the process would escape with it. */
  char buf[PATH_MAX];
  if (sj_getcwd(buf, sizeof buf) < 0)
    return sj_fail(err, errno, "getcwd");
  if (buf[0] != '/')
    return sj_failx(err, EPERM, "cwd %s is outside the container", cwd);
  return 0;
}

/* strerror in lower case, as Go prints errors (engines match these texts). */
static const char *go_strerror(int errnum, char *buf, size_t size) {
  snprintf(buf, size, "%s", sj_strerror(errnum));
  if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
    buf[0] = (char)(buf[0] - 'A' + 'a');
  return buf;
}

/* 0 if path is a regular file we may execute, else -1 + errno. */
static int check_executable(const char *path) {
  struct stat st;
  if (stat(path, &st) < 0)
    return -1;
  if (!S_ISREG(st.st_mode)) {
    errno = EACCES; /* what execve would say */
    return -1;
  }
  /* AT_EACCESS: the effective ids and capabilities, as execve uses. */
  return faccessat(AT_FDCWD, path, X_OK, AT_EACCESS);
}

int sj_lookup_exec(struct sj_ctx *ctx, struct sj_error *err) {
  const struct sj_plan *plan = ctx->plan;
  const char *file = plan->argv ? plan->argv[0] : NULL;
  char ebuf[64];
  if (!file || !*file)
    return sj_failx(err, EINVAL, "exec: no command given (process.args is empty)");

  if (strchr(file, '/')) {
    if (check_executable(file) < 0) {
      int e = errno;
      return sj_failx(err, e, "exec: \"%s\": %s", file, go_strerror(e, ebuf, sizeof ebuf));
    }
    if (strlen(file) >= sizeof ctx->exec_path)
      return sj_failx(err, ENAMETOOLONG, "exec: \"%s\": file name too long", file);
    strcpy(ctx->exec_path, file);
    return 0;
  }

  const char *path = plan->path_env ? plan->path_env : SJ_DEFAULT_PATH;
  for (const char *p = path;; p++) {
    const char *end = strchrnul(p, ':');
    size_t dlen = (size_t)(end - p);
    const char *dir = dlen ? p : ".";
    if (dlen == 0)
      dlen = 1;
    int n = snprintf(ctx->exec_path, sizeof ctx->exec_path, "%.*s/%s", (int)dlen, dir, file);
    if (n > 0 && (size_t)n < sizeof ctx->exec_path && check_executable(ctx->exec_path) == 0)
      return 0;
    if (*end == '\0')
      break;
    p = end;
  }
  ctx->exec_path[0] = '\0';
  return sj_failx(err, ENOENT, "exec: \"%s\": executable file not found in $PATH", file);
}

/* "self/fd/<fd>" of our own procfs, into buf. */
static const char *self_fd(char *buf, size_t size, int fd) {
  snprintf(buf, size, "self/fd/%d", fd);
  return buf;
}

/* Before READY: make sure the fifo will be reachable and writable for the
 * user (the wait itself comes after READY, with no one to report to). */
int sj_check_exec_fifo(struct sj_ctx *ctx, struct sj_error *err) {
  int fd = ctx->plan->exec_fifo_fd;
  if (fd < 0)
    return 0;
  char path[32];
  struct stat st;
  int proc = ctx->procfd;
  if (proc < 0)
    return sj_failx(err, EBADF, "exec fifo: no procfs to reopen it through");
  if (fstatat(proc, self_fd(path, sizeof path, fd), &st, 0) < 0)
    return sj_fail(err, errno, "exec fifo: stat /proc/%s", path);
  if (!S_ISFIFO(st.st_mode))
    return sj_failx(err, EINVAL, "exec fifo: fd %d is not a fifo", fd);
  if (faccessat(proc, path, W_OK, AT_EACCESS) < 0)
    return sj_fail(err, errno, "exec fifo: open for writing as uid %u", (unsigned int)ctx->plan->uid);
  return 0;
}

int sj_open_exec_fifo(struct sj_ctx *ctx, struct sj_error *err) {
  int pathfd = ctx->plan->exec_fifo_fd;
  if (pathfd < 0)
    return -1;
  char path[32];
  int fd;
  do
    fd = openat(ctx->procfd, self_fd(path, sizeof path, pathfd), O_WRONLY | O_CLOEXEC | O_NOCTTY);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    sj_fail(err, errno, "open exec fifo");
    return -2;
  }
  /* The same fifo as the one we were given (the procfs is ours, but check). */
  struct stat a, b;
  if (fstat(fd, &a) < 0 || fstat(pathfd, &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
    close(fd);
    sj_failx(err, EINVAL, "open exec fifo: reopened something else");
    return -2;
  }
  close(pathfd);
  close(ctx->procfd); /* the last use of our procfs */
  ctx->procfd = -1;
  return fd;
}

int sj_release_exec_fifo(struct sj_ctx *ctx, int fd, const struct sj_error *fail,
                         struct sj_error *err) {
  (void)ctx;
  if (fd < 0)
    return 0;
  /* One write, shorter than PIPE_BUF: `start` reads it whole. */
  char buf[SJ_ERRMSG_MAX + 1];
  int n = fail ? snprintf(buf, sizeof buf, "1%s", fail->msg) : snprintf(buf, sizeof buf, "0");
  if (n < 0 || (size_t)n >= sizeof buf)
    n = (int)sizeof buf - 1;
  int rc = 0;
  if (sj_write_all(fd, buf, (size_t)n) < 0)
    rc = sj_fail(err, errno, "write exec fifo");
  close(fd);
  return rc;
}

/* Write value to procfs file rel ("self/attr/exec") through our procfs. */
static int write_proc_attr(struct sj_ctx *ctx, const char *rel, const char *value) {
  return sj_write_close(sj_openat2(ctx->procfd, rel, O_WRONLY | O_CLOEXEC | O_NOCTTY,
                                   SJ_RESOLVE_BENEATH | SJ_RESOLVE_NO_XDEV |
                                       SJ_RESOLVE_NO_MAGICLINKS),
                        value);
}

/* AppArmor profile and SELinux label for the coming execve (as runc: the
 * "exec" attributes, applied by the kernel at execve).  AppArmor has its
 * own attr directory since 5.8 when several LSMs are stacked.  Written
 * through our own procfs, never the container's /proc: a fake one would
 * take the write and leave the process unconfined (CVE-2019-16884). */
int sj_set_lsm_labels(struct sj_ctx *ctx, struct sj_error *err) {
  const struct sj_plan *plan = ctx->plan;
  if (plan->apparmor_profile) {
    char text[SJ_ERRMSG_MAX];
    snprintf(text, sizeof text, "exec %s", plan->apparmor_profile);
    const char *path = "self/attr/apparmor/exec";
    int rc = write_proc_attr(ctx, path, text);
    if (rc < 0 && errno == ENOENT) {
      path = "self/attr/exec";
      rc = write_proc_attr(ctx, path, text);
    }
    if (rc < 0)
      return sj_fail(err, errno, "apparmor failed to apply profile: write /proc/%s", path);
  }
  if (plan->selinux_label && write_proc_attr(ctx, "self/attr/exec", plan->selinux_label) < 0)
    return sj_fail(err, errno, "selinux: set the exec label: write /proc/self/attr/exec");
  return 0;
}

void sj_late_error(struct sj_ctx *ctx, const struct sj_error *err) {
  int fd = ctx->plan->log_fd >= 0 ? ctx->plan->log_fd : 2;
  char line[SJ_ERRMSG_MAX + 2];
  int n = snprintf(line, sizeof line, "%s\n", err->msg);
  if (n > 0)
    sj_write_all(fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

void sj_prepare_exec_fds(struct sj_ctx *ctx) {
  const struct sj_plan *plan = ctx->plan;
  int npreserve = plan->preserve_fds > 0 ? plan->preserve_fds : 0;
  /* The preserved fds are passed on, whatever their flag in the parent. */
  for (int fd = 3; fd < 3 + npreserve; fd++) {
    int flags = fcntl(fd, F_GETFD);
    if (flags >= 0 && (flags & FD_CLOEXEC))
      fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
  }
  /* Everything else closes at execve; until then ours stay usable (the sync
   * socket, log_fd for reporting an execve failure).  Every fd opened from
   * here on is close-on-exec by itself. */
  ctx->fds_cloexec = close_range(3 + (unsigned int)npreserve, ~0U, CLOSE_RANGE_CLOEXEC) == 0;
}

void sj_exec(struct sj_ctx *ctx) {
  const struct sj_plan *plan = ctx->plan;
  int npreserve = plan->preserve_fds > 0 ? plan->preserve_fds : 0;
  /* Before 5.11 (no CLOSE_RANGE_CLOEXEC): close what is not ours now. */
  if (!ctx->fds_cloexec) {
    int keep[3] = {plan->log_fd, ctx->tramp_fd, ctx->sync_fd};
    sj_close_fds_except(3 + npreserve, keep, 3);
    for (int i = 0; i < 3; i++)
      if (keep[i] >= 3 + npreserve)
        fcntl(keep[i], F_SETFD, FD_CLOEXEC);
  }

  size_t nenv = 0;
  while (plan->envp && plan->envp[nenv])
    nenv++;
  const char *env[nenv + 2];
  for (size_t i = 0; i < nenv; i++)
    env[i] = plan->envp[i];
  if (ctx->home_env[0])
    env[nenv++] = ctx->home_env;
  env[nenv] = NULL;

  /* Through the exec trampoline (see launch.h): it reports a failed execve
   * of the program itself, to exec's caller over the sync socket (kept open
   * for it; it closes at the program's execve) or to stderr. */
  char report[24];
  if (ctx->sync_fd >= 0) {
    snprintf(report, sizeof report, "m%d", ctx->sync_fd);
    fcntl(ctx->sync_fd, F_SETFD, 0);
  } else {
    snprintf(report, sizeof report, "t2");
  }
  sj_trampoline_exec(ctx->tramp_fd, ctx->exec_path, report, plan->argv, env);

  struct sj_error err;
  char ebuf[64];
  int e = errno;
  sj_failx(&err, e, "exec: \"%s\": run the exec trampoline: %s", plan->argv[0],
           go_strerror(e, ebuf, sizeof ebuf));
  if (ctx->sync_fd >= 0) { /* exec: the caller still listens */
    struct sj_msg msg;
    memset(&msg, 0, sizeof msg);
    msg.type = SJ_MSG_ERROR;
    msg.err = err.err;
    snprintf(msg.text, sizeof msg.text, "%s", err.msg);
    if (sj_send_msg(ctx->sync_fd, &msg) == 0)
      _exit(127);
  }
  sj_late_error(ctx, &err);
  _exit(127);
}
