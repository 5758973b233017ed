/* The container's filesystem: root propagation, the mount list, devices,
 * pivot_root, and the read-only / masked paths.
 *
 * Before pivot_root, every target is resolved inside the rootfs with
 * openat2(RESOLVE_IN_ROOT) and mounted *by fd* (move_mount, or mount(2) on
 * /proc/self/fd/N), so a symlink planted in the rootfs can never send a
 * mount outside it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "init.h"
#include "util.h"

static const char *mount_source_name(const struct sj_mount *m) {
  if (m->source && *m->source)
    return m->source;
  return m->fstype ? m->fstype : "none";
}

/* ---- rootfs ---- */

/* pivot_root refuses a new root whose parent mount is shared: make the
 * mount that holds the rootfs (the rootfs itself if it is a mount point)
 * private.  A path that is not a mount root gives EINVAL: go up. */
static int make_parent_mount_private(const char *rootfs, struct sj_error *err) {
  char path[PATH_MAX];
  if (strlen(rootfs) >= sizeof path)
    return sj_fail(err, ENAMETOOLONG, "rootfs %s", rootfs);
  strcpy(path, rootfs);
  for (;;) {
    if (mount(NULL, path, NULL, MS_PRIVATE, NULL) == 0)
      return 0;
    if (errno != EINVAL || strcmp(path, "/") == 0)
      return sj_fail(err, errno, "make the parent mount of %s private", rootfs);
    char *slash = strrchr(path, '/');
    if (slash == NULL)
      return sj_fail(err, EINVAL, "rootfs %s is not absolute", rootfs);
    if (slash == path)
      slash[1] = '\0';
    else
      *slash = '\0';
  }
}

