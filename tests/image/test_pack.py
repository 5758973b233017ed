"""The layer writer (csrc/pack/) through sangja.image.pack.write_layer.

Real trees made here (owners, devices, xattrs: run as root), written as layers and read
back by our extractor, GNU tar, bsdtar and Python's tarfile, and compared entry by entry
with the tree they came from; a real overlayfs upper dir written as a layer and applied on
its lower dir gives the merged view back.
"""

import errno
import hashlib
import io
import os
import shutil
import socket
import stat
import subprocess
import tarfile
import time

import pytest
from layertools import (
    BSDTAR,
    GNU_TAR,
    HAVE_ZSTD,
    OPAQUE,
    compare_with_gnu_tar,
    decompress_file,
    diff,
    snapshot,
)

from sangja.errors import PackError
from sangja.image.pack import source_date_epoch, write_layer
from sangja.image.unpack import unpack_layer

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: owners, devices, xattrs")

COMPRESSIONS = [
    "gzip",
    pytest.param(
        "zstd", marks=pytest.mark.skipif(not HAVE_ZSTD, reason="no zstd CLI (Debian package zstd)")
    ),
    "none",
]
CAP_NET_BIND = bytes.fromhex("0100000200040000000000000000000000000000")
T0 = 1600000000


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def touch(path, mtime=T0):
    os.utime(path, (mtime, mtime), follow_symlinks=False)


