/* Applying tar entries to the layer directory.
 *
 * Every name is created with an *at() call in a directory fd obtained by
 * extract_resolve.c (confined to the root), with O_EXCL/O_NOFOLLOW or
 * their equivalents, so an existing symlink is never written through.
 *
 * Replacing: the layer starts empty, so a name exists only if this layer
 * created it.  A hash set of (directory, name) for everything created lets
 * the common case - a new name - go straight to creation (possibly on a
 * writer thread); a hit drains the writers and looks: a directory over a
 * directory merges, anything else is removed first (recursively for a
 * directory), as the image spec says of entries that change type.
 *
 * Whiteouts (overlayfs form): ".wh.x" -> char device 0:0 "x", unless this
 * layer has "x" itself (whiteouts only hide lower layers); ".wh..wh..opq"
 * -> trusted.overlay.opaque=y on the directory, which hides lower layers
 * and leaves this layer's entries alone whatever their order.  A directory
 * that replaces one of our whiteouts is made opaque for the same reason.
 *
 * Metadata order: data, then owner (chown clears setuid/setgid and file
 * capabilities), then xattrs, then mode, then times.  Directories get all
 * of it at the end, deepest first, once nothing more is created in them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "extract_int.h"

#define WH_PREFIX ".wh."
#define WH_META ".wh..wh."
#define WH_OPAQUE ".wh..wh..opq"
#define MAX_HELD_DIRS 4096

#ifndef SYS_setxattrat
#define SYS_setxattrat 463 /* Linux 6.13, in the syscall table all architectures share */
#endif

struct sjx_dirmeta {
	char *path;
	struct sjx_dir *dir; /* held open since it was made, or NULL: open by path */
	uint64_t seq;
	size_t depth;
	dev_t dev;
	ino_t ino;
	uint32_t mode, uid, gid;
	int64_t mtime; /* INT64_MIN: leave it */
	long nsec;
	struct sjx_xattr *x;
	size_t nx;
};

/* ---- the context ---- */

static mode_t read_umask(void)
{
	/* umask() would change it for every thread of the process: read it */
	FILE *f = fopen("/proc/self/status", "re");
	char line[128];
	unsigned m = 07777; /* unknown: always chmod */
	if (!f)
		return m;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "Umask: %o", &m) == 1)
			break;
	fclose(f);
	return (mode_t)m;
}

int sjx_ctx_init(struct sjx_ctx *c, const struct sj_extract_opts *o, struct sj_extract_stats *st,
		 struct sj_extract_error *err)
{
	struct stat rst;
	memset(c, 0, sizeof *c);
	c->root_fd = o->root_fd;
	c->lower_fds = o->lower_fds;
	c->n_lowers = o->lower_fds ? o->n_lowers : 0;
	c->umask = read_umask();
	c->euid = geteuid();
	c->egid = getegid();
	c->stats = st;
	c->err = err;
	pthread_mutex_init(&c->err_lock, NULL);
	if (fstat(o->root_fd, &rst) < 0)
		return sjx_fail_sys(err, errno, NULL, "the layer directory");
	if (!S_ISDIR(rst.st_mode))
		return sjx_fail(err, ENOTDIR, NULL, "the layer directory is not a directory");
	/* in a setgid directory new inodes take its group (and new directories
	 * the setgid bit, so it propagates) */
	c->new_gid = (rst.st_mode & S_ISGID) ? rst.st_gid : c->egid;
	/* directories held open until the end: a share of the fd limit (the
	 * process may unpack several layers at once); the rest are opened again */
	struct rlimit rl;
	c->max_held_dirs = 0;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		c->max_held_dirs = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur / 8 > MAX_HELD_DIRS
					   ? MAX_HELD_DIRS
					   : (size_t)(rl.rlim_cur / 8);
	return 0;
}

void sjx_ctx_destroy(struct sjx_ctx *c)
{
	sjx_resolve_forget(c);
	free(c->cache_path);
	free(c->cache_canon);
	free(c->names);
	for (size_t i = 0; i < c->dirs_len; i++) {
		free(c->dirs[i].path);
		free(c->dirs[i].x);
		sjx_dir_unref(c->dirs[i].dir);
	}
	free(c->dirs);
	pthread_mutex_destroy(&c->err_lock);
}

