"""OCI hooks: every stage at its point of the lifecycle and in its namespace, with the state
on stdin, path/args/env/timeout honored; fatal stages fail create (or start) and leave
nothing behind, poststart/poststop failures are only logged."""

import json
import os

import pytest
from rtkit import alive, config, read, wait_for

HOST_SH = "/bin/sh"
# What every hook records: its stage, env, and mount namespace (one line, appended).
SCRIPT = 'cat > "$D/$1.json"; echo "$1 $HOOK_ENV $(readlink /proc/self/ns/mnt)" >> "$D/order"'
ENV = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]


def hook(stage, d, path=HOST_SH, timeout=None, script=SCRIPT):
    h = {"path": path, "args": ["sh", "-c", f"D={d}; {script}", "sh", stage],
         "env": ENV + [f"HOOK_ENV=env-{stage}"]}  # fmt: skip
    if timeout:
        h["timeout"] = timeout
    return h


def hooks_dir(rt):
    d = os.path.join(rt.workdir, f"hooks-{rt.name}-{len(rt.ids)}")
    os.makedirs(d)
    return d


def with_hooks(rt, hooks, args=("sleep", "1000")):
    """A config with `hooks` and an annotation."""
    c = config(list(args))
    c["hooks"] = hooks
    c["annotations"] = {"org.example.k": "v"}
    return c


def order(d):
    return [line.split() for line in read(os.path.join(d, "order")).splitlines()]


def state_of(d, stage):
    with open(os.path.join(d, f"{stage}.json")) as f:
        return json.load(f)


def test_every_stage_in_order(rt):
    d = hooks_dir(rt)
    hooks = {s: [hook(s, d)] for s in ("prestart", "createRuntime", "createContainer",
                                       "poststart", "poststop")}  # fmt: skip
    # startContainer resolves in the container: its sh, the host dir mounted at /hooks
    hooks["startContainer"] = [hook("startContainer", "/hooks", path="/bin/sh")]
    c = with_hooks(rt, hooks)
    c["mounts"].append({"destination": "/hooks", "type": "bind", "source": d,
                        "options": ["rbind", "rw"]})  # fmt: skip
    b = rt.bundle(c)
    host_mnt = os.readlink("/proc/self/ns/mnt")

    # runc 1.1 runs poststart at create and startContainer after it released start: under
    # runc only the stages' contents are checked, not their order
    def stages():
        names = [x[0] for x in order(d)]
        return sorted(names) if rt.is_runc else names

    def expect(*names):
        return sorted(names) if rt.is_runc else list(names)

    cid, init = rt.created(b)
    container_mnt = os.readlink(f"/proc/{init}/ns/mnt")
    if not rt.is_runc:
        assert stages() == expect("prestart", "createRuntime", "createContainer")
    rt("start", cid).ok()
    wait_for(lambda: len(order(d)) == 5, "five stages ran")
    assert stages() == expect("prestart", "createRuntime", "createContainer",
                              "startContainer", "poststart")  # fmt: skip
    rt("delete", "--force", cid).ok()
    lines = order(d)
    assert [x[0] for x in lines][-1] == "poststop"
    assert len(lines) == 6

    for stage, env, mnt in lines:
        assert env == f"env-{stage}"  # the hook's own env, and its args ($1)
        in_container = stage in ("createContainer", "startContainer")
        assert mnt == (container_mnt if in_container else host_mnt), stage

    want = {
        "prestart": ("creating", init),
        "createRuntime": ("creating", init),
        "createContainer": ("creating", 1),  # the pid as the container sees it
        "startContainer": ("created", 1),
        "poststart": ("running", init),
    }
    if rt.is_runc:
        del want["poststart"]  # run at create by runc 1.1: "created"
    for stage, (status, pid) in want.items():
        st = state_of(d, stage)
        assert st["id"] == cid, stage
        assert st["status"] == status, stage
        assert st["pid"] == pid, stage
        assert st["bundle"] == os.path.realpath(b.path), stage
        assert st["annotations"] == {"org.example.k": "v"}, stage
        assert st["ociVersion"]
    st = state_of(d, "poststop")
    assert st["id"] == cid
    assert st["status"] == "stopped"


