/* OCI hooks, run from C: by the runtime (through the binding) for the
 * stages that run in the runtime namespace, and by the init itself for
 * createContainer (before pivot_root) and startContainer (before execve).
 *
 * One hook is clone + execve of its path (by the init: through the exec
 * trampoline, see launch.h) with the state JSON written to
 * its stdin, stdout and stderr read into a small tail buffer (the last line
 * goes into the error), and a deadline: past it the hook's process group
 * is killed.  No allocation: this runs in the init, a copy of a Python
 * process.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

#include "init.h"
#include "util.h"

#define SJ_HOOK_TAIL 256 /* bytes of output kept for the error text */

struct tail {
  char buf[SJ_HOOK_TAIL];
  size_t len;
};

static void tail_add(struct tail *t, const char *data, size_t n) {
  if (n >= sizeof t->buf) {
    memcpy(t->buf, data + n - sizeof t->buf, sizeof t->buf);
    t->len = sizeof t->buf;
    return;
  }
  if (t->len + n > sizeof t->buf) {
    size_t drop = t->len + n - sizeof t->buf;
    memmove(t->buf, t->buf + drop, t->len - drop);
    t->len -= drop;
  }
  memcpy(t->buf + t->len, data, n);
  t->len += n;
}

/* The last non-empty line of the output, NUL-terminated in place. */
static const char *tail_last_line(struct tail *t) {
  size_t end = t->len;
  while (end > 0 && (t->buf[end - 1] == '\n' || t->buf[end - 1] == '\r' ||
                     t->buf[end - 1] == ' ' || t->buf[end - 1] == '\t'))
    end--;
  size_t start = end;
  while (start > 0 && t->buf[start - 1] != '\n')
    start--;
  if (end == sizeof t->buf) /* full and no newline at the end: make room */
    end--;
  t->buf[end] = '\0';
  return t->buf + start;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

__attribute__((noreturn)) static void hook_child(const struct sj_hook *hook, int in_fd,
                                                 int out_fd, int err_pipe, int tramp_fd) {
  static const char *const empty[] = {NULL};
  sj_reset_signals();
  /* Its own process group: a timeout kills what it started too. */
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  /* Out of the way of the dup2 targets first (stdio may have been closed). */
  if (err_pipe < 3)
    err_pipe = fcntl(err_pipe, F_DUPFD_CLOEXEC, 3);
  if (in_fd < 3)
    in_fd = fcntl(in_fd, F_DUPFD_CLOEXEC, 3);
  if (out_fd < 3)
    out_fd = fcntl(out_fd, F_DUPFD_CLOEXEC, 3);
  if (tramp_fd >= 0 && tramp_fd < 3)
    tramp_fd = fcntl(tramp_fd, F_DUPFD_CLOEXEC, 3);
  if (err_pipe < 0 || in_fd < 0 || out_fd < 0 || tramp_fd < -1)
    _exit(127);
  if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
    goto fail;
  /* err_pipe is CLOEXEC: kept until execve, closed by it. */
  int keep[2] = {err_pipe, tramp_fd};
  sj_close_fds_except(3, keep, 2);
  const char *argv0[] = {hook->path, NULL};
  const char *const *argv = hook->argv && hook->argv[0] ? hook->argv : argv0;
  /* A hook without env gets the runtime's environment (as runc's and
   * crun's); an empty env is empty. */
  const char *const *envp = hook->envp ? hook->envp : (const char *const *)environ;
  if (!envp)
    envp = empty;
  if (tramp_fd >= 0) {
    /* Run by the init: through the exec trampoline (see launch.h), which
     * reports a failed execve on err_pipe itself and closes it on success. */
    char report[24];
    snprintf(report, sizeof report, "e%d", err_pipe);
    if (fcntl(err_pipe, F_SETFD, 0) == 0)
      sj_trampoline_exec(tramp_fd, hook->path, report, argv, envp);
    fcntl(err_pipe, F_SETFD, FD_CLOEXEC);
  } else {
    execve(hook->path, (char *const *)argv, (char *const *)envp);
  }
fail:;
  int e = errno;
  sj_write_all(err_pipe, &e, sizeof e);
  _exit(127);
}

/* Kill the hook and everything in its process group, then reap it. */
static void kill_hook(pid_t pid) {
  kill(-pid, SIGKILL);
  kill(pid, SIGKILL);
}

static int reap(pid_t pid, int *status) {
  int rc;
  while ((rc = waitpid(pid, status, __WALL)) < 0 && errno == EINTR)
    ;
  return rc;
}

struct writer {
  const char *const *parts;
  size_t nparts;
  size_t part, off;
};

/* Write what the pipe takes; 1 when everything is written (or the reader
 * is gone), 0 to be called again, -1 + errno on a real error. */
static int write_some(struct writer *w, int fd) {
  while (w->part < w->nparts) {
    const char *p = w->parts[w->part] ? w->parts[w->part] : "";
    size_t len = strlen(p);
    if (w->off >= len) {
      w->part++;
      w->off = 0;
      continue;
    }
    ssize_t n = write(fd, p + w->off, len - w->off);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN)
        return 0;
      if (errno == EPIPE)
        return 1; /* the hook does not read its stdin: fine */
      return -1;
    }
    w->off += (size_t)n;
  }
  return 1;
}