void sjx_ctx_fail_from(struct sjx_ctx *c, const struct sj_extract_error *e)
{
	pthread_mutex_lock(&c->err_lock);
	if (!c->failed) {
		c->werr = *e;
		__atomic_store_n(&c->failed, 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&c->err_lock);
}

/* After a drain or submit failed: the writer's error becomes ours. */
static int writer_failed(struct sjx_ctx *c)
{
	pthread_mutex_lock(&c->err_lock);
	if (!c->err->msg[0])
		*c->err = c->werr;
	pthread_mutex_unlock(&c->err_lock);
	return -1;
}

int sjx_drain(struct sjx_ctx *c)
{
	if (c->pool && sjx_pool_drain(c->pool) < 0)
		return writer_failed(c);
	return 0;
}

/* ---- the set of names created in this layer ---- */

uint64_t sjx_name_key(uint64_t dir_id, const char *name)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ dir_id; /* FNV-1a over the name */
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	h ^= h >> 29;
	return h | 1; /* 0 marks an empty slot */
}

int sjx_names_has(const struct sjx_ctx *c, uint64_t key)
{
	if (!c->names_cap)
		return 0;
	for (size_t i = key & (c->names_cap - 1);; i = (i + 1) & (c->names_cap - 1)) {
		if (c->names[i] == key)
			return 1;
		if (!c->names[i])
			return 0;
	}
}

int sjx_names_add(struct sjx_ctx *c, uint64_t key)
{
	if (2 * (c->names_len + 1) > c->names_cap) {
		size_t cap = c->names_cap ? c->names_cap * 2 : 4096;
		uint64_t *n = calloc(cap, sizeof *n);
		if (!n)
			return -1;
		for (size_t i = 0; i < c->names_cap; i++) {
			uint64_t k = c->names[i];
			if (!k)
				continue;
			size_t j = k & (cap - 1);
			while (n[j])
				j = (j + 1) & (cap - 1);
			n[j] = k;
		}
		free(c->names);
		c->names = n;
		c->names_cap = cap;
	}
	size_t i = key & (c->names_cap - 1);
	while (c->names[i] && c->names[i] != key)
		i = (i + 1) & (c->names_cap - 1);
	if (!c->names[i]) {
		c->names[i] = key;
		c->names_len++;
	}
	return 0;
}

/* ---- metadata ---- */

struct meta {
	uint32_t mode, uid, gid;
	int64_t mtime;
	long nsec;
	const struct sjx_xattr *x;
	size_t nx;
};

static int reserved_xattr(const char *name)
{
	/* overlayfs reads these on the layer: only our whiteout conversion may set them */
	return !strncmp(name, "trusted.overlay.", 16) || !strncmp(name, "user.overlay.", 13);
}

static int skippable_xattr_error(int e)
{
	/* the file system has no such namespace, or (EPERM) user.* on a symlink or device */
	return e == ENOTSUP || e == EOPNOTSUPP || e == EPERM;
}

static long setxattr_nofollow(int dirfd, const char *name, const char *key, const void *value,
			      size_t len)
{
	struct {
		uint64_t value;
		uint32_t size, flags;
	} args = {(uint64_t)(uintptr_t)value, (uint32_t)len, 0};
	long r = syscall(SYS_setxattrat, dirfd, name, AT_SYMLINK_NOFOLLOW, key, &args, sizeof args);
	if (r == 0 || errno != ENOSYS)
		return r;
	char path[64 + 256]; /* before 6.13: the directory through its fd */
	snprintf(path, sizeof path, "/proc/self/fd/%d/%s", dirfd, name);
	return lsetxattr(path, key, value, len, 0);
}