def kitchen_sink(root):
    """Every kind of entry a layer carries, with the metadata that must survive."""
    j = lambda *p: os.path.join(root, *p)  # noqa: E731
    os.makedirs(j("etc/deep/er"))
    with open(j("etc/hello"), "w") as f:
        f.write("hello\n")
    open(j("etc/empty"), "w").close()
    with open(j("etc/random"), "wb") as f:
        f.write(os.urandom(3 << 20))  # several chunks of the stream
    os.makedirs(j("bin"))
    with open(j("bin/tool"), "wb") as f:
        f.write(b"\x7fELF tool")
    os.chmod(j("bin/tool"), 0o4755)
    with open(j("bin/sgid"), "wb") as f:
        f.write(b"g")
    os.chmod(j("bin/sgid"), 0o2711)
    os.makedirs(j("tmp"))
    os.chmod(j("tmp"), 0o1777)
    os.makedirs(j("ro/sub"))
    with open(j("ro/sub/f"), "w") as f:
        f.write("r")
    os.chmod(j("ro/sub/f"), 0o000)
    # owners: small, large (PAX uid/gid records above 2097151)
    with open(j("etc/owned"), "w") as f:
        f.write("o")
    os.chown(j("etc/owned"), 1000, 1001)
    with open(j("etc/big-ids"), "w") as f:
        f.write("b")
    os.chown(j("etc/big-ids"), 3000000, 4000000)
    os.chown(j("etc/deep"), 33, 33)
    # symlinks: relative, absolute, escaping, long target (PAX linkpath)
    os.symlink("hello", j("etc/rel"))
    os.symlink("/etc/shadow", j("etc/abs"))
    os.symlink("../../../../../../etc/passwd", j("etc/escape"))
    os.symlink("t" * 300, j("etc/long-target"))
    os.symlink("/", j("rootlink"))
    # hardlinks: across directories, to a setuid file, and a hardlinked symlink and fifo
    os.link(j("etc/hello"), j("bin/hello-link"))
    os.link(j("etc/hello"), j("etc/deep/er/hello-link2"))
    os.link(j("bin/tool"), j("etc/tool-link"))
    os.link(j("etc/rel"), j("etc/rel-link"), follow_symlinks=False)
    # special files
    os.makedirs(j("dev"))
    os.mknod(j("dev/null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(j("dev/loop7"), 0o660 | stat.S_IFBLK, os.makedev(7, 0))
    os.mknod(j("dev/big"), 0o600 | stat.S_IFCHR, os.makedev(4000, 1000000))
    os.mkfifo(j("dev/fifo"), 0o644)
    os.link(j("dev/fifo"), j("dev/fifo-link"))
    # long names: a 150-byte component (PAX path), a deep path over 255 bytes (PAX), one
    # that fits ustar's prefix + name
    os.makedirs(j("long", "d" * 100, "e" * 100))
    for name in ("n" * 150, "d" * 100 + "/" + "e" * 100 + "/" + "f" * 90, "d" * 100 + "/x.txt"):
        with open(j("long", name), "w") as f:
            f.write(name[:10])
    # names tar must not mangle
    for name in (b"sp ace", b"new\nline", b"\xff\xfe-not-utf8", b"tab\there", b"back\\slash"):
        with open(os.path.join(os.fsencode(root), b"etc/" + name), "wb") as f:
            f.write(name)
    # xattrs: user (text, binary, big, many), security.capability, trusted on a dir, a
    # symlink, a device and a fifo (through /proc: they cannot be opened)
    os.setxattr(j("etc/hello"), "user.comment", b"hello world")
    os.setxattr(j("etc/hello"), "user.binary", b"\x00\n\xff=x")
    os.setxattr(j("etc/random"), "user.big", b"v" * 3000)  # ext4: one block for all
    for i in range(40):  # their names: over the first buffer the walk has
        os.setxattr(j("etc/empty"), f"user.many-{i:03d}-" + "x" * 20, str(i).encode())
    os.setxattr(j("bin/tool"), "security.capability", CAP_NET_BIND)
    os.setxattr(j("etc/deep"), "trusted.dir", b"d")
    os.setxattr(j("etc/rel"), "trusted.on-symlink", b"s", follow_symlinks=False)
    os.setxattr(j("dev/null"), "trusted.on-device", b"c", follow_symlinks=False)
    os.setxattr(j("dev/fifo"), "trusted.on-fifo", b"f", follow_symlinks=False)
    # times: 0, negative (PAX), after 2242 (PAX: over 11 octal digits), and the rest T0
    for dirpath, dirs, files in os.walk(root, topdown=False):
        for n in dirs + files:
            touch(os.path.join(dirpath, n))
    for name, t in (("etc/hello", 0), ("etc/owned", -1000), ("etc/big-ids", 9000000000)):
        touch(j(name), t)
    touch(j("etc"), T0 + 5)


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "tree"
    root.mkdir()
    kitchen_sink(str(root))
    return str(root)


def write(tmp_path, root, comp="gzip", name="layer", **kw):
    out = tmp_path / f"{name}.{comp}"
    layer = write_layer(root, str(out), compression=comp, **kw)
    return layer, str(out)


def members(blob, comp):
    with tarfile.open(fileobj=io.BytesIO(decompress_file(blob, comp)), mode="r:") as t:
        return t.getmembers()


def source_snapshot(root):
    snap = snapshot(root)
    snap.pop(".")  # the tree's own directory is not an entry of the layer
    return snap


# ---- round trips ---------------------------------------------------------------------


@pytest.mark.parametrize("comp", COMPRESSIONS)
def test_round_trip_through_our_extractor(tmp_path, tree, comp):
    layer, blob = write(tmp_path, tree, comp)
    data = open(blob, "rb").read()
    assert layer.digest == sha(data) and layer.size == len(data)
    tar = decompress_file(blob, comp)
    assert layer.diff_id == sha(tar) and layer.tar_size == len(tar)
    assert layer.media_type.endswith({"gzip": "+gzip", "zstd": "+zstd", "none": ".tar"}[comp])
    # the extractor checks both digests against what it reads
    res = unpack_layer(blob, str(tmp_path / "layers"), "x", layer.digest, layer.diff_id,
                       sync=False)  # fmt: skip
    got = source_snapshot(res.path)
    want = source_snapshot(tree)
    assert got == want, diff(got, want)
    assert layer.stats["hardlinks"] == 5 and layer.stats["whiteouts"] == 0


def test_round_trip_through_gnu_tar(tmp_path, tree):
    layer, blob = write(tmp_path, tree, "gzip")
    dest = tmp_path / "gnu"
    dest.mkdir()
    since = time.time_ns()
    subprocess.run([GNU_TAR, "--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpzf", blob,
                    "-C", str(dest)], check=True, capture_output=True)  # fmt: skip
    want, got = compare_with_gnu_tar(tree, str(dest), since, ignore={"."})
    want.pop(".")
    got.pop(".")
    assert got == want, diff(got, want)


@pytest.mark.skipif(BSDTAR is None, reason="no bsdtar (Debian package libarchive-tools)")
def test_round_trip_through_bsdtar(tmp_path, tree):
    layer, blob = write(tmp_path, tree, "gzip")
    dest = tmp_path / "bsd"
    dest.mkdir()
    subprocess.run([BSDTAR, "-xpf", blob, "--numeric-owner", "-C", str(dest)], check=True,
                   capture_output=True)  # fmt: skip
    got, want = source_snapshot(str(dest)), source_snapshot(tree)
    # bsdtar 3.6 restores xattrs on regular files and directories only
    for snap in (got, want):
        for k in ("etc/rel", "etc/rel-link", "dev/null", "dev/fifo", "dev/fifo-link"):
            snap[k]["xattrs"] = {}
    assert got == want, diff(got, want)


def test_tar_form(tmp_path, tree):
    """What Python's tarfile (a third reader) sees: PAX where ustar falls short, sorted
    names, hardlinks as links, no atime/ctime, no user names."""
    layer, blob = write(tmp_path, tree, "none")
    ms = members(blob, "none")
    by = {m.name: m for m in ms}
    names = [m.name for m in ms]
    assert "." not in names and "./" not in names and not any(n.startswith("./") for n in names)
    # a directory comes before its contents, and names are sorted within each directory
    assert names.index("etc") < names.index("etc/hello") < names.index("etc/owned")
    assert names.index("bin") < names.index("dev") < names.index("etc")
    for m in ms:
        assert "atime" not in m.pax_headers and "ctime" not in m.pax_headers
        assert m.uname == "" and m.gname == ""
    n150 = "long/" + "n" * 150
    assert by[n150].pax_headers["path"] == n150
    deep = "long/" + "d" * 100 + "/" + "e" * 100 + "/" + "f" * 90
    assert by[deep].pax_headers["path"] == deep
    ustar = "long/" + "d" * 100 + "/x.txt"  # prefix + name, no PAX record
    assert ustar in by and "path" not in by[ustar].pax_headers
    assert by["etc/long-target"].linkname == "t" * 300
    assert by["etc/big-ids"].pax_headers["uid"] == "3000000"
    assert (by["etc/big-ids"].uid, by["etc/big-ids"].gid) == (3000000, 4000000)
    assert by["etc/owned"].pax_headers["mtime"] == "-1000"
    assert by["etc/big-ids"].pax_headers["mtime"] == "9000000000"
    assert by["etc/hello"].mtime == 0
    # hardlinks: the first path in the walk carries the content, the others link to it
    assert by["bin/hello-link"].isreg() and by["bin/hello-link"].size == 6
    assert by["etc/hello"].islnk() and by["etc/hello"].linkname == "bin/hello-link"
    assert by["etc/deep/er/hello-link2"].linkname == "bin/hello-link"
    assert by["etc/tool-link"].linkname == "bin/tool" and by["etc/tool-link"].mode == 0o4755
    assert by["etc/rel-link"].islnk() and by["etc/rel-link"].linkname == "etc/rel"
    assert by["dev/fifo-link"].islnk() and by["dev/fifo"].isfifo()
    assert by["dev/big"].ischr() and (by["dev/big"].devmajor, by["dev/big"].devminor) == (
        4000, 1000000)  # fmt: skip
    # xattrs as SCHILY.xattr records, byte for byte
    tool = by["bin/tool"].pax_headers
    assert tool["SCHILY.xattr.security.capability"].encode("utf-8", "surrogateescape") == (
        CAP_NET_BIND)  # fmt: skip
    assert "SCHILY.xattr.trusted.on-symlink" in by["etc/rel"].pax_headers
    assert "SCHILY.xattr.trusted.on-fifo" in by["dev/fifo"].pax_headers
    # the walk never went through a symlink: nothing of the host's /etc is in the layer
    assert not any(n.startswith(("rootlink/", "etc/abs/")) for n in names)
    assert by["rootlink"].issym() and by["rootlink"].linkname == "/"
    assert by["etc/escape"].linkname == "../../../../../../etc/passwd"
    # ends with two zero blocks, no more
    tar = decompress_file(blob, "none")
    assert tar.endswith(b"\0" * 1024) and len(tar) % 512 == 0
    assert layer.stats["entries"] == len(ms)


def test_gzip_and_zstd_streams(tmp_path, tree):
    """Each compression is a valid stream of its kind (the system's own tools read it);
    zlib is there as gzip's fallback, with its levels."""
    layer, blob = write(tmp_path, tree, "gzip")
    subprocess.run(["gzip", "-t", blob], check=True)
    zl, zblob = write(tmp_path, tree, "gzip", name="zlib", gzip="zlib", level=9)
    subprocess.run(["gzip", "-t", zblob], check=True)
    assert zl.diff_id == layer.diff_id and zl.digest != layer.digest
    if HAVE_ZSTD:
        zs, zsblob = write(tmp_path, tree, "zstd", level=19)
        subprocess.run(["zstd", "-t", "-q", zsblob], check=True)
        assert zs.diff_id == layer.diff_id


# ---- whiteouts and opaque directories --------------------------------------------------


def upper_like(root, opaque_xattr):
    """A tree as overlayfs leaves an upper dir: whiteouts (char 0:0, some sharing an inode
    as the kernel links them) and an opaque directory."""
    os.makedirs(os.path.join(root, "etc/apt.conf.d"))
    os.makedirs(os.path.join(root, "usr/share"))
    os.mknod(os.path.join(root, "etc/motd"), 0o000 | stat.S_IFCHR, os.makedev(0, 0))
    os.link(os.path.join(root, "etc/motd"), os.path.join(root, "etc/issue"))
    os.mknod(os.path.join(root, "usr/share/doc"), 0o000 | stat.S_IFCHR, os.makedev(0, 0))
    with open(os.path.join(root, "etc/apt.conf.d/99mine"), "w") as f:
        f.write("mine\n")
    with open(os.path.join(root, "etc/zzz"), "w") as f:
        f.write("z\n")
    os.setxattr(os.path.join(root, "etc/apt.conf.d"), opaque_xattr, b"y")
    os.setxattr(os.path.join(root, "etc"), opaque_xattr.replace("opaque", "origin"), b"x")


@pytest.mark.parametrize("opaque_xattr", [OPAQUE, "user.overlay.opaque"])
def test_whiteouts_and_opaques_become_oci_entries(tmp_path, opaque_xattr):
    root = tmp_path / "upper"
    root.mkdir()
    upper_like(str(root), opaque_xattr)
    layer, blob = write(tmp_path, str(root), "gzip")
    ms = members(blob, "gzip")
    names = [m.name for m in ms]
    # whiteouts come before their siblings; the opaque marker right after its directory
    assert names == ["etc", "etc/.wh.issue", "etc/.wh.motd", "etc/apt.conf.d",
                     "etc/apt.conf.d/.wh..wh..opq", "etc/apt.conf.d/99mine", "etc/zzz", "usr",
                     "usr/share", "usr/share/.wh.doc"]  # fmt: skip
    for m in ms:
        if os.path.basename(m.name).startswith(".wh."):
            assert m.isreg() and m.size == 0
        # overlayfs's own xattrs never reach a layer
        assert not [k for k in m.pax_headers if ".overlay." in k], m.pax_headers
    assert layer.stats["whiteouts"] == 3 and layer.stats["opaques"] == 1
    # and the extractor turns them back into what overlayfs reads
    res = unpack_layer(blob, str(tmp_path / "layers"), "x", layer.digest, layer.diff_id,
                       sync=False)  # fmt: skip
    for w in ("etc/motd", "etc/issue", "usr/share/doc"):
        st = os.lstat(os.path.join(res.path, w))
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(os.path.join(res.path, "etc/apt.conf.d"), OPAQUE) == b"y"
    # written again, the unpacked layer gives the same entries: the two are mirrors (the
    # whiteouts' times aside: the extractor makes them anew)
    _, blob2 = write(tmp_path, res.path, "gzip", name="again")
    assert [(m.name, m.type, m.mode) for m in members(blob2, "gzip")] == [
        (m.name, m.type, m.mode) for m in ms]  # fmt: skip


def test_overlay_redirect_is_refused(tmp_path):
    root = tmp_path / "upper"
    (root / "moved").mkdir(parents=True)
    os.setxattr(str(root / "moved"), "trusted.overlay.redirect", b"/orig")
    out = tmp_path / "out.tgz"
    with pytest.raises(PackError) as e:
        write_layer(str(root), str(out))
    assert e.value.errno == errno.ENOTSUP and e.value.path == "moved/"
    assert "redirect" in str(e.value)
    assert not out.exists()  # nothing half-made left behind


@pytest.fixture
def overlay(tmp_path):
    """mount(lower, upper) -> merged; unmounted at the end."""
    mounted, n = [], iter(range(100))

    def mount(lowers, upper=None, work=None):
        target = tmp_path / f"merged{next(n)}"
        target.mkdir()
        opts = "lowerdir=" + ":".join(lowers)
        opts += f",upperdir={upper},workdir={work},index=off" if upper else ""
        r = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(target)],
                           capture_output=True, text=True)  # fmt: skip
        if r.returncode:
            pytest.skip(f"cannot mount overlayfs here: {r.stderr.strip()}")
        mounted.append(str(target))
        return str(target)

    def umount(target):
        subprocess.run(["umount", target], check=True)
        mounted.remove(target)

    mount.umount = umount
    yield mount
    for t in reversed(mounted):
        subprocess.run(["umount", t], check=True)


