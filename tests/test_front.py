"""The C front end (csrc/front/): `state`, `start`, `kill`, `delete` run in C when nothing
needs Python, with the Python CLI's output, exit codes and --log lines; everything else is
handed to the Python CLI (`sangja-py` beside the binary) with argv unchanged.

To see which path answered, the front end is also copied alone into a directory without
`sangja-py`: there, what it handles itself works, and a hand-off fails with `exec …`.
SANGJA_PYTHON=1 makes the installed binary hand every call over (the Python path)."""

import json
import os
import subprocess

import pytest
from rtkit import cgroup_dirs_for, config, proc_state, require_front, wait_for

# the installed package (with its _native modules), imported before bundles.default_config
# puts the source tree first on sys.path
from sangja.runtime import state as st


def run(argv, py=False, **kw):
    env = dict(os.environ)
    env.pop("SANGJA_PYTHON", None)
    if py:
        env["SANGJA_PYTHON"] = "1"
    return subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env=env, **kw)  # fmt: skip


def both(rt, *args):
    """The same call through C and through Python: (C's result, Python's)."""
    argv = [rt.binary, *args]
    return run(argv), run(argv, py=True)


def test_state_same_in_c_and_python(rt, alone):
    cfg = config(["sleep", "1000"])
    cfg["annotations"] = {'quote"back\\slash': "tab\tnew\nline", "ünï": "€ 😀 \x7f"}
    cid, _ = rt.created(cfg)
    for form in (["--root", rt.root], [f"--root={rt.root}"], ["-root", rt.root],
                 ["--systemd-cgroup", "--root", rt.root], ["--root", rt.root, "--debug=true",
                 "--rootless", "false"]):  # fmt: skip
        c, p = both(rt, *form, "state", cid)
        assert (c.returncode, c.stdout, c.stderr) == (p.returncode, p.stdout, p.stderr)
        assert json.loads(c.stdout)["annotations"] == cfg["annotations"]
    solo = run([alone, "--root", rt.root, "state", cid])
    assert solo.returncode == 0 and solo.stdout == p.stdout, solo.stderr
    rt("start", cid).ok()
    c, p = both(rt, "--root", rt.root, "state", cid)
    assert c.stdout == p.stdout and json.loads(c.stdout)["status"] == "running"
    rt("kill", cid, "KILL").ok()
    rt.wait_stopped(cid)
    c, p = both(rt, "--root", rt.root, "state", cid)
    assert c.stdout == p.stdout and json.loads(c.stdout)["pid"] == 0


def test_lifecycle_in_c_alone(rt, alone):
    """start, kill, kill --all KILL, delete: no Python at all after create."""
    cid, pid = rt.created(config(["sleep", "1000"]))
    dirs = cgroup_dirs_for(cid)
    assert dirs
    r = run([alone, "--root", rt.root, "start", cid])
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r
    assert rt.status(cid) == "running"
    r = run([alone, "--root", rt.root, "kill", cid, "SIGCONT"])
    assert r.returncode == 0 and r.stderr == "", r
    assert rt.status(cid) == "running"
    r = run([alone, "--root", rt.root, "kill", "--all", cid, "9"])
    assert r.returncode == 0, r
    rt.wait_stopped(cid)
    r = run([alone, "--root", rt.root, "delete", cid])
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r
    assert not os.path.exists(os.path.join(rt.root, cid))
    assert not [d for d in dirs if os.path.exists(d)]


def test_delete_force_running_in_c(rt, alone):
    cid, pid = rt.created(config(["sleep", "1000"]))
    rt("start", cid).ok()
    dirs = cgroup_dirs_for(cid)
    r = run([alone, "--root", rt.root, "delete", "-f", cid])
    assert r.returncode == 0 and r.stderr == "", r
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), "init gone")
    assert not os.path.exists(os.path.join(rt.root, cid))
    assert not [d for d in dirs if os.path.exists(d)]
    # --force of what is not there: nothing to say, in C too
    r = run([alone, "--root", rt.root, "delete", "--force=true", cid])
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_delete_force_paused_in_c(rt, alone):
    """A paused container: its init is killed, thawed so that it can die, removed."""
    cid, pid = rt.created(config(["sleep", "1000"]))
    rt("start", cid).ok()
    r = rt("pause", cid)
    if r.rc != 0:
        pytest.skip(f"pause does not work here: {r.err.strip()}")
    assert rt.status(cid) == "paused"
    dirs = cgroup_dirs_for(cid)
    r = run([alone, "--root", rt.root, "delete", cid])  # not without --force: Python says so
    assert r.returncode == 1 and "sangja-py" in r.stderr
    r = run([alone, "--root", rt.root, "delete", "--force", cid])
    assert r.returncode == 0 and r.stderr == "", r
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), "init gone")
    assert not os.path.exists(os.path.join(rt.root, cid))
    assert not [d for d in dirs if os.path.exists(d)]


