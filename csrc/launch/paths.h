/* Paths confined to the container's root (paths.c). */
#ifndef SANGJA_PATHS_H
#define SANGJA_PATHS_H

#include <stddef.h>
#include <sys/types.h>

#pragma GCC visibility push(hidden)

/* Open path (absolute or relative, resolved as if rootfd were "/") with
 * openat2 RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS.  Returns fd or -1 + errno. */
int sj_open_in_root(int rootfd, const char *path, int flags);

/* mkdir -p of path inside root; every component created with mkdirat on
 * an fd that was itself resolved inside the root.  Returns an O_PATH fd of
 * the directory, or -1 + errno. */
int sj_mkdir_in_root(int rootfd, const char *path, mode_t mode);

/* Resolve path inside root, creating it if missing: the parents as
 * directories, the last component as a directory (is_dir) or an empty file.
 * Returns an O_PATH fd of the existing or created object, or -1 + errno. */
int sj_create_in_root(int rootfd, const char *path, int is_dir);

/* Split path into its parent directory (opened with sj_mkdir_in_root, so
 * created if missing) and the last component copied into name.  Returns
 * the parent O_PATH fd or -1 + errno (EINVAL for "/" or a too long name). */
int sj_parent_in_root(int rootfd, const char *path, char *name, size_t namesize);

#pragma GCC visibility pop

#endif
