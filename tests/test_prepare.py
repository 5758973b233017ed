"""A create prepared in the caller's process (the engine's): Runtime.prepare compiles the
plan and makes the state dir and the cgroups; the front end's `create` (csrc/front/
create.c) spawns the init from the plan, in C, and records it. Any call it was not prepared
for goes to the Python CLI, which discards the plan and creates as always.

The front end is also copied alone into a directory without `sangja-py` (test_front.py's
way): there, a create it ran itself works, and a hand-off fails with `exec …`."""

import json
import os
import socket
import subprocess
import threading

import pytest
from rtkit import cgroup_dirs_for, config, proc_state, require_front, wait_for

# the installed package (with its _native modules), imported before bundles.default_config
# puts the source tree first on sys.path
from sangja._native import launch
from sangja.errors import SangjaError
from sangja.runtime.container import PREPARED_FILE, Runtime
from sangja.runtime.plan import compile_create


def _c_env():
    """The environment without SANGJA_PYTHON (the second pass of `make test` sets it)."""
    env = dict(os.environ)
    env.pop("SANGJA_PYTHON", None)
    return env


def _prepared(rt, cfg):
    """A bundle for `cfg`, prepared under a new id: -> (id, bundle)."""
    b = rt.bundle(cfg)
    cid = rt.new_id(cgroups_path=(cfg.get("linux") or {}).get("cgroupsPath"))
    assert Runtime(root=rt.root).prepare(cid, b.path, cfg) is True
    return cid, b


def _create(binary, rt, cid, b, *flags, **kw):
    return rt.__class__("sangja", binary, rt.workdir)("create", "--bundle", b.path, *flags,
                                                      cid, **kw)  # fmt: skip


def test_c_create_runs_the_container(rt, alone):
    cfg = config(["sh", "-c", "echo out; echo err >&2; hostname; cat /proc/self/status"])
    cfg["hostname"] = "prepared"
    cid, b = _prepared(rt, cfg)
    plan = os.path.join(rt.root, cid, PREPARED_FILE)
    assert os.stat(plan).st_mode & 0o777 == 0o600  # the process's environment is in it
    assert rt.status(cid) == "creating"  # its creator (this process) lives
    pidfile = os.path.join(rt.workdir, "pid")
    with open(os.path.join(rt.workdir, "out"), "w+") as out:
        argv = [alone, "--root", rt.root, "create", "--bundle", b.path, "--pid-file", pidfile,
                cid]  # fmt: skip
        # a file, not a pipe: the init holds what it inherits
        got = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                             env=_c_env())  # fmt: skip
        assert got.returncode == 0, got  # run by the copy alone: in C
        assert not os.path.exists(plan)  # spent
        st = rt.state(cid)
        assert st["status"] == "created" and st["pid"] > 0
        with open(pidfile) as f:
            assert int(f.read()) == st["pid"]
        rt.pids.add(st["pid"])
        rt("start", cid).ok()
        rt.wait_stopped(cid)
        out.seek(0)
        text = out.read()
    assert text.startswith("out\nerr\nprepared\n"), text
    rt("delete", cid).ok()
    # the same process as the Python create makes: identity, capabilities, seccomp
    keys = ("Uid", "Gid", "Groups", "Cap", "NoNewPrivs", "Seccomp")
    py = rt.output(cfg)

    def picked(t):
        return [ln for ln in t.splitlines() if ln.startswith(keys)]

    assert picked(text) == picked(py) and len(picked(py)) >= 9, (text, py)


