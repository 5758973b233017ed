"""The rootfs and the mounts: root.path/readonly, mounts in order with their options,
propagation, pivot_root and --no-pivot, maskedPaths, readonlyPaths."""

import os
import subprocess

import pytest
from rtkit import config, read, same_as_runc


def mountinfo(out):
    """`cat /proc/self/mountinfo` -> [{target, root, opts, fstype, source, super, optional}]."""
    rows = []
    for line in out.splitlines():
        if " - " not in line:
            continue
        pre, _, post = line.partition(" - ")
        f = pre.split()
        fstype, source, sup = (post.split() + ["", "", ""])[:3]
        rows.append(
            {
                "root": f[3],
                "target": f[4],
                "opts": set(f[5].split(",")),
                "optional": f[6:],
                "fstype": fstype,
                "source": source,
                "super": set(sup.split(",")),
            }
        )
    return rows


def mount_at(rows, target):
    found = [r for r in rows if r["target"] == target]
    assert found, f"nothing mounted at {target}: {[r['target'] for r in rows]}"
    return found[-1]  # the topmost


def add_mount(c, dest, typ="tmpfs", source="tmpfs", options=None):
    m = {"destination": dest, "type": typ, "source": source}
    if options is not None:
        m["options"] = options
    c["mounts"].append(m)
    return c


def host_dir(rt, name, files=()):
    d = os.path.join(rt.workdir, name)
    os.makedirs(d, exist_ok=True)
    for f in files:
        with open(os.path.join(d, f), "w") as fh:
            fh.write(f"content of {f}\n")
    return d


# -- root ----------------------------------------------------------------------------------


def test_root_path_relative_and_absolute(rt):
    b = rt.bundle(config(["cat", "/etc/marker"]))
    with open(os.path.join(b.rootfs, "etc/marker"), "w") as f:
        f.write("relative\n")
    assert rt.output(b) == "relative\n"
    # an absolute root.path outside the bundle
    c = config(["cat", "/etc/marker"])
    c["root"]["path"] = os.path.join(rt.workdir, "elsewhere-rootfs")
    b2 = rt.bundle(c)
    with open(os.path.join(c["root"]["path"], "etc/marker"), "w") as f:
        f.write("absolute\n")
    assert not os.path.exists(os.path.join(b2.path, "rootfs"))
    assert rt.output(b2) == "absolute\n"


def test_root_path_other_name(rt):
    c = config(["cat", "/etc/marker"])
    c["root"]["path"] = "fs"
    b = rt.bundle(c)
    with open(os.path.join(b.path, "fs/etc/marker"), "w") as f:
        f.write("fs\n")
    assert rt.output(b) == "fs\n"


def test_root_readonly(rt):
    r = rt.run(config(["touch", "/newfile"]))
    assert r.rc != 0
    assert "Read-only file system" in r.err
    rows = mountinfo(rt.output(config(["cat", "/proc/self/mountinfo"])))
    assert "ro" in mount_at(rows, "/")["opts"]


def test_root_writable(rt):
    c = config(["sh", "-c", "echo data > /newfile && cat /newfile"])
    c["root"]["readonly"] = False
    b = rt.bundle(c)
    assert rt.output(b) == "data\n"
    assert read(os.path.join(b.rootfs, "newfile")) == "data\n"  # it is the bundle's rootfs


def test_pivot_root_hides_host(rt):
    """After pivot_root the host's root is gone: no host path is visible or mounted."""
    marker = host_dir(rt, "host-marker-dir", ["secret"])
    c = config(["sh", "-c", f"ls {marker} 2>&1; cat /proc/self/mountinfo"])
    out = rt.output(c)
    assert "No such file" in out.splitlines()[0]
    rows = mountinfo("\n".join(out.splitlines()[1:]))
    assert rows[0]["target"] == "/"
    assert not any(r["target"].startswith(rt.workdir) for r in rows)


def test_no_pivot(rt):
    b = rt.bundle(config(["sh", "-c", "cat /etc/marker; ls / | wc -l; cat /proc/self/mountinfo"]))
    with open(os.path.join(b.rootfs, "etc/marker"), "w") as f:
        f.write("in-rootfs\n")
    r = rt.run(b, "--no-pivot").ok()
    lines = r.out.splitlines()
    assert lines[0] == "in-rootfs"
    assert int(lines[1]) == len(os.listdir(b.rootfs))
    rows = mountinfo("\n".join(lines[2:]))
    assert {"/proc", "/dev", "/sys"} <= {r["target"] for r in rows}


