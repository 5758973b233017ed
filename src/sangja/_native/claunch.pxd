# Declarations of csrc/launch/ for the launch binding: the plan and its entry points
# (launch.h), the sync protocol (sync.h), errno texts (error.h).
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from posix.types cimport gid_t, pid_t, uid_t


cdef extern from "launch/launch.h" nogil:
    enum: SJ_ERRMSG_MAX

    struct sj_error:
        int err
        char msg[SJ_ERRMSG_MAX]

    struct sj_nsjoin:
        int nstype
        const char *path

    struct sj_mount:
        int kind
        const char *source
        const char *target
        const char *fstype
        unsigned long flags
        const char *data
        uint64_t attr_set
        uint64_t attr_clr
        int attr_recursive
        int recursive
        unsigned long propagation
        int target_is_dir
        unsigned int data_mode
        int copy_up
        int inherit_mode
        int tree_fd

    struct sj_device:
        const char *path
        int type
        unsigned int major, minor
        unsigned int mode
        uid_t uid
        gid_t gid
        int bind_from_host

    struct sj_rlimit:
        int resource
        uint64_t soft, hard

    struct sj_sysctl:
        const char *path
        const char *value

    struct sj_hook:
        const char *path
        const char *const *argv
        const char *const *envp
        int timeout

    struct sj_plan:
        int clone_flags
        const sj_nsjoin *joins
        size_t njoins
        const char *timens_offsets
        const char *rootfs
        int no_pivot
        int root_readonly
        unsigned long root_propagation
        unsigned long rootfs_propagation
        const sj_mount *mounts
        size_t nmounts
        const sj_device *devices
        size_t ndevices
        const char *const *masked_paths
        size_t nmasked
        const char *const *readonly_paths
        size_t nreadonly
        const char *hostname
        const char *domainname
        const sj_sysctl *sysctls
        size_t nsysctls
        int has_oom_score_adj
        int oom_score_adj
        long personality
        const sj_rlimit *rlimits
        size_t nrlimits
        uid_t uid
        gid_t gid
        const gid_t *additional_gids
        size_t ngids
        int umask
        uint64_t cap_bounding, cap_effective, cap_permitted, cap_inheritable, cap_ambient
        int no_new_privs
        const char *cwd
        const char *const *argv
        const char *const *envp
        const char *path_env
        int preserve_fds
        int exec_fifo_fd
        int console_fd
        int stdio_fds[3]
        unsigned int console_rows, console_cols
        int setsid
        int hook_sync
        int log_fd
        const char *const *cgroup_join
        size_t ncgroup_join
        int cgroup_fd
        const char *session_keyring
        const sj_hook *create_container_hooks
        size_t ncreate_container_hooks
        const sj_hook *start_container_hooks
        size_t nstart_container_hooks
        const char *hook_state
        const char *apparmor_profile
        const char *selinux_label
        int exec_pidfd
        int exec_nstypes
        int exec_root_fd
        const unsigned char *seccomp_bpf
        size_t seccomp_len
        unsigned int seccomp_flags

    struct sj_spawned:
        pid_t pid
        int pidfd
        int sync_fd

    int sj_spawn(const sj_plan *plan, sj_spawned *out, sj_error *err)
    int sj_run_hook(const sj_hook *hook, const char *const *state, size_t nstate, sj_error *err)
    int sj_source_tree(const char *source, int recursive, int userns_fd, int idmap_recursive,
                       sj_error *err)
    int sj_userns_fd(const char *uid_map, const char *gid_map, sj_error *err)


cdef extern from "launch/sync.h" nogil:
    enum:
        SJ_MSG_GO
        SJ_MSG_HOOKS
        SJ_MSG_READY
        SJ_MSG_ERROR
        SJ_MSG_PID
        SJ_MSG_CLOSED
        SJ_MSG_SECCOMP

    struct sj_msg:
        uint32_t type
        int32_t err
        int64_t value
        char text[SJ_ERRMSG_MAX]

    int sj_sync_send(int fd, uint32_t type, sj_error *err)
    int sj_sync_recv(int fd, sj_msg *msg, sj_error *err)


cdef extern from "launch/error.h" nogil:
    const char *sj_errno_text(int errnum, char *buf, size_t size)


cdef extern from "launch/planfile.h" nogil:
    int sj_plan_pack(const sj_plan *plan, unsigned char **out, size_t *len, sj_error *err)
    int sj_plan_unpack(unsigned char *block, size_t len, sj_plan **plan, sj_error *err)
