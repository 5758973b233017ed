"""cgroup v2 (the unified hierarchy): linux.resources -> files of the container's directory.

`writes` is the mapping, with the conversions runc and crun make from the v1-shaped fields
of the spec: cpu.weight from shares, io.weight from the blkio weight, memory.swap.max from
memory+swap, cpu.max from quota and period; `linux.resources.unified` is written last, as
is. Device rules become a BPF program (devices.py) attached to the directory.
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

MAX = "max"


def cpu_weight(shares):
    """cpu.shares (2..262144, default 1024) -> cpu.weight (1..10000, default 100), runc's
    linear map (libcontainer/cgroups.ConvertCPUSharesToCgroupV2Value)."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def io_weight(weight):
    """blkio.weight (10..1000) -> io.weight (1..10000) (ConvertBlkIOToIOWeightValue)."""
    if weight == 0:
        return 0
    return 1 + ((weight - 10) * 9999) // 990


def swap_max(swap, limit):
    """memory+swap (v1's memsw, what the spec holds) -> memory.swap.max (swap alone).
    -> None (leave), -1 (max) or bytes."""
    if limit == -1 and swap == 0:
        return -1  # unlimited memory, swap unset: both unlimited
    if swap in (-1, 0):
        return swap or None
    if limit in (0, -1):
        raise ConfigError("linux.resources.memory.swap: cannot be set without a memory limit")
    return swap - limit


def _num(v):
    return MAX if v < 0 else str(v)


def memory_writes(mem, has, warn):
    out = []
    limit, swap = memory_swap(mem)
    sw = swap_max(swap, limit)
    if sw is not None:
        # swap off or unlimited needs no swap accounting: a missing file is fine then
        out.append(Write("memory.swap", "", "memory.swap.max", _num(sw), optional=sw <= 0))
    if limit:
        out.append(Write("memory.limit", "", "memory.max", _num(limit)))
    if mem.int("reservation"):
        out.append(Write("memory.reservation", "", "memory.low", _num(mem.int("reservation"))))
    for key in ("kernel", "kernelTCP"):
        if mem.int(key):
            warn(f"linux.resources.memory.{key}: no kernel memory limit on cgroup v2, ignored")
    sw_ness = mem.opt_int("swappiness")
    if sw_ness is not None and sw_ness != -1:
        warn("linux.resources.memory.swappiness: no per-cgroup swappiness on cgroup v2, ignored")
    if mem.bool("disableOOMKiller"):
        warn("linux.resources.memory.disableOOMKiller: not available on cgroup v2, ignored")
    return out


def cpu_writes(cpu, warn, current):
    out = []
    idle = cpu.opt_int("idle")
    if idle is not None:
        out.append(Write("cpu.idle", "", "cpu.idle", str(idle)))
    weight = cpu_weight(cpu.int("shares", unsigned=True))
    if weight:
        out.append(Write("cpu.shares", "", "cpu.weight", str(weight)))
    quota, period = cpu_quota_period(cpu)
    if quota or period:
        if not quota:
            # a period alone keeps the quota there is (cpu.max is "QUOTA PERIOD")
            cur = (current("cpu.max") or MAX).split()
            value = f"{cur[0]} {period}"
        else:
            value = _num(quota) + (f" {period}" if period else "")
        out.append(Write("cpu.quota", "", "cpu.max", value))
    if cpu.has("burst"):  # a kernel without cpu.max.burst: skipped
        burst = str(cpu.int("burst", unsigned=True))
        out.append(Write("cpu.burst", "", "cpu.max.burst", burst, optional=True))
    if cpu.int("realtimeRuntime") or cpu.int("realtimePeriod"):
        raise ConfigError(
            "linux.resources.cpu.realtimeRuntime/realtimePeriod: "
            "cgroup v2 has no realtime cpu limits"
        )
    return out + cpuset_writes(cpu, "")


IO_MAX = (
    ("throttleReadBpsDevice", "rbps"),
    ("throttleWriteBpsDevice", "wbps"),
    ("throttleReadIOPSDevice", "riops"),
    ("throttleWriteIOPSDevice", "wiops"),
)


def io_writes(bio, has, warn):
    out = []
    bfq = has("io.bfq.weight")
    weight = bio.int("weight", unsigned=True)
    if weight:
        if bfq:  # BFQ takes the v1 range (1..1000) as it is
            out.append(Write("blockIO.weight", "", "io.bfq.weight", str(weight)))
        else:
            out.append(Write("blockIO.weight", "", "io.weight", str(io_weight(weight))))
    for wd in bio.list("weightDevice"):
        w = wd.int("weight", unsigned=True)
        if w:
            f, v = ("io.bfq.weight", w) if bfq else ("io.weight", io_weight(w))
            out.append(Write("blockIO.weightDevice", "", f, f"{device_numbers(wd)} {v}"))
    if bio.int("leafWeight") or any(wd.int("leafWeight") for wd in bio.list("weightDevice")):
        warn("linux.resources.blockIO.leafWeight: no leaf weight on cgroup v2, ignored")
    for key, name in IO_MAX:
        for td in bio.list(key):
            line = f"{device_numbers(td)} {name}={td.int('rate', unsigned=True)}"
            out.append(Write(f"blockIO.{key}", "", "io.max", line))
    return out