int sj_rootfs_prepare(struct sj_ctx *ctx, struct sj_error *err) {
  const struct sj_plan *plan = ctx->plan;
  unsigned long prop = plan->root_propagation ? plan->root_propagation : MS_SLAVE | MS_REC;

  /* Nothing we mount may propagate back to the host.  Without a mount
   * namespace of our own, / is the runtime's: left as it is. */
  if (ctx->mntns && mount(NULL, "/", NULL, prop, NULL) < 0)
    return sj_fail(err, errno, "set the propagation of /");
  /* Only a shared parent must go private (as runc): a slave one stays a
   * slave, so binds from it keep receiving the host's mounts. */
  if (ctx->mntns && (prop & MS_SHARED) && make_parent_mount_private(plan->rootfs, err) < 0)
    return -1;
  /* A mount of its own: pivot_root needs the new root to be a mount point.
   * Without a mount namespace it holds everything we mount, in the
   * runtime's namespace: the caller detaches it (and all of them) at delete. */
  if (mount(plan->rootfs, plan->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
    return sj_fail(err, errno, "bind mount the rootfs %s", plan->rootfs);
  ctx->rootfd = open(plan->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (ctx->rootfd < 0)
    return sj_fail(err, errno, "open the rootfs %s", plan->rootfs);
  return 0;
}

/* ---- mount attributes ---- */

static int set_attrs(int fd, const struct sj_mount *m, const char *what, struct sj_error *err) {
  if (!m->attr_set && !m->attr_clr)
    return 0;
  struct sj_mount_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.attr_set = m->attr_set;
  attr.attr_clr = m->attr_clr;
  /* The atime mode is one value, not bits: setting one means clearing all. */
  if (m->attr_set & MOUNT_ATTR__ATIME)
    attr.attr_clr |= MOUNT_ATTR__ATIME;
  unsigned int flags = AT_EMPTY_PATH | (m->attr_recursive ? AT_RECURSIVE : 0);
  if (sj_mount_setattr(fd, "", flags, &attr) < 0)
    return sj_fail(err, errno, "set mount attributes of %s", what);
  return 0;
}

/* Propagation of the mount now on top of target (re-resolved in root). */
static int set_propagation(struct sj_ctx *ctx, const char *target, unsigned long propagation,
                           struct sj_error *err) {
  if (!propagation)
    return 0;
  char fdpath[32];
  int fd = sj_open_in_root(ctx->rootfd, target, O_PATH);
  if (fd < 0)
    return sj_fail(err, errno, "open %s", target);
  int rc = mount(NULL, sj_fdpath(fdpath, sizeof fdpath, fd), NULL, propagation, NULL);
  int saved = errno;
  close(fd);
  if (rc < 0)
    return sj_fail(err, saved, "set the propagation of %s", target);
  return 0;
}

/* ---- the mount kinds ---- */

/* mount(2) onto the target, created inside the root and named by fd (a
 * symlink swapped in later cannot redirect it), or the detached tree
 * tree_fd moved there; then the attributes and the propagation of the new
 * mount, found again inside the root.  `src` is what errors name. */
static int mount_at(struct sj_ctx *ctx, const struct sj_mount *m, const char *src, int is_dir,
                    unsigned long flags, const char *data, int tree_fd, struct sj_error *err) {
  char fdpath[32];
  int fd = sj_create_in_root(ctx->rootfd, m->target, is_dir);
  if (fd < 0)
    return sj_fail(err, errno, "mount %s to %s: create the mount point", src, m->target);
  int rc;
  if (tree_fd >= 0)
    rc = sj_move_mount(tree_fd, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
  else
    rc = mount(src, sj_fdpath(fdpath, sizeof fdpath, fd), m->fstype, flags, data);
  int saved = errno;
  close(fd);
  if (rc < 0)
    return sj_fail(err, saved, "mount %s to %s", src, m->target);
  if (m->attr_set || m->attr_clr) {
    fd = sj_open_in_root(ctx->rootfd, m->target, O_PATH); /* the new mount */
    if (fd < 0)
      return sj_fail(err, errno, "open %s", m->target);
    rc = set_attrs(fd, m, m->target, err);
    close(fd);
    if (rc < 0)
      return -1;
  }
  return set_propagation(ctx, m->target, m->propagation, err);
}

/* tmpfs without mode=: the mode of the directory it covers goes first in
 * its data (a mode= there still wins), as runc gives it; a missing one is
 * created 0755 and the tmpfs keeps its own default (1777).  -> the data to
 * mount with: m->data itself, or buf. */
static const char *tmpfs_data(struct sj_ctx *ctx, const struct sj_mount *m, char *buf,
                              size_t size) {
  if (!m->inherit_mode)
    return m->data;
  int fd = sj_open_in_root(ctx->rootfd, m->target, O_PATH | O_DIRECTORY);
  if (fd < 0)
    return m->data;
  struct stat st;
  int rc = fstat(fd, &st);
  close(fd);
  if (rc < 0)
    return m->data;
  int n = snprintf(buf, size, "mode=%04o%s%s", (unsigned int)(st.st_mode & 07777),
                   m->data ? "," : "", m->data ? m->data : "");
  /* Longer than a page the kernel refuses it anyway: leave the data as given. */
  return n > 0 && (size_t)n < size ? buf : m->data;
}

static int mount_fs(struct sj_ctx *ctx, const struct sj_mount *m, struct sj_error *err) {
  char buf[4200]; /* mount(2) takes a page of data at most */
  const char *data = tmpfs_data(ctx, m, buf, sizeof buf);
  if (!m->copy_up)
    return mount_at(ctx, m, mount_source_name(m), m->target_is_dir, m->flags, data, -1, err);
  int src = sj_copyup_prepare(ctx, m);
  if (src == -1)
    return sj_fail(err, errno, "tmpcopyup %s: open", m->target);
  int rc = mount_at(ctx, m, mount_source_name(m), 1, m->flags, data, -1, err);
  if (rc == 0 && src >= 0)
    rc = sj_copyup(ctx, m, src, err);
  if (src >= 0)
    close(src);
  return rc;
}

/* A bind mount with mount(2), not open_tree: the copy then stays in the
 * source's propagation group (a slave of the host's mount, after the rslave
 * of "/"), so that what the host mounts below it later still reaches the
 * container, as rslave volumes promise.  A tree the runtime made for us
 * (tree_fd: see mount_trees.c) is already such a slave: it is moved in. */
static int mount_bind(struct sj_ctx *ctx, const struct sj_mount *m, struct sj_error *err) {
  struct stat st;
  if (m->tree_fd >= 0) {
    if (fstat(m->tree_fd, &st) < 0)
      return sj_fail(err, errno, "mount %s to %s: stat", m->source, m->target);
    int rc = mount_at(ctx, m, m->source, S_ISDIR(st.st_mode), 0, NULL, m->tree_fd, err);
    close(m->tree_fd); /* ours (inherited): the mount holds what it needs */
    return rc;
  }
  if (stat(m->source, &st) < 0)
    return sj_fail(err, errno, "mount %s to %s: stat", m->source, m->target);
  unsigned long flags = MS_BIND | (m->recursive ? MS_REC : 0);
  return mount_at(ctx, m, m->source, S_ISDIR(st.st_mode), flags, m->data, -1, err);
}

static int make_symlink(struct sj_ctx *ctx, const struct sj_mount *m, struct sj_error *err) {
  char name[NAME_MAX + 1], cur[PATH_MAX];
  int parent = sj_parent_in_root(ctx->rootfd, m->target, name, sizeof name);
  if (parent < 0)
    return sj_fail(err, errno, "symlink %s to %s", m->target, m->source);
  int rc = 0;
  if (symlinkat(m->source, parent, name) < 0) {
    int saved = errno;
    ssize_t n = saved == EEXIST ? readlinkat(parent, name, cur, sizeof cur - 1) : -1;
    if (n >= 0)
      cur[n] = '\0';
    /* An identical link is fine (an image may ship /dev/fd, say). */
    if (n < 0 || strcmp(cur, m->source) != 0)
      rc = sj_fail(err, saved, "symlink %s to %s", m->target, m->source);
  }
  close(parent);
  return rc;
}

static int make_dir(struct sj_ctx *ctx, const struct sj_mount *m, struct sj_error *err) {
  mode_t old = umask(0);
  int fd = sj_mkdir_in_root(ctx->rootfd, m->target, m->data_mode ? m->data_mode : 0755);
  int saved = errno;
  umask(old);
  if (fd < 0)
    return sj_fail(err, saved, "mkdir %s", m->target);
  close(fd);
  return 0;
}

/* Attributes of a mount made earlier in the list (e.g. the cgroup tmpfs
 * made read-only once the controllers are bound under it). */
static int remount(struct sj_ctx *ctx, const struct sj_mount *m, struct sj_error *err) {
  int fd = sj_open_in_root(ctx->rootfd, m->target, O_PATH);
  if (fd < 0)
    return sj_fail(err, errno, "remount %s", m->target);
  int rc = set_attrs(fd, m, m->target, err);
  close(fd);
  if (rc < 0)
    return -1;
  return set_propagation(ctx, m->target, m->propagation, err);
}

int sj_rootfs_mounts(struct sj_ctx *ctx, struct sj_error *err) {
  const struct sj_plan *plan = ctx->plan;
  for (size_t i = 0; i < plan->nmounts; i++) {
    const struct sj_mount *m = &plan->mounts[i];
    int rc;
    switch (m->kind) {
    case SJ_MOUNT_FS:
      rc = mount_fs(ctx, m, err);
      break;
    case SJ_MOUNT_BIND:
      rc = mount_bind(ctx, m, err);
      break;
    case SJ_MOUNT_SYMLINK:
      rc = make_symlink(ctx, m, err);
      break;
    case SJ_MOUNT_MKDIR:
      rc = make_dir(ctx, m, err);
      break;
    case SJ_MOUNT_REMOUNT:
      rc = remount(ctx, m, err);
      break;
    default:
      rc = sj_failx(err, EINVAL, "mount %s: unknown kind %d", m->target, m->kind);
    }
    if (rc < 0)
      return -1;
  }
  return 0;
}

/* ---- devices ---- */

static int device_type(int type, mode_t *out) {
  switch (type) {
  case 'c':
  case 'u':
    *out = S_IFCHR;
    return 0;
  case 'b':
    *out = S_IFBLK;
    return 0;
  case 'p':
    *out = S_IFIFO;
    return 0;
  }
  return -1;
}

/* An empty file at the path with the host's node of the same path on it. */
static int bind_device(struct sj_ctx *ctx, int parent, const char *name,
                       const struct sj_device *d, struct sj_error *err) {
  if (mknodat(parent, name, S_IFREG | 0644, 0) < 0 && errno != EEXIST)
    return sj_fail(err, errno, "create %s", d->path);
  int tree = sj_open_tree(AT_FDCWD, d->path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree < 0)
    return sj_fail(err, errno, "bind mount the device %s from the host", d->path);
  /* A device node needs dev, nothing else: nosuid and noexec, as crun. */
  struct sj_mount_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC;
  int target = -1, rc = 0;
  if (sj_mount_setattr(tree, "", AT_EMPTY_PATH, &attr) < 0)
    rc = sj_fail(err, errno, "bind mount the device %s from the host: nosuid,noexec", d->path);
  else if ((target = sj_open_in_root(ctx->rootfd, d->path, O_PATH)) < 0)
    rc = sj_fail(err, errno, "open %s", d->path);
  else if (sj_move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    rc = sj_fail(err, errno, "bind mount the device %s from the host", d->path);
  if (target >= 0)
    close(target);
  close(tree);
  return rc;
}

static int make_device(struct sj_ctx *ctx, const struct sj_device *d, struct sj_error *err) {
  mode_t type;
  if (device_type(d->type, &type) < 0)
    return sj_failx(err, EINVAL, "device %s: unknown type '%c'", d->path, d->type);

  char name[NAME_MAX + 1];
  int parent = sj_parent_in_root(ctx->rootfd, d->path, name, sizeof name);
  if (parent < 0)
    return sj_fail(err, errno, "create device %s", d->path);

  int rc = -1;
  struct stat st;
  if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISDIR(st.st_mode)) {
      sj_fail(err, EISDIR, "create device %s", d->path);
      goto out;
    }
    if (unlinkat(parent, name, 0) < 0) {
      sj_fail(err, errno, "create device %s: remove the existing file", d->path);
      goto out;
    }
  }
  if (!d->bind_from_host) {
    mode_t old = umask(0); /* the mode is exactly the configured one */
    int made = mknodat(parent, name, type | (d->mode & 07777), makedev(d->major, d->minor));
    int saved = errno;
    umask(old);
    if (made == 0) {
      if (fchownat(parent, name, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) < 0)
        sj_fail(err, errno, "chown device %s", d->path);
      else
        rc = 0;
      goto out;
    }
    /* In a user namespace mknod is never allowed: fall back to a bind. */
    if (!(saved == EPERM && ctx->userns)) {
      sj_fail(err, saved, "mknod %s", d->path);
      goto out;
    }
  }
  rc = bind_device(ctx, parent, name, d, err);
out:
  close(parent);
  return rc;
}

int sj_rootfs_devices(struct sj_ctx *ctx, struct sj_error *err) {
  for (size_t i = 0; i < ctx->plan->ndevices; i++)
    if (make_device(ctx, &ctx->plan->devices[i], err) < 0)
      return -1;
  return 0;
}

/* ---- pivot ---- */

/* A private copy of the host's /dev/null mount, taken while it is still
 * reachable, to mask files with: the container's own /dev/null could be
 * anything (a symlink to a file we would then expose instead of hiding). */
/* The mask for files: the container's own /dev/null (as runc; the host's
 * would show the host's devtmpfs in the container's mountinfo), taken by fd
 * and checked to be the null device, so that a rootfs that replaced it (a
 * symlink, another device, a file: CVE-2025-31133) is refused. */
int sj_grab_dev_null(struct sj_ctx *ctx, struct sj_error *err) {
  int fd = sj_open_in_root(ctx->rootfd, "/dev/null", O_PATH);
  if (fd < 0)
    return sj_fail(err, errno, "open /dev/null");
  struct stat st;
  int rc = 0;
  if (fstat(fd, &st) < 0)
    rc = sj_fail(err, errno, "stat /dev/null");
  else if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3))
    rc = sj_failx(err, EINVAL, "/dev/null is not the null device");
  else if ((ctx->null_tree = sj_open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
                                                      AT_EMPTY_PATH)) < 0)
    rc = sj_fail(err, errno, "clone the /dev/null mount");
  close(fd);
  return rc;
}