def test_real_overlay_upper_dir(tmp_path, tree, overlay):
    """Changes made through a real overlayfs mount (deletions, a directory replaced, files
    changed, added, chmod-ed, hardlinked), its upper dir written as a layer, that layer
    unpacked on the lower one: the kernel merges them into the same tree."""
    upper, work = tmp_path / "upper", tmp_path / "work"
    upper.mkdir()
    work.mkdir()
    m = overlay([tree], str(upper), str(work))
    j = lambda *p: os.path.join(m, *p)  # noqa: E731
    os.unlink(j("etc/random"))
    shutil.rmtree(j("long"))
    shutil.rmtree(j("ro"))
    os.makedirs(j("ro"))  # replaced: opaque in the upper dir
    with open(j("ro/new"), "w") as f:
        f.write("new")
    with open(j("etc/hello"), "a") as f:
        f.write("more\n")
    os.chmod(j("bin/sgid"), 0o755)
    os.chown(j("etc/owned"), 7, 7)
    os.setxattr(j("etc/deep"), "user.added", b"1")
    os.link(j("ro/new"), j("etc/new-link"))
    os.unlink(j("dev/null"))
    merged = source_snapshot(m)
    for v in merged.values():  # a layer keeps whole seconds, as Docker's do
        v["mtime"] -= v["mtime"] % 1_000_000_000
    overlay.umount(m)

    layer, blob = write(tmp_path, str(upper), "gzip")
    assert layer.stats["whiteouts"] >= 3 and layer.stats["opaques"] == 1
    lower_layer, lower_blob = write(tmp_path, tree, "gzip", name="lower")
    layers = tmp_path / "layers"
    lo = unpack_layer(lower_blob, str(layers), "lower", sync=False)
    up = unpack_layer(blob, str(layers), "upper", layer.digest, layer.diff_id, parents=[lo.path],
                      sync=False)  # fmt: skip
    again = source_snapshot(overlay([up.path, lo.path]))
    assert again == merged, diff(again, merged)


