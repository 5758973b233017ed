"""Container cgroups: find the hierarchies, place the init, signal and remove.

`manager(spec, id)` picks the driver for this host: v1 (one hierarchy per controller, as
here) or v2 (unified). The per-resource settings live with each driver.
"""

import _signal as signal  # the C module: `signal` pulls in enum
import errno
import os
import time

from sangja.errors import SangjaError

CGROUP_ROOT = "/sys/fs/cgroup"


def unified_host():
    return os.path.exists(f"{CGROUP_ROOT}/cgroup.controllers")


def _read_self_cgroup():
    """/proc/self/cgroup -> {controller-list: path}; '' is the unified hierarchy."""
    out = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            out[ctrls] = path
    return out


def v1_hierarchies():
    """[(name, mountpoint, controller-list)] of the mounted v1 hierarchies."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fields = post.split()
            if not fields or fields[0] != "cgroup":
                continue
            mnt = pre.split()[4]
            opts = [o for o in fields[2].split(",") if o not in ("rw", "ro")]
            ctrls = ",".join(o for o in opts if o in _KNOWN_V1 or o.startswith("name="))
            if ctrls:
                out.append((os.path.basename(mnt), mnt, ctrls))
    return out


_KNOWN_V1 = {
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "net_prio",
    "blkio", "perf_event", "hugetlb", "pids", "rdma", "misc",
}  # fmt: skip


def _inner_path(spec_path, own, container_id):
    """runc's reading of cgroupsPath: absolute as is, relative under our own cgroup."""
    p = spec_path or container_id
    if p.startswith("/"):
        return os.path.normpath(p)
    return os.path.normpath(os.path.join(own or "/", p))


class Cgroups:
    """The container's cgroup directories: {hierarchy name: absolute host path}."""

    def __init__(self, paths, unified):
        self.paths = paths
        self.unified = unified

    @property
    def unified_path(self):
        return self.paths[""]

    def v1_mounts(self):
        return sorted(self.paths.items())

    def to_json(self):
        return {"paths": self.paths, "unified": self.unified}

    @classmethod
    def from_json(cls, d):
        return cls(d["paths"], d["unified"])

    def create(self):
        for name, path in self.paths.items():
            try:
                os.makedirs(path, exist_ok=True)
            except OSError as e:
                raise SangjaError(f"cgroup mkdir {path}: {e.strerror}", errno=e.errno, path=path)
            if name == "cpuset" or (self.unified and name == ""):
                _fill_cpuset(path)

    def add(self, pid):
        for path in self.paths.values():
            procs = f"{path}/cgroup.procs"
            try:
                with open(procs, "w") as f:
                    f.write(str(pid))
            except OSError as e:
                raise SangjaError(f"cgroup join {procs}: {e.strerror}", errno=e.errno, path=procs)

    def _procs_file(self):
        if self.unified:
            return f"{self.paths['']}/cgroup.procs"
        for name in ("pids", "freezer", "memory", "cpu"):
            if name in self.paths:
                return f"{self.paths[name]}/cgroup.procs"
        return f"{next(iter(self.paths.values()))}/cgroup.procs"

    def pids(self):
        try:
            with open(self._procs_file()) as f:
                return [int(x) for x in f.read().split()]
        except FileNotFoundError:
            return []

    def signal_all(self, sig):
        """Send `sig` to every process in the container's cgroup."""
        if self.unified and sig == signal.SIGKILL:
            try:
                with open(f"{self.paths['']}/cgroup.kill", "w") as f:
                    f.write("1")
                return
            except OSError:
                pass
        for pid in self.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def destroy(self, timeout=5.0):
        """Remove every directory; kill what is still inside so rmdir can succeed."""
        deadline = time.monotonic() + timeout
        left = dict(self.paths)
        killed = False
        while left:
            for name, path in list(left.items()):
                try:
                    os.rmdir(path)
                    del left[name]
                except FileNotFoundError:
                    del left[name]
                except OSError as e:
                    if e.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise SangjaError(f"cgroup rmdir {path}: {e.strerror}", errno=e.errno,
                                          path=path)  # fmt: skip
            if left:
                if not killed:
                    self.signal_all(signal.SIGKILL)
                    killed = True
                time.sleep(0.002)


def _fill_cpuset(path):
    """A new v1 cpuset cgroup starts empty, which refuses tasks: inherit cpus and mems."""
    for f in ("cpuset.cpus", "cpuset.mems"):
        chain = []
        p = path
        while True:
            try:
                with open(f"{p}/{f}") as fh:
                    val = fh.read().strip()
            except FileNotFoundError:
                break
            if val:
                break
            chain.append(p)
            p = os.path.dirname(p)
        for q in reversed(chain):  # fill from the top down
            with open(f"{q}/{f}", "w") as fh:
                fh.write(val)


def for_spec(spec, container_id):
    """The container's Cgroups (not yet created) as config.json asks."""
    linux = spec.get("linux") or {}
    spec_path = linux.get("cgroupsPath")
    own = _read_self_cgroup()
    if unified_host():
        inner = _inner_path(spec_path, own.get(""), container_id)
        return Cgroups({"": CGROUP_ROOT + inner}, True)
    paths = {}
    for name, mnt, ctrls in v1_hierarchies():
        inner = _inner_path(spec_path, own.get(ctrls), container_id)
        paths[name] = mnt + inner
    return Cgroups(paths, False)
