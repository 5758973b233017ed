# cython: language_level=3
"""The binding to csrc/launch/: a LaunchPlan (sangja.runtime.plan) in, a waiting init out.

Conversion only: every decision was taken in Python when the plan was compiled.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.errno cimport errno
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from sangja._native.claunch cimport *

from sangja.errors import LaunchError

MSG_GO = SJ_MSG_GO
MSG_HOOKS = SJ_MSG_HOOKS
MSG_READY = SJ_MSG_READY
MSG_ERROR = SJ_MSG_ERROR
MSG_CLOSED = SJ_MSG_CLOSED
MSG_SECCOMP = SJ_MSG_SECCOMP


cdef class _Arena:
    """Owns the C arrays and keeps the bytes they point into alive."""

    cdef list keep
    cdef list blocks

    def __cinit__(self):
        self.keep = []
        self.blocks = []

    cdef void *alloc(self, size_t n) except NULL:
        cdef void *p = PyMem_Malloc(n if n else 1)
        if p == NULL:
            raise MemoryError()
        memset(p, 0, n if n else 1)
        self.blocks.append(<size_t>p)
        return p

    cdef const char *s(self, obj) except? NULL:
        if obj is None:
            return NULL
        if isinstance(obj, str):
            # surrogateescape: what the OS gave us as bytes (argv, paths) goes back as is
            obj = (<str>obj).encode("utf-8", "surrogateescape")
        if b"\0" in obj:  # C would stop there (config strings are checked before)
            raise ValueError(f"a string with NUL cannot reach C: {obj[:60]!r}")
        self.keep.append(obj)
        return <const char *>(<bytes>obj)

    cdef const char *blob(self, bytes obj) except NULL:
        """Binary data (a BPF program): kept alive as is."""
        self.keep.append(obj)
        return <const char *>obj

    cdef const char **strv(self, seq) except NULL:
        cdef Py_ssize_t n = len(seq), i
        cdef const char **v = <const char **>self.alloc((n + 1) * sizeof(char *))
        for i in range(n):
            v[i] = self.s(seq[i])
        v[n] = NULL
        return v

    def __dealloc__(self):
        for p in self.blocks:
            PyMem_Free(<void *><size_t>p)


cdef const sj_hook *_hooks(_Arena a, hooks) except NULL:
    """[(path, args, env, timeout)] -> a C array (argv/envp NULL-terminated; env None:
    envp NULL, the runtime's environment)."""
    cdef sj_hook *v = <sj_hook *>a.alloc(len(hooks) * sizeof(sj_hook))
    cdef Py_ssize_t i
    for i, (path, args, env, timeout) in enumerate(hooks):
        v[i].path = a.s(path)
        v[i].argv = a.strv(args)
        v[i].envp = NULL if env is None else a.strv(env)
        v[i].timeout = timeout
    return v


cdef _fill(_Arena a, sj_plan *p, plan):
    cdef Py_ssize_t i
    cdef sj_nsjoin *joins
    cdef sj_mount *mounts
    cdef sj_device *devs
    cdef sj_rlimit *rls
    cdef sj_sysctl *sysctls
    cdef gid_t *gids

    p.clone_flags = plan.clone_flags
    p.njoins = len(plan.joins)
    joins = <sj_nsjoin *>a.alloc(p.njoins * sizeof(sj_nsjoin))
    for i, (nstype, path) in enumerate(plan.joins):
        joins[i].nstype = nstype
        joins[i].path = a.s(path)
    p.joins = joins
    p.timens_offsets = a.s(plan.timens_offsets)

    p.rootfs = a.s(plan.rootfs)
    p.no_pivot = plan.no_pivot
    p.root_readonly = plan.root_readonly
    p.root_propagation = plan.root_propagation
    p.rootfs_propagation = plan.rootfs_propagation

    p.nmounts = len(plan.mounts)
    mounts = <sj_mount *>a.alloc(p.nmounts * sizeof(sj_mount))
    for i, m in enumerate(plan.mounts):
        mounts[i].kind = m.kind
        mounts[i].source = a.s(m.source)
        mounts[i].target = a.s(m.target)
        mounts[i].fstype = a.s(m.fstype)
        mounts[i].flags = m.flags
        mounts[i].data = a.s(m.data)
        mounts[i].attr_set = m.attr_set
        mounts[i].attr_clr = m.attr_clr
        mounts[i].attr_recursive = m.attr_recursive
        mounts[i].recursive = m.recursive
        mounts[i].propagation = m.propagation
        mounts[i].target_is_dir = m.target_is_dir
        mounts[i].data_mode = m.data_mode
        mounts[i].copy_up = m.copy_up
        mounts[i].inherit_mode = m.inherit_mode
        mounts[i].tree_fd = m.tree_fd
    p.mounts = mounts

    p.ndevices = len(plan.devices)
    devs = <sj_device *>a.alloc(p.ndevices * sizeof(sj_device))
    for i, d in enumerate(plan.devices):
        devs[i].path = a.s(d.path)
        devs[i].type = ord(d.type)
        devs[i].major = d.major
        devs[i].minor = d.minor
        devs[i].mode = d.mode
        devs[i].uid = d.uid
        devs[i].gid = d.gid
        devs[i].bind_from_host = d.bind_from_host
    p.devices = devs

    p.nmasked = len(plan.masked_paths)
    p.masked_paths = a.strv(plan.masked_paths)
    p.nreadonly = len(plan.readonly_paths)
    p.readonly_paths = a.strv(plan.readonly_paths)

    p.hostname = a.s(plan.hostname)
    p.domainname = a.s(plan.domainname)
    p.nsysctls = len(plan.sysctls)
    sysctls = <sj_sysctl *>a.alloc(p.nsysctls * sizeof(sj_sysctl))
    for i, (path, value) in enumerate(plan.sysctls):
        sysctls[i].path = a.s(path)
        sysctls[i].value = a.s(value)
    p.sysctls = sysctls
    if plan.oom_score_adj is not None:
        p.has_oom_score_adj = 1
        p.oom_score_adj = plan.oom_score_adj
    p.personality = plan.personality
    p.nrlimits = len(plan.rlimits)
    rls = <sj_rlimit *>a.alloc(p.nrlimits * sizeof(sj_rlimit))
    for i, (res, soft, hard) in enumerate(plan.rlimits):
        rls[i].resource = res
        rls[i].soft = soft
        rls[i].hard = hard
    p.rlimits = rls

    p.uid = plan.uid
    p.gid = plan.gid
    p.ngids = len(plan.additional_gids)
    gids = <gid_t *>a.alloc(p.ngids * sizeof(gid_t))
    for i, g in enumerate(plan.additional_gids):
        gids[i] = g
    p.additional_gids = gids
    p.umask = plan.umask
    p.cap_bounding = plan.cap_bounding
    p.cap_effective = plan.cap_effective
    p.cap_permitted = plan.cap_permitted
    p.cap_inheritable = plan.cap_inheritable
    p.cap_ambient = plan.cap_ambient
    p.no_new_privs = plan.no_new_privs

    p.cwd = a.s(plan.cwd)
    p.argv = a.strv(plan.args)
    p.envp = a.strv(plan.env)
    p.path_env = a.s(plan.path_env)
    p.preserve_fds = plan.preserve_fds
    p.exec_fifo_fd = plan.exec_fifo_fd
    p.console_fd = plan.console_fd
    for i in range(3):
        p.stdio_fds[i] = plan.stdio_fds[i]
    p.console_rows = plan.console_rows
    p.console_cols = plan.console_cols
    p.setsid = plan.setsid
    p.hook_sync = plan.hook_sync
    p.log_fd = plan.log_fd
    p.ncgroup_join = len(plan.cgroup_join)
    p.cgroup_join = a.strv(plan.cgroup_join)
    p.cgroup_fd = plan.cgroup_fd
    p.session_keyring = a.s(plan.session_keyring)
    p.ncreate_container_hooks = len(plan.create_container_hooks)
    p.create_container_hooks = _hooks(a, plan.create_container_hooks)
    p.nstart_container_hooks = len(plan.start_container_hooks)
    p.start_container_hooks = _hooks(a, plan.start_container_hooks)
    p.hook_state = a.s(plan.hook_state)
    p.apparmor_profile = a.s(plan.apparmor_profile)
    p.selinux_label = a.s(plan.selinux_label)
    p.exec_pidfd = plan.exec_pidfd
    p.exec_nstypes = plan.exec_nstypes
    p.exec_root_fd = plan.exec_root_fd
    if plan.seccomp_bpf:
        p.seccomp_bpf = <const unsigned char *>a.blob(plan.seccomp_bpf)
        p.seccomp_len = len(plan.seccomp_bpf)
        p.seccomp_flags = plan.seccomp_flags


cdef _raise(sj_error *err):
    raise LaunchError(err.err, err.msg.decode(errors="replace"))


def spawn(plan):
    """Create the init described by `plan`; it waits for MSG_GO. -> (pid, pidfd, sync_fd)."""
    cdef _Arena a = _Arena()
    cdef sj_plan p
    cdef sj_spawned out
    cdef sj_error err
    cdef int rc
    memset(&p, 0, sizeof(p))
    memset(&err, 0, sizeof(err))
    _fill(a, &p, plan)
    with nogil:
        rc = sj_spawn(&p, &out, &err)
    if rc < 0:
        _raise(&err)
    return out.pid, out.pidfd, out.sync_fd


def pack(plan):
    """`plan` as one block of bytes, for the front end to execute (csrc/launch/planfile.h):
    the plan's fds are not in it."""
    cdef _Arena a = _Arena()
    cdef sj_plan p
    cdef sj_error err
    cdef unsigned char *out = NULL
    cdef size_t n = 0
    memset(&p, 0, sizeof(p))
    memset(&err, 0, sizeof(err))
    _fill(a, &p, plan)
    if sj_plan_pack(&p, &out, &n, &err) < 0:
        _raise(&err)
    try:
        return (<char *>out)[:n]
    finally:
        free(out)


def repack(bytes block):
    """The block unpacked, then packed again (the tests: the two ways agree)."""
    cdef size_t n = len(block)
    cdef unsigned char *buf = <unsigned char *>malloc(n if n else 1)
    cdef unsigned char *out = NULL
    cdef sj_plan *p = NULL
    cdef sj_error err
    if buf == NULL:
        raise MemoryError()
    memset(&err, 0, sizeof(err))
    memcpy(buf, <const char *>block, n)
    try:
        if sj_plan_unpack(buf, n, &p, &err) < 0 or sj_plan_pack(p, &out, &n, &err) < 0:
            _raise(&err)
        try:
            return (<char *>out)[:n]
        finally:
            free(out)
    finally:
        free(buf)


def send(int fd, int msg_type):
    cdef sj_error err
    cdef int rc
    memset(&err, 0, sizeof(err))
    with nogil:
        rc = sj_sync_send(fd, msg_type, &err)
    if rc < 0:
        _raise(&err)


def recv(int fd):
    """Wait for the init's next message. -> (type, errno, text, value): value is the pid of
    MSG_PID, the received fd of MSG_SECCOMP (the caller's to close)."""
    cdef sj_msg msg
    cdef sj_error err
    cdef int rc
    memset(&msg, 0, sizeof(msg))
    memset(&err, 0, sizeof(err))
    with nogil:
        rc = sj_sync_recv(fd, &msg, &err)
    if rc < 0:
        _raise(&err)
    return msg.type, msg.err, msg.text.decode(errors="replace"), msg.value


def strerror(int errnum):
    """errnum's text as Go (runc) prints it, as the init's messages have it (error.h)."""
    cdef char buf[128]
    return sj_errno_text(errnum, buf, sizeof(buf)).decode()


def run_hook(path, args, env, timeout, state):
    """Run one OCI hook with `state` (bytes) on its stdin; raise LaunchError if it fails.
    `env` None: the hook gets our environment."""
    cdef _Arena a = _Arena()
    cdef sj_hook h
    cdef sj_error err
    cdef const char *parts[1]
    cdef int rc
    memset(&h, 0, sizeof(h))
    memset(&err, 0, sizeof(err))
    h.path = a.s(path)
    h.argv = a.strv(args)
    h.envp = NULL if env is None else a.strv(env)
    h.timeout = timeout or 0
    parts[0] = a.s(state)
    with nogil:
        rc = sj_run_hook(&h, parts, 1, &err)
    if rc < 0:
        _raise(&err)


def source_tree(source, bint recursive, int userns_fd, bint idmap_recursive):
    """A detached copy of the mount at `source` for the init to move into place (see
    csrc/launch/mount_trees.c), idmapped through `userns_fd` if >= 0. -> the fd (CLOEXEC)."""
    cdef _Arena a = _Arena()
    cdef sj_error err
    cdef const char *src = a.s(source)
    cdef int fd
    memset(&err, 0, sizeof(err))
    with nogil:
        fd = sj_source_tree(src, recursive, userns_fd, idmap_recursive, &err)
    if fd < 0:
        _raise(&err)
    return fd


def userns_fd(uid_map, gid_map):
    """An fd of a new user namespace with these uid_map/gid_map texts (for idmapped mounts)."""
    cdef _Arena a = _Arena()
    cdef sj_error err
    cdef const char *u = a.s(uid_map)
    cdef const char *g = a.s(gid_map)
    cdef int fd
    memset(&err, 0, sizeof(err))
    with nogil:
        fd = sj_userns_fd(u, g, &err)
    if fd < 0:
        _raise(&err)
    return fd


cdef extern from "<sys/mount.h>" nogil:
    int umount2(const char *target, int flags)
    enum: MNT_DETACH


def umount(path, bint detach=True):
    """umount2(path, MNT_DETACH if detach); raises OSError."""
    cdef bytes b = path.encode("utf-8", "surrogateescape")
    cdef const char *p = b
    cdef int rc, e = 0
    with nogil:
        rc = umount2(p, MNT_DETACH if detach else 0)
        if rc < 0:
            e = errno
    if rc < 0:
        import os

        raise OSError(e, os.strerror(e), path)


# mount(2), unshare(2), setns(2) for the engine (overlay roots, volumes, network
# namespaces): what it otherwise reached through ctypes, whose import alone costs more
# than the calls of a whole `container run`.
cdef extern from "<sys/mount.h>" nogil:
    int c_mount "mount"(const char *source, const char *target, const char *fstype,
                        unsigned long flags, const void *data)


cdef extern from "<sched.h>" nogil:
    int c_unshare "unshare"(int flags)
    int c_setns "setns"(int fd, int nstype)


cdef const char *_opt(bytes b):
    return NULL if b is None else <const char *>b


def mount(bytes source, bytes target, bytes fstype, unsigned long flags, bytes data):
    """mount(2); None for an absent source, fstype or data.  Raises OSError(errno)."""
    cdef const char *s = _opt(source)
    cdef const char *t = target
    cdef const char *f = _opt(fstype)
    cdef const char *d = _opt(data)
    cdef int rc, e = 0
    with nogil:
        rc = c_mount(s, t, f, flags, d)
        if rc < 0:
            e = errno
    if rc < 0:
        import os

        raise OSError(e, os.strerror(e))


def unshare(int flags):
    """unshare(2) (of the calling thread's namespaces, for CLONE_NEWNET). OSError(errno)."""
    cdef int rc, e = 0
    with nogil:
        rc = c_unshare(flags)
        if rc < 0:
            e = errno
    if rc < 0:
        import os

        raise OSError(e, os.strerror(e))


def setns(int fd, int nstype):
    """setns(2) of the calling thread.  Raises OSError(errno)."""
    cdef int rc, e = 0
    with nogil:
        rc = c_setns(fd, nstype)
        if rc < 0:
            e = errno
    if rc < 0:
        import os

        raise OSError(e, os.strerror(e))
