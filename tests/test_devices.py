"""/dev: the default devices and links, linux.devices, devices in a user namespace."""

import pytest
from rtkit import config, same_as_runc, userns_config

DEFAULT = {  # name: (major, minor)
    "null": (1, 3),
    "zero": (1, 5),
    "full": (1, 7),
    "random": (1, 8),
    "urandom": (1, 9),
    "tty": (5, 0),
}
LINKS = {
    "ptmx": "pts/ptmx",
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
}

STAT = "stat -c '%n|%F|%t|%T|%a|%u|%g'"


def parse_stat(out):
    rows = {}
    for line in out.splitlines():
        if "|" not in line:
            continue
        n, ftype, ma, mi, mode, uid, gid = line.split("|")
        rows[n] = {
            "type": ftype,
            "major": int(ma, 16),
            "minor": int(mi, 16),
            "mode": mode,
            "uid": int(uid),
            "gid": int(gid),
        }
    return rows


def test_default_devices(rt):
    names = " ".join(f"/dev/{n}" for n in DEFAULT)
    rows = parse_stat(rt.output(config(["sh", "-c", f"{STAT} {names}"])))
    for n, (ma, mi) in DEFAULT.items():
        r = rows[f"/dev/{n}"]
        assert r["type"] == "character special file", (n, r)
        assert (r["major"], r["minor"]) == (ma, mi), (n, r)
        assert r["mode"] == "666", (n, r)
        assert (r["uid"], r["gid"]) == (0, 0)


def test_default_links(rt):
    script = "; ".join(f"echo {n}=$(readlink /dev/{n})" for n in LINKS)
    out = rt.output(config(["sh", "-c", script]))
    got = dict(line.split("=", 1) for line in out.splitlines())
    assert got == LINKS


def test_dev_listing_is_runcs(rt, env):
    """Nothing of the host's /dev leaks in: the listing is runc's."""
    out = same_as_runc(rt, env, config(["ls", "-1", "/dev"]))
    names = set(out.split())
    assert set(DEFAULT) | set(LINKS) | {"pts", "shm", "mqueue"} <= names
    assert "vda" not in names and "kmsg" not in names and "mem" not in names


def test_devices_work(rt):
    script = (
        "head -c 5 /dev/zero | od -An -tx1 | tr -d ' \\n'; echo; "
        "echo x > /dev/null; echo null=$?; "
        "echo x > /dev/full 2>/dev/null; echo full=$?; "
        "head -c 16 /dev/urandom | wc -c; "
        "echo fd-out >> /dev/stdout; echo fd-err >> /dev/stderr"
    )
    r = rt.run(config(["sh", "-c", script])).ok()
    assert r.out.splitlines() == ["0000000000", "null=0", "full=1", "16", "fd-out"]
    assert r.err.endswith("fd-err\n")


def test_linux_devices(rt):
    c = config(["sh", "-c", f"{STAT} /dev/fuse /dev/loop-test /dev/sub/dir/fifo"])
    c["linux"]["devices"] = [
        {
            "path": "/dev/fuse",
            "type": "c",
            "major": 10,
            "minor": 229,
            "fileMode": 0o620,
            "uid": 1000,
            "gid": 1001,
        },
        {"path": "/dev/loop-test", "type": "b", "major": 7, "minor": 200, "fileMode": 0o600},
        {"path": "/dev/sub/dir/fifo", "type": "p", "fileMode": 0o644},
    ]
    rows = parse_stat(rt.output(c))
    fuse = rows["/dev/fuse"]
    assert fuse["type"] == "character special file"
    assert (fuse["major"], fuse["minor"], fuse["mode"]) == (10, 229, "620")
    assert (fuse["uid"], fuse["gid"]) == (1000, 1001)
    loop = rows["/dev/loop-test"]
    assert loop["type"] == "block special file"
    assert (loop["major"], loop["minor"], loop["mode"]) == (7, 200, "600")
    fifo = rows["/dev/sub/dir/fifo"]
    assert fifo["type"] == "fifo" and fifo["mode"] == "644"


def test_linux_devices_override_default(rt):
    """A device in linux.devices at a default device's path wins (mode, owner)."""
    c = config(["sh", "-c", f"{STAT} /dev/null"])
    c["linux"]["devices"] = [
        {
            "path": "/dev/null",
            "type": "c",
            "major": 1,
            "minor": 3,
            "fileMode": 0o600,
            "uid": 7,
            "gid": 8,
        }
    ]
    c["linux"]["resources"]["devices"].append(
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
    )
    r = parse_stat(rt.output(c))["/dev/null"]
    assert (r["major"], r["minor"], r["mode"], r["uid"], r["gid"]) == (1, 3, "600", 7, 8)


@pytest.mark.parametrize("ns", ["userns"])
def test_devices_in_user_namespace(rt, ns):
    """No mknod in a user namespace: the default devices still exist and work."""
    names = " ".join(f"/dev/{n}" for n in DEFAULT)
    c = userns_config(
        [
            "sh",
            "-c",
            f"{STAT} {names}; echo x > /dev/null; echo null=$?; head -c 3 /dev/zero | wc -c",
        ]
    )
    out = rt.output(c)
    rows = parse_stat(out)
    for n, (ma, mi) in DEFAULT.items():
        r = rows[f"/dev/{n}"]
        assert r["type"] == "character special file", (n, r)
        assert (r["major"], r["minor"]) == (ma, mi)
    assert out.splitlines()[-2:] == ["null=0", "3"]
