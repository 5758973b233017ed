"""Errors: bad input and failures inside the child reach the caller as one clear line, exit 1,
and leave nothing behind (no state dir, cgroup, process) — checked before any cleanup.

runc's texts differ from the issue's (runc prints logrus lines and other words): the message
assertions apply to sangja only; exit code and cleanliness apply to both.
"""

import json
import os

import pytest
from rtkit import config


def check_error(rt, r, cid, *words, rc=1):
    """Exit `rc`; sangja: one line `sangja: ...` naming `words` (any case); nothing left of
    `cid`."""
    assert r.rc == rc, r
    assert r.out == "", r
    if not rt.is_runc:
        assert r.err.startswith("sangja: "), r.err
        assert r.err.endswith("\n") and r.err.count("\n") == 1, f"not one line: {r.err!r}"
        for w in words:
            assert w.lower() in r.err.lower(), (w, r.err)
    rt.assert_nothing_left(cid)


def bad(mutate, raw=None):
    """A bundle whose config.json is `mutate(default config)`, or the raw text `raw`."""

    def make(rt):
        c = config(["true"])
        if mutate:
            mutate(c)
        b = rt.bundle(c)
        if raw is not None:
            with open(os.path.join(b.path, "config.json"), "w") as f:
                f.write(raw)
        return b

    return make


def _set(path, value):
    def mutate(c):
        *parents, last = path.split(".")
        d = c
        for k in parents:
            d = d[k]
        if value is KeyError:
            del d[last]
        else:
            d[last] = value

    return mutate


BAD_INPUT = {
    # name: (bundle maker, words the sangja message must name)
    "malformed-json": (bad(None, raw='{"ociVersion": "1.0.2", "process": {'), ["config.json"]),
    "not-an-object": (bad(None, raw="[1, 2]"), ["config.json"]),
    "no-root": (bad(_set("root", KeyError)), ["config.json", "root"]),
    "no-root-path": (bad(_set("root.path", KeyError)), ["config.json", "root.path"]),
    "no-args": (bad(_set("process.args", KeyError)), ["config.json", "process.args"]),
    "empty-args": (bad(_set("process.args", [])), ["config.json", "process.args"]),
    "relative-cwd": (bad(_set("process.cwd", "rel/dir")), ["config.json", "process.cwd"]),
    "hostname-type": (bad(_set("hostname", 5)), ["config.json", "hostname"]),
    "uid-type": (bad(_set("process.user.uid", "root")), ["config.json", "process.user.uid"]),
    "unknown-namespace": (
        bad(lambda c: c["linux"]["namespaces"].append({"type": "bogus"})),
        ["bogus"],
    ),
    "missing-rootfs": (
        bad(_set("root.path", "/nonexistent-sangja-rootfs")),
        ["rootfs /nonexistent-sangja-rootfs does not exist or is not a directory"],
    ),
    "rootfs-is-a-file": (bad(_set("root.path", "/etc/passwd")), ["rootfs", "/etc/passwd"]),
    "unknown-rlimit": (
        bad(_set("process.rlimits", [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}])),
        ["RLIMIT_BOGUS"],
    ),
    "hostname-without-uts": (
        bad(lambda c: c["linux"].update(namespaces=[{"type": "mount"}, {"type": "pid"}])),
        ["hostname"],
    ),
}


@pytest.mark.parametrize("verb", ["create", "run"])
@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input(rt, case, verb):
    make, words = BAD_INPUT[case]
    b = make(rt)
    cid = rt.new_id()
    pidfile = os.path.join(rt.workdir, "never.pid")
    r = rt(verb, "--bundle", b.path, "--pid-file", pidfile, cid)
    check_error(rt, r, cid, *words)
    assert not os.path.exists(pidfile)


def test_missing_config(rt, env):
    d = os.path.join(env.workdir, "empty-bundle")
    os.mkdir(d)
    cid = rt.new_id()
    check_error(rt, rt("create", "--bundle", d, cid), cid, "config.json")


def test_missing_bundle(rt, env):
    cid = rt.new_id()
    d = os.path.join(env.workdir, "no-such-bundle")
    check_error(rt, rt("run", "--bundle", d, cid), cid, d)


@pytest.mark.parametrize("verb", ["state", "start", "kill", "delete"])
def test_unknown_id(rt, verb):
    cid = rt.new_id()
    r = rt(verb, cid)
    check_error(rt, r, cid, f"container does not exist: {cid}")
    assert "container does not exist" in r.err


def test_invalid_id(rt):
    """An id that is not a plain name (a path) never reaches the filesystem."""
    b = rt.bundle(config(["true"]))
    for bad_id in ("../escape", "a/b"):
        r = rt("create", "--bundle", b.path, bad_id)
        assert r.rc == 1, r
        assert not os.path.exists(os.path.join(rt.root, bad_id))
        assert not os.path.exists(os.path.join(os.path.dirname(rt.root), "escape"))


