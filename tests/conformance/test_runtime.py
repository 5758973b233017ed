# ruff: noqa: E501  (a requirement per docstring: the report line, kept whole)
"""runtime.md: the state, the lifecycle, the operations and their errors; runtime-linux.md:
file descriptors and /dev symlinks. (The hook steps of the lifecycle: test_hooks.py.)"""

import os
import re

import pytest

from . import kit
from .kit import read, wait_for

SEMVER = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
SLEEP = "exec sleep 1000"


def out_dir(t):
    """A host directory the container sees at /out (read-write), for what it writes."""
    d = t.mkdir(f"out-{t._n}", mode=0o777)
    t._n += 1
    return d


def with_out(cfg, d):
    cfg["mounts"].append({"destination": "/out", "type": "bind", "source": d,
                          "options": ["rbind", "rw"]})  # fmt: skip
    return cfg


def cgroup_path_cfg(t, cfg, tag):
    cgp = f"/sjc-{tag}-{os.path.basename(t.workdir)}-{t._n}"
    t._n += 1
    cfg["linux"]["cgroupsPath"] = cgp
    return cgp


def cgroup_dirs(cgp):
    """Every v1/v2 directory where cgroupsPath `cgp` (absolute) lives on this host."""
    out = []
    for m in kit.mounts(read("/proc/self/mountinfo")):
        if m.fstype in ("cgroup", "cgroup2"):
            d = os.path.normpath(m.point + cgp)
            if os.path.isdir(d):
                out.append(d)
    return out


# -- scope, state ---------------------------------------------------------------------------


def test_scope_every_operation(target):
    """runtime.md#scope-of-a-container: whoever created a container MUST be able to use every operation on it"""
    t = target
    cid, r = t.create(t.sh_config(SLEEP))
    r.ok()
    t("state", cid).ok()
    t("start", cid).ok()
    t("state", cid).ok()
    t("kill", cid, "KILL").ok()
    wait_for(lambda: t.status(cid) == "stopped", "stopped after kill")
    t("delete", cid).ok()


def test_state_required_properties(target):
    """runtime.md#state: the state MUST carry ociVersion (SemVer), id, status, and pid while created/running"""
    t = target
    cid, pid = t.created(t.sh_config(SLEEP))
    st = t.state(cid)
    assert isinstance(st.get("ociVersion"), str) and SEMVER.match(st["ociVersion"]), st
    assert st.get("id") == cid, st
    assert st.get("status") == "created", st
    assert isinstance(st.get("pid"), int) and st["pid"] > 0, st


def test_state_bundle_absolute(target):
    """runtime.md#state: bundle MUST be the absolute path of the bundle directory (given relative)"""
    t = target
    b = t.bundle(t.sh_config(SLEEP))
    cid = t.new_id()
    t("create", "--bundle", os.path.basename(b.path), cid, cwd=t.workdir).ok()
    st = t.state(cid)
    assert st.get("bundle") == os.path.realpath(b.path), st


def test_state_annotations(target):
    """runtime.md#state: annotations of config.json are listed in the state"""
    t = target
    c = t.sh_config(SLEEP)
    c["annotations"] = {"org.example.conformance": "yes", "com.example.empty": ""}
    cid, _ = t.created(c)
    assert t.state(cid).get("annotations") == c["annotations"]


def test_state_pid_as_seen_by_host(target):
    """runtime.md#state: pid MUST be the container process's id as the host sees it"""
    t = target
    cid, pid = t.started(t.sh_config(SLEEP))
    assert t.state(cid)["pid"] == pid
    wait_for(lambda: read(f"/proc/{pid}/cmdline").split("\0")[0] == "sleep", "sleep runs")
    nspid = kit.status_fields(read(f"/proc/{pid}/status"))["NSpid"].split()
    assert nspid[0] == str(pid) and nspid[-1] == "1", nspid


def test_status_created(target):
    """runtime.md#create: status MUST be `created` once create has succeeded"""
    t = target
    cid, r = t.create(t.sh_config(SLEEP))
    r.ok()
    assert t.status(cid) == "created"