# -- mounts --------------------------------------------------------------------------------


def test_default_mounts_shape(rt, env):
    """proc, tmpfs /dev, devpts, shm, mqueue, sysfs, cgroup: the same mount points as runc's,
    each with the same type and security flags (masked paths: only that they are there; the
    tmpfs under the cgroup mounts may be ro or rw)."""
    masked = set(config()["linux"]["maskedPaths"])
    flags = {"ro", "nosuid", "nodev", "noexec"}

    def norm(out):
        rows = []
        for r in mountinfo(out):
            if r["target"] in masked:
                rows.append((r["target"],))
            elif r["target"] == "/sys/fs/cgroup":
                rows.append((r["target"], r["fstype"], sorted(r["opts"] & flags - {"ro"})))
            else:
                rows.append((r["target"], r["fstype"], sorted(r["opts"] & flags)))
        return sorted(rows)

    out = same_as_runc(rt, env, config(["cat", "/proc/self/mountinfo"]), norm)
    rows = mountinfo(out)
    want = {
        "/proc": "proc",
        "/dev": "tmpfs",
        "/dev/pts": "devpts",
        "/dev/shm": "tmpfs",
        "/dev/mqueue": "mqueue",
        "/sys": "sysfs",
    }
    for target, fstype in want.items():
        assert mount_at(rows, target)["fstype"] == fstype
    assert {"nosuid", "noexec", "nodev", "ro"} <= mount_at(rows, "/sys")["opts"]
    assert {"nosuid", "noexec"} <= mount_at(rows, "/dev/pts")["opts"]
    assert {"mode=620", "ptmxmode=666", "gid=5"} <= mount_at(rows, "/dev/pts")["super"]
    assert {"size=65536k", "mode=755"} <= mount_at(rows, "/dev")["super"]
    cg = [r for r in rows if r["target"].startswith("/sys/fs/cgroup/")]
    assert cg and all(r["fstype"] == "cgroup" and "ro" in r["opts"] for r in cg)


def test_mounts_in_order(rt):
    """Later mounts stack on earlier ones: /a is a tmpfs, /a/b a tmpfs inside it, then /a/b
    again on top."""
    c = config(["sh", "-c", "cat /proc/self/mountinfo; ls /a"])
    add_mount(c, "/a", options=["size=1m"])
    add_mount(c, "/a/b", options=["size=2m"])
    add_mount(c, "/a/b", options=["size=3m"])
    out = rt.output(c)
    rows = mountinfo(out)
    mine = [r for r in rows if r["target"] in ("/a", "/a/b")]
    assert [
        (r["target"], sorted(x for x in r["super"] if x.startswith("size="))) for r in mine
    ] == [("/a", ["size=1024k"]), ("/a/b", ["size=2048k"]), ("/a/b", ["size=3072k"])]
    assert out.splitlines()[-1] == "b"


def test_missing_targets_are_created(rt):
    src = host_dir(rt, "src", ["f"])
    c = config(["sh", "-c", "ls /new/deep/dir; cat /files/one"])
    c["mounts"].append(
        {"destination": "/new/deep/dir", "type": "bind", "source": src, "options": ["bind"]}
    )
    c["mounts"].append(
        {
            "destination": "/files/one",
            "type": "bind",
            "source": os.path.join(src, "f"),
            "options": ["bind"],
        }
    )
    assert rt.output(c) == "f\ncontent of f\n"


def test_tmpfs_options(rt):
    c = config(["sh", "-c", "cat /proc/self/mountinfo; stat -c %a /t"])
    add_mount(c, "/t", options=["nosuid", "nodev", "noexec", "size=4k", "mode=710"])
    out = rt.output(c)
    r = mount_at(mountinfo(out), "/t")
    assert r["fstype"] == "tmpfs"
    assert {"nosuid", "nodev", "noexec"} <= r["opts"]
    assert {"size=4k", "mode=710"} <= r["super"]
    assert out.splitlines()[-1] == "710"


def test_bind_ro_and_rw(rt):
    src = host_dir(rt, "bind-src", ["f"])
    c = config(["sh", "-c", "cat /ro/f; echo x > /ro/g; echo $?; echo y > /rw/g; cat /rw/g"])
    c["mounts"].append(
        {"destination": "/ro", "type": "bind", "source": src, "options": ["bind", "ro"]}
    )
    c["mounts"].append(
        {"destination": "/rw", "type": "bind", "source": src, "options": ["bind", "rw"]}
    )
    r = rt.run(c).ok()
    assert r.out.splitlines() == ["content of f", "1", "y"]
    assert read(os.path.join(src, "g")) == "y\n"


