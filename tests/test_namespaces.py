"""Namespaces: new ones, joined ones by path, user namespaces with maps, time offsets."""

import os

import pytest
from rtkit import config, needs_time_namespace, userns_config

ALL = ("pid", "network", "ipc", "uts", "mount", "cgroup")
PROC_NAME = {
    "pid": "pid",
    "network": "net",
    "ipc": "ipc",
    "uts": "uts",
    "mount": "mnt",
    "cgroup": "cgroup",
    "user": "user",
    "time": "time",
}


def host_ns(name, pid="self"):
    return os.readlink(f"/proc/{pid}/ns/{PROC_NAME[name]}")


def inside_ns(out):
    """`readlink /proc/self/ns/*` output -> {type: link}."""
    rev = {v: k for k, v in PROC_NAME.items()}
    links = {}
    for line in out.split():
        name = line.split(":")[0]
        if name in rev:
            links[rev[name]] = line
    return links


NS_SCRIPT = "for n in pid net ipc uts mnt cgroup user time; do readlink /proc/self/ns/$n; done"


@pytest.mark.parametrize("drop", [None, "pid", "network", "ipc", "uts", "cgroup"])
def test_new_namespaces(rt, drop):
    """Each listed namespace is new; each one left out is the host's."""
    c = config(["sh", "-c", NS_SCRIPT])
    types = [t for t in ALL if t != drop]
    c["linux"]["namespaces"] = [{"type": t} for t in types]
    if drop == "uts":
        del c["hostname"]  # a hostname needs a private UTS namespace
    links = inside_ns(rt.output(c))
    for t in ALL:
        if t in types:
            assert links[t] != host_ns(t), f"{t} namespace is the host's"
        else:
            assert links[t] == host_ns(t), f"{t} namespace is not the host's"
    # never asked for: user, time
    assert links["user"] == host_ns("user")


def test_pid_namespace_init_is_pid_1(rt):
    out = rt.output(config(["sh", "-c", "echo $$; ls /proc | grep -c '^[0-9]'"]))
    pid, nprocs = out.split()
    assert pid == "1"
    assert int(nprocs) <= 3  # sh, ls, grep: none of the host's processes


def test_hostname(rt):
    c = config(["sh", "-c", "hostname; cat /proc/sys/kernel/hostname"])
    c["hostname"] = "box-1"
    assert rt.output(c) == "box-1\nbox-1\n"
    assert os.uname().nodename != "box-1"


@pytest.mark.sangja_only("runc 1.1 ignores domainname (runc 1.2 added it)")
def test_domainname(rt):
    c = config(["sh", "-c", "hostname; cat /proc/sys/kernel/domainname"])
    c["hostname"] = "box-1"
    c["domainname"] = "example.test"
    assert rt.output(c) == "box-1\nexample.test\n"
    with open("/proc/sys/kernel/domainname") as f:
        assert f.read() != "example.test\n"


def test_network_namespace_has_only_lo(rt):
    out = rt.output(config(["sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1"]))
    assert [x.strip() for x in out.split()] == ["lo"]


def test_cgroup_namespace_root(rt):
    c = config(["cat", "/proc/self/cgroup"])
    c["linux"]["namespaces"].append({"type": "cgroup"})
    out = rt.output(c)
    for line in out.splitlines():
        _, ctrls, path = line.split(":", 2)
        assert path == "/", line


def _holder(rt, types, hostname="holder"):
    """A created container whose namespaces others join; -> its pid."""
    c = config(["sleep", "1000"])
    c["linux"]["namespaces"] = [{"type": t} for t in types]
    c["hostname"] = hostname
    _, pid = rt.created(c)
    return pid


@pytest.mark.parametrize("kind", ["network", "ipc", "uts"])
def test_join_namespace_by_path(rt, kind):
    holder = _holder(rt, ["pid", "network", "ipc", "uts", "mount"])
    c = config(["sh", "-c", f"readlink /proc/self/ns/{PROC_NAME[kind]}; hostname"])
    nss = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount") if t != kind]
    nss.append({"type": kind, "path": f"/proc/{holder}/ns/{PROC_NAME[kind]}"})
    c["linux"]["namespaces"] = nss
    if kind == "uts":
        del c["hostname"]
    link, hostname = rt.output(c).split()
    assert link == host_ns(kind, holder)
    assert link != host_ns(kind)
    if kind == "uts":
        assert hostname == "holder"


def test_join_pid_namespace_by_path(rt):
    holder = _holder(rt, ["pid", "network", "ipc", "uts", "mount"])
    c = config(["sh", "-c", "echo $$; readlink /proc/self/ns/pid; ls /proc | grep -c '^[0-9]'"])
    c["linux"]["namespaces"] = [
        {"type": "pid", "path": f"/proc/{holder}/ns/pid"},
        {"type": "mount"},
        {"type": "network"},
    ]
    del c["hostname"]
    pid, link, nprocs = rt.output(c).split()
    assert pid != "1"  # the holder's init is pid 1 there
    assert link == host_ns("pid", holder)
    assert int(nprocs) >= 2  # the holder's init and us


def test_user_namespace_maps(rt):
    c = userns_config(
        [
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; "
            "stat -c %u:%g /bin/busybox; readlink /proc/self/ns/user",
        ]
    )
    out = rt.output(c).split("\n")
    assert out[0].split() == ["0", "100000", "65536"]
    assert out[1].split() == ["0", "200000", "65536"]
    assert out[2:4] == ["0", "0"]
    assert out[4] == "65534:65534"  # the host's root is not mapped: overflow ids
    assert out[5] != host_ns("user")