def test_delete_created_without_force_in_c(rt, alone):
    """A created container goes without --force (runc's rule, and the Python runtime's)."""
    cid, pid = rt.created(config(["sleep", "1000"]))
    r = run([alone, "--root", rt.root, "delete", cid])
    assert r.returncode == 0, r
    assert not os.path.exists(os.path.join(rt.root, cid))


@pytest.mark.parametrize(
    "args",
    [
        ["state", "nope"],
        ["kill", "nope"],
        ["delete", "nope"],
        ["start", "nope"],
        ["state"],
        ["state", "a", "b"],
        ["kill", "--bogus", "x"],
        ["state", "../x"],
    ],
)
def test_errors_same_in_c_and_python(rt, alone, args):
    """Errors: the same line, exit code and --log record (text and json)."""
    for fmt in ("text", "json"):
        logs = [os.path.join(rt.workdir, f"{fmt}-{n}.log") for n in ("c", "py")]
        c = run([rt.binary, "--root", rt.root, "--log", logs[0], "--log-format", fmt, *args])
        p = run([rt.binary, "--root", rt.root, "--log", logs[1], "--log-format", fmt, *args],
                py=True)  # fmt: skip
        assert (c.returncode, c.stdout, c.stderr) == (p.returncode, p.stdout, p.stderr)
        assert c.returncode != 0 and c.stderr.startswith("sangja: ")
        lines = []
        # a usage error is found before the log is opened: none is written, by either
        assert os.path.exists(logs[0]) == os.path.exists(logs[1])
        for path in filter(os.path.exists, logs):
            with open(path) as f:
                text = f.read()
            if fmt == "json":
                rec = json.loads(text)
                lines.append((rec["level"], rec["msg"]))
            else:
                lines.append(text.split(" ", 1)[1])  # past time="…"
        assert not lines or lines[0] == lines[1]


def test_state_of_a_running_container_is_running_in_both(rt):
    require_front(rt)
    cid, _ = rt.created(config(["sleep", "1000"]))
    rt("start", cid).ok()
    c, p = both(rt, "--root", rt.root, "kill", cid, "CONT")
    assert c.returncode == p.returncode == 0
    c, p = both(rt, "--root", rt.root, "state", cid)
    assert json.loads(c.stdout)["status"] == json.loads(p.stdout)["status"] == "running"


def test_hand_off(rt, alone, tmp_path):
    """What needs Python goes to it: hooks, other verbs, the engine's commands; and
    SANGJA_PYTHON=1 sends everything."""
    hook = tmp_path / "hook.sh"
    hook.write_text("#!/bin/sh\nexit 0\n")
    hook.chmod(0o755)
    cfg = config(["sleep", "1000"])
    cfg["hooks"] = {"poststart": [{"path": str(hook)}]}
    cid, _ = rt.created(cfg)
    for args in (["start", cid], ["pause", cid], ["--version"], ["image", "ls"]):
        r = run([alone, "--root", rt.root, *args])
        assert r.returncode == 1 and "sangja-py" in r.stderr, (args, r)
    # state needs no hooks: C answers it
    assert run([alone, "--root", rt.root, "state", cid]).returncode == 0
    env = dict(os.environ, SANGJA_PYTHON="1")
    r = subprocess.run([alone, "--root", rt.root, "state", cid], capture_output=True,
                       text=True, env=env)  # fmt: skip
    assert r.returncode == 1 and "sangja-py" in r.stderr
    rt("start", cid).ok()  # the installed one: through Python, hooks and all
    assert rt.status(cid) == "running"


def test_list_and_ps_json_same_in_c_and_python(rt, alone):
    a, _ = rt.created(config(["sleep", "1000"]))
    b, _ = rt.created(config(["sleep", "1000"]))
    rt("start", a).ok()
    for args in (["list"], ["list", "-q"], ["list", "--format", "json"], ["-root", rt.root,
                 "list", "-f=json"], ["ps", "--format", "json", a], ["ps", "-f", "json", b],
                 ["list", "--format", "yaml"]):  # fmt: skip
        c, p = both(rt, "--root", rt.root, *args)
        assert (c.returncode, c.stdout, c.stderr) == (p.returncode, p.stdout, p.stderr), args
    ids = [
        s["id"] for s in json.loads(run([alone, "--root", rt.root, "list", "-f", "json"]).stdout)
    ]
    assert sorted(ids) == sorted([a, b])
    pids = json.loads(run([alone, "--root", rt.root, "ps", "--format", "json", a]).stdout)
    assert rt.state(a)["pid"] in pids
    # the table of `ps` runs the ps program: Python's
    r = run([alone, "--root", rt.root, "ps", a])
    assert r.returncode == 1 and "sangja-py" in r.stderr


