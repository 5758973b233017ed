"""What `events` reads: the container's statistics (runc's `types.Stats` JSON, which
containerd decodes) and its OOM kills as they happen.

The JSON follows Go's encoding of runc's structs: the same keys in the same order, `omitempty`
numbers and lists left out when zero, map keys sorted.
"""

import os
import select

from sangja.runtime.cgroups.host import read_value

MAX_UINT64 = (1 << 64) - 1
NS_PER_TICK = 1_000_000_000 // 100  # runc takes USER_HZ as 100


def _uint(path):
    """Go's fscommon.GetCgroupParamUint: 'max' is the largest uint64, a missing file 0."""
    text = read_value(path)
    if text is None:
        return 0
    text = text.strip()
    if text == "max":
        return MAX_UINT64
    try:
        v = int(text)
    except ValueError:
        return 0
    return max(v, 0)


def _int(path, default=0):
    text = read_value(path)
    try:
        return int(text.strip()) if text is not None else default
    except ValueError:
        return default


def _kv_text(text):
    """'key value' lines -> {key: int}."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                pass
    return out


def _kv(path):
    return _kv_text(read_value(path) or "")


def go(fields, always=()):
    """A Go struct as encoding/json writes it, when every field but those in `always` is
    `omitempty`: zero numbers, empty strings and lists are left out."""
    return {k: v for k, v in fields.items() if k in always or v}


def parse_list(text):
    """'0-2,7' -> [0, 1, 2, 7] (cpuset lists)."""
    out = []
    for part in (text or "").strip().split(","):
        if not part:
            continue
        a, _, b = part.partition("-")
        out += range(int(a), int(b or a) + 1)
    return out


def hugepage_sizes():
    """['1GB', '2MB']: the kernel's hugepage sizes as the hugetlb files name them."""
    try:
        names = os.listdir("/sys/kernel/mm/hugepages")
    except OSError:
        return []
    out = []
    for n in names:  # hugepages-2048kB
        kb = int(n.split("-")[1][:-2])
        for unit, size in (("GB", 1 << 20), ("MB", 1 << 10), ("KB", 1)):
            if kb % size == 0:
                out.append(f"{kb // size}{unit}")
                break
    return sorted(out)


def _cpu_usage(total, percpu, pk, pu, kernel, user):
    fields = {"total": total, "percpu": percpu, "percpu_kernel": pk, "percpu_user": pu}
    return go({**fields, "kernel": kernel, "user": user}, always=("kernel", "user"))


def _throttling(periods, throttled, time_ns):
    return go({"periods": periods, "throttledPeriods": throttled, "throttledTime": time_ns})


def _mem_entry(limit=0, usage=0, max_usage=0, failcnt=0):
    fields = {"limit": limit, "usage": usage, "max": max_usage, "failcnt": failcnt}
    return go(fields, always=("limit", "failcnt"))


def _hugetlb_entry(usage, max_usage, failcnt):
    return go({"usage": usage, "max": max_usage, "failcnt": failcnt}, always=("failcnt",))


def _memory(cache=0, usage=None, swap=None, raw=None):
    e = _mem_entry()
    fields = {"cache": cache, "usage": usage or e, "swap": swap or e, "kernel": e}
    return go(
        {**fields, "kernelTCP": e, "raw": raw}, always=("usage", "swap", "kernel", "kernelTCP")
    )


def _pids(current, limit):
    return go({"current": current, "limit": 0 if limit == MAX_UINT64 else limit})


def _blkio_entry(major, minor, op, value):
    return go({"major": major, "minor": minor, "op": op, "value": value})


def _cpuset(d):
    out = {
        "cpus": [],
        "cpu_exclusive": 0,
        "mems": [],
        "mem_hardwall": 0,
        "mem_exclusive": 0,
        "memory_migrate": 0,
        "memory_spread_page": 0,
        "memory_spread_slab": 0,
        "memory_pressure": 0,
        "sched_load_balance": 0,
        "sched_relax_domain_level": 0,
    }
    if d:
        out["cpus"] = parse_list(read_value(f"{d}/cpuset.cpus"))
        out["mems"] = parse_list(read_value(f"{d}/cpuset.mems"))
        for k in out:
            if k not in ("cpus", "mems"):
                out[k] = _int(f"{d}/cpuset.{k}")
    return go(out, always=[k for k in out if k not in ("cpus", "mems")])


