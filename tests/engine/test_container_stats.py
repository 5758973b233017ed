"""`stats` (from the runtime's cgroup statistics) and `top` (the host's ps, the container's
processes only)."""

import json

from enginekit import BUSYBOX, inspect


def test_stats_no_stream_and_format(sj):
    sj.ok("container", "run", "-d", "--name", "busy", "-m", "64m", BUSYBOX, "sh", "-c",
          "while true; do :; done")  # fmt: skip
    sj.ok("container", "run", "-d", "--name", "idle", BUSYBOX, "sleep", "1000")
    out = sj.ok("container", "stats", "--no-stream").out.splitlines()
    assert out[0].split("   ")[:3] == ["CONTAINER ID", "NAME", "CPU %"] or out[0].startswith(
        "CONTAINER ID   NAME")  # fmt: skip
    rows = {line.split()[1]: line for line in out[1:]}
    assert set(rows) == {"busy", "idle"}
    assert "/ 64MiB" in rows["busy"]  # the memory limit
    lines = sj.ok("container", "stats", "--no-stream", "--format",
                  "{{.Name}} {{.CPUPerc}} {{.PIDs}}", "busy", "idle").out.splitlines()  # fmt: skip
    vals = {line.split()[0]: line.split()[1:] for line in lines}
    assert float(vals["busy"][0].rstrip("%")) > 10.0  # a busy loop shows up
    assert vals["idle"][1] == "1"
    j = sj.ok("container", "stats", "--no-stream", "--format", "json", "idle").out
    assert json.loads(j)["Name"] == "idle"


def test_top(sj):
    sj.ok("container", "run", "-d", "--name", "t", BUSYBOX, "sh", "-c", "sleep 1000 & wait")
    out = sj.ok("container", "top", "t").out.splitlines()
    assert out[0].split()[:3] == ["UID", "PID", "PPID"]
    assert len(out) == 3 and any("sleep 1000" in line for line in out)
    pid = inspect(sj, "t")["State"]["Pid"]
    assert any(line.split()[1] == str(pid) for line in out[1:])
    out = sj.ok("container", "top", "t", "-o", "pid,comm").out.splitlines()
    assert out[0].split() == ["PID", "COMMAND"] and {line.split()[1] for line in out[1:]} == {
        "sh", "sleep"}  # fmt: skip
    sj.ok("container", "stop", "-t", "0", "t")
    r = sj("container", "top", "t")
    assert r.rc == 1 and "is not running" in r.err
