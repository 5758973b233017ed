/* The state directory: see state.h. */
#include "state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

int sj_state_valid_id(const char *id) {
  if (!*id || !strcmp(id, ".") || !strcmp(id, ".."))
    return 0;
  for (const char *p = id; *p; p++) {
    char c = *p;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '+' || c == '-' || c == '.'))
      return 0;
  }
  return 1;
}

ssize_t sj_read_short(const char *path, int flags, char *buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | flags);
  if (fd < 0)
    return -1;
  ssize_t n = read(fd, buf, size - 1);
  close(fd);
  if (n < 0)
    return -1;
  buf[n] = 0;
  return n;
}

long long sj_proc_start_time(long long pid) {
  char path[64], buf[1024];
  if (pid <= 0)
    return -1;
  snprintf(path, sizeof path, "/proc/%lld/stat", pid);
  if (sj_read_short(path, 0, buf, sizeof buf) <= 0)
    return -1;
  /* comm may hold spaces and parens: the fields start after the last ')'. */
  char *p = strrchr(buf, ')');
  if (!p || p[1] != ' ')
    return -1;
  p += 2;
  if (*p == 'Z' || *p == 'X') /* a zombie has finished running */
    return -1;
  for (int field = 3; field < 22; field++) { /* state is field 3, starttime 22 */
    p = strchr(p, ' ');
    if (!p)
      return -1;
    p++;
  }
  return strtoll(p, NULL, 10);
}

int sj_state_make(const char *root, const char *id) {
  char path[4096];
  /* mkdir -p root, 0711 */
  if (snprintf(path, sizeof path, "%s", root) >= (int)sizeof path)
    return -ENAMETOOLONG;
  for (char *p = path + 1;; p++) {
    if (*p == '/' || !*p) {
      char c = *p;
      *p = 0;
      if (mkdir(path, 0711) < 0 && errno != EEXIST)
        return -errno;
      *p = c;
      if (!c)
        break;
    }
  }
  if (snprintf(path, sizeof path, "%s/%s", root, id) >= (int)sizeof path)
    return -ENAMETOOLONG;
  if (mkdir(path, 0711) < 0)
    return -errno;
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  if (flock(fd, LOCK_EX) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  return fd;
}

int sj_state_open(const char *root, const char *id, int shared, int *has_state) {
  char path[4096];
  struct stat st;
  if (snprintf(path, sizeof path, "%s/%s", root, id) >= (int)sizeof path)
    return -ENAMETOOLONG;
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  while (flock(fd, shared ? LOCK_SH : LOCK_EX) < 0) {
    if (errno != EINTR) {
      int e = errno;
      close(fd);
      return -e;
    }
  }
  *has_state = fstatat(fd, SJ_STATE_FILE, &st, 0) == 0;
  return fd;
}

yajl_val sj_state_read(int dirfd, char *why, size_t why_size, int *err) {
  why[0] = 0;
  int fd = openat(dirfd, SJ_STATE_FILE, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *err = -errno;
    snprintf(why, why_size, "%s", strerror(errno));
    return NULL;
  }
  size_t cap = 8192, len = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (!buf) {
      close(fd);
      *err = -ENOMEM;
      snprintf(why, why_size, "%s", strerror(ENOMEM));
      return NULL;
    }
    ssize_t n = read(fd, buf + len, cap - len - 1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      *err = -errno;
      snprintf(why, why_size, "%s", strerror(errno));
      close(fd);
      free(buf);
      return NULL;
    }
    if (n == 0)
      break;
    len += n;
    if (len + 1 == cap) {
      char *more = realloc(buf, cap *= 2);
      if (!more)
        free(buf);
      buf = more;
    }
  }
  close(fd);
  buf[len] = 0;
  yajl_val tree = sj_state_parse(buf, why, why_size);
  free(buf);
  *err = tree ? 0 : -EINVAL;
  return tree;
}

yajl_val sj_state_parse(const char *text, char *why, size_t why_size) {
  why[0] = 0;
  yajl_val tree = yajl_tree_parse(text, why, why_size);
  if (!tree) {
    if (!why[0])
      snprintf(why, why_size, "invalid JSON");
    return NULL;
  }
  if (!YAJL_IS_OBJECT(tree)) {
    yajl_tree_free(tree);
    snprintf(why, why_size, "not a JSON object");
    return NULL;
  }
  return tree;
}

yajl_val sj_json_get(yajl_val obj, const char *key) {
  if (!obj || !YAJL_IS_OBJECT(obj))
    return NULL;
  /* the last of equal keys, as a Python dict keeps it */
  for (size_t i = obj->u.object.len; i-- > 0;)
    if (!strcmp(obj->u.object.keys[i], key))
      return obj->u.object.values[i];
  return NULL;
}

const char *sj_json_str(yajl_val obj, const char *key) {
  yajl_val v = sj_json_get(obj, key);
  return v && YAJL_IS_STRING(v) ? v->u.string : NULL;
}

/* An integer or null/absent (-1): 0 if it is one of those, -EINVAL if not. */
static int int_or_null(yajl_val v, long long *out) {
  if (!v || YAJL_IS_NULL(v)) {
    *out = -1;
    return 0;
  }
  if (!YAJL_IS_INTEGER(v))
    return -EINVAL;
  *out = YAJL_GET_INTEGER(v);
  return 0;
}