def writes(resources, has=lambda f: True, current=lambda f: None, warn=lambda msg: None):
    """linux.resources (a dict, or None) -> [Write] for the container's v2 directory.
    `has(file)`: does it exist; `current(file)`: its content (None: unknown)."""
    res = Fields(resources, "linux.resources")
    out = cpu_writes(res.sub("cpu"), warn, current)
    out += memory_writes(res.sub("memory"), has, warn)
    limit = res.sub("pids").int("limit")
    if limit:
        out.append(Write("pids.limit", "", "pids.max", _num(limit)))
    out += io_writes(res.sub("blockIO"), has, warn)
    for h in res.list("hugepageLimits"):
        ps = page_size(h)
        lim = str(h.int("limit", unsigned=True))
        out.append(Write("hugepageLimits", "", f"hugetlb.{ps}.max", lim))
        if has(f"hugetlb.{ps}.rsvd.max"):
            out.append(Write("hugepageLimits", "", f"hugetlb.{ps}.rsvd.max", lim))
    for line in rdma_lines(res):
        out.append(Write("rdma", "", "rdma.max", line))
    net = res.sub("network")
    if net.int("classID") or net.list("priorities"):
        warn("linux.resources.network: net_cls and net_prio do not exist on cgroup v2, ignored")
    for key, value in res.dict("unified").items():
        if not isinstance(value, str):
            raise ConfigError(f"linux.resources.unified.{key} must be a string")
        if "/" in key or key in ("", ".", ".."):
            raise ConfigError(f"linux.resources.unified: {key!r} must be a file name")
        if "." not in key:
            raise ConfigError(f"linux.resources.unified: {key!r} must be CONTROLLER.PARAMETER")
        out.append(Write(f"unified.{key}", "", key, value))
    return out


# -- applying -------------------------------------------------------------------------------


def enable_controllers(path, mount):
    """Enable, in every ancestor of `path` below and including `mount`, the controllers
    it has (runc: all of them), so that the container's directory gets their files. A
    level that refuses (processes of its own, a controller busy) is left as it is."""
    rel = os.path.relpath(os.path.dirname(path), mount)
    d = mount
    for part in [] if rel == "." else rel.split("/"):
        _enable_in(d)
        d = f"{d}/{part}"
    _enable_in(d)


def _enable_in(d):
    have = set((read_value(f"{d}/cgroup.controllers") or "").split())
    missing = have - set((read_value(f"{d}/cgroup.subtree_control") or "").split())
    if not missing:
        return
    try:
        write_value(f"{d}/cgroup.subtree_control", " ".join(f"+{c}" for c in sorted(missing)))
    except OSError:
        for c in sorted(missing):  # one by one: take what can be had
            try:
                write_value(f"{d}/cgroup.subtree_control", f"+{c}")
            except OSError:
                pass


def apply(cg, resources, rules=None, update=False, warn=lambda msg: None):
    """Write `resources` (and at create the device `rules`) into cg's v2 directory."""
    path = cg.paths[""]
    has = lambda f: os.path.exists(f"{path}/{f}")  # noqa: E731
    ws = writes(resources, has, lambda f: read_value(f"{path}/{f}"), warn)
    mem = Fields(resources, "linux.resources").sub("memory")
    if update and mem.bool("checkBeforeUpdate"):
        check_memory(path, mem)
    for w in ws:
        p = f"{path}/{w.file}"
        try:
            write_value(p, w.value)
        except OSError as e:
            if w.optional and e.errno == errno.ENOENT:
                continue
            raise _error(path, w, p, e)
    if rules is not None:
        attach_devices(path, rules)


def check_memory(path, mem):
    """checkBeforeUpdate: refuse a limit below what the container uses now."""
    limit, swap = memory_swap(mem)
    used = read_value(f"{path}/memory.current")
    if limit > 0 and used is not None and int(used) > limit:
        raise SangjaError(f"rejecting memory limit {limit} below current usage {used}")
    sw = swap_max(swap, limit)
    sw_used = read_value(f"{path}/memory.swap.current")
    if sw and sw > 0 and sw_used is not None and int(sw_used) > sw:
        raise SangjaError(f"rejecting swap limit {sw} below current usage {sw_used}")


def _error(path, w, p, e):
    if e.errno in (errno.ENOENT, errno.EACCES, errno.EPERM) and "." in w.file:
        ctrl = w.file.split(".", 1)[0]
        have = set((read_value(f"{path}/cgroup.controllers") or "").split())
        if ctrl not in have and ctrl != "cgroup":
            return SangjaError(
                f"linux.resources.{w.field}: cannot set {w.file}: the {ctrl} "
                f"controller is not available in {path}",
                errno=e.errno,
                path=p,
            )
    return SangjaError(
        f"linux.resources.{w.field}: write {w.value!r} to {p}: {e.strerror}", errno=e.errno, path=p
    )


def attach_devices(path, rules):
    """The device rules as a BPF program on the directory (none when they allow all)."""
    insns, allow_all = devices.program(rules)
    if allow_all:
        return
    from sangja._native import cgroup as native

    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        native.attach_device_program(fd, insns)
    except OSError as e:
        raise SangjaError(
            f"linux.resources.devices: attach the device program to {path}: {e.strerror}",
            errno=e.errno,
            path=path,
        )
    finally:
        os.close(fd)
