/* state, start, kill, delete: what runtime/container.py's Runtime does for them, for the
 * containers that need nothing of Python. See main.c for the hand-off rule. */
#include "verbs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cgroups.h"
#include "exit.h"
#include "out.h"
#include "state/state.h"

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

/* An open, locked container with its parsed record and status. */
struct ctr {
  int fd;
  yajl_val tree;
  struct sj_record rec;
  const char *status;
};

/* delete's, which a start whose init failed at its last step runs too (below) */
static void destroy(const struct sj_verb *v, struct ctr *c, const struct sj_cgroups *cg);
static void destroyable(struct ctr *c, struct sj_cgroups *cg);

/* Open and read the container; hand off where Python would report an error (no such
 * container, a record it cannot read) or a state the front end leaves to it. */
static void load(const struct sj_verb *v, int shared, struct ctr *c) {
  int has_state = 0;
  char why[256];
  int err;
  c->fd = sj_state_open(v->root, v->id, shared, &has_state);
  if (c->fd == -ENOENT && v->force)
    exit(0); /* delete --force of what is not there */
  if (c->fd < 0 || !has_state)
    sj_hand_off();
  c->tree = sj_state_read(c->fd, why, sizeof why, &err);
  if (!c->tree || sj_record_from_tree(c->tree, &c->rec) < 0)
    sj_hand_off();
  c->status = sj_state_status(&c->rec, c->fd);
  if (!strcmp(c->status, "creating"))
    sj_hand_off();
}

/* Does the record ask for what only Python does: hooks to run, mounts of the host's to
 * release? */
static int needs_python(yajl_val tree) {
  yajl_val hooks = sj_json_get(tree, "hooks");
  if (hooks && !YAJL_IS_NULL(hooks) && !(YAJL_IS_OBJECT(hooks) && hooks->u.object.len == 0))
    return 1;
  yajl_val hm = sj_json_get(tree, "host_mounts");
  if (hm && !YAJL_IS_NULL(hm) && !(YAJL_IS_OBJECT(hm) && hm->u.object.len == 0))
    return 1;
  return 0;
}

static void put_kv(struct sj_buf *b, const char *key, int first, int indent) {
  sj_buf_str(b, indent ? (first ? "{\n  " : ",\n  ") : (first ? "{" : ","));
  sj_buf_json_str(b, key);
  sj_buf_str(b, indent ? ": " : ":");
}

/* state.oci_state() of the record as JSON: indented as jsonio.dumps_indent writes it, or
 * compact as jsonio.dumps. Hands off for a record whose fields are not what it expects. */
static void oci_state(const struct ctr *c, struct sj_buf *b, int indent) {
  static const char *const strs[] = {"ociVersion", "id", "bundle", "rootfs", "created"};
  for (size_t i = 0; i < sizeof strs / sizeof *strs; i++)
    if (!sj_json_str(c->tree, strs[i]))
      sj_hand_off();
  yajl_val pid = sj_json_get(c->tree, "pid"), owner = sj_json_get(c->tree, "owner");
  yajl_val ann = sj_json_get(c->tree, "annotations");
  if (!pid || !YAJL_IS_INTEGER(pid) || (owner && !YAJL_IS_STRING(owner)))
    sj_hand_off();
  if (ann && !YAJL_IS_NULL(ann)) {
    if (!YAJL_IS_OBJECT(ann))
      sj_hand_off();
    for (size_t i = 0; i < ann->u.object.len; i++)
      if (!YAJL_IS_STRING(ann->u.object.values[i]))
        sj_hand_off();
    for (size_t i = 0; i < ann->u.object.len; i++) /* a key twice: Python keeps one */
      for (size_t j = 0; j < i; j++)
        if (!strcmp(ann->u.object.keys[i], ann->u.object.keys[j]))
          sj_hand_off();
  }
  put_kv(b, "ociVersion", 1, indent);
  sj_buf_json_str(b, sj_json_str(c->tree, "ociVersion"));
  put_kv(b, "id", 0, indent);
  sj_buf_json_str(b, sj_json_str(c->tree, "id"));
  put_kv(b, "pid", 0, indent);
  sj_buf_printf(b, "%lld", strcmp(c->status, "stopped") ? YAJL_GET_INTEGER(pid) : 0LL);
  put_kv(b, "status", 0, indent);
  sj_buf_json_str(b, c->status);
  static const char *const rest[] = {"bundle", "rootfs", "created"};
  for (size_t i = 0; i < sizeof rest / sizeof *rest; i++) {
    put_kv(b, rest[i], 0, indent);
    sj_buf_json_str(b, sj_json_str(c->tree, rest[i]));
  }
  put_kv(b, "owner", 0, indent);
  sj_buf_json_str(b, owner ? owner->u.string : "");
  if (ann && YAJL_IS_OBJECT(ann) && ann->u.object.len) {
    put_kv(b, "annotations", 0, indent);
    for (size_t i = 0; i < ann->u.object.len; i++) {
      sj_buf_str(b, indent ? (i ? ",\n    " : "{\n    ") : (i ? "," : "{"));
      sj_buf_json_str(b, ann->u.object.keys[i]);
      sj_buf_str(b, indent ? ": " : ":");
      sj_buf_json_str(b, ann->u.object.values[i]->u.string);
    }
    sj_buf_str(b, indent ? "\n  }" : "}");
  }
  sj_buf_str(b, indent ? "\n}" : "}");
}