static int move_root(struct sj_ctx *ctx, struct sj_error *err) {
  /* For roots pivot_root cannot leave (initramfs): move over / instead. */
  if (fchdir(ctx->rootfd) < 0)
    return sj_fail(err, errno, "chdir to the rootfs");
  if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
    return sj_fail(err, errno, "move the rootfs to /");
  if (chroot(".") < 0)
    return sj_fail(err, errno, "chroot");
  return 0;
}

static int pivot(struct sj_ctx *ctx, struct sj_error *err) {
  int oldroot = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (oldroot < 0)
    return sj_fail(err, errno, "open /");
  int rc = -1;
  if (fchdir(ctx->rootfd) < 0) {
    sj_fail(err, errno, "chdir to the rootfs");
    goto out;
  }
  /* new root and put_old the same: the old root ends up stacked on top of
   * the new one, with no directory needed inside the rootfs. */
  if (sj_pivot_root(".", ".") < 0) {
    sj_fail(err, errno, "pivot_root");
    goto out;
  }
  /* Detach the old root; make it rslave first so that the unmount cannot
   * propagate to the host when / was shared. */
  if (fchdir(oldroot) < 0) {
    sj_fail(err, errno, "chdir to the old root");
    goto out;
  }
  if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0) {
    sj_fail(err, errno, "make the old root rslave");
    goto out;
  }
  if (umount2(".", MNT_DETACH) < 0) {
    sj_fail(err, errno, "unmount the old root");
    goto out;
  }
  rc = 0;
