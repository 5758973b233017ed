# ruff: noqa: E501  (a requirement per docstring: the report line, kept whole)
"""config-linux.md: default filesystems, namespaces, user namespace mappings, time offsets,
devices (configured and default), cgroups (path, ownership, device rules, every resource this
host has a controller for), intelRdt, sysctl, seccomp, rootfs propagation, masked and
read-only paths, mount label, personality."""

import array
import json
import os
import socket
import subprocess
import threading

import pytest

from . import kit
from .kit import read, wait_for

USERNS_UID = [{"containerID": 0, "hostID": 100000, "size": 65536}]
USERNS_GID = [{"containerID": 0, "hostID": 200000, "size": 65536}]


def userns(cfg):
    """Add a user namespace (root mapped to 100000/200000) and the mounts a mapped root can
    make: sysfs and the cgroup mount need privileges over the host, so /sys is bound
    read-only and the cgroup mount dropped."""
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = list(USERNS_UID)
    cfg["linux"]["gidMappings"] = list(USERNS_GID)
    for m in cfg["mounts"]:
        if m["destination"] == "/sys":
            m.update(type="bind", source="/sys", options=["rbind", "nosuid", "noexec", "nodev",
                                                            "ro"])  # fmt: skip
    cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] != "/sys/fs/cgroup"]
    return cfg


# -- default filesystems --------------------------------------------------------------------

DEFAULT_FS = {"/proc": "proc", "/sys": "sysfs", "/dev/pts": "devpts", "/dev/shm": "tmpfs"}


@pytest.fixture(scope="module")
def base_probe(shared):
    """The base config (runc's default spec), read from inside."""
    return shared.probe([
        ("mountinfo", "cat /proc/self/mountinfo"),
        ("devices", "for d in null zero full random urandom tty ptmx pts/ptmx; do "
                    "echo \"$d|$(stat -c '%F|%t:%T|%d:%i' /dev/$d)|$(readlink /dev/$d)\"; done"),
    ])  # fmt: skip


@pytest.mark.parametrize("path", sorted(DEFAULT_FS))
def test_default_filesystems(target, base_probe, path):
    """config-linux.md#default-filesystems: {path} SHOULD be available (as runc's default spec asks)"""
    m = kit.mount_at(base_probe["mountinfo"], path)
    assert m is not None and m.fstype == DEFAULT_FS[path], m


# -- namespaces -----------------------------------------------------------------------------

NS_TYPES = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
            "user": "user", "cgroup": "cgroup", "time": "time"}  # fmt: skip
NS_CHECK = (
    'for n in pid net mnt ipc uts user cgroup time; do echo "$n $(readlink /proc/self/ns/$n)"; done'  # noqa: E501
)


def _ns_lines(text):
    return dict(line.split(" ", 1) for line in text.splitlines() if " " in line)


@pytest.fixture(scope="module")
def ns_probe(shared):
    """Namespace links inside containers: the base config plus cgroup; plus time (with
    offsets); plus user (with mappings). type -> (link, error)."""
    t = shared
    out = {}
    variants = {
        "base": lambda c: c["linux"]["namespaces"].append({"type": "cgroup"}),
        "time": lambda c: (c["linux"]["namespaces"].append({"type": "time"}),
                           c["linux"].update(timeOffsets={"monotonic": {"secs": 259200},
                                                          "boottime": {"secs": 86400}})),
        "user": userns,
    }  # fmt: skip
    checks = [("ns", NS_CHECK), ("offsets", "cat /proc/self/timens_offsets"),
              ("uid_map", "cat /proc/self/uid_map"), ("gid_map", "cat /proc/self/gid_map")]  # fmt: skip
    for name, tweak in variants.items():
        c = t.config()
        tweak(c)
        p = t.probe(checks, c, expect_ok=False)
        out[name] = p
    return out


def _variant(ns_probe, name):
    p = ns_probe[name]
    assert p.result.rc == 0, f"the container failed: {p.result.err.strip()[-300:]}"
    return p


@pytest.mark.parametrize("nstype", sorted(NS_TYPES))
def test_new_namespace(target, ns_probe, nstype):
    """config-linux.md#namespaces: a {nstype} entry without path MUST get a new namespace (the type SHOULD be supported)"""
    variant = {"time": "time", "user": "user"}.get(nstype, "base")
    p = _variant(ns_probe, variant)
    link = _ns_lines(p["ns"]).get(NS_TYPES[nstype])
    host = kit.ns_of("self", NS_TYPES[nstype])
    assert link and link != host, f"{NS_TYPES[nstype]}: {link} (the host's is {host})"


def test_namespace_path_joined(target):
    """config-linux.md#namespaces: an entry with path MUST put the process in that namespace"""
    t = target
    h = t.helper(["unshare", "--net", "--uts", "--ipc", "sleep", "1000"])
    wait_for(lambda: kit.ns_of(h.pid, "uts") != kit.ns_of("self", "uts"), "the helper's ns")
    c = t.config()
    keep = [n for n in c["linux"]["namespaces"] if n["type"] not in ("network", "uts", "ipc")]
    c["linux"]["namespaces"] = keep + [
        {"type": "network", "path": f"/proc/{h.pid}/ns/net"},
        {"type": "uts", "path": f"/proc/{h.pid}/ns/uts"},
        {"type": "ipc", "path": f"/proc/{h.pid}/ns/ipc"},
    ]
    p = t.probe([("ns", NS_CHECK)], c)
    links = _ns_lines(p["ns"])
    for n in ("net", "uts", "ipc"):
        assert links[n] == kit.ns_of(h.pid, n), f"{n}: {links[n]}, not the path's"


