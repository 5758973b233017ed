"""kill -9 of the CLI at each step of run/start/stop/rm (the CLI stops itself at a named
step, SANGJA_FAILPOINT, and the test kills it there: a real SIGKILL at a known point, not a
mock): the next command sees a record the runtime confirms, and `rm -f` removes all.
Also: a killed `run --rm`, a killed pull's half-unpacked layers, 50 containers started at
once from two shells."""

import os
import subprocess

import pytest
from enginekit import (
    BUSYBOX,
    DEBIAN,
    kill9,
    monitor_processes,
    ps,
    runtime_entries,
    start_stopped,
    state,
    wait_for,
)
from registrykit import sangja_binary


def _mounts(sj):
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if sj.tmp in line.split()[4]]


@pytest.mark.parametrize("point", ["create:row", "start:mounted", "start:reserved",
                                   "start:created", "start:started"])  # fmt: skip
def test_run_killed_half_way_leaves_nothing(sj, point):
    """A `run -d` killed before it returned: the container never was (the row stays
    `creating` until it runs); the next command removes what was made."""
    sj.ok("image", "pull", "-q", BUSYBOX)
    kill9(start_stopped(sj, "container", "run", "-d", "--name", "x", BUSYBOX, "sleep", "1000",
                        failpoint=point))  # fmt: skip
    assert ps(sj) == {}  # collected by this very listing
    assert _mounts(sj) == [] and runtime_entries(sj.run_root) == []
    wait_for(lambda: not monitor_processes(sj.tmp), "the monitor to go")
    sj.ok("container", "run", "-d", "--name", "x", BUSYBOX, "sleep", "1000")  # the name is free
    assert ps(sj)["x"]["State"] == "running"


@pytest.mark.parametrize("point,after", [("start:mounted", "created"),
                                         ("start:reserved", "created"),
                                         ("start:created", "created"),
                                         ("start:started", "running")])  # fmt: skip
def test_start_killed_half_way(sj, point, after):
    """`start` of a created container killed half-way: the record says what the runtime
    confirms (created until the process runs, then running), and a new start or rm -f
    repairs it."""
    sj.ok("container", "create", "--name", "c", BUSYBOX, "sleep", "1000")
    kill9(start_stopped(sj, "container", "start", "c", failpoint=point))
    assert ps(sj)["c"]["State"] == after
    sj.ok("container", "start", "c")
    st = state(sj, "c")
    assert st["Status"] == "running" and os.path.exists(f"/proc/{st['Pid']}")
    assert sj("exec", "--help").rc in (0, 1)  # (the runtime CLI is fine too)
    assert sj.ok("container", "exec", "c", "echo", "ok").out == "ok\n"


def test_stop_and_rm_killed_half_way(sj):
    sj.ok("container", "run", "-d", "--name", "s", BUSYBOX, "sleep", "1000")
    kill9(start_stopped(sj, "container", "stop", "-t", "5", "s", failpoint="stop:signalled"))
    assert ps(sj)["s"]["State"] == "running"  # sleep ignores SIGTERM: still running
    sj.ok("container", "stop", "-t", "0", "s")
    assert state(sj, "s")["ExitCode"] == 137
    sj.ok("container", "run", "-d", "--name", "r", BUSYBOX, "sleep", "1000")
    kill9(start_stopped(sj, "container", "rm", "-f", "r", failpoint="rm:killed"))
    assert ps(sj)["r"]["Status"] == "Removal In Progress"
    sj.ok("container", "rm", "-f", "r")
    sj.ok("container", "run", "-d", "--name", "q", BUSYBOX, "sleep", "1000")
    kill9(start_stopped(sj, "container", "rm", "-f", "q", failpoint="rm:row"))
    assert "q" not in ps(sj)  # the row went; its directory goes with this listing
    assert [d for d in os.listdir(os.path.join(sj.root, "containers"))
            if d.startswith(".") or len(d) == 64] == [inspect_id(sj, "s")]  # fmt: skip


def test_image_rm_after_killed_create(sj):
    """A `create` killed after its row: `image rm` (no listing before it) sweeps the dead
    row itself, so the image is free and goes without -f."""
    sj.ok("image", "pull", "-q", BUSYBOX)
    kill9(start_stopped(sj, "container", "create", "--name", "k", BUSYBOX, "true",
                        failpoint="create:row"))  # fmt: skip
    assert "Deleted: sha256:" in sj.ok("image", "rm", BUSYBOX).out
    assert ps(sj) == {}


def inspect_id(sj, name):
    import json

    return json.loads(sj.ok("container", "inspect", name).out)[0]["Id"]


