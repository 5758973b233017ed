"""Container cgroups on this host's real hierarchies: where they are (cgroupsPath as runc reads
it), every limit written before the container runs, device rules, the v2 driver on what this
host's cgroup2 mount has, and nothing left behind after delete.

This host is cgroup v1 hybrid: v1 controllers under /sys/fs/cgroup/<ctrl>, and a cgroup2
mount at /sys/fs/cgroup/unified without controllers (but for hugetlb). The v2 driver runs here
with SANGJA_CGROUP_DRIVER=v2 on that mount: cgroup.procs, cgroup.freeze, cgroup.kill, the
device BPF program and hugetlb are real; its other files are checked without a kernel in
test_cgroup_v2_mapping.py.
"""

import copy
import os
import secrets
import subprocess

import pytest
from rtkit import (
    CGROUP_ROOT,
    NO_BLKIO_WEIGHT,
    UNSET_RESOURCES,
    blkio_weight_file,
    cgroup_dir,
    config,
    read,
    v1_files,
    wait_for,
)

from sangja.errors import ConfigError
from sangja.runtime.cgroups import systemd

V2_ENV = dict(os.environ, SANGJA_CGROUP_DRIVER="v2")
UNIFIED = "/sys/fs/cgroup/unified"


def own_cgroup(controller):
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if controller in ctrls.split(","):
                return path
    raise AssertionError(f"no {controller} hierarchy")


def cgroup_lines(text):
    """/proc/PID/cgroup text -> {controller-list: path}."""
    return dict(line.split(":", 2)[1:] for line in text.splitlines())


# -- where ----------------------------------------------------------------------------------


def test_default_path_is_the_id_under_our_own_cgroup(rt):
    """No cgroupsPath: the id, under the runtime's own cgroup in every hierarchy (runc's
    reading), the unified one of this hybrid host included; the init is there from the
    first instruction of the container's process."""
    c = config(["cat", "/proc/self/cgroup"])
    cid = rt.new_id()
    out = rt.run(c, cid=cid).ok().out
    lines = cgroup_lines(out)
    assert lines["memory"] == os.path.join(own_cgroup("memory"), cid)
    assert lines["pids"] == os.path.join(own_cgroup("pids"), cid)
    assert lines[""] == f"/{cid}"  # this host's cgroup2 mount, as runc does it


def test_absolute_and_relative_cgroups_path(rt):
    tag = secrets.token_hex(4)
    for path, want in (
        (f"/sjt-abs-{tag}", lambda own: f"/sjt-abs-{tag}"),
        (f"sjt-rel-{tag}", lambda own: os.path.join(own, f"sjt-rel-{tag}")),
    ):
        c = config(["cat", "/proc/self/cgroup"])
        c["linux"]["cgroupsPath"] = path
        lines = cgroup_lines(rt.output(c))
        for ctrl in ("memory", "cpu", "devices", "freezer"):
            assert lines[ctrl] == want(own_cgroup(ctrl)), (path, ctrl, lines)


def test_nested_cgroups_path_makes_the_parents(rt):
    """A nested absolute path: the runtime makes the parents, delete removes the leaf (the
    parents stay, as with runc: they may be an engine's)."""
    parent = f"sjt-nest-{secrets.token_hex(4)}"
    c = config(["true"])
    c["linux"]["cgroupsPath"] = f"/{parent}/inner"
    try:
        rt.output(c)
        assert not os.path.exists(f"{CGROUP_ROOT}/memory/{parent}/inner")
    finally:
        for d in os.listdir(CGROUP_ROOT):
            if os.path.isdir(f"{CGROUP_ROOT}/{d}/{parent}"):
                os.rmdir(f"{CGROUP_ROOT}/{d}/{parent}")


