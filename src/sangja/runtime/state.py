"""The state directory: one per container under --root, state.json written atomically,
operations on one container serialized with flock, status read from the process itself; and
the JSON shapes made from the record (`state`, the State hooks get).

Opening, locking, reading state.json, the status rule and removing are the C state module's
(csrc/state/, through sangja._native.state), which the C front end (csrc/front/) runs too:
one implementation. Writing the record stays here (only create and update write it).

The directory holds state.json (the record: every verb reads it), the exec fifo (until
`start`), and what `exec` needs of the container as create compiled it: process.json (its
process) and seccomp.bpf (its filter, never compiled again).
"""

import os

from sangja import jsonio
from sangja._native import state as _state
from sangja.errors import ConfigError, NotFound, SangjaError

DEFAULT_ROOT = "/run/sangja"
STATE_FILE = "state.json"
FIFO = "exec.fifo"
PROCESS_FILE = "process.json"
SECCOMP_FILE = "seccomp.bpf"
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def check_id(cid):
    if not cid or not _ID_CHARS.issuperset(cid) or cid in (".", ".."):
        raise ConfigError(f"invalid container id {cid!r}")
    return cid


def proc_start_time(pid):
    """The process's start time in clock ticks (field 22 of /proc/PID/stat), or None."""
    return _state.proc_start_time(pid)


def pidfd_for(state):
    """A pidfd for the container's init, or None if that process is gone (pid reuse safe)."""
    return _state.pidfd(state.get("pid", 0), state.get("pid_start"))


def signal_init(state, sig):
    """Send `sig` to the container's init if it is still the process the record names:
    whether it was sent (False: gone)."""
    return _state.signal(state.get("pid", 0), state.get("pid_start"), sig)


def wait_pidfd(fd, timeout):
    """Wait up to `timeout` seconds (None: for ever) for the pidfd's process to exit."""
    return _state.wait_pidfd(fd, timeout)