def test_record_matches_pythons(rt):
    """state.json written by C has what the Python create writes, member for member."""
    require_front(rt)
    cfg = config(["sleep", "1000"])
    cfg["annotations"] = {'q"x': "tab\tü"}
    cid, b = _prepared(rt, cfg)
    _create(rt.binary, rt, cid, b).ok()
    py, _ = rt.create(cfg)
    with open(os.path.join(rt.root, cid, "state.json")) as f:
        c_state = json.load(f)
    with open(os.path.join(rt.root, py, "state.json")) as f:
        py_state = json.load(f)
    assert sorted(c_state) == sorted(py_state)
    for k in ("ociVersion", "annotations", "hooks", "console", "no_new_keyring", "owner"):
        assert c_state[k] == py_state[k], k
    pid, py_pid = c_state["pid"], py_state["pid"]
    assert c_state["namespaces"] == {
        t: p.replace(f"/proc/{py_pid}/", f"/proc/{pid}/") for t, p in py_state["namespaces"].items()
    }
    assert f"/proc/{pid}/ns/pid" in c_state["namespaces"].values()
    assert c_state["pid_start"] > 0
    for c in (cid, py):
        rt.pids.add(rt.state(c)["pid"])
        rt("delete", "--force", c).ok()


@pytest.mark.parametrize("py", [False, True], ids=["c", "python"])
def test_a_failed_launch_is_reported_and_removed(rt, py):
    """An init that cannot exec its program: C says what Python says, exit 1; the state dir
    stays (creating/stopped) until the engine's `delete --force`, which leaves nothing."""
    require_front(rt)
    cfg = config(["/no/such/program"])
    cid, b = _prepared(rt, cfg)
    env = dict(os.environ, SANGJA_PYTHON="1" if py else "0")
    r = _create(rt.binary, rt, cid, b, env=env)
    assert r.rc == 1
    assert r.err == 'sangja: exec: "/no/such/program": no such file or directory\n', r
    rt("delete", "--force", cid).ok()
    assert not os.path.exists(os.path.join(rt.root, cid))
    assert not [d for d in cgroup_dirs_for(cid) if os.path.exists(d)]


def test_python_discards_a_plan_it_finds(rt):
    """SANGJA_PYTHON=1 (every call in Python): the prepared container is undone and made
    again, from config.json."""
    require_front(rt)
    cid, b = _prepared(rt, config(["sh", "-c", "echo made by python"]))
    r = _create(rt.binary, rt, cid, b, env=dict(os.environ, SANGJA_PYTHON="1"))
    assert r.rc == 0, r
    assert not os.path.exists(os.path.join(rt.root, cid, PREPARED_FILE))
    rt.pids.add(rt.state(cid)["pid"])
    rt("start", cid).ok()
    rt.wait_stopped(cid)
    rt("delete", cid).ok()


def test_other_calls_go_to_python(rt, alone):
    """Another bundle, options the plan did not foresee, a damaged plan: handed over (the
    copy alone cannot exec Python), nothing spent."""
    cid, b = _prepared(rt, config(["true"]))
    other = rt.bundle(config(["true"]))
    plan = os.path.join(rt.root, cid, PREPARED_FILE)
    for flags in (["--bundle", other.path], ["--bundle", b.path, "--no-pivot"],
                  ["--bundle", b.path, "--preserve-fds", "1"]):  # fmt: skip
        r = rt.__class__("sangja", alone, rt.workdir)("create", *flags, cid)
        assert r.rc != 0 and "exec " in r.err, (flags, r)
        assert os.path.exists(plan)
    with open(plan, "r+b") as f:
        f.truncate(100)
    r = rt.__class__("sangja", alone, rt.workdir)("create", "--bundle", b.path, cid)
    assert r.rc != 0 and "exec " in r.err, r
    # the real binary hands it to Python, which makes it anew
    _create(rt.binary, rt, cid, b).ok()
    rt.pids.add(rt.state(cid)["pid"])
    rt("delete", "--force", cid).ok()


