"""Volumes, bind mounts and tmpfs in real containers (the fixtures' images): data written by
one container is read by another and by the host, survives `rm` of the container, is
shared live between running containers; copy-up of an image's directory into a new volume
keeps owners, modes, xattrs and hard links; `:ro` is enforced; `--mount` forms; an image's
VOLUME; `--volumes-from`; `rm -v`/`--rm` remove anonymous volumes only; a volume in use
cannot be removed; a create killed half-way leaves nothing the next command keeps; the
events of it all, in order, from concurrent commands."""

import io
import json
import os
import stat
import subprocess
import tarfile

import pytest
from enginekit import BUSYBOX, DEBIAN, inspect, kill9, ps, start_stopped


def run(sj, *args):
    return sj.ok("container", "run", "--rm", *args)


def vols(sj):
    return sorted(sj.ok("volume", "ls", "-q").out.split())


def data_of(sj, name):
    return os.path.join(sj.root, "volumes", name, "_data")


def test_named_volume_shared_live_outlives_its_containers(sj):
    sj.ok("volume", "create", "shared")
    sj.ok("container", "run", "-d", "--name", "w", "-v", "shared:/data", BUSYBOX, "sh", "-c",
          "echo from-w > /data/f; sleep 1000")  # fmt: skip
    # a second running container sees it at once, and writes back
    from enginekit import wait_for

    wait_for(lambda: os.path.exists(os.path.join(data_of(sj, "shared"), "f")), "w's write")
    r = run(sj, "-v", "shared:/in", BUSYBOX, "sh", "-c", "cat /in/f; echo from-r > /in/g")
    assert r.out == "from-w\n"
    assert sj.ok("container", "exec", "w", "cat", "/data/g").out == "from-r\n"
    assert open(os.path.join(data_of(sj, "shared"), "g")).read() == "from-r\n"  # the host
    # in use (running, then stopped): never removed, with or without -f
    cid = inspect(sj, "w")["Id"]
    for args in (("volume", "rm", "shared"), ("volume", "rm", "-f", "shared")):
        assert f"volume is in use - [{cid}]" in sj.fail(*args).err
    sj.ok("container", "stop", "-t", "0", "w")
    assert f"volume is in use - [{cid}]" in sj.fail("volume", "rm", "-f", "shared").err
    m = inspect(sj, "w")["Mounts"]
    assert m == [{"Type": "volume", "Name": "shared", "Source": data_of(sj, "shared"),
                  "Destination": "/data", "Driver": "local", "Mode": "", "RW": True,
                  "Propagation": ""}]  # fmt: skip
    assert list(ps(sj, "--filter", "volume=shared")) == ["w"]
    assert list(ps(sj, "--filter", "volume=/data")) == ["w"]
    assert list(ps(sj, "--filter", "volume=other")) == []
    sj.ok("container", "rm", "-v", "w")  # -v: anonymous ones only
    assert vols(sj) == ["shared"]
    assert run(sj, "-v", "shared:/d", BUSYBOX, "cat", "/d/f", "/d/g").out == "from-w\nfrom-r\n"
    sj.ok("volume", "rm", "shared")


def test_v_name_creates_the_volume_and_rm_v_keeps_named_ones(sj):
    sj.ok("container", "run", "--name", "c", "-v", "made:/m", "-v", "/anon", BUSYBOX, "sh",
          "-c", "echo x > /m/x; echo y > /anon/y")  # fmt: skip
    points = {m["Destination"]: m for m in inspect(sj, "c")["Mounts"]}
    anon = points["/anon"]["Name"]
    assert len(anon) == 64 and points["/m"]["Name"] == "made"
    assert vols(sj) == sorted(["made", anon])
    assert open(os.path.join(data_of(sj, anon), "y")).read() == "y\n"
    sj.ok("container", "rm", "c")  # without -v: the anonymous volume stays (dangling)
    assert vols(sj) == sorted(["made", anon])
    assert sj.ok("volume", "ls", "-q", "-f", "dangling=true").out.split() == sorted([anon, "made"])
    sj.ok("volume", "prune", "-f")  # anonymous and unused: pruned; named: kept
    assert vols(sj) == ["made"]
    # run --rm: its anonymous volumes go with it, the named one stays
    run(sj, "-v", "made:/m", "-v", "/tmpanon", BUSYBOX, "true")
    assert vols(sj) == ["made"]
    sj.ok("container", "create", "--name", "d", "-v", "made:/m", "-v", "/a2", BUSYBOX)
    sj.ok("container", "rm", "-v", "d")
    assert vols(sj) == ["made"]
    sj.ok("volume", "rm", "made")


