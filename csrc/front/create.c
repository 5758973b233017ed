/* `create` of a prepared container: the second half of the runtime's create, in C.
 *
 * The engine compiles a container's launch plan in its own process, with the runtime's
 * Python API (runtime/container.py `prepare`: config.json validated and compiled, the state
 * dir, state.json, the exec fifo, the cgroups made and limited), and leaves it in the state
 * dir as `launch.plan`. conmon then runs `sangja create` as it runs runc's: this file finds
 * the plan and does the rest without starting Python: the fds the plan names, the spawn,
 * the sync protocol to READY, the init's record, the pid file.
 *
 * `launch.plan`: "SJPREP1\n", then six sections, each a 4-byte little-endian length and its
 * bytes: the plan block (launch/planfile.h), the bundle it was made for, state.json's
 * members but pid, pid_start and namespaces (as JSON text without its closing brace), the
 * namespaces ("type\tjoined path\tproc name\n"; no path: the init's own), the unified
 * cgroup the init is cloned into ("": none), "1" if the process has a terminal.
 *
 * A call it was not prepared for (no plan, another bundle, options the plan did not
 * foresee) goes to the Python CLI, which discards a plan it finds and creates as always.
 * When it fails after it has begun, the state dir stays, as `creating` until its creator
 * (the engine) ends, then `stopped`: the engine's `delete --force` removes it and its
 * cgroups, as after any failed create it drives. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exit.h"
#include "launch/launch.h"
#include "launch/planfile.h"
#include "launch/sync.h"
#include "out.h"
#include "state/state.h"
#include "verbs.h"

#define PLAN_FILE  "launch.plan"
#define PREP_MAGIC "SJPREP1\n"
#define NSECTIONS  6

enum { S_PLAN, S_BUNDLE, S_STATE, S_NAMESPACES, S_CGROUP, S_TERMINAL };

struct prepared {
  char *file; /* the sections, each followed by a NUL; the plan (S_PLAN) first */
  const char *part[NSECTIONS];
  size_t len[NSECTIONS];
};

/* The whole of a small file at dirfd/name, or NULL (errno set). */
static char *slurp(int dirfd, const char *name, size_t *len) {
  int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return NULL;
  struct stat sb;
  char *buf = NULL;
  if (fstat(fd, &sb) == 0 && sb.st_size < (64 << 20) && (buf = malloc((size_t)sb.st_size + 1))) {
    size_t got = 0;
    ssize_t n = 1;
    while (got < (size_t)sb.st_size && (n = read(fd, buf + got, (size_t)sb.st_size - got)) > 0)
      got += (size_t)n;
    if (n < 0 || got != (size_t)sb.st_size) {
      free(buf);
      buf = NULL;
      errno = n < 0 ? errno : EIO;
    } else {
      *len = got;
    }
  }
  int saved = errno;
  close(fd);
  errno = saved;
  return buf;
}

/* Split the file into its sections; each is copied out NUL-terminated. 0, or -1. */
static int read_prepared(int dirfd, struct prepared *p) {
  size_t len = 0;
  char *f = slurp(dirfd, PLAN_FILE, &len);
  if (!f)
    return -1;
  size_t at = strlen(PREP_MAGIC);
  if (len < at || memcmp(f, PREP_MAGIC, at)) {
    free(f);
    errno = EINVAL;
    return -1;
  }
  /* one allocation for all the sections, each followed by a NUL */
  char *out = malloc(len + NSECTIONS + 8);
  if (!out) {
    free(f);
    return -1;
  }
  size_t o = 0;
  for (int i = 0; i < NSECTIONS; i++) {
    uint32_t n;
    if (len - at < 4) {
      free(f), free(out);
      errno = EINVAL;
      return -1;
    }
    memcpy(&n, f + at, 4); /* little-endian: this is x86-64 or another LE host */
    at += 4;
    if (n > len - at) {
      free(f), free(out);
      errno = EINVAL;
      return -1;
    }
    memcpy(out + o, f + at, n);
    out[o + n] = 0;
    p->part[i] = out + o;
    p->len[i] = n;
    o += n + 1;
    at += n;
  }
  free(f);
  p->file = out;
  return 0;
}

/* The init is killed and waited for before the error is told. */
static int g_pidfd = -1;
static pid_t g_pid = -1;