# ---- reproducibility ----------------------------------------------------------------------


@pytest.mark.parametrize("comp", COMPRESSIONS)
def test_same_tree_same_digests(tmp_path, tree, comp):
    a, _ = write(tmp_path, tree, comp, name="a")
    b, _ = write(tmp_path, tree, comp, name="b")
    copy = str(tmp_path / "copy")
    subprocess.run(["cp", "-a", tree, copy], check=True)  # other inodes, same metadata
    c, _ = write(tmp_path, copy, comp, name="c")
    assert a.digest == b.digest == c.digest and a.diff_id == b.diff_id == c.diff_id
    # one bit of metadata changed: another layer
    os.chmod(os.path.join(copy, "etc/deep/er"), 0o700)
    d, _ = write(tmp_path, copy, comp, name="d")
    assert d.diff_id != a.diff_id


def test_source_date_epoch_clamps_mtimes(tmp_path):
    def make(name):
        root = tmp_path / name
        (root / "d").mkdir(parents=True)
        (root / "d" / "f").write_text("same")
        (root / "old").write_text("old")
        touch(str(root / "old"), 1000)
        return str(root)

    a = make("a")
    time.sleep(1.1)  # the second tree's mtimes are a second later
    b = make("b")
    assert write(tmp_path, a, name="la")[0].digest != write(tmp_path, b, name="lb")[0].digest
    epoch = 1700000000
    la, blob = write(tmp_path, a, name="ca", source_date_epoch=epoch)
    lb, _ = write(tmp_path, b, name="cb", source_date_epoch=epoch)
    assert la.digest == lb.digest
    mt = {m.name: m.mtime for m in members(blob, "gzip")}
    assert mt == {"d": epoch, "d/f": epoch, "old": 1000}  # earlier ones are kept
    assert source_date_epoch({"SOURCE_DATE_EPOCH": "1700000000"}) == epoch
    assert source_date_epoch({"SOURCE_DATE_EPOCH": ""}) is None
    with pytest.raises(PackError):
        source_date_epoch({"SOURCE_DATE_EPOCH": "yesterday"})


