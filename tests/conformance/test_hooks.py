# ruff: noqa: E501  (a requirement per docstring: the report line, kept whole)
"""Hooks: the lifecycle steps that invoke them (runtime.md#lifecycle) and what config.md says
of each stage (when, in which namespace, where its path resolves, the state on stdin).

One container with a recording hook at every stage goes through create, start and delete;
the tests read what the hooks recorded and what had run when each operation returned."""

import os

import pytest

from . import kit
from .kit import (
    CONTAINER_ONLY_HOOK,
    HOOK_PATH,
    failing_hook,
    hook,
    hook_dir,
    hook_info,
    hook_order,
    hook_state,
    read,
    wait_for,
)

LEAK = {"CONFORMANCE_LEAK": "from-the-runtime-caller"}


def gone_check(cgp):
    """A hook snippet: do the container's pids cgroup and its process (its pid written to
    init.pid by the test after create) still exist?"""
    d = os.path.join(kit.v1_hierarchy("pids") or "/sys/fs/cgroup/pids", cgp.lstrip("/"))
    return (
        f'\necho "cgroup_exists=$(test -d {d} && echo yes || echo no)" >> "$D/$S.info"\n'
        'p=$(cat "$D/init.pid")\n'
        # a zombie waiting for its reaper is dead: only a running process counts
        "st=$(sed -n 's/.*) \\([A-Z]\\).*/\\1/p' /proc/$p/stat 2>/dev/null)\n"
        'case "$st" in ""|Z|X) a=no;; *) a=yes;; esac\n'
        'echo "old_init_alive=$a" >> "$D/$S.info"\n'
    )


@pytest.fixture(scope="module")
def hooked(shared):
    """create, start, kill, delete one container with a recording hook at every stage."""
    t = shared
    d = hook_dir(t)
    cgp = f"/sjc-hooks-{os.path.basename(d)}-{os.getpid()}"
    env = dict(os.environ, **LEAK)
    # the process writes what it found whole, then renames it: the test waits for the name
    c = t.config(["sh", "-c", "cat /hooks/startContainer.info > /hooks/seen.tmp 2>&1;"
                  " mv /hooks/seen.tmp /hooks/seen-by-process; exec sleep 1000"])  # fmt: skip
    c["annotations"] = {"org.example.hooks": "yes"}
    c["linux"]["cgroupsPath"] = cgp
    c["mounts"].append({"destination": "/hooks", "type": "bind", "source": d,
                        "options": ["rbind", "rw"]})  # fmt: skip
    c["hooks"] = {
        "prestart": [hook(d, "prestart")],
        "createRuntime": [hook(d, "createRuntime"), hook(d, "createRuntime2")],
        "createContainer": [hook(d, "createContainer")],
        "startContainer": [{"path": CONTAINER_ONLY_HOOK,
                            "args": [CONTAINER_ONLY_HOOK, "startContainer"],
                            "env": HOOK_PATH}],
        "poststart": [hook(d, "poststart")],
        "poststop": [hook(d, "poststop", extra=gone_check(cgp))],
    }  # fmt: skip
    b = t.bundle(c)
    rec = {"dir": d, "bundle": b.path, "rootfs": t.rootfs, "errors": []}
    cid = t.new_id("hooks")
    rec["id"] = cid
    r = t("create", "--bundle", b.path, cid, env=env)
    rec["after_create"] = hook_order(d)
    if r.rc != 0:
        rec["errors"].append(f"create failed: {r!r}")
        return rec
    st = t.state(cid)
    rec["pid"] = pid = st["pid"]
    with open(os.path.join(d, "init.pid"), "w") as f:
        f.write(str(pid))
    rec["container_ns"] = {n: kit.ns_of(pid, n) for n in ("mnt", "pid", "uts", "net", "ipc")}
    r = t("start", cid, env=env)
    rec["after_start"] = hook_order(d)
    if r.rc != 0:
        rec["errors"].append(f"start failed: {r!r}")
    else:
        wait_for(lambda: os.path.exists(os.path.join(d, "seen-by-process")), "the process ran")
        rec["seen_by_process"] = read(os.path.join(d, "seen-by-process"))
    t("kill", cid, "KILL")
    wait_for(lambda: t.status(cid) == "stopped", "stopped")
    r = t("delete", cid, env=env)
    rec["after_delete"] = hook_order(d)
    if r.rc != 0:
        rec["errors"].append(f"delete failed: {r!r}")
    return rec


