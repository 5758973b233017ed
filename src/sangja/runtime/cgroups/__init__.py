"""Container cgroups: the driver for this host, where the directories are, and what every
driver does the same way (place the init, limit, freeze, signal, list, remove).

Drivers:
- v1 (cgroupfs, one hierarchy per controller, as here): limits in v1.py. On a hybrid host
  (v1 controllers and a cgroup2 mount without them, as here) the container also gets a
  directory in the unified hierarchy, as runc gives it: there it is cloned straight into
  (CLONE_INTO_CGROUP), and `kill --all` uses its cgroup.kill.
- v2 (cgroupfs, the unified hierarchy): limits in v2.py, devices as a BPF program.
  `SANGJA_CGROUP_DRIVER=v2` picks it on a hybrid host, rooted at the cgroup2 mount there.
- systemd (`--systemd-cgroup`): systemd.py.
Device rules: devices.py; statistics and OOM notifications (`events`): stats.py.
"""

import _signal as signal  # the C module: `signal` pulls in enum
import errno
import os
import time

from sangja.errors import ConfigError, SangjaError

CGROUP_ROOT = "/sys/fs/cgroup"
DRIVER_ENV = "SANGJA_CGROUP_DRIVER"


def unified_host():
    return os.path.exists(f"{CGROUP_ROOT}/cgroup.controllers")


def read_proc_cgroup(pid="self"):
    """/proc/PID/cgroup -> {controller-list: path}; '' is the unified hierarchy."""
    out = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            out[ctrls] = path
    return out


def unified_only(v1, v2):
    """Is the unified hierarchy the host's layout (mounted at /sys/fs/cgroup, or alone)?"""
    return v2 == CGROUP_ROOT or (not v1 and v2 is not None)


def cgroup_mounts():
    """-> ([(name, mountpoint, controller-list)] of the v1 hierarchies, cgroup2 mountpoint
    or None)."""
    v1, v2 = [], None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fields = post.split()
            if not fields or fields[0] not in ("cgroup", "cgroup2"):
                continue
            mnt = pre.split()[4]
            if fields[0] == "cgroup2":
                if v2 is None or mnt == CGROUP_ROOT:
                    v2 = mnt
                continue
            opts = [o for o in fields[2].split(",") if o not in ("rw", "ro")]
            ctrls = ",".join(o for o in opts if o in _KNOWN_V1 or o.startswith("name="))
            if ctrls:
                v1.append((os.path.basename(mnt), mnt, ctrls))
    return v1, v2


def v1_hierarchies():
    """[(name, mountpoint, controller-list)] of the mounted v1 hierarchies."""
    return cgroup_mounts()[0]


_KNOWN_V1 = {
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
}


def _inner_path(spec_path, own, container_id):
    """runc's reading of cgroupsPath: absolute as is, relative under our own cgroup. Never
    the root of a hierarchy nor a way up out of a path (`..`): delete empties and removes
    the container's cgroup, killing what is left in it."""
    p = spec_path or container_id
    if ".." in p.split("/"):
        raise ConfigError(f"config.json: linux.cgroupsPath {spec_path!r}: '..' is not allowed")
    inner = os.path.normpath(p if p.startswith("/") else os.path.join(own or "/", p))
    if inner == "/":
        raise ConfigError(
            f"config.json: linux.cgroupsPath {spec_path!r} names the root cgroup, which no "
            "container may own"
        )
    return inner


