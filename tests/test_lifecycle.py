"""create / start / state / kill / delete / run / list, step by step through the CLI."""

import fcntl
import json
import os
import re
import select
import signal
import subprocess
import threading

import pytest
from rtkit import TIMEOUT, alive, config, read, wait_for

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def writer_config(rt, path_in_container="/out/log", script="echo started"):
    """A container that runs `script` with its stdout going to a host file we can read."""
    c = config(["sh", "-c", f"exec > {path_in_container}; {script}"])
    outdir = os.path.join(rt.workdir, f"out-{rt.name}-{len(rt.ids)}")
    os.makedirs(outdir, exist_ok=True)
    c["mounts"].append(
        {
            "destination": os.path.dirname(path_in_container),
            "type": "bind",
            "source": outdir,
            "options": ["rbind", "rw"],
        }
    )
    return c, os.path.join(outdir, os.path.basename(path_in_container))


def test_create_blocks_until_start(rt):
    c, log = writer_config(rt, script="echo started; exec sleep 1000")
    pidfile = os.path.join(rt.workdir, "pidfile")
    cid, r = rt.create(c, "--pid-file", pidfile)
    r.ok()
    assert r.out == ""
    # The pid file is there, in decimal, as create returns.
    with open(pidfile) as f:
        text = f.read()
    assert re.fullmatch(r"\d+", text.strip()), text
    pid = int(text)
    rt.pids.add(pid)
    st = rt.state(cid)
    assert st["status"] == "created"
    assert st["pid"] == pid
    assert alive(pid)
    # The user process has not run yet.
    assert read(log) == ""
    r = rt("start", cid).ok()
    assert r.out == ""
    assert rt.status(cid) == "running"
    wait_for(lambda: read(log) == "started\n", "the process ran")
    # The same pid is now the user's process.
    assert rt.state(cid)["pid"] == pid
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[:2] == [b"sleep", b"1000"]


def test_start_twice_fails(rt):
    cid, _ = rt.created(config(["sleep", "1000"]))
    rt("start", cid).ok()
    r = rt("start", cid)
    assert r.rc == 1
    assert rt.status(cid) == "running"


def test_state_fields(rt):
    c = config(["sleep", "1000"])
    c["annotations"] = {"org.example.key": "value", "other": "x"}
    b = rt.bundle(c)
    cid, pid = rt.created(b)
    st = rt.state(cid)
    for key in ("ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner"):
        assert key in st, key
    assert st["id"] == cid
    assert st["pid"] == pid > 0
    assert st["bundle"] == os.path.realpath(b.path)
    assert st["rootfs"] == os.path.realpath(b.rootfs)
    assert RFC3339.match(st["created"]), st["created"]
    assert st["annotations"] == c["annotations"]
    assert isinstance(st["ociVersion"], str) and st["ociVersion"]


def test_state_stopped_has_pid_zero(rt):
    cid, pid = rt.created(config(["true"]))
    rt("start", cid).ok()
    rt.wait_stopped(cid)
    st = rt.state(cid)
    assert st["status"] == "stopped"
    assert st["pid"] == 0


def test_status_follows_the_process(rt):
    """Status comes from the process: killing the init behind the runtime's back stops it."""
    cid, pid = rt.created(config(["sleep", "1000"]))
    rt("start", cid).ok()
    assert rt.status(cid) == "running"
    os.kill(pid, signal.SIGKILL)
    rt.wait_stopped(cid)
    assert rt.state(cid)["pid"] == 0
    rt("delete", cid).ok()


def test_created_init_killed_is_stopped(rt):
    cid, pid = rt.created(config(["true"]))
    os.kill(pid, signal.SIGKILL)
    rt.wait_stopped(cid)
    r = rt("start", cid)
    assert r.rc == 1
    rt("delete", cid).ok()


@pytest.mark.parametrize("sig", ["9", "KILL", "SIGKILL"])
def test_kill_signal_forms(rt, sig):
    cid, pid = rt.created(config(["sleep", "1000"]))
    rt("start", cid).ok()
    r = rt("kill", cid, sig).ok()
    assert r.out == ""
    rt.wait_stopped(cid)


