/* The launch plan: the flat, already-resolved description of a container's
 * init that Python compiles from config.json, and the C entry points that
 * turn it into a process.  Nothing here parses JSON or decides policy:
 * every string is final, every flag already parsed.
 *
 * The caller and the init talk over a sync socket: sync.h.
 *
 * execve: the init (a copy of the caller's process until then) never execs
 * the container's program itself: it execs the exec trampoline (csrc/
 * sangja-exec/), a tiny static program sj_spawn puts in a sealed memfd,
 * which execs the program.  So /proc/self/exe is never the caller's binary
 * (the host's Python) when the kernel resolves the program's interpreter:
 * "#!/proc/self/exe" in the container runs the sealed trampoline, not the
 * host's interpreter (CVE-2019-5736).  Hooks the init runs go the same way.
 *
 * The exec fifo (create): once released (`start` opened its read side) the
 * init runs the startContainer hooks, then writes one byte "0" and goes on
 * to execve; if a hook failed it writes "1" followed by the error text
 * instead (one write, shorter than PIPE_BUF) and exits.
 */
#ifndef SANGJA_LAUNCH_H
#define SANGJA_LAUNCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SJ_ERRMSG_MAX 512

/* An error carried from C to Python: errno and text naming the step. */
struct sj_error {
  int err;
  char msg[SJ_ERRMSG_MAX];
};

/* A namespace joined by path (setns). */
struct sj_nsjoin {
  int nstype; /* CLONE_NEWNET, CLONE_NEWUSER, ... */
  const char *path;
};

enum sj_mount_kind {
  SJ_MOUNT_FS = 1,      /* mount(source, target, fstype, flags, data) */
  SJ_MOUNT_BIND = 2,    /* mount(source, MS_BIND), or move_mount of tree_fd */
  SJ_MOUNT_SYMLINK = 3, /* symlink(source, target): source is the link text */
  SJ_MOUNT_MKDIR = 4,   /* mkdir -p target (mode in data_mode) */
  SJ_MOUNT_REMOUNT = 5, /* change the mount already at target: attr_set/attr_clr
                           (attr_recursive) and propagation; nothing is created */
};

struct sj_mount {
  int kind;
  const char *source;        /* host path (BIND), fs source (FS), link text (SYMLINK) */
  const char *target;        /* absolute path inside the container rootfs */
  const char *fstype;        /* FS only */
  unsigned long flags;       /* MS_RDONLY|MS_NOSUID|... for FS; ignored for BIND */
  const char *data;          /* fs data options for FS ("mode=755,size=65536k"), or NULL */
  uint64_t attr_set;         /* MOUNT_ATTR_* to set (BIND, and FS after mounting) */
  uint64_t attr_clr;         /* MOUNT_ATTR_* to clear */
  int attr_recursive;        /* apply attrs with AT_RECURSIVE (the r* options) */
  int recursive;             /* rbind */
  unsigned long propagation; /* MS_SHARED|MS_SLAVE|MS_PRIVATE|MS_UNBINDABLE [|MS_REC], or 0 */
  int target_is_dir;         /* create a missing target as a directory (else a file) */
  unsigned int data_mode;    /* MKDIR: permission bits of the created dirs (0: 0755) */
  int copy_up;               /* FS tmpfs: copy what the covered directory held (tmpcopyup) */
  int inherit_mode;          /* FS tmpfs without mode=: the covered directory's mode goes
                                first in data, as runc gives it (a data mode= still wins) */
  int tree_fd;               /* BIND: a detached mount (open_tree) the runtime made of the
                                source in its own namespaces (a user namespace cannot reach
                                every source; idmapped mounts), moved into place; -1: none */
};

struct sj_device {
  const char *path; /* absolute inside the container */
  int type;         /* 'c', 'b', 'p' */
  unsigned int major, minor;
  unsigned int mode; /* permission bits */
  uid_t uid;
  gid_t gid;
  int bind_from_host; /* bind-mount the host node of the same path instead of mknod
                         (nosuid,noexec) */
};

struct sj_rlimit {
  int resource;
  uint64_t soft, hard;
};

struct sj_sysctl {
  const char *path; /* relative to /proc/sys, already '.' -> '/' */
  const char *value;
};

/* An OCI hook.  argv NULL or empty: {path}; envp NULL: the runtime's own
 * environment (the hook has no `env`), as runc and crun run hooks. */