def test_state_module_from_python(rt):
    """The runtime's face of csrc/state/: peek() (no lock) and status_of() (a record read
    elsewhere) give what the front end's `state` says, by the one rule."""
    if rt.name != "sangja":
        pytest.skip("sangja's own module")
    assert st.peek(rt.root, "no-such-container") is None
    cid, pid = rt.created(config(["sleep", "1000"]))
    fifo = os.path.join(rt.root, cid, st.FIFO)
    for want in ("created", "running", "stopped"):
        record, status = st.peek(rt.root, cid)
        assert status == want == rt.status(cid)
        assert record["id"] == cid and record["pid"] == pid
        assert st.status_of(record, fifo) == want
        if want == "created":
            rt("start", cid).ok()
        elif want == "running":
            rt("kill", cid, "KILL").ok()
            rt.wait_stopped(cid)
    with pytest.raises(ValueError):
        st.status_of({"pid": "not a number"}, fifo)


def test_refusals_on_a_live_container_same_in_c_and_python(rt, alone):
    """What C leaves to Python on a live container answers the same either way, and
    leaves the container as it was."""
    cid, _ = rt.created(config(["sleep", "1000"]))
    rt("start", cid).ok()
    refusals = [
        ["delete", cid],
        ["delete", "--force=false", cid],
        ["kill", cid, "SIGFOO"],
        ["kill", cid, "0"],
        ["kill", cid, "65"],
        ["kill", cid, "SIG_DFL"],
        ["kill", cid, "KILL", "extra"],
        ["start", cid],
        ["kill", "-all=maybe", cid],
    ]
    for args in refusals:
        c, p = both(rt, "--root", rt.root, *args)
        assert (c.returncode, c.stdout, c.stderr) == (p.returncode, p.stdout, p.stderr), args
        assert c.returncode != 0, args
        assert rt.status(cid) == "running"
    # spellings C takes itself: the signal by number, by name, any case
    for sig in ("18", "cont", "SIGCONT", "sigcont"):
        r = run([alone, "--root", rt.root, "kill", cid, sig])
        assert r.returncode == 0, (sig, r)
    assert rt.status(cid) == "running"


def test_kill_all_any_signal_in_c(rt, alone):
    """kill --all with a signal other than KILL: the cgroup frozen, every process
    signalled, thawed. An exec'd `sleep` dies of USR1; the init (pid 1 of its namespace,
    no handler) is left, and the container is not left frozen."""
    cid, pid = rt.created(config(["sleep", "1000"]))
    rt("start", cid).ok()
    pidfile = os.path.join(rt.workdir, "exec.pid")
    rt("exec", "-d", "--pid-file", pidfile, cid, "sleep", "1000").ok()
    with open(pidfile) as f:
        epid = int(f.read())
    assert os.path.exists(f"/proc/{epid}")
    r = run([alone, "--root", rt.root, "kill", "--all", cid, "USR1"])
    assert r.returncode == 0 and r.stderr == "", r
    wait_for(lambda: proc_state(epid) in (None, "Z"), "exec'd sleep gone")
    assert rt.status(cid) == "running"
    assert os.path.exists(f"/proc/{pid}")


