"""The systemd cgroup driver (`--systemd-cgroup`): cgroupsPath is `slice:prefix:name`, the
container's cgroup a transient scope `prefix-name.scope` in that slice, made by systemd.

How a container gets its cgroups, as runc does it:
- systemd makes the scope: StartTransientUnit with the init's pid (a scope cannot start
  empty), Delegate=yes, accounting on, and the limits systemd knows as unit properties, so
  that a `systemctl daemon-reload` re-applies the container's limits instead of systemd's
  defaults. The init waits (before any container code) until the scope is there.
- The v1 hierarchies systemd does not manage (cpuset, freezer, net_cls, perf_event, ...)
  get a directory of ours at the same place, made before the init starts, joined by it.
- Then every limit is written to the files as the cgroupfs drivers write them: systemd
  knows only some of them (swap, swappiness, kernel memory, devices in order... it does not).
- delete: StopUnit (the scope goes with its cgroups), then our own directories.
The manager is reached over D-Bus (sdbus.py).
"""

import os

from sangja.errors import ConfigError, SangjaError
from sangja.runtime.cgroups.host import cgroup_mounts, read_proc_cgroup, unified_only
from sangja.runtime.cgroups.manager import V1, Manager, cgroupfs

RUNNING_MARK = "/run/systemd/system"
INFINITY = 2**64 - 1  # systemd's "no limit" for uint64 properties
# The v1 controllers systemd moves a unit's processes into (with Delegate=yes, every one
# it supports); the other hierarchies are ours to make and join.
SYSTEMD_V1 = {"cpu", "cpuacct", "blkio", "memory", "devices", "pids", "name=systemd"}


def is_running():
    return os.path.isdir(RUNNING_MARK)


def parse_path(cgroups_path, container_id):
    """-> (slice, prefix, name): runc's defaults when cgroupsPath is empty."""
    if not cgroups_path:
        return "system.slice", "runc", container_id
    parts = cgroups_path.split(":")
    if len(parts) != 3:
        raise ConfigError(
            'expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, '
            f"got {cgroups_path!r} instead"
        )
    return parts[0] or "system.slice", parts[1], parts[2]


def unit_name(prefix, name):
    """The unit systemd makes: a scope, unless the name is a slice itself."""
    if name.endswith(".slice"):
        return name
    return f"{prefix}-{name}.scope" if prefix else f"{name}.scope"


def expand_slice(slice_name):
    """'a-b-c.slice' -> '/a.slice/a-b.slice/a-b-c.slice' (systemd's nesting by dashes)."""
    if not slice_name.endswith(".slice") or "/" in slice_name:
        raise ConfigError(f"invalid slice name {slice_name!r}")
    base = slice_name[: -len(".slice")]
    if base == "-":
        return "/"
    if not base or base.startswith("-") or base.endswith("-") or "--" in base:
        raise ConfigError(f"invalid slice name {slice_name!r}")
    path, prefix = "", ""
    for part in base.split("-"):
        prefix = f"{prefix}-{part}" if prefix else part
        path += f"/{prefix}.slice"
    return path


def systemd_root():
    """Where systemd's tree starts: its own cgroup (/proc/1/cgroup) without init.scope, in
    the hierarchy it tracks units by (name=systemd on v1 and hybrid hosts, else the unified
    one). '/' on a host; not '/' when systemd runs in a container without a cgroup
    namespace. One root for every hierarchy, as systemd lays a unit out at the same path in
    each: its own place in a v1 controller's hierarchy can differ (systemd moves itself to
    the top of a controller it does not use for init.scope)."""
    own = read_proc_cgroup(1)
    path = own.get("name=systemd", own.get("", "/"))
    if path.endswith("/init.scope"):
        path = path[: -len("/init.scope")]
    return path.rstrip("/")


def for_spec(cgroups_path, container_id):
    slice_name, prefix, name = parse_path(cgroups_path, container_id)
    inner = expand_slice(slice_name).rstrip("/")
    unit = unit_name(prefix, name)
    if unit.endswith(".slice"):
        raise ConfigError(
            f"cgroupsPath {cgroups_path!r}: a slice as the container's own unit is not "
            "supported by sangja; name a scope (slice:prefix:name without .slice)"
        )
    if not is_running():
        raise SangjaError(f"systemd cgroup driver: systemd is not running (no {RUNNING_MARK})")
    v1, v2 = cgroup_mounts()
    unified = unified_only(v1, v2)
    base = systemd_root()
    paths, own = {}, []
    if not unified:
        for hname, mnt, ctrls in v1:
            paths[hname] = f"{mnt}{base}{inner}/{unit}"
            if not set(ctrls.split(",")) & SYSTEMD_V1:
                own.append(hname)
    if v2 is not None:
        paths[""] = f"{v2}{base}{inner}/{unit}"
    return Systemd(paths, unified, slice_name, unit, own)