out:
  close(oldroot);
  return rc;
}

/* Without a mount namespace of our own there is nothing to pivot: the old
 * root is the runtime's.  chroot, as runc and crun do. */
static int chroot_root(struct sj_ctx *ctx, struct sj_error *err) {
  if (fchdir(ctx->rootfd) < 0)
    return sj_fail(err, errno, "chdir to the rootfs");
  if (chroot(".") < 0)
    return sj_fail(err, errno, "chroot to the rootfs");
  return 0;
}

int sj_enter_rootfs(struct sj_ctx *ctx, struct sj_error *err) {
  const struct sj_plan *plan = ctx->plan;
  int rc = !ctx->mntns ? chroot_root(ctx, err) : plan->no_pivot ? move_root(ctx, err)
                                                                : pivot(ctx, err);
  if (rc < 0)
    return -1;
  if (chdir("/") < 0)
    return sj_fail(err, errno, "chdir /");
  if (plan->rootfs_propagation && mount(NULL, "/", NULL, plan->rootfs_propagation, NULL) < 0)
    return sj_fail(err, errno, "set the rootfs propagation");
  /* From now on "the root" is our /. */
  close(ctx->rootfd);
  ctx->rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (ctx->rootfd < 0)
    return sj_fail(err, errno, "open /");
  return 0;
}