def test_status_running(target):
    """runtime.md#state: status is `running` while the user program runs"""
    t = target
    cid, pid = t.started(t.sh_config(SLEEP))
    assert t.status(cid) == "running"


def test_status_stopped(target):
    """runtime.md#state: status is `stopped` once the container process has exited"""
    t = target
    cid, pid = t.started(t.sh_config("exit 3"))
    wait_for(lambda: t.status(cid) == "stopped", "the container stopped")


# -- lifecycle ------------------------------------------------------------------------------


def test_create_applies_all_but_process(target):
    """runtime.md#create: create MUST apply all of config.json but process (namespaces, mounts, cgroups before start)"""
    t = target
    c = t.sh_config(SLEEP)
    c["hostname"] = "made-at-create"
    c["mounts"].append({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs",
                        "options": ["size=1m"]})  # fmt: skip
    c["linux"]["resources"]["pids"] = {"limit": 77}
    cid, pid = t.created(c)
    uts = kit.rtkit.subprocess.run(["nsenter", "-t", str(pid), "-u", "hostname"],
                                   capture_output=True, text=True).stdout.strip()  # fmt: skip
    assert uts == "made-at-create", "hostname not set at create"
    m = kit.mount_at(read(f"/proc/{pid}/mountinfo"), "/mnt")
    assert m is not None and m.fstype == "tmpfs", "the tmpfs at /mnt is not mounted at create"
    d = kit.rtkit.cgroup_dir(pid, "pids")
    assert d and read(os.path.join(d, "pids.max")).strip() == "77", "pids limit not set at create"


def test_program_not_run_at_create(target):
    """runtime.md#lifecycle: the user program MUST NOT run at create (process.args only at start)"""
    t = target
    d = out_dir(t)
    cid, pid = t.created(with_out(t.sh_config("echo ran > /out/ran; exec sleep 1000"), d))
    assert not os.path.exists(os.path.join(d, "ran")), "the program ran at create"
    assert read(f"/proc/{pid}/cmdline").split("\0")[:2] != ["sh", "-c"], "the program was exec'd"
    t("start", cid).ok()
    wait_for(lambda: os.path.exists(os.path.join(d, "ran")), "the program ran after start")


def test_config_change_after_create_ignored(target):
    """runtime.md#lifecycle: changing config.json after create MUST NOT affect the container"""
    t = target
    d = out_dir(t)
    b = t.bundle(with_out(t.sh_config("echo first > /out/which; exec sleep 1000"), d))
    cid = t.new_id()
    t("create", "--bundle", b.path, cid).ok()
    b.config["process"]["args"] = ["sh", "-c", "echo second > /out/which; exec sleep 1000"]
    b.write()
    t("start", cid).ok()
    wait_for(lambda: read(os.path.join(d, "which")), "the program wrote")
    assert read(os.path.join(d, "which")).strip() == "first"


def test_create_fails_when_environment_impossible(target):
    """runtime.md#lifecycle: create MUST fail when the environment of config.json cannot be made"""
    t = target
    c = t.config()
    c["mounts"].append({"destination": "/mnt", "type": "bind",
                        "source": t.path("no-such-source"), "options": ["rbind"]})  # fmt: skip
    cid, r = t.create(c)
    assert r.rc != 0, f"create succeeded: {r!r}"