def test_limits_are_in_place_before_the_process_runs(rt):
    """The container reads its own limits (its cgroup mount) as its first action."""
    c = config(
        [
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
            "/sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.shares",
        ]
    )
    c["linux"]["resources"].update(
        memory={"limit": 64 << 20}, pids={"limit": 40}, cpu={"shares": 512}
    )
    assert rt.output(c).split() == [str(64 << 20), "40", "512"]


def test_exec_joins_the_container_cgroups(rt):
    cid, pid = rt.created(config(["sleep", "1000"]))
    rt("start", cid).ok()
    r = rt("exec", cid, "cat", "/proc/self/cgroup").ok()
    assert cgroup_lines(r.out) == cgroup_lines(read(f"/proc/{pid}/cgroup"))


# -- every resource ---------------------------------------------------------------------------


# Every v1 resource engines send: (resources, [(controller, file, value read back)]), and the
# file whose presence says the host's kernel (or its block devices) can honour it.
V1_RESOURCES = {
    "memory": ({"memory": {"limit": 96 << 20, "reservation": 32 << 20,
                           "disableOOMKiller": False}},
               [("memory", "memory.limit_in_bytes", str(96 << 20)),
                ("memory", "memory.soft_limit_in_bytes", str(32 << 20))], None),
    "memory.swap": ({"memory": {"limit": 96 << 20, "swap": 128 << 20}},
                    [("memory", "memory.memsw.limit_in_bytes", str(128 << 20))],
                    ("memory", "memory.memsw.limit_in_bytes")),
    "memory.swappiness": ({"memory": {"swappiness": 30}},
                          [("memory", "memory.swappiness", "30")],
                          ("memory", "memory.swappiness")),
    "cpu": ({"cpu": {"shares": 256, "quota": 20000, "period": 100000}},
            [("cpu", "cpu.shares", "256"), ("cpu", "cpu.cfs_quota_us", "20000"),
             ("cpu", "cpu.cfs_period_us", "100000")], None),
    "cpu.realtime": ({"cpu": {"realtimePeriod": 1000000, "realtimeRuntime": 1000}},
                     [("cpu", "cpu.rt_runtime_us", "1000"), ("cpu", "cpu.rt_period_us",
                                                              "1000000")],
                     ("cpu", "cpu.rt_runtime_us")),
    "cpu.idle": ({"cpu": {"idle": 0}}, [("cpu", "cpu.idle", "0")], ("cpu", "cpu.idle")),
    "cpuset": ({"cpu": {"cpus": "0", "mems": "0"}},
               [("cpuset", "cpuset.cpus", "0"), ("cpuset", "cpuset.mems", "0")], None),
    "pids": ({"pids": {"limit": 50}}, [("pids", "pids.max", "50")], None),
    "blockIO.weight": ({"blockIO": {"weight": 300}}, [("blkio", "WEIGHT", "300")],
                       ("blkio", "WEIGHT")),
}  # fmt: skip
WHY_MISSING = {
    "memory.memsw.limit_in_bytes": "no swap accounting in this kernel (swapaccount)",
    "memory.swappiness": "no memory.swappiness in this kernel",
    "cpu.rt_runtime_us": "no RT group scheduling in this kernel (CONFIG_RT_GROUP_SCHED)",
    "cpu.idle": "no cpu.idle in this kernel (5.15+)",
}


def _host_has(need):
    """(True, None), or (False, why) when the host lacks the file `need` asks for."""
    if need is None:
        return True, None
    ctrl, f = need
    if f == "WEIGHT":
        return (True, None) if blkio_weight_file() else (False, NO_BLKIO_WEIGHT)
    if f in v1_files(ctrl):
        return True, None
    return False, f"this host has no {f}: {WHY_MISSING.get(f, 'not in this kernel')}"


def _expected(entries):
    return [(c, blkio_weight_file() if f == "WEIGHT" else f, v) for c, f, v in entries]