# ---- hostile and odd trees -------------------------------------------------------------


def test_sockets_are_skipped_and_fifos_never_opened(tmp_path):
    root = tmp_path / "t"
    root.mkdir()
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(root / "sock"))
    os.mkfifo(root / "fifo")  # opening it for reading would wait for a writer forever
    try:
        layer, blob = write(tmp_path, str(root), "none")
    finally:
        s.close()
    assert [m.name for m in members(blob, "none")] == ["fifo"]
    assert layer.stats["sockets_skipped"] == 1


def test_symlinked_root_parts_are_not_followed(tmp_path):
    """Symlinks to directories inside and outside the tree, and a loop: each is one
    symlink entry; the walk never enters them."""
    root = tmp_path / "t"
    (root / "real").mkdir(parents=True)
    (root / "real" / "f").write_text("f")
    os.symlink("real", root / "in")
    os.symlink("/usr", root / "out")
    os.symlink("loop", root / "loop")
    os.symlink(str(tmp_path), root / "parent")
    layer, blob = write(tmp_path, str(root), "none")
    ms = members(blob, "none")
    sym, d, f = tarfile.SYMTYPE, tarfile.DIRTYPE, tarfile.REGTYPE
    want = [("in", sym), ("loop", sym), ("out", sym), ("parent", sym), ("real", d), ("real/f", f)]
    assert [(m.name, m.type) for m in ms] == want