def read_value(path):
    """A cgroup file's content without the trailing newline, or None if it cannot be read."""
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def write_value(path, value):
    """One write(2) of `value`: the kernel takes a cgroup file's value per write."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


class Cgroups:
    """The container's cgroup directories: {hierarchy name: absolute host path}, where the
    name is the v1 mount's ('cpu', 'cpu,cpuacct', 'systemd') and '' the unified hierarchy.
    `unified`: the v2 driver (else v1, with '' only on a hybrid host)."""

    def __init__(self, paths, unified):
        self.paths = paths
        self.unified = unified

    @property
    def unified_path(self):
        return self.paths[""]

    def v1_mounts(self):
        return sorted((n, p) for n, p in self.paths.items() if n)

    def to_json(self):
        return {"paths": self.paths, "unified": self.unified}

    @classmethod
    def from_json(cls, d):
        if "systemd" in d:
            from sangja.runtime.cgroups.systemd import SystemdCgroups

            return SystemdCgroups.from_json(d)
        return cls(d["paths"], d["unified"])

    def dir_of(self, controller):
        """The directory of a v1 controller (also when comounted: 'cpu' in 'cpu,cpuacct')."""
        p = self.paths.get(controller)
        if p is None and not self.unified:
            for name, path in self.paths.items():
                if controller in name.split(","):
                    return path
        return p

    # -- create ------------------------------------------------------------------------
    def create(self):
        for name, path in self.paths.items():
            if name == "" and self.unified:
                from sangja.runtime.cgroups import v2

                v2.enable_controllers(path, _mount_of(path))
            try:
                os.makedirs(path, exist_ok=True)
            except OSError as e:
                raise SangjaError(f"cgroup mkdir {path}: {e.strerror}", errno=e.errno, path=path)
            if "cpuset" in name.split(","):  # v1 only: an empty v2 cpuset inherits
                _fill_cpuset(path)

    def apply(self, linux, warn=lambda msg: None):
        """At create, before the init exists: every limit of `linux.resources`, and the
        device rules."""
        from sangja.runtime.cgroups import devices

        rules = devices.rules(linux)
        self._set(linux.get("resources"), rules, False, warn)

    def update(self, resources, warn=lambda msg: None):
        """`update`: change the limits of a live container (never the device rules)."""
        self._set(resources, None, True, warn)

    def _set(self, resources, rules, update, warn):
        if self.unified:
            from sangja.runtime.cgroups import v2

            v2.apply(self, resources, rules, update=update, warn=warn)
        elif isinstance(resources, dict) and resources.keys() - {"devices"}:
            from sangja.runtime.cgroups import v1

            v1.apply(self, resources, rules, update=update)
        elif rules is not None and self.dir_of("devices"):  # runc's default spec: devices only
            from sangja.runtime.cgroups import devices

            devices.apply_v1(self.dir_of("devices"), rules)

    def prepare_spawn(self, plan, userns, fds):
        """Fill the plan's cgroup fields so the init starts in the container's cgroups the
        cheap way: cloned into the unified one (CLONE_INTO_CGROUP), joining each v1
        hierarchy itself by writing "0" to its `tasks` (see csrc/launch.h). Not host root in
        a user namespace, it cannot write those: then the caller passes the returned paths
        to `add(pid, paths)` before it lets the init go on. The fd opened here is appended
        to `fds` (the caller closes it once spawned)."""
        v2 = self.paths.get("")
        if v2 is not None:
            plan.cgroup_fd = os.open(v2, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            fds.append(plan.cgroup_fd)
        return join_v1(plan, userns, [p for n, p in self.paths.items() if n])

    def started(self, pid):
        """The init exists and waits for GO (the systemd driver makes its scope now)."""

    def add(self, pid, paths=None):
        for path in self.paths.values() if paths is None else paths:
            procs = f"{path}/cgroup.procs"
            try:
                write_value(procs, str(pid))
            except OSError as e:
                raise SangjaError(f"cgroup join {procs}: {e.strerror}", errno=e.errno, path=procs)

    # -- processes -----------------------------------------------------------------------
    def _procs_dir(self):
        if "" in self.paths:
            return self.paths[""]
        for name in ("pids", "freezer", "memory", "cpu"):
            d = self.dir_of(name)
            if d:
                return d
        return next(iter(self.paths.values()))

    def pids(self):
        """Every process in the container's cgroup and the cgroups below it."""
        out = []
        stack = [self._procs_dir()]
        while stack:
            d = stack.pop()
            try:
                with open(f"{d}/cgroup.procs") as f:
                    out += [int(x) for x in f.read().split()]
                with os.scandir(d) as it:
                    stack += [e.path for e in it if e.is_dir(follow_symlinks=False)]
            except (FileNotFoundError, NotADirectoryError):
                continue
        return out

    def signal_all(self, sig):
        """Send `sig` to every process in the container's cgroup. SIGKILL goes through
        cgroup.kill where there is one (nothing can fork away from it); otherwise the
        cgroup is frozen while its processes are listed and signalled (runc)."""
        if sig == signal.SIGKILL and "" in self.paths:
            try:
                write_value(f"{self.paths['']}/cgroup.kill", "1")
                return
            except OSError:
                pass
        froze = False
        try:
            if self.freezer() and not self.frozen():
                self.freeze()
                froze = True
        except SangjaError:
            pass
        try:
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            if froze:
                self.thaw()

    # -- freezer -------------------------------------------------------------------------
    def freezer(self):
        """('v1', freezer dir) or ('v2', unified dir), or None: v1's freezer on a v1 host
        (runc's choice on a hybrid one), cgroup.freeze on v2."""
        if not self.unified and "freezer" in self.paths:
            return "v1", self.paths["freezer"]
        if "" in self.paths:
            return "v2", self.paths[""]
        return None

    def _need_freezer(self):
        fz = self.freezer()
        if fz is None:
            raise SangjaError("cgroup: no freezer on this host (neither v1's nor cgroup.freeze)")
        return fz

    def frozen(self):
        fz = self.freezer()
        if fz is None:
            return False
        kind, d = fz
        if kind == "v1":
            return read_value(f"{d}/freezer.state") in ("FROZEN", "FREEZING")
        return read_value(f"{d}/cgroup.freeze") == "1"

    def freeze(self, timeout=10.0):
        """Freeze every process; return once the kernel says they all are."""
        kind, d = self._need_freezer()
        deadline = time.monotonic() + timeout
        if kind == "v1":
            # runc's loop: FREEZING can get stuck behind a process in a vfork or in the
            # middle of a fork; thawing and freezing again lets it through.
            n = 0
            while True:
                self._set_state(d, "FROZEN")
                st = read_value(f"{d}/freezer.state")
                if st == "FROZEN":
                    return
                n += 1
                if time.monotonic() > deadline:
                    self._set_state(d, "THAWED")
                    raise SangjaError(f"cgroup freeze {d}: still {st} after {timeout:g}s")
                if n % 50 == 0:
                    self._set_state(d, "THAWED")
                time.sleep(0.001 if n < 100 else 0.01)
        self._v2_freeze(d, "1", deadline)

    def thaw(self):
        kind, d = self._need_freezer()
        if kind == "v1":
            self._set_state(d, "THAWED")
        else:
            self._v2_freeze(d, "0", time.monotonic() + 10)

    @staticmethod
    def _set_state(d, state):
        try:
            write_value(f"{d}/freezer.state", state)
        except OSError as e:
            raise SangjaError(
                f"cgroup freezer {d}: write {state}: {e.strerror}", errno=e.errno, path=d
            )

    @staticmethod
    def _v2_freeze(d, value, deadline):
        """Write cgroup.freeze, then wait for cgroup.events to say `frozen <value>`."""
        import select

        try:
            write_value(f"{d}/cgroup.freeze", value)
        except OSError as e:
            raise SangjaError(
                f"cgroup freeze {d}: write {value}: {e.strerror}", errno=e.errno, path=d
            )
        want = f"frozen {value}"
        fd = os.open(f"{d}/cgroup.events", os.O_RDONLY | os.O_CLOEXEC)
        try:
            p = select.poll()
            p.register(fd, select.POLLPRI)
            while True:
                text = os.pread(fd, 4096, 0).decode()
                if want in text.splitlines():
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SangjaError(f"cgroup freeze {d}: cgroup.events never said {want!r}")
                p.poll(min(left, 0.1) * 1000)  # kernfs wakes pollers on a change
        finally:
            os.close(fd)

    # -- memory --------------------------------------------------------------------------
    def _memory_dir(self):
        return self.paths.get("") if self.unified else self.dir_of("memory")

    def oom_kills(self):
        """How many processes the OOM killer has killed in the container's memory cgroup
        (memory.oom_control's oom_kill on v1, memory.events' on v2); 0 if unknown."""
        d = self._memory_dir()
        text = d and read_value(f"{d}/{'memory.events' if self.unified else 'memory.oom_control'}")
        for line in (text or "").splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.isdigit():
                return int(value)
        return 0

    def memory_usage(self):
        """(current, peak) usage in bytes of the memory cgroup, as text ('?' if unknown)."""
        d = self._memory_dir()
        if self.unified:
            names = ("memory.current", "memory.peak")
        else:
            names = ("memory.usage_in_bytes", "memory.max_usage_in_bytes")
        return tuple((d and read_value(f"{d}/{n}")) or "?" for n in names)

    # -- stats ---------------------------------------------------------------------------
    def stats(self):
        from sangja.runtime.cgroups import stats

        return stats.collect(self)

    # -- delete --------------------------------------------------------------------------
    def destroy(self, timeout=5.0):
        """Remove every directory (and any made below it); kill what is still inside so
        rmdir can succeed."""
        deadline = time.monotonic() + timeout
        left = dict(self.paths)
        killed = False
        while left:
            for name, path in list(left.items()):
                try:
                    _rmdir_tree(path)
                    del left[name]
                except FileNotFoundError:
                    del left[name]
                except OSError as e:
                    if e.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise SangjaError(
                            f"cgroup rmdir {e.filename or path}: {e.strerror}",
                            errno=e.errno,
                            path=path,
                        )
            if left:
                if not killed:
                    if self.frozen():
                        self.thaw()  # a frozen process cannot die
                    self.signal_all(signal.SIGKILL)
                    killed = True
                time.sleep(0.002)