/* fd >= 0: on the open file; else dirfd/name, not following a symlink */
static int set_xattrs(struct sjx_ctx *c, int fd, int dirfd, const char *name, const struct meta *m,
		      const char *entry, struct sj_extract_error *err)
{
	for (size_t i = 0; i < m->nx; i++) {
		const struct sjx_xattr *x = &m->x[i];
		long r;
		if (reserved_xattr(x->name)) {
			__atomic_add_fetch(&c->stats->xattrs_skipped, 1, __ATOMIC_RELAXED);
			continue;
		}
		if (fd >= 0)
			r = fsetxattr(fd, x->name, x->value, x->len, 0);
		else
			r = setxattr_nofollow(dirfd, name, x->name, x->value, x->len);
		if (r < 0) {
			if (!skippable_xattr_error(errno)) {
				char what[300];
				snprintf(what, sizeof what, "setxattr %s", x->name);
				return sjx_fail_sys(err, errno, entry, what);
			}
			__atomic_add_fetch(&c->stats->xattrs_skipped, 1, __ATOMIC_RELAXED);
		}
	}
	return 0;
}

static int need_chown(const struct sjx_ctx *c, const struct meta *m)
{
	return m->uid != c->euid || m->gid != c->new_gid;
}

static int need_chmod(const struct sjx_ctx *c, const struct meta *m)
{
	return (m->mode & 07000) || (m->mode & c->umask & 0777);
}

static void times_of(const struct meta *m, struct timespec ts[2])
{
	ts[0].tv_sec = ts[1].tv_sec = (time_t)m->mtime;
	ts[0].tv_nsec = ts[1].tv_nsec = m->nsec;
}

/* owner, xattrs, mode, times of an open regular file */
static int finish_fd(struct sjx_ctx *c, int fd, const struct meta *m, const char *entry,
		     struct sj_extract_error *err)
{
	struct timespec ts[2];
	int chowned = need_chown(c, m);
	if (chowned && fchown(fd, m->uid, m->gid) < 0)
		return sjx_fail_sys(err, errno, entry, "chown");
	if (set_xattrs(c, fd, -1, NULL, m, entry, err) < 0)
		return -1;
	if ((chowned || need_chmod(c, m)) && fchmod(fd, m->mode) < 0)
		return sjx_fail_sys(err, errno, entry, "chmod");
	times_of(m, ts);
	if (futimens(fd, ts) < 0)
		return sjx_fail_sys(err, errno, entry, "set mtime");
	return 0;
}

/* the same by name, for symlinks (no mode) and devices */
static int finish_at(struct sjx_ctx *c, int dirfd, const char *name, const struct meta *m,
		     int is_link, const char *entry, struct sj_extract_error *err)
{
	struct timespec ts[2];
	int chowned = need_chown(c, m);
	if (chowned && fchownat(dirfd, name, m->uid, m->gid, AT_SYMLINK_NOFOLLOW) < 0)
		return sjx_fail_sys(err, errno, entry, "chown");
	if (set_xattrs(c, -1, dirfd, name, m, entry, err) < 0)
		return -1;
	/* not a symlink: we just made it, so no flag is needed not to follow */
	if (!is_link && (chowned || need_chmod(c, m)) && fchmodat(dirfd, name, m->mode, 0) < 0)
		return sjx_fail_sys(err, errno, entry, "chmod");
	times_of(m, ts);
	if (utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return sjx_fail_sys(err, errno, entry, "set mtime");
	return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w, n -= (size_t)w;
	}
	return 0;
}

static int create_file(int dirfd, const char *name, uint32_t mode)
{
	return openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		      mode & 07777);
}

/* ---- jobs: regular files and symlinks whose names are known to be new ---- */

int sjx_write_job(struct sjx_ctx *c, const struct sjx_job *j, struct sj_extract_error *err)
{
	struct meta m = {j->mode, j->uid, j->gid, j->mtime, j->mtime_nsec, j->xattrs, j->n_xattrs};
	if (j->type == '2') {
		if (symlinkat((const char *)j->data, j->dir->fd, j->name) < 0)
			return sjx_fail_sys(err, errno, j->entry, "symlink");
		return finish_at(c, j->dir->fd, j->name, &m, 1, j->entry, err);
	}
	int fd = create_file(j->dir->fd, j->name, j->mode);
	if (fd < 0)
		return sjx_fail_sys(err, errno, j->entry, "create");
	int rc = 0;
	if (write_all(fd, j->data, j->size) < 0)
		rc = sjx_fail_sys(err, errno, j->entry, "write");
	else
		rc = finish_fd(c, fd, &m, j->entry, err);
	if (close(fd) < 0 && !rc)
		rc = sjx_fail_sys(err, errno, j->entry, "close");
	if (!rc)
		__atomic_add_fetch(&c->stats->file_bytes, j->size, __ATOMIC_RELAXED);
	return rc;
}