def need(rec, stage):
    if rec["errors"] and stage not in (rec.get("after_delete") or rec["after_create"]):
        raise AssertionError("; ".join(rec["errors"]))
    assert stage in hook_order(rec["dir"]), f"the {stage} hook never ran"


def runtime_namespace(rec, stage):
    """The hook ran in the runtime's namespaces: not the container's mount, pid or uts
    namespace, with the host's filesystem in view."""
    need(rec, stage)
    info = hook_info(rec["dir"], stage)
    cns = rec["container_ns"]
    assert info["ns_mnt"] != cns["mnt"], "in the container's mount namespace"
    assert info["ns_pid"] == kit.ns_of("self", "pid") != cns["pid"], "not in the host pid ns"
    assert info["ns_uts"] == kit.ns_of("self", "uts"), "not in the host uts namespace"
    assert info["host_marker"] == "yes", "the host's filesystem is not in view"


def container_namespace(rec, stage):
    need(rec, stage)
    info = hook_info(rec["dir"], stage)
    cns = rec["container_ns"]
    for n in ("mnt", "pid", "uts", "net", "ipc"):
        assert info[f"ns_{n}"] == cns[n], f"not in the container's {n} namespace"


def before_pivot_root(rec, mountinfo_text, stage):
    """A mountinfo (the init's or the hook's) still shows the rootfs at its host path, with
    the config's mounts already made under it: after the mounts, before pivot_root."""
    assert mountinfo_text, f"{stage}: no mountinfo recorded"
    points = [m.point for m in kit.mounts(mountinfo_text)]
    rootfs = rec["rootfs"]
    assert os.path.join(rootfs, "proc") in points, (
        f"{stage}: the rootfs is not at its host path with /proc mounted in it "
        f"(pivot_root already done, or mounts not made)"
    )


# -- lifecycle steps ------------------------------------------------------------------------

CREATE_STAGES = ["prestart", "createRuntime", "createContainer"]


@pytest.mark.parametrize("stage", CREATE_STAGES)
def test_create_invokes(target, hooked, stage):
    """runtime.md#lifecycle: the {stage} hooks MUST be invoked by create"""
    need(hooked, stage)
    assert stage in hooked["after_create"], f"{stage} had not run when create returned"


def test_start_invokes_startcontainer(target, hooked):
    """runtime.md#lifecycle: the startContainer hooks MUST be invoked by start (not create)"""
    need(hooked, "startContainer")
    assert "startContainer" not in hooked["after_create"], "ran at create"
    assert "startContainer" in hooked["after_start"], "had not run when start returned"


def test_start_invokes_poststart(target, hooked):
    """runtime.md#lifecycle: the poststart hooks MUST be invoked (config.md#poststart: before start returns)"""
    need(hooked, "poststart")
    assert "poststart" in hooked["after_start"], "had not run when start returned"


def test_delete_invokes_poststop(target, hooked):
    """runtime.md#lifecycle: the poststop hooks MUST be invoked (config.md#poststop: before delete returns)"""
    need(hooked, "poststop")
    assert "poststop" not in hooked["after_start"], "ran before delete"
    assert "poststop" in hooked["after_delete"], "had not run when delete returned"


def run_with_failing(t, stage):
    """A container whose `stage` hook fails, with a recording poststop hook -> (rec dir,
    id, create result, start result or None)."""
    d = hook_dir(t)
    c = t.config(["sleep", "1000"])
    c["mounts"].append({"destination": "/hooks", "type": "bind", "source": d,
                        "options": ["rbind", "rw"]})  # fmt: skip
    bad = failing_hook(d, stage)
    if stage == "startContainer":
        bad = {"path": "/bin/sh", "args": ["sh", "-c", "exit 7"]}  # resolves in the container
    c["hooks"] = {stage: [bad], "poststop": [hook(d, "poststop")]}
    cid, r = t.create(c)
    started = None
    if r.rc == 0:
        pid = t.state(cid)["pid"]
        started = t("start", cid)
        wait_for(lambda: not kit.rtkit.alive(pid), "the container process is gone", guard=10)
    return d, cid, r, started