/* All of `b` to stdout: 0, or 1 when the reader went away (the Python CLI's flush). */
static int put_out(const struct sj_buf *b) {
  for (size_t off = 0; off < b->len;) {
    ssize_t n = write(1, b->data + off, b->len - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return 1;
    off += n;
  }
  return 0;
}

int sj_verb_state(const struct sj_verb *v) {
  struct ctr c;
  struct sj_buf b = {0};
  load(v, 1, &c);
  oci_state(&c, &b, 1);
  sj_buf_str(&b, "\n");
  return put_out(&b);
}

/* Open the exec fifo: the init, blocked on its write end, goes on to execve. */
int sj_verb_start(const struct sj_verb *v) {
  struct ctr c;
  struct sj_cgroups cg;
  load(v, 0, &c);
  if (strcmp(c.status, "created"))
    sj_hand_off();
  destroyable(&c, &cg); /* no hooks, and what a failed start destroys is readable */
  int pidfd = sj_state_pidfd(c.rec.pid, c.rec.pid_start);
  if (pidfd < 0)
    sj_hand_off();
  int fd = openat(c.fd, SJ_STATE_FIFO, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    sj_hand_off();
  char said[4096];
  ssize_t n;
  for (;;) {
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = pidfd, .events = POLLIN}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      sj_die("poll: %s", strerror(errno));
    }
    if (p[0].revents) {
      /* "0": going to execve; "1<why>": a startContainer hook failed. One write each. */
      n = read(fd, said, sizeof said - 1);
      if (n > 0)
        break;
      if (!p[1].revents) { /* no writer yet; wait for one */
        struct timespec ts = {0, 500000};
        nanosleep(&ts, NULL);
        continue;
      }
    }
    if (p[1].revents)
      sj_die("container init exited before it was started");
  }
  close(fd);
  close(pidfd);
  unlinkat(c.fd, SJ_STATE_FIFO, 0);
  said[n] = 0;
  if (said[0] != '0') { /* the init failed at the last step: destroyed, as the runtime does */
    destroy(v, &c, &cg);
    sj_die("%s", n > 1 ? said + 1 : "container init failed");
  }
  return 0;
}

/* '9', 'KILL', 'SIGKILL' -> 9; 0 for what the Python runtime would refuse or spell
 * otherwise (it then says so). */
static int parse_signal(const char *s) {
  static const struct {
    const char *name;
    int sig;
  } names[] = {
      {"HUP", SIGHUP},       {"INT", SIGINT},     {"QUIT", SIGQUIT}, {"ILL", SIGILL},
      {"TRAP", SIGTRAP},     {"ABRT", SIGABRT},   {"IOT", SIGIOT},   {"BUS", SIGBUS},
      {"FPE", SIGFPE},       {"KILL", SIGKILL},   {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},
      {"USR2", SIGUSR2},     {"PIPE", SIGPIPE},   {"ALRM", SIGALRM}, {"TERM", SIGTERM},
      {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD},   {"CLD", SIGCHLD},  {"CONT", SIGCONT},
      {"STOP", SIGSTOP},     {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},
      {"URG", SIGURG},       {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM},
      {"PROF", SIGPROF},     {"WINCH", SIGWINCH}, {"IO", SIGIO},     {"POLL", SIGPOLL},
      {"PWR", SIGPWR},       {"SYS", SIGSYS},
  };
  if (*s >= '0' && *s <= '9') {
    char *end;
    long n = strtol(s, &end, 10);
    return *end || n < 1 || n > 64 ? 0 : (int)n;
  }
  const char *name = strncasecmp(s, "SIG", 3) ? s : s + 3;
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (!strcasecmp(name, names[i].name))
      return names[i].sig;
  return 0;
}