@pytest.mark.parametrize("name", sorted(V1_RESOURCES))
def test_v1_resource_file(rt, name):
    """Each resource engines send, in its v1 file, read on the host: where the host has the
    file (the others are a SKIP saying what is missing)."""
    res, entries, need = V1_RESOURCES[name]
    ok, why = _host_has(need)
    if not ok:
        pytest.skip(why)
    c = config(["sleep", "1000"])
    c["linux"]["resources"].update(copy.deepcopy(res))
    cid, pid = rt.created(c)
    for ctrl, f, want in _expected(entries):
        got = read(f"{cgroup_dir(pid, ctrl)}/{f}").split()
        assert got and got[-1] == want, (ctrl, f, got)


def test_every_v1_resource_file(rt):
    """All of them at once, as engines send them (the order between memory and swap, cpu
    period and quota matters), for what the host has."""
    c = config(["sleep", "1000"])
    expect = []
    for _, (res, entries, need) in sorted(V1_RESOURCES.items()):
        if not _host_has(need)[0]:
            continue
        for key, fields in res.items():
            c["linux"]["resources"].setdefault(key, {}).update(fields)
        expect += _expected(entries)
    if "memory.kmem.tcp.limit_in_bytes" in v1_files("memory"):
        c["linux"]["resources"]["memory"]["kernelTCP"] = 16 << 20
    cid, pid = rt.created(c)
    for ctrl, f, want in expect:
        got = read(f"{cgroup_dir(pid, ctrl)}/{f}").split()
        assert got and got[-1] == want, (ctrl, f, got)
    if rt.is_runc or "memory.kmem.tcp.limit_in_bytes" not in v1_files("memory"):
        return  # runc 1.1 ignores kernel memory limits
    tcp = int(read(f"{cgroup_dir(pid, 'memory')}/memory.kmem.tcp.limit_in_bytes"))
    assert (16 << 20) - 4096 <= tcp <= 16 << 20  # the kernel rounds it to pages


def test_blkio_weight_without_bfq_is_an_error(rt):
    """Where the host has no weight file (no BFQ, no CFQ) a blockIO.weight cannot be
    honoured: create fails naming it (runc fails too), nothing left."""
    if blkio_weight_file():
        pytest.skip(f"this host has {blkio_weight_file()}: the weight is honoured")
    c = config(["true"])
    c["linux"]["resources"]["blockIO"] = {"weight": 300}
    cid, r = rt.create(c)
    assert r.rc == 1, r
    if not rt.is_runc:
        assert "linux.resources.blockIO.weight" in r.err and "blkio.weight" in r.err, r
    rt.assert_nothing_left(cid)


def test_zero_values_are_unset(rt):
    """Engines send every field, zero meaning "leave it": nothing changes."""
    c = config(["sleep", "1000"])
    c["linux"]["resources"].update(copy.deepcopy(UNSET_RESOURCES))
    cid, pid = rt.created(c)
    assert int(read(f"{cgroup_dir(pid, 'memory')}/memory.limit_in_bytes")) > 1 << 60
    assert read(f"{cgroup_dir(pid, 'pids')}/pids.max").strip() == "max"
    assert read(f"{cgroup_dir(pid, 'cpu')}/cpu.shares").strip() == "1024"


def test_cpuset_pins(rt):
    c = config(["grep", "Cpus_allowed_list", "/proc/self/status"])
    c["linux"]["resources"]["cpu"] = {"cpus": "1"}
    assert rt.output(c).split() == ["Cpus_allowed_list:", "1"]


def test_fork_bomb_stops_at_pids_limit(rt):
    """30 sleeps asked for under pids.max 10: the forks past it fail, the count stays at
    the limit (the subshell that forked them has gone when it is read: 9)."""
    forks = " ".join(str(i) for i in range(30))
    c = config(
        [
            "sh",
            "-c",
            f"(for i in {forks}; do sleep 1000 & done) 2>/dev/null; "
            "read n < /sys/fs/cgroup/pids/pids.current; "
            "read e < /sys/fs/cgroup/pids/pids.events; echo $n $e",
        ]
    )
    c["linux"]["resources"]["pids"] = {"limit": 10}
    current, key, refused = rt.output(c).split()
    assert (current, key) == ("9", "max") and int(refused) >= 1