def _stats(cpu, cpuset, memory, pids, blkio, hugetlb):
    return {
        "cpu": cpu,
        "cpuset": cpuset,
        "memory": memory,
        "pids": pids,
        "blkio": blkio,
        "hugetlb": hugetlb,
        "intel_rdt": {},
        "network_interfaces": None,
    }


def collect(cg):
    """The `data` of a `{"type":"stats"}` event."""
    return _v2(cg.paths[""]) if cg.unified else _v1(cg)


# -- v1 -------------------------------------------------------------------------------------


def _v1(cg):
    acct, cpu_dir = cg.dir_of("cpuacct"), cg.dir_of("cpu")
    usage = _cpu_usage(0, [], [], [], 0, 0)
    if acct:
        st = _kv(f"{acct}/cpuacct.stat")
        pk, pu = [], []
        for line in (read_value(f"{acct}/cpuacct.usage_all") or "").splitlines()[1:]:
            f = line.split()
            if len(f) == 3:
                pu.append(int(f[1]))
                pk.append(int(f[2]))
        percpu = [int(x) for x in (read_value(f"{acct}/cpuacct.usage_percpu") or "").split()]
        usage = _cpu_usage(
            _uint(f"{acct}/cpuacct.usage"),
            percpu,
            pk,
            pu,
            st.get("system", 0) * NS_PER_TICK,
            st.get("user", 0) * NS_PER_TICK,
        )
    st = _kv(f"{cpu_dir}/cpu.stat") if cpu_dir else {}
    cpu = {
        "usage": usage,
        "throttling": _throttling(
            st.get("nr_periods", 0), st.get("nr_throttled", 0), st.get("throttled_time", 0)
        ),
    }

    memory = _memory()
    mem = cg.dir_of("memory")
    if mem:
        raw = _kv(f"{mem}/memory.stat")
        memory = _memory(raw.get("cache", 0), raw=dict(sorted(raw.items())))
        for key, prefix in (
            ("usage", "memory"),
            ("swap", "memory.memsw"),
            ("kernel", "memory.kmem"),
            ("kernelTCP", "memory.kmem.tcp"),
        ):
            memory[key] = _mem_entry(
                _uint(f"{mem}/{prefix}.limit_in_bytes"),
                _uint(f"{mem}/{prefix}.usage_in_bytes"),
                _uint(f"{mem}/{prefix}.max_usage_in_bytes"),
                _uint(f"{mem}/{prefix}.failcnt"),
            )

    pids = {}
    pd = cg.dir_of("pids")
    if pd:
        limit = _uint(f"{pd}/pids.max")
        pids = _pids(_uint(f"{pd}/pids.current"), limit)

    hugetlb = {}
    hd = cg.dir_of("hugetlb")
    if hd:
        for ps in hugepage_sizes():
            p = f"{hd}/hugetlb.{ps}"
            hugetlb[ps] = _hugetlb_entry(
                _uint(f"{p}.usage_in_bytes"),
                _uint(f"{p}.max_usage_in_bytes"),
                _uint(f"{p}.failcnt"),
            )
    bd = cg.dir_of("blkio")
    return _stats(
        cpu, _cpuset(cg.dir_of("cpuset")), memory, pids, _v1_blkio(bd) if bd else {}, hugetlb
    )