def test_bind_flags(rt):
    src = host_dir(rt, "flags-src", ["f"])
    c = config(["cat", "/proc/self/mountinfo"])
    c["mounts"].append(
        {
            "destination": "/m",
            "type": "bind",
            "source": src,
            "options": ["bind", "nosuid", "nodev", "noexec", "ro"],
        }
    )
    r = mount_at(mountinfo(rt.output(c)), "/m")
    assert {"nosuid", "nodev", "noexec", "ro"} <= r["opts"]


def test_noexec_is_enforced(rt):
    c = config(["sh", "-c", "cp /bin/busybox /x/true && /x/true; echo $?"])
    add_mount(c, "/x", options=["noexec"])
    assert rt.output(c).strip() == "126"
    c = config(["sh", "-c", "cp /bin/busybox /x/true && /x/true; echo $?"])
    add_mount(c, "/x", options=["exec"])
    assert rt.output(c).strip() == "0"


def test_rbind_submounts_from_host(rt):
    """A host source with a submount: rbind shows the submount, bind shows what is under it.
    The submount is made in a private mount namespace that runs the runtime."""
    src = host_dir(rt, "rsrc", ["top"])
    sub = os.path.join(src, "sub")
    os.mkdir(sub)
    with open(os.path.join(sub, "under"), "w") as f:
        f.write("x\n")
    b = rt.bundle(config(["sh", "-c", "ls /b/sub; echo --; ls /rb/sub"]))
    b.config["mounts"] += [
        {"destination": "/b", "type": "bind", "source": src, "options": ["bind"]},
        {"destination": "/rb", "type": "bind", "source": src, "options": ["rbind"]},
    ]
    b.write()
    cid = rt.new_id()
    script = (
        f'mount --make-rprivate / && mount -t tmpfs tmpfs {sub} && touch {sub}/on-top && exec "$@"'
    )
    argv = ["unshare", "-m", "sh", "-c", script, "sh", *rt.argv("run", "--bundle", b.path, cid)]
    p = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "under\n--\non-top\n"


def run_in_shared_ns(rt, b, setup=""):
    """Run bundle `b` with the runtime inside a private mount namespace of a helper whose
    mounts are all shared (the host's here are private, which hides propagation), after
    `setup` (shell). The host's mount table is never touched."""
    cid = rt.new_id()
    script = f'mount --make-rshared / && {setup or "true"} && exec "$@"'
    argv = ["unshare", "-m", "sh", "-c", script, "sh", *rt.argv("run", "--bundle", b.path, cid)]
    p = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def propagation(row):
    """The kinds of a mountinfo row's optional fields: {'shared', 'master'}."""
    return {o.split(":")[0] for o in row["optional"]}


@pytest.mark.parametrize(
    "prop,want",
    [
        ("rshared", {"shared", "master"}),
        ("shared", {"shared", "master"}),
        ("rslave", {"master"}),
        ("slave", {"master"}),
        ("rprivate", set()),
        ("private", set()),
    ],
)
def test_bind_propagation(rt, prop, want):
    src = host_dir(rt, "prop-src")
    b = rt.bundle(config(["cat", "/proc/self/mountinfo"]))
    b.config["mounts"].append(
        {"destination": "/p", "type": "bind", "source": src, "options": ["rbind", prop]}
    )
    b.write()
    row = mount_at(mountinfo(run_in_shared_ns(rt, b)), "/p")
    assert propagation(row) == want, row


def test_bind_propagation_takes_effect(rt):
    """A mount made on the source while the container runs shows up through an rslave bind,
    not through an rprivate one."""
    src = host_dir(rt, "prop-live")
    os.mkdir(os.path.join(src, "sub"))
    b = rt.bundle(
        config(
            [
                "sh",
                "-c",
                "touch /slave/ready; "
                "while [ ! -e /slave/go ]; do sleep 0.02; done; "
                "ls /slave/sub; echo --; ls /private/sub",
            ]
        )
    )
    b.config["mounts"] += [
        {"destination": "/slave", "type": "bind", "source": src, "options": ["rbind", "rslave"]},
        {
            "destination": "/private",
            "type": "bind",
            "source": src,
            "options": ["rbind", "rprivate"],
        },
    ]
    b.write()
    cid = rt.new_id()
    script = (
        'mount --make-rshared / && { "$@" & } && '
        f"while [ ! -e {src}/ready ]; do sleep 0.02; done && "
        f"mount -t tmpfs tmpfs {src}/sub && touch {src}/sub/t {src}/go && wait $!"
    )
    argv = ["unshare", "-m", "sh", "-c", script, "sh", *rt.argv("run", "--bundle", b.path, cid)]
    p = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "t\n--\n"


