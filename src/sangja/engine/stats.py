"""`stats` and `top`: a running container's resource use and processes, in the Docker
Engine API's shapes (ContainerStats, ContainerTop), from the runtime's cgroup statistics
(runc's `events --stats` data) and the host's `ps`."""

from __future__ import annotations

import os
import time

from sangja.engine.errors import EngineError, NotRunning
from sangja.engine.units import rfc3339_nano
from sangja.errors import SangjaError

_TICK_NS = 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def system_cpu_usage() -> int:
    """All CPUs' time since boot, in ns (/proc/stat's first line), as Docker reads it."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:8]
    return sum(int(x) for x in fields) * _TICK_NS


def host_memory() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def sample(containers, rec) -> dict:
    """One ContainerStats sample (without `precpu_stats`)."""
    if rec.state not in ("running", "paused"):
        raise NotRunning(f"Container {rec.id} is not running")
    got = []
    try:
        containers.rt.events(rec.id, stats_only=True, emit=got.append)
    except SangjaError as e:
        raise NotRunning(f"Container {rec.id} is not running ({e})")
    data = got[0]["data"] if got else {}
    cpu = data.get("cpu") or {}
    usage = cpu.get("usage") or {}
    thr = cpu.get("throttling") or {}
    mem = data.get("memory") or {}
    mu = mem.get("usage") or {}
    limit = mu.get("limit") or 0
    hostmem = host_memory()
    if not limit or limit >= hostmem or limit >= 1 << 62:
        limit = hostmem
    raw = mem.get("raw") or mem.get("stats") or {}
    pids = data.get("pids") or {}
    blkio = data.get("blkio") or {}
    return {
        "read": rfc3339_nano(time.time()),
        "preread": rfc3339_nano(None),
        "pids_stats": {"current": pids.get("current", 0), "limit": pids.get("limit", 0)},
        "blkio_stats": {
            "io_service_bytes_recursive": blkio.get("ioServiceBytesRecursive") or None,
            "io_serviced_recursive": blkio.get("ioServicedRecursive") or None,
            "io_queue_recursive": None,
            "io_service_time_recursive": None,
            "io_wait_time_recursive": None,
            "io_merged_recursive": None,
            "io_time_recursive": None,
            "sectors_recursive": None,
        },  # fmt: skip
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": {
            "cpu_usage": {
                "total_usage": usage.get("total", 0),
                "percpu_usage": usage.get("percpu") or None,
                "usage_in_kernelmode": usage.get("kernel", 0),
                "usage_in_usermode": usage.get("user", 0),
            },
            "system_cpu_usage": system_cpu_usage(),
            "online_cpus": os.cpu_count() or 1,
            "throttling_data": {
                "periods": thr.get("periods", 0),
                "throttled_periods": thr.get("throttledPeriods", 0),
                "throttled_time": thr.get("throttledTime", 0),
            },
        },
        "precpu_stats": {
            "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        },  # fmt: skip
        "memory_stats": {
            "usage": mu.get("usage", 0),
            "max_usage": mu.get("max", 0),
            "stats": raw,
            "limit": limit,
        },
        "name": "/" + rec.name,
        "id": rec.id,
    }


def with_previous(cur: dict, prev: dict | None) -> dict:
    """`precpu_stats` and `preread` from the previous sample (what CPU % is computed on)."""
    if prev:
        cur["precpu_stats"] = prev["cpu_stats"]
        cur["preread"] = prev["read"]
    return cur


# ---- what the CLI prints (docker's formatter: cli/command/container/stats_helpers.go) ------


def cpu_percent(s: dict) -> float:
    cpu, pre = s["cpu_stats"], s["precpu_stats"]
    d_cpu = cpu["cpu_usage"]["total_usage"] - pre["cpu_usage"]["total_usage"]
    d_sys = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    if d_sys > 0 and d_cpu > 0:
        return d_cpu / d_sys * cpu.get("online_cpus", 1) * 100.0
    return 0.0


def memory_used(s: dict) -> int:
    m = s["memory_stats"]
    st = m.get("stats") or {}
    usage = m.get("usage", 0)
    # docker: usage minus the page cache it may reclaim (cgroup v1: total_inactive_file)
    for key in ("total_inactive_file", "inactive_file"):
        if key in st and st[key] < usage:
            return usage - st[key]
    return usage


def block_io(s: dict) -> tuple[int, int]:
    r = w = 0
    for e in s["blkio_stats"].get("io_service_bytes_recursive") or ():
        op = str(e.get("op", "")).lower()
        if op == "read":
            r += e.get("value", 0)
        elif op == "write":
            w += e.get("value", 0)
    return r, w


def top(containers, rec, ps_args: str = "-ef") -> dict:
    """ContainerTop: `ps PS_ARGS` on the host, the container's processes only."""
    import shlex
    import subprocess

    if rec.state not in ("running", "paused"):
        raise NotRunning(f"Container {rec.id} is not running")
    try:
        pids = set(containers.rt.ps(rec.id))
    except SangjaError as e:
        raise NotRunning(f"Container {rec.id} is not running ({e})")
    args = shlex.split(ps_args or "-ef")
    try:
        p = subprocess.run(["ps", *args], capture_output=True, text=True)
    except OSError as e:
        raise EngineError(f"ps: {e.strerror}")
    if p.returncode != 0:
        raise EngineError(f"ps {ps_args}: {(p.stderr or p.stdout).strip()}")
    lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
    titles = lines[0].split()
    if "PID" not in titles:
        raise EngineError(f"Couldn't find PID field in ps output ({ps_args})")
    col = titles.index("PID")
    procs = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        try:
            if int(fields[col]) in pids:
                procs.append(fields)
        except (ValueError, IndexError):
            continue
    return {"Titles": titles, "Processes": procs}