static void kill_init(void) {
  if (g_pidfd >= 0) {
    syscall(SYS_pidfd_send_signal, g_pidfd, SIGKILL, NULL, 0);
    while (waitpid(g_pid, NULL, __WALL) < 0 && errno == EINTR)
      ;
  }
}

#define FAIL(...)                                                                                  \
  do {                                                                                             \
    kill_init();                                                                                   \
    sj_die(__VA_ARGS__);                                                                           \
  } while (0)

/* Did the kernel's OOM killer end the init (its memory cgroup counts a kill)? */
static int oom_killed(const struct sj_plan *plan, const char *unified) {
  char path[PATH_MAX], buf[1024];
  for (size_t i = 0; i < plan->ncgroup_join; i++) { /* v1: ".../memory/.../tasks" */
    const char *j = plan->cgroup_join[i];
    const char *slash = strrchr(j, '/');
    if (!strstr(j, "/memory/") || !slash)
      continue;
    snprintf(path, sizeof path, "%.*s/memory.oom_control", (int)(slash - j), j);
    goto read;
  }
  if (!*unified)
    return 0;
  snprintf(path, sizeof path, "%s/memory.events", unified);
read:
  if (sj_read_short(path, 0, buf, sizeof buf) <= 0)
    return 0;
  const char *k = strstr(buf, "oom_kill ");
  return k && strtoll(k + 9, NULL, 10) > 0;
}

/* Lead the init through the sync protocol to READY: GO, and any message but READY is the
 * error it sent (hooks and seccomp listeners are never prepared: Python's). */
static void sync_to_ready(int fd, const struct sj_plan *plan, const char *unified) {
  struct sj_error err = {0};
  struct sj_msg msg;
  if (sj_sync_send(fd, SJ_MSG_GO, &err) < 0)
    FAIL("%s", err.msg);
  memset(&msg, 0, sizeof msg);
  if (sj_sync_recv(fd, &msg, &err) < 0)
    FAIL("%s", err.msg);
  if (msg.type == SJ_MSG_READY)
    return;
  if (msg.type == SJ_MSG_CLOSED && oom_killed(plan, unified))
    FAIL("the kernel OOM-killed the container's init before it was ready: the memory limit "
         "is too low for it to start");
  msg.text[sizeof msg.text - 1] = 0;
  FAIL("%s", msg.text);
}

static int connect_console(const char *path) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path)
    sj_die("connect console socket %s: %s", path, "file name too long");
  strcpy(sa.sun_path, path);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof sa) < 0)
    sj_die("connect console socket %s: %s", path, strerror(errno));
  return s;
}

/* Write dirfd/name whole through a temporary file and a rename (a reader sees the old
 * text or the new one). dirfd AT_FDCWD: name as given (the pid file). */
static void write_atomic(int dirfd, const char *name, const char *text, size_t len) {
  char tmp[PATH_MAX + 32];
  snprintf(tmp, sizeof tmp, "%s.%d.tmp", name, (int)getpid());
  int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    FAIL("open %s: %s", tmp, strerror(errno));
  size_t done = 0;
  while (done < len) {
    ssize_t n = write(fd, text + done, len - done);
    if (n < 0) {
      int e = errno;
      close(fd);
      unlinkat(dirfd, tmp, 0);
      FAIL("write %s: %s", tmp, strerror(e));
    }
    done += (size_t)n;
  }
  close(fd);
  if (renameat(dirfd, tmp, dirfd, name) < 0)
    FAIL("rename %s: %s", tmp, strerror(errno));
}

/* state.json once the init is ready: the prepared members, then its pid, start time and
 * namespaces. */
static void write_state(int dirfd, const struct prepared *p, pid_t pid, long long start) {
  struct sj_buf b = {0};
  sj_buf_add(&b, p->part[S_STATE], p->len[S_STATE]);
  sj_buf_printf(&b, ",\"pid\":%d,\"pid_start\":%lld,\"namespaces\":{", (int)pid, start);
  const char *line = p->part[S_NAMESPACES];
  int first = 1;
  while (*line) {
    const char *end = strchr(line, '\n');
    if (!end)
      break;
    const char *t1 = memchr(line, '\t', (size_t)(end - line));
    const char *t2 = t1 ? memchr(t1 + 1, '\t', (size_t)(end - t1 - 1)) : NULL;
    if (!t2)
      FAIL("launch plan: damaged namespaces");
    char key[64], path[PATH_MAX];
    snprintf(key, sizeof key, "%.*s", (int)(t1 - line), line);
    if (t2 > t1 + 1)
      snprintf(path, sizeof path, "%.*s", (int)(t2 - t1 - 1), t1 + 1);
    else
      snprintf(path, sizeof path, "/proc/%d/ns/%.*s", (int)pid, (int)(end - t2 - 1), t2 + 1);
    sj_buf_str(&b, first ? "" : ",");
    sj_buf_json_str(&b, key);
    sj_buf_str(&b, ":");
    sj_buf_json_str(&b, path);
    first = 0;
    line = end + 1;
  }
  sj_buf_str(&b, "}}");
  write_atomic(dirfd, SJ_STATE_FILE, b.data, b.len);
  free(b.data);
}