def test_killed_foreground_run_rm_is_removed_by_its_monitor(sj):
    p = subprocess.Popen([sangja_binary(), "--root", sj.run_root, "container", "run", "--rm",
                          "--name", "fg", BUSYBOX, "sh", "-c", "sleep 1; exit 4"],
                         env=sj.env, stdout=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for(lambda: ps(sj).get("fg", {}).get("State") == "running", "the container to run")
    finally:
        p.kill()
        p.wait()
    assert ps(sj)["fg"]["State"] == "running"  # no CLI now; the container goes on
    # it ends by itself: its monitor records the exit and, no one waiting, removes it
    wait_for(lambda: ps(sj) == {} and not _mounts(sj), "the monitor's clean-up")
    assert runtime_entries(sj.run_root) == []


def test_foreground_run_exit_command_leaves_it_to_the_cli(sj):
    """A foreground run waits for its container and does the clean-up itself: the monitor's
    exit command (`cleanup --unless-alive` naming the CLI; answered by the C front end)
    does nothing and reports nothing, and the record is the CLI's."""
    r = sj("container", "run", "--name", "fg", BUSYBOX, "sh", "-c", "exit 3")
    assert r.rc == 3, r
    cid = inspect_id(sj, "fg")
    wait_for(lambda: not monitor_processes(sj.tmp), "the monitor and its exit command to end")
    err = os.path.join(sj.root, "containers", cid, "monitor", "cleanup.err")
    assert not os.path.exists(err) or open(err).read() == ""
    st = state(sj, "fg")
    assert (st["Status"], st["ExitCode"]) == ("exited", 3)
    assert not _mounts(sj) and runtime_entries(sj.run_root) == []
    assert sj("container", "run", "--rm", BUSYBOX, "sh", "-c", "exit 5").rc == 5
    wait_for(lambda: not monitor_processes(sj.tmp), "the monitor and its exit command to end")
    assert list(ps(sj)) == ["fg"]
    assert sorted(os.listdir(os.path.join(sj.root, "containers"))) == [cid]


def test_stop_leaves_nothing_to_the_exit_command(sj):
    """`stop` records the run's end and tears it down itself; its note (`monitor/handled`:
    the run's number and the stopping process) lets the front end answer the monitor's
    exit command without Python.  A restart policy does not bring a stopped container
    back, an --rm one is still removed (by the exit command: no note for it), and a later
    run that ends by itself is recorded and torn down by its exit command."""
    sj.ok("container", "run", "-d", "--name", "s", "--restart", "always", BUSYBOX, "sleep",
          "1000")  # fmt: skip
    cid = inspect_id(sj, "s")
    mon = os.path.join(sj.root, "containers", cid, "monitor")
    for run in (1, 2):
        if run == 2:
            sj.ok("container", "start", "s")
        sj.ok("container", "stop", "-t", "0", "s")
        wait_for(lambda: not monitor_processes(sj.tmp), "the monitor and its exit command")
        with open(os.path.join(mon, "handled")) as f:
            assert f.read().split(" ")[0] == str(run)
        assert not os.path.exists(os.path.join(mon, "cleanup.err"))
        st = state(sj, "s")
        assert (st["Status"], st["ExitCode"]) == ("exited", 137)
        assert not _mounts(sj) and runtime_entries(sj.run_root) == []
    # a run that ends by itself after a stopped one: the exit command does its work
    sj.ok("container", "update", "--restart", "no", "s")
    sj.ok("container", "start", "s")
    sj.ok("container", "kill", "s")
    wait_for(lambda: state(sj, "s")["Status"] == "exited", "the exit recorded")
    wait_for(lambda: not monitor_processes(sj.tmp), "the monitor and its exit command")
    assert not _mounts(sj) and runtime_entries(sj.run_root) == []
    sj.ok("container", "run", "-d", "--rm", "--name", "r", BUSYBOX, "sleep", "1000")
    rid = inspect_id(sj, "r")
    sj.ok("container", "stop", "-t", "0", "r")
    wait_for(lambda: "r" not in ps(sj), "the --rm container removed by its exit command")
    assert not os.path.exists(os.path.join(sj.root, "containers", rid))


def test_killed_pull_leaves_no_half_layers(sj):
    """A pull killed while it unpacks leaves layers/.tmp-*: the next command that writes to
    the store removes them (they belong to no one once it holds the store's lock)."""
    layers = os.path.join(sj.root, "layers")
    p = subprocess.Popen([sangja_binary(), "image", "pull", "-q", DEBIAN], env=sj.env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    def unpacking():
        try:
            return any(n.startswith(".tmp-") for n in os.listdir(layers))
        except FileNotFoundError:
            return False

    try:
        wait_for(lambda: unpacking() or p.poll() is not None, "the unpack", step=0.005)
    finally:
        p.kill()
        p.wait()
    if not unpacking():
        pytest.skip("the pull finished before it could be killed while unpacking")
    sj.ok("image", "pull", "-q", BUSYBOX)
    assert not unpacking()
    s = sj.store_state()  # every layer directory is one a row names (blobs may wait)
    assert set(s["files:layers"]) == {r[0] for r in s["layers"]}
    assert s["files:tmp"] == [] or all(n.endswith(".partial") for n in s["files:tmp"])


def test_fifty_containers_from_two_shells(sj):
    """Two shells start 25 containers each, all at once: 50 running containers with their
    own names and monitors, and then all of them removed at once."""
    sj.ok("image", "pull", "-q", BUSYBOX)
    script = (f'for i in $(seq 1 25); do "$SJ" --root "$RUN" container run -d --name "$P$i" '
              f'{BUSYBOX} sleep 1000 >/dev/null & done; wait')  # fmt: skip
    shells = [subprocess.Popen(["bash", "-c", script],
                               env=dict(sj.env, SJ=sangja_binary(), RUN=sj.run_root,
                                        P=f"s{n}-"),
                               stderr=subprocess.PIPE, text=True)
              for n in (1, 2)]  # fmt: skip
    errs = [sh.communicate(timeout=600)[1] for sh in shells]
    assert errs == ["", ""], errs
    running = {n for n, c in ps(sj).items() if c["State"] == "running"}
    assert running == {f"s{s}-{i}" for s in (1, 2) for i in range(1, 26)}
    assert len(monitor_processes(sj.tmp)) == 50
    ids = sj.ok("container", "ps", "-q").out.split()
    half = len(ids) // 2
    rms = [subprocess.Popen([sangja_binary(), "--root", sj.run_root, "container", "rm", "-f",
                             *part], env=sj.env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
           for part in (ids[:half], ids[half:])]  # fmt: skip
    assert [r.communicate(timeout=600)[1] for r in rms] == ["", ""]
    assert ps(sj) == {}
