/* A container's state directory under --root, the one implementation the Python runtime
 * (sangja._native.state) and the C front end (csrc/front/) share: the directory made and
 * locked (flock), state.json read and parsed (yajl), the status decided from the process
 * itself (its /proc start time, a pidfd), the init signalled, the directory removed.
 *
 * Functions return 0 (or an fd) on success, -errno on failure; none prints. */
#ifndef SJ_STATE_H
#define SJ_STATE_H

#include <stddef.h>
#include <sys/types.h>
#include <yajl/yajl_tree.h>

#define SJ_STATE_FILE "state.json"
#define SJ_STATE_FIFO "exec.fifo"

/* What the status rule reads of a record: -1 where state.json has null or nothing (the
 * Python runtime's None, which a process that is gone also gives). */
struct sj_record {
  long long pid;       /* the init's pid; 0 before it exists */
  long long pid_start; /* its start time in clock ticks, field 22 of /proc/PID/stat */
  int creating;        /* a "creator" [pid, start] is recorded: create has not finished */
  long long creator_pid, creator_start;
  int freezer;        /* 0: none, 1: v1's freezer.state, 2: cgroup v2's cgroup.freeze */
  const char *frozen; /* that cgroup's directory (points into the parsed tree) */
};

/* A valid container id: [A-Za-z0-9_+.-]+, neither "." nor "..". */
int sj_state_valid_id(const char *id);

/* The start time of `pid` in clock ticks, or -1 if it has none (gone, a zombie). */
long long sj_proc_start_time(long long pid);

/* A small file's text, at most size - 1 bytes, NUL-terminated (open `flags` added to
 * O_RDONLY | O_CLOEXEC). -> its length (0: empty), -1: unreadable. */
ssize_t sj_read_short(const char *path, int flags, char *buf, size_t size);

/* Make root (0711) and root/id (0711, EEXIST if the id is taken), open it and lock it
 * exclusively. -> the directory's fd (O_CLOEXEC). */
int sj_state_make(const char *root, const char *id);

/* Open root/id and lock it (shared or exclusive). -> its fd, -ENOENT if there is no such
 * directory. *has_state says whether state.json is there once the lock is held (removed
 * while we waited, or a create killed before its first write, when not). */
int sj_state_open(const char *root, const char *id, int shared, int *has_state);

/* Read state.json of the directory at `dirfd` and parse it: a JSON object, else NULL with
 * the reason in `why` (yajl's text, or the errno's) and -errno/-EINVAL in *err. The tree
 * is the caller's (yajl_tree_free). */
yajl_val sj_state_read(int dirfd, char *why, size_t why_size, int *err);

/* Parse a record given as JSON text (a record some caller holds already): as
 * sj_state_read, from memory. */
yajl_val sj_state_parse(const char *text, char *why, size_t why_size);

/* The parts of a parsed state.json the status rule reads: -EINVAL when one has the wrong
 * type (a record damaged by hand). */
int sj_record_from_tree(yajl_val tree, struct sj_record *rec);

/* created | creating | running | paused | stopped: from the processes, never a bare pid.
 * `dirfd` is the state dir, where the exec fifo is looked for (-1: none is). */
const char *sj_state_status(const struct sj_record *rec, int dirfd);

/* A pidfd (O_CLOEXEC) for `pid` if it is still the process that started at `start`,
 * else -ESRCH (pid reuse safe). */
int sj_state_pidfd(long long pid, long long start);

/* Send `sig` to the init `pid` if it is still the process that started at `start`, through
 * a pidfd: 0, -ESRCH if it is gone (nothing was sent), or pidfd_send_signal's -errno. */
int sj_state_signal(long long pid, long long start, int sig);

/* Wait up to `timeout_ms` for the process of `pidfd` to exit: 1 if it did, 0 if not. */
int sj_state_wait_pidfd(int pidfd, int timeout_ms);

/* Remove everything in the directory at `dirfd`, then root/id itself (the caller holds
 * its lock; closing `dirfd` is the caller's). */
int sj_state_remove(int dirfd, const char *root, const char *id);

/* Helpers on yajl trees (NULL when absent or of another type). */
yajl_val sj_json_get(yajl_val obj, const char *key);
const char *sj_json_str(yajl_val obj, const char *key);

#endif