@pytest.mark.parametrize("stage", CREATE_STAGES + ["startContainer"])
def test_failing_hook_destroys(target, stage):
    """runtime.md#lifecycle: a failing {stage} hook MUST fail the operation, destroy the container and run poststop"""
    t = target
    d, cid, created, started = run_with_failing(t, stage)
    if stage == "startContainer":
        created.ok()
        assert started.rc != 0, "start succeeded though startContainer failed"
    else:
        assert created.rc != 0, f"create succeeded though {stage} failed"
    problems = []
    if not t.gone(cid):
        problems.append(f"the container still exists ({t.status(cid)})")
    if "poststop" not in hook_order(d):
        problems.append("the poststop hooks did not run")
    assert not problems, "; ".join(problems)


@pytest.fixture(scope="module")
def failing_post(shared):
    """For poststart and poststop: a failing hook then a recording one, with --log."""
    t = shared
    out = {}
    for stage in ("poststart", "poststop"):
        d = hook_dir(t)
        log = t.log_file()
        c = t.config(["sleep", "1000"])
        c["hooks"] = {stage: [failing_hook(d, stage), hook(d, stage + "2")]}
        b = t.bundle(c)
        cid = t.new_id("post")
        rec = {"dir": d, "log": log}
        rec["create"] = t("--log", log, "create", "--bundle", b.path, cid)
        rec["start"] = t("--log", log, "start", cid)
        rec["status_after_start"] = t.status(cid) if rec["create"].rc == 0 else None
        t("kill", cid, "KILL")
        if rec["create"].rc == 0:
            wait_for(lambda: t.status(cid) == "stopped", "stopped")  # noqa: B023
        rec["delete"] = t("--log", log, "delete", cid)
        out[stage] = rec
    return out


@pytest.mark.parametrize("stage", ["poststart", "poststop"])
def test_failing_post_hook_continues(target, failing_post, stage):
    """runtime.md#lifecycle: a failing {stage} hook MUST NOT stop the next hooks nor the operation"""
    rec = failing_post[stage]
    rec["create"].ok()
    op = rec["start"] if stage == "poststart" else rec["delete"]
    assert op.rc == 0, f"{op.argv[-2]} failed: {op!r}"
    if stage == "poststart":
        assert rec["status_after_start"] == "running", rec["status_after_start"]
    assert stage + "2" in hook_order(rec["dir"]), "the next hook did not run"


@pytest.mark.parametrize("stage", ["poststart", "poststop"])
def test_failing_post_hook_warns(target, failing_post, stage):
    """runtime.md#lifecycle: a failing {stage} hook MUST be logged as a warning"""
    rec = failing_post[stage]
    op = rec["start"] if stage == "poststart" else rec["delete"]
    logged = read(rec["log"]) + op.err
    assert logged.strip(), "nothing logged (stderr and --log are empty)"


# -- config.md: each stage ------------------------------------------------------------------


def test_hooks_in_listed_order(target, hooked):
    """config.md#posix-platform-hooks: the hooks of a stage MUST be called in the listed order"""
    order = hook_order(hooked["dir"])
    need(hooked, "createRuntime2")
    assert order.index("createRuntime") < order.index("createRuntime2"), order


STAGES = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart",
          "poststop"]  # fmt: skip


@pytest.mark.parametrize("stage", STAGES)
def test_state_on_stdin(target, hooked, stage):
    """config.md#posix-platform-hooks: the {stage} hook MUST get the container's state on stdin"""
    need(hooked, stage)
    st = hook_state(hooked["dir"], stage)
    assert st.get("id") == hooked["id"], st
    assert st.get("bundle") == os.path.realpath(hooked["bundle"]), st
    assert st.get("ociVersion") and st.get("status"), st
    assert st.get("annotations") == {"org.example.hooks": "yes"}, st


@pytest.mark.parametrize("stage", ["prestart", "createRuntime", "poststart"])
def test_state_pid_runtime_namespace(target, hooked, stage):
    """runtime.md#state: the {stage} hook (runtime namespace) gets the pid as the runtime sees it"""
    need(hooked, stage)
    assert hook_state(hooked["dir"], stage).get("pid") == hooked["pid"]


@pytest.mark.parametrize("stage", ["createContainer", "startContainer"])
def test_state_pid_container_namespace(target, hooked, stage):
    """runtime.md#state: the {stage} hook (container namespace) gets the pid as the container sees it"""
    need(hooked, stage)
    assert hook_state(hooked["dir"], stage).get("pid") == 1