/* Feed stdin, collect the output, until the hook exits or the deadline;
 * then reap it.  Closes in_fd and out_fd. */
static int supervise(const struct sj_hook *hook, pid_t pid, int pidfd, int in_fd, int out_fd,
                     struct writer *w, struct tail *t, int *status, struct sj_error *err) {
  int64_t deadline = hook->timeout > 0 ? now_ms() + (int64_t)hook->timeout * 1000 : -1;
  int rc = 0;
  for (;;) {
    /* A closed in_fd/out_fd is -1 here: poll skips it. */
    struct pollfd pfd[3] = {{.fd = pidfd, .events = POLLIN},
                            {.fd = out_fd, .events = POLLIN},
                            {.fd = in_fd, .events = POLLOUT}};
    int wait_ms = -1;
    if (deadline >= 0) {
      int64_t left = deadline - now_ms();
      wait_ms = left > 0 ? (int)left : 0;
    }
    int n = poll(pfd, 3, wait_ms);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      if (n < 0)
        rc = sj_fail(err, errno, "hook %s: poll", hook->path);
      else
        rc = sj_failx(err, ETIMEDOUT, "hook %s: timed out after %ds", hook->path, hook->timeout);
      kill_hook(pid);
      break;
    }
    if (pfd[1].revents) {
      char buf[4096];
      ssize_t r = read(out_fd, buf, sizeof buf);
      if (r > 0) {
        tail_add(t, buf, (size_t)r);
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        close(out_fd); /* EOF */
        out_fd = -1;
      }
    }
    if (pfd[2].revents) {
      int done = (pfd[2].revents & (POLLERR | POLLHUP)) ? 1 : write_some(w, in_fd);
      if (done != 0) {
        close(in_fd);
        in_fd = -1;
      }
    }
    if (pfd[0].revents)
      break; /* exited */
  }
  if (in_fd >= 0)
    close(in_fd);
  if (out_fd >= 0) {
    /* What is left in the pipe (not what a grandchild may write later). */
    char buf[4096];
    ssize_t r;
    while (rc == 0 && (r = read(out_fd, buf, sizeof buf)) > 0)
      tail_add(t, buf, (size_t)r);
    close(out_fd);
  }
  if (reap(pid, status) < 0 && rc == 0)
    rc = sj_fail(err, errno, "hook %s: wait", hook->path);
  return rc;
}

/* A plain fork with a pidfd: clone3, or clone where a seccomp profile
 * answers ENOSYS for clone3 (as Docker's does, so that libc falls back). */
static pid_t fork_pidfd(int *pidfd) {
  struct sj_clone_args args;
  memset(&args, 0, sizeof args);
  args.flags = CLONE_PIDFD;
  args.pidfd = (uint64_t)(uintptr_t)pidfd;
  args.exit_signal = SIGCHLD;
  pid_t pid = (pid_t)sj_clone3(&args); /* without atfork handlers */
  if (pid < 0 && errno == ENOSYS)
    pid = (pid_t)syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, 0, pidfd, 0, 0);
  return pid;
}

