/* Path resolution confined to the container rootfs.
 *
 * Every lookup is an openat2(RESOLVE_IN_ROOT) from the root fd, so ".."
 * and absolute symlinks (even ones swapped in between two steps) stay
 * inside the root; magic links (/proc/self/...) are refused.  Creation only
 * ever happens with *at() calls on a directory fd obtained that way.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "paths.h"
#include "syscalls.h"

int sj_open_in_root(int rootfd, const char *path, int flags) {
  if (*path == '\0')
    path = "/";
  int fd, tries = 0;
  /* EAGAIN: a rename or mount raced with ".." resolution; retry a bit. */
  do
    fd = sj_openat2(rootfd, path, (uint64_t)(flags | O_CLOEXEC),
                    SJ_RESOLVE_IN_ROOT | SJ_RESOLVE_NO_MAGICLINKS);
  while (fd < 0 && errno == EAGAIN && ++tries < 32);
  return fd;
}

/* Copy component [p, p+len) into out (NUL-terminated). */
static int copy_name(char *out, size_t size, const char *p, size_t len) {
  if (len >= size || len > NAME_MAX) {
    errno = ENAMETOOLONG;
    return -1;
  }
  memcpy(out, p, len);
  out[len] = '\0';
  return 0;
}

/* Resolve path inside root, creating what is missing: directories, and a
 * last component that is a directory (final_dir) or an empty file.
 *
 * Each prefix is re-resolved from the root rather than from the previous
 * fd, so a symlink like "x -> ../../.." in the middle still resolves
 * against the container root.  A dangling symlink is followed the way
 * runc's SecureJoin does (its target is created, inside the root): images
 * ship links such as /etc/resolv.conf -> ../run/systemd/resolve/... */
static int create_path(int rootfd, const char *path, int final_dir, mode_t mode) {
  char todo[PATH_MAX], prefix[PATH_MAX], name[NAME_MAX + 1], tmp[PATH_MAX];
  size_t plen = 0;
  int links = 0;

  if (strlen(path) >= sizeof todo) {
    errno = ENAMETOOLONG;
    return -1;
  }
  strcpy(todo, path);
  prefix[0] = '\0';
  int cur = sj_open_in_root(rootfd, "/", O_PATH | O_DIRECTORY);
  if (cur < 0)
    return -1;
  const char *p = todo;
  for (;;) {
    while (*p == '/')
      p++;
    if (!*p)
      break;
    const char *end = strchrnul(p, '/');
    size_t len = (size_t)(end - p);
    const char *after = end;
    while (*after == '/')
      after++;
    int last = *after == '\0';
    int want_dir = !last || final_dir;
    int flags = O_PATH | (want_dir ? O_DIRECTORY : 0);
    if (copy_name(name, sizeof name, p, len) < 0 || plen + 1 + len >= sizeof prefix) {
      errno = ENAMETOOLONG;
      goto fail;
    }
    char *newprefix = tmp;
    memcpy(newprefix, prefix, plen);
    newprefix[plen] = '/';
    memcpy(newprefix + plen + 1, p, len);
    newprefix[plen + 1 + len] = '\0';

    int next = sj_open_in_root(rootfd, newprefix, flags);
    if (next < 0 && errno == ENOENT) {
      int rc = want_dir ? mkdirat(cur, name, mode) : mknodat(cur, name, S_IFREG | 0644, 0);
      if (rc < 0 && errno != EEXIST)
        goto fail;
      next = sj_open_in_root(rootfd, newprefix, flags);
    }
    if (next < 0 && errno == ENOENT) {
      /* name exists but leads nowhere: a dangling symlink.  Continue with
       * its text in place of name. */
      char link[PATH_MAX];
      ssize_t n = readlinkat(cur, name, link, sizeof link - 1);
      if (n < 0) {
        errno = ENOENT;
        goto fail;
      }
      link[n] = '\0';
      if (++links > 40) {
        errno = ELOOP;
        goto fail;
      }
      int w = snprintf(tmp, sizeof tmp, "%s/%s", link, end);
      if (w < 0 || (size_t)w >= sizeof tmp) {
        errno = ENAMETOOLONG;
        goto fail;
      }
      memcpy(todo, tmp, (size_t)w + 1);
      p = todo;
      if (link[0] == '/') {
        plen = 0;
        prefix[0] = '\0';
        int root = sj_open_in_root(rootfd, "/", O_PATH | O_DIRECTORY);
        if (root < 0)
          goto fail;
        close(cur);
        cur = root;
      }
      continue;
    }
    if (next < 0)
      goto fail;
    memcpy(prefix, newprefix, plen + 1 + len + 1);
    plen += 1 + len;
    close(cur);
    cur = next;
    p = end;
  }
  return cur;

fail:;
  int saved = errno;
  close(cur);
  errno = saved;
  return -1;
}

int sj_mkdir_in_root(int rootfd, const char *path, mode_t mode) {
  int fd = sj_open_in_root(rootfd, path, O_PATH | O_DIRECTORY);
  if (fd >= 0 || errno != ENOENT)
    return fd;
  return create_path(rootfd, path, 1, mode);
}

int sj_parent_in_root(int rootfd, const char *path, char *name, size_t namesize) {
  char parent[PATH_MAX];
  size_t len = strlen(path);
  while (len > 0 && path[len - 1] == '/')
    len--;
  size_t start = len;
  while (start > 0 && path[start - 1] != '/')
    start--;
  if (len == start || copy_name(name, namesize, path + start, len - start) < 0 ||
      start >= sizeof parent) {
    if (len == start)
      errno = EINVAL;
    return -1;
  }
  if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
    errno = EINVAL;
    return -1;
  }
  memcpy(parent, path, start);
  parent[start] = '\0';
  return sj_mkdir_in_root(rootfd, parent, 0755);
}

int sj_create_in_root(int rootfd, const char *path, int is_dir) {
  int fd = sj_open_in_root(rootfd, path, O_PATH);
  if (fd >= 0 || errno != ENOENT)
    return fd;
  return create_path(rootfd, path, is_dir, 0755);
}