def _proc_id(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f"{pid}:{f.read().rsplit(')', 1)[1].split()[19]}"


def test_exit_command_of_a_live_foreground_run_in_c(rt, alone, tmp_path):
    """conmon's exit command after a foreground run (`container cleanup --unless-alive
    PID:START`): while that process lives the front end answers 0 itself; a waiter that is
    gone, a zombie, a pid reused (another start time), or a command line it does not
    know goes to Python, argv unchanged."""
    waiter = subprocess.Popen(["sleep", "1000"])
    try:
        me = _proc_id(waiter.pid)
        cid = "a" * 64
        ok = run([alone, "--root", rt.root, "container", "cleanup", "--run", "3",
                  "--unless-alive", me, cid])  # fmt: skip
        assert (ok.returncode, ok.stdout, ok.stderr) == (0, "", ""), ok
        for form in (["--run=3", f"--unless-alive={me}", cid], ["-unless-alive", me, cid]):
            r = run([alone, "--root", rt.root, "container", "cleanup", *form])
            assert r.returncode == 0 and r.stderr == "", (form, r)
        pid, start = me.split(":")
        for args in (
            ["--run", "3", "--unless-alive", f"{pid}:{int(start) + 1}", cid],  # reused pid
            ["--run", "3", "--unless-alive", f"{pid}:0{start}", cid],  # not the same text
            ["--run", "3", "--unless-alive", f"x{pid}:{start}", cid],
            ["--run", "3", cid],  # no waiter
            ["--run", "3", "--unless-alive", me],  # no container
            ["--run", "3", "--unless-alive", me, "--force", cid],  # a flag it does not know
        ):  # fmt: skip
            r = run([alone, "--root", rt.root, "container", "cleanup", *args])
            assert r.returncode == 1 and "sangja-py" in r.stderr, (args, r)
        env = dict(os.environ, SANGJA_PYTHON="1")
        r = subprocess.run([alone, "--root", rt.root, "container", "cleanup", "--run", "3",
                            "--unless-alive", me, cid], capture_output=True, text=True,
                           env=env)  # fmt: skip
        assert r.returncode == 1 and "sangja-py" in r.stderr
    finally:
        waiter.kill()
    # a zombie is no waiter (not reaped yet: still in /proc)
    wait_for(lambda: proc_state(waiter.pid) in (None, "Z"), "the waiter a zombie")
    r = run([alone, "--root", rt.root, "container", "cleanup", "--run", "3",
             "--unless-alive", me, cid])  # fmt: skip
    assert r.returncode == 1 and "sangja-py" in r.stderr, r
    waiter.wait()
    # through Python: the same answer for a live waiter (and nothing to do for an unknown id)
    keep = _proc_id(os.getpid())
    c, p = both(rt, "--root", rt.root, "container", "cleanup", "--run", "3", "--unless-alive",
                keep, cid)  # fmt: skip
    assert (c.returncode, c.stdout, c.stderr) == (p.returncode, p.stdout, p.stderr) == (0, "", "")


def test_exit_command_while_a_stop_handles_the_run_in_c(rt, alone, tmp_path):
    """`container cleanup --run N ID` while a `stop` of run N lives (its note
    `monitor/handled` under $SANGJA_ROOT: "N PID:START", engine/containers.py
    `_handling`): answered 0 in C.  Another run, a dead stopper, no note, a root that is
    not absolute, an id that is not 64 hex digits: Python's."""
    cid = "b" * 64
    mon = tmp_path / "root" / "containers" / cid / "monitor"
    mon.mkdir(parents=True)
    stopper = subprocess.Popen(["sleep", "1000"])
    env = dict(os.environ, SANGJA_ROOT=str(tmp_path / "root"))
    env.pop("SANGJA_PYTHON", None)

    def cleanup(*args, **extra):
        return subprocess.run([alone, "--root", rt.root, "container", "cleanup", *args],
                              capture_output=True, text=True, env=dict(env, **extra))  # fmt: skip

    sid = _proc_id(stopper.pid)
    try:
        (mon / "handled").write_text(f"3 {sid}")
        r = cleanup("--run", "3", cid)
        assert (r.returncode, r.stdout, r.stderr) == (0, "", ""), r
        gone = f"{2**22 + 1}:1"  # a foreground waiter gone: the stop's note still holds
        assert cleanup("--run", "3", "--unless-alive", gone, cid).returncode == 0
        for args, extra in (
            (["--run", "4", cid], {}),  # a later run
            (["--run", "03", cid], {}),  # not the same text
            (["--run", "3", "c" * 64], {}),  # no note
            (["--run", "3", cid.upper()], {}),
            (["--run", "3", cid], {"SANGJA_ROOT": "root"}),  # relative: not the engine's
            (["--run", "3", cid], {"SANGJA_ROOT": ""}),
            ([cid], {}),  # no run named
        ):  # fmt: skip
            r = cleanup(*args, **extra)
            assert r.returncode == 1 and "sangja-py" in r.stderr, (args, extra, r)
        pid, start = sid.split(":")
        (mon / "handled").write_text(f"3 {pid}:{int(start) + 1}")  # that pid, reused
        assert "sangja-py" in cleanup("--run", "3", cid).stderr
    finally:
        stopper.kill()
        stopper.wait()
    (mon / "handled").write_text(f"3 {sid}")
    assert "sangja-py" in cleanup("--run", "3", cid).stderr  # the stopper is gone