struct sj_hook {
  const char *path;
  const char *const *argv; /* NULL-terminated */
  const char *const *envp; /* NULL-terminated */
  int timeout;             /* seconds; 0: none */
};

struct sj_plan {
  /* namespaces */
  int clone_flags; /* CLONE_NEW* to create (CLONE_NEWTIME included) */
  const struct sj_nsjoin *joins;
  size_t njoins;
  const char *timens_offsets; /* text for /proc/self/timens_offsets, or NULL */

  /* rootfs.  Without a mount namespace (none created or joined) the mounts are
   * made in the runtime's own, below a bind of the rootfs onto itself (which
   * the caller detaches at delete), and the init chroots into it. */
  const char *rootfs; /* absolute host path */
  int no_pivot;       /* MS_MOVE + chroot instead of pivot_root */
  int root_readonly;
  unsigned long root_propagation;   /* applied to / first (default MS_SLAVE|MS_REC) */
  unsigned long rootfs_propagation; /* config rootfsPropagation after setup, or 0 */
  const struct sj_mount *mounts;
  size_t nmounts;
  const struct sj_device *devices;
  size_t ndevices;
  const char *const *masked_paths;
  size_t nmasked;
  const char *const *readonly_paths;
  size_t nreadonly;

  /* identity and environment of the init */
  const char *hostname;   /* NULL: leave */
  const char *domainname; /* NULL: leave */
  const struct sj_sysctl *sysctls;
  size_t nsysctls;
  int has_oom_score_adj;
  int oom_score_adj;
  long personality; /* -1: leave */
  const struct sj_rlimit *rlimits;
  size_t nrlimits;
  uid_t uid;
  gid_t gid;
  const gid_t *additional_gids;
  size_t ngids;
  int umask; /* -1: leave */
  uint64_t cap_bounding, cap_effective, cap_permitted, cap_inheritable, cap_ambient;
  int no_new_privs;

  /* what runs */
  const char *cwd;
  const char *const *argv; /* NULL-terminated */
  const char *const *envp; /* NULL-terminated */
  const char *path_env;    /* PATH used to look argv[0] up, or NULL */

  /* fds: all of them must stay open in the parent until sj_spawn returns */
  int preserve_fds; /* keep 3 .. 3+preserve_fds-1 across execve */
  int exec_fifo_fd; /* O_PATH fd of the exec fifo; -1: exec at once after READY */
  int console_fd;   /* connected console socket, -1: no terminal */
  int stdio_fds[3]; /* put on 0, 1, 2 in the child only (the caller's stay); -1: inherit */
  unsigned int console_rows, console_cols;
  int setsid;    /* new session (the init: yes) */
  int hook_sync; /* stop before pivot_root with SJ_MSG_HOOKS */
  int log_fd;    /* where the child writes a late error (after READY), -1: stderr;
                    a failed execve of the program itself is the trampoline's to
                    report, on stderr (exec: over the sync socket) */

  /* cgroups.  v1: the init joins each hierarchy itself, first thing after GO,
   * by writing "0" to every file in cgroup_join (its `tasks` files): a thread
   * moving itself skips the global cgroup_threadgroup_rwsem, whose write side
   * costs an RCU grace period (~20 ms here) when the parent writes a pid to
   * cgroup.procs.  v2: cgroup_fd >= 0 clones the init straight into that
   * cgroup (CLONE_INTO_CGROUP). */
  const char *const *cgroup_join;
  size_t ncgroup_join;
  int cgroup_fd;
  const char *session_keyring; /* join a new session keyring of this name, or NULL */

  /* Hooks the init runs itself (fork + execve, the state JSON on stdin, the
   * hook's timeout): createContainer once the mounts are done (after
   * SJ_MSG_HOOKS, when the parent ran prestart and createRuntime), before
   * pivot_root, in the container's namespaces with the runtime's filesystem
   * still visible; startContainer when `start` has released the exec fifo,
   * just before execve: in the container, as the process's user.  Their
   * state is {"pid":<getpid()>,"status":"creating"|"created",<hook_state>}:
   * the pid as the container sees it, as the spec says for hooks that run in
   * the container namespace. */
  const struct sj_hook *create_container_hooks;
  size_t ncreate_container_hooks;
  const struct sj_hook *start_container_hooks;
  size_t nstart_container_hooks;
  const char *hook_state; /* the state's other members: `"ociVersion":"1.2.0","id":"x",...` */

