"""Resource control of a live container through its cgroups: pause, resume, update, events,
ps. The Runtime methods of the same names (container.py) call these.

Texts, exit codes and JSON shapes are runc's, since engines read them.
"""

import os
import time

from sangja.errors import SangjaError, StateError
from sangja.runtime import state as st
from sangja.runtime.cgroups import Cgroups


def _open(rt, cid, shared=False):
    cdir, state = rt._load(cid, shared=shared)
    return cdir, state, st.status_of(state, cdir.fifo), Cgroups.from_json(state["cgroups"])


def pause(rt, cid):
    cdir, state, status, cg = _open(rt, cid)
    with cdir:
        if status not in ("running", "created"):
            raise StateError("container not running")
        cg.freeze()


def resume(rt, cid):
    cdir, state, status, cg = _open(rt, cid)
    with cdir:
        if status != "paused":
            raise StateError("container not paused")
        cg.thaw()


def update(rt, cid, resources):
    """Change the limits of a created, running or paused container (not the device rules:
    as runc, update leaves those)."""
    if not isinstance(resources, dict):
        raise SangjaError("update: the resources must be a JSON object")
    from sangja.runtime.spec import check_strings

    check_strings(resources, "resources", prefix="update: ")  # no NUL, no lone surrogate
    cdir, state, status, cg = _open(rt, cid)
    with cdir:
        if status == "stopped":
            raise StateError("container not running")
        cg.update({k: v for k, v in resources.items() if k != "devices"}, warn=rt._warn)


def ps(rt, cid):
    """The host pids of every process in the container's cgroup (none once stopped)."""
    cdir, state, status, cg = _open(rt, cid, shared=True)
    with cdir:
        return [] if status == "stopped" else cg.pids()


def ps_table(pids, ps_args):
    """`ps ps_args` (default -ef) filtered to `pids`, header kept (runc)."""
    import subprocess

    try:
        p = subprocess.run(["ps", *(ps_args or ["-ef"])], capture_output=True, text=True)
    except OSError as e:
        raise SangjaError(f"ps: {e.strerror}", errno=e.errno)
    if p.returncode != 0:
        raise SangjaError(f"exit status {p.returncode}: {p.stdout}{p.stderr}")
    lines = p.stdout.split("\n")
    header = lines[0].split()
    if "PID" not in header:
        raise SangjaError("couldn't find PID field in ps output")
    col = header.index("PID")
    want = set(pids)
    out = [lines[0]]
    for line in lines[1:]:
        fields = line.split()
        if not fields:
            continue
        try:
            pid = int(fields[col])
        except (ValueError, IndexError):
            raise SangjaError(f"unable to parse pid: {line!r}")
        if pid in want:
            out.append(line)
    return "\n".join(out) + "\n"


def events(rt, cid, interval, stats_only, emit):
    """`events`: one stats event (--stats), or stats every `interval` seconds and an oom
    event whenever the kernel OOM-kills in the container, until its cgroup is removed (v1)
    or left empty (v2). `emit(dict)` writes one event."""
    from sangja.runtime.cgroups import stats

    cdir, state, status, cg = _open(rt, cid, shared=True)
    with cdir:  # not held while we watch: delete must not wait for us
        if status == "stopped":
            raise StateError(f"container with id {cid} is not running")
    if stats_only:
        emit({"type": "stats", "id": cid, "data": cg.stats()})
        return
    import select

    watch = stats.OomWatch(cg)
    try:
        p = select.poll()
        for fd, ev in watch.poll_events():
            p.register(fd, ev)
        if not watch.fds:  # no memory cgroup to watch: end when the cgroup goes
            watch.check = lambda: None if os.path.isdir(cg._procs_dir()) else "gone"
        due = time.monotonic() + interval
        while True:
            left = due - time.monotonic()
            ready = p.poll(max(left, 0) * 1000) if left > 0 else []
            what = watch.check() if ready or left <= 0 else None
            if what == "oom":
                emit({"type": "oom", "id": cid})
            elif what == "gone":
                return
            if time.monotonic() >= due:
                try:
                    data = cg.stats()
                except OSError:
                    return
                emit({"type": "stats", "id": cid, "data": data})
                due += interval
    finally:
        watch.close()


