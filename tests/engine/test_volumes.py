"""Volumes: `sangja volume create|ls|inspect|rm|prune` (Docker's flags, JSON and errors),
the local driver's `--opt type/device/o` volumes mounted for real, copy-up of a directory
tree into a new volume (owners, modes, times, xattrs, links), and the rules that protect a
volume a container uses.  The tests that run containers with volumes are in
test_volume_containers.py."""

import json
import os
import stat
import subprocess

import pytest
from registrykit import Sangja


@pytest.fixture
def vsj(tmp_path):
    """The CLI with a private engine root (no registry needed); no mount may be left."""
    s = Sangja(tmp_path)
    yield s
    with open("/proc/self/mountinfo") as f:
        left = [line.split()[4] for line in f if str(tmp_path) in line.split()[4]]
    assert not left, f"mounts left behind: {left}"


def _engine(sj):
    """The engine's Python API on the CLI's root (the same database and directories)."""
    from sangja.engine.volumes import Volumes
    from sangja.image.store import Store

    return Volumes(Store(sj.root))


def _mounted(path):
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == os.path.realpath(path):
                return fields[fields.index("-") + 1], fields[-1]
    return None


def test_create_ls_inspect_rm(vsj):
    assert vsj.ok("volume", "create", "data1").out == "data1\n"
    assert vsj.ok("volume", "create", "--label", "team=a", "--label", "flag", "data2").out
    anon = vsj.ok("volume", "create").out.strip()
    assert len(anon) == 64 and all(c in "0123456789abcdef" for c in anon)
    # creating a name that exists returns it, as Docker does
    assert vsj.ok("volume", "create", "data1").out == "data1\n"
    ls = vsj.ok("volume", "ls").out.splitlines()
    assert ls[0].split() == ["DRIVER", "VOLUME", "NAME"]
    assert sorted(line.split()[1] for line in ls[1:]) == sorted([anon, "data1", "data2"])
    assert vsj.ok("volume", "ls", "-q").out.split() == sorted([anon, "data1", "data2"])
    got = json.loads(vsj.ok("volume", "inspect", "data2", anon).out)
    assert [v["Name"] for v in got] == ["data2", anon]
    d2 = got[0]
    assert set(d2) == {"CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options", "Scope"}
    assert d2["Driver"] == "local" and d2["Scope"] == "local" and d2["Options"] is None
    assert d2["Labels"] == {"team": "a", "flag": ""}
    assert d2["Mountpoint"] == os.path.join(vsj.root, "volumes", "data2", "_data")
    assert os.path.isdir(d2["Mountpoint"])
    assert d2["CreatedAt"].endswith("Z") or d2["CreatedAt"][-6] in "+-"
    assert got[1]["Labels"] == {"com.docker.volume.anonymous": ""}
    # --format json: docker's volume ls fields
    rows = [json.loads(line) for line in vsj.ok("volume", "ls", "--format", "json").out.split()]
    row = next(r for r in rows if r["Name"] == "data2")
    assert row == {"Availability": "N/A", "Driver": "local", "Group": "N/A",
                   "Labels": "team=a,flag=", "Links": "N/A", "Mountpoint": d2["Mountpoint"],
                   "Name": "data2", "Scope": "local", "Size": "N/A", "Status": "N/A"}  # fmt: skip
    # Go templates, as docker's --format
    out = vsj.ok("volume", "ls", "--format", "{{.Name}}:{{.Driver}}:{{.Labels}}").out
    assert "data2:local:team=a,flag=\n" in out
    out = vsj.ok("volume", "ls", "--format", "table {{.Name}}\t{{.Scope}}").out.splitlines()
    assert out[0].split() == ["VOLUME", "NAME", "SCOPE"] and len(out) == 4
    assert vsj.ok("volume", "inspect", "-f", "{{.Mountpoint}}", "data2").out == (
        d2["Mountpoint"] + "\n"
    )
    got = vsj.ok("volume", "inspect", "-f", "{{json .Labels}}", "data2").out
    assert json.loads(got) == {"flag": "", "team": "a"}
    with open(os.path.join(d2["Mountpoint"], "f"), "w") as f:
        f.write("x")
    assert vsj.ok("volume", "rm", "data1", "data2").out == "data1\ndata2\n"
    assert not os.path.exists(os.path.join(vsj.root, "volumes", "data2"))
    assert vsj.ok("volume", "ls", "-q").out.split() == [anon]