/* The tests' fault injection, as the engine's (engine/failpoints.py): with
 * SANGJA_FAILPOINT=<name> the process stops itself there, for a test to kill -9 it. */
static void failpoint(const char *name) {
  const char *want = getenv("SANGJA_FAILPOINT");
  if (want && !strcmp(want, name))
    raise(SIGSTOP);
}

int sj_verb_create(const struct sj_verb *v, int log_fd) {
  int has_state = 0;
  int dfd = sj_state_open(v->root, v->id, 0, &has_state);
  if (dfd < 0)
    sj_hand_off(); /* not prepared: Python's create makes it all */
  struct prepared p;
  if (!has_state || read_prepared(dfd, &p) < 0)
    sj_hand_off(); /* no plan (an existing container: Python says so), or a damaged one */
  char bundle[2 * PATH_MAX + 2], cwd[PATH_MAX];
  const char *b = v->bundle ? v->bundle : ".";
  if (b[0] == '/') /* as os.path.abspath, for the paths an engine gives (normalized) */
    snprintf(bundle, sizeof bundle, "%s", b);
  else if (getcwd(cwd, sizeof cwd))
    snprintf(bundle, sizeof bundle, "%s%s%s", cwd, strcmp(b, ".") ? "/" : "",
             strcmp(b, ".") ? b : "");
  else
    sj_hand_off();
  if (strcmp(bundle, p.part[S_BUNDLE]))
    sj_hand_off(); /* made for another bundle: Python discards it */
  /* From here on the plan is spent: a failure leaves the state dir to `delete --force`. */
  unlinkat(dfd, PLAN_FILE, 0);
  int terminal = !strcmp(p.part[S_TERMINAL], "1");
  if (terminal && !v->console_socket)
    sj_die("cannot allocate tty if sangja will detach without setting console socket");
  if (v->console_socket && !terminal)
    sj_die("cannot use console socket if sangja will not allocate tty");

  /* the plan, the first section, starts the malloc'd copy: 8-byte aligned, as unpacking
   * in place wants it */
  struct sj_plan *plan;
  struct sj_error err = {0};
  if (sj_plan_unpack((unsigned char *)p.file, p.len[S_PLAN], &plan, &err) < 0)
    sj_die("%s", err.msg);

  plan->exec_fifo_fd = openat(dfd, SJ_STATE_FIFO, O_PATH | O_CLOEXEC);
  if (plan->exec_fifo_fd < 0)
    sj_die("open %s/%s/%s: %s", v->root, v->id, SJ_STATE_FIFO, strerror(errno));
  if (terminal)
    plan->console_fd = connect_console(v->console_socket);
  const char *unified = p.part[S_CGROUP];
  if (*unified) {
    plan->cgroup_fd = open(unified, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (plan->cgroup_fd < 0)
      sj_die("open %s: %s", unified, strerror(errno));
  }
  plan->log_fd = log_fd;

  struct sj_spawned out;
  if (sj_spawn(plan, &out, &err) < 0)
    sj_die("%s", err.msg);
  g_pid = out.pid;
  g_pidfd = out.pidfd;
  failpoint("create:spawned");
  sync_to_ready(out.sync_fd, plan, unified);
  failpoint("create:ready");
  long long start = sj_proc_start_time(out.pid);
  if (start < 0)
    FAIL("container init exited during setup");
  write_state(dfd, &p, out.pid, start);
  if (v->pid_file) {
    char text[32];
    int n = snprintf(text, sizeof text, "%d", (int)out.pid);
    write_atomic(AT_FDCWD, v->pid_file, text, (size_t)n);
  }
  return 0;
}
