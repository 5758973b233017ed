/* cgroupfs directories for kill --all and delete: see cgroups.h. */
#include "cgroups.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "state/state.h"

int sj_cgroups_from_record(yajl_val cgroups, struct sj_cgroups *cg) {
  memset(cg, 0, sizeof *cg);
  if (!cgroups || !YAJL_IS_OBJECT(cgroups) || sj_json_get(cgroups, "systemd"))
    return -1;
  yajl_val paths = sj_json_get(cgroups, "paths"), unified = sj_json_get(cgroups, "unified");
  if (!paths || !YAJL_IS_OBJECT(paths) || !unified ||
      !(YAJL_IS_TRUE(unified) || YAJL_IS_FALSE(unified)))
    return -1;
  cg->unified = YAJL_IS_TRUE(unified);
  for (size_t i = 0; i < paths->u.object.len; i++) {
    yajl_val v = paths->u.object.values[i];
    if (!YAJL_IS_STRING(v) || v->u.string[0] != '/' || cg->n == SJ_CG_MAX)
      return -1;
    for (int j = 0; j < cg->n; j++) /* a key twice: Python's dict keeps one */
      if (!strcmp(cg->name[j], paths->u.object.keys[i]))
        return -1;
    cg->name[cg->n] = paths->u.object.keys[i];
    cg->path[cg->n++] = v->u.string;
  }
  return 0;
}

static const char *path_of(const struct sj_cgroups *cg, const char *name) {
  for (int i = 0; i < cg->n; i++)
    if (!strcmp(cg->name[i], name))
      return cg->path[i];
  return NULL;
}

/* The directory of a v1 controller, also when comounted ('cpu' in 'cpu,cpuacct'). */
static const char *dir_of(const struct sj_cgroups *cg, const char *ctrl) {
  const char *p = path_of(cg, ctrl);
  if (p || cg->unified)
    return p;
  size_t n = strlen(ctrl);
  for (int i = 0; i < cg->n; i++)
    for (const char *s = cg->name[i]; *s;) {
      size_t len = strcspn(s, ",");
      if (len == n && !strncmp(s, ctrl, n))
        return cg->path[i];
      s += len + (s[len] == ',');
    }
  return NULL;
}

static int write_file(const char *path, const char *value) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  int rc = write(fd, value, strlen(value)) < 0 ? -errno : 0;
  close(fd);
  return rc;
}

int sj_cgroups_kill(const struct sj_cgroups *cg) {
  char path[4096];
  const char *u = path_of(cg, "");
  if (!u)
    return -ENOENT;
  snprintf(path, sizeof path, "%s/cgroup.kill", u);
  return write_file(path, "1");
}

void sj_cgroups_thaw(const struct sj_cgroups *cg) {
  char path[4096];
  const char *fz = cg->unified ? NULL : path_of(cg, "freezer");
  if (fz) {
    snprintf(path, sizeof path, "%s/freezer.state", fz);
    write_file(path, "THAWED");
  } else if ((fz = path_of(cg, ""))) {
    snprintf(path, sizeof path, "%s/cgroup.freeze", fz);
    write_file(path, "0");
  }
}

const char *sj_cgroups_procs_dir(const struct sj_cgroups *cg) {
  const char *d = path_of(cg, "");
  static const char *const order[] = {"pids", "freezer", "memory", "cpu"};
  for (size_t i = 0; !d && i < sizeof order / sizeof *order; i++)
    d = dir_of(cg, order[i]);
  if (!d && cg->n)
    d = cg->path[0];
  return d;
}

