/* A container's cgroupfs directories as state.json records them ({"paths": {name: dir},
 * "unified": bool}), for the front end's `kill --all KILL` and `delete`: what
 * runtime/cgroups/manager.py does for those two, in C. */
#ifndef SJ_FRONT_CGROUPS_H
#define SJ_FRONT_CGROUPS_H

#include <stddef.h>
#include <yajl/yajl_tree.h>

#define SJ_CG_MAX 32

struct sj_cgroups {
  const char *name[SJ_CG_MAX]; /* the v1 mount's name, "" for the unified hierarchy */
  const char *path[SJ_CG_MAX];
  int n;
  int unified;
};

/* The record's cgroups: -1 when they are not the cgroupfs drivers' (systemd's) or the
 * record is not what this front end reads (then Python handles the verb). */
int sj_cgroups_from_record(yajl_val cgroups, struct sj_cgroups *cg);

/* SIGKILL to everything in the container's cgroup through cgroup.kill: 0, or -errno when
 * there is none (nothing was sent). */
int sj_cgroups_kill(const struct sj_cgroups *cg);

/* Thaw a frozen cgroup (a frozen process cannot die): v1's freezer.state, else
 * cgroup.freeze; not waited for (the caller waits for what it killed to exit). */
void sj_cgroups_thaw(const struct sj_cgroups *cg);

/* The directory whose cgroup.procs lists the container's processes. */
const char *sj_cgroups_procs_dir(const struct sj_cgroups *cg);

/* Every process in that cgroup and those below it (malloc'd into *pids); 0 or -errno. */
int sj_cgroups_pids(const struct sj_cgroups *cg, long **pids, size_t *n);

/* `sig` to every process in the container's cgroup (manager.Manager.signal_all): SIGKILL
 * through cgroup.kill where there is one; otherwise the cgroup frozen while its processes
 * are listed and signalled (when it has a freezer and was not frozen), then thawed.
 * 0; 1 if the processes could not be listed (none was signalled); or the -errno of the
 * first process that could not be signalled (the rest are not). */
int sj_cgroups_signal_all(const struct sj_cgroups *cg, int sig);

/* Remove every directory (and those below), killing what is still inside; 0, or -errno
 * with the directory that could not go in `failed`. */
int sj_cgroups_destroy(const struct sj_cgroups *cg, const char **failed);

#endif
