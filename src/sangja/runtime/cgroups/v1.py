"""cgroup v1 (cgroupfs, one hierarchy per controller): linux.resources -> controller files.

`writes` is the mapping (what runc's libcontainer/cgroups/fs writes, in its order); `apply`
performs it on a container's directories. Zero values are "unset" and write nothing.
"""

import errno
import os

from sangja.errors import ConfigError, SangjaError
from sangja.runtime.cgroups import devices
from sangja.runtime.cgroups.host import read_value, write_value
from sangja.runtime.cgroups.resources import (
    Fields,
    Write,
    cpu_quota_period,
    cpuset_writes,
    device_numbers,
    memory_swap,
    page_size,
    rdma_lines,
)

UNLIMITED = "-1"


def _num(v):
    return UNLIMITED if v < 0 else str(v)


def _writer(section, controller, out):
    """-> add(field, file, value, optional=False): one Write of `controller` into `out`."""

    def add(field, file, value, optional=False):
        out.append(Write(f"{section}.{field}", controller, file, value, optional))

    return add


def memory_writes(mem, has, current):
    out = []
    add = _writer("memory", "memory", out)
    limit, swap = memory_swap(mem)
    if limit == -1 and swap == 0 and has("memory", "memory.memsw.limit_in_bytes"):
        swap = -1  # unlimited memory, swap unset: both unlimited (runc)
    order = [
        ("limit", "memory.limit_in_bytes", limit),
        ("swap", "memory.memsw.limit_in_bytes", swap),
    ]
    if limit and swap:
        # memsw must stay >= memory at every step: raise memsw first when it grows
        cur = current("memory", "memory.limit_in_bytes")
        if swap == -1 or (cur is not None and int(cur) < swap):
            order.reverse()
    for field, file, v in order:
        if v:
            add(field, file, _num(v))
    if mem.int("kernel"):  # a kernel without it (or refusing it): skipped, as runc ignores it
        add("kernel", "memory.kmem.limit_in_bytes", _num(mem.int("kernel")), optional=True)
    if mem.int("kernelTCP"):
        add("kernelTCP", "memory.kmem.tcp.limit_in_bytes", _num(mem.int("kernelTCP")))
    if mem.int("reservation"):
        add("reservation", "memory.soft_limit_in_bytes", _num(mem.int("reservation")))
    if mem.bool("disableOOMKiller"):
        add("disableOOMKiller", "memory.oom_control", "1")
    swappiness = mem.opt_int("swappiness")
    if swappiness is not None and swappiness != -1:
        if not 0 <= swappiness <= 100:
            raise ConfigError(f"{mem.where}.swappiness must be 0 to 100, got {swappiness}")
        add("swappiness", "memory.swappiness", str(swappiness))
    hier = mem.bool("useHierarchy")
    if hier is not None:
        add("useHierarchy", "memory.use_hierarchy", "1" if hier else "0")
    return out


def cpu_writes(cpu):
    out = []
    add = _writer("cpu", "cpu", out)
    if cpu.int("shares"):
        add("shares", "cpu.shares", str(cpu.int("shares", unsigned=True)))
    quota, period = cpu_quota_period(cpu)
    # A period (or burst) the kernel refuses against the old quota is tried again after the
    # new quota (runc; see apply). A kernel without cpu.cfs_burst_us skips the burst.
    if period:
        add("period", "cpu.cfs_period_us", str(period))
    if cpu.has("burst"):
        add("burst", "cpu.cfs_burst_us", str(cpu.int("burst", unsigned=True)), optional=True)
    if quota:
        add("quota", "cpu.cfs_quota_us", str(quota))
    idle = cpu.opt_int("idle")
    if idle is not None:
        add("idle", "cpu.idle", str(idle))
    if cpu.int("realtimePeriod"):
        add("realtimePeriod", "cpu.rt_period_us", str(cpu.int("realtimePeriod", unsigned=True)))
    if cpu.int("realtimeRuntime"):
        add("realtimeRuntime", "cpu.rt_runtime_us", str(cpu.int("realtimeRuntime")))
    return out


THROTTLE = (
    ("throttleReadBpsDevice", "read_bps"),
    ("throttleWriteBpsDevice", "write_bps"),
    ("throttleReadIOPSDevice", "read_iops"),
    ("throttleWriteIOPSDevice", "write_iops"),
)


def blkio_writes(bio, has):
    out = []
    add = _writer("blockIO", "blkio", out)
    # CFQ's files, or BFQ's when that is the scheduler (no blkio.weight then)
    bfq = not has("blkio", "blkio.weight") and has("blkio", "blkio.bfq.weight")
    weight_file = "blkio.bfq.weight" if bfq else "blkio.weight"
    if bio.int("weight"):
        add("weight", weight_file, str(bio.int("weight", unsigned=True)))
    if bio.int("leafWeight"):
        add("leafWeight", "blkio.leaf_weight", str(bio.int("leafWeight", unsigned=True)))
    for wd in bio.list("weightDevice"):
        dev = device_numbers(wd)
        if wd.int("weight"):
            add("weightDevice", weight_file + "_device", f"{dev} {wd.int('weight', unsigned=True)}")
        if wd.int("leafWeight"):
            leaf = wd.int("leafWeight", unsigned=True)
            add("weightDevice", "blkio.leaf_weight_device", f"{dev} {leaf}")
    for key, f in THROTTLE:
        for td in bio.list(key):
            rate = td.int("rate", unsigned=True)
            add(key, f"blkio.throttle.{f}_device", f"{device_numbers(td)} {rate}")
    return out


