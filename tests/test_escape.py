"""Every path inside the rootfs is resolved inside it: symlinks planted in the rootfs at
mount destinations, masked and read-only paths never make anything land on the host.

Each test plants a host directory H with a canary file, plants symlinks in the rootfs that
point at H (absolute), at "/" or at "../../..", runs the container, and checks that H is
untouched. The `env` fixture also fails the test if the host's mount table changed.
"""

import os

import pytest
from rtkit import config


def mounted_at(out, target):
    return [line for line in out.splitlines() if " - " in line and line.split()[4] == target]


def plant(b, link, target):
    p = os.path.join(b.rootfs, link.lstrip("/"))
    os.makedirs(os.path.dirname(p), exist_ok=True)
    os.symlink(target, p)


@pytest.mark.parametrize(
    "link,target,dest",
    [
        ("/link", "H", "/link"),  # absolute host path
        ("/up", "../../../../../../..", "/upH"),  # climbs above the rootfs
        ("/rootlink", "/", "/rootlinkH"),  # to the root
        ("/a/b", "../../../../../../../", "/a/bH"),  # nested, relative
        ("/etc/chain1", "/etc/chain2", "/etc/chain1H"),  # a chain of links
    ],
)
def test_tmpfs_mount_through_symlink(rt, canary, link, target, dest):
    H = canary
    dest = dest.replace("H", H)
    c = config(["sh", "-c", "cat /proc/self/mountinfo; echo ==; ls -a " + H])
    c["mounts"].append({"destination": dest, "type": "tmpfs", "source": "tmpfs"})
    b = rt.bundle(c)
    plant(b, link, target.replace("H", H))
    if link == "/etc/chain1":
        plant(b, "/etc/chain2", "../../../../../..")
    out = rt.output(b)
    info, listing = out.split("==\n")
    # The mount landed inside the container, at H as the container resolves it.
    assert mounted_at(info, H), info
    assert "canary" not in listing.split()


def test_bind_file_onto_symlink_to_host_file(rt, canary):
    H = canary
    src = os.path.join(rt.workdir, "payload")
    with open(src, "w") as f:
        f.write("payload\n")
    c = config(["cat", "/etc/target"])
    c["mounts"].append(
        {"destination": "/etc/target", "type": "bind", "source": src, "options": ["bind"]}
    )
    b = rt.bundle(c)
    plant(b, "/etc/target", f"{H}/canary")
    r = rt.run(b)
    # Either the mount lands on the container's own {H}/canary, or the runtime refuses;
    # the host's file is never overmounted (checked by the fixture).
    if r.rc == 0:
        assert r.out == "payload\n"


def test_bind_dir_through_parent_symlink(rt, canary):
    H = canary
    src = os.path.join(rt.workdir, "dirpayload")
    os.mkdir(src)
    with open(os.path.join(src, "inside"), "w") as f:
        f.write("x\n")
    c = config(["ls", f"{H}/sub"])
    c["mounts"].append(
        {"destination": "/data/sub", "type": "bind", "source": src, "options": ["rbind", "ro"]}
    )
    b = rt.bundle(c)
    plant(b, "/data", H)
    assert rt.output(b) == "inside\n"
    assert not os.path.exists(f"{H}/sub")


def test_proc_mount_through_symlink(rt, canary):
    H = canary
    c = config(["sh", "-c", f"cat {H}/self/comm"])
    c["mounts"].append({"destination": "/p", "type": "proc", "source": "proc"})
    b = rt.bundle(c)
    plant(b, "/p", H)
    r = rt.run(b)
    # runc refuses proc on anything but a plain directory; mounting it at the container's
    # own H is fine too. The host's H is never a proc mount (the fixture checks).
    if r.rc == 0:
        assert r.out == "cat\n"
    else:
        assert r.rc == 1 and "/p" in r.err


def test_masked_path_symlink_to_host(rt, canary):
    H = canary
    b = rt.bundle(config(["true"]))
    plant(b, "/etc/masked-file", f"{H}/canary")
    plant(b, "/etc/masked-dir", H)
    plant(b, "/etc/masked-up", "../../../../../..")
    b.config["linux"]["maskedPaths"] += [
        "/etc/masked-file",
        "/etc/masked-dir",
        f"/etc/masked-up{H}",
    ]
    b.write()
    r = rt.run(b)
    assert r.rc in (0, 1), r  # refusing is fine; touching the host is not


def test_readonly_path_symlink_to_host(rt, canary):
    H = canary
    c = config(["sh", "-c", f"touch {H}/new; echo $?"])
    c["root"]["readonly"] = False
    b = rt.bundle(c)
    os.makedirs(os.path.join(b.rootfs, H.lstrip("/")))
    plant(b, "/ro-link", H)
    b.config["linux"]["readonlyPaths"] += ["/ro-link"]
    b.write()
    r = rt.run(b)
    if r.rc == 0:
        # the read-only bind landed on the container's own H
        assert r.out.strip() != "0"


def test_cwd_symlink_to_host(rt, canary):
    H = canary
    c = config(["pwd"])
    c["process"]["cwd"] = "/work"
    c["root"]["readonly"] = False
    b = rt.bundle(c)
    plant(b, "/work", H)
    r = rt.run(b)
    if r.rc == 0:
        assert r.out.strip() in ("/work", H)


def test_mount_source_relative_to_bundle(rt):
    """A relative bind source is the bundle's, not the runtime's cwd."""
    c = config(["cat", "/m/f"])
    c["mounts"].append({"destination": "/m", "type": "bind", "source": "data", "options": ["bind"]})
    b = rt.bundle(c)
    os.mkdir(os.path.join(b.path, "data"))
    with open(os.path.join(b.path, "data/f"), "w") as f:
        f.write("bundle data\n")
    assert rt.output(b, cwd="/") == "bundle data\n"