/* One allocation: the job, its name, entry, xattrs and content. */
static struct sjx_job *job_new(struct sjx_dir *dir, const char *base, const struct sjx_entry *e,
			       size_t datalen)
{
	size_t nb = strlen(base) + 1, ne = strlen(e->name) + 1, xb = 0;
	for (size_t i = 0; i < e->n_xattrs; i++)
		xb += strlen(e->xattrs[i].name) + 1 + e->xattrs[i].len;
	size_t total = sizeof(struct sjx_job) + e->n_xattrs * sizeof(struct sjx_xattr) + nb + ne +
		       xb + datalen + 1;
	struct sjx_job *j = malloc(total);
	if (!j)
		return NULL;
	char *p = (char *)(j + 1);
	j->next = NULL;
	j->dir = sjx_dir_ref(dir);
	j->type = e->type;
	j->mode = e->mode, j->uid = e->uid, j->gid = e->gid;
	j->mtime = e->mtime, j->mtime_nsec = e->mtime_nsec;
	j->xattrs = (struct sjx_xattr *)p;
	j->n_xattrs = e->n_xattrs;
	p += e->n_xattrs * sizeof(struct sjx_xattr);
	for (size_t i = 0; i < e->n_xattrs; i++) {
		size_t nl = strlen(e->xattrs[i].name) + 1;
		memcpy(p, e->xattrs[i].name, nl);
		j->xattrs[i].name = p;
		p += nl;
		memcpy(p, e->xattrs[i].value, e->xattrs[i].len);
		j->xattrs[i].value = (uint8_t *)p;
		j->xattrs[i].len = e->xattrs[i].len;
		p += e->xattrs[i].len;
	}
	j->name = memcpy(p, base, nb);
	p += nb;
	j->entry = memcpy(p, e->name, ne);
	p += ne;
	j->data = (uint8_t *)p;
	j->size = datalen;
	j->data[datalen] = 0;
	return j;
}

/* ---- removing what an entry replaces ---- */

static int rmtree_at(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -1;
	}
	int removed;
	do { /* rescan until empty: removing while reading may skip entries */
		struct dirent *de;
		removed = 0;
		rewinddir(d);
		while ((de = readdir(d))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			int r = unlinkat(fd, de->d_name, 0);
			if (r < 0 && (errno == EISDIR || errno == EPERM))
				r = rmtree_at(fd, de->d_name);
			if (r < 0) {
				closedir(d);
				return -1;
			}
			removed = 1;
		}
	} while (removed);
	closedir(d);
	return unlinkat(dirfd, name, AT_REMOVEDIR);
}

enum { GONE, MERGE };

/* The name exists (maybe): drains the writers and removes it, unless a
 * directory meets a directory (MERGE).  *was_whiteout if it was ours. */