def writes(resources, has=lambda ctrl, f: True, current=lambda ctrl, f: None):
    """linux.resources (a dict, or None) -> [Write], in order. `has(ctrl, file)` tells
    whether a file exists, `current(ctrl, file)` reads one (None: unknown)."""
    res = Fields(resources, "linux.resources")
    if res.dict("unified"):
        raise ConfigError("linux.resources.unified: cannot be used with cgroup v1 (this host)")
    out = cpuset_writes(res.sub("cpu"), "cpuset")  # runc's order of controllers
    out += memory_writes(res.sub("memory"), has, current)
    out += cpu_writes(res.sub("cpu"))
    limit = res.sub("pids").int("limit")
    if limit:
        out.append(Write("pids.limit", "pids", "pids.max", "max" if limit < 0 else str(limit)))
    out += blkio_writes(res.sub("blockIO"), has)
    add = _writer("hugepageLimits", "hugetlb", out)
    for h in res.list("hugepageLimits"):
        ps, lim = page_size(h), str(h.int("limit", unsigned=True))
        add("limit", f"hugetlb.{ps}.limit_in_bytes", lim)
        if has("hugetlb", f"hugetlb.{ps}.rsvd.limit_in_bytes"):
            add("limit", f"hugetlb.{ps}.rsvd.limit_in_bytes", lim)
    net = res.sub("network")
    if net.int("classID"):
        classid = str(net.int("classID", unsigned=True))
        out.append(Write("network.classID", "net_cls", "net_cls.classid", classid))
    for p in net.list("priorities"):
        line = f"{p.str('name')} {p.int('priority', unsigned=True)}"
        out.append(Write("network.priorities", "net_prio", "net_prio.ifpriomap", line))
    for line in rdma_lines(res):
        out.append(Write("rdma", "rdma", "rdma.max", line))
    return out


# -- applying -------------------------------------------------------------------------------


def apply(cg, resources, rules=None, update=False):
    """Write `resources` (and, at create, the device `rules`) into cg's v1 directories."""

    def has(ctrl, f):
        d = cg.dir_of(ctrl)
        return d is not None and os.path.exists(f"{d}/{f}")

    def current(ctrl, f):
        d = cg.dir_of(ctrl)
        return None if d is None else read_value(f"{d}/{f}")

    ws = writes(resources, has, current)
    res = Fields(resources, "linux.resources")
    mem = res.sub("memory")
    if update and mem.bool("checkBeforeUpdate") and mem.int("limit") > 0:
        used = current("memory", "memory.usage_in_bytes")
        if used is not None and int(used) > mem.int("limit"):
            raise SangjaError(
                f"unable to set memory limit to {mem.int('limit')} (current usage: {used})"
            )
    retry = []
    for w in ws:
        d = cg.dir_of(w.controller)
        if d is None:
            raise SangjaError(
                f"linux.resources.{w.field}: the {w.controller} cgroup controller "
                "is not mounted on this host"
            )
        path = f"{d}/{w.file}"
        try:
            write_value(path, w.value)
        except OSError as e:
            if w.optional and e.errno == errno.ENOENT:
                continue
            if w.file in ("cpu.cfs_period_us", "cpu.cfs_burst_us") and e.errno == errno.EINVAL:
                retry.append(w)  # after the quota (runc)
                continue
            raise _error(w, path, e, current)
        if w.file == "cpu.shares":
            _check_shares(w, path)
    for w in retry:
        path = f"{cg.dir_of(w.controller)}/{w.file}"
        try:
            write_value(path, w.value)
        except OSError as e:
            raise _error(w, path, e, current)
    if rules is not None and cg.dir_of("devices"):
        devices.apply_v1(cg.dir_of("devices"), rules)


def _check_shares(w, path):
    got = read_value(path)
    if got is not None and got != w.value:
        which = "maximum" if int(w.value) > int(got) else "minimum"
        raise SangjaError(f"linux.resources.cpu.shares: the {which} allowed cpu-shares is {got}")


def _error(w, path, e, current):
    msg = f"linux.resources.{w.field}: write {w.value!r} to {path}: {e.strerror}"
    if w.file == "memory.limit_in_bytes" and e.errno == errno.EBUSY:
        msg += (
            f" (current usage: {current('memory', 'memory.usage_in_bytes')}, "
            f"peak usage: {current('memory', 'memory.max_usage_in_bytes')})"
        )
    return SangjaError(msg, errno=e.errno, path=path)