@pytest.mark.parametrize("sig", ["15", "TERM", "SIGTERM", "USR1", "SIGHUP", "2"])
def test_kill_delivers_that_signal(rt, sig):
    """The init traps the signals; it reports which one it got through its exit code."""
    script = (
        "trap 'exit 71' TERM; trap 'exit 72' USR1; trap 'exit 73' HUP; trap 'exit 74' INT; "
        "echo ready; while :; do sleep 0.05; done"
    )
    c = config(["sh", "-c", script])
    b = rt.bundle(c)
    p = rt.popen("run", "--bundle", b.path, cid := rt.new_id())
    try:
        # `run` is in the foreground: wait until the container runs, then signal it by name.
        _wait_line(p)
        rt("kill", cid, sig).ok()
        rc = p.wait(TIMEOUT)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    want = {"15": 71, "TERM": 71, "SIGTERM": 71, "USR1": 72, "SIGHUP": 73, "2": 74}[sig]
    assert rc == want, p.stderr.read()


def test_kill_default_is_sigterm(rt):
    c = config(["sh", "-c", "trap 'exit 71' TERM; echo ready; while :; do sleep 0.05; done"])
    b = rt.bundle(c)
    p = rt.popen("run", "--bundle", b.path, cid := rt.new_id())
    try:
        _wait_line(p)
        rt("kill", cid).ok()
        assert p.wait(TIMEOUT) == 71
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def _wait_status(rt, cid, status, proc=None):
    def ready():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"run exited early: {proc.returncode} {proc.stderr.read()}")
        r = rt("state", cid)
        return r.rc == 0 and r.json()["status"] == status

    wait_for(ready, f"{cid} is {status}")


def _wait_line(proc, want=b"ready\n"):
    """Read one line of a foreground run's stdout (the container's), with a hang guard."""
    r, _, _ = select.select([proc.stdout], [], [], TIMEOUT)
    assert r, "the container printed nothing"
    line = proc.stdout.readline()
    want = want if isinstance(line, bytes) else want.decode()
    assert line == want, (line, proc.poll(), proc.stderr.read() if proc.poll() is not None else "")


def test_kill_stopped_container(rt):
    cid, _ = rt.created(config(["true"]))
    rt("start", cid).ok()
    rt.wait_stopped(cid)
    r = rt("kill", cid, "KILL").failed(1)
    assert "container not running" in r.err


def test_kill_all(rt):
    """The init ignores TERM and waits for its children: only a TERM sent to every process
    (--all) ends the children, and with them the container."""
    c = config(["sh", "-c", "sleep 1000 & sleep 1000 & trap '' TERM; wait"])
    cid, pid = rt.created(c)
    rt("start", cid).ok()
    # once both children run: a TERM before then reaches only the init, which (pid 1 of
    # its namespace, no handler yet) ignores it, and the children forked later never get one
    wait_for(lambda: len(rt("ps", "--format", "json", cid).json() or []) >= 3, "children")
    rt("kill", "--all", cid, "TERM").ok()
    rt.wait_stopped(cid)


def test_delete_running_needs_force(rt):
    cid, pid = rt.created(config(["sleep", "1000"]))
    rt("start", cid).ok()
    r = rt("delete", cid).failed(1)
    if not rt.is_runc:
        assert f"cannot delete container {cid} that is not stopped: running" in r.err
    assert rt.status(cid) == "running"
    assert alive(pid)
    rt("delete", "--force", cid).ok()
    assert not alive(pid)
    assert not os.path.exists(os.path.join(rt.root, cid))
    assert "does not exist" in rt("state", cid).failed(1).err


def test_delete_created_container(rt):
    """A created (never started) container can be deleted without --force; its init goes."""
    cid, pid = rt.created(config(["true"]))
    r = rt("delete", cid).ok()
    assert r.out == ""
    assert not alive(pid)
    assert not os.path.exists(os.path.join(rt.root, cid))


def test_delete_stopped(rt):
    cid, pid = rt.created(config(["true"]))
    rt("start", cid).ok()
    rt.wait_stopped(cid)
    rt("delete", cid).ok()
    assert rt.leftovers(cid) == []
    rt("delete", cid).failed(1)


def test_delete_force_unknown_or_deleted_is_ok(rt):
    rt("delete", "--force", rt.new_id()).ok()
    cid, _ = rt.created(config(["true"]))
    rt("delete", "--force", cid).ok()
    rt("delete", "--force", cid).ok()
    rt("delete", "-f", cid).ok()


def test_run_exit_code(rt):
    r = rt.run(config(["sh", "-c", "echo out; echo err >&2; exit 3"]))
    assert r.rc == 3
    assert r.out == "out\n"
    assert r.err.endswith("err\n")


