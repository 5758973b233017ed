"""The engine's event log (engine/events.py) and `sangja system events`: appends from many
processes at once land whole and in time order, the log is rotated at its size bound
without losing what readers need, and --since/--until/--filter/--format select as
Docker's do.  Events of containers are checked with real containers elsewhere
(test_volume_containers.py); here the writers are plain processes."""

import json
import os
import subprocess
import sys
import time

import pytest
from registrykit import Sangja, sangja_binary

WRITER = r"""
import os, sys, time
from sangja.engine import events
root, who, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
while not os.path.exists(os.path.join(root, "go")):  # all start together
    time.sleep(0.001)
for i in range(n):
    events.emit("container", "exec_start: sh -c true" if i % 7 == 0 else "start",
                f"{who}-{i:04d}", {"name": who, "image": "busybox:latest", "i": str(i),
                                   "pad": "x" * (i % 300)}, root=root)
"""


@pytest.fixture
def esj(tmp_path):
    return Sangja(tmp_path)


def _read_all(root):
    from sangja.engine import events

    return events.read(root)


def test_concurrent_writers_lines_whole_and_in_time_order(esj):
    os.makedirs(esj.root)
    n, per = 6, 1500
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, esj.root, f"w{k}", str(per)])
             for k in range(n)]  # fmt: skip
    time.sleep(0.5)  # not an assertion: the writers are up (then they start at once)
    open(os.path.join(esj.root, "go"), "w").close()
    for p in procs:
        assert p.wait(timeout=300) == 0
    with open(os.path.join(esj.root, "events.log"), "rb") as f:
        lines = f.read().split(b"\n")
    assert lines[-1] == b""
    evs = [json.loads(line) for line in lines[:-1]]  # every line whole: no torn JSON
    assert len(evs) == n * per
    times = [e["timeNano"] for e in evs]
    assert times == sorted(times)  # the file's order is the events' order
    for k in range(n):  # each writer's own events in the order it wrote them
        mine = [
            int(e["Actor"]["Attributes"]["i"])
            for e in evs
            if e["Actor"]["Attributes"]["name"] == f"w{k}"
        ]  # noqa: E501
        assert mine == list(range(per))


def test_rotation_keeps_the_previous_part(esj, monkeypatch):
    from sangja.engine import events

    os.makedirs(esj.root)
    monkeypatch.setattr(events, "MAX_BYTES", 20_000)
    for i in range(400):
        events.emit("volume", "create", f"v{i:03d}", {"driver": "local"}, root=esj.root)
    log = os.path.join(esj.root, "events.log")
    assert os.path.exists(log + ".1")
    for p in (log, log + ".1"):  # the bound, plus the line that passed it
        assert os.path.getsize(p) <= 20_000 + 1000
    got = [e["Actor"]["ID"] for e in events.read(esj.root)]
    # the newest events are all there, in order, across the two parts
    assert got == [f"v{i:03d}" for i in range(400 - len(got), 400)]
    assert len(got) > 100


def test_a_torn_last_line_is_skipped(esj):
    from sangja.engine import events

    os.makedirs(esj.root)
    events.emit("volume", "create", "a", root=esj.root)
    with open(os.path.join(esj.root, "events.log"), "ab") as f:
        f.write(b'{"Type":"volume","Act')  # a writer killed mid-line
    assert [e["Actor"]["ID"] for e in events.read(esj.root)] == ["a"]