def _image_with_volume(sj, tmp_path, name):
    """busybox's layer plus /srv/app (owners, modes, xattrs, a hard link, a symlink, a
    setuid file) as an image whose config says VOLUME /srv/app."""
    from sangja.image.store import Store

    sj.ok("image", "pull", "-q", BUSYBOX)
    store = Store(sj.root)
    layer = store.layer_path(store.layers_of(store.resolve(BUSYBOX))[0].chain_id)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        t.add(layer, arcname=".")

        def add(path, kind=tarfile.REGTYPE, data=b"", mode=0o644, uid=0, gid=0, xattrs=None,
                link=""):  # fmt: skip
            ti = tarfile.TarInfo(path)
            ti.type, ti.mode, ti.uid, ti.gid, ti.mtime = kind, mode, uid, gid, 1_600_000_000
            ti.size, ti.linkname = len(data), link
            ti.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in (xattrs or {}).items()}
            t.addfile(ti, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

        add("srv/app", tarfile.DIRTYPE, mode=0o2751, uid=1000, gid=1001)
        add("srv/app/conf", data=b"setting=1\n", mode=0o640, uid=1000, gid=1001,
            xattrs={"user.origin": "image"})  # fmt: skip
        add("srv/app/bin", data=b"#!/bin/sh\necho hi\n", mode=0o4755)
        add("srv/app/conf-link", tarfile.LNKTYPE, link="srv/app/conf", mode=0o640, uid=1000,
            gid=1001)  # fmt: skip
        add("srv/app/sym", tarfile.SYMTYPE, link="/etc/passwd", mode=0o777)
        add("srv/app/sub", tarfile.DIRTYPE, mode=0o700, uid=33, gid=33)
        add("srv/app/sub/deep", data=b"deep\n", mode=0o600, uid=33, gid=33)
    tar = tmp_path / "withvol.tar"
    tar.write_bytes(buf.getvalue())
    sj.ok("image", "import", "-c", "VOLUME /srv/app", "-c", 'CMD ["sh"]', str(tar), name)
    return name


def _tree(root):
    out, inodes = {}, {}
    for dirpath, dirs, files in os.walk(root):
        for n in sorted(dirs + files):
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            e = (stat.filemode(st.st_mode), st.st_uid, st.st_gid,
                 open(p, "rb").read() if stat.S_ISREG(st.st_mode) else
                 os.readlink(p) if stat.S_ISLNK(st.st_mode) else None,
                 sorted((k, os.getxattr(p, k)) for k in os.listxattr(p))
                 if not stat.S_ISLNK(st.st_mode) else None)  # fmt: skip
            out[os.path.relpath(p, root)] = e
            if stat.S_ISREG(st.st_mode):
                inodes.setdefault(st.st_ino, []).append(os.path.relpath(p, root))
    return out, sorted(sorted(v) for v in inodes.values() if len(v) > 1)


def test_copy_up_into_a_new_volume_and_the_images_volume(sj, tmp_path):
    img = _image_with_volume(sj, tmp_path, "local/withvol:1")
    want = {
        "conf": ("-rw-r-----", 1000, 1001, b"setting=1\n", [("user.origin", b"image")]),
        "conf-link": ("-rw-r-----", 1000, 1001, b"setting=1\n", [("user.origin", b"image")]),
        "bin": ("-rwsr-xr-x", 0, 0, b"#!/bin/sh\necho hi\n", []),
        "sym": ("lrwxrwxrwx", 0, 0, "/etc/passwd", None),
        "sub": ("drwx------", 33, 33, None, []),
        "sub/deep": ("-rw-------", 33, 33, b"deep\n", []),
    }  # fmt: skip
    # a named volume, new and empty: filled from the image, the directory's owner and mode too
    sj.ok("container", "run", "--name", "c1", "-v", "appdata:/srv/app", img, "true")
    got, links = _tree(data_of(sj, "appdata"))
    assert got == want and links == [["conf", "conf-link"]]
    st = os.stat(data_of(sj, "appdata"))
    assert (stat.filemode(st.st_mode), st.st_uid, st.st_gid) == ("drwxr-s--x", 1000, 1001)
    # the image's VOLUME without -v: an anonymous volume, filled the same way
    sj.ok("container", "run", "--name", "c2", img, "sh", "-c", "echo new > /srv/app/n")
    (anon,) = [m["Name"] for m in inspect(sj, "c2")["Mounts"]]
    got, _ = _tree(data_of(sj, anon))
    assert {k: v for k, v in got.items() if k != "n"} == want
    # nocopy: left empty; a volume that holds something: never copied into
    sj.ok("container", "run", "--rm", "-v", "bare:/srv/app:nocopy", img, "true")
    assert os.listdir(data_of(sj, "bare")) == []
    out = run(sj, "--mount", "src=bare2,dst=/srv/app,volume-nocopy", img, "ls", "-A", "/srv/app")
    assert out.out == ""
    with open(os.path.join(data_of(sj, "bare"), "mine"), "w") as f:
        f.write("mine")
    assert run(sj, "-v", "bare:/srv/app", img, "ls", "/srv/app").out == "mine\n"
    # inside the container: the same owners and modes
    out = run(sj, "-v", "appdata:/srv/app", img, "sh", "-c", "cd /srv/app; ls -ln conf bin").out
    assert "-rw-r-----    2 1000     1001" in out and "-rwsr-xr-x" in out
    sj.ok("container", "rm", "-v", "c1", "c2")
    assert vols(sj) == ["appdata", "bare", "bare2"]


def test_bind_mounts(sj, tmp_path, canary):
    host = tmp_path / "h"
    host.mkdir()
    (host / "in").write_text("from host\n")
    out = run(sj, "-v", f"{host}:/h:ro", BUSYBOX, "sh", "-c",
              "cat /h/in; (echo x > /h/new) 2>&1 || echo refused").out  # fmt: skip
    assert out.startswith("from host\n") and "refused" in out and "Read-only" in out
    assert sorted(os.listdir(host)) == ["in"]
    run(sj, "-v", f"{host}:/h", BUSYBOX, "sh", "-c", "echo w > /h/w")
    assert (host / "w").read_text() == "w\n"
    # a -v source that does not exist is made (as Docker's -v); --mount refuses it
    made = tmp_path / "made" / "deeper"
    run(sj, "-v", f"{made}:/m", BUSYBOX, "true")
    assert made.is_dir()
    r = sj("container", "run", "--rm", "--mount", f"type=bind,src={tmp_path}/none,dst=/x",
           BUSYBOX, "true")  # fmt: skip
    assert r.rc == 125 and f"bind source path does not exist: {tmp_path}/none" in r.err
    r = sj("container", "run", "--rm", "-v", "relative/dir:/x", BUSYBOX, "true")
    assert r.rc == 125 and "use absolute path" in r.err
    r = sj("container", "run", "--rm", "-v", "/h:/x:bogus", BUSYBOX, "true")
    assert r.rc == 125 and "invalid mode: bogus" in r.err
    # symlinks in the source are followed on the host, as given
    os.symlink(host, tmp_path / "link")
    assert run(sj, "-v", f"{tmp_path}/link:/l", BUSYBOX, "cat", "/l/in").out == "from host\n"
    # the destination is resolved inside the container (a symlink there cannot escape)
    out = run(sj, "--mount", f"type=bind,src={host},dst=/etc/mtab,readonly", BUSYBOX,
              "cat", "/etc/mtab/in").out  # busybox's /etc/mtab is a link into /proc  # fmt: skip
    assert out == "from host\n"
    # --mount readonly is read-only all the way down (a mount below the source too)
    sub = host / "sub"
    sub.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(sub)], check=True)
    try:
        out = run(sj, "--mount", f"type=bind,src={host},dst=/h,readonly", BUSYBOX, "sh", "-c",
                  "touch /h/sub/x 2>&1 || echo refused").out  # fmt: skip
        assert "refused" in out
        out = run(sj, "--mount", f"type=bind,src={host},dst=/h,readonly,bind-recursive=writable",
                  BUSYBOX, "sh", "-c", "touch /h/sub/x && echo wrote").out  # fmt: skip
        assert "wrote" in out
    finally:
        subprocess.run(["umount", str(sub)], check=True)