def test_run_deletes_the_container(rt):
    cid = rt.new_id()
    rt.run(config(["true"]), cid=cid).ok()
    assert not os.path.exists(os.path.join(rt.root, cid))
    assert rt.leftovers(cid) == []
    rt("state", cid).failed(1)
    # ... and the id can be used again
    rt.run(config(["true"]), cid=cid).ok()


def test_run_keep(rt):
    cid = rt.new_id()
    r = rt.run(config(["sh", "-c", "exit 5"]), "--keep", cid=cid)
    assert r.rc == 5
    st = rt.state(cid)
    assert st["status"] == "stopped"
    assert st["pid"] == 0
    rt("delete", cid).ok()


def test_run_killed_by_signal(rt):
    c = config(["sleep", "1000"])
    b = rt.bundle(c)
    cid = rt.new_id()
    p = rt.popen("run", "--bundle", b.path, cid)
    try:
        _wait_status(rt, cid, "running", p)
        rt("kill", cid, "KILL").ok()
        assert p.wait(TIMEOUT) == 128 + 9
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert not os.path.exists(os.path.join(rt.root, cid))


def test_run_forwards_signals(rt):
    c = config(
        ["sh", "-c", "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.05; done"]
    )
    b = rt.bundle(c)
    cid = rt.new_id()
    p = rt.popen("run", "--bundle", b.path, cid, text=True)
    try:
        _wait_line(p)
        # As soon as the process runs, a signal to `run` must reach it, not kill `run`.
        p.send_signal(signal.SIGTERM)
        rc = p.wait(TIMEOUT)
        assert rc == 7, f"run exited {rc}: the signal was not forwarded"
        out, _ = p.communicate(timeout=TIMEOUT)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert out == "got-term\n"


def test_run_stdin_is_passed(rt):
    r = rt.run(config(["sh", "-c", "read a; echo got:$a; cat"]), input="hello\nrest\n")
    r.ok()
    assert r.out == "got:hello\nrest\n"


def test_run_detach(rt):
    cid = rt.new_id()
    pidfile = os.path.join(rt.workdir, "detached.pid")
    r = rt.run(config(["sleep", "1000"]), "--detach", "--pid-file", pidfile, cid=cid).ok()
    assert r.out == ""
    st = rt.state(cid)
    assert st["status"] == "running"
    with open(pidfile) as f:
        assert int(f.read()) == st["pid"]
    rt.pids.add(st["pid"])
    rt("kill", cid, "KILL").ok()
    rt.wait_stopped(cid)
    rt("delete", cid).ok()


def test_duplicate_id(rt):
    cid, pid = rt.created(config(["sleep", "1000"]))
    _, r = rt.create(config(["true"]), cid=cid)
    r.failed(1)
    if not rt.is_runc:
        assert r.err == f"sangja: container with id exists: {cid}\n"
    # the first container is untouched
    st = rt.state(cid)
    assert st["status"] == "created" and st["pid"] == pid
    assert alive(pid)


def test_list(rt):
    assert rt("list", "-q").ok().out == ""
    a, pa = rt.created(config(["sleep", "1000"]))
    b, pb = rt.created(config(["sleep", "1000"]))
    rt("start", b).ok()
    q = rt("list", "-q").ok().out.split()
    assert sorted(q) == sorted([a, b])
    js = rt("list", "--format", "json").ok().json()
    by_id = {s["id"]: s for s in js}
    assert set(by_id) == {a, b}
    assert by_id[a]["status"] == "created" and by_id[a]["pid"] == pa
    assert by_id[b]["status"] == "running" and by_id[b]["pid"] == pb
    table = rt("list").ok().out.splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows[a][1:3] == [str(pa), "created"]
    assert rows[b][1:3] == [str(pb), "running"]
    js = rt("list", "--format=json").ok().json()
    assert len(js) == 2
    # a container that stopped is listed as stopped, pid 0
    rt("kill", b, "KILL").ok()
    rt.wait_stopped(b)
    by_id = {s["id"]: s for s in rt("list", "--format", "json").ok().json()}
    assert by_id[b]["status"] == "stopped" and by_id[b]["pid"] == 0
    assert by_id[a]["status"] == "created"


def test_list_empty_json(rt):
    out = rt("list", "--format", "json").ok().out.strip()
    assert json.loads(out) in (None, [])


def test_concurrent_creates_of_different_ids(rt):
    """Different containers never block each other: all of them come up side by side."""
    cfgs = [config(["sleep", "1000"]) for _ in range(6)]
    bs = [rt.bundle(c) for c in cfgs]
    ids = [rt.new_id() for _ in bs]
    procs = [rt.spawn("create", "--bundle", b.path, cid) for b, cid in zip(bs, ids, strict=True)]
    for p in procs:
        p.result().ok()
    for cid in ids:
        st = rt.state(cid)
        assert st["status"] == "created"
        rt.pids.add(st["pid"])