/* ---- after pivot ---- */

static int readonly_path(struct sj_ctx *ctx, const char *path, struct sj_error *err) {
  int fd = sj_open_in_root(ctx->rootfd, path, O_PATH);
  if (fd < 0)
    return errno == ENOENT ? 0 : sj_fail(err, errno, "readonly path %s", path);
  int rc = 0;
  int tree = sj_open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH |
                                      AT_RECURSIVE);
  struct sj_mount_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.attr_set = MOUNT_ATTR_RDONLY;
  if (tree < 0 || sj_mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr) < 0 ||
      sj_move_mount(tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    rc = sj_fail(err, errno, "readonly path %s", path);
  if (tree >= 0)
    close(tree);
  close(fd);
  return rc;
}

int sj_readonly_paths(struct sj_ctx *ctx, struct sj_error *err) {
  for (size_t i = 0; i < ctx->plan->nreadonly; i++)
    if (readonly_path(ctx, ctx->plan->readonly_paths[i], err) < 0)
      return -1;
  return 0;
}

/* A directory is hidden under an empty read-only tmpfs (made with the new
 * mount API: it does not need a /proc). */
static int mask_dir(int fd) {
  int fs = sj_fsopen("tmpfs", FSOPEN_CLOEXEC);
  if (fs < 0)
    return -1;
  int mnt = -1, rc = -1;
  if (sj_fsconfig(fs, SJ_FSCONFIG_SET_STRING, "source", "tmpfs", 0) == 0 &&
      sj_fsconfig(fs, SJ_FSCONFIG_SET_FLAG, "ro", NULL, 0) == 0 &&
      sj_fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0 &&
      (mnt = sj_fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY)) >= 0)
    rc = sj_move_mount(mnt, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
  int saved = errno;
  if (mnt >= 0)
    close(mnt);
  close(fs);
  errno = saved;
  return rc;
}