@pytest.mark.parametrize("stage", ["prestart", "createRuntime", "createContainer"])
def test_failing_hook_fails_create(rt, stage):
    d = hooks_dir(rt)
    bad = hook(stage, d, script="echo first line >&2; echo 'hook says no' >&2; exit 3")
    c = with_hooks(rt, {stage: [bad], "poststop": [hook("poststop", d)]})
    cid, r = rt.create(c)
    assert r.rc == 1
    assert "hook says no" in r.err
    if not rt.is_runc:
        assert f"{stage} hook {HOST_SH}: exit status 3: hook says no" in r.err
    rt.assert_nothing_left(cid)
    # the spec: stop, destroy, then the poststop hooks
    assert [x[0] for x in order(d)] == ["poststop"]
    assert state_of(d, "poststop")["status"] == "stopped"


def test_hook_not_found_fails_create(rt):
    c = with_hooks(rt, {"createRuntime": [{"path": "/nonexistent/hook"}]})
    cid, r = rt.create(c)
    assert r.rc == 1
    assert "/nonexistent/hook" in r.err and "no such file or directory" in r.err
    rt.assert_nothing_left(cid)


@pytest.mark.parametrize("stage", ["createRuntime", "createContainer"])
def test_hook_timeout_fails_create(rt, stage):
    """The hook is killed at its timeout; create fails and leaves nothing, the hook included."""
    d = hooks_dir(rt)
    # $$ as the host sees it (before pivot_root /proc is the host's, even in a pid ns)
    script = "cut -d' ' -f4 /proc/self/stat > $D/pid; exec sleep 1000"
    c = with_hooks(rt, {stage: [hook(stage, d, timeout=1, script=script)]})
    cid, r = rt.create(c)
    assert r.rc == 1
    if not rt.is_runc:
        assert f"{stage} hook {HOST_SH}: timed out after 1s" in r.err
    else:
        assert "timeout" in r.err
    pid = int(read(os.path.join(d, "pid")))
    wait_for(lambda: not alive(pid), "the timed-out hook is gone", guard=10)
    rt.assert_nothing_left(cid)


@pytest.mark.sangja_only("runc kills only the hook, not what it started")
def test_hook_timeout_kills_its_process_group(rt):
    d = hooks_dir(rt)
    script = "sleep 1000 & echo $! > $D/child; wait"
    c = with_hooks(rt, {"createRuntime": [hook("createRuntime", d, timeout=1, script=script)]})
    cid, r = rt.create(c)
    assert r.rc == 1
    child = int(read(os.path.join(d, "child")))
    wait_for(lambda: not alive(child), "the hook's child is gone", guard=10)
    rt.assert_nothing_left(cid)


def test_hook_reads_whole_state_or_none(rt):
    """A hook that never reads stdin (and one given a large state) both work."""
    d = hooks_dir(rt)
    c = with_hooks(rt, {
        "createRuntime": [hook("createRuntime", d, script="exit 0")],
        "createContainer": [hook("createContainer", d)],
    })  # fmt: skip
    c["annotations"] = {f"k{i}": "v" * 200 for i in range(500)}  # ~100 KiB, past a pipe buffer
    cid, _ = rt.created(rt.bundle(c))
    assert state_of(d, "createContainer")["annotations"] == c["annotations"]


@pytest.mark.sangja_only("runc releases start before it runs startContainer hooks")
def test_failing_start_container_hook_fails_start(rt):
    d = hooks_dir(rt)
    bad = hook("startContainer", "/tmp", path="/bin/sh", script="echo 'not today' >&2; exit 2")
    c = with_hooks(rt, {"startContainer": [bad], "poststart": [hook("poststart", d)],
                        "poststop": [hook("poststop", d)]})  # fmt: skip
    cid, _ = rt.created(rt.bundle(c))
    r = rt("start", cid)
    assert r.rc == 1
    assert "startContainer hook /bin/sh: exit status 2: not today" in r.err
    # the spec: stop, destroy, poststop; never poststart
    rt.assert_nothing_left(cid)
    assert [x[0] for x in order(d)] == ["poststop"]
    assert rt("delete", "--force", cid).rc == 0


