"""events: runc's JSON lines, {"type":"stats","id":...,"data":{...}} on --stats or every
--interval, {"type":"oom","id":...} when the kernel OOM-kills in the container."""

import json

import pytest
from rtkit import config, v1_files, wait_for

from sangja.gounits import parse_duration
from sangja.runtime.cgroups import stats


def shape(o):
    """The keys of nested objects (values that Go leaves out when zero are data: dropped)."""
    if isinstance(o, dict):
        return {k: shape(v) for k, v in o.items() if k not in OMITTED_WHEN_ZERO}
    return type(o).__name__


OMITTED_WHEN_ZERO = {
    "cache",
    "usage",
    "max",
    "total",
    "percpu",
    "percpu_kernel",
    "percpu_user",
    "current",
    "limit",
    "periods",
    "throttledPeriods",
    "throttledTime",
    "raw",
    # blkio's lists: there only when the container did I/O that the cgroup saw (Go's
    # omitempty), which the page cache decides, not the runtime
    "ioServiceBytesRecursive",
    "ioServicedRecursive",
    "ioQueueRecursive",
    "ioServiceTimeRecursive",
    "ioWaitTimeRecursive",
    "ioMergedRecursive",
    "ioTimeRecursive",
    "sectorsRecursive",
}


def _paths(o, pre=""):
    """A shape as the set of its key paths ('/data/memory/swap/failcnt'): a mismatch
    then names the keys."""
    if isinstance(o, dict) and o:
        return set().union(*(_paths(v, f"{pre}/{k}") for k, v in o.items()))
    return {pre}


def test_events_stats_json(rt):
    c = config(["sleep", "1000"])
    c["linux"]["resources"]["memory"] = {"limit": 64 << 20}
    c["linux"]["resources"]["pids"] = {"limit": 20}
    cid, pid = rt.created(c)
    rt("start", cid).ok()
    r = rt("events", "--stats", cid).ok()
    assert r.out.count("\n") == 1
    ev = r.json()
    assert ev["type"] == "stats" and ev["id"] == cid
    d = ev["data"]
    assert set(d) == {
        "cpu",
        "cpuset",
        "memory",
        "pids",
        "blkio",
        "hugetlb",
        "intel_rdt",
        "network_interfaces",
    }
    assert d["memory"]["usage"]["limit"] == 64 << 20
    assert d["memory"]["usage"]["usage"] > 0
    assert d["pids"] == {"current": 1, "limit": 20}
    assert d["cpu"]["usage"]["total"] > 0
    assert d["cpuset"]["cpus"]
    assert d["network_interfaces"] is None


def test_events_stats_same_shape_as_runc(rt, runc):
    if rt.is_runc:
        pytest.skip("compares with runc")
    out = {}
    for r in (rt, runc):
        cid, pid = r.created(config(["sleep", "1000"]))
        r("start", cid).ok()
        out[r.name] = r("events", "--stats", cid).ok().json()
        out[r.name]["id"] = "x"
    a, b = _paths(shape(out["sangja"])), _paths(shape(out["runc"]))
    assert a == b, ("sangja only:", sorted(a - b), "runc only:", sorted(b - a))
    assert list(out["sangja"]["data"]["memory"]["raw"]) == list(
        out["runc"]["data"]["memory"]["raw"]
    )


def test_events_stats_stopped_container_fails(rt):
    cid, pid = rt.created(config(["true"]))
    rt("start", cid).ok()
    rt.wait_stopped(cid)
    r = rt("events", "--stats", cid).failed(1)
    assert f"container with id {cid} is not running" in r.err


def test_events_bad_interval(rt):
    cid, pid = rt.created(config(["true"]))
    assert rt("events", "--interval", "0", cid).rc == 1
    assert rt("events", "--interval", "1x", cid).rc == 1


def lines(pending):
    return [json.loads(x) for x in pending.output().splitlines() if x.strip()]


def test_events_oom_and_stats_until_delete(rt):
    """A process past its memory limit is OOM-killed and `events` says so; it prints stats
    every interval meanwhile, and ends once the container is deleted."""
    c = config(["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"])
    c["linux"]["resources"]["memory"] = {"limit": 32 << 20}
    if "memory.memsw.limit_in_bytes" in v1_files("memory"):  # no swap to escape to either
        c["linux"]["resources"]["memory"]["swap"] = 32 << 20
    cid, pid = rt.created(c)
    ev = rt.spawn("events", "--interval", "100ms", cid)
    try:
        # listening: stats come
        wait_for(lambda: any(e["type"] == "stats" for e in lines(ev)), "a stats event")
        rt("start", cid).ok()
        wait_for(lambda: {"type": "oom", "id": cid} in lines(ev), "an oom event")
        rt.wait_stopped(cid)
        rt("delete", cid).ok()
        r = ev.result()
    finally:
        if ev.poll() is None:
            ev.proc.kill()
    assert r.rc == 0, r
    stats = [json.loads(x) for x in r.out.splitlines() if '"stats"' in x]
    assert all(e["id"] == cid for e in stats)
    assert stats[0]["data"]["memory"]["usage"]["limit"] == 32 << 20


# -- parsing, without a container -------------------------------------------------------------


@pytest.mark.parametrize(
    "text,secs",
    [("5s", 5), ("100ms", 0.1), ("1m30s", 90), ("1.5h", 5400), ("250us", 250e-6), ("0", 0)],
)
def test_parse_duration(text, secs):
    assert parse_duration(text) == pytest.approx(secs)


@pytest.mark.parametrize("text", ["", "5", "1x", "s", "."])
def test_parse_duration_refuses(text):
    with pytest.raises(ValueError, match="time: invalid duration"):
        parse_duration(text)


def test_stats_parsers():
    assert stats.parse_list("0-2,7") == [0, 1, 2, 7]
    assert stats.blkio_entries("8:0 Read 4096\n8:0 Write 0\n8:16 12\nTotal 4096\n") == [
        {"major": 8, "op": "Read", "value": 4096},
        {"major": 8, "op": "Write"},  # Go leaves the zeros out
        {"major": 8, "minor": 16, "value": 12},
    ]
    assert stats.v2_io("8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n") == {
        "ioServiceBytesRecursive": [
            {"major": 8, "op": "Read", "value": 10},
            {"major": 8, "op": "Write", "value": 20},
        ],
        "ioServicedRecursive": [
            {"major": 8, "op": "Read", "value": 1},
            {"major": 8, "op": "Write", "value": 2},
        ],
    }