def test_hook_args_and_env(target, hooked):
    """config.md#posix-platform-hooks: a hook gets its args as argv and its env as its whole environment"""
    need(hooked, "createRuntime")
    info = hook_info(hooked["dir"], "createRuntime")
    assert info["args"] == f"{hooked['dir']} createRuntime", info["args"]
    env = read(os.path.join(hooked["dir"], "createRuntime.env"))
    assert "HOOK_STAGE=createRuntime" in env.splitlines(), env
    assert "CONFORMANCE_LEAK" not in env, "the runtime's own environment leaked into the hook"


def test_hook_timeout(target):
    """config.md#posix-platform-hooks: a hook still running at its timeout MUST be aborted (create fails)"""
    t = target
    d = hook_dir(t)
    c = t.config()
    c["hooks"] = {"createRuntime": [hook(d, "createRuntime", extra="sleep 4", timeout=1)]}
    cid, r = t.create(c)
    assert r.rc != 0, "create succeeded: the hook was not aborted at its timeout"


def test_prestart_when(target, hooked):
    """config.md#prestart: prestart MUST run during create, after the environment is made, before pivot_root"""
    need(hooked, "prestart")
    before_pivot_root(hooked, read(os.path.join(hooked["dir"], "prestart.initmountinfo")),
                      "prestart")  # fmt: skip


def test_prestart_before_createruntime(target, hooked):
    """config.md#prestart: prestart MUST be called before the createRuntime hooks"""
    order = hook_order(hooked["dir"])
    need(hooked, "prestart")
    need(hooked, "createRuntime")
    assert order.index("prestart") < order.index("createRuntime"), order


@pytest.mark.parametrize("stage", ["prestart", "createRuntime", "poststart", "poststop"])
def test_runtime_namespace(target, hooked, stage):
    """config.md#posix-platform-hooks: {stage} MUST run in the runtime namespace (path resolved there)"""
    runtime_namespace(hooked, stage)


def test_createruntime_when(target, hooked):
    """config.md#createruntime-hooks: createRuntime MUST run during create, after the environment is made, before pivot_root"""
    need(hooked, "createRuntime")
    before_pivot_root(hooked, read(os.path.join(hooked["dir"], "createRuntime.initmountinfo")),
                      "createRuntime")  # fmt: skip


def test_createcontainer_when(target, hooked):
    """config.md#createcontainer-hooks: createContainer MUST run during create, after the mounts, before pivot_root"""
    need(hooked, "createContainer")
    before_pivot_root(hooked, read(os.path.join(hooked["dir"], "createContainer.mountinfo")),
                      "createContainer")  # fmt: skip


def test_createcontainer_after_createruntime(target, hooked):
    """config.md#createcontainer-hooks: createContainer MUST be called after the createRuntime hooks"""
    order = hook_order(hooked["dir"])
    need(hooked, "createContainer")
    assert order.index("createRuntime2") < order.index("createContainer"), order


def test_createcontainer_namespace(target, hooked):
    """config.md#createcontainer-hooks: createContainer MUST run in the container namespace, its path resolved in the runtime's"""
    container_namespace(hooked, "createContainer")
    assert hook_info(hooked["dir"], "createContainer")["host_marker"] == "yes"


def test_startcontainer_namespace(target, hooked):
    """config.md#startcontainer-hooks: startContainer MUST resolve and run in the container namespace"""
    container_namespace(hooked, "startContainer")
    root = hook_info(hooked["dir"], "startContainer")["root_entries"].split()
    assert "conformance-hook" in root, f"its / is not the container's: {root}"


def test_startcontainer_before_process(target, hooked):
    """config.md#startcontainer-hooks: startContainer MUST run before the user process is executed"""
    need(hooked, "startContainer")
    assert "ns_mnt=" in hooked.get("seen_by_process", ""), (
        f"the process did not find the hook's output: {hooked.get('seen_by_process')!r}"
    )


def test_poststart_after_process(target, hooked):
    """config.md#poststart: poststart MUST run after the user process is executed"""
    need(hooked, "poststart")
    cmd = hook_info(hooked["dir"], "poststart")["init_cmdline"]
    assert cmd.startswith(("sh -c cat /hooks", "sleep 1000")), f"the init was running {cmd!r}"


def test_poststop_after_delete(target, hooked):
    """config.md#poststop: poststop MUST run after the container is deleted (process and cgroup gone)"""
    need(hooked, "poststop")
    info = hook_info(hooked["dir"], "poststop")
    assert info.get("old_init_alive") == "no", "the container process was still there"
    assert info.get("cgroup_exists") == "no", "the container's cgroup was still there"