int sj_verb_kill(const struct sj_verb *v) {
  int sig = parse_signal(v->signal);
  if (!sig)
    sj_hand_off();
  struct ctr c;
  load(v, 0, &c);
  if (v->all) { /* whatever is left in the cgroup, also of a stopped container (runc) */
    struct sj_cgroups cg;
    if (sj_cgroups_from_record(sj_json_get(c.tree, "cgroups"), &cg) < 0)
      sj_hand_off();
    int rc = sj_cgroups_signal_all(&cg, sig);
    if (rc == 1)
      sj_hand_off(); /* nothing was sent: Python says why */
    if (rc < 0)
      sj_die("%s", strerror(-rc));
    return 0;
  }
  if (!strcmp(c.status, "stopped"))
    sj_hand_off();
  if (sj_state_signal(c.rec.pid, c.rec.pid_start, sig) < 0)
    sj_hand_off(); /* gone meanwhile, or refused: nothing was sent; Python says why */
  return 0;
}

/* Kill, remove the cgroups, remove the state dir (Runtime._destroy without hooks or host
 * mounts: the callers hand those to Python). Errors are ours to report from here on. */
static void destroy(const struct sj_verb *v, struct ctr *c, const struct sj_cgroups *cg) {
  int pidfd = sj_state_pidfd(c->rec.pid, c->rec.pid_start);
  if (pidfd >= 0) {
    int sent = syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) == 0;
    if (sent && !strcmp(c->status, "paused"))
      sj_cgroups_thaw(cg); /* a frozen init dies only once thawed */
    if (sent && !sj_state_wait_pidfd(pidfd, 10000))
      sj_warn("container %s: init did not exit after SIGKILL", sj_json_str(c->tree, "id"));
    close(pidfd);
  }
  const char *failed = NULL;
  int rc = sj_cgroups_destroy(cg, &failed);
  if (rc < 0)
    sj_die("cgroup rmdir %s: %s", failed ? failed : "?", strerror(-rc));
  rc = sj_state_remove(c->fd, v->root, v->id);
  if (rc < 0)
    sj_die("remove %s/%s: %s", v->root, v->id, strerror(-rc));
}

/* The record's cgroups and id as destroy() reads them; hands off when they are not. */
static void destroyable(struct ctr *c, struct sj_cgroups *cg) {
  if (needs_python(c->tree) || !sj_json_str(c->tree, "id") ||
      sj_cgroups_from_record(sj_json_get(c->tree, "cgroups"), cg) < 0)
    sj_hand_off();
}

int sj_verb_delete(const struct sj_verb *v) {
  struct ctr c;
  struct sj_cgroups cg;
  load(v, 0, &c);
  /* running and paused need --force; a created one goes without (runc's rule, and the
   * runtime's) */
  if ((!strcmp(c.status, "running") || !strcmp(c.status, "paused")) && !v->force)
    sj_hand_off();
  destroyable(&c, &cg);
  destroy(v, &c, &cg);
  return 0;
}

/* The width Python's str.ljust counts: code points (the strings are UTF-8 from yajl). */
static size_t width(const char *s) {
  size_t n = 0;
  for (; *s; s++)
    n += (*s & 0xc0) != 0x80;
  return n;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every container under --root, in name order: -q its ids, --format json runc's array,
 * else runc's table (main.py's _list). */