def _root_propagation(rt, prop):
    c = config(["cat", "/proc/self/mountinfo"])
    c["linux"]["rootfsPropagation"] = prop
    return propagation(mount_at(mountinfo(run_in_shared_ns(rt, rt.bundle(c))), "/"))


@pytest.mark.sangja_only("runc 1.1.5 makes / private when rootfsPropagation is shared")
@pytest.mark.parametrize("prop", ["shared", "rshared"])
def test_rootfs_propagation_shared(rt, prop):
    assert "shared" in _root_propagation(rt, prop)


@pytest.mark.parametrize(
    "prop,want",
    [("slave", {"master"}), ("rslave", {"master"}), ("private", set()), ("rprivate", set())],
)
def test_rootfs_propagation(rt, prop, want):
    assert _root_propagation(rt, prop) == want


def test_default_rootfs_is_not_shared_with_host(rt):
    """Whatever the host's propagation, nothing the container mounts reaches the host:
    the container's / is never a shared peer of a host mount."""
    b = rt.bundle(config(["cat", "/proc/self/mountinfo"]))
    row = mount_at(mountinfo(run_in_shared_ns(rt, b)), "/")
    assert "shared" not in propagation(row), row


def test_mount_types(rt):
    c = config(["cat", "/proc/self/mountinfo"])
    c["mounts"] += [
        {
            "destination": "/x/proc",
            "type": "proc",
            "source": "proc",
            "options": ["nosuid", "hidepid=2", "subset=pid"],
        },
        {"destination": "/x/sys", "type": "sysfs", "source": "sysfs", "options": ["ro"]},
        {
            "destination": "/x/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["newinstance", "ptmxmode=0600", "mode=0600"],
        },
        {"destination": "/x/mq", "type": "mqueue", "source": "mqueue"},
        {"destination": "/x/cg", "type": "cgroup", "source": "cgroup", "options": ["ro"]},
    ]
    rows = mountinfo(rt.output(c))
    proc = mount_at(rows, "/x/proc")
    assert proc["fstype"] == "proc" and "nosuid" in proc["opts"]
    assert {"hidepid=invisible", "subset=pid"} <= proc["super"], proc
    assert mount_at(rows, "/x/sys")["fstype"] == "sysfs"
    assert "ro" in mount_at(rows, "/x/sys")["opts"]
    pts = mount_at(rows, "/x/pts")
    assert pts["fstype"] == "devpts" and {"ptmxmode=600", "mode=600"} <= pts["super"]
    assert mount_at(rows, "/x/mq")["fstype"] == "mqueue"
    cg = [r for r in rows if r["target"].startswith("/x/cg/")]
    assert cg and all(r["fstype"] == "cgroup" for r in cg)


@pytest.mark.sangja_only("runc 1.1 ignores the recursive r* mount attributes (runc 1.2)")
def test_recursive_attributes(rt):
    """rro/rnosuid/rnodev/rnoexec apply to every mount under the bind, submounts too."""
    src = host_dir(rt, "rattr-src", ["f"])
    c = config(["cat", "/proc/self/mountinfo"])
    c["mounts"].append({"destination": "/src", "type": "bind", "source": src, "options": ["bind"]})
    add_mount(c, "/src/inner")
    c["mounts"].append(
        {
            "destination": "/r",
            "type": "bind",
            "source": src,
            "options": ["rbind", "rro", "rnosuid", "rnodev", "rnoexec"],
        }
    )
    rows = mountinfo(rt.output(c))
    for target in ("/r",):
        assert {"ro", "nosuid", "nodev", "noexec"} <= mount_at(rows, target)["opts"]