static int make_room(struct sjx_ctx *c, const struct sjx_entry *e, struct sjx_dir *dir,
		     const char *base, int *was_whiteout)
{
	struct stat st;
	if (was_whiteout)
		*was_whiteout = 0;
	if (sjx_drain(c) < 0)
		return -1;
	if (fstatat(dir->fd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return GONE;
		return sjx_fail_sys(c->err, errno, e->name, "lstat");
	}
	if (S_ISDIR(st.st_mode)) {
		if (e->type == '5')
			return MERGE;
		if (rmtree_at(dir->fd, base) < 0)
			return sjx_fail_sys(c->err, errno, e->name, "removing the directory it replaces");
		sjx_resolve_forget(c); /* the cached directory may have been inside */
		return GONE;
	}
	if (was_whiteout)
		*was_whiteout = SJX_IS_WHITEOUT(&st);
	if (unlinkat(dir->fd, base, 0) < 0)
		return sjx_fail_sys(c->err, errno, e->name, "removing the entry it replaces");
	return GONE;
}

/* ---- directories ---- */

int sjx_record_dir(struct sjx_ctx *c, const char *path, size_t len, const struct stat *st,
		   struct sjx_dir *dir, uint32_t mode, uint32_t uid, uint32_t gid, int64_t mtime,
		   long nsec, const struct sjx_xattr *x, size_t nx, const char *entry)
{
	if (c->dirs_len == c->dirs_cap) {
		size_t cap = c->dirs_cap ? c->dirs_cap * 2 : 256;
		struct sjx_dirmeta *n = realloc(c->dirs, cap * sizeof *n);
		if (!n)
			return sjx_fail_sys(c->err, ENOMEM, entry, "directory list");
		c->dirs = n, c->dirs_cap = cap;
	}
	struct sjx_dirmeta *d = &c->dirs[c->dirs_len];
	memset(d, 0, sizeof *d);
	d->path = strndup(path, len);
	if (!d->path)
		return sjx_fail_sys(c->err, ENOMEM, entry, "directory list");
	if (nx) { /* rare: copy names and values into one block */
		size_t bytes = nx * sizeof *d->x;
		for (size_t i = 0; i < nx; i++)
			bytes += strlen(x[i].name) + 1 + x[i].len;
		d->x = malloc(bytes);
		if (!d->x) {
			free(d->path);
			return sjx_fail_sys(c->err, ENOMEM, entry, "directory list");
		}
		char *p = (char *)(d->x + nx);
		for (size_t i = 0; i < nx; i++) {
			size_t nl = strlen(x[i].name) + 1;
			d->x[i].name = memcpy(p, x[i].name, nl);
			p += nl;
			d->x[i].value = memcpy(p, x[i].value, x[i].len);
			d->x[i].len = x[i].len;
			p += x[i].len;
		}
		d->nx = nx;
	}
	d->seq = c->seq++;
	d->depth = len ? 1 : 0;
	for (size_t i = 0; i < len; i++)
		d->depth += path[i] == '/';
	d->dev = st->st_dev, d->ino = st->st_ino;
	if (dir && c->held_dirs < c->max_held_dirs) {
		d->dir = sjx_dir_ref(dir);
		c->held_dirs++;
	}
	d->mode = mode, d->uid = uid, d->gid = gid;
	d->mtime = mtime, d->nsec = nsec;
	c->dirs_len++;
	return 0;
}

static int join_path(char *out, size_t cap, const char *dir, const char *base)
{
	int n = *dir ? snprintf(out, cap, "%s/%s", dir, base) : snprintf(out, cap, "%s", base);
	return n < 0 || (size_t)n >= cap ? -1 : n;
}

static int apply_dir(struct sjx_ctx *c, const struct sjx_entry *e, struct sjx_dir *dir,
		     const char *base)
{
	char path[SJ_EXTRACT_ENTRY_MAX];
	struct stat st;
	uint64_t key = sjx_name_key(dir->id, base);
	int n = join_path(path, sizeof path, sjx_resolved_path(c), base);
	if (n < 0)
		return sjx_fail(c->err, ENAMETOOLONG, e->name, "name too long");

	int opaque = 0, r = GONE;
	if (sjx_names_has(c, key) && (r = make_room(c, e, dir, base, &opaque)) < 0)
		return -1;
	if (r == GONE && mkdirat(dir->fd, base, 0700) < 0)
		return sjx_fail_sys(c->err, errno, e->name, "mkdir");
	if (sjx_names_add(c, key) < 0)
		return sjx_fail_sys(c->err, ENOMEM, e->name, "name set");
	/* open: for the opaque marker, for its metadata at the end, and as the
	 * parent of the entries that follow (archives list a directory's
	 * contents right after it) */
	int fd = openat(dir->fd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return sjx_fail_sys(c->err, errno, e->name, "open directory");
	if (opaque && fsetxattr(fd, SJX_OPAQUE_XATTR, "y", 1, 0) < 0) {
		/* replaces our whiteout: the lower directory stays hidden */
		int err = errno;
		close(fd);
		return sjx_fail_sys(c->err, err, e->name, "setxattr " SJX_OPAQUE_XATTR);
	}
	struct sjx_dir *nd = sjx_dir_open(fd, &st, c->err, e->name);
	if (!nd)
		return -1;
	int rc = sjx_record_dir(c, path, (size_t)n, &st, nd, e->mode, e->uid, e->gid, e->mtime,
				e->mtime_nsec, e->xattrs, e->n_xattrs, e->name);
	if (!rc)
		sjx_resolve_prime(c, e->path, path, nd);
	sjx_dir_unref(nd);
	return rc;
}

static int cmp_dirs(const void *a, const void *b)
{
	const struct sjx_dirmeta *x = a, *y = b;
	if (x->depth != y->depth)
		return x->depth > y->depth ? -1 : 1; /* deepest first */
	return x->seq < y->seq ? -1 : x->seq > y->seq; /* then in archive order */
}

int sjx_finish_dirs(struct sjx_ctx *c)
{
	if (sjx_drain(c) < 0)
		return -1;
	if (c->dirs_len)
		qsort(c->dirs, c->dirs_len, sizeof *c->dirs, cmp_dirs);
	for (size_t i = 0; i < c->dirs_len; i++) {
		struct sjx_dirmeta *d = &c->dirs[i];
		struct meta m = {d->mode, d->uid, d->gid, d->mtime, d->nsec, d->x, d->nx};
		struct stat st;
		int fd;
		if (d->dir) {
			/* held since it was made: this very directory, or (replaced by
			 * a later entry) an unlinked one, where nothing shows */
			fd = d->dir->fd;
		} else {
			fd = *d->path ? sjx_openat2(c->root_fd, d->path,
						    O_RDONLY | O_DIRECTORY | O_NOFOLLOW,
						    RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
				      : dup(c->root_fd);
			if (fd < 0) {
				if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
					continue; /* replaced by a later entry */
				return sjx_fail_sys(c->err, errno, d->path, "open directory");
			}
			if (fstat(fd, &st) < 0 || st.st_ino != d->ino || st.st_dev != d->dev) {
				close(fd); /* not the directory we made */
				continue;
			}
		}
		int rc = 0;
		if (need_chown(c, &m) && fchown(fd, m.uid, m.gid) < 0)
			rc = sjx_fail_sys(c->err, errno, d->path, "chown");
		if (!rc)
			rc = set_xattrs(c, fd, -1, NULL, &m, d->path, c->err);
		if (!rc && fchmod(fd, m.mode) < 0)
			rc = sjx_fail_sys(c->err, errno, d->path, "chmod");
		if (!rc && m.mtime != INT64_MIN) {
			struct timespec ts[2];
			times_of(&m, ts);
			if (futimens(fd, ts) < 0)
				rc = sjx_fail_sys(c->err, errno, d->path, "set mtime");
		}
		if (d->dir) {
			sjx_dir_unref(d->dir);
			d->dir = NULL;
		} else {
			close(fd);
		}
		if (rc)
			return -1;
	}
	return 0;
}

/* ---- the other entry types ---- */

/* Before creating base in dir: a name this layer may already have made
 * is cleared (or, for a directory, merged). */
static int prepare_name(struct sjx_ctx *c, const struct sjx_entry *e, struct sjx_dir *dir,
			const char *base)
{
	uint64_t key = sjx_name_key(dir->id, base);
	if (sjx_names_has(c, key))
		return make_room(c, e, dir, base, NULL) < 0 ? -1 : 0;
	if (sjx_names_add(c, key) < 0)
		return sjx_fail_sys(c->err, ENOMEM, e->name, "name set");
	return 0;
}

static int apply_file(struct sjx_ctx *c, struct sjx_tar *t, const struct sjx_entry *e,
		      struct sjx_dir *dir, const char *base)
{
	const uint8_t *p;
	size_t n;
	int r;
	if (prepare_name(c, e, dir, base) < 0)
		return -1;

	if (c->pool && e->size <= sjx_pool_max_job_bytes()) {
		struct sjx_job *j = job_new(dir, base, e, (size_t)e->size);
		if (!j)
			return sjx_fail_sys(c->err, ENOMEM, e->name, "job");
		size_t got = 0;
		while ((r = sjx_tar_data(t, &p, &n, c->err)) == 1) {
			memcpy(j->data + got, p, n);
			got += n;
		}
		if (r < 0) {
			sjx_dir_unref(j->dir);
			free(j);
			return -1;
		}
		return sjx_pool_submit(c->pool, j) < 0 ? writer_failed(c) : 0;
	}

	/* on this thread, straight from the stream */
	struct meta m = {e->mode, e->uid, e->gid, e->mtime, e->mtime_nsec, e->xattrs, e->n_xattrs};
	int fd = create_file(dir->fd, base, e->mode);
	if (fd < 0)
		return sjx_fail_sys(c->err, errno, e->name, "create");
	int rc = 0;
	while (!rc && (r = sjx_tar_data(t, &p, &n, c->err)) == 1)
		if (write_all(fd, p, n) < 0)
			rc = sjx_fail_sys(c->err, errno, e->name, "write");
	if (!rc && r < 0)
		rc = -1;
	if (!rc)
		rc = finish_fd(c, fd, &m, e->name, c->err);
	if (close(fd) < 0 && !rc)
		rc = sjx_fail_sys(c->err, errno, e->name, "close");
	if (!rc) /* the writer threads add to it too */
		__atomic_add_fetch(&c->stats->file_bytes, e->size, __ATOMIC_RELAXED);
	return rc;
}

static int apply_symlink(struct sjx_ctx *c, const struct sjx_entry *e, struct sjx_dir *dir,
			 const char *base)
{
	if (prepare_name(c, e, dir, base) < 0)
		return -1;
	size_t len = strlen(e->link);
	struct sjx_job *j = job_new(dir, base, e, len);
	if (!j)
		return sjx_fail_sys(c->err, ENOMEM, e->name, "job");
	memcpy(j->data, e->link, len);
	j->size = 0; /* no content bytes to account for */
	if (c->pool)
		return sjx_pool_submit(c->pool, j) < 0 ? writer_failed(c) : 0;
	int rc = sjx_write_job(c, j, c->err);
	sjx_dir_unref(j->dir);
	free(j);
	return rc;
}

static int apply_hardlink(struct sjx_ctx *c, const struct sjx_entry *e, struct sjx_dir *dir,
			  const char *base)
{
	struct sjx_dir *tdir;
	const char *tbase;
	struct stat st;
	if (sjx_drain(c) < 0) /* the target may still be queued */
		return -1;
	if (sjx_lookup_parent(c, e->name, e->link, &tdir, &tbase) < 0) {
		if (c->err->err == ENOENT) { /* say it of the whole target, not a component */
			c->err->msg[0] = 0;
			return sjx_fail(c->err, ENOENT, e->name,
					"hardlink target \"%s\" is not in this layer", e->link);
		}
		return -1;
	}
	int rc = -1;
	if (!*tbase) {
		sjx_fail(c->err, EPERM, e->name, "hardlink to the layer root");
	} else if (fstatat(tdir->fd, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			sjx_fail(c->err, ENOENT, e->name, "hardlink target \"%s\" is not in this layer",
				 e->link);
		else
			sjx_fail_sys(c->err, errno, e->name, "hardlink target");
	} else if (S_ISDIR(st.st_mode)) {
		sjx_fail(c->err, EPERM, e->name, "hardlink to a directory (\"%s\")", e->link);
	} else if (tdir->id == dir->id && !strcmp(tbase, base)) {
		rc = 0; /* a link to itself */
	} else if (prepare_name(c, e, dir, base) == 0) {
		/* flags 0: a link to a symlink links the symlink, never its target */
		if (linkat(tdir->fd, tbase, dir->fd, base, 0) < 0)
			sjx_fail_sys(c->err, errno, e->name, "link");
		else
			rc = 0;
	}
	sjx_dir_unref(tdir);
	return rc;
}

static int apply_node(struct sjx_ctx *c, const struct sjx_entry *e, struct sjx_dir *dir,
		      const char *base)
{
	mode_t type = e->type == '3' ? S_IFCHR : e->type == '4' ? S_IFBLK : S_IFIFO;
	struct meta m = {e->mode, e->uid, e->gid, e->mtime, e->mtime_nsec, e->xattrs, e->n_xattrs};
	if (prepare_name(c, e, dir, base) < 0)
		return -1;
	if (mknodat(dir->fd, base, type | (e->mode & 0777), makedev(e->devmajor, e->devminor)) < 0)
		return sjx_fail_sys(c->err, errno, e->name, "mknod");
	return finish_at(c, dir->fd, base, &m, 0, e->name, c->err);
}

static int apply_whiteout(struct sjx_ctx *c, const struct sjx_entry *e, struct sjx_dir *dir,
			  const char *victim)
{
	struct stat st;
	uint64_t key = sjx_name_key(dir->id, victim);
	if (!*victim || !strcmp(victim, ".") || !strcmp(victim, ".."))
		return sjx_fail(c->err, EBADMSG, e->name, "invalid whiteout name");
	if (sjx_names_has(c, key)) {
		if (sjx_drain(c) < 0)
			return -1;
		if (fstatat(dir->fd, victim, &st, AT_SYMLINK_NOFOLLOW) == 0)
			return 0; /* this layer's own entry: a whiteout only hides lower layers */
	}
	if (mknodat(dir->fd, victim, S_IFCHR, makedev(0, 0)) < 0) {
		if (errno == EEXIST)
			return 0;
		return sjx_fail_sys(c->err, errno, e->name, "mknod (whiteout)");
	}
	if (sjx_names_add(c, key) < 0)
		return sjx_fail_sys(c->err, ENOMEM, e->name, "name set");
	c->stats->whiteouts++;
	return 0;
}

static int apply_opaque(struct sjx_ctx *c, const struct sjx_entry *e)
{
	struct sjx_dir *dir;
	char parent[SJ_EXTRACT_ENTRY_MAX];
	const char *slash = strrchr(e->path, '/');
	size_t len = slash ? (size_t)(slash - e->path) : 0;
	memcpy(parent, e->path, len);
	parent[len] = 0;
	if (sjx_resolve_dir(c, e->name, parent, &dir) < 0)
		return -1;
	int rc = 0;
	if (fsetxattr(dir->fd, SJX_OPAQUE_XATTR, "y", 1, 0) < 0)
		rc = sjx_fail_sys(c->err, errno, e->name, "marking the directory opaque (setxattr " SJX_OPAQUE_XATTR ")");
	else
		c->stats->opaques++;
	sjx_dir_unref(dir);
	return rc;
}

/* AUFS bookkeeping (".wh..wh.plnk/...", ".wh..wh.aufs") has no meaning here. */
static int aufs_meta(const char *path)
{
	for (const char *p = path; p; p = strchr(p, '/')) {
		if (*p == '/')
			p++;
		if (!strncmp(p, WH_META, sizeof WH_META - 1) &&
		    strncmp(p, WH_OPAQUE, sizeof WH_OPAQUE - 1))
			return 1;
	}
	return 0;
}

int sjx_apply(struct sjx_ctx *c, struct sjx_tar *t, const struct sjx_entry *e)
{
	struct sjx_dir *dir;
	const char *base;
	struct stat st;

	if (!*e->path) { /* "." or "./": the layer root itself */
		if (e->type != '5')
			return sjx_fail(c->err, EBADMSG, e->name, "the layer root must be a directory");
		if (fstat(c->root_fd, &st) < 0)
			return sjx_fail_sys(c->err, errno, e->name, "fstat");
		return sjx_record_dir(c, "", 0, &st, NULL, e->mode, e->uid, e->gid, e->mtime,
				      e->mtime_nsec, e->xattrs, e->n_xattrs, e->name);
	}
	if (aufs_meta(e->path))
		return 0;
	const char *slash = strrchr(e->path, '/');
	const char *last = slash ? slash + 1 : e->path;
	if (!strcmp(last, WH_OPAQUE))
		return apply_opaque(c, e);

	if (sjx_resolve_parent(c, e->name, e->path, &dir, &base) < 0)
		return -1;
	int rc;
	if (!strncmp(base, WH_PREFIX, sizeof WH_PREFIX - 1))
		rc = apply_whiteout(c, e, dir, base + sizeof WH_PREFIX - 1);
	else
		switch (e->type) {
		case '5':
			rc = apply_dir(c, e, dir, base);
			break;
		case '0':
			rc = apply_file(c, t, e, dir, base);
			break;
		case '2':
			rc = apply_symlink(c, e, dir, base);
			break;
		case '1':
			rc = apply_hardlink(c, e, dir, base);
			break;
		default:
			rc = apply_node(c, e, dir, base);
			break;
		}
	sjx_dir_unref(dir);
	return rc;
}