@pytest.mark.sangja_only(
    "runc 1.1.5 races here: a `start` that loses can block forever opening the exec fifo"
)
def test_concurrent_starts_one_wins(rt):
    """Operations on one container are serialized: of concurrent starts exactly one wins."""
    cid, pid = rt.created(config(["sleep", "1000"]))
    procs = [rt.spawn("start", cid) for _ in range(5)]
    rcs = [p.result().rc for p in procs]
    assert sorted(rcs) == [0, 1, 1, 1, 1]
    assert rt.status(cid) == "running"


def test_concurrent_force_deletes(rt):
    """Concurrent force-deletes of one container all succeed and leave nothing."""
    cid, pid = rt.created(config(["sleep", "1000"]))
    rt("start", cid).ok()
    procs = [rt.spawn("delete", "--force", cid) for _ in range(5)]
    for p in procs:
        p.result().ok()
    assert not alive(pid)
    assert rt.leftovers(cid) == []


@pytest.mark.sangja_only("the lock is sangja's flock on the container dir; runc locks in-process")
def test_lock_serializes_one_container_not_others(rt):
    a, _ = rt.created(config(["sleep", "1000"]))
    b, _ = rt.created(config(["sleep", "1000"]))
    fd = os.open(os.path.join(rt.root, a), os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        pa = rt.spawn("start", a)
        # b is not blocked by a's lock, whatever a's start is doing.
        rt("start", b).ok()
        assert rt.status(b) == "running"
        assert pa.poll() is None, "start of a locked container did not wait for the lock"
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    pa.result().ok()
    assert rt.status(a) == "running"


def test_state_while_others_run(rt):
    """A foreground run does not hold anything that stops other commands."""
    b = rt.bundle(config(["sleep", "1000"]))
    cid = rt.new_id()
    p = rt.popen("run", "--bundle", b.path, cid)
    try:
        _wait_status(rt, cid, "running", p)
        other = rt.new_id()
        rt.run(config(["true"]), cid=other).ok()
        assert rt("list", "-q").ok().out.split() == [cid]
        rt("kill", cid, "KILL").ok()
        assert p.wait(TIMEOUT) == 137
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_many_threads_state(rt):
    """Concurrent readers of one container all see a consistent state."""
    cid, pid = rt.created(config(["sleep", "1000"]))
    results = []

    def reader():
        for _ in range(5):
            results.append(rt("state", cid))

    ts = [threading.Thread(target=reader) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for r in results:
        st = r.ok().json()
        assert st["pid"] == pid and st["status"] == "created"


def test_pid_file_forms(rt):
    pidfile = os.path.join(rt.workdir, "p2")
    b = rt.bundle(config(["true"]))
    cid = rt.new_id()
    rt("create", f"--bundle={b.path}", f"--pid-file={pidfile}", cid).ok()
    with open(pidfile) as f:
        pid = int(f.read())
    rt.pids.add(pid)
    assert rt.state(cid)["pid"] == pid


def test_run_pid_file_relative_to_cwd(rt):
    b = rt.bundle(config(["true"]))
    cid = rt.new_id()
    r = rt("run", "--bundle", b.path, "--pid-file", "rel.pid", cid, cwd=rt.workdir)
    r.ok()
    with open(os.path.join(rt.workdir, "rel.pid")) as f:
        assert int(f.read()) > 0


def test_run_bundle_defaults_to_cwd(rt):
    b = rt.bundle(config(["echo", "from-cwd"]))
    cid = rt.new_id()
    r = rt("run", cid, cwd=b.path).ok()
    assert r.out == "from-cwd\n"


def test_run_via_subprocess_group_signal(rt):
    """Ctrl-C at a terminal sends SIGINT to run's process group; the exit code follows
    what the container did with it."""
    c = config(["sh", "-c", "trap 'exit 9' INT; echo ready; while :; do sleep 0.05; done"])
    b = rt.bundle(c)
    cid = rt.new_id()
    p = rt.popen("run", "--bundle", b.path, cid, start_new_session=True)
    try:
        _wait_line(p)
        os.kill(p.pid, signal.SIGINT)
        assert p.wait(TIMEOUT) == 9
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        subprocess.run(rt.argv("delete", "--force", cid), capture_output=True)