# -- runc's command-line forms ------------------------------------------------------------


_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(text):
    """docker/go-units RAMInBytes: '96m', '1.5G', '512KiB', '100' -> bytes (binary units)."""
    s = text.strip()
    num = s.rstrip("bBiI kKmMgGtTpP")
    rest = s[len(num) :].strip().lower()
    unit = rest[:1] if rest[:1] in "kmgtp" and rest else ""
    tail = rest[len(unit) :]
    try:
        if tail not in ("", "b", "i", "ib") or (tail.startswith("i") and not unit):
            raise ValueError
        value = float(num)
        if value < 0 or not num or not num[0].isdigit():
            raise ValueError
    except ValueError:
        raise SangjaError(f"invalid size: {text!r}")
    return int(value * _UNITS[unit])


_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_duration(text):
    """Go's time.ParseDuration: '5s', '100ms', '1m30s', '1.5h' -> seconds."""
    s = text.strip()
    sign = -1 if s.startswith("-") else 1
    s = s.lstrip("+-")
    if s == "0":
        return 0.0
    total, i = 0.0, 0
    if not s:
        raise ValueError(text)
    while i < len(s):
        j = i
        while j < len(s) and (s[j].isdigit() or s[j] == "."):
            j += 1
        k = j
        while k < len(s) and not (s[k].isdigit() or s[k] == "."):
            k += 1
        num, unit = s[i:j], s[j:k]
        if not num or unit not in _DURATION_UNITS or num == ".":
            raise ValueError(text)
        total += float(num) * _DURATION_UNITS[unit]
        i = k
    return sign * total


# flag -> (section, field, kind): what `runc update --flag V` sets
UPDATE_FLAGS = {
    "blkio_weight": ("blockIO", "weight", "uint"),
    "cpu_period": ("cpu", "period", "uint"),
    "cpu_quota": ("cpu", "quota", "int"),
    "cpu_share": ("cpu", "shares", "uint"),
    "cpu_rt_period": ("cpu", "realtimePeriod", "uint"),
    "cpu_rt_runtime": ("cpu", "realtimeRuntime", "int"),
    "cpuset_cpus": ("cpu", "cpus", "str"),
    "cpuset_mems": ("cpu", "mems", "str"),
    "memory": ("memory", "limit", "size"),
    "memory_reservation": ("memory", "reservation", "size"),
    "memory_swap": ("memory", "swap", "size"),
    "kernel_memory": ("memory", "kernel", "size"),
    "kernel_memory_tcp": ("memory", "kernelTCP", "size"),
    "pids_limit": ("pids", "limit", "int"),
}


def resources_from_flags(opts):
    """runc update's flags (parsed, by canonical name) -> a LinuxResources dict."""
    if opts.get("l3_cache_schema") or opts.get("mem_bw_schema"):
        raise SangjaError("Intel RDT is not supported by sangja")
    res = {}
    for key, (section, field, kind) in UPDATE_FLAGS.items():
        val = opts.get(key)
        if val is None or val == "":
            continue
        flag = key.replace("_", "-")
        try:
            if kind == "str":
                v = val
            elif kind == "size":
                v = -1 if val.strip() == "-1" else parse_size(val)
            else:
                v = int(val)
                if kind == "uint" and v < 0:
                    raise ValueError
        except (ValueError, SangjaError) as e:
            why = str(e) if isinstance(e, SangjaError) else f"invalid syntax: {val!r}"
            raise SangjaError(f"invalid value for {flag}: {why}")
        res.setdefault(section, {})[field] = v
    return res
