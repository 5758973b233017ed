"""Storage drivers (image/snapshot.py): the vfs driver's copied root is what the overlay
driver's mount shows (the fixtures' debian image has whiteouts, opaque directories and
type changes in its second layer); the host decides between them (overlay where an overlay
can be mounted, vfs with a warning where it cannot, e.g. on an overlay), and the config
file or --storage-driver chooses."""

import os
import stat
import subprocess

import pytest
from registrykit import PLAIN, Sangja

DEBIAN = f"{PLAIN}/test/debian:bookworm"
BUSYBOX = f"{PLAIN}/test/busybox"


def _tree(root):
    """path -> what both drivers must agree on (type, mode, owner, size, data hash, link
    target, xattrs, mtime for non-directories)."""
    import hashlib

    out = {}
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            e = [st.st_mode, st.st_uid, st.st_gid]
            if stat.S_ISREG(st.st_mode):
                e += [st.st_size, hashlib.sha256(open(p, "rb").read()).hexdigest(),
                      st.st_mtime_ns]  # fmt: skip
            elif stat.S_ISLNK(st.st_mode):
                e.append(os.readlink(p))
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                e.append(st.st_rdev)
            if not stat.S_ISLNK(st.st_mode):
                e.append(sorted((k, os.getxattr(p, k)) for k in os.listxattr(p)))
            out[os.path.relpath(p, root)] = e
    return out


def _lowers(store, ref):
    image = store.resolve(ref)
    return [store.layer_path(ly.chain_id) for ly in reversed(store.layers_of(image))]


def test_vfs_root_is_what_the_overlay_shows(sj, fixtures, tmp_path):
    from sangja.image.snapshot import Overlay, Vfs
    from sangja.image.store import Store

    fixtures.registry("plain")
    sj.ok("image", "pull", "-q", DEBIAN)
    store = Store(sj.root)
    lowers = _lowers(store, DEBIAN)
    assert len(lowers) == 3
    ov, vf = str(tmp_path / "ov"), str(tmp_path / "vf")
    Overlay().create(lowers, ov)
    Vfs().create(lowers, vf)
    assert not os.path.exists(os.path.join(vf, "rootfs.tmp"))
    rootfs = Overlay().mount(lowers, ov)
    try:
        want, got = _tree(rootfs), _tree(os.path.join(vf, "rootfs"))
    finally:
        Overlay().unmount(ov)
    assert set(got) == set(want), (sorted(set(got) - set(want))[:10],
                                   sorted(set(want) - set(got))[:10])  # fmt: skip
    diff = [p for p in want if want[p] != got[p]]
    assert not diff, [(p, want[p], got[p]) for p in diff[:5]]
    # what layer 2 deleted and replaced, checked by name too
    r = os.path.join(vf, "rootfs")
    assert not os.path.exists(f"{r}/etc/motd") and not os.path.exists(f"{r}/usr/share/doc")
    assert os.listdir(f"{r}/etc/apt/apt.conf.d") == ["99fixture"]
    assert os.path.isdir(f"{r}/etc/host.conf")  # a file below became a directory
    # no overlay internals in the copy
    for p in got:
        full = os.path.join(r, p)
        if not os.path.islink(full):
            assert not [k for k in os.listxattr(full) if k.startswith("trusted.overlay.")], p
    # the copy is the container's own: removing the image's layers leaves it whole
    assert Vfs().changes(vf) == r


def test_vfs_layers_apply_as_overlay_stacks_them(tmp_path):
    """Synthetic layers with every case: a whiteout of a file and of a tree, an opaque
    directory, a directory over a file and a file over a directory, a symlink over a
    directory; the vfs copy equals a real overlay mount of the same layers."""
    from sangja.image.snapshot import Overlay, Vfs

    lo, mid, top = (tmp_path / n for n in ("l1", "l2", "l3"))
    for d in (lo, mid, top):
        d.mkdir()
    (lo / "keep").write_text("keep")
    (lo / "gone").write_text("gone")
    (lo / "tree" / "sub").mkdir(parents=True)
    (lo / "tree" / "sub" / "f").write_text("f")
    (lo / "opq").mkdir()
    (lo / "opq" / "old").write_text("old")
    (lo / "was-file").write_text("file")
    (lo / "was-dir").mkdir()
    (lo / "was-dir" / "x").write_text("x")
    (lo / "linkme").mkdir()
    os.mknod(mid / "gone", stat.S_IFCHR | 0o600, 0)  # whiteouts, overlay's form
    os.mknod(mid / "tree", stat.S_IFCHR | 0o600, 0)
    (mid / "opq").mkdir()
    os.setxattr(mid / "opq", "trusted.overlay.opaque", b"y")
    (mid / "opq" / "new").write_text("new")
    (mid / "was-file").mkdir()
    (mid / "was-file" / "inside").write_text("in")
    (mid / "was-dir").write_text("now a file")
    os.symlink("keep", mid / "linkme")
    (top / "tree").mkdir()  # a directory again where a whiteout was: a fresh one
    (top / "tree" / "again").write_text("again")
    os.setxattr(top / "tree", "trusted.overlay.opaque", b"y")
    lowers = [str(top), str(mid), str(lo)]
    ov, vf = str(tmp_path / "ov"), str(tmp_path / "vf")
    Vfs().create(lowers, vf)
    Overlay().create(lowers, ov)
    rootfs = Overlay().mount(lowers, ov)
    try:
        want = _tree(rootfs)
    finally:
        Overlay().unmount(ov)
    got = _tree(os.path.join(vf, "rootfs"))
    assert got == want
    assert sorted(got) == sorted(["keep", "opq", "opq/new", "was-file", "was-file/inside",
                                  "was-dir", "linkme", "tree", "tree/again"])  # fmt: skip