def test_tmpfs_forms(sj):
    out = run(sj, "--tmpfs", "/run/t:size=1m,mode=700", "--mount",
              "type=tmpfs,dst=/t2,tmpfs-size=2m,tmpfs-mode=1770", BUSYBOX, "sh", "-c",
              "grep -E ' /run/t | /t2 ' /proc/mounts; stat -c '%a' /run/t /t2").out  # fmt: skip
    lines = out.splitlines()
    t1 = next(line for line in lines if " /run/t " in line)
    t2 = next(line for line in lines if " /t2 " in line)
    assert "tmpfs" in t1 and "size=1024k" in t1 and "nosuid" in t1 and "noexec" in t1
    assert "size=2048k" in t2
    assert lines[-2:] == ["700", "1770"]


def test_volume_with_mount_options_shared_by_running_containers(sj):
    sj.ok("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=4m",
          "scratch")  # fmt: skip
    data = data_of(sj, "scratch")
    for n in ("a", "b"):
        sj.ok("container", "run", "-d", "--name", n, "-v", "scratch:/s", BUSYBOX, "sleep", "1000")
    sj.ok("container", "exec", "a", "sh", "-c", "echo shared > /s/f")
    assert sj.ok("container", "exec", "b", "cat", "/s/f").out == "shared\n"
    out = sj.ok("container", "exec", "b", "grep", " /s ", "/proc/mounts").out
    assert out.startswith("tmpfs /s tmpfs") and "size=4096k" in out

    def mounted():
        with open("/proc/self/mountinfo") as f:
            return any(line.split()[4] == data for line in f)

    assert mounted()
    sj.ok("container", "stop", "-t", "0", "a")
    assert mounted()  # b still holds it
    sj.ok("container", "stop", "-t", "0", "b")
    assert not mounted()  # the last one out unmounts it
    sj.ok("container", "start", "a")
    assert mounted() and sj.ok("container", "exec", "a", "ls", "/s").out == ""  # a new tmpfs
    sj.ok("container", "rm", "-f", "a", "b")
    assert not mounted()
    sj.ok("volume", "rm", "scratch")