def test_memory_limit_oom_kills(rt):
    """A process that touches more than its limit is OOM-killed (SIGKILL: exit 137)."""
    c = config(["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"])
    c["linux"]["resources"]["memory"] = {"limit": 32 << 20}
    if "memory.memsw.limit_in_bytes" in v1_files("memory"):  # no swap to escape to either
        c["linux"]["resources"]["memory"]["swap"] = 32 << 20
    assert rt.run(c).rc == 137


def _kernel_controllers():
    with open("/proc/cgroups") as f:
        return {line.split()[0] for line in f if not line.startswith("#")}


def test_unmounted_controller_is_an_error_naming_it(rt):
    """net_cls not mounted (as on this host): a classID cannot be honoured."""
    if v1_files("net_cls"):
        pytest.skip("this host mounts a net_cls hierarchy")
    c = config(["true"])
    c["linux"]["resources"]["network"] = {"classID": 42}
    r = rt.run(c)
    assert r.rc == 1
    if not rt.is_runc:
        assert "linux.resources.network.classID" in r.err and "net_cls" in r.err


@pytest.mark.sangja_only("runc 1.1.5 looks for every hierarchy under /sys/fs/cgroup")
def test_net_cls_and_net_prio_on_their_own_hierarchy(rt):
    """This host mounts no net_cls/net_prio hierarchy, but the kernel has both: each runtime
    call runs in a private mount namespace where the hierarchy is mounted (the runtime finds
    hierarchies by /proc/self/mountinfo), and the files are read through such a mount too."""
    if not {"net_cls", "net_prio"} <= _kernel_controllers():
        pytest.skip("this kernel has no net_cls or net_prio controller")
    mnt = os.path.join(rt.workdir, "net_cls,net_prio")
    os.mkdir(mnt)
    mount = 'mount -t cgroup -o net_cls,net_prio none "$0"'

    def in_ns(script, *args, check=True):
        argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, mnt, *args]
        return subprocess.run(argv, capture_output=True, text=True, check=check)

    wrapper = os.path.join(rt.workdir, f"{rt.name}-netcls")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec unshare -m --propagation private sh -c "
                f"'{mount} && exec \"$@\"' '{mnt}' {rt.binary} \"$@\"\n")  # fmt: skip
    os.chmod(wrapper, 0o755)
    binary, rt.binary = rt.binary, wrapper

    def cat(path):
        return in_ns(f'{mount} && (cat "$0$1" 2>/dev/null || echo gone)', path).stdout.strip()

    cid = rt.new_id("net")
    try:
        c = config(["sleep", "100"])
        c["linux"]["resources"]["network"] = {
            "classID": 0x100001,
            "priorities": [{"name": "lo", "priority": 7}],
        }
        rt.create(c, cid=cid)[1].ok()
        pid = rt.state(cid)["pid"]
        where = cgroup_lines(read(f"/proc/{pid}/cgroup"))
        assert where["net_cls,net_prio"] == f"/{cid}"  # the id, under our own cgroup there
        assert cat(f"/{cid}/net_cls.classid") == str(0x100001)
        assert "lo 7" in cat(f"/{cid}/net_prio.ifpriomap").splitlines()
        rt("delete", "--force", cid).ok()
        assert cat(f"/{cid}/net_cls.classid") == "gone"
    finally:
        rt("delete", "--force", cid)  # through the wrapper, which sees the hierarchy
        rt.binary = binary


def test_unified_resources_refused_on_v1(rt):
    c = config(["true"])
    c["linux"]["resources"]["unified"] = {"memory.max": "100000000"}
    r = rt.run(c)
    assert r.rc == 1
    assert "unified" in r.err


