"""The state directory: one per container under --root, state.json written atomically,
operations on one container serialized with flock, status read from the process itself; and
the JSON shapes made from the record (`state`, the State hooks get).

The directory holds state.json (the record: every verb reads it), the exec fifo (until
`start`), and what `exec` needs of the container as create compiled it: process.json (its
process) and seccomp.bpf (its filter, never compiled again).
"""

import fcntl
import os

from sangja import jsonio
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
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # comm may hold spaces and parens: split after the last ')'.
    rest = data[data.rindex(b")") + 2 :].split()
    if rest[0] == b"Z" or rest[0] == b"X":  # a zombie has finished running
        return None
    return int(rest[19])


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
        try:
            os.makedirs(root, mode=0o711, exist_ok=True)
        except OSError as e:
            raise SangjaError(f"mkdir {root}: {e.strerror}", errno=e.errno, path=root)
        path = os.path.join(root, cid)
        try:
            os.mkdir(path, 0o711)
        except FileExistsError:
            raise SangjaError(f"container with id exists: {cid}", errno=17, path=path)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return cls(root, cid, fd, path)

    @classmethod
    def open(cls, root, cid, shared=False, orphan_ok=False):
        """Lock the directory of an existing container; NotFound if it has none."""
        check_id(cid)
        path = os.path.join(root, cid)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NotFound(f"container does not exist: {cid}", errno=2, path=path)
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        self = cls(root, cid, fd, path)
        if not os.path.exists(os.path.join(path, STATE_FILE)):
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
        p = os.path.join(self.path, STATE_FILE)
        try:
            with open(p, "rb") as f:
                state = jsonio.loads(f.read())
        except (OSError, ValueError) as e:
            raise SangjaError(f"read state {p}: {e}", path=p)
        if not isinstance(state, dict):
            raise SangjaError(f"read state {p}: not a JSON object", path=p)
        return state

    def write(self, state):
        """Write state.json atomically: a reader sees the old or the new file, never half."""
        tmp = os.path.join(self.path, f".{STATE_FILE}.tmp")
        with open(tmp, "w") as f:
            f.write(jsonio.dumps(state))
        os.rename(tmp, os.path.join(self.path, STATE_FILE))

    def write_file(self, name, data):
        """Another file of the container (bytes), written before state.json names it."""
        with open(os.path.join(self.path, name), "wb") as f:
            f.write(data)

    def read_file(self, name):
        with open(os.path.join(self.path, name), "rb") as f:
            return f.read()

    def remove(self):
        """Delete everything in the directory, then the directory (we hold its lock)."""
        for name in os.listdir(self.path):
            try:
                os.unlink(os.path.join(self.path, name))
            except FileNotFoundError:
                pass
        try:
            os.rmdir(self.path)
        except FileNotFoundError:
            pass
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
            self.record = self.read()
        except BaseException:
            self.close()
            raise
        self.status = status_of(self.record, self.fifo)
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


def status_of(state, fifo_path):
    """created | running | paused | stopped, from the process, never from a bare pid."""
    creator = state.get("creator")
    if creator:  # create has not finished: still at it, or it died half-way
        return "creating" if proc_start_time(creator[0]) == creator[1] else "stopped"
    pid = state.get("pid", 0)
    if not pid or proc_start_time(pid) != state.get("pid_start"):
        return "stopped"
    if state.get("cgroups") and _frozen(state["cgroups"]):
        return "paused"
    if os.path.exists(fifo_path):
        return "created"
    return "running"


def _frozen(cg):
    """The freezer `pause` uses (cgroups.Cgroups.freezer): v1's, else cgroup.freeze."""
    paths = cg.get("paths", {})
    try:
        if not cg.get("unified") and "freezer" in paths:
            with open(f"{paths['freezer']}/freezer.state") as f:
                return f.read().strip() in ("FROZEN", "FREEZING")
        if "" in paths:
            with open(f"{paths['']}/cgroup.freeze") as f:
                return f.read().strip() == "1"
    except OSError:
        pass
    return False


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
