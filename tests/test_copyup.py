"""tmpcopyup (runc's and crun's extension, which podman puts on /run, /tmp and /var/tmp of
read-only containers): the tmpfs starts with a copy of the directory it covers."""

import os

import pytest
from rtkit import config


def tmpfs(dest, *extra):
    return {
        "destination": dest,
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["rw", "nosuid", "nodev", "tmpcopyup", *extra],
    }


def test_copy_of_the_covered_directory(rt):
    c = config(
        [
            "sh",
            "-c",
            "stat -c '%n %a %u:%g %F' /data /data/f /data/sub /data/sub/g /data/link; "
            "readlink /data/link; cat /data/sub/g; echo new > /data/f && cat /data/f; "
            "grep ' /data ' /proc/self/mountinfo | cut -d' ' -f9",
        ]
    )
    c["root"]["readonly"] = True
    c["mounts"].append(tmpfs("/data"))
    b = rt.bundle(c)
    d = os.path.join(b.rootfs, "data")
    os.makedirs(os.path.join(d, "sub"))
    os.chmod(d, 0o750)
    with open(os.path.join(d, "f"), "w") as f:
        f.write("old\n")
    with open(os.path.join(d, "sub", "g"), "w") as f:
        f.write("deep\n")
    os.chown(os.path.join(d, "sub", "g"), 1000, 1001)
    os.chmod(os.path.join(d, "sub", "g"), 0o604)
    os.symlink("/etc/host-only", os.path.join(d, "link"))  # copied as a link, never followed
    out = rt.output(b).splitlines()
    assert out[:5] == [
        "/data 750 0:0 directory",
        "/data/f 644 0:0 regular file",
        "/data/sub 755 0:0 directory",
        "/data/sub/g 604 1000:1001 regular file",
        "/data/link 777 0:0 symbolic link",
    ]
    assert out[5:] == ["/etc/host-only", "deep", "new", "tmpfs"]
    with open(os.path.join(d, "f")) as f:  # the container wrote to its tmpfs, not the rootfs
        assert f.read() == "old\n"


def test_missing_target_is_an_empty_tmpfs(rt):
    c = config(["sh", "-c", "ls -A /fresh | wc -l; grep ' /fresh ' /proc/self/mountinfo | wc -l"])
    c["mounts"].append(tmpfs("/fresh"))
    assert rt.output(c).split() == ["0", "1"]


@pytest.mark.sangja_only("sangja's error text")
def test_only_for_tmpfs(rt):
    c = config(["true"])
    c["mounts"].append(
        {"destination": "/x", "type": "proc", "source": "proc", "options": ["tmpcopyup"]}
    )
    r = rt.run(c).failed()
    assert "tmpcopyup is for tmpfs mounts only" in r.err