static int run_hook(const struct sj_hook *hook, const char *const *state, size_t nstate,
                    int tramp_fd, struct sj_error *err) {
  int in[2] = {-1, -1}, out[2] = {-1, -1}, ep[2] = {-1, -1};
  int pidfd = -1, rc = -1;
  memset(err, 0, sizeof *err);
  if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(ep, O_CLOEXEC) < 0) {
    sj_fail(err, errno, "hook %s: pipe", hook->path);
    goto out;
  }

  /* Writing to a hook that closed its stdin must be EPIPE, not SIGPIPE
   * (the init has the default action: it would die).  Blocked here, and a
   * SIGPIPE raised meanwhile is consumed before the mask is restored. */
  sigset_t all, old, pipe_set, pending;
  sigfillset(&all);
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigpending(&pending);
  int pipe_was_pending = sigismember(&pending, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &all, &old);

  pid_t pid = fork_pidfd(&pidfd);
  if (pid == 0)
    hook_child(hook, in[0], out[1], ep[1], tramp_fd);
  int clone_errno = errno;
  /* Only SIGPIPE stays blocked while we talk to the hook. */
  sigset_t during = old;
  sigaddset(&during, SIGPIPE);
  pthread_sigmask(SIG_SETMASK, &during, NULL);
  close(in[0]);
  close(out[1]);
  close(ep[1]);
  in[0] = out[1] = ep[1] = -1;
  if (pid < 0) {
    sj_fail(err, clone_errno, "hook %s: clone3", hook->path);
    goto restore;
  }

  /* execve failed: the child says why, then exits. */
  int child_errno = 0;
  ssize_t n;
  while ((n = read(ep[0], &child_errno, sizeof child_errno)) < 0 && errno == EINTR)
    ;
  int status = 0;
  if (n == (ssize_t)sizeof child_errno) {
    reap(pid, &status);
    sj_fail(err, child_errno, "hook %s", hook->path);
    goto restore;
  }

  fcntl(in[1], F_SETFL, O_NONBLOCK);
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  struct writer w = {.parts = state, .nparts = nstate};
  struct tail t;
  t.len = 0;
  int in_fd = in[1], out_fd = out[0];
  in[1] = out[0] = -1; /* supervise closes them */
  if (supervise(hook, pid, pidfd, in_fd, out_fd, &w, &t, &status, err) < 0)
    goto restore;

  const char *line = tail_last_line(&t);
  const char *sep = *line ? ": " : "";
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    rc = 0;
  else if (WIFEXITED(status))
    sj_failx(err, ECHILD, "hook %s: exit status %d%s%s", hook->path, WEXITSTATUS(status), sep,
             line);
  else
    sj_failx(err, ECHILD, "hook %s: killed by signal %d%s%s", hook->path,
             WIFSIGNALED(status) ? WTERMSIG(status) : 0, sep, line);

restore:;
  sigpending(&pending);
  if (!pipe_was_pending && sigismember(&pending, SIGPIPE)) {
    struct timespec zero = {0, 0};
    sigtimedwait(&pipe_set, NULL, &zero);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
out:
  for (int i = 0; i < 2; i++) {
    if (in[i] >= 0)
      close(in[i]);
    if (out[i] >= 0)
      close(out[i]);
    if (ep[i] >= 0)
      close(ep[i]);
  }
  if (pidfd >= 0)
    close(pidfd);
  return rc;
}

int sj_run_hook(const struct sj_hook *hook, const char *const *state, size_t nstate,
                struct sj_error *err) {
  return run_hook(hook, state, nstate, -1, err);
}

int sj_run_init_hooks(struct sj_ctx *ctx, const struct sj_hook *hooks, size_t n,
                      const char *stage, const char *status, struct sj_error *err) {
  const struct sj_plan *plan = ctx->plan;
  if (n == 0)
    return 0;
  /* The state as the container sees it: our pid in its pid namespace. */
  char head[96];
  const char *rest = plan->hook_state ? plan->hook_state : "";
  snprintf(head, sizeof head, "{\"pid\":%d,\"status\":\"%s\"%s", (int)getpid(), status,
           *rest ? "," : "");
  const char *parts[3] = {head, rest, "}"};
  for (size_t i = 0; i < n; i++) {
    if (run_hook(&hooks[i], parts, 3, ctx->tramp_fd, err) < 0) {
      char msg[SJ_ERRMSG_MAX];
      memcpy(msg, err->msg, sizeof msg);
      size_t n = strlen(stage);
      if (n + 1 < sizeof err->msg) { /* "<stage> hook PATH: ..." */
        memcpy(err->msg, stage, n);
        err->msg[n] = ' ';
        memcpy(err->msg + n + 1, msg, sizeof err->msg - n - 2);
        err->msg[sizeof err->msg - 1] = '\0';
      }
      return -1;
    }
  }
  return 0;
}