class ContainerDir:
    """An open, locked container state directory."""

    def __init__(self, root, cid, fd, path):
        self.root = root
        self.id = cid
        self.fd = fd
        self.path = path

    @classmethod
    def make(cls, root, cid):
        """Create the directory for a new container (an existing id is an error)."""
        check_id(cid)
        path = os.path.join(root, cid)
        try:
            fd = _state.make(root, cid)
        except FileExistsError:
            raise SangjaError(f"container with id exists: {cid}", errno=17, path=path)
        except OSError as e:
            raise SangjaError(f"mkdir {path}: {e.strerror}", errno=e.errno, path=path)
        return cls(root, cid, fd, path)

    @classmethod
    def open(cls, root, cid, shared=False, orphan_ok=False):
        """Lock the directory of an existing container; NotFound if it has none."""
        check_id(cid)
        path = os.path.join(root, cid)
        try:
            fd, has_state = _state.open_dir(root, cid, shared)
        except FileNotFoundError:
            raise NotFound(f"container does not exist: {cid}", errno=2, path=path)
        self = cls(root, cid, fd, path)
        if not has_state:
            # Removed while we waited for the lock, or left by a create that was killed
            # between mkdir and its first state write (it held the lock until it died).
            if orphan_ok and os.path.isdir(path):
                return self
            self.close()
            raise NotFound(f"container does not exist: {cid}", errno=2, path=path)
        return self

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def read(self):
        """-> (the record, its status): state.json parsed and the status decided in C. The
        status is None where the record is damaged where the rule reads it."""
        p = os.path.join(self.path, STATE_FILE)
        try:
            return _state.read(self.fd)
        except OSError as e:
            raise SangjaError(f"read state {p}: {e.strerror}", errno=e.errno, path=p)
        except ValueError as e:
            raise SangjaError(f"read state {p}: {e}", path=p)

    def write(self, state):
        """Write state.json atomically: a reader sees the old or the new file, never half."""
        tmp = os.path.join(self.path, f".{STATE_FILE}.tmp")
        with open(tmp, "w") as f:
            f.write(jsonio.dumps(state))
        os.rename(tmp, os.path.join(self.path, STATE_FILE))

    def write_file(self, name, data, mode=0o644):
        """Another file of the container (bytes), written before state.json names it."""
        fd = os.open(os.path.join(self.path, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC
                     | os.O_CLOEXEC | os.O_NOFOLLOW, mode)  # fmt: skip
        with open(fd, "wb") as f:
            f.write(data)

    def read_file(self, name):
        with open(os.path.join(self.path, name), "rb") as f:
            return f.read()

    def remove(self):
        """Delete everything in the directory, then the directory (we hold its lock)."""
        try:
            _state.remove(self.fd, self.root, self.id)
        except OSError as e:
            raise SangjaError(f"remove {self.path}: {e.strerror}", errno=e.errno, path=self.path)
        self.close()

    @property
    def fifo(self):
        return os.path.join(self.path, FIFO)


class Container(ContainerDir):
    """An existing container's directory, locked (shared or exclusive), with its record and
    its status as they were when it was opened. A context manager; `close` unlocks."""

    @classmethod
    def load(cls, root, cid, shared=False):
        self = cls.open(root, cid, shared=shared)
        try:
            self.record, self.status = self.read()
            if self.status is None:
                raise SangjaError(f"state of {cid} is damaged: its status cannot be told")
        except BaseException:
            self.close()
            raise
        return self


def oci_state(state, status):
    """The `state` verb's JSON (runc's)."""
    out = {
        "ociVersion": state["ociVersion"],
        "id": state["id"],
        "pid": state["pid"] if status != "stopped" else 0,
        "status": status,
        "bundle": state["bundle"],
        "rootfs": state["rootfs"],
        "created": state["created"],
        "owner": state.get("owner", ""),
    }
    if state.get("annotations"):
        out["annotations"] = state["annotations"]
    return out


def spec_state(state, status):
    """The state hooks (and a seccomp listener) get: the spec's State (runc's specs.State)."""
    out = {
        "ociVersion": state["ociVersion"],
        "id": state["id"],
        "status": status,
        "pid": state.get("pid", 0) if status != "stopped" else 0,
        "bundle": state["bundle"],
    }
    if state.get("annotations"):
        out["annotations"] = state["annotations"]
    return out


def peek(root, cid):
    """(record, status) of a container read without its lock (state.json is replaced
    atomically), for who only looks: None if it has no state; the status None if the
    record is damaged where the rule reads. Raises OSError, ValueError as read()."""
    try:
        fd = os.open(os.path.join(root, cid), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        return _state.read(fd)
    except FileNotFoundError:
        return None
    finally:
        os.close(fd)


def status_of(state, fifo_path):
    """The status of a record dict read elsewhere, by the state module's rule (the exec
    fifo looked for at `fifo_path`'s directory). Prefer peek(), which reads it too."""
    try:
        fd = os.open(os.path.dirname(fifo_path), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        fd = -1
    try:
        status = _state.status(jsonio.dumps(state).encode(), fd)
    finally:
        if fd >= 0:
            os.close(fd)
    if status is None:
        raise ValueError("state record damaged: its status cannot be told")
    return status


def list_ids(root):
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if os.path.exists(os.path.join(root, n, STATE_FILE)))


def seccomp_cache_dir():
    """Where compiled seccomp programs are kept (seccomp.compile_filter): outside every
    --root (an engine checks that a root is empty once its containers are gone), on tmpfs
    (gone at reboot, with the kernel they were built for), one per user. SANGJA_SECCOMP_CACHE
    names another directory ("": none)."""
    d = os.environ.get("SANGJA_SECCOMP_CACHE")
    if d is not None:
        return d or None
    if os.geteuid() == 0:
        return "/run/sangja-seccomp"
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    return os.path.join(xdg, "sangja-seccomp") if xdg else None