@pytest.mark.sangja_only("the error names the spec field (runc: a bare kernel error)")
def test_bad_resource_type_names_the_field(rt):
    c = config(["true"])
    c["linux"]["resources"]["memory"] = {"limit": "lots"}
    r = rt.run(c).failed(1)
    assert "linux.resources.memory.limit must be an integer" in r.err


def test_limit_the_kernel_refuses_fails_create_cleanly(rt):
    """cpu.shares beyond the kernel's range: create fails and leaves nothing."""
    c = config(["true"])
    c["linux"]["resources"]["cpu"] = {"shares": 1 << 40}
    cid, r = rt.create(c)
    assert r.rc == 1
    assert "cpu-shares" in r.err or "cpu.shares" in r.err
    rt.assert_nothing_left(cid)


# -- devices ----------------------------------------------------------------------------------


def devices_config(script, rules=None):
    c = config(["sh", "-c", script])
    c["linux"]["devices"] = [
        {"path": "/dev/tty0", "type": "c", "major": 4, "minor": 0, "fileMode": 0o666}
    ]
    if rules is not None:
        c["linux"]["resources"]["devices"] = rules
    return c


TTY0_AND_NULL = "head -c1 /dev/tty0 </dev/null; echo tty0=$?; echo x > /dev/null && echo null=0"


def test_devices_rule_denies_tty0_allows_null(rt):
    """runc's default rules: deny all, then the usual devices; /dev/tty0 exists (linux.devices)
    but opening it is refused by the devices cgroup."""
    r = rt.run(devices_config(TTY0_AND_NULL)).ok()
    assert r.out.split() == ["tty0=1", "null=0"]
    assert "Operation not permitted" in r.err


def test_devices_rules_apply_in_order(rt):
    """Later rules win: deny all, allow c 4:* rwm, then take 4:0's read away again."""
    rules = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 4, "minor": 0, "access": "rwm"},
        {"allow": False, "type": "c", "major": 4, "minor": 0, "access": "r"},
    ]
    cid, pid = rt.created(devices_config("true", rules))
    listed = set(read(f"{cgroup_dir(pid, 'devices')}/devices.list").split("\n")) - {""}
    assert "c 4:0 wm" in listed
    assert "c 1:3 rwm" in listed  # the always-allowed devices follow the spec's rules


def test_devices_rule_that_cannot_be_expressed_is_an_error(rt):
    """Taking access from one device under a wider allow cannot be done by the devices
    cgroup (it only removes exact matches): an error, not a rule silently ignored."""
    rules = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "access": "rwm"},
        {"allow": False, "type": "c", "major": 4, "minor": 0, "access": "rwm"},
    ]
    cid, r = rt.create(devices_config("true", rules))
    assert r.rc == 1
    assert "hole" in r.err
    rt.assert_nothing_left(cid)


# -- kill --all, delete ----------------------------------------------------------------------


def test_kill_all_reaches_processes_that_left_the_init(rt):
    """Daemons that double-forked away from the init are still in the cgroup."""
    c = config(["sh", "-c", "(sleep 1000 &) ; (sleep 1001 &); exec sleep 1002"])
    cid, pid = rt.created(c)
    rt("start", cid).ok()
    procs = f"{cgroup_dir(pid, 'pids')}/cgroup.procs"
    wait_for(lambda: len(read(procs).split()) == 3, "three processes")
    rt("kill", "--all", cid, "KILL").ok()
    rt.wait_stopped(cid)
    wait_for(
        lambda: not read(procs).split(),
        "the cgroup is empty",
    )


def test_kill_all_on_a_stopped_container_is_no_error(rt):
    cid, pid = rt.created(config(["true"]))
    rt("start", cid).ok()
    rt.wait_stopped(cid)
    rt("kill", "--all", cid, "KILL").ok()


def _dirs_named(tag):
    out = []
    for top, dirs, _ in os.walk(CGROUP_ROOT):
        out += [f"{top}/{d}" for d in dirs if tag in d]
        dirs[:] = [d for d in dirs if tag not in d]
    return out