def test_namespace_path_wrong_type(target):
    """config-linux.md#namespaces: a path that is not a namespace of the entry's type MUST fail"""
    t = target
    h = t.helper(["unshare", "--uts", "sleep", "1000"])
    wait_for(lambda: kit.ns_of(h.pid, "uts") != kit.ns_of("self", "uts"), "the helper's ns")
    c = t.config()
    c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]
    c["linux"]["namespaces"].append({"type": "network", "path": f"/proc/{h.pid}/ns/uts"})
    cid, r = t.create(c)
    assert r.rc != 0, "create succeeded with a uts namespace as the network one"


def test_namespace_inherited(target):
    """config-linux.md#namespaces: a type not listed MUST be the runtime's namespace"""
    t = target
    c = t.config()
    c["linux"]["namespaces"] = [{"type": "mount"}, {"type": "pid"}]
    del c["hostname"]
    p = t.probe([("ns", NS_CHECK)], c)
    links = _ns_lines(p["ns"])
    for n in ("net", "ipc", "uts", "cgroup", "user"):
        assert links[n] == kit.ns_of("self", n), f"{n}: {links[n]}, not the runtime's"


def test_namespace_duplicate(target):
    """config-linux.md#namespaces: two entries of the same type MUST fail"""
    t = target
    c = t.config()
    c["linux"]["namespaces"].append({"type": "ipc"})
    cid, r = t.create(c)
    assert r.rc != 0, "create succeeded"


def test_user_mappings(target, ns_probe):
    """config-linux.md#user-namespace-mappings: uidMappings and gidMappings MUST be the namespace's maps"""
    p = _variant(ns_probe, "user")
    assert p["uid_map"].split() == ["0", "100000", "65536"], p["uid_map"]
    assert p["gid_map"].split() == ["0", "200000", "65536"], p["gid_map"]


def test_user_mappings_no_chown(target, ns_probe):
    """config-linux.md#user-namespace-mappings: the runtime SHOULD NOT chown the filesystems to map them"""
    _variant(ns_probe, "user")  # it ran: the shared rootfs must still be root's on the host
    owners = {p: os.lstat(os.path.join(target.rootfs, p)).st_uid
              for p in (".", "bin", "bin/busybox", "etc/passwd", "proc")}  # fmt: skip
    assert set(owners.values()) == {0}, f"owners changed: {owners}"


def test_time_offsets(target, ns_probe):
    """config-linux.md#offset-for-time-namespace: timeOffsets MUST be the time namespace's offsets"""
    p = _variant(ns_probe, "time")
    offs = {line.split()[0]: line.split()[1:] for line in p["offsets"].splitlines() if line}
    assert offs.get("monotonic") == ["259200", "0"] and offs.get("boottime") == ["86400", "0"], offs


# -- devices --------------------------------------------------------------------------------

DEVICES = {
    "c": {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o640,
          "uid": 1000, "gid": 5},
    "b": {"path": "/dev/loop7", "type": "b", "major": 7, "minor": 7, "fileMode": 0o660,
          "uid": 0, "gid": 6},
    "p": {"path": "/dev/conformance-fifo", "type": "p", "fileMode": 0o600, "uid": 1000,
          "gid": 1000},
}  # fmt: skip
FTYPE = {"c": "character special file", "b": "block special file", "p": "fifo"}


@pytest.fixture(scope="module")
def dev_probe(shared):
    t = shared
    c = t.config()
    c["linux"]["devices"] = [dict(d) for d in DEVICES.values()]
    return t.probe([(k, f"stat -c '%F|%t:%T|%a|%u:%g' {d['path']}") for k, d in DEVICES.items()],
                   c, expect_ok=False)  # fmt: skip


def _dev(dev_probe, kind):
    assert dev_probe.result.rc == 0, f"the container failed: {dev_probe.result.err[-300:]}"
    assert dev_probe.rc(kind) == 0, dev_probe[kind]
    return dev_probe[kind].split("|")


@pytest.mark.parametrize("kind", sorted(DEVICES))
def test_device_available(target, dev_probe, kind):
    """config-linux.md#devices: a listed device of type {kind} MUST be in the container"""
    ftype, majmin, _, _ = _dev(dev_probe, kind)
    d = DEVICES[kind]
    assert ftype == FTYPE[kind], ftype
    if kind != "p":
        assert majmin == f"{d['major']:x}:{d['minor']:x}", majmin


def test_device_file_mode(target, dev_probe):
    """config-linux.md#devices: a device's fileMode MUST be its permissions"""
    got = {k: _dev(dev_probe, k)[2] for k in DEVICES}
    want = {k: format(d["fileMode"], "o") for k, d in DEVICES.items()}
    assert got == want


