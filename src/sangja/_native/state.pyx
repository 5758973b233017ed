# cython: language_level=3
"""The binding to csrc/state/state.h: a container's state directory, the one implementation
the runtime (sangja.runtime.state) and the C front end share. state.json is parsed by yajl
there and handed over here as Python objects; the status rule is C's.

Errors are OSError(errno, text) (path: the state dir), for the caller to word."""

cdef extern from "yajl/yajl_tree.h" nogil:
    ctypedef enum yajl_type:
        yajl_t_string
        yajl_t_number
        yajl_t_object
        yajl_t_array
        yajl_t_true
        yajl_t_false
        yajl_t_null

    struct yajl_number:
        long long i
        double d
        char *r
        unsigned int flags

    struct yajl_object:
        const char **keys
        yajl_val_s **values
        size_t len

    struct yajl_array:
        yajl_val_s **values
        size_t len

    union yajl_u:
        char *string
        yajl_number number
        yajl_object object
        yajl_array array

    struct yajl_val_s:
        yajl_type type
        yajl_u u

    ctypedef yajl_val_s *yajl_val
    void yajl_tree_free(yajl_val v)
    int YAJL_NUMBER_INT_VALID


cdef extern from "state/state.h" nogil:
    struct sj_record:
        long long pid
        long long pid_start
        int creating
        long long creator_pid
        long long creator_start
        int freezer
        const char *frozen

    long long sj_proc_start_time(long long pid)
    int sj_state_make(const char *root, const char *id)
    int sj_state_open(const char *root, const char *id, int shared, int *has_state)
    yajl_val sj_state_read(int dirfd, char *why, size_t why_size, int *err)
    yajl_val sj_state_parse(const char *text, char *why, size_t why_size)
    int sj_record_from_tree(yajl_val tree, sj_record *rec)
    const char *sj_state_status(const sj_record *rec, int dirfd)
    int sj_state_pidfd(long long pid, long long start)
    int sj_state_signal(long long pid, long long start, int sig)
    int sj_state_wait_pidfd(int pidfd, int timeout_ms)
    int sj_state_remove(int dirfd, const char *root, const char *id)


cdef bytes _fs(str s):
    return s.encode("utf-8", "surrogateescape")


cdef _oserror(int rc, path):
    import os

    return OSError(-rc, os.strerror(-rc), path)


cdef object _py(yajl_val v):
    """A yajl value as the json module would give it."""
    cdef size_t i
    if v.type == yajl_t_string:
        return v.u.string.decode("utf-8", "surrogateescape")
    if v.type == yajl_t_number:
        if v.u.number.flags & YAJL_NUMBER_INT_VALID:
            return v.u.number.i
        text = v.u.number.r.decode()
        if "." in text or "e" in text or "E" in text:
            return float(text)
        return int(text)  # beyond long long: Python's int has no bound
    if v.type == yajl_t_object:
        d = {}
        for i in range(v.u.object.len):
            d[v.u.object.keys[i].decode("utf-8", "surrogateescape")] = _py(v.u.object.values[i])
        return d
    if v.type == yajl_t_array:
        return [_py(v.u.array.values[i]) for i in range(v.u.array.len)]
    if v.type == yajl_t_true:
        return True
    if v.type == yajl_t_false:
        return False
    return None


def proc_start_time(long long pid):
    """The process's start time in clock ticks (field 22 of /proc/PID/stat), or None if it
    has none (gone, or a zombie)."""
    cdef long long t = sj_proc_start_time(pid)
    return None if t < 0 else t


def make(str root, str cid):
    """Make root/cid (root too), open and lock it exclusively. -> its fd."""
    cdef bytes r = _fs(root), c = _fs(cid)
    cdef const char *rp = r
    cdef const char *cp = c
    cdef int fd
    with nogil:
        fd = sj_state_make(rp, cp)
    if fd < 0:
        raise _oserror(fd, f"{root}/{cid}")
    return fd


def open_dir(str root, str cid, bint shared):
    """Open root/cid and lock it. -> (fd, whether state.json is there once locked)."""
    cdef bytes r = _fs(root), c = _fs(cid)
    cdef const char *rp = r
    cdef const char *cp = c
    cdef int fd, has_state = 0
    with nogil:
        fd = sj_state_open(rp, cp, shared, &has_state)
    if fd < 0:
        raise _oserror(fd, f"{root}/{cid}")
    return fd, bool(has_state)


def read(int dirfd):
    """state.json of the locked directory, and the container's status from it:
    -> (dict, status). ValueError if it is not JSON (or not an object), OSError if it
    cannot be read; the status is None when the record is damaged where the rule reads."""
    cdef char why[256]
    cdef int err = 0
    cdef sj_record rec
    cdef yajl_val tree
    with nogil:
        tree = sj_state_read(dirfd, why, sizeof(why), &err)
    if tree == NULL:
        text = why.decode(errors="replace").strip().replace("\n", " ")
        if err == -22:  # EINVAL: what is there is not a JSON object
            raise ValueError(text)
        raise OSError(-err, text)
    try:
        record = _py(tree)
        status = None
        if sj_record_from_tree(tree, &rec) == 0:
            status = sj_state_status(&rec, dirfd).decode()
    finally:
        yajl_tree_free(tree)
    return record, status


def status(bytes record_json, int dirfd):
    """The status of a record some caller holds (as JSON text), by the same rule as read();
    `dirfd`: its state dir (-1: none, so no exec fifo). None if it is damaged where the
    rule reads."""
    cdef char why[256]
    cdef sj_record rec
    cdef yajl_val tree = sj_state_parse(record_json, why, sizeof(why))
    if tree == NULL:
        raise ValueError(why.decode(errors="replace").strip().replace("\n", " "))
    try:
        if sj_record_from_tree(tree, &rec) < 0:
            return None
        return sj_state_status(&rec, dirfd).decode()
    finally:
        yajl_tree_free(tree)


def pidfd(pid, pid_start):
    """A pidfd for the init `pid` if it is still the process that started at `pid_start`,
    else None."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return None
    if not isinstance(pid_start, int) or isinstance(pid_start, bool):
        pid_start = -1
    cdef int fd = sj_state_pidfd(pid, pid_start)
    if fd == -3:  # ESRCH: gone, or another process now
        return None
    if fd < 0:
        raise _oserror(fd, None)
    return fd


def signal(pid, pid_start, int sig):
    """Send `sig` to the init `pid` if it is still the process that started at
    `pid_start` (through a pidfd). -> whether it was sent (False: that process is gone)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    if not isinstance(pid_start, int) or isinstance(pid_start, bool):
        pid_start = -1
    cdef int rc = sj_state_signal(pid, pid_start, sig)
    if rc == -3:  # ESRCH
        return False
    if rc < 0:
        raise _oserror(rc, None)
    return True


def wait_pidfd(int fd, timeout):
    """Wait for the process to exit (timeout in seconds, None: for ever). -> whether it did."""
    cdef int ms = -1 if timeout is None else int(timeout * 1000)
    cdef int rc
    with nogil:
        rc = sj_state_wait_pidfd(fd, ms)
    return bool(rc)


def remove(int dirfd, str root, str cid):
    """Remove everything in the locked directory, then the directory."""
    cdef int rc = sj_state_remove(dirfd, _fs(root), _fs(cid))
    if rc < 0:
        raise _oserror(rc, f"{root}/{cid}")