def test_volumes_from(sj, tmp_path):
    (tmp_path / "h").mkdir()
    sj.ok("container", "create", "--name", "src", "-v", "named:/named", "-v", "/anon",
          "-v", f"{tmp_path}/h:/hostdir", BUSYBOX)  # fmt: skip
    sj.ok("container", "run", "--rm", "--volumes-from", "src", BUSYBOX, "sh", "-c",
          "echo 1 > /named/f; echo 2 > /anon/f; echo 3 > /hostdir/f")  # fmt: skip
    script = "cat /named/f /anon/f /hostdir/f; touch /named/x 2>/dev/null || echo ro"
    out = run(sj, "--volumes-from", "src:ro", BUSYBOX, "sh", "-c", script).out
    assert out == "1\n2\n3\nro\n"
    anon = next(m["Name"] for m in inspect(sj, "src")["Mounts"] if m["Destination"] == "/anon")
    sj.ok("container", "create", "--name", "user", "--volumes-from", "src", BUSYBOX)
    sj.ok("container", "rm", "-v", "src")
    assert anon in vols(sj)  # still used by `user`
    sj.ok("container", "rm", "-v", "user")  # the last user of the anonymous volume
    assert vols(sj) == ["named"]
    r = sj("container", "run", "--rm", "--volumes-from", "nosuch", BUSYBOX, "true")
    assert r.rc == 125 and "No such container: nosuch" in r.err
    sj.ok("volume", "rm", "named")