def test_device_owner(target, dev_probe):
    """config-linux.md#devices: a device's uid and gid MUST be its owner"""
    got = {k: _dev(dev_probe, k)[3] for k in DEVICES}
    want = {k: f"{d['uid']}:{d['gid']}" for k, d in DEVICES.items()}
    assert got == want


def test_device_path_conflict(target):
    """config-linux.md#devices: a file at the path that is not the device MUST fail create"""
    t = target
    c = t.config()
    c["linux"]["devices"] = [{"path": "/etc/not-a-device", "type": "c", "major": 1, "minor": 3}]
    cid, r = t.create(c)
    assert r.rc != 0, "create succeeded over a regular file"


DEFAULT_DEVICES = {"null": "1:3", "zero": "1:5", "full": "1:7", "random": "1:8",
                   "urandom": "1:9", "tty": "5:0"}  # fmt: skip


def _devices(base_probe):
    """name -> (file type, major:minor in hex, dev:inode, symlink target)."""
    return {f[0]: f[1:] for f in (line.split("|") for line in base_probe["devices"].splitlines())}


@pytest.mark.parametrize("dev", sorted(DEFAULT_DEVICES))
def test_default_device(target, base_probe, dev):
    """config-linux.md#default-devices: /dev/{dev} MUST be supplied"""
    ftype, majmin, _, _ = _devices(base_probe)[dev]
    major, minor = DEFAULT_DEVICES[dev].split(":")
    assert (ftype, majmin) == ("character special file", f"{int(major):x}:{int(minor):x}")


def test_default_ptmx(target, base_probe):
    """config-linux.md#default-devices: /dev/ptmx MUST be supplied, a bind or symlink of /dev/pts/ptmx"""
    devs = _devices(base_probe)
    ptmx, pts_ptmx = devs["ptmx"], devs["pts/ptmx"]
    symlink = ptmx[0] == "symbolic link" and ptmx[3] in ("pts/ptmx", "/dev/pts/ptmx")
    bound = ptmx[0] == "character special file" and ptmx[2] == pts_ptmx[2]
    assert symlink or bound, f"/dev/ptmx {ptmx}, /dev/pts/ptmx {pts_ptmx}"


def test_default_console(target):
    """config-linux.md#default-devices: with terminal, /dev/console MUST be the process's pty"""
    t = target
    c = t.sh_config("stat -c %t:%T /dev/console; stat -L -c %t:%T /proc/self/fd/0")
    lines = t.terminal_output(c).split()
    assert len(lines) == 2 and lines[0] == lines[1], f"/dev/console vs the pty: {lines}"


# -- cgroups: path, ownership, device rules -------------------------------------------------


def _cgroup_lines(text):
    return {line.split(":", 2)[1]: line.split(":", 2)[2] for line in text.splitlines()}


def test_cgroups_path_absolute(target):
    """config-linux.md#cgroups-path: an absolute cgroupsPath MUST be taken from the cgroup mount points (created if missing)"""
    t = target
    cgp = f"/sjc-abs-{os.path.basename(t.workdir)}"
    c = t.config()
    c["linux"]["cgroupsPath"] = cgp
    p = t.probe([("cgroup", "cat /proc/self/cgroup")], c)
    lines = _cgroup_lines(p["cgroup"])
    for ctrl in ("memory", "pids", "cpu", "devices"):
        assert lines.get(ctrl) == cgp, f"{ctrl}: {lines.get(ctrl)} (want {cgp})"


def test_cgroups_path_consistent(target):
    """config-linux.md#cgroups-path: the same cgroupsPath MUST always lead to the same cgroup"""
    t = target
    cgp = f"sjc-rel-{os.path.basename(t.workdir)}"
    seen = []
    for _ in range(2):
        c = t.config()
        c["linux"]["cgroupsPath"] = cgp
        seen.append(_cgroup_lines(t.probe([("cgroup", "cat /proc/self/cgroup")], c)["cgroup"]))
    assert seen[0]["memory"] == seen[1]["memory"] and seen[0]["memory"].endswith(cgp), seen