# runc's order: the first group whose first file has entries is the one reported.
_BLKIO_GROUPS = (
    [
        ("blkio.io_service_bytes_recursive", "ioServiceBytesRecursive"),
        ("blkio.io_serviced_recursive", "ioServicedRecursive"),
        ("blkio.io_queued_recursive", "ioQueueRecursive"),
        ("blkio.io_service_time_recursive", "ioServiceTimeRecursive"),
        ("blkio.io_wait_time_recursive", "ioWaitTimeRecursive"),
        ("blkio.io_merged_recursive", "ioMergedRecursive"),
        ("blkio.time_recursive", "ioTimeRecursive"),
        ("blkio.sectors_recursive", "sectorsRecursive"),
    ],
    [
        ("blkio.bfq.sectors_recursive", "sectorsRecursive"),
        ("blkio.bfq.io_service_time_recursive", "ioServiceTimeRecursive"),
        ("blkio.bfq.io_wait_time_recursive", "ioWaitTimeRecursive"),
        ("blkio.bfq.io_merged_recursive", "ioMergedRecursive"),
        ("blkio.bfq.io_queued_recursive", "ioQueueRecursive"),
        ("blkio.bfq.time_recursive", "ioTimeRecursive"),
        ("blkio.bfq.io_serviced_recursive", "ioServicedRecursive"),
        ("blkio.bfq.io_service_bytes_recursive", "ioServiceBytesRecursive"),
    ],
    [
        ("blkio.bfq.io_service_bytes_recursive", "ioServiceBytesRecursive"),
        ("blkio.bfq.io_serviced_recursive", "ioServicedRecursive"),
    ],
    [
        ("blkio.throttle.io_service_bytes_recursive", "ioServiceBytesRecursive"),
        ("blkio.throttle.io_serviced_recursive", "ioServicedRecursive"),
    ],
    [
        ("blkio.throttle.io_service_bytes", "ioServiceBytesRecursive"),
        ("blkio.throttle.io_serviced", "ioServicedRecursive"),
    ],
)
_BLKIO_KEYS = (
    "ioServiceBytesRecursive",
    "ioServicedRecursive",
    "ioQueueRecursive",
    "ioServiceTimeRecursive",
    "ioWaitTimeRecursive",
    "ioMergedRecursive",
    "ioTimeRecursive",
    "sectorsRecursive",
)


def blkio_entries(text):
    """'8:0 Read 4096' / '8:0 4096' lines -> runc's BlkioEntry dicts ('Total' skipped)."""
    out = []
    for line in (text or "").splitlines():
        f = line.replace(":", " ").split()
        if len(f) < 3:
            continue
        out.append(_blkio_entry(int(f[0]), int(f[1]), f[2] if len(f) == 4 else "", int(f[-1])))
    return out


def _v1_blkio(d):
    for group in _BLKIO_GROUPS:
        found = {}
        for i, (f, key) in enumerate(group):
            entries = blkio_entries(read_value(f"{d}/{f}"))
            if not entries and i == 0:
                break
            found[key] = entries
        else:
            return {k: found[k] for k in _BLKIO_KEYS if found.get(k)}
    return {}


# -- v2 -------------------------------------------------------------------------------------


def _v2(d):
    st = _kv(f"{d}/cpu.stat")
    cpu = {
        "usage": _cpu_usage(
            st.get("usage_usec", 0) * 1000,
            [],
            [],
            [],
            st.get("system_usec", 0) * 1000,
            st.get("user_usec", 0) * 1000,
        ),
        "throttling": _throttling(
            st.get("nr_periods", 0), st.get("nr_throttled", 0), st.get("throttled_usec", 0) * 1000
        ),
    }

    memory = _memory()
    if os.path.exists(f"{d}/memory.stat"):
        raw = _kv(f"{d}/memory.stat")
        use = _uint(f"{d}/memory.current")
        limit = _uint(f"{d}/memory.max")
        sw_use = _uint(f"{d}/memory.swap.current")
        sw_limit = _uint(f"{d}/memory.swap.max") if os.path.exists(f"{d}/memory.swap.max") else 0
        # v1 reported swap as memory+swap: runc keeps that shape on v2
        sw_use += use
        if sw_limit != MAX_UINT64:
            sw_limit = min(sw_limit + limit, MAX_UINT64)
        failcnt = _kv(f"{d}/memory.events").get("max", 0)
        memory = _memory(
            raw.get("file", 0),
            _mem_entry(limit, use, _uint(f"{d}/memory.peak"), failcnt),
            _mem_entry(sw_limit, sw_use),
            dict(sorted(raw.items())),
        )

    if os.path.exists(f"{d}/pids.current"):
        current = _uint(f"{d}/pids.current")
    else:  # no pids controller: count the processes
        current = len((read_value(f"{d}/cgroup.procs") or "").split())
    pids = _pids(current, _uint(f"{d}/pids.max"))

    hugetlb = {}
    for ps in hugepage_sizes():
        p = f"{d}/hugetlb.{ps}"
        if os.path.exists(f"{p}.current"):
            failcnt = _kv(f"{p}.events").get("max", 0)
            hugetlb[ps] = _hugetlb_entry(_uint(f"{p}.current"), 0, failcnt)
    return _stats(cpu, _cpuset(None), memory, pids, v2_io(read_value(f"{d}/io.stat")), hugetlb)