def test_100_create_delete_cycles_leave_nothing(rt):
    tag = f"sjt-cycle-{secrets.token_hex(3)}"
    b = rt.bundle(config(["true"]))
    for _ in range(100):
        cid = rt.new_id(tag=tag)
        rt("create", "--bundle", b.path, cid).ok()
        rt("delete", cid).ok()
        rt.ids.pop(cid)  # checked below, all at once
    assert _dirs_named(tag) == []


# -- the v2 driver on this host's cgroup2 mount ------------------------------------------------


@pytest.fixture
def v2_root():
    """The cgroup2 mount. The v2 driver enables the controllers it has (hugetlb here) in its
    root's cgroup.subtree_control, as runc's v2 driver does; that is left so (harmless, and
    taking it back would pull the files from under a test session running beside this one)."""
    if not os.path.exists(f"{UNIFIED}/cgroup.procs"):
        pytest.skip("no cgroup2 mount at /sys/fs/cgroup/unified")
    return UNIFIED


@pytest.mark.sangja_only("runc 1.1 has no way to pick its v2 driver on a hybrid host")
def test_v2_driver_places_freezes_kills_and_removes(rt, v2_root):
    c = config(["sh", "-c", "sleep 1000 & exec sleep 1001"])
    cid, pid = rt.created(c, env=V2_ENV)
    lines = cgroup_lines(read(f"/proc/{pid}/cgroup"))
    assert lines[""] == f"/{cid}"  # cloned straight into it
    assert lines["memory"] == own_cgroup("memory")  # no v1 hierarchy is used
    d = f"{v2_root}/{cid}"
    rt("start", cid).ok()
    wait_for(lambda: len(read(f"{d}/cgroup.procs").split()) == 2, "two processes")
    assert sorted(rt("ps", "--format", "json", cid).ok().json()) == sorted(
        int(p) for p in read(f"{d}/cgroup.procs").split()
    )
    rt("pause", cid).ok()
    assert read(f"{d}/cgroup.freeze").strip() == "1"
    assert "frozen 1" in read(f"{d}/cgroup.events")
    assert rt.status(cid) == "paused"
    rt("resume", cid).ok()
    assert "frozen 0" in read(f"{d}/cgroup.events")
    assert rt.status(cid) == "running"
    rt("kill", "--all", cid, "KILL").ok()  # cgroup.kill
    rt.wait_stopped(cid)
    rt("delete", cid).ok()
    assert not os.path.exists(d)


@pytest.mark.sangja_only("runc 1.1 has no way to pick its v2 driver on a hybrid host")
def test_v2_device_program_denies_tty0_allows_null(rt, v2_root):
    """The rules as a BPF_PROG_TYPE_CGROUP_DEVICE program on the unified cgroup: the kernel
    runs it for every device open, whatever v1's devices controller says (here: allow all,
    since the container has no v1 cgroup)."""
    r = rt.run(devices_config(TTY0_AND_NULL), env=V2_ENV).ok()
    assert r.out.split() == ["tty0=1", "null=0"]
    assert "Operation not permitted" in r.err


def test_v2_device_program_replaces_the_one_before(v2_root):
    """Attaching rules again (a cgroup that had a program) leaves only the new program:
    first /dev/tty0 is refused, then /dev/zero and no longer /dev/tty0."""
    import subprocess

    from sangja._native import cgroup as native
    from sangja.runtime.cgroups import devices

    d = f"{v2_root}/sjt-bpf-{secrets.token_hex(4)}"
    script = (f"echo $$ > {d}/cgroup.procs; head -c0 /dev/tty0 2>&-; echo $?; "
              "head -c0 /dev/zero 2>&-; echo $?")  # fmt: skip
    allow_all_but = lambda major, minor: [  # noqa: E731
        devices.Rule(True, "a", -1, -1, "rwm"),
        devices.Rule(False, "c", major, minor, "rwm"),
    ]
    os.mkdir(d)
    try:
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        try:
            native.attach_device_program(fd, devices.program(allow_all_but(4, 0))[0])
            out = subprocess.run(["sh", "-c", script], capture_output=True, text=True).stdout
            assert out.split() == ["1", "0"]
            native.attach_device_program(fd, devices.program(allow_all_but(1, 5))[0])
            out = subprocess.run(["sh", "-c", script], capture_output=True, text=True).stdout
            assert out.split() == ["0", "1"]
        finally:
            os.close(fd)
    finally:
        os.rmdir(d)