def test_cgroup_ownership_v1(target):
    """config-linux.md#cgroup-ownership: on cgroup v1 the container's cgroups SHOULD NOT be chowned"""
    t = target
    c = userns(t.config(["sleep", "1000"]))
    c["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                        "options": ["nosuid", "noexec", "nodev", "relatime", "rw"]})  # fmt: skip
    cid, r = t.create(c)
    if r.rc != 0:  # a read-write cgroup mount in a user namespace may be refused: try without
        c["mounts"].pop()
        cid, pid = t.created(c)
    else:
        pid = t.state(cid)["pid"]
    owners = {}
    for ctrl in ("memory", "pids", "cpu"):
        d = kit.rtkit.cgroup_dir(pid, ctrl)
        owners[ctrl] = os.stat(d).st_uid
        owners[ctrl + "/cgroup.procs"] = os.stat(os.path.join(d, "cgroup.procs")).st_uid
    assert set(owners.values()) == {0}, f"chowned: {owners}"


def test_cgroup_ownership_v2(target):
    """config-linux.md#cgroup-ownership: on cgroup v2 ownership SHOULD follow a read-write cgroup mount (delegate files only)"""
    pytest.skip("this host is cgroup v1 (hybrid): the v2 ownership rules do not apply here")


def test_device_rules_in_order(target):
    """config-linux.md#allowed-device-list: device rules MUST be applied in the listed order"""
    t = target
    c = t.config()
    c["linux"]["devices"] = [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666},
        {"path": "/dev/conformance-tun", "type": "c", "major": 10, "minor": 200,
         "fileMode": 0o666},
    ]  # fmt: skip
    c["linux"]["resources"]["devices"] = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"},
        {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rw"},
        {"allow": False, "type": "c", "major": 10, "minor": 200, "access": "rw"},
        {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rw"},
    ]
    p = t.probe([("fuse", "exec 3<>/dev/fuse"), ("tun", "exec 3<>/dev/conformance-tun")], c)
    assert p.rc("fuse") != 0, "fuse opened: allow-then-deny left it allowed"
    assert "Operation not permitted" in p["fuse"], p["fuse"]
    assert p.rc("tun") == 0, f"tun refused: deny-then-allow left it denied ({p['tun']})"


# -- cgroups: resources ---------------------------------------------------------------------

BLOCK = kit.block_device()
RESOURCES = {
    "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728,
               "kernelTCP": 16777216, "swappiness": 10, "disableOOMKiller": True,
               "useHierarchy": True},
    "cpu": {"shares": 512, "quota": 50000, "period": 200000, "burst": 10000,
            "realtimeRuntime": 10000, "realtimePeriod": 500000, "cpus": "1", "mems": "0"},
    "pids": {"limit": 42},
}  # fmt: skip
if BLOCK:
    RESOURCES["blockIO"] = {
        k: [{"major": BLOCK[0], "minor": BLOCK[1], "rate": r}]
        for k, r in (("throttleReadBpsDevice", 1048576), ("throttleWriteBpsDevice", 2097152),
                     ("throttleReadIOPSDevice", 1000), ("throttleWriteIOPSDevice", 2000))
    }  # fmt: skip

# field -> (controller file under /sys/fs/cgroup in the container, value it must show)
FIELDS = {
    "memory.limit": ("memory/memory.limit_in_bytes", "67108864"),
    "memory.reservation": ("memory/memory.soft_limit_in_bytes", "33554432"),
    "memory.swap": ("memory/memory.memsw.limit_in_bytes", "134217728"),
    "memory.kernelTCP": ("memory/memory.kmem.tcp.limit_in_bytes", "16777216"),
    "memory.swappiness": ("memory/memory.swappiness", "10"),
    "memory.disableOOMKiller": ("memory/memory.oom_control", "oom_kill_disable 1"),
    "memory.useHierarchy": ("memory/memory.use_hierarchy", "1"),
    "cpu.shares": ("cpu/cpu.shares", "512"),
    "cpu.quota": ("cpu/cpu.cfs_quota_us", "50000"),
    "cpu.period": ("cpu/cpu.cfs_period_us", "200000"),
    "cpu.burst": ("cpu/cpu.cfs_burst_us", "10000"),
    "cpu.realtimeRuntime": ("cpu/cpu.rt_runtime_us", "10000"),
    "cpu.realtimePeriod": ("cpu/cpu.rt_period_us", "500000"),
    "cpu.cpus": ("cpuset/cpuset.cpus", "1"),
    "cpu.mems": ("cpuset/cpuset.mems", "0"),
    "pids.limit": ("pids/pids.max", "42"),
}
if BLOCK:
    dev = f"{BLOCK[0]}:{BLOCK[1]}"
    for k, f, r in (("throttleReadBpsDevice", "read_bps_device", 1048576),
                    ("throttleWriteBpsDevice", "write_bps_device", 2097152),
                    ("throttleReadIOPSDevice", "read_iops_device", 1000),
                    ("throttleWriteIOPSDevice", "write_iops_device", 2000)):  # fmt: skip
        FIELDS[f"blockIO.{k}"] = (f"blkio/blkio.throttle.{f}", f"{dev} {r}")
SECTION = {"memory": "memory", "cpu": "cpu", "pids": "pids", "blockIO": "block-io"}


@pytest.fixture(scope="module")
def resources_probe(shared):
    t = shared
    c = t.config()
    c["linux"]["resources"].update(json.loads(json.dumps(RESOURCES)))
    files = " ".join(sorted({f for f, _ in FIELDS.values()}))
    script = f'for f in {files}; do echo "$f=$(cat /sys/fs/cgroup/$f | tr "\\n" ";")"; done'
    return t.probe([("files", script)], c, expect_ok=False)


_CHILD_FILES = {}


def _host_has(path):
    """Does a (child) cgroup of this host's v1 hierarchy have this file? (A scratch cgroup
    is made to look: the root cgroup lacks some files, pids.max for one.)"""
    ctrl, name = path.split("/", 1)
    if ctrl not in _CHILD_FILES:
        h = kit.v1_hierarchy(ctrl)
        files = set()
        if h:
            d = os.path.join(h, f"sjc-scratch-{os.getpid()}")
            os.makedirs(d, exist_ok=True)
            try:
                files = set(os.listdir(d))
            finally:
                os.rmdir(d)
        _CHILD_FILES[ctrl] = files
    return name in _CHILD_FILES[ctrl]