def test_user_namespace_host_view(rt):
    """Seen from the host, the container's root is the mapped host id."""
    c = userns_config(["sleep", "1000"])
    c["process"]["user"] = {"uid": 5, "gid": 7}
    cid, pid = rt.created(c)
    rt("start", cid).ok()
    with open(f"/proc/{pid}/status") as f:
        status = dict(line.split(":", 1) for line in f)
    assert status["Uid"].split() == ["100005"] * 4
    assert status["Gid"].split() == ["200007"] * 4


@needs_time_namespace
@pytest.mark.sangja_only("runc 1.1 has no time namespace (runc 1.2 added it)")
def test_time_namespace_offsets(rt):
    day = 86400
    c = config(
        [
            "sh",
            "-c",
            "cat /proc/self/timens_offsets; cut -d. -f1 /proc/uptime; readlink /proc/self/ns/time",
        ]
    )
    c["linux"]["namespaces"].append({"type": "time"})
    c["linux"]["timeOffsets"] = {
        "monotonic": {"secs": 400 * day, "nanosecs": 0},
        "boottime": {"secs": 1000 * day, "nanosecs": 5},
    }
    out = rt.output(c).split("\n")
    offsets = {line.split()[0]: line.split()[1:] for line in out[:2]}
    assert offsets["monotonic"] == [str(400 * day), "0"]
    assert offsets["boottime"] == [str(1000 * day), "5"]
    assert int(out[2]) >= 1000 * day  # uptime is boottime
    assert out[3] != os.readlink("/proc/self/ns/time")


@needs_time_namespace
@pytest.mark.sangja_only("runc 1.1 has no time namespace (runc 1.2 added it)")
def test_time_namespace_without_offsets(rt):
    c = config(["readlink", "/proc/self/ns/time"])
    c["linux"]["namespaces"].append({"type": "time"})
    assert rt.output(c).strip() != os.readlink("/proc/self/ns/time")


# -- loopback, and the runtime's own namespaces -----------------------------------------------

IFF_UP = 0x1


def test_loopback_is_up_in_a_new_network_namespace(rt):
    """runc brings lo up in a network namespace it creates: 127.0.0.1 works at once."""
    out = rt.output(config(["cat", "/sys/class/net/lo/flags"]))
    assert int(out, 16) & IFF_UP, out


def test_loopback_of_a_joined_network_namespace_is_left_alone(rt):
    """A network namespace joined by path is the caller's: lo stays as it was (down here)."""
    import subprocess

    holder = subprocess.Popen(["unshare", "-n", "sleep", "1000"])
    try:
        path = f"/proc/{holder.pid}/ns/net"
        for _ in range(500):  # until unshare has exec'd sleep in its namespace
            if os.readlink(path) != host_ns("network"):
                break
            import time

            time.sleep(0.01)
        c = config(["cat", "/sys/class/net/lo/flags"])
        c["linux"]["namespaces"] = [n if n["type"] != "network" else {"type": "network",
                                    "path": path} for n in c["linux"]["namespaces"]]  # fmt: skip
        out = rt.output(c)
        assert not int(out, 16) & IFF_UP, out
    finally:
        holder.kill()
        holder.wait()


NS_AND_ROOT = "for n in mnt pid net ipc uts; do readlink /proc/self/ns/$n; done; ls /"


def no_mount_ns_config(types):
    c = config(["sh", "-c", NS_AND_ROOT])
    c["linux"]["namespaces"] = [{"type": t} for t in types]
    if "uts" not in types:
        del c["hostname"]
    # runc refuses maskedPaths and readonlyPaths without a mount namespace of its own
    c["linux"].pop("maskedPaths")
    c["linux"].pop("readonlyPaths")
    return c


@pytest.mark.sangja_only("runc 1.1 and crun 1.8 leave the container's mounts in their own "
                         "mount namespace after delete")  # fmt: skip
@pytest.mark.parametrize("types", [(), ("pid", "network", "ipc", "uts")],
                         ids=["none", "no-mount"])  # fmt: skip
def test_without_a_mount_namespace(rt, types):
    """linux.namespaces empty (or without mount): the process runs in the runtime's own
    namespaces (the others as asked), chrooted into the rootfs with the mounts made in the
    runtime's mount namespace; delete unmounts them (the env fixture checks none is left)."""
    c = no_mount_ns_config(types)
    c["mounts"].append({"destination": "/m", "type": "tmpfs", "source": "tmpfs"})
    out = rt.output(c).split()
    links = dict(zip(("mount", "pid", "network", "ipc", "uts"), out[:5], strict=True))
    for t, link in links.items():
        assert (link == host_ns(t)) == (t not in types), (t, out)
    assert "m" in out[5:] and "bin" in out[5:] and "boot" not in out[5:], out  # the rootfs


@pytest.mark.sangja_only("runc 1.1 cannot exec without namespaces, crun 1.8 execs in the "
                         "host's root")  # fmt: skip
def test_exec_without_a_mount_namespace_is_in_the_container_root(rt):
    c = no_mount_ns_config(("pid",))
    c["process"]["args"] = ["sleep", "1000"]
    b = rt.bundle(c)
    open(os.path.join(b.rootfs, "only-in-the-rootfs"), "w").close()
    cid, _ = rt.created(b)
    rt("start", cid).ok()
    out = rt("exec", cid, "ls", "/").ok().out.split()
    assert "only-in-the-rootfs" in out and "boot" not in out, out
    rt("delete", "--force", cid).ok()
    rt.assert_nothing_left(cid)