def test_bad_input(vsj):
    r = vsj.fail("volume", "create", "my/vol")
    assert "includes invalid characters for a local volume name" in r.err
    assert "use absolute path" in r.err
    r = vsj.fail("volume", "create", "a")
    assert "at least two alphanumeric characters" in r.err
    r = vsj.fail("volume", "create", "-o", "size=10m", "vv")
    assert 'invalid option: "size"' in r.err
    r = vsj.fail("volume", "create", "-o", "bogus=1", "vv")
    assert 'invalid option: "bogus"' in r.err
    r = vsj.fail("volume", "create", "-o", "type=tmpfs", "vv")
    assert 'missing required option: "device"' in r.err
    r = vsj.fail("volume", "create", "-d", "nfsplugin", "vv")
    assert "not supported" in r.err
    r = vsj.fail("volume", "inspect", "nosuch")
    assert "no such volume" in r.err
    r = vsj.fail("volume", "rm", "nosuch")
    assert "get nosuch: no such volume" in r.err
    assert vsj.ok("volume", "rm", "-f", "nosuch").out == "nosuch\n"
    r = vsj.fail("volume", "ls", "-f", "bogus=1")
    assert "invalid filter 'bogus'" in r.err
    r = vsj.fail("volume", "ls", "-f", "dangling=maybe")
    assert "invalid filter 'dangling=maybe'" in r.err
    r = vsj.fail("volume", "ls", "--format", "{{.Name}} {{.Nope")
    assert "template parsing error" in r.err
    r = vsj.fail("volume", "ls", "--format", "{{.Nope}}")  # an unknown field, even with none
    assert "Nope" in r.err
    # nothing was made by any of it
    assert vsj.ok("volume", "ls", "-q").out == ""
    vols = os.path.join(vsj.root, "volumes")
    made = [n for n in os.listdir(vols) if n != ".lock"] if os.path.isdir(vols) else []
    assert made == []


def test_filters(vsj):
    vsj.ok("volume", "create", "--label", "tier=web", "web1")
    vsj.ok("volume", "create", "--label", "tier=db", "db1")
    vsj.ok("volume", "create", "other")
    v = _engine(vsj)
    v.add_ref("db1", "c" * 64)  # a container uses it: not dangling
    q = lambda *f: vsj.ok("volume", "ls", "-q", *[x for k in f for x in ("-f", k)]).out.split()  # noqa: E731
    assert q("label=tier") == ["db1", "web1"]
    assert q("label=tier=web") == ["web1"]
    assert q("name=1") == ["db1", "web1"]
    assert q("name=^o") == ["other"]
    assert q("dangling=true") == ["other", "web1"]
    assert q("dangling=false") == ["db1"]
    assert q("driver=local", "label=tier=db") == ["db1"]
    assert q("name=web", "name=db") == ["db1", "web1"]  # values of one key: either
    v.release("c" * 64)


def test_in_use_cannot_be_removed_even_with_force(vsj):
    vsj.ok("volume", "create", "busy")
    v = _engine(vsj)
    cid = "ab" * 32
    v.add_ref("busy", cid)
    for args in (("volume", "rm", "busy"), ("volume", "rm", "-f", "busy")):
        r = vsj.fail(*args)
        assert f"remove busy: volume is in use - [{cid}]" in r.err
    vsj.ok("volume", "prune", "-f", "-a")
    assert vsj.ok("volume", "ls", "-q").out.split() == ["busy"]
    assert v.release(cid) == ["busy"]
    vsj.ok("volume", "rm", "busy")