@pytest.mark.parametrize("section,field", [(SECTION[f.split(".")[0]], f) for f in sorted(FIELDS)],
                         ids=sorted(FIELDS))  # fmt: skip
def test_resource(target, resources_probe, section, field):
    """config-linux.md#{section}: resources.{field} MUST be set in the container's cgroup"""
    path, want = FIELDS[field]
    if not _host_has(path):
        pytest.skip(f"this host has no {path} (v1) to show it")
    p = resources_probe
    assert p.result.rc == 0, f"the container failed: {p.result.err.strip()[-300:]}"
    files = dict(line.split("=", 1) for line in p["files"].splitlines())
    got = files.get(path, "").rstrip(";")
    assert want in got.split(";"), f"{path} is {got!r} (want {want!r})"


@pytest.mark.parametrize("field", ["memory.kernel"])
def test_resource_kmem(target, field):
    """config-linux.md#memory: resources.memory.kernel MUST be set in the container's cgroup"""
    pytest.skip("kernel 6.18 accepts memory.kmem.limit_in_bytes writes but ignores them: no "
                "limit can show")  # fmt: skip


def test_cpu_idle(target):
    """config-linux.md#cpu: resources.cpu.idle MUST be set in the container's cgroup"""
    t = target
    if not _host_has("cpu/cpu.idle"):
        pytest.skip("this host has no cpu.idle (v1)")
    c = t.config()
    c["linux"]["resources"]["cpu"] = {"idle": 1}
    p = t.probe([("idle", "cat /sys/fs/cgroup/cpu/cpu.idle")], c)
    assert p["idle"] == "1", p["idle"]


@pytest.mark.parametrize("field", ["weight", "leafWeight", "weightDevice"])
def test_blkio_weight(target, field):
    """config-linux.md#block-io: resources.blockIO.{field} MUST be set in the container's cgroup"""
    t = target
    names = {"weight": ("blkio.weight", "blkio.bfq.weight"),
             "leafWeight": ("blkio.leaf_weight",),
             "weightDevice": ("blkio.weight_device", "blkio.bfq.weight_device")}[field]  # fmt: skip
    have = [n for n in names if _host_has(f"blkio/{n}")]
    if not have or not BLOCK:
        pytest.skip(f"this kernel has no {' or '.join(names)} (no CFQ/BFQ group scheduling)")
    if field == "weightDevice" and "[bfq]" not in _scheduler(BLOCK):
        pytest.skip(f"block device {BLOCK[0]}:{BLOCK[1]} does not use BFQ: the kernel refuses "
                    "a per-device weight for it")  # fmt: skip
    c = t.config()
    blk = {"weight": {"weight": 300}, "leafWeight": {"leafWeight": 300},
           "weightDevice": {"weightDevice": [{"major": BLOCK[0], "minor": BLOCK[1],
                                              "weight": 300}]}}[field]  # fmt: skip
    c["linux"]["resources"]["blockIO"] = blk
    p = t.probe([("v", f"cat /sys/fs/cgroup/blkio/{have[0]}")], c)
    assert "300" in p["v"], p["v"]


def _scheduler(majmin):
    for name in os.listdir("/sys/block"):
        if read(f"/sys/block/{name}/dev").strip() == f"{majmin[0]}:{majmin[1]}":
            return read(f"/sys/block/{name}/queue/scheduler")
    return ""


def _applied_or_refused(t, resources, files, what):
    """A resource this v1 host has no hierarchy for: create must fail, or the limit must be
    somewhere in the container's cgroups (e.g. the cgroup2 mount of this hybrid host)."""
    c = t.config(["sleep", "1000"])
    c["linux"]["resources"].update(resources)
    cid, r = t.create(c)
    if r.rc != 0:
        return
    pid = t.state(cid)["pid"]
    found = []
    for ctrl, name, want in files:
        d = kit.rtkit.cgroup_dir(pid, ctrl)
        if d and os.path.exists(os.path.join(d, name)):
            found.append(want in read(os.path.join(d, name)))
    assert any(found), f"{what}: create succeeded but the limit is nowhere (silently dropped)"