def test_terminal_through_the_console_socket(rt, alone, tmp_path):
    """process.terminal: the front end connects --console-socket and the init sends it the
    pty master, as the Python create does (conmon -t)."""
    cfg = config(["sh", "-c", "tty; echo on-the-pty"])
    cfg["process"]["terminal"] = True
    cid, b = _prepared(rt, cfg)
    r = rt.__class__("sangja", alone, rt.workdir)("create", "--bundle", b.path, cid, env=_c_env())
    assert r.rc == 1
    assert "cannot allocate tty if sangja will detach without setting console socket" in r.err
    rt("delete", "--force", cid).ok()

    cid, b = _prepared(rt, cfg)
    path = str(tmp_path / "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    got = {}

    def receive():
        conn, _ = srv.accept()
        _, fds, _, _ = socket.recv_fds(conn, 100, 1)
        got["master"] = fds[0]
        conn.close()

    t = threading.Thread(target=receive)
    t.start()
    r = rt.__class__("sangja", alone, rt.workdir)("create", "--bundle", b.path,
                                                  "--console-socket", path, cid,
                                                  env=_c_env())  # fmt: skip
    t.join(10)
    srv.close()
    assert r.rc == 0, r
    rt.pids.add(rt.state(cid)["pid"])
    rt("start", cid).ok()
    text = b""
    while b"on-the-pty" not in text:
        try:
            chunk = os.read(got["master"], 4096)
        except OSError:
            break
        if not chunk:
            break
        text += chunk
    os.close(got["master"])
    assert b"/dev/pts/0" in text and b"on-the-pty" in text, text
    rt.wait_stopped(cid)
    rt("delete", cid).ok()


def test_what_prepare_leaves_to_python(rt):
    """Hooks, a user namespace's maps: prepare makes nothing and says so."""
    require_front(rt)
    runtime = Runtime(root=rt.root)
    cfg = config(["true"])
    cfg["hooks"] = {"prestart": [{"path": "/bin/true"}]}
    b = rt.bundle(cfg)
    cid = rt.new_id()
    assert runtime.prepare(cid, b.path, cfg) is False
    assert not os.path.exists(os.path.join(rt.root, cid))
    cfg = config(["true"])
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    assert runtime.prepare(cid, b.path, cfg) is False
    assert not os.path.exists(os.path.join(rt.root, cid))
    cfg = config(["true"])
    cfg["process"]["args"] = []
    with pytest.raises(SangjaError):  # a bad config: the error, and nothing made
        runtime.prepare(cid, b.path, cfg)
    assert not os.path.exists(os.path.join(rt.root, cid))


def test_plan_block_round_trip(tmp_path):
    """Packing and unpacking agree on everything a plan points to: a plan with mounts,
    devices, sysctls, rlimits, groups, hooks and a seccomp program, unpacked and packed
    again, is the same block."""
    cfg = config(["sh", "-c", "true"])
    cfg["process"]["user"]["additionalGids"] = [5, 6]
    cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 512}]
    cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    cfg["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]
    cfg["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}],
    }
    cfg["hooks"] = {"startContainer": [{"path": "/bin/true", "args": ["true", "x"],
                                        "env": ["A=1"]}]}  # fmt: skip
    cfg["mounts"].append({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
                          "options": ["size=1m"]})  # fmt: skip
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    cfg["root"] = {"path": str(rootfs)}
    layout = {"paths": {}, "unified": None, "clone_into": None, "join": ["/x/tasks"]}
    plan = compile_create(cfg, str(tmp_path), "c1", cgroups=layout, warn=lambda m: None)
    block = launch.pack(plan)
    assert launch.repack(block) == block
    assert b"/data" in block and b"A=1" in block and b"/x/tasks" in block
    with pytest.raises(SangjaError, match="launch plan: not one of this build's"):
        launch.repack(block[:8] + b"\xff" * 4 + block[12:])  # another format number
    with pytest.raises(SangjaError, match="launch plan: not one of this build's"):
        launch.repack(block[:-8])  # shorter than its header says
    with pytest.raises(SangjaError, match="launch plan: truncated"):
        launch.repack(block[:40])


@pytest.mark.parametrize("point", ["create:spawned", "create:ready"])
def test_create_killed_half_way(rt, point):
    """The front end's create killed (-9) with the init made, before and after it is ready:
    the init dies with it (before READY, its parent-death signal; after, `delete --force`
    kills it), and `delete --force` leaves no state dir, cgroup or process (the env
    fixture checks)."""
    require_front(rt)
    cid, b = _prepared(rt, config(["sleep", "1000"]))
    env = dict(os.environ, SANGJA_FAILPOINT=point)
    env.pop("SANGJA_PYTHON", None)
    p = subprocess.Popen(rt.argv("create", "--bundle", b.path, cid), env=env,
                         stdin=subprocess.DEVNULL)  # fmt: skip
    wait_for(lambda: proc_state(p.pid) == "T" or p.poll() is not None, f"create to reach {point}")
    assert p.poll() is None, "create ended before its failpoint"
    p.kill()
    p.wait()
    assert rt.status(cid) in ("creating", "stopped")  # the engine, its creator, lives
    rt("delete", "--force", cid).ok()
    assert not os.path.exists(os.path.join(rt.root, cid))
    assert not [d for d in cgroup_dirs_for(cid) if os.path.exists(d)]


@pytest.mark.parametrize("how", ["c", "python", "declined"])
def test_create_waits_for_a_reserved_dir(rt, alone, how):
    """The engine reserves the state dir (locked) before conmon starts, and prepares while
    conmon's `create` waits for the lock: then the plan is there, run in C (by the copy
    alone) or, with SANGJA_PYTHON=1, discarded and made again by Python; or, when prepare
    declined (hooks), there is no state at all and Python makes it all."""
    cfg = config(["true"])
    if how == "declined":
        cfg["hooks"] = {"prestart": [{"path": "/bin/true"}]}
    b = rt.bundle(cfg)
    cid = rt.new_id()
    runtime = Runtime(root=rt.root)
    reserved = runtime.reserve(cid)
    binary = alone if how == "c" else rt.binary
    env = _c_env() if how == "c" else dict(os.environ, SANGJA_PYTHON="1")
    err = open(os.path.join(rt.workdir, "create.err"), "w+")  # the init holds what it inherits
    p = subprocess.Popen([binary, "--root", rt.root, "create", "--bundle", b.path, cid],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                         env=env)  # fmt: skip
    try:
        wait_for(lambda: _waits_on_lock(p.pid) or p.poll() is not None, "create to wait")
        assert p.poll() is None  # it waits for the lock
    finally:
        prepared = runtime.prepare(cid, b.path, cfg, reserved=reserved)
    assert prepared is (how != "declined")
    assert reserved.fd < 0  # released
    p.wait(timeout=60)
    err.seek(0)
    assert p.returncode == 0, err.read()
    err.close()
    assert not os.path.exists(os.path.join(rt.root, cid, PREPARED_FILE))
    st = rt.state(cid)
    assert st["status"] == "created"
    rt.pids.add(st["pid"])
    rt("delete", "--force", cid).ok()


def _waits_on_lock(pid):
    try:
        with open(f"/proc/{pid}/wchan") as f:
            return "lock" in f.read()  # locks_lock_inode_wait
    except OSError:
        return False


def test_a_failed_prepare_releases_the_reservation(rt):
    """A config prepare refuses: its error, and the reserved dir gone (a create waiting
    for it finds no state: Python's, which says the same)."""
    require_front(rt)
    cfg = config(["true"])
    cfg["process"]["args"] = []
    b = rt.bundle(cfg)
    cid = rt.new_id()
    runtime = Runtime(root=rt.root)
    reserved = runtime.reserve(cid)
    with pytest.raises(SangjaError, match="args"):
        runtime.prepare(cid, b.path, cfg, reserved=reserved)
    assert reserved.fd < 0 and not os.path.exists(os.path.join(rt.root, cid))