class Systemd(Manager):
    """A manager whose directories systemd makes (all but the `own` hierarchies); the
    limits go into the files as the cgroupfs driver of the same version writes them."""

    def __init__(self, paths, unified, slice_name, unit, own):
        super().__init__(paths)
        self.unified = unified
        self.fs = cgroupfs(unified, paths)
        self.slice = slice_name
        self.unit = unit
        self.own = own
        self._resources = self._rules = None
        self._properties = []
        self._warn = lambda msg: None
        self.foreign = False  # the unit turned out to be someone else's: never touch it

    def to_json(self):
        d = super().to_json()
        d["systemd"] = {"slice": self.slice, "unit": self.unit, "own": self.own}
        return d

    @classmethod
    def from_json(cls, d):
        sd = d["systemd"]
        return cls(d["paths"], d["unified"], sd["slice"], sd["unit"], sd["own"])

    def layout(self):
        """The init joins only our own v1 directories itself; systemd moves it into the
        rest (see started)."""
        return {**super().layout(), "clone_into": None, "join": [self.paths[n] for n in self.own]}

    # -- create: our directories first, the scope once the init exists ------------------
    def create(self):
        V1({n: self.paths[n] for n in self.own}).create()

    def apply(self, linux, warn=lambda msg: None):
        # Checked now (a bad config fails before anything runs), written in started().
        from sangja.runtime.cgroups import devices

        self._resources = linux.get("resources")
        self._rules = devices.rules(linux)
        self._properties = properties(self._resources, self._rules, self.unified, warn)
        self._warn = warn

    def started(self, pid):
        """The init exists and waits: ask systemd for the scope with it, then write the
        limits into every directory."""
        from sangja.runtime.cgroups import sdbus

        props = [
            ("Description", ("s", f"sangja container {self.unit}")),
            ("Slice", ("s", self.slice)),
            ("Delegate", ("b", True)),
            ("PIDs", ("au", [pid])),
            ("DefaultDependencies", ("b", False)),
            ("MemoryAccounting", ("b", True)),
            ("CPUAccounting", ("b", True)),
            ("IOAccounting" if self.unified else "BlockIOAccounting", ("b", True)),
            ("TasksAccounting", ("b", True)),
        ] + self._properties
        with sdbus.Manager() as m:
            try:
                m.start_transient_unit(self.unit, props)
            except sdbus.DBusError as e:
                if e.name != "org.freedesktop.systemd1.UnitExists":
                    raise
                # A scope left failed by a crash goes with ResetFailedUnit (runc's retry);
                # a live one is another container's.
                try:
                    m.call("ResetFailedUnit", "s", (self.unit,))
                    m.start_transient_unit(self.unit, props)
                except sdbus.DBusError:
                    self.foreign = True
                    raise SangjaError(
                        f"systemd: unit {self.unit} already exists (another container has "
                        "this cgroupsPath)"
                    )
        # A hierarchy systemd left alone (a controller it does not enable) is ours too.
        for name, path in self.paths.items():
            if name not in self.own and not os.path.isdir(path):
                cgroupfs(self.unified and name == "", {name: path}).create()
                self.own.append(name)
                self.add(pid, [path])
        self.fs.write_limits(self._resources, self._rules, False, self._warn)

    def write_limits(self, resources, rules, update, warn):
        self.fs.write_limits(resources, rules, update, warn)

    def update(self, resources, warn=lambda msg: None):
        from sangja.runtime.cgroups import sdbus

        props = properties(resources, None, self.unified, warn)
        if props:
            with sdbus.Manager() as m:
                m.set_unit_properties(self.unit, props)
        super().update(resources, warn)

    # -- delete --------------------------------------------------------------------------
    def destroy(self, timeout=5.0):
        """Stop the scope (systemd removes its cgroups), then remove ours."""
        import _signal as signal

        from sangja.runtime.cgroups import sdbus

        if self.foreign:  # our own directories only, and only if nobody is in them
            for name in self.own:
                try:
                    os.rmdir(self.paths[name])
                except OSError:
                    pass
            return
        if self.pids():  # stopping a scope would only SIGTERM what is left
            if self.frozen():
                self.thaw()
            self.signal_all(signal.SIGKILL)
        try:
            with sdbus.Manager() as m:
                m.stop_unit(self.unit)
        except SangjaError:
            if is_running():
                raise
            # systemd went away: nobody owns the directories any more
        Manager.destroy(self, timeout)