@pytest.mark.sangja_only("runc 1.1 kills the container when a poststart hook fails")
def test_poststart_and_poststop_failures_are_logged(rt):
    d = hooks_dir(rt)
    c = with_hooks(rt, {
        "poststart": [hook("poststart", d, script="echo post-start-bad >&2; exit 1"),
                      hook("poststart", d)],
        "poststop": [hook("poststop", d, script="exit 5"), hook("poststop", d)],
    })  # fmt: skip
    cid, _ = rt.created(rt.bundle(c))
    log = os.path.join(rt.workdir, "log")
    rt("--log", log, "start", cid).ok()
    assert rt.status(cid) == "running"
    assert "poststart hook /bin/sh: exit status 1: post-start-bad" in read(log)
    rt("--log", log, "delete", "--force", cid).ok()
    assert "poststop hook /bin/sh: exit status 5" in read(log)
    # the next hook of the stage still ran
    assert [x[0] for x in order(d)] == ["poststart", "poststop"]


# -- env, and what a hook can never do to delete -----------------------------------------------

ENV_SCRIPT = 'echo "$1 ${SJT_RUNTIME_ENV:-unset}" >> "$D/env"'


@pytest.mark.parametrize("stages", [
    pytest.param(("prestart", "createRuntime", "poststart", "poststop"), id="runtime-ns"),
    pytest.param(("createContainer",), id="container-ns", marks=pytest.mark.sangja_only(
        "runc 1.1 runs createContainer hooks from its init, whose environment it cleared")),
])  # fmt: skip
def test_hook_without_env_gets_the_runtimes_env(rt, stages):
    """A hook without `env` inherits the runtime's environment (runc, crun); with an empty
    `env` it gets none."""
    d = hooks_dir(rt)
    hooks = {}
    for s in stages:
        bare = hook(s, d, script=ENV_SCRIPT)
        del bare["env"]
        empty = hook(s, d, script=ENV_SCRIPT.replace("$1", "$1-empty"))
        empty["env"] = []
        hooks[s] = [bare, empty]
    c = with_hooks(rt, hooks)
    env = {**os.environ, "SJT_RUNTIME_ENV": "inherited"}
    cid, _ = rt.created(rt.bundle(c), env=env)
    rt("start", cid, env=env).ok()
    rt("delete", "--force", cid, env=env).ok()
    want = []
    for s in stages:
        want += [f"{s} inherited", f"{s}-empty unset"]
    assert read(os.path.join(d, "env")).splitlines() == want


@pytest.mark.sangja_only("what sangja's delete --force guarantees")
def test_delete_force_whatever_poststop_hooks_do(rt):
    """poststop hooks that fail, time out or cannot even start: delete --force still removes
    the container (state dir last) and exits 0, the hooks' failures logged."""
    d = hooks_dir(rt)
    c = with_hooks(rt, {"poststop": [
        hook("poststop", d, script="exit 7"),
        hook("poststop", d, timeout=1, script="exec sleep 1000"),
        {"path": "/nonexistent/hook"},
        hook("poststop", d),
    ]})  # fmt: skip
    cid, _ = rt.created(rt.bundle(c))
    log = os.path.join(rt.workdir, "log")
    r = rt("--log", log, "delete", "--force", cid)
    assert r.rc == 0, r
    rt.assert_nothing_left(cid)
    text = read(log)
    assert "exit status 7" in text and "timed out" in text and "/nonexistent/hook" in text
    assert [x[0] for x in order(d)] == ["poststop"]  # the last one still ran


@pytest.mark.sangja_only("a state.json of sangja's own")
def test_delete_force_with_a_state_whose_hooks_cannot_run(rt):
    """A state dir whose recorded hooks are beyond running (a timeout of 2**64, as an older
    sangja accepted, edited in here): delete --force still removes it."""
    import json

    c = with_hooks(rt, {"poststop": [{"path": HOST_SH, "timeout": 1}]})
    cid, _ = rt.created(rt.bundle(c))
    path = os.path.join(rt.root, cid, "state.json")
    with open(path) as f:
        state = json.load(f)
    state["hooks"]["poststop"][0]["timeout"] = 2**64
    state["hooks"]["poststart"] = "not a list"
    with open(path, "w") as f:
        json.dump(state, f)
    r = rt("delete", "--force", cid)
    assert r.rc == 0, r
    rt.assert_nothing_left(cid)
