"""The command line as engines use it: global flags, flag forms, spec, logs, quiet stdout."""

import json
import os
import re
import subprocess

import pytest
from rtkit import config, read


def test_version(rt):
    r = rt("--version").ok()
    assert re.match(rf"^{rt.name} version \S+", r.out), r.out
    assert re.search(r"^spec: \d+\.\d+\.\d+", r.out, re.M), r.out


def test_flag_equals_forms(rt):
    """Every flag takes `--flag v` and `--flag=v`."""
    b = rt.bundle(config(["echo", "hi"]))
    cid = rt.new_id()
    pidfile = os.path.join(rt.workdir, "eq.pid")
    argv = [
        rt.binary,
        f"--root={rt.root}",
        "run",
        f"--bundle={b.path}",
        f"--pid-file={pidfile}",
        cid,
    ]
    p = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "hi\n"
    assert int(read(pidfile)) > 0
    assert os.path.isdir(rt.root)  # --root=R was used


def test_root_is_private(rt, env):
    """Containers live under --root: another root does not see them."""
    cid, _ = rt.created(config(["true"]))
    assert os.path.isdir(os.path.join(rt.root, cid))
    other = os.path.join(env.workdir, "other-root")
    p = subprocess.run([rt.binary, "--root", other, "state", cid], capture_output=True, text=True)
    assert p.returncode == 1
    p = subprocess.run([rt.binary, "--root", other, "list", "-q"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout == ""


def test_quiet_stdout(rt):
    """create, start, kill, delete print nothing on stdout."""
    cid, r = rt.create(config(["sleep", "1000"]))
    assert r.ok().out == ""
    assert rt("start", cid).ok().out == ""
    assert rt("kill", cid, "KILL").ok().out == ""
    rt.wait_stopped(cid)
    assert rt("delete", cid).ok().out == ""


def test_spec(rt, env):
    d = os.path.join(env.workdir, "spec")
    os.mkdir(d)
    r = rt("spec", "--bundle", d).ok()
    assert r.out == ""
    c = json.loads(read(os.path.join(d, "config.json")))
    assert c["process"]["args"] == ["sh"]
    assert c["root"] == {"path": "rootfs", "readonly": True}
    assert {n["type"] for n in c["linux"]["namespaces"]} == {
        "pid",
        "network",
        "ipc",
        "uts",
        "mount",
    }
    assert [m["destination"] for m in c["mounts"]][:3] == ["/proc", "/dev", "/dev/pts"]
    # A second spec refuses to overwrite it.
    r = rt("spec", "--bundle", d)
    assert r.rc == 1
    assert "config.json exists" in r.err


def test_spec_in_cwd_and_rootless(rt, env):
    d = os.path.join(env.workdir, "spec2")
    os.mkdir(d)
    rt("spec", "--rootless", cwd=d).ok()
    c = json.loads(read(os.path.join(d, "config.json")))
    types = {n["type"] for n in c["linux"]["namespaces"]}
    assert "user" in types and "network" not in types
    assert c["linux"]["uidMappings"][0]["hostID"] == os.getuid()


def test_spec_config_runs(rt, env):
    """The config `spec` writes runs as it is, once made non-interactive."""
    d = os.path.join(env.workdir, "spec3")
    os.mkdir(d)
    rt("spec", "--bundle", d).ok()
    c = json.loads(read(os.path.join(d, "config.json")))
    c["process"]["terminal"] = False
    c["process"]["args"] = ["hostname"]
    assert rt.output(c) == c["hostname"] + "\n"


def test_log_json_error(rt, env):
    log = os.path.join(env.workdir, "log.json")
    cid = rt.new_id()
    r = rt("--log", log, "--log-format", "json", "state", cid)
    assert r.rc == 1
    lines = [json.loads(x) for x in read(log).splitlines() if x.strip()]
    errors = [x for x in lines if x.get("level") == "error"]
    assert errors, lines
    e = errors[-1]
    assert "container does not exist" in e["msg"]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", e["time"])


def test_log_json_equals_form(rt, env):
    log = os.path.join(env.workdir, "log2.json")
    r = rt(f"--log={log}", "--log-format=json", "delete", rt.new_id())
    assert r.rc == 1
    assert any(json.loads(x)["level"] == "error" for x in read(log).splitlines())


def test_log_text_error(rt, env):
    log = os.path.join(env.workdir, "log.txt")
    r = rt("--log", log, "kill", rt.new_id(), "KILL")
    assert r.rc == 1
    assert "container does not exist" in read(log)


def test_debug_flag_accepted(rt, env):
    log = os.path.join(env.workdir, "debug.log")
    b = rt.bundle(config(["echo", "ok"]))
    cid = rt.new_id()
    r = rt("--debug", "--log", log, "run", "--bundle", b.path, cid).ok()
    assert r.out == "ok\n"


@pytest.mark.sangja_only("runc's messages are logrus lines (time=... level=error msg=...)")
@pytest.mark.parametrize(
    "argv,msg",
    [
        (["state", "ID"], "container does not exist: ID"),
        (["start", "ID"], "container does not exist: ID"),
        (["kill", "ID"], "container does not exist: ID"),
        (["delete", "ID"], "container does not exist: ID"),
    ],
)
def test_error_is_one_line(rt, argv, msg):
    cid = rt.new_id()
    argv = [cid if a == "ID" else a for a in argv]
    r = rt(*argv).failed(1)
    assert r.err == f"sangja: {msg.replace('ID', cid)}\n"
    assert r.out == ""


def test_unknown_command_and_flag(rt):
    assert rt("no-such-command").rc != 0
    b = rt.bundle(config(["true"]))
    r = rt("run", "--no-such-flag", "--bundle", b.path, rt.new_id())
    assert r.rc != 0


def test_missing_id(rt):
    for verb in ("state", "start", "kill", "delete"):
        r = rt(verb)
        assert r.rc != 0, verb
        assert r.out == "" or "Usage" in r.out or "usage" in r.out


# -- features, --log, and never a traceback ------------------------------------------------------


def test_features(rt, runc):
    """runc's `features` verb: the spec's features document, as containerd reads it."""
    f = rt("features").ok().json()
    assert f["ociVersionMin"] == "1.0.0" and re.match(r"^1\.\d+\.\d+", f["ociVersionMax"])
    assert f["hooks"] == ["prestart", "createRuntime", "createContainer", "startContainer",
                          "poststart", "poststop"]  # fmt: skip
    lx = f["linux"]
    assert {"cgroup", "ipc", "mount", "network", "pid", "user", "uts"} <= set(lx["namespaces"])
    assert "CAP_SYS_ADMIN" in lx["capabilities"] and lx["seccomp"]["enabled"] is True
    assert "SCMP_ACT_ERRNO" in lx["seccomp"]["actions"]
    assert "SCMP_CMP_MASKED_EQ" in lx["seccomp"]["operators"]
    assert lx["cgroup"]["v1"] is True and lx["cgroup"]["v2"] is True
    # everything runc 1.1 lists, sangja recognises too (a superset: the time namespace,
    # idmap, ridmap, ...)
    ref = runc("features").ok().json()
    assert set(ref["mountOptions"]) - {"acl", "noacl"} <= set(f["mountOptions"])
    assert set(ref["linux"]["namespaces"]) <= set(lx["namespaces"])
    assert set(ref["linux"]["seccomp"]["actions"]) <= set(lx["seccomp"]["actions"])
    assert set(ref["linux"]["seccomp"]["archs"]) <= set(lx["seccomp"]["archs"])
    if not rt.is_runc:
        assert "idmap" in f["mountOptions"] and "ridmap" in f["mountOptions"]
        assert lx["mountExtensions"] == {"idmap": {"enabled": True}}
        assert set(lx["seccomp"]["supportedFlags"]) <= set(lx["seccomp"]["knownFlags"])


def test_log_that_cannot_be_opened_fails_at_once(rt, env):
    """--log FILE that cannot be opened: an error at once (as runc), before any work."""
    bad = os.path.join(env.workdir, "no-such-dir", "x.log")
    b = rt.bundle(config(["true"]))
    cid = rt.new_id()
    r = rt("--log", bad, "run", "--bundle", b.path, cid)
    assert r.rc == 1 and r.out == "", r
    assert f"open {bad}: no such file or directory" in r.err, r
    rt.assert_nothing_left(cid)


@pytest.mark.sangja_only("sangja's state.json")
def test_no_traceback_for_an_internal_error(rt):
    """An internal error (caused here by a state.json edited to hold nonsense where exec
    reads the namespaces to join) is one line, exit 1; the trace only with --debug."""
    cid, _ = rt.created(config(["sleep", "1000"]))
    path = os.path.join(rt.root, cid, "state.json")
    with open(path) as f:
        state = json.load(f)
    state["namespaces"] = 5
    with open(path, "w") as f:
        json.dump(state, f)
    r = rt("exec", cid, "true")
    assert r.rc == 1 and r.err.startswith("sangja: internal error: "), r
    assert r.err.count("\n") == 1 and "Traceback" not in r.err, r
    r = rt("--debug", "exec", cid, "true")
    assert r.rc == 1 and "Traceback" in r.err and r.err.splitlines()[-1].startswith("sangja: ")


@pytest.mark.sangja_only("sangja's handling of bytes that are not UTF-8 in argv")
def test_exec_args_that_are_not_utf8(rt):
    """Command-line bytes that are not UTF-8 reach the process as they were."""
    cid, _ = rt.created(config(["sleep", "1000"]))
    rt("start", cid).ok()
    argv = rt.argv("exec", cid, "echo", "x") + []
    argv[-1] = b"\xff\xfe"
    p = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"\xff\xfe\n"


@pytest.mark.sangja_only("sangja's state.json")
@pytest.mark.parametrize("damage", ["{not json", "[]", '{"pid": "x", "cgroups": 5}'])
def test_delete_force_of_a_damaged_state_dir(rt, damage):
    """A state dir whose state.json is damaged (by hand, a full disk) can still be removed
    with delete --force (a warning says what could not be found); without --force it is an
    error, one line."""
    cid = rt.new_id()
    d = os.path.join(rt.root, cid)
    os.makedirs(d)
    with open(os.path.join(d, "state.json"), "w") as f:
        f.write(damage)
    r = rt("delete", cid)
    assert r.rc == 1 and r.err.startswith("sangja: ") and r.err.count("\n") == 1, r
    log = os.path.join(rt.workdir, "log")
    r = rt("--log", log, "delete", "--force", cid)
    assert r.rc == 0, r
    assert not os.path.exists(d)
    assert "removing" in read(log)