def test_hugepage_limits(target):
    """config-linux.md#huge-page-limits: hugepageLimits MUST be applied (or create fail where it cannot be)"""
    t = target
    if kit.v1_hierarchy("hugetlb"):
        c = t.config()
        c["linux"]["resources"]["hugepageLimits"] = [{"pageSize": "2MB", "limit": 4194304}]
        p = t.probe([("v", "cat /sys/fs/cgroup/hugetlb/hugetlb.2MB.limit_in_bytes")], c)
        assert p["v"] == "4194304", p["v"]
        return
    _applied_or_refused(t, {"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]},
                        [("hugetlb", "hugetlb.2MB.limit_in_bytes", "4194304"),
                         ("", "hugetlb.2MB.max", "4194304")], "hugepageLimits")  # fmt: skip


def test_network_class_id(target):
    """config-linux.md#network: network.classID MUST be applied (or create fail where it cannot be)"""
    _applied_or_refused(target, {"network": {"classID": 1048577}},
                        [("net_cls", "net_cls.classid", "1048577")], "classID")  # fmt: skip


def test_network_priorities(target):
    """config-linux.md#network: network.priorities MUST be applied (or create fail where it cannot be)"""
    _applied_or_refused(target, {"network": {"priorities": [{"name": "lo", "priority": 5}]}},
                        [("net_prio", "net_prio.ifpriomap", "lo 5")], "priorities")  # fmt: skip


def test_rdma(target):
    """config-linux.md#rdma: rdma limits MUST be set in the container's cgroup"""
    if "rdma" not in read("/proc/cgroups"):
        pytest.skip("this kernel has no rdma cgroup controller")
    pytest.skip("no RDMA device on this host")


def test_unified_missing_controller(target):
    """config-linux.md#unified: a unified key of a controller that is not there MUST fail create"""
    t = target
    c = t.config()
    c["linux"]["resources"]["unified"] = {"memory.max": "67108864"}
    cid, r = t.create(c)
    assert r.rc != 0, "create succeeded (memory is no controller of this host's cgroup2 mount)"


def test_unified_written(target):
    """config-linux.md#unified: unified keys MUST be written (controllers enabled), unknown ones too"""
    pytest.skip("this host is cgroup v1 (hybrid): its cgroup2 mount has no controller but "
                "hugetlb, so no v2 configuration can be shown")  # fmt: skip


def test_unified_conversion(target):
    """config-linux.md#unified: v1 resources on a v2 host MUST be converted or fail create"""
    pytest.skip("this host is cgroup v1 (hybrid): there is no v2 controller to convert to")


# -- intelRdt -------------------------------------------------------------------------------


def _resctrl_mounted():
    return any(m.fstype == "resctrl" for m in kit.mounts(read("/proc/self/mountinfo")))


def test_intel_rdt_without_resctrl(target):
    """config-linux.md#intelrdt: intelRdt without a mounted resctrl MUST fail create"""
    if _resctrl_mounted():
        pytest.skip("this host has resctrl mounted")
    t = target
    c = t.config()
    c["linux"]["intelRdt"] = {"closID": "conformance", "l3CacheSchema": "L3:0=f"}
    cid, r = t.create(c)
    assert r.rc != 0, "create succeeded without resctrl"


@pytest.mark.parametrize("rule", [
    "the container's pid MUST be in the closID directory's tasks",
    "l3CacheSchema/memBwSchema/schemata MUST be written to schemata",
    "without closID the container id MUST name the directory",
    "an existing closID with other schemata MUST fail create",
    "without intelRdt resctrl MUST NOT be touched",
])  # fmt: skip
def test_intel_rdt(target, rule):
    """config-linux.md#intelrdt: {rule}"""
    if not _resctrl_mounted():
        pytest.skip("this host has no Intel RDT (no resctrl filesystem)")
    pytest.skip("intelRdt with resctrl is not written yet")


# -- sysctl ---------------------------------------------------------------------------------


def test_sysctl(target):
    """config-linux.md#sysctl: sysctl values MUST be set in the container's namespaces"""
    t = target
    c = t.config()
    c["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.msgmax": "12345"}
    p = t.probe([("fwd", "cat /proc/sys/net/ipv4/ip_forward"),
                 ("msgmax", "cat /proc/sys/kernel/msgmax")], c)  # fmt: skip
    assert (p["fwd"], p["msgmax"]) == ("1", "12345")
    assert read("/proc/sys/kernel/msgmax").strip() != "12345", "changed on the host"


# -- seccomp --------------------------------------------------------------------------------

ARCHES = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]


def syscall_names():
    for p in ("/usr/include/x86_64-linux-gnu/asm/unistd_64.h", "/usr/include/asm/unistd_64.h"):
        if os.path.exists(p):
            return [line.split()[1][len("__NR_"):] for line in read(p).splitlines()
                    if line.startswith("#define __NR_")]  # fmt: skip
    return []