def test_error_leaves_nothing(target):
    """runtime.md#errors: a failed create MUST leave no trace (state, cgroup, process, mount) and the id free"""
    t = target
    c = t.sh_config(SLEEP)
    cgp = cgroup_path_cfg(t, c, "err")
    c["linux"]["resources"]["pids"] = {"limit": 50}
    c["mounts"].append({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs"})
    c["mounts"].append({"destination": "/mnt/x", "type": "bind",
                        "source": t.path("no-such-source"), "options": ["rbind"]})  # fmt: skip
    mounts_before = set(kit.rtkit.host_mounts())
    pids_before = kit.rtkit.all_pids()
    ns_before = kit.rtkit.namespaces_in_use()
    b = t.bundle(c)
    cid, r = t.create(b)
    assert r.rc != 0, f"create succeeded: {r!r}"
    problems = []
    if t("state", cid).rc == 0:
        problems.append("state still answers")
    if os.path.lexists(os.path.join(t.root, cid)):
        problems.append("state directory left")
    problems += [f"cgroup {d}" for d in cgroup_dirs(cgp)]
    new_mounts = set(kit.rtkit.host_mounts()) - mounts_before
    problems += [f"mount {m}" for m in new_mounts if m.startswith((t.workdir, t.rootfs))]
    assert not problems, f"left behind: {problems}"
    wait_for(lambda: not kit.rtkit.container_processes(pids_before, ns_before, t.workdir, [cid]),
             "no process of the failed create left", guard=10)  # fmt: skip
    ok = t.sh_config(SLEEP)
    t.create(ok, cid=cid)[1].ok()


# -- operations -----------------------------------------------------------------------------


def test_state_needs_id(target):
    """runtime.md#query-state: state MUST fail when not given an id"""
    assert target("state").rc != 0


def test_state_unknown_id(target):
    """runtime.md#query-state: state of a container that does not exist MUST fail"""
    assert target("state", "sjc-no-such-container").rc != 0


def test_create_needs_id_and_bundle(target):
    """runtime.md#create: create MUST fail without an id or without a bundle (no config.json)"""
    t = target
    b = t.bundle(t.config())
    assert t("create", "--bundle", b.path).rc != 0, "create without an id succeeded"
    empty = t.mkdir("empty-bundle")
    cid = t.new_id()
    assert t("create", "--bundle", empty, cid).rc != 0, "create without config.json succeeded"


def test_create_duplicate_id(target):
    """runtime.md#create: an id already in use MUST be refused and no new container made"""
    t = target
    cid, pid = t.created(t.sh_config(SLEEP))
    r = t.create(t.sh_config(SLEEP), cid=cid)[1]
    assert r.rc != 0, f"a second create with the same id succeeded: {r!r}"
    st = t.state(cid)
    assert st["status"] == "created" and st["pid"] == pid, st


@pytest.mark.parametrize("bad_id", ["a/b", ".."])
def test_create_invalid_id(target, bad_id):
    """runtime.md#create: an invalid id MUST be refused ({bad_id!r})"""
    t = target
    b = t.bundle(t.config())
    t.ids[bad_id] = None
    r = t("create", "--bundle", b.path, bad_id)
    assert r.rc != 0, f"create {bad_id!r} succeeded"


def test_create_unapplicable_property(target):
    """runtime.md#create: a property that cannot be applied MUST fail create and make no container"""
    t = target
    c = t.config()
    c["linux"]["sysctl"] = {"kernel.conformance_no_such_key": "1"}
    cid, r = t.create(c)
    assert r.rc != 0, f"create succeeded: {r!r}"
    assert t.gone(cid), "a container was created"


def test_start_needs_id(target):
    """runtime.md#start: start MUST fail without an id (or with an unknown one)"""
    assert target("start").rc != 0
    assert target("start", "sjc-no-such-container").rc != 0


@pytest.mark.parametrize("status", ["running", "stopped"])
def test_start_not_created(target, status):
    """runtime.md#start: start of a {status} (not created) container MUST fail and change nothing"""
    t = target
    d = out_dir(t)
    prog = "echo x >> /out/runs; " + (SLEEP if status == "running" else "exit 0")
    cid, pid = t.started(with_out(t.sh_config(prog), d))
    wait_for(lambda: read(os.path.join(d, "runs")), "the program ran")
    if status == "stopped":
        wait_for(lambda: t.status(cid) == "stopped", "stopped")
    r = t("start", cid)
    assert r.rc != 0, f"start of a {status} container succeeded"
    st = t.state(cid)
    assert st["status"] == status, st
    if status == "running":
        assert st["pid"] == pid, st
    assert read(os.path.join(d, "runs")).count("x") == 1, "the program ran again"


def test_start_without_process(target):
    """runtime.md#start: start MUST fail when config.json has no process"""
    t = target
    c = t.config()
    del c["process"]
    cid, r = t.create(c)
    if r.rc != 0:
        return  # refused at create (validation is allowed): start cannot run it either
    assert t("start", cid).rc != 0, "start ran a container without process"


def test_kill_needs_id(target):
    """runtime.md#kill: kill MUST fail without an id"""
    assert target("kill").rc != 0


def test_kill_stopped(target):
    """runtime.md#kill: kill of a container neither created nor running MUST fail and change nothing"""
    t = target
    cid, pid = t.started(t.sh_config("exit 0"))
    wait_for(lambda: t.status(cid) == "stopped", "stopped")
    r = t("kill", cid, "KILL")
    assert r.rc != 0, "kill of a stopped container succeeded"
    assert t.status(cid) == "stopped"


def test_kill_sends_signal(target):
    """runtime.md#kill: kill MUST send the given signal to the container process"""
    t = target
    d = out_dir(t)
    prog = "trap 'echo got-usr1 > /out/sig; exit 0' USR1; echo ready > /out/ready; " \
           "while :; do sleep 0.05; done"  # fmt: skip
    cid, pid = t.started(with_out(t.sh_config(prog), d))
    wait_for(lambda: read(os.path.join(d, "ready")), "the trap is set")
    t("kill", cid, "USR1").ok()
    wait_for(lambda: read(os.path.join(d, "sig")), "the signal arrived")
    assert read(os.path.join(d, "sig")).strip() == "got-usr1"


def test_kill_created(target):
    """runtime.md#kill: kill MUST deliver the signal to a created container too"""
    t = target
    cid, pid = t.created(t.sh_config(SLEEP))
    t("kill", cid, "KILL").ok()
    wait_for(lambda: t.status(cid) == "stopped", "the created container stopped")


def test_delete_needs_id(target):
    """runtime.md#delete: delete MUST fail without an id (or with an unknown one)"""
    assert target("delete").rc != 0
    assert target("delete", "sjc-no-such-container").rc != 0


def test_delete_running(target):
    """runtime.md#delete: delete of a running container MUST fail and change nothing"""
    t = target
    cid, pid = t.started(t.sh_config(SLEEP))
    assert t("delete", cid).rc != 0, "delete of a running container succeeded"
    st = t.state(cid)
    assert st["status"] == "running" and st["pid"] == pid, st
    assert kit.rtkit.alive(pid)


def test_delete_created(target):
    """runtime.md#delete: delete of a created (not stopped) container MUST fail and change nothing"""
    t = target
    cid, pid = t.created(t.sh_config(SLEEP))
    r = t("delete", cid)
    assert r.rc != 0, "delete of a created container succeeded (and destroyed it)"
    st = t.state(cid)
    assert st["status"] == "created" and st["pid"] == pid, st


def test_delete_removes_resources(target):
    """runtime.md#delete: delete MUST remove what create made (state, cgroups, processes, mounts)"""
    t = target
    c = t.sh_config("exit 0")
    cgp = cgroup_path_cfg(t, c, "del")
    c["linux"]["resources"]["pids"] = {"limit": 60}
    mounts_before = set(kit.rtkit.host_mounts())
    cid, pid = t.started(c)
    wait_for(lambda: t.status(cid) == "stopped", "stopped")
    assert cgroup_dirs(cgp), "no cgroup was made at cgroupsPath"
    t("delete", cid).ok()
    problems = []
    if not t.gone(cid):
        problems.append("state still answers")
    if os.path.lexists(os.path.join(t.root, cid)):
        problems.append("state directory left")
    problems += [f"cgroup {d}" for d in cgroup_dirs(cgp)]
    new = set(kit.rtkit.host_mounts()) - mounts_before
    problems += [f"mount {m}" for m in new if m.startswith((t.workdir, t.rootfs))]
    if kit.rtkit.alive(pid):
        problems.append(f"process {pid}")
    assert not problems, f"left behind: {problems}"


def test_delete_keeps_what_it_did_not_create(target):
    """runtime.md#delete: delete MUST NOT remove what the container did not create (joined namespace, bind source, bundle)"""
    t = target
    ns_holder = t.helper(["unshare", "--net", "sleep", "1000"])
    wait_for(lambda: kit.ns_of(ns_holder.pid, "net") != kit.ns_of("self", "net"), "netns")
    netns = kit.ns_of(ns_holder.pid, "net")
    src = t.mkdir("volume")
    with open(os.path.join(src, "keep"), "w") as f:
        f.write("keep\n")
    c = t.sh_config("exit 0")
    c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]
    c["linux"]["namespaces"].append({"type": "network", "path": f"/proc/{ns_holder.pid}/ns/net"})
    c["mounts"].append({"destination": "/mnt", "type": "bind", "source": src,
                        "options": ["rbind", "rw"]})  # fmt: skip
    b = t.bundle(c)
    cid, pid = t.started(b)
    wait_for(lambda: t.status(cid) == "stopped", "stopped")
    t("delete", cid).ok()
    assert ns_holder.poll() is None and kit.ns_of(ns_holder.pid, "net") == netns, "netns gone"
    assert read(os.path.join(src, "keep")) == "keep\n", "the bind source was touched"
    assert os.path.exists(os.path.join(b.path, "config.json")), "the bundle was removed"
    assert os.path.exists(os.path.join(t.rootfs, "bin/busybox")), "the rootfs was removed"


def test_delete_keeps_existing_cgroup(target):
    """runtime.md#delete: a cgroup that existed before create (cgroupsPath) MUST NOT be removed"""
    t = target
    c = t.sh_config("exit 0")
    cgp = cgroup_path_cfg(t, c, "pre")
    made = []
    for ctrl in ("pids", "memory"):
        d = os.path.join(kit.v1_hierarchy(ctrl) or f"/sys/fs/cgroup/{ctrl}", cgp.lstrip("/"))
        os.makedirs(d)
        made.append(d)
    try:
        cid, pid = t.started(c)
        wait_for(lambda: t.status(cid) == "stopped", "stopped")
        t("delete", cid).ok()
        gone = [d for d in made if not os.path.isdir(d)]
        assert not gone, f"delete removed cgroups it did not create: {gone}"
    finally:
        for d in made:
            if os.path.isdir(d):
                os.rmdir(d)
        for d in cgroup_dirs(cgp):
            os.rmdir(d)


# -- runtime-linux.md -----------------------------------------------------------------------


def test_only_stdio_fds(target):
    """runtime-linux.md#file-descriptors: only stdin, stdout and stderr are open in the container process"""
    t = target
    r, w = os.pipe()  # inheritable fds of the caller: the container must not get them
    os.set_inheritable(r, True)
    os.set_inheritable(w, True)
    try:
        b = t.bundle(t.config(["sleep", "1000"]))
        cid = t.new_id()
        t("create", "--bundle", b.path, cid, pass_fds=(r, w)).ok()
        t("start", cid, pass_fds=(r, w)).ok()
    finally:
        os.close(r)
        os.close(w)
    pid = t.state(cid)["pid"]
    wait_for(lambda: read(f"/proc/{pid}/cmdline").startswith("sleep"), "sleep runs")
    assert sorted(os.listdir(f"/proc/{pid}/fd"), key=int) == ["0", "1", "2"]


DEV_LINKS = {"/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0",
             "/dev/stdout": "/proc/self/fd/1", "/dev/stderr": "/proc/self/fd/2"}  # fmt: skip


@pytest.fixture(scope="module")
def dev_links(shared):
    return shared.probe([(link, f"readlink {link}") for link in DEV_LINKS])


@pytest.mark.parametrize("link", sorted(DEV_LINKS))
def test_dev_symlinks(target, dev_links, link):
    """runtime-linux.md#dev-symbolic-links: {link} MUST be a symlink to its /proc/self/fd source"""
    assert dev_links[link].strip() == DEV_LINKS[link], dev_links[link]