# -- linux.resources -> unit properties --------------------------------------------------
def properties(resources, rules, unified, warn=lambda msg: None):
    """The limits systemd itself knows, as [(name, (signature, value))], with runc's
    conversions. `rules`: the device rules (None: leave the unit's as they are)."""
    from sangja.runtime.cgroups import v2
    from sangja.runtime.cgroups.resources import Fields, cpu_quota_period

    res = Fields(resources, "linux.resources")
    out = []

    def t(name, value):
        out.append((name, ("t", value)))

    mem = res.sub("memory")
    limit = mem.int("limit")
    if limit:
        t("MemoryMax" if unified else "MemoryLimit", INFINITY if limit < 0 else limit)
    cpu = res.sub("cpu")
    shares = cpu.int("shares", unsigned=True)
    if shares:
        if unified:
            t("CPUWeight", v2.cpu_weight(shares))
        else:
            t("CPUShares", shares)
    quota, period = cpu_quota_period(cpu)
    if period:
        t("CPUQuotaPeriodUSec", period)
    if quota or period:
        # systemd keeps the quota per second in 1% steps: round up, so the cgroup file
        # (written exactly afterwards) is never above what systemd would set.
        per_sec = INFINITY
        if quota > 0:
            per_sec = quota * 1_000_000 // (period or 100_000)
            if per_sec % 10_000:
                per_sec = (per_sec // 10_000 + 1) * 10_000
        t("CPUQuotaPerSecUSec", per_sec)
    if unified:
        for key, prop in (("cpus", "AllowedCPUs"), ("mems", "AllowedMemoryNodes")):
            if cpu.str(key):
                out.append((prop, ("ay", cpu_mask(cpu.str(key), f"{cpu.where}.{key}"))))
    pids = res.sub("pids").int("limit")
    if pids:
        t("TasksMax", INFINITY if pids < 0 else pids)
    weight = res.sub("blockIO").int("weight", unsigned=True)
    if weight:
        if unified:
            t("IOWeight", v2.io_weight(weight))
        else:
            t("BlockIOWeight", weight)
    if rules is not None:
        out += device_properties(rules, warn)
    return out


def cpu_mask(text, where):
    """'0-2,5' -> the little-endian bit mask systemd's AllowedCPUs takes."""
    bits = 0
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            for n in range(int(lo), int(hi or lo) + 1):
                bits |= 1 << n
    except ValueError:
        raise ConfigError(f"{where}: not a cpu list: {text!r}")
    return bits.to_bytes((bits.bit_length() + 7) // 8 or 1, "little")


def device_properties(rules, warn=lambda msg: None):
    """The device rules as DevicePolicy + DeviceAllow (systemd holds allow lists only)."""
    from sangja.runtime.cgroups import devices

    default_allow, exceptions = devices.reduce(rules)
    if default_allow:
        if not exceptions:
            return [("DevicePolicy", ("s", "auto")), ("DeviceAllow", ("a(ss)", []))]
        # runc's choice: systemd's copy denies everything; the files hold the real rules.
        warn("systemd cannot hold deny rules on an allow-all default: its copy of the "
             "device rules denies every device")  # fmt: skip
        return [("DevicePolicy", ("s", "strict")), ("DeviceAllow", ("a(ss)", []))]
    allow = []
    for r in exceptions:
        kind = "char" if r.type == "c" else "block"
        if r.major == devices.WILDCARD:
            if r.minor != devices.WILDCARD:
                warn(f"systemd cannot hold the device rule '{r.line()}': left to the files")
                continue
            node = f"{kind}-*"
        elif r.minor == devices.WILDCARD:
            node = f"{kind}-{r.major}"
        else:
            node = f"/dev/{kind}/{r.major}:{r.minor}"
        allow.append((node, r.access))
    return [("DevicePolicy", ("s", "strict")), ("DeviceAllow", ("a(ss)", allow))]