def v2_io(text):
    """io.stat ('8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...') -> runc's Blkio dict."""
    sb, sd = [], []
    for line in (text or "").splitlines():
        f = line.split()
        if not f or ":" not in f[0]:
            continue
        major, minor = (int(x) for x in f[0].split(":"))
        kv = dict(x.split("=", 1) for x in f[1:] if "=" in x)
        for key, out, op in (
            ("rbytes", sb, "Read"),
            ("wbytes", sb, "Write"),
            ("rios", sd, "Read"),
            ("wios", sd, "Write"),
        ):
            if key in kv:
                out.append(_blkio_entry(major, minor, op, int(kv[key])))
    return go({"ioServiceBytesRecursive": sb, "ioServicedRecursive": sd})


# -- OOM notifications ------------------------------------------------------------------------


class OomWatch:
    """The container's OOM kills as the kernel reports them: poll `fileno()`, then `check()`
    -> 'oom', 'gone' (the cgroup is removed, or on v2 left empty: nothing more will come)
    or None. v1: an eventfd on memory.oom_control; v2: memory.events and cgroup.events,
    which wake pollers (POLLPRI) when they change."""

    def __init__(self, cg):
        self.cg = cg
        self.fds = []
        self.kind = None
        if cg.unified:
            d = cg.paths[""]
            self.kind = "v2"
            self.events = os.open(f"{d}/cgroup.events", os.O_RDONLY | os.O_CLOEXEC)
            self.fds.append(self.events)
            self.mem = None
            self.kills = 0
            if os.path.exists(f"{d}/memory.events"):
                self.mem = os.open(f"{d}/memory.events", os.O_RDONLY | os.O_CLOEXEC)
                self.fds.append(self.mem)
                self.kills = self._oom_kills()
            self.check()  # consume the "changed since open" state
            return
        mem = cg.dir_of("memory")
        if mem:
            self.kind = "v1"
            self.control = f"{mem}/cgroup.event_control"
            self.efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
            self.fds.append(self.efd)
            ofd = os.open(f"{mem}/memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
            try:
                with open(self.control, "w") as f:
                    f.write(f"{self.efd} {ofd}")
            finally:
                os.close(ofd)

    def poll_events(self):
        return [(fd, select.POLLPRI if self.kind == "v2" else select.POLLIN) for fd in self.fds]

    def _oom_kills(self):
        return _kv_text(os.pread(self.mem, 4096, 0).decode()).get("oom_kill", 0)

    def check(self):
        if self.kind == "v1":
            try:
                os.eventfd_read(self.efd)
            except BlockingIOError:
                return None
            return "oom" if os.path.exists(self.control) else "gone"
        if self.kind == "v2":
            try:
                populated = _kv_text(os.pread(self.events, 4096, 0).decode()).get("populated")
            except OSError:
                return "gone"
            out = None
            if self.mem is not None:
                n = self._oom_kills()
                if n > self.kills:
                    out = "oom"
                self.kills = n
            if out is None and populated == 0:
                return "gone"
            return out
        return None

    def close(self):
        for fd in self.fds:
            os.close(fd)
        self.fds = []