@pytest.fixture(scope="module")
def seccomp_probe(shared):
    t = shared
    c = t.config()
    c["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ARCHES,
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["symlink", "symlinkat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 1, "value": 10, "op": "SCMP_CMP_EQ"}]},
        ],
    }  # fmt: skip
    c["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})
    return t.probe([("mkdir", "mkdir /tmp/d"), ("touch", "touch /tmp/f"),
                    ("symlink", "ln -s f /tmp/l"), ("usr1", "kill -USR1 $$"),
                    ("sig0", "kill -0 $$")], c, expect_ok=False)  # fmt: skip


def _sc(p):
    assert p.result.rc == 0, f"the container failed: {p.result.err.strip()[-300:]}"
    return p


def test_seccomp_errno(target, seccomp_probe):
    """config-linux.md#seccomp: a syscall rule with SCMP_ACT_ERRNO MUST fail that syscall with EPERM"""
    p = _sc(seccomp_probe)
    assert p.rc("mkdir") != 0 and "Operation not permitted" in p["mkdir"], p["mkdir"]
    assert p.rc("touch") == 0, f"an allowed syscall failed: {p['touch']}"


def test_seccomp_errno_ret(target, seccomp_probe):
    """config-linux.md#seccomp: errnoRet MUST be the errno the blocked syscall returns"""
    p = _sc(seccomp_probe)
    assert p.rc("symlink") != 0 and "Permission denied" in p["symlink"], p["symlink"]


def test_seccomp_args(target, seccomp_probe):
    """config-linux.md#seccomp: args conditions MUST limit a rule to the matching calls"""
    p = _sc(seccomp_probe)
    assert p.rc("usr1") != 0, "kill(pid, SIGUSR1) was not blocked"
    assert p.rc("sig0") == 0, f"kill(pid, 0) was blocked: {p['sig0']}"


def test_seccomp_default_errno_ret(target):
    """config-linux.md#seccomp: defaultErrnoRet MUST be the errno of the default action"""
    t = target
    names = [n for n in syscall_names() if n not in ("mkdir", "mkdirat")]
    if not names:
        pytest.skip("no syscall table (unistd_64.h) to allow every other syscall")
    c = t.config()
    c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
                             "architectures": ARCHES,
                             "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]}  # fmt: skip
    c["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})
    p = t.probe([("mkdir", "mkdir /tmp/d")], c)
    assert p.rc("mkdir") != 0 and "Function not implemented" in p["mkdir"], p["mkdir"]


@pytest.mark.parametrize("where", ["defaultErrnoRet", "errnoRet"])
def test_seccomp_errno_without_errno_action(target, where):
    """config-linux.md#seccomp: {where} with an action that takes no errno MUST fail create"""
    t = target
    c = t.config()
    sc = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ARCHES}
    if where == "defaultErrnoRet":
        sc["defaultErrnoRet"] = 1
    else:
        sc["syscalls"] = [{"names": ["mkdir"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]
    c["linux"]["seccomp"] = sc
    cid, r = t.create(c)
    assert r.rc != 0, "create succeeded"


class Listener:
    """A seccomp agent's socket: accepts one connection, reads the payload and the fds."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(4)
        self.sock.settimeout(kit.rtkit.TIMEOUT)
        self.messages, self.fds, self.connections, self.error = [], [], 0, None
        self.eof = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
            self.connections += 1
            with conn:
                conn.settimeout(kit.rtkit.TIMEOUT)
                while True:
                    fds = array.array("i")
                    msg, anc, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(16 * fds.itemsize))
                    for level, typ, data in anc:
                        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
                    if fds:
                        self.fds.append((len(self.messages), list(fds)))
                    if not msg:
                        self.eof = True  # the runtime closed the connection
                        break
                    self.messages.append(msg)
        except Exception as e:  # reported by the test
            self.error = e

    def close(self):
        self.sock.close()
        for _, fds in self.fds:
            for fd in fds:
                os.close(fd)


@pytest.fixture(scope="module")
def notify(shared):
    """A container with an SCMP_ACT_NOTIFY rule and a listener; the agent closes the seccomp
    fd at once (the notified syscalls then fail with ENOSYS)."""
    t = shared
    path = os.path.join(t.workdir, f"seccomp-{os.getpid()}.sock")
    lst = Listener(path)
    c = t.config()
    c["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ARCHES,
        "listenerPath": path, "listenerMetadata": "conformance-metadata",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
    }  # fmt: skip
    c["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})
    c["process"]["args"] = ["sh", "-c", "mkdir /tmp/d; echo rc=$?"]
    b = t.bundle(c)
    cid = t.new_id("notify")
    created = t("create", "--bundle", b.path, cid)
    # create has returned: whatever the runtime sends was sent (a grace for our reader)
    lst.thread.join(5 if created.rc == 0 else 1)
    state = {"created": created, "listener": lst, "id": cid, "bundle": b.path, "eof": lst.eof}
    lst.close()
    if created.rc == 0:
        state["pid"] = t.state(cid)["pid"]
        t("start", cid)
    return state


def _notified(notify):
    assert notify["created"].rc == 0, f"create failed: {notify['created'].err.strip()[-300:]}"
    lst = notify["listener"]
    assert lst.error is None, f"the listener: {lst.error!r}"
    assert lst.messages, "nothing was sent to listenerPath"
    return lst


def test_seccomp_listener_connection(target, notify):
    """config-linux.md#seccomp: the state MUST come over listenerPath once per connection, which is then closed"""
    lst = _notified(notify)
    assert lst.connections == 1, lst.connections
    json.loads(b"".join(lst.messages))  # exactly one JSON document
    assert notify["eof"], "the connection was still open when create had returned"


def test_seccomp_process_state(target, notify):
    """config-linux.md#the-container-process-state: JSON with ociVersion, fds, pid, metadata and state; the fd by SCM_RIGHTS in the first message"""
    lst = _notified(notify)
    st = json.loads(b"".join(lst.messages))
    assert st.get("ociVersion") and st.get("fds") == ["seccompFd"], st
    assert st.get("pid") == notify["pid"], st
    assert st.get("metadata") == "conformance-metadata", st
    assert (st.get("state") or {}).get("id") == notify["id"], st
    assert [i for i, _ in lst.fds] == [0] and len(lst.fds[0][1]) == 1, lst.fds


def test_seccomp_listener_unreachable(target):
    """config-linux.md#seccomp: failing to send to listenerPath MUST fail create"""
    t = target
    c = t.config()
    c["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ARCHES,
        "listenerPath": t.path("nobody-listens.sock"),
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}],
    }  # fmt: skip
    cid, r = t.create(c)
    assert r.rc != 0, "create succeeded"


# -- rootfs propagation ---------------------------------------------------------------------

PROPAGATION = {"shared": "shared", "slave": "master", "private": None, "unbindable": "unbindable"}


@pytest.fixture(scope="module")
def propagation(shared, shared_source):
    """A container per rootfsPropagation value, on a rootfs inside a host mount with shared
    propagation; then a tmpfs mounted on the host under that rootfs."""
    t = shared
    rootfs = os.path.join(shared_source, "rootfs")
    if not os.path.exists(rootfs):
        kit.make_rootfs(rootfs)
    out = {}
    for value in PROPAGATION:
        c = t.config(["sleep", "1000"])
        c["root"]["path"] = rootfs
        c["linux"]["rootfsPropagation"] = value
        cid, r = t.create(c)
        if r.rc != 0:
            out[value] = {"error": r.err.strip()[-300:]}
            continue
        t("start", cid)
        pid = t.state(cid)["pid"]
        out[value] = {"pid": pid, "before": read(f"/proc/{pid}/mountinfo")}
    probe = os.path.join(rootfs, "mnt")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "conformance-event", probe],
                   check=True)  # fmt: skip
    try:
        for v in out.values():
            if "pid" in v:
                v["after"] = read(f"/proc/{v['pid']}/mountinfo")
    finally:
        subprocess.run(["umount", "-l", probe])
    return out