  /* LSM labels for the process, written to attr/.../exec (they take effect
   * at execve) through a procfs of the init's own (see process.c), never
   * through the container's /proc; or NULL. */
  const char *apparmor_profile;
  const char *selinux_label;

  /* exec: a process joins a running (or created) container instead of
   * creating one.  exec_pidfd is a pidfd of the container's init, -1 for
   * create.  An intermediate process first joins the container's cgroups by
   * writing "0" to every cgroup_join file (while it still sees the host's
   * cgroupfs: v1 `tasks`, v2 `cgroup.procs`), then every namespace of the
   * init in exec_nstypes with one setns(exec_pidfd) (the user namespace
   * first, by the kernel), then clones the process as a child of the caller
   * (CLONE_PARENT; it lands in the container's pid namespace).  The process
   * then goes through the init's process steps only: session, console,
   * HOME, rlimits, cwd, no_new_privs, user and groups, capabilities, LSM
   * labels, PATH lookup, fd closing, execve; none of the rootfs, hostname,
   * sysctl, hook or exec fifo steps.  clone_flags and joins must be empty. */
  int exec_pidfd;
  int exec_nstypes; /* CLONE_NEW* of the init to join (never our own user ns) */
  int exec_root_fd; /* exec into a container without a mount namespace: an O_PATH fd
                       of the init's root (/proc/PID/root) to chroot into; -1: none */

  /* seccomp: a finished BPF program (struct sock_filter[], seccomp_len
   * bytes, built by the caller), loaded with seccomp(SECCOMP_SET_MODE_FILTER,
   * seccomp_flags) by the init and by every exec'd process, as the last step
   * before READY: every check the runtime makes (cwd, the executable, the
   * exec fifo) is done before, so none of them depends on the profile.
   * Without no_new_privs loading needs CAP_SYS_ADMIN: the process keeps it
   * (permitted and effective) through the switch to its user until the
   * filter is loaded, then drops it (one capset, under the filter).
   * SECCOMP_FILTER_FLAG_NEW_LISTENER in the flags: the listener goes to the
   * parent (SJ_MSG_SECCOMP).  NULL: no filter. */
  const unsigned char *seccomp_bpf;
  size_t seccomp_len;
  unsigned int seccomp_flags;
};

struct sj_spawned {
  pid_t pid;   /* the init, a child of the caller */
  int pidfd;   /* CLOEXEC */
  int sync_fd; /* parent end of the sync socket, CLOEXEC */
};

/* Create the init.  On success the init is blocked before any setup,
 * waiting for SJ_MSG_GO on sync_fd.  Returns 0, or -1 with err filled. */
int sj_spawn(const struct sj_plan *plan, struct sj_spawned *out, struct sj_error *err);

/* Run one hook to completion: the concatenated `state` parts on its stdin,
 * its stdout and stderr collected (the last line goes into the error), and
 * after hook->timeout seconds it is killed with its process group.  Returns
 * 0 if it exited 0, else -1 + err: "hook PATH: exit status N: <last line>",
 * "hook PATH: killed by signal N", "hook PATH: timed out after Ns",
 * "hook PATH: <why execve failed>". */
int sj_run_hook(const struct sj_hook *hook, const char *const *state, size_t nstate,
                struct sj_error *err);

/* Caller side, before sj_spawn, in the runtime's own namespaces and with its
 * credentials (csrc/launch/mount_trees.c):
 *
 * A detached copy of the mount at `source` (open_tree; with its submounts if
 * `recursive`), a slave of the source's peer group as a bind made after the
 * init's rslave of / would be, idmapped through the user namespace
 * `userns_fd` when it is >= 0 (all the submounts too if `idmap_recursive`).
 * Returns the fd (CLOEXEC; the init inherits it: sj_mount.tree_fd), or -1. */
int sj_source_tree(const char *source, int recursive, int userns_fd, int idmap_recursive,
                   struct sj_error *err);

/* A user namespace whose uid_map and gid_map are the given texts ("ID ID
 * SIZE" lines): an fd of it (CLOEXEC), for MOUNT_ATTR_IDMAP, or -1. */
int sj_userns_fd(const char *uid_map, const char *gid_map, struct sj_error *err);

#endif