def test_one_file_system(tmp_path):
    root = tmp_path / "t"
    (root / "proc").mkdir(parents=True)
    (root / "f").write_text("f")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(root / "proc")],
                   check=True)  # fmt: skip
    try:
        (root / "proc" / "inside").write_text("x")
        layer, blob = write(tmp_path, str(root), "none", one_file_system=True)
        assert [m.name for m in members(blob, "none")] == ["f", "proc"]
        assert layer.stats["mounts_skipped"] == 1
        _, blob = write(tmp_path, str(root), "none", name="all")
        assert [m.name for m in members(blob, "none")] == ["f", "proc", "proc/inside"]
    finally:
        subprocess.run(["umount", str(root / "proc")], check=True)


def test_a_file_shorter_than_it_says_is_an_error(tmp_path):
    """A file whose content ends before its size (a sysfs file, bind-mounted into the tree:
    4096 bytes by stat, a few when read -- as a file truncated while the layer is written
    would be): an error naming it, and no blob left."""
    src = "/sys/kernel/uevent_seqnum"
    if not os.path.exists(src) or os.stat(src).st_size <= len(open(src, "rb").read()):
        pytest.skip(f"{src} is not a file shorter than its size here")
    root = tmp_path / "t"
    root.mkdir()
    (root / "a").write_text("a")
    (root / "seqnum").write_text("")
    subprocess.run(["mount", "--bind", src, str(root / "seqnum")], check=True)
    try:
        out = tmp_path / "out.tgz"
        with pytest.raises(PackError) as e:
            write_layer(str(root), str(out))
        assert e.value.errno == errno.EAGAIN and e.value.path == "seqnum"
        assert "changed while the layer was being written (shrank by" in str(e.value)
        assert not out.exists()
    finally:
        subprocess.run(["umount", str(root / "seqnum")], check=True)