def _nested_overlay(tmp_path):
    """An overlay mounted under tmp_path: an engine root on it cannot use overlay (an
    overlay's upper dir cannot be on an overlay)."""
    base = tmp_path / "outer"
    for d in ("lower", "upper", "work", "merged"):
        (base / d).mkdir(parents=True)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={base}/lower,upperdir={base}/upper,workdir={base}/work",
                    str(base / "merged")], check=True)  # fmt: skip
    return base / "merged"


@pytest.fixture(autouse=True)
def _no_config(monkeypatch, tmp_path):
    """In-process calls read no config file of the host's."""
    monkeypatch.setenv("SANGJA_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.delenv("SANGJA_STORAGE_DRIVER", raising=False)


def test_overlay_on_overlay_falls_back_to_vfs_with_a_warning(tmp_path, monkeypatch):
    from sangja.errors import SangjaError
    from sangja.image import snapshot

    merged = _nested_overlay(tmp_path)
    try:
        root = str(merged / "root")
        drv, warn = snapshot.driver(root)
        assert drv.name == "vfs"
        assert "overlay cannot be mounted on" in warn and "vfs storage driver" in warn
        assert not [n for n in os.listdir(root) if n.startswith(".overlay-probe")]
        monkeypatch.setenv("SANGJA_STORAGE_DRIVER", "overlay")
        with pytest.raises(SangjaError) as e:
            snapshot.driver(root)
        assert "storage driver overlay cannot be used on" in str(e.value)
        monkeypatch.delenv("SANGJA_STORAGE_DRIVER")
        assert snapshot.backing_filesystem(root) == "overlayfs"
        # the CLI says which driver runs and why
        s = Sangja(tmp_path / "cli")
        s.env["SANGJA_ROOT"] = root
        r = s.ok("info")
        assert "Storage Driver: vfs\n" in r.out and " Backing Filesystem: overlayfs\n" in r.out
        assert "WARNING: overlay cannot be mounted on" in r.err
        r = s.ok("--storage-driver", "overlay", "info")
        assert "WARNING: storage driver overlay cannot be used on" in r.err
        r = s.ok("--storage-driver", "vfs", "info")
        assert "Storage Driver: vfs\n" in r.out and "WARNING" not in r.err
    finally:
        subprocess.run(["umount", str(merged)], check=True)


def test_on_a_plain_file_system_overlay_is_the_default(tmp_path):
    from sangja.image import snapshot

    drv, warn = snapshot.driver(str(tmp_path / "root"))
    assert (drv.name, warn) == ("overlay", None)
    s = Sangja(tmp_path)
    assert "Storage Driver: overlay\n" in s.ok("info").out


def test_a_working_overlay_is_remembered_for_its_device_and_boot(tmp_path):
    """The probe (a mount and an unmount) is paid once per file system and boot, not by
    every command; a failure is not remembered; a record for another device or boot is
    probed again and replaced."""
    from sangja.image import snapshot

    root = str(tmp_path / "root")
    snapshot._probed.clear()
    assert snapshot.driver(root)[0].name == "overlay"
    rec = os.path.join(root, snapshot.PROBE_FILE)
    key = open(rec).read().strip()
    dev, boot = key.split()
    assert int(dev) == os.stat(root).st_dev
    assert boot == open("/proc/sys/kernel/random/boot_id").read().strip()
    assert sorted(os.listdir(root)) == [snapshot.PROBE_FILE]  # the probe is gone
    # a stale record (another device): probed again, for real, and rewritten
    with open(rec, "w") as f:
        f.write(f"{int(dev) + 1} {boot}\n")
    snapshot._probed.clear()
    assert snapshot.overlay_unsupported(root) is None
    assert open(rec).read().strip() == key
    # on an overlay the probe fails, and that is not written down; a record that matches
    # the device and boot is believed without mounting (what spares each command the probe)
    merged = _nested_overlay(tmp_path)
    try:
        nroot = str(merged / "root")
        snapshot._probed.clear()
        assert snapshot.overlay_unsupported(nroot) is not None
        assert not os.path.exists(os.path.join(nroot, snapshot.PROBE_FILE))
        with open(os.path.join(nroot, snapshot.PROBE_FILE), "w") as f:
            f.write(snapshot._probe_key(nroot) + "\n")
        snapshot._probed.clear()
        assert snapshot.overlay_unsupported(nroot) is None
    finally:
        snapshot._probed.clear()
        subprocess.run(["umount", str(merged)], check=True)