def test_a_create_killed_after_making_volumes_leaves_nothing(sj):
    sj.ok("volume", "create", "keepme")
    kill9(start_stopped(sj, "container", "create", "--name", "k", "-v", "keepme:/k",
                        "-v", "/anon", BUSYBOX, failpoint="create:mounts"))  # fmt: skip
    assert len(vols(sj)) == 2  # the anonymous volume was made for it
    assert list(ps(sj)) == []  # the next command collects the container ...
    assert vols(sj) == ["keepme"]  # ... and its anonymous volume; the named one is free
    sj.ok("volume", "rm", "keepme")


def test_events_in_order_from_concurrent_commands(sj):
    import time

    t0 = time.time()
    procs = [subprocess.Popen([os.environ.get("SANGJA") or "sangja", "--root", sj.run_root,
                               "container", "run", "--rm", "--name", f"ev{i}", "-v",
                               f"evvol{i}:/v", BUSYBOX, "true"], env=sj.env)
             for i in range(3)]  # fmt: skip
    for p in procs:
        assert p.wait(timeout=300) == 0
    sj.ok("container", "run", "-d", "--name", "st", BUSYBOX, "sleep", "1000")
    sj.ok("container", "stop", "-t", "1", "st")
    sj.ok("container", "rm", "st")
    out = sj.ok("system", "events", "--since", f"{t0}", "--until", "0s", "--format", "json").out
    evs = [json.loads(line) for line in out.splitlines()]
    times = [e["timeNano"] for e in evs]
    assert times == sorted(times)
    for i in range(3):
        mine = [(e["Type"], e["Action"]) for e in evs
                if e["Actor"]["Attributes"].get("name") == f"ev{i}"
                or e["Actor"]["ID"] == f"evvol{i}"]  # fmt: skip
        assert mine == [("volume", "create"), ("container", "create"), ("volume", "mount"),
                        ("container", "start"), ("container", "die"), ("volume", "unmount"),
                        ("container", "destroy")], mine  # fmt: skip
    st = [e["Action"] for e in evs if e["Actor"]["Attributes"].get("name") == "st"]
    assert st == ["create", "start", "kill", "die", "stop", "destroy"]
    die = next(e for e in evs if e["Action"] == "die")
    assert die["Actor"]["Attributes"]["exitCode"] == "0"
    assert die["from"] == BUSYBOX and die["status"] == "die"
    for i in range(3):
        sj.ok("volume", "rm", f"evvol{i}")


@pytest.mark.parametrize("driver", ["vfs"])
def test_vfs_containers(sj, driver):
    """`--storage-driver vfs`: the container's root is a copy, nothing is mounted for it,
    changes persist across restarts, `diff` sees them, `rm` removes it all."""
    sj.ok("--storage-driver", driver, "container", "create", "--name", "v", DEBIAN, "sh", "-c",
          "echo changed > /etc/motd2; rm /etc/hostname.orig 2>/dev/null; rm -f /etc/issue;"
          " cat /etc/motd2")  # fmt: skip
    i = inspect(sj, "v")
    assert i["Driver"] == "vfs" and i["GraphDriver"]["Name"] == "vfs"
    cid = i["Id"]
    rootfs = os.path.join(sj.root, "containers", cid, "rootfs")
    assert os.path.isfile(os.path.join(rootfs, "etc", "os-release"))  # a whole copy
    assert not os.path.exists(os.path.join(sj.root, "containers", cid, "upper"))
    sj.ok("container", "start", "-a", "v")
    with open("/proc/self/mountinfo") as f:
        assert not any(rootfs in line for line in f)
    changes = sj.ok("container", "diff", "v").out.splitlines()
    assert "A /etc/motd2" in changes and "D /etc/issue" in changes and "C /etc" in changes
    assert sj.ok("container", "start", "-a", "v").out == "changed\n"  # kept across runs
    sj.ok("container", "rm", "v")
    assert not os.path.exists(os.path.join(sj.root, "containers", cid))