def test_duplicate_id_leaves_first(rt):
    cid, pid = rt.created(config(["sleep", "1000"]))
    b = rt.bundle(config(["true"]))
    r = rt("create", "--bundle", b.path, cid)
    assert r.rc == 1
    if not rt.is_runc:
        assert r.err == f"sangja: container with id exists: {cid}\n"
    assert rt.state(cid)["pid"] == pid


# -- failures inside the child -------------------------------------------------------------

CHILD_ERRORS = {
    # name: (mutate config, words every runtime's message names, words sangja's names)
    "nosuchfs": (
        lambda c: c["mounts"].append(
            {"destination": "/mnt-nosuch", "type": "nosuchfs", "source": "none"}
        ),
        ["/mnt-nosuch", "no such device"],
        [],
    ),
    "bind-source-missing": (
        lambda c: c["mounts"].append(
            {"destination": "/m", "type": "bind", "source": "/nonexistent-src", "options": ["bind"]}
        ),
        ["/nonexistent-src", "no such file or directory"],
        ["/m"],
    ),
    "exec-not-found": (
        lambda c: c["process"].update(args=["foo"]),
        ['exec: "foo": executable file not found in $PATH'],
        [],
    ),
    "exec-not-executable": (
        lambda c: c["process"].update(args=["/etc/passwd"]),
        ["/etc/passwd", "permission denied"],
        [],
    ),
    "cwd-is-a-file": (
        lambda c: c["process"].update(cwd="/etc/passwd"),
        ["/etc/passwd", "not a directory"],
        [],
    ),
    "sysctl-missing": (
        lambda c: c["linux"].update(sysctl={"net.ipv4.no_such_knob": "1"}),
        ["no_such_knob", "no such file or directory"],
        [],
    ),
    "rlimit-above-hard": (
        lambda c: c["process"].update(
            rlimits=[{"type": "RLIMIT_NOFILE", "soft": 1 << 30, "hard": 1 << 30}]
        ),
        ["operation not permitted"],
        ["RLIMIT_NOFILE"],
    ),
    "oom-score-adj-negative": (
        lambda c: c["process"].update(oomScoreAdj=-999),
        [],
        ["oom_score_adj", "permission denied"],
    ),
}


@pytest.mark.parametrize("verb", ["create", "run"])
@pytest.mark.parametrize("case", sorted(CHILD_ERRORS))
def test_child_error(rt, case, verb):
    mutate, words, sangja_words = CHILD_ERRORS[case]
    c = config(["true"])
    mutate(c)
    b = rt.bundle(c)
    cid = rt.new_id()
    r = rt(verb, "--bundle", b.path, cid)
    low = r.err.replace('\\"', '"').lower()  # runc's logrus escapes quotes
    for w in words:
        assert w.lower() in low, (w, r.err)
    check_error(rt, r, cid, *sangja_words)


@pytest.mark.sangja_only("runc 1.1 silently drops a capability outside its bounding set")
@pytest.mark.parametrize("capset", ["bounding", "effective", "permitted", "inheritable", "ambient"])
def test_cap_sys_resource(rt, capset):
    with open("/proc/self/status") as f:
        bnd = int([x for x in f if x.startswith("CapBnd:")][0].split()[1], 16)
    if bnd & (1 << 24):
        pytest.skip("CAP_SYS_RESOURCE is in this machine's bounding set")
    c = config(["true"])
    c["process"]["capabilities"].setdefault(capset, []).append("CAP_SYS_RESOURCE")
    if capset == "ambient":
        for s in ("permitted", "inheritable", "bounding"):
            c["process"]["capabilities"].setdefault(s, []).append("CAP_SYS_RESOURCE")
    b = rt.bundle(c)
    cid = rt.new_id()
    r = rt("run", "--bundle", b.path, cid)
    check_error(
        rt, r, cid, "unable to apply caps: CAP_SYS_RESOURCE not in the runtime's bounding set"
    )


def test_log_json_child_error(rt, env):
    """The child's error also reaches --log as a JSON error line."""
    c = config(["true"])
    c["mounts"].append({"destination": "/mnt-nosuch", "type": "nosuchfs", "source": "none"})
    b = rt.bundle(c)
    cid = rt.new_id()
    log = os.path.join(env.workdir, "child.log")
    r = rt("--log", log, "--log-format", "json", "run", "--bundle", b.path, cid)
    assert r.rc == 1
    with open(log) as f:
        lines = [json.loads(x) for x in f if x.strip()]
    errs = [x for x in lines if x["level"] == "error"]
    assert errs and "/mnt-nosuch" in errs[-1]["msg"]
    assert {"level", "msg", "time"} <= set(errs[-1])
    rt.assert_nothing_left(cid)


def test_start_failure_after_create_error_is_not_found(rt):
    """A failed create leaves no container to start, kill or delete."""
    c = config(["true"])
    c["mounts"].append({"destination": "/x", "type": "nosuchfs", "source": "none"})
    cid, r = rt.create(c)
    assert r.rc == 1
    for verb in ("start", "state", "kill", "delete"):
        r = rt(verb, cid)
        assert r.rc == 1, (verb, r)
        assert "does not exist" in r.err
    rt("delete", "--force", cid).ok()