@pytest.mark.sangja_only("runc 1.1 ignores the recursive r* mount attributes (runc 1.2)")
def test_recursive_ro_reaches_submounts(rt):
    """The submount exists on the host (made in the runtime's private mount namespace)."""
    src = host_dir(rt, "rro-src", ["top"])
    sub = os.path.join(src, "sub")
    os.mkdir(sub)
    b = rt.bundle(config(["sh", "-c", "touch /r/sub/new; echo $?; touch /b/sub/new2; echo $?"]))
    b.config["mounts"] += [
        {"destination": "/r", "type": "bind", "source": src, "options": ["rbind", "rro"]},
        {"destination": "/b", "type": "bind", "source": src, "options": ["rbind", "ro"]},
    ]
    b.write()
    cid = rt.new_id()
    script = f'mount --make-rprivate / && mount -t tmpfs tmpfs {sub} && exec "$@"'
    argv = ["unshare", "-m", "sh", "-c", script, "sh", *rt.argv("run", "--bundle", b.path, cid)]
    p = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert p.returncode == 0, p.stderr
    rro, ro = p.stdout.split()
    assert rro != "0"  # rro: the submount is read-only too
    assert ro == "0"  # plain ro: only the top mount is


# -- masked and read-only paths ------------------------------------------------------------


def test_masked_paths(rt):
    b = rt.bundle(
        config(
            [
                "sh",
                "-c",
                "cat /etc/secret | wc -c; stat -c '%t:%T' /etc/secret; "
                "ls /secretdir | wc -l; cat /proc/self/mountinfo",
            ]
        )
    )
    with open(os.path.join(b.rootfs, "etc/secret"), "w") as f:
        f.write("top secret\n")
    os.makedirs(os.path.join(b.rootfs, "secretdir"))
    with open(os.path.join(b.rootfs, "secretdir/file"), "w") as f:
        f.write("x\n")
    b.config["linux"]["maskedPaths"] += ["/etc/secret", "/secretdir", "/does/not/exist"]
    b.write()
    lines = rt.output(b).splitlines()
    assert lines[0].strip() == "0"
    assert lines[1] == "1:3"  # /dev/null bound over it
    assert lines[2].strip() == "0"
    rows = mountinfo("\n".join(lines[3:]))
    d = mount_at(rows, "/secretdir")
    assert d["fstype"] == "tmpfs" and "ro" in d["opts"]
    assert "/does/not/exist" not in {r["target"] for r in rows}
    assert read(os.path.join(b.rootfs, "etc/secret")) == "top secret\n"


def test_default_masked_paths(rt):
    out = rt.output(config(["sh", "-c", "cat /proc/kcore | wc -c; ls /sys/firmware | wc -l"]))
    assert [x.strip() for x in out.split()] == ["0", "0"]


def test_readonly_paths(rt):
    c = config(
        [
            "sh",
            "-c",
            "echo 1 > /proc/sys/kernel/ns_last_pid; echo $?; "
            "touch /rw/x; echo $?; touch /rodir/x; echo $?",
        ]
    )
    c["root"]["readonly"] = False
    b = rt.bundle(c)
    os.makedirs(os.path.join(b.rootfs, "rodir"))
    os.makedirs(os.path.join(b.rootfs, "rw"))
    b.config["linux"]["readonlyPaths"] += ["/rodir", "/missing/ro"]
    b.write()
    out = rt.output(b).split()
    assert out[0] != "0"
    assert out[1] == "0"
    assert out[2] != "0"


# -- tmpfs mode, bind sources in a user namespace ----------------------------------------------


def userns_bundle(rt, c, *dirs):
    """A bundle for `c` with the mount points `dirs` made in its rootfs: in a user namespace
    the container's root cannot create them in a rootfs the host's root owns."""
    b = rt.bundle(c)
    for d in dirs:
        os.makedirs(os.path.join(b.rootfs, d), exist_ok=True)
    return b


def test_tmpfs_takes_the_mode_of_the_dir_it_covers(rt):
    """tmpfs without mode= gets the mode of the directory it covers (runc); mode= wins; over
    a directory that does not exist yet the tmpfs keeps its own 1777."""
    c = config(["stat", "-c", "%n %a", "/t750", "/t711", "/tnew"])
    c["root"]["readonly"] = False
    add_mount(c, "/t750", options=["nosuid"])
    add_mount(c, "/t711", options=["mode=711"])
    add_mount(c, "/tnew")
    b = rt.bundle(c)
    for d in ("t750", "t711"):
        os.mkdir(os.path.join(b.rootfs, d), 0o750)
        os.chmod(os.path.join(b.rootfs, d), 0o750)
    out = rt.run(b).ok().out.splitlines()
    assert out[0] == "/t750 750" and out[2] == "/tnew 1777", out
    # runc 1.1 chmods the tmpfs to the covered dir's mode even over an explicit mode=
    assert out[1] == ("/t711 750" if rt.is_runc else "/t711 711"), out