def test_prune_removes_only_unused_anonymous_unless_all(vsj):
    vsj.ok("volume", "create", "named")
    vsj.ok("volume", "create", "--label", "keep=yes", "named-kept")
    a1 = vsj.ok("volume", "create").out.strip()
    a2 = vsj.ok("volume", "create").out.strip()
    vsj.ok("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "withopts")
    v = _engine(vsj)
    v.add_ref(a2, "cd" * 32)
    with open(os.path.join(vsj.root, "volumes", a1, "_data", "blob"), "wb") as f:
        f.write(b"z" * 5000)
    # without -f: asks, and "no" keeps everything
    r = vsj.ok("volume", "prune", input="n\n")
    assert "WARNING! This will remove anonymous local volumes not used by at least one" in r.out
    assert len(vsj.ok("volume", "ls", "-q").out.split()) == 5
    r = vsj.ok("volume", "prune", input="y\n")
    assert r.out.endswith(f"Deleted Volumes:\n{a1}\n\nTotal reclaimed space: 9.096kB\n")
    left = vsj.ok("volume", "ls", "-q").out.split()
    assert sorted(left) == sorted([a2, "named", "named-kept", "withopts"])
    # --all: every unused one without mount options, label filters obeyed
    r = vsj.ok("volume", "prune", "-f", "-a", "--filter", "label!=keep")
    assert "named\n" in r.out and "named-kept" not in r.out
    assert sorted(vsj.ok("volume", "ls", "-q").out.split()) == sorted(
        [a2, "named-kept", "withopts"]
    )
    v.release("cd" * 32)
    vsj.ok("volume", "rm", a2, "named-kept", "withopts")


def test_a_killed_rm_is_finished_by_the_next_command(vsj):
    """rm deletes the row, then the directory: a directory no row names is removed by the
    next create/rm/prune (the row is the truth)."""
    vsj.ok("volume", "create", "half")
    v = _engine(vsj)
    with v.store.transaction() as db:  # what a rm killed after its commit leaves
        db.execute("DELETE FROM volumes WHERE name='half'")
    assert os.path.isdir(os.path.join(vsj.root, "volumes", "half"))
    vsj.ok("volume", "create", "next")
    assert not os.path.exists(os.path.join(vsj.root, "volumes", "half"))
    # and a row whose directory is gone gets it back when it is used
    import shutil

    shutil.rmtree(os.path.join(vsj.root, "volumes", "next"))
    assert v.mount("next", "h" * 64) == os.path.join(vsj.root, "volumes", "next", "_data")
    assert os.path.isdir(os.path.join(vsj.root, "volumes", "next", "_data"))


# ---- volumes with mount options: real mounts -------------------------------------------------


def test_tmpfs_volume_is_mounted_by_its_first_holder_and_unmounted_by_its_last(vsj):
    vsj.ok("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs",
           "-o", "o=size=3m,uid=1000,mode=0750", "tv")  # fmt: skip
    info = json.loads(vsj.ok("volume", "inspect", "tv").out)[0]
    opts = {"type": "tmpfs", "device": "tmpfs", "o": "size=3m,uid=1000,mode=0750"}
    assert info["Options"] == opts
    v = _engine(vsj)
    data = info["Mountpoint"]
    assert _mounted(data) is None  # nothing until a container uses it
    assert v.mount("tv", "c1") == data
    fstype, opts = _mounted(data)
    assert fstype == "tmpfs" and "size=3072k" in opts and "uid=1000" in opts
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o750
    with open(os.path.join(data, "shared"), "w") as f:
        f.write("seen by both holders")
    v.mount("tv", "c2")
    v.unmount("tv", "c1")
    assert _mounted(data) is not None  # c2 still holds it
    assert open(os.path.join(data, "shared")).read() == "seen by both holders"
    v.unmount("tv", "c2")
    assert _mounted(data) is None
    # a holder that died without unmounting is dropped by the next one (live callback)
    v.mount("tv", "dead")
    v.mount("tv", "c3", live=lambda h: h != "dead")
    v.unmount("tv", "c3", live=lambda h: h != "dead")
    assert _mounted(data) is None
    vsj.ok("volume", "rm", "tv")


def test_bind_volume_never_empties_its_device(vsj, tmp_path):
    host = tmp_path / "hostdata"
    host.mkdir()
    (host / "precious").write_text("keep me")
    vsj.ok("volume", "create", "-o", "type=none", "-o", f"device={host}", "-o", "o=bind,ro", "bv")
    v = _engine(vsj)
    data = v.mount("bv", "c1")
    assert open(os.path.join(data, "precious")).read() == "keep me"
    with pytest.raises(OSError):
        open(os.path.join(data, "new"), "w")  # o=ro: a read-only bind
    # rm while it is still mounted (a holder that never unmounted): unmounted first, and
    # the host directory is untouched
    vsj.ok("volume", "rm", "bv")
    assert _mounted(data) is None
    assert (host / "precious").read_text() == "keep me"


def test_mount_failure_names_the_problem_and_leaves_no_holder(vsj):
    vsj.ok("volume", "create", "-o", "type=ext4", "-o", "device=/dev/nonexistent-disk", "bad")
    v = _engine(vsj)
    from sangja.errors import SangjaError

    with pytest.raises(SangjaError) as e:
        v.mount("bad", "c1")
    assert "failed to mount local volume" in str(e.value)
    assert v.db.execute("SELECT * FROM volume_mounts").fetchall() == []
    vsj.ok("volume", "rm", "bad")


def test_password_in_options_is_hidden_in_errors(vsj):
    vsj.ok("volume", "create", "-o", "type=cifs", "-o", "device=//127.0.0.1/share",
           "-o", "o=username=u,password=s3cret", "cifsvol")  # fmt: skip
    v = _engine(vsj)
    from sangja.errors import SangjaError

    with pytest.raises(SangjaError) as e:
        v.mount("cifsvol", "c1")
    assert "s3cret" not in str(e.value)
    vsj.ok("volume", "rm", "cifsvol")


# ---- copy-up -----------------------------------------------------------------------------------


def _tree(root):
    """Everything a copy must keep, per path: type, mode, owner, size, data, link target,
    mtime, xattrs, and which paths share an inode."""
    out, inodes = {}, {}
    for dirpath, dirs, files in os.walk(root):
        for n in sorted(dirs + files):
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            e = {"mode": st.st_mode, "uid": st.st_uid, "gid": st.st_gid,
                 "mtime": st.st_mtime_ns}  # fmt: skip
            if stat.S_ISREG(st.st_mode):
                e["data"] = open(p, "rb").read()
                inodes.setdefault(st.st_ino, []).append(rel)
            elif stat.S_ISLNK(st.st_mode):
                e["target"] = os.readlink(p)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                e["rdev"] = st.st_rdev
            if not stat.S_ISLNK(st.st_mode):
                e["xattrs"] = {k: os.getxattr(p, k) for k in os.listxattr(p)}
            out[rel] = e
    links = sorted(sorted(v) for v in inodes.values() if len(v) > 1)
    return out, links


def _image_dir(base):
    """A directory as an image may have one, with everything a copy can get wrong."""
    d = os.path.join(base, "srv", "app")
    os.makedirs(os.path.join(d, "sub", "deeper"))
    with open(os.path.join(d, "conf"), "w") as f:
        f.write("setting=1\n")
    os.chown(os.path.join(d, "conf"), 1000, 1001)
    os.chmod(os.path.join(d, "conf"), 0o640)
    with open(os.path.join(d, "sub", "suid"), "wb") as f:
        f.write(b"\x7fELF" + bytes(range(256)) * 40)
    os.chown(os.path.join(d, "sub", "suid"), 0, 0)
    os.chmod(os.path.join(d, "sub", "suid"), 0o4755)
    os.link(os.path.join(d, "conf"), os.path.join(d, "sub", "conf-hardlink"))
    os.symlink("/etc/passwd", os.path.join(d, "abs-link"))  # copied as a link, not followed
    os.symlink("../conf", os.path.join(d, "sub", "rel-link"))
    os.mkfifo(os.path.join(d, "fifo"))
    os.mknod(os.path.join(d, "null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.setxattr(os.path.join(d, "conf"), "user.origin", b"image")
    os.setxattr(os.path.join(d, "conf"), "trusted.note", b"t")
    os.setxattr(os.path.join(d, "sub"), "user.dir", b"d")
    # a file capability: set after chown (chown clears it), kept by the copy
    subprocess.run(["setcap", "cap_net_bind_service+ep", os.path.join(d, "sub", "suid")],
                   check=True, capture_output=True)  # fmt: skip
    assert "security.capability" in os.listxattr(os.path.join(d, "sub", "suid"))
    os.chown(os.path.join(d, "sub", "deeper"), 33, 33)
    os.chmod(os.path.join(d, "sub", "deeper"), 0o700)
    os.utime(os.path.join(d, "sub", "deeper"), ns=(1_000_000_000, 1_500_000_000_123))
    os.chown(d, 1000, 1000)
    os.chmod(d, 0o751)
    return d


def test_copy_up_keeps_owners_modes_times_xattrs_and_links(vsj, tmp_path):
    rootfs = str(tmp_path / "rootfs")
    src = _image_dir(rootfs)
    vsj.ok("volume", "create", "appdata")
    v = _engine(vsj)
    data = v.mount("appdata", "c1")
    assert v.copy_up("appdata", rootfs, "/srv/app")
    want, want_links = _tree(src)
    got, got_links = _tree(data)
    assert got == want
    assert got_links == want_links == [["conf", "sub/conf-hardlink"]]
    st, dst = os.stat(src), os.stat(data)
    assert (dst.st_uid, dst.st_gid, stat.S_IMODE(dst.st_mode)) == (1000, 1000, 0o751)
    assert st.st_mode == dst.st_mode
    # a second copy-up never touches a volume that holds anything
    os.unlink(os.path.join(data, "conf"))
    assert not v.copy_up("appdata", rootfs, "/srv/app")
    assert not os.path.exists(os.path.join(data, "conf"))


def test_copy_up_resolves_the_path_inside_the_root(vsj, tmp_path, canary):
    """A symlink where the volume goes is followed inside the image's root, never to the
    host: the copy takes the image's directory, not the host's."""
    rootfs = tmp_path / "rootfs"
    (rootfs / "inside").mkdir(parents=True)
    (rootfs / "inside" / "mine").write_text("from the image")
    os.symlink(canary, rootfs / "escape")  # absolute: inside the root it names <root>/tmp/…
    os.symlink("../../inside", rootfs / "rel")
    vsj.ok("volume", "create", "v1")
    vsj.ok("volume", "create", "v2")
    v = _engine(vsj)
    d1, d2 = v.mount("v1", "c"), v.mount("v2", "c")
    assert not v.copy_up("v1", str(rootfs), "/escape")  # no such dir inside the root
    assert os.listdir(d1) == []
    assert v.copy_up("v2", str(rootfs), "/rel")
    assert os.listdir(d2) == ["mine"]
    # nothing at the path, or not a directory: nothing to copy
    assert not v.copy_up("v1", str(rootfs), "/nothing/here")
    assert not v.copy_up("v1", str(rootfs), "/inside/mine")


def test_volume_events(vsj):
    vsj.ok("volume", "create", "ev1")
    anon = vsj.ok("volume", "create").out.strip()
    vsj.ok("volume", "rm", "ev1")
    vsj.ok("volume", "prune", "-f")
    out = vsj.ok("system", "events", "--since", "0", "--until", "0s", "--format", "json").out
    evs = [json.loads(line) for line in out.splitlines()]
    got = [(e["Type"], e["Action"], e["Actor"]["ID"]) for e in evs]
    assert got == [("volume", "create", "ev1"), ("volume", "create", anon),
                   ("volume", "destroy", "ev1"), ("volume", "destroy", anon),
                   ("volume", "prune", "")]  # fmt: skip
    assert evs[0]["Actor"]["Attributes"] == {"driver": "local"}
    assert evs[-1]["Actor"]["Attributes"]["reclaimed"] == "4096"