/* A file is hidden under the host's /dev/null.  The grabbed copy is
 * attached the first time; later ones are cloned from it (a mount can only
 * be cloned while it is in our namespace). */
static int mask_file(struct sj_ctx *ctx, int fd) {
  const unsigned int mv = MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH;
  if (!ctx->null_attached) {
    if (sj_move_mount(ctx->null_tree, "", fd, "", mv) < 0)
      return -1;
    ctx->null_attached = 1;
    return 0;
  }
  int tree = sj_open_tree(ctx->null_tree, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
  if (tree < 0)
    return -1;
  int rc = sj_move_mount(tree, "", fd, "", mv);
  int saved = errno;
  close(tree);
  errno = saved;
  return rc;
}

int sj_masked_paths(struct sj_ctx *ctx, struct sj_error *err) {
  for (size_t i = 0; i < ctx->plan->nmasked; i++) {
    const char *path = ctx->plan->masked_paths[i];
    int fd = sj_open_in_root(ctx->rootfd, path, O_PATH);
    if (fd < 0) {
      if (errno == ENOENT)
        continue;
      return sj_fail(err, errno, "mask %s", path);
    }
    struct stat st;
    int rc = fstat(fd, &st);
    if (rc == 0)
      rc = S_ISDIR(st.st_mode) ? mask_dir(fd) : mask_file(ctx, fd);
    int saved = errno;
    close(fd);
    if (rc < 0)
      return sj_fail(err, saved, "mask %s", path);
  }
  if (ctx->null_tree >= 0) {
    close(ctx->null_tree);
    ctx->null_tree = -1;
  }
  return 0;
}

int sj_root_readonly(struct sj_ctx *ctx, struct sj_error *err) {
  if (!ctx->plan->root_readonly)
    return 0;
  struct sj_mount_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.attr_set = MOUNT_ATTR_RDONLY;
  if (sj_mount_setattr(ctx->rootfd, "", AT_EMPTY_PATH, &attr) < 0)
    return sj_fail(err, errno, "make / read-only");
  return 0;
}