def test_since_until_filter_format(esj):
    from sangja.engine import events

    os.makedirs(esj.root)
    t0 = time.time()
    events.emit("container", "create", "c" * 64, {"name": "web", "image": "nginx:1",
                                                  "com.example": "x"}, root=esj.root)  # fmt: skip
    events.emit("container", "exec_start: sh -c ls", "c" * 64, {"name": "web"}, root=esj.root)
    events.emit("image", "pull", "nginx:1", {"name": "nginx:1"}, root=esj.root)
    events.emit("volume", "mount", "data", {"container": "c" * 64}, root=esj.root)
    events.emit("network", "connect", "n" * 64, {"name": "front", "container": "c" * 64},
                root=esj.root)  # fmt: skip
    t1 = time.time()

    def ids(*args):
        out = esj.ok("system", "events", "--since", f"{t0:.9f}", "--until", f"{t1:.9f}",
                     "--format", "json", *args).out  # fmt: skip
        return [(e["Type"], e["Action"]) for e in map(json.loads, out.splitlines())]

    assert len(ids()) == 5
    assert ids("-f", "type=container") == [("container", "create"),
                                           ("container", "exec_start: sh -c ls")]  # fmt: skip
    assert ids("-f", "event=exec_start") == [("container", "exec_start: sh -c ls")]
    assert ids("-f", "container=web") == ids("-f", "container=ccc")  # name, or id prefix
    assert len(ids("-f", "container=web")) == 2
    assert ids("-f", "image=nginx:1") == [("container", "create"), ("image", "pull")]
    assert ids("-f", "image=nginx") == [("container", "create"), ("image", "pull")]
    assert ids("-f", "label=com.example=x") == [("container", "create")]
    assert ids("-f", "volume=data") == [("volume", "mount")]
    assert ids("-f", "network=front") == [("network", "connect")]
    assert ids("-f", "type=volume", "-f", "type=network") == [("volume", "mount"),
                                                              ("network", "connect")]  # fmt: skip
    assert ids("-f", "type=volume", "-f", "event=create") == []  # keys: all must match
    # an --until in the past: nothing after it
    assert esj.ok("system", "events", "--since", f"{t0:.9f}", "--until", f"{t0 - 1:.3f}").out == ""
    # Docker's text line
    out = esj.ok("system", "events", "--since", f"{t0:.9f}", "--until", f"{t1:.9f}",
                 "-f", "type=network").out  # fmt: skip
    stamp, rest = out.rstrip("\n").split(" ", 1)
    assert rest == f"network connect {'n' * 64} (container={'c' * 64}, name=front)"
    assert len(stamp.split(".")[1].rstrip("Z")) == 9  # nanoseconds
    # a Go template per event
    tmpl = "{{.Type}} {{.Action}} {{.Actor.ID}}"
    out = esj.ok("system", "events", "--since", f"{t0:.9f}", "--until", f"{t1:.9f}",
                 "-f", "type=image", "--format", tmpl).out  # fmt: skip
    assert out == "image pull nginx:1\n"
    # bad input
    assert "invalid filter 'bogus'" in esj.fail("system", "events", "-f", "bogus=1").err
    assert "invalid time" in esj.fail("system", "events", "--since", "yesterday").err


def test_follow_streams_new_events_from_other_processes(esj):
    """`system events` without --until: each event as it is written, by any process."""
    os.makedirs(esj.root)
    p = subprocess.Popen([sangja_binary(), "system", "events", "--format", "json"],
                         stdout=subprocess.PIPE, text=True, env=esj.env)  # fmt: skip
    try:
        time.sleep(0.5)  # not an assertion: lets the reader start before the writes
        esj.ok("volume", "create", "f1")
        esj.ok("volume", "rm", "f1")
        got = []
        deadline = time.monotonic() + 60  # a hang guard
        while len(got) < 2 and time.monotonic() < deadline:
            line = p.stdout.readline()
            if line:
                got.append(json.loads(line))
        assert [(e["Action"], e["Actor"]["ID"]) for e in got] == [("create", "f1"),
                                                                  ("destroy", "f1")]  # fmt: skip
    finally:
        p.terminate()
        p.wait(timeout=30)


def test_follow_ends_when_cancelled(esj):
    """follow(cancelled=...) (the API's events stream, whose client may close while no
    event comes): it returns once cancelled() is true, without an event to wake it."""
    import threading

    from sangja.engine import events

    os.makedirs(esj.root)
    stop = threading.Event()
    got = []

    def reader():
        got.extend(events.follow(esj.root, cancelled=stop.is_set))
        got.append("ended")

    t = threading.Thread(target=reader)
    t.start()
    events.emit("volume", "create", "c1", root=esj.root)
    stop.set()
    t.join(60)  # a hang guard
    assert not t.is_alive() and got[-1] == "ended"