int sj_verb_list(const struct sj_verb *v) {
  DIR *d = opendir(v->root);
  char **names = NULL;
  size_t n = 0, cap = 0;
  if (!d && errno != ENOENT)
    sj_hand_off();
  for (struct dirent *e; d && (e = readdir(d));) {
    struct stat st;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/" SJ_STATE_FILE, v->root, e->d_name);
    if (stat(path, &st) < 0)
      continue;
    if (n == cap && !(names = realloc(names, (cap = cap ? cap * 2 : 32) * sizeof *names)))
      abort();
    names[n++] = strdup(e->d_name);
  }
  if (d)
    closedir(d);
  qsort(names, n, sizeof *names, by_name);
  struct sj_buf out = {0};
  const char *head[6] = {"ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"};
  const char **cells = malloc((n + 1) * 6 * sizeof *cells);
  size_t rows = 0;
  if (!cells)
    abort();
  for (int k = 0; k < 6; k++)
    cells[k] = head[k];
  if (v->json)
    sj_buf_str(&out, "[");
  for (size_t i = 0; i < n; i++) {
    struct ctr c;
    int has_state = 0, err;
    char why[256];
    if (!sj_state_valid_id(names[i]))
      sj_hand_off();
    c.fd = sj_state_open(v->root, names[i], 1, &has_state);
    if (c.fd == -ENOENT || (c.fd >= 0 && !has_state)) { /* removed meanwhile */
      if (c.fd >= 0)
        close(c.fd);
      continue;
    }
    if (c.fd < 0 || !(c.tree = sj_state_read(c.fd, why, sizeof why, &err)) ||
        sj_record_from_tree(c.tree, &c.rec) < 0)
      sj_hand_off();
    c.status = sj_state_status(&c.rec, c.fd);
    close(c.fd);
    struct sj_buf one = {0};
    oci_state(&c, &one, 0); /* checks the record's fields too */
    if (v->json) {
      if (rows)
        sj_buf_str(&out, ",");
      sj_buf_add(&out, one.data, one.len);
    }
    free(one.data);
    rows++;
    const char **r = cells + rows * 6;
    const char *owner = sj_json_str(c.tree, "owner");
    struct sj_buf pid = {0};
    sj_buf_printf(&pid, "%lld",
                  strcmp(c.status, "stopped") ? YAJL_GET_INTEGER(sj_json_get(c.tree, "pid")) : 0);
    r[0] = sj_json_str(c.tree, "id");
    r[1] = pid.data;
    r[2] = c.status;
    r[3] = sj_json_str(c.tree, "bundle");
    r[4] = sj_json_str(c.tree, "created");
    r[5] = owner && *owner ? owner : "root";
    /* the trees stay: the cells point into them */
  }
  if (v->quiet) { /* -q wins over --format json */
    free(out.data);
    out = (struct sj_buf){0};
    for (size_t i = 1; i <= rows; i++) {
      sj_buf_str(&out, cells[i * 6]);
      sj_buf_str(&out, "\n");
    }
  } else if (v->json) {
    sj_buf_str(&out, "]\n");
  } else {
    size_t w[6] = {0};
    for (size_t i = 0; i <= rows; i++)
      for (int k = 0; k < 6; k++)
        if (width(cells[i * 6 + k]) > w[k])
          w[k] = width(cells[i * 6 + k]);
    for (size_t i = 0; i <= rows; i++) {
      size_t start = out.len;
      for (int k = 0; k < 6; k++) {
        if (k)
          sj_buf_str(&out, "   ");
        sj_buf_str(&out, cells[i * 6 + k]);
        for (size_t pad = width(cells[i * 6 + k]); pad < w[k]; pad++)
          sj_buf_str(&out, " ");
      }
      while (out.len > start && strchr(" \t\n\r\v\f", out.data[out.len - 1]))
        out.data[--out.len] = 0; /* str.rstrip() */
      sj_buf_str(&out, "\n");
    }
  }
  return put_out(&out);
}

/* `ps --format json ID`: the host pids in the container's cgroup, `null` for none (Go's
 * nil slice, as runc prints it). */
int sj_verb_ps(const struct sj_verb *v) {
  struct ctr c;
  struct sj_buf out = {0};
  long *pids = NULL;
  size_t n = 0;
  load(v, 1, &c);
  if (strcmp(c.status, "stopped")) {
    struct sj_cgroups cg;
    if (sj_cgroups_from_record(sj_json_get(c.tree, "cgroups"), &cg) < 0 ||
        sj_cgroups_pids(&cg, &pids, &n) < 0)
      sj_hand_off();
  }
  if (!n)
    sj_buf_str(&out, "null");
  for (size_t i = 0; i < n; i++)
    sj_buf_printf(&out, "%s%ld", i ? "," : "[", pids[i]);
  if (n)
    sj_buf_str(&out, "]");
  sj_buf_str(&out, "\n");
  return put_out(&out);
}