def join_v1(plan, userns, dirs):
    """The init joins the v1 `dirs` itself (plan.cgroup_join), or, in a user namespace,
    returns them for the parent to write."""
    if userns:
        plan.cgroup_join = []
        return dirs
    plan.cgroup_join = [f"{p}/tasks" for p in dirs]
    return []


def _rmdir_tree(path):
    """rmdir `path`; when it has child cgroups (a container may make its own), those first."""
    try:
        os.rmdir(path)
        return
    except OSError as e:
        if e.errno not in (errno.EBUSY, errno.ENOTEMPTY):
            raise
        with os.scandir(path) as it:
            subs = [x.path for x in it if x.is_dir(follow_symlinks=False)]
        if not subs:
            raise
    for s in subs:
        _rmdir_tree(s)
    os.rmdir(path)


def _mount_of(path):
    v1, v2 = cgroup_mounts()
    if v2 and (path + "/").startswith(v2 + "/"):
        return v2
    return CGROUP_ROOT


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


def driver():
    """-> ('v1' | 'v2', cgroup2 mountpoint or None, v1 hierarchies)."""
    v1, v2 = cgroup_mounts()
    want = os.environ.get(DRIVER_ENV, "")
    if want not in ("", "v1", "v2"):
        raise SangjaError(f"{DRIVER_ENV}={want}: want v1 or v2")
    if unified_only(v1, v2):
        if want == "v1":
            raise SangjaError(f"{DRIVER_ENV}=v1: this host has no cgroup v1 hierarchies")
        return "v2", v2, v1
    if want == "v2":
        if not v2:
            raise SangjaError(f"{DRIVER_ENV}=v2: this host has no cgroup2 mount")
        return "v2", v2, v1
    if not v1:
        raise SangjaError("cgroup: neither a cgroup v1 hierarchy nor cgroup2 is mounted")
    return "v1", v2, v1


def for_spec(spec, container_id, systemd=False):
    """The container's Cgroups (not yet created) as config.json asks."""
    linux = spec.get("linux") or {}
    spec_path = linux.get("cgroupsPath")
    if systemd:
        from sangja.runtime.cgroups import systemd as sd

        return sd.for_spec(spec_path, container_id)
    mode, v2, v1 = driver()
    own = read_proc_cgroup()
    paths = {}
    if mode == "v1":
        for name, mnt, ctrls in v1:
            paths[name] = mnt + _inner_path(spec_path, own.get(ctrls), container_id)
    if v2:
        paths[""] = v2 + _inner_path(spec_path, own.get(""), container_id)
    return Cgroups(paths, mode == "v2")