@pytest.mark.sangja_only("runc 1.1 has no way to pick its v2 driver on a hybrid host")
def test_v2_hugetlb_limit_and_update(rt, v2_root):
    if "hugetlb" not in read(f"{v2_root}/cgroup.controllers").split():
        pytest.skip("no hugetlb controller on the cgroup2 mount")
    c = config(["sleep", "1000"])
    c["linux"]["resources"]["hugepageLimits"] = [{"pageSize": "2MB", "limit": 4 << 20}]
    cid, pid = rt.created(c, env=V2_ENV)
    d = f"{v2_root}/{cid}"
    assert read(f"{d}/hugetlb.2MB.max").strip() == str(4 << 20)
    rt(
        "update", "-r", "-", cid, input='{"hugepageLimits":[{"pageSize":"2MB","limit":8388608}]}'
    ).ok()
    assert read(f"{d}/hugetlb.2MB.max").strip() == str(8 << 20)
    stats = rt("events", "--stats", cid).ok().json()["data"]
    assert stats["hugetlb"]["2MB"] == {"failcnt": 0}  # usage and max: 0, left out as by Go
    assert stats["pids"] == {"current": 1}


@pytest.mark.sangja_only("runc 1.1 has no way to pick its v2 driver on a hybrid host")
def test_v2_missing_controller_is_named(rt, v2_root):
    c = config(["true"])
    c["linux"]["resources"]["memory"] = {"limit": 64 << 20}
    cid, r = rt.create(c, env=V2_ENV)
    assert r.rc == 1
    assert "the memory controller is not available" in r.err
    rt.assert_nothing_left(cid)


# -- systemd ----------------------------------------------------------------------------------


@pytest.mark.sangja_only("runc's text differs")
def test_systemd_driver_without_systemd(rt):
    r = rt("--systemd-cgroup", "create", "--bundle", rt.bundle(config(["true"])).path, rt.new_id())
    assert r.rc == 1
    assert "systemd cgroup driver: systemd is not running (no /run/systemd/system)" in r.err


@pytest.mark.sangja_only("runc's text differs")
def test_systemd_path_format(rt):
    c = config(["true"])
    c["linux"]["cgroupsPath"] = "/not/a/slice"
    r = rt("--systemd-cgroup", "create", "--bundle", rt.bundle(c).path, rt.new_id())
    assert r.rc == 1
    assert 'expected cgroupsPath to be of format "slice:prefix:name"' in r.err


def test_systemd_names():
    """runc's reading of systemd paths (without systemd)."""
    assert systemd.parse_path("", "abc") == ("system.slice", "runc", "abc")
    assert systemd.parse_path("machine.slice:libpod:abc", "x") == ("machine.slice", "libpod", "abc")
    assert systemd.unit_name("libpod", "abc") == "libpod-abc.scope"
    assert systemd.unit_name("x", "my.slice") == "my.slice"
    assert systemd.expand_slice("a-b-c.slice") == "/a.slice/a-b.slice/a-b-c.slice"
    assert systemd.expand_slice("-.slice") == "/"
    for bad in ("a--b.slice", "a-.slice", "a/b.slice", "noslice"):
        with pytest.raises(ConfigError):
            systemd.expand_slice(bad)