def test_name_too_long_is_an_error(tmp_path):
    root = tmp_path / "t"
    root.mkdir()
    fd = os.open(root, os.O_RDONLY)
    try:
        for _ in range(17):  # 17 x 256 bytes: over the 4096 a layer's name may have
            os.mkdir("d" * 255, dir_fd=fd)
            nfd = os.open("d" * 255, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nfd
    finally:
        os.close(fd)
    out = tmp_path / "out"
    with pytest.raises(PackError) as e:
        write_layer(str(root), str(out))
    assert e.value.errno == errno.ENAMETOOLONG and "too long" in str(e.value)
    assert not out.exists()
    # (removing it takes the same care)
    subprocess.run(["rm", "-rf", str(root)], check=True)


def test_bad_input(tmp_path, tree):
    with pytest.raises(PackError) as e:
        write_layer(str(tmp_path / "missing"), str(tmp_path / "o"))
    assert e.value.errno == errno.ENOENT and "missing" in str(e.value)
    (tmp_path / "file").write_text("x")
    with pytest.raises(PackError) as e:
        write_layer(str(tmp_path / "file"), str(tmp_path / "o"))
    assert e.value.errno == errno.ENOTDIR
    with pytest.raises(PackError) as e:
        write_layer(tree, str(tmp_path / "no" / "such" / "dir"))
    assert e.value.errno == errno.ENOENT
    for kw, what in (({"compression": "xz"}, "compression"), ({"level": 7}, "level 7"),
                     ({"compression": "gzip", "gzip": "zlib", "level": 10}, "level 10"),
                     ({"compression": "zstd", "level": 99}, "level 99")):  # fmt: skip
        with pytest.raises(PackError) as e:
            write_layer(tree, str(tmp_path / "o"), **kw)
        assert what in str(e.value) and e.value.errno == errno.EINVAL
        assert not (tmp_path / "o").exists()


def test_full_disk_leaves_nothing(tmp_path, tree):
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)], check=True)
    try:
        with pytest.raises(PackError) as e:
            write_layer(tree, str(small / "layer.tar"), compression="none")
        assert e.value.errno == errno.ENOSPC and "no space left" in str(e.value).lower()
        assert os.listdir(small) == []
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_to_a_pipe(tmp_path, tree):
    """An fd as output: streamed (into GNU tar's listing here), digests as for a file."""
    r, w = os.pipe()
    p = subprocess.Popen([GNU_TAR, "-tzf", "-"], stdin=r, stdout=subprocess.PIPE)
    os.close(r)
    try:
        layer = write_layer(tree, w)
    finally:
        os.close(w)
    listing = p.communicate()[0].decode(errors="surrogateescape").splitlines()
    assert p.returncode == 0 and "etc/hello" in listing and "bin/" in listing
    assert write(tmp_path, tree)[0].digest == layer.digest


def test_empty_tree(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    layer, blob = write(tmp_path, str(root), "none")
    assert open(blob, "rb").read() == b"\0" * 1024
    assert layer.diff_id == sha(b"\0" * 1024) and layer.stats["entries"] == 0