/* A JSON value's truth, as Python's bool() of what json gives. */
static int truthy(yajl_val v) {
  if (!v || YAJL_IS_NULL(v) || YAJL_IS_FALSE(v))
    return 0;
  if (YAJL_IS_OBJECT(v))
    return v->u.object.len > 0;
  if (YAJL_IS_ARRAY(v))
    return v->u.array.len > 0;
  if (YAJL_IS_STRING(v))
    return v->u.string[0] != 0;
  if (YAJL_IS_INTEGER(v))
    return YAJL_GET_INTEGER(v) != 0;
  if (YAJL_IS_DOUBLE(v))
    return YAJL_GET_DOUBLE(v) != 0;
  return 1;
}

int sj_record_from_tree(yajl_val tree, struct sj_record *rec) {
  memset(rec, 0, sizeof *rec);
  yajl_val creator = sj_json_get(tree, "creator");
  if (truthy(creator)) {
    if (!YAJL_IS_ARRAY(creator) || creator->u.array.len < 2 ||
        int_or_null(creator->u.array.values[0], &rec->creator_pid) < 0 ||
        int_or_null(creator->u.array.values[1], &rec->creator_start) < 0)
      return -EINVAL;
    rec->creating = 1;
  }
  yajl_val pid = sj_json_get(tree, "pid");
  if (truthy(pid) && int_or_null(pid, &rec->pid) < 0)
    return -EINVAL;
  if (int_or_null(sj_json_get(tree, "pid_start"), &rec->pid_start) < 0)
    return -EINVAL;
  yajl_val cg = sj_json_get(tree, "cgroups");
  if (truthy(cg)) {
    yajl_val paths = sj_json_get(cg, "paths");
    if (!YAJL_IS_OBJECT(cg) || (paths && !YAJL_IS_OBJECT(paths)))
      return -EINVAL;
    const char *v1 = sj_json_str(paths, "freezer"), *v2 = sj_json_str(paths, "");
    if (!truthy(sj_json_get(cg, "unified")) && sj_json_get(paths, "freezer")) {
      if (!v1)
        return -EINVAL;
      rec->freezer = 1;
      rec->frozen = v1;
    } else if (sj_json_get(paths, "")) {
      if (!v2)
        return -EINVAL;
      rec->freezer = 2;
      rec->frozen = v2;
    }
  }
  return 0;
}

/* Is the cgroup frozen (or freezing)? Unreadable: no. */
static int frozen(const struct sj_record *rec) {
  char path[4096], buf[64];
  if (!rec->freezer)
    return 0;
  snprintf(path, sizeof path, "%s/%s", rec->frozen,
           rec->freezer == 1 ? "freezer.state" : "cgroup.freeze");
  if (sj_read_short(path, 0, buf, sizeof buf) <= 0)
    return 0;
  buf[strcspn(buf, "\n")] = 0;
  if (rec->freezer == 1)
    return !strcmp(buf, "FROZEN") || !strcmp(buf, "FREEZING");
  return !strcmp(buf, "1");
}

const char *sj_state_status(const struct sj_record *rec, int dirfd) {
  struct stat st;
  if (rec->creating) /* create has not finished: still at it, or it died half-way */
    return sj_proc_start_time(rec->creator_pid) == rec->creator_start ? "creating" : "stopped";
  if (rec->pid <= 0 || sj_proc_start_time(rec->pid) != rec->pid_start)
    return "stopped";
  if (frozen(rec))
    return "paused";
  if (fstatat(dirfd, SJ_STATE_FIFO, &st, 0) == 0)
    return "created";
  return "running";
}

int sj_state_pidfd(long long pid, long long start) {
  if (pid <= 0 || pid > 0x7fffffff)
    return -ESRCH;
  int fd = syscall(SYS_pidfd_open, (pid_t)pid, 0);
  if (fd < 0)
    return -errno;
  /* The pid may have been reused between the read and pidfd_open: check its start. */
  if (sj_proc_start_time(pid) != start) {
    close(fd);
    return -ESRCH;
  }
  /* pidfd_open's fds are close-on-exec already */
  return fd;
}

int sj_state_signal(long long pid, long long start, int sig) {
  int fd = sj_state_pidfd(pid, start);
  if (fd < 0)
    return fd;
  int rc = syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0) < 0 ? -errno : 0;
  close(fd);
  return rc;
}

int sj_state_wait_pidfd(int pidfd, int timeout_ms) {
  struct pollfd p = {.fd = pidfd, .events = POLLIN};
  int n;
  while ((n = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
    ;
  return n > 0;
}

int sj_state_remove(int dirfd, const char *root, const char *id) {
  int fd = dup(dirfd);
  if (fd < 0)
    return -errno;
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return -errno;
  }
  rewinddir(d);
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
      continue;
    if (unlinkat(dirfd, e->d_name, 0) < 0 && errno != ENOENT) {
      int err = errno;
      closedir(d);
      return -err;
    }
  }
  closedir(d);
  char path[4096];
  if (snprintf(path, sizeof path, "%s/%s", root, id) >= (int)sizeof path)
    return -ENAMETOOLONG;
  if (rmdir(path) < 0 && errno != ENOENT)
    return -errno;
  return 0;
}