@pytest.mark.parametrize("value", sorted(PROPAGATION))
def test_rootfs_propagation(target, propagation, value):
    """config-linux.md#rootfs-mount-propagation: rootfsPropagation {value} MUST be the rootfs mount's propagation"""
    v = propagation[value]
    assert "error" not in v, f"create failed: {v.get('error')}"
    root = kit.mount_at(v["before"], "/")
    tags = root.propagation()
    want = PROPAGATION[value]
    if want is None:
        assert not ({"shared", "master"} & tags), root
    elif want == "master":
        assert "master" in tags and "shared" not in tags, root
    else:
        assert want in tags, root


@pytest.mark.parametrize("value", ["slave", "private"])
def test_rootfs_propagation_events(target, propagation, value):
    """config-linux.md#rootfs-mount-propagation: a {value} rootfs gets (slave) or not (private) the host's new mounts"""
    v = propagation[value]
    assert "error" not in v, f"create failed: {v.get('error')}"
    seen = kit.mount_at(v["after"], "/mnt") is not None
    assert seen == (value == "slave"), f"the host's new mount {'not ' if not seen else ''}seen"


# -- masked and read-only paths -------------------------------------------------------------


MASKED_PROC = next((f for f in ("/proc/timer_list", "/proc/keys", "/proc/kcore")
                    if os.path.exists(f)), None)  # fmt: skip


@pytest.fixture(scope="module")
def paths_probe(shared):
    t = shared
    c = t.config()
    c["root"]["readonly"] = False
    c["linux"]["maskedPaths"] += ["/etc/conformance-secret"]
    c["linux"]["readonlyPaths"] += ["/opt/ro"]
    return t.probe([
        ("masked_file", "cat /etc/conformance-secret"),
        ("masked_proc", f"head -c 16 {MASKED_PROC} | wc -c" if MASKED_PROC else "echo 0"),
        ("masked_dir", "ls -A /sys/firmware | wc -l"),
        ("ro_proc", "echo 1 > /proc/sys/kernel/msgmax"),
        ("ro_dir", "touch /opt/ro/new"),
        ("rw_dir", "touch /opt/conformance-rw && rm /opt/conformance-rw"),
    ], c)  # fmt: skip


def test_masked_file(target, paths_probe):
    """config-linux.md#masked-paths: a masked file MUST NOT be readable"""
    assert paths_probe["masked_file"] == "", "the secret was read"
    assert paths_probe["masked_proc"].strip() == "0", f"{MASKED_PROC} was read"


def test_masked_directory(target, paths_probe):
    """config-linux.md#masked-paths: a masked directory MUST NOT show its entries"""
    assert paths_probe["masked_dir"].strip() == "0", "/sys/firmware lists entries"


def test_readonly_paths(target, paths_probe):
    """config-linux.md#readonly-paths: readonly paths MUST be read-only (and only they)"""
    p = paths_probe
    assert p.rc("ro_proc") != 0 and "Read-only" in p["ro_proc"], p["ro_proc"]
    assert p.rc("ro_dir") != 0 and "Read-only" in p["ro_dir"], p["ro_dir"]
    assert p.rc("rw_dir") == 0, f"the rest is read-only too: {p['rw_dir']}"


def test_mount_label(target):
    """config-linux.md#mount-label: mountLabel MUST be the SELinux context of the mounts"""
    pytest.skip("this host has no SELinux")


# -- personality ----------------------------------------------------------------------------


@pytest.mark.parametrize("domain,machine", [("LINUX32", "i686"), ("LINUX", "x86_64")])
def test_personality(target, domain, machine):
    """config-linux.md#personality: domain {domain} MUST be the process's personality (uname -m {machine})"""
    t = target
    if os.uname().machine != "x86_64":
        pytest.skip("the expected machines are those of x86_64")
    c = t.config()
    c["linux"]["personality"] = {"domain": domain}
    p = t.probe([("m", "uname -m")], c)
    assert p["m"] == machine, p["m"]
