"""The cgroup manager: the one interface every driver gives the runtime (crun's
libcrun_cgroup_manager, youki's CgroupManager), what every driver does the same way, and the
two cgroupfs drivers, whose directories the runtime makes itself.

A manager holds the container's cgroup directories: {hierarchy name: absolute host path},
where the name is the v1 mount's ('cpu', 'cpu,cpuacct', 'systemd') and '' the unified
hierarchy, and `unified` says whether the limits are cgroup v2's. What it does, in the order
of a container's life:
- `layout()`: where the init goes, as plain data for the launch plan (cloned into the unified
  cgroup, joining each v1 hierarchy itself);
- `create()`, `apply(linux)`: make the directories and write the limits before the init
  exists; `started(pid)`: the init exists and waits; `add(pid, paths)`: move a process in;
- `update(resources)`, `freeze()`, `thaw()`, `pids()`, `signal_all(sig)`, `stats()`;
- `destroy()`: remove the directories, killing what is left in them;
- `to_json()`: the record state.json keeps; cgroups.load() makes the manager again from it.
"""

import _signal as signal  # the C module: `signal` pulls in enum
import errno
import os
import time

from sangja.errors import ConfigError, SangjaError
from sangja.runtime.cgroups.host import fill_cpuset, read_value, rmdir_tree, write_value


class Manager:
    """What every driver does the same way; a driver says how limits are written."""

    unified = False

    def __init__(self, paths):
        self.paths = paths

    @property
    def unified_path(self):
        return self.paths[""]

    def v1_mounts(self):
        return sorted((n, p) for n, p in self.paths.items() if n)

    def to_json(self):
        return {"paths": self.paths, "unified": self.unified}

    def layout(self):
        """Where the init goes, for the launch plan: the paths, the unified cgroup it is
        cloned into (CLONE_INTO_CGROUP) or None, the v1 directories it joins."""
        return {
            "paths": self.paths,
            "unified": self.unified,
            "clone_into": self.paths.get(""),
            "join": [p for n, p in self.paths.items() if n],
        }

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
                from sangja.runtime.cgroups.host import mount_of

                v2.enable_controllers(path, mount_of(path))
            try:
                os.makedirs(path, exist_ok=True)
            except OSError as e:
                raise SangjaError(f"cgroup mkdir {path}: {e.strerror}", errno=e.errno, path=path)
            if "cpuset" in name.split(","):  # v1 only: an empty v2 cpuset inherits
                fill_cpuset(path)

    def apply(self, linux, warn=lambda msg: None):
        """At create, before the init exists: every limit of `linux.resources`, and the
        device rules."""
        from sangja.runtime.cgroups import devices

        rules = devices.rules(linux)
        self.write_limits(linux.get("resources"), rules, False, warn)

    def update(self, resources, warn=lambda msg: None):
        """`update`: change the limits of a live container (never the device rules)."""
        self.write_limits(resources, None, True, warn)

    def write_limits(self, resources, rules, update, warn):
        """Write `resources` (and the device `rules`, unless None) into the files."""
        raise NotImplementedError

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
    def procs_dir(self):
        """The directory whose cgroup.procs lists the container's processes."""
        if "" in self.paths:
            return self.paths[""]
        for name in ("pids", "freezer", "memory", "cpu"):
            d = self.dir_of(name)
            if d:
                return d
        return next(iter(self.paths.values()))

    def exists(self):
        """Is the container's cgroup still there?"""
        return os.path.isdir(self.procs_dir())

    def pids(self):
        """Every process in the container's cgroup and the cgroups below it."""
        out = []
        stack = [self.procs_dir()]
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
                    rmdir_tree(path)
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


class V1(Manager):
    """cgroupfs v1: one hierarchy per controller (limits: v1.py). On a hybrid host (v1
    controllers and a cgroup2 mount without them) the container also gets a directory in
    the unified hierarchy, as runc gives it: there it is cloned straight into, and
    `kill --all` uses its cgroup.kill."""

    def write_limits(self, resources, rules, update, warn):
        if isinstance(resources, dict) and resources.keys() - {"devices"}:
            from sangja.runtime.cgroups import v1

            v1.apply(self, resources, rules, update=update)
        elif rules is not None and self.dir_of("devices"):  # runc's default spec: devices only
            from sangja.runtime.cgroups import devices

            devices.apply_v1(self.dir_of("devices"), rules)


class V2(Manager):
    """cgroupfs v2: the unified hierarchy (limits: v2.py, devices as a BPF program)."""

    unified = True

    def write_limits(self, resources, rules, update, warn):
        from sangja.runtime.cgroups import v2

        v2.apply(self, resources, rules, update=update, warn=warn)


def cgroupfs(unified, paths):
    """The cgroupfs manager of these directories."""
    return V2(paths) if unified else V1(paths)


def inner_path(spec_path, own, container_id):
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