def test_userns_bind_source_only_the_host_root_can_reach(rt):
    """A bind source below a directory only the host's root may enter (0700): the runtime
    opens it on the host side, so a container in a user namespace still gets it."""
    from rtkit import userns_config

    locked = host_dir(rt, "locked")
    os.chmod(locked, 0o700)
    src = host_dir(rt, "locked/inner", ["data"])
    c = userns_config(["sh", "-c", "cat /vol/data; id -u"])
    c["mounts"].append({"destination": "/vol", "type": "bind", "source": src,
                        "options": ["rbind", "ro"]})  # fmt: skip
    assert rt.output(userns_bundle(rt, c, "vol")) == "content of data\n0\n"


@pytest.mark.sangja_only("runc 1.1 binds them without nosuid,noexec (crun 1.8 with)")
def test_userns_default_devices_are_nosuid_noexec(rt):
    from rtkit import userns_config

    c = userns_config(["cat", "/proc/self/mountinfo"])
    rows = mountinfo(rt.output(c))
    for dev in ("null", "zero", "full", "random", "urandom", "tty"):
        r = mount_at(rows, f"/dev/{dev}")
        assert {"nosuid", "noexec"} <= r["opts"] and "nodev" not in r["opts"], (dev, r)


def test_bind_of_a_source_below_a_host_mount_reaches_later_mounts_in_userns(rt):
    """The detached copy the runtime makes for a user namespace is a slave of the source,
    as a bind made in the container would be: what the host mounts below it later shows."""
    from rtkit import userns_config

    src = host_dir(rt, "later-src")
    os.mkdir(os.path.join(src, "sub"))
    c = userns_config(["sh", "-c", "until [ -e /vol/sub/marker ]; do sleep 0.05; done; echo seen"])
    c["mounts"].append({"destination": "/vol", "type": "bind", "source": src,
                        "options": ["rbind"]})  # fmt: skip
    b = userns_bundle(rt, c, "vol")
    cid = rt.new_id()
    # a helper mount namespace whose mounts are shared: the host's are private here
    script = (
        f"mount --make-rshared / && {{ sleep 0.5; mount -t tmpfs tmpfs {src}/sub && "
        f'touch {src}/sub/marker; }} & exec "$@"'
    )
    argv = ["unshare", "-m", "sh", "-c", script, "sh", *rt.argv("run", "--bundle", b.path, cid)]
    p = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "seen\n"


# -- idmapped mounts ---------------------------------------------------------------------------

IDMAP = [{"containerID": 0, "hostID": 4000, "size": 10}]


def need_idmapped_mounts(path, fs="its filesystem"):
    """Skip unless the kernel (5.12+) and the filesystem of `path` take idmapped mounts:
    asked the way the runtime does it (csrc/mount_trees.c)."""
    from sangja._native import launch
    from sangja.errors import LaunchError

    try:
        ns = launch.userns_fd("0 4000 10\n", "0 4000 10\n")
        try:
            os.close(launch.source_tree(path, False, ns, False))
        finally:
            os.close(ns)
    except LaunchError as e:
        pytest.skip(f"no idmapped mounts of {fs} here: {e}")


def idmap_src(rt, name="idsrc"):
    d = host_dir(rt, name, ["root-owned"])
    need_idmapped_mounts(d)
    os.chown(os.path.join(d, "root-owned"), 0, 0)
    with open(os.path.join(d, "one-owned"), "w") as f:
        f.write("x\n")
    os.chown(os.path.join(d, "one-owned"), 1, 2)
    return d


@pytest.mark.sangja_only("runc 1.1 ignores idmap (runc 1.2 and crun 1.8 do it)")
@pytest.mark.parametrize("opt", ["idmap", "ridmap"])
def test_idmap_with_mappings(rt, opt):
    """uidMappings/gidMappings of the mount: on-disk ids containerID.. show as hostID.."""
    src = idmap_src(rt)
    c = config(["sh", "-c", "stat -c '%n %u:%g' /m/root-owned /m/one-owned; "
                            "grep ' /m ' /proc/self/mountinfo"])  # fmt: skip
    c["mounts"].append({"destination": "/m", "type": "bind", "source": src,
                        "options": ["rbind", opt], "uidMappings": IDMAP,
                        "gidMappings": IDMAP})  # fmt: skip
    out = rt.output(c).splitlines()
    assert out[:2] == ["/m/root-owned 4000:4000", "/m/one-owned 4001:4002"], out
    assert "idmapped" in out[2]
    # the host's files are untouched
    assert os.stat(os.path.join(src, "root-owned")).st_uid == 0