int sj_cgroups_pids(const struct sj_cgroups *cg, long **pids, size_t *n) {
  /* depth first, the last directory found first (manager.Manager.pids' order) */
  size_t cap = 0, depth = 0, stack_cap = 16;
  char **stack = malloc(stack_cap * sizeof *stack);
  const char *top = sj_cgroups_procs_dir(cg);
  *pids = NULL;
  *n = 0;
  if (!stack || !top)
    return top ? -ENOMEM : 0;
  stack[depth++] = strdup(top);
  int rc = 0;
  while (depth) {
    char *d = stack[--depth], path[4096];
    snprintf(path, sizeof path, "%s/cgroup.procs", d);
    FILE *f = fopen(path, "re");
    DIR *dir = f ? opendir(d) : NULL;
    if (!f || !dir) {
      int e = errno;
      if (f)
        fclose(f);
      free(d);
      if (e == ENOENT || e == ENOTDIR)
        continue;
      rc = -e;
      break;
    }
    long pid;
    while (fscanf(f, "%ld", &pid) == 1) {
      if (*n == cap) {
        long *more = realloc(*pids, (cap = cap ? cap * 2 : 64) * sizeof *more);
        if (!more)
          abort();
        *pids = more;
      }
      (*pids)[(*n)++] = pid;
    }
    fclose(f);
    struct dirent *e;
    while ((e = readdir(dir))) {
      if (e->d_type != DT_DIR || !strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
        continue;
      if (depth == stack_cap && !(stack = realloc(stack, (stack_cap *= 2) * sizeof *stack)))
        abort();
      snprintf(path, sizeof path, "%s/%s", d, e->d_name);
      stack[depth++] = strdup(path);
    }
    closedir(dir);
    free(d);
  }
  while (depth)
    free(stack[--depth]);
  free(stack);
  return rc;
}

static double now(void);

static int read_file(const char *path, char *buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  ssize_t n = pread(fd, buf, size - 1, 0);
  close(fd);
  if (n < 0)
    return -errno;
  buf[n] = 0;
  return 0;
}

/* Freeze every process and wait until the kernel says they all are (manager.Manager.freeze):
 * 1 if it froze the cgroup, 0 if there is no freezer or it was frozen already, -1 if it
 * did not freeze in time (then it is thawed again). */
static int freeze(const struct sj_cgroups *cg) {
  char path[4096], buf[256];
  double deadline = now() + 10.0;
  const char *v1 = cg->unified ? NULL : path_of(cg, "freezer"), *v2 = path_of(cg, "");
  if (v1) {
    snprintf(path, sizeof path, "%s/freezer.state", v1);
    if (read_file(path, buf, sizeof buf) < 0 || !strncmp(buf, "FROZEN", 6) ||
        !strncmp(buf, "FREEZING", 8))
      return 0;
    /* FREEZING can get stuck behind a process in a vfork: thaw and freeze again */
    for (int n = 0;; n++) {
      if (write_file(path, "FROZEN") < 0)
        return -1;
      if (read_file(path, buf, sizeof buf) == 0 && !strncmp(buf, "FROZEN", 6))
        return 1;
      if (now() > deadline) {
        write_file(path, "THAWED");
        return -1;
      }
      if (n % 50 == 49)
        write_file(path, "THAWED");
      struct timespec ts = {0, n < 100 ? 1000000 : 10000000};
      nanosleep(&ts, NULL);
    }
  }
  if (!v2)
    return 0;
  snprintf(path, sizeof path, "%s/cgroup.freeze", v2);
  if (read_file(path, buf, sizeof buf) < 0 || buf[0] == '1')
    return 0;
  if (write_file(path, "1") < 0)
    return -1;
  snprintf(path, sizeof path, "%s/cgroup.events", v2);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  for (;;) {
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = 0;
    if (strstr(buf, "frozen 1\n")) {
      close(fd);
      return 1;
    }
    double left = deadline - now();
    if (left <= 0) {
      close(fd);
      sj_cgroups_thaw(cg);
      return -1;
    }
    struct pollfd p = {.fd = fd, .events = POLLPRI}; /* kernfs wakes pollers on a change */
    poll(&p, 1, left < 0.1 ? (int)(left * 1000) + 1 : 100);
  }
}

int sj_cgroups_signal_all(const struct sj_cgroups *cg, int sig) {
  if (sig == SIGKILL && sj_cgroups_kill(cg) == 0)
    return 0;
  int froze = freeze(cg) == 1, rc = 0;
  long *pids = NULL;
  size_t n = 0;
  if (sj_cgroups_pids(cg, &pids, &n) < 0)
    rc = 1; /* not listed: none signalled */
  for (size_t i = 0; rc == 0 && i < n; i++)
    if (kill((pid_t)pids[i], sig) < 0 && errno != ESRCH)
      rc = -errno;
  free(pids);
  if (froze)
    sj_cgroups_thaw(cg);
  return rc;
}

static void kill_all(const struct sj_cgroups *cg) {
  sj_cgroups_thaw(cg); /* a frozen process cannot die */
  sj_cgroups_signal_all(cg, SIGKILL);
}

/* rmdir `path`; when it has child cgroups, those first (runtime/cgroups/host.rmdir_tree). */
static int rmdir_tree(const char *path, const char **failed) {
  static char where[4096];
  if (rmdir(path) == 0)
    return 0;
  int err = errno;
  if (err != EBUSY && err != ENOTEMPTY) {
    snprintf(where, sizeof where, "%s", path);
    *failed = where;
    return -err;
  }
  DIR *d = opendir(path);
  int subs = 0;
  if (d) {
    struct dirent *e;
    char sub[4096];
    while ((e = readdir(d))) {
      if (e->d_type != DT_DIR || !strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
        continue;
      subs++;
      snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
      int rc = rmdir_tree(sub, failed);
      if (rc < 0) {
        closedir(d);
        return rc;
      }
    }
    closedir(d);
  }
  if (!subs || rmdir(path) < 0) {
    err = subs ? errno : err;
    snprintf(where, sizeof where, "%s", path);
    *failed = where;
    return -err;
  }
  return 0;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int sj_cgroups_destroy(const struct sj_cgroups *cg, const char **failed) {
  double deadline = now() + 5.0;
  int left[SJ_CG_MAX], nleft = cg->n, killed = 0;
  for (int i = 0; i < cg->n; i++)
    left[i] = 1;
  while (nleft) {
    for (int i = 0; i < cg->n; i++) {
      if (!left[i])
        continue;
      int rc = rmdir_tree(cg->path[i], failed);
      if (rc == 0 || rc == -ENOENT) {
        left[i] = 0;
        nleft--;
      } else if (rc != -EBUSY || now() > deadline) {
        return rc;
      }
    }
    if (nleft) {
      if (!killed) {
        kill_all(cg);
        killed = 1;
      }
      struct timespec ts = {0, 2000000};
      nanosleep(&ts, NULL);
    }
  }
  return 0;
}