@pytest.mark.sangja_only("runc 1.1 ignores idmap (runc 1.2 and crun 1.8 do it)")
def test_idmap_without_mappings_uses_the_user_namespace(rt):
    """idmap alone in a user namespace: the container's mappings (spec 1.2), so that files
    owned by the host's root are its root's, and what it writes is the host's root's (the
    Kubernetes user-namespace volume)."""
    from rtkit import userns_config

    src = idmap_src(rt)
    c = userns_config(["sh", "-c", "stat -c '%u:%g' /m/root-owned; touch /m/new; "
                                   "stat -c '%u:%g' /m/new"])  # fmt: skip
    c["linux"]["gidMappings"] = list(c["linux"]["uidMappings"])
    c["mounts"].append({"destination": "/m", "type": "bind", "source": src,
                        "options": ["bind", "idmap"]})  # fmt: skip
    assert rt.output(userns_bundle(rt, c, "m")) == "0:0\n0:0\n"
    st = os.stat(os.path.join(src, "new"))
    assert (st.st_uid, st.st_gid) == (0, 0)


@pytest.mark.sangja_only("runc 1.1 ignores idmap (runc 1.2 and crun 1.8 do it)")
def test_ridmap_reaches_submounts_idmap_does_not(rt):
    """rbind with ridmap idmaps the submounts too; with idmap only the top mount."""
    src = idmap_src(rt, "rid")
    sub = os.path.join(src, "sub")
    os.mkdir(sub)
    b = rt.bundle(config(["sh", "-c", "stat -c '%n %u' /r/sub/f /i/sub/f"]))
    for dest, opt in (("/r", "ridmap"), ("/i", "idmap")):
        b.config["mounts"].append({"destination": dest, "type": "bind", "source": src,
                                   "options": ["rbind", opt], "uidMappings": IDMAP,
                                   "gidMappings": IDMAP})  # fmt: skip
    b.write()
    cid = rt.new_id()
    # the submount is a tmpfs: idmapped mounts of tmpfs came with Linux 6.3
    if tuple(int(x) for x in os.uname().release.split(".")[:2]) < (6, 3):
        pytest.skip("no idmapped mounts of tmpfs before Linux 6.3 (the submount here)")
    script = f'mount --make-rprivate / && mount -t tmpfs tmpfs {sub} && touch {sub}/f && exec "$@"'
    argv = ["unshare", "-m", "sh", "-c", script, "sh", *rt.argv("run", "--bundle", b.path, cid)]
    p = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["/r/sub/f 4000", "/i/sub/f 0"], p.stdout


@pytest.mark.sangja_only("runc 1.1 ignores idmap and the mappings")
@pytest.mark.parametrize(
    "mount, words",
    [
        ({"type": "bind", "options": ["bind"], "uidMappings": IDMAP, "gidMappings": IDMAP},
         ["uidMappings", "idmap"]),
        ({"type": "bind", "options": ["bind", "idmap"], "uidMappings": IDMAP},
         ["both uidMappings and gidMappings"]),
        ({"type": "tmpfs", "source": "tmpfs", "options": ["idmap"], "uidMappings": IDMAP,
          "gidMappings": IDMAP}, ["only bind mounts"]),
        ({"type": "bind", "options": ["bind", "idmap"]}, ["user namespace"]),
        ({"type": "bind", "options": ["bind", "idmap"], "uidMappings": [
            {"containerID": 0, "hostID": 1, "size": 0}], "gidMappings": IDMAP}, ["size"]),
    ],
)  # fmt: skip
def test_idmap_refusals(rt, mount, words):
    c = config(["true"])
    c["mounts"].append({"destination": "/m", "source": host_dir(rt, "ids"), **mount})
    cid, r = rt.create(c)
    assert r.rc == 1 and r.err.startswith("sangja: ") and r.err.count("\n") == 1, r
    for w in words:
        assert w in r.err, r
    rt.assert_nothing_left(cid)
