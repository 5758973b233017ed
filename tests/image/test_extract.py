"""The layer extractor (csrc/extract*.c) through sangja.image.unpack.unpack_layer.

Real tars (Python's tarfile, GNU tar, bsdtar), real files, checked entry by entry and
against GNU tar's own extraction of the same archive.  Run as root.
"""

import decimal
import errno
import hashlib
import io
import os
import stat
import subprocess
import sys
import tarfile
import time

import pytest
from layertools import (
    BSDTAR,
    GNU_TAR,
    HAVE_ZSTD,
    OPAQUE,
    Layer,
    compare_with_gnu_tar,
    compress,
    decompress_file,
    diff,
    gnu_tar_extract,
    implied_dirs,
    snapshot,
)

from sangja.errors import SangjaError, UnpackError
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


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_blob(tmp_path, tar_bytes, comp="gzip", name="blob"):
    blob = compress(tar_bytes, comp)
    p = tmp_path / name
    p.write_bytes(blob)
    return str(p), blob


def unpack(tmp_path, layers_dir, tar_bytes, comp="gzip", chain="c" * 64, **kw):
    blob_path, _ = write_blob(tmp_path, tar_bytes, comp)
    return unpack_layer(blob_path, str(layers_dir), chain, sync=False, **kw)


def leftovers(layers_dir):
    return sorted(os.listdir(layers_dir))


# ---- entry types and metadata ----------------------------------------------------------


def kitchen_sink():
    big = os.urandom(3 << 20)  # over the writer threads' job size: written on the main thread
    lay = (
        Layer()
        .dir("etc", mtime=1600000000)
        .file("etc/hello", b"hello\n", mode=0o644, mtime=1600000001)
        .file("etc/empty", b"")
        .file("bin/tool", b"\x7fELF", mode=0o4755, uid=0, gid=0)  # no "bin/" entry: implied
        .file("bin/sgid", b"g", mode=0o2755, gid=42)
        .file("bin/none", b"n", mode=0o000)
        .dir("tmp", mode=0o1777)
        .dir("srv", mode=0o2775, uid=1000, gid=1000)
        .file("srv/owned", b"o", uid=1000, gid=1001, mtime=0)
        .file("srv/bigids", b"b", uid=3000000, gid=3000001, mtime=4102444800)
        .file("srv/nanos", b"t", pax={"mtime": "1580608922.123456789"})
        .file("srv/big", big)
        .dir("ro", mode=0o555)
        .file("ro/child", b"c", mode=0o444)
        .symlink("lnk/rel", "../etc/hello", uid=7, gid=8, mtime=1234567890)
        .symlink("lnk/abs", "/etc/passwd")
        .symlink("lnk/dangling", "/does/not/exist")
        .hardlink("etc/hello-link", "etc/hello")
        .hardlink("bin/tool-link", "bin/tool")
        .fifo("dev/fifo", mode=0o600)
        .chr("dev/null", 1, 3, mode=0o666)
        .blk("dev/loop7", 7, 0, mode=0o660, gid=6)
        .file(
            "x/user",
            b"x",
            xattrs={"user.comment": b"hello world", "user.binary": b"\x00\xff\x10\xee"},
        )
        .file("x/cap", b"c", mode=0o755, uid=1000, xattrs={"security.capability": CAP_NET_BIND})
        .dir("x/dir", xattrs={"user.dir": b"1"})
        .dir("deep/a/b/c", mode=0o700, mtime=1500000000)
        .file("deep/a/b/c/f", b"f")
    )
    return lay.bytes(), big


@pytest.mark.parametrize("comp", COMPRESSIONS)
def test_entry_types_and_metadata(tmp_path, layers_dir, comp):
    tar_bytes, big = kitchen_sink()
    res = unpack(tmp_path, layers_dir, tar_bytes, comp)
    r = res.path
    assert res.created and res.stats["compression"] == comp
    assert leftovers(layers_dir) == ["c" * 64]

    def st(p):
        return os.lstat(os.path.join(r, p))

    with open(os.path.join(r, "etc/hello"), "rb") as f:
        assert f.read() == b"hello\n"
    assert st("etc/empty").st_size == 0
    with open(os.path.join(r, "srv/big"), "rb") as f:
        assert f.read() == big
    # modes, including setuid/setgid/sticky (chmod after chown) and 000
    assert stat.S_IMODE(st("bin/tool").st_mode) == 0o4755
    assert stat.S_IMODE(st("bin/sgid").st_mode) == 0o2755 and st("bin/sgid").st_gid == 42
    assert stat.S_IMODE(st("bin/none").st_mode) == 0
    assert stat.S_IMODE(st("tmp").st_mode) == 0o1777
    assert stat.S_IMODE(st("srv").st_mode) == 0o2775
    assert stat.S_IMODE(st("ro").st_mode) == 0o555
    assert stat.S_IMODE(st("ro/child").st_mode) == 0o444
    assert stat.S_IMODE(st("bin").st_mode) == 0o755  # implied directory
    # owners, incl. ids only a pax record can carry
    assert (st("srv").st_uid, st("srv").st_gid) == (1000, 1000)
    assert (st("srv/owned").st_uid, st("srv/owned").st_gid) == (1000, 1001)
    assert (st("srv/bigids").st_uid, st("srv/bigids").st_gid) == (3000000, 3000001)
    assert (st("lnk/rel").st_uid, st("lnk/rel").st_gid) == (7, 8)
    # mtimes: files, symlinks (not their targets), directories after their contents
    assert st("etc/hello").st_mtime_ns == 1600000001 * 10**9
    assert st("srv/owned").st_mtime_ns == 0
    assert st("srv/bigids").st_mtime_ns == 4102444800 * 10**9
    assert st("srv/nanos").st_mtime_ns == 1580608922123456789
    assert st("lnk/rel").st_mtime_ns == 1234567890 * 10**9
    assert st("etc").st_mtime_ns == 1600000000 * 10**9
    assert st("deep/a/b/c").st_mtime_ns == 1500000000 * 10**9
    # links
    assert os.readlink(os.path.join(r, "lnk/rel")) == "../etc/hello"
    assert os.readlink(os.path.join(r, "lnk/abs")) == "/etc/passwd"
    assert os.readlink(os.path.join(r, "lnk/dangling")) == "/does/not/exist"
    assert st("etc/hello-link").st_ino == st("etc/hello").st_ino
    assert st("bin/tool-link").st_ino == st("bin/tool").st_ino
    assert stat.S_IMODE(st("bin/tool-link").st_mode) == 0o4755
    # special files
    assert stat.S_ISFIFO(st("dev/fifo").st_mode)
    assert stat.S_ISCHR(st("dev/null").st_mode)
    assert (os.major(st("dev/null").st_rdev), os.minor(st("dev/null").st_rdev)) == (1, 3)
    assert stat.S_ISBLK(st("dev/loop7").st_mode) and st("dev/loop7").st_gid == 6
    assert (os.major(st("dev/loop7").st_rdev), os.minor(st("dev/loop7").st_rdev)) == (7, 0)
    # xattrs; the capability survives the chown (set after it)
    assert os.getxattr(os.path.join(r, "x/user"), "user.comment") == b"hello world"
    assert os.getxattr(os.path.join(r, "x/user"), "user.binary") == b"\x00\xff\x10\xee"
    assert os.getxattr(os.path.join(r, "x/cap"), "security.capability") == CAP_NET_BIND
    assert st("x/cap").st_uid == 1000
    assert os.getxattr(os.path.join(r, "x/dir"), "user.dir") == b"1"
    # the layer root: 0755 (no "./" entry)
    assert stat.S_IMODE(os.stat(r).st_mode) == 0o755


@pytest.mark.parametrize("comp", COMPRESSIONS)
def test_digests_and_stats(tmp_path, layers_dir, comp):
    tar_bytes, _ = kitchen_sink()
    blob_path, blob = write_blob(tmp_path, tar_bytes, comp)
    res = unpack_layer(blob_path, str(layers_dir), "d" * 64, sha(blob), sha(tar_bytes), sync=True)
    assert res.created
    assert res.digest == sha(blob)
    assert res.diff_id == sha(tar_bytes)
    assert res.stats["compressed_bytes"] == len(blob)
    assert res.stats["tar_bytes"] == len(tar_bytes)
    assert res.stats["entries"] == len(tarfile.open(fileobj=io.BytesIO(tar_bytes)).getmembers())
    # already there: nothing is read again
    again = unpack_layer(blob_path, str(layers_dir), "d" * 64, "sha256:" + "0" * 64)
    assert not again.created and again.path == res.path


@pytest.mark.parametrize("workers", [0, 1, 4])
def test_writer_thread_counts_agree(tmp_path, layers_dir, workers):
    tar_bytes, _ = kitchen_sink()
    blob_path, _ = write_blob(tmp_path, tar_bytes)
    ref = unpack_layer(blob_path, str(layers_dir), "r" * 64, workers=0, sync=False)
    got = unpack_layer(blob_path, str(layers_dir), "w" * 64, workers=workers, sync=False)
    implied = implied_dirs(tar_bytes)
    a, b = snapshot(got.path, ignore_mtime=implied), snapshot(ref.path, ignore_mtime=implied)
    assert a == b, diff(a, b)


def ring_filler():
    """Enough to go round the stream's rings many times, at both ends of the ratio:
    random bytes (as much compressed as tar: the input ring fills up as fast as the
    output ring), zeros (the inflate thread far ahead of the file system work), and
    hundreds of small files and directories."""
    rnd = os.urandom(9 << 20)
    lay = Layer().file("rand/a", rnd[: 5 << 20]).file("rand/b", rnd[5 << 20 :], mode=0o600)
    lay.file("zero/z", bytes(24 << 20), mtime=1400000000)
    for i in range(300):
        d = f"d{i % 30}/s{i}"
        lay.dir(d, mode=(0o755, 0o555, 0o700)[i % 3], uid=i % 5, mtime=1500000000 + i)
        lay.file(f"{d}/f", b"x" * (i * 37), mode=0o640, mtime=1600000000 + i)
    return lay.bytes()


@pytest.fixture(scope="module")
def ring_layer(tmp_path_factory):
    tar_bytes = ring_filler()
    blobs = {}
    for comp in ("gzip", "zstd", "none"):
        if comp != "zstd" or HAVE_ZSTD:
            p = tmp_path_factory.mktemp("ring") / f"blob.{comp}"
            p.write_bytes(compress(tar_bytes, comp))
            blobs[comp] = str(p)
    return tar_bytes, blobs


def extract_fd(in_fd, dest, **kw):
    from sangja._native import extract

    os.mkdir(dest)
    rfd = os.open(dest, os.O_DIRECTORY)
    try:
        return extract.extract(in_fd, rfd, **kw)
    finally:
        os.close(rfd)


def extract_file(blob_path, dest, **kw):
    fd = os.open(blob_path, os.O_RDONLY)
    try:
        return extract_fd(fd, dest, **kw)
    finally:
        os.close(fd)


@pytest.mark.parametrize("comp", COMPRESSIONS)
@pytest.mark.parametrize(("workers", "hash_thread"), [(0, False), (0, True), (2, False), (2, True)])
def test_hashing_modes_agree(tmp_path, ring_layer, comp, workers, hash_thread):
    """The hashing shared by the caller and the inflate thread, or on a thread of its own:
    the same digests (hashlib's) and the same tree."""
    tar_bytes, blobs = ring_layer
    blob_path = blobs[comp]
    blob = open(blob_path, "rb").read()
    ref = extract_file(blob_path, str(tmp_path / "ref"), workers=0, hash_thread=False)
    got = extract_file(blob_path, str(tmp_path / "got"), workers=workers, hash_thread=hash_thread)
    assert got["digest"] == ref["digest"] == sha(blob)
    assert got["diff_id"] == ref["diff_id"] == sha(tar_bytes)
    assert got["compressed_bytes"] == len(blob) and got["tar_bytes"] == len(tar_bytes)
    implied = implied_dirs(tar_bytes)
    a = snapshot(str(tmp_path / "got"), ignore_mtime=implied)
    b = snapshot(str(tmp_path / "ref"), ignore_mtime=implied)
    assert a == b, diff(a, b)


@pytest.mark.parametrize("hash_thread", [False, True])
def test_digests_of_a_stream_read_in_odd_pieces(tmp_path, ring_layer, hash_thread):
    """From a pipe, reads return whatever is there: compressed buffers of any length, so
    the digest and the diff_id meet at any offset when hashed side by side."""
    import random
    import threading

    tar_bytes, blobs = ring_layer
    blob = open(blobs["gzip"], "rb").read()
    r, w = os.pipe()

    def feed():
        rng, pos = random.Random(7), 0
        with os.fdopen(w, "wb", buffering=0) as f:
            while pos < len(blob):
                n = rng.choice((1, 63, 65, 511, 4097, 70001, 300000))
                f.write(blob[pos : pos + n])
                pos += n
                if rng.random() < 0.05:
                    time.sleep(0.001)  # let the reader catch up: short reads

    t = threading.Thread(target=feed)
    t.start()
    try:
        got = extract_fd(r, str(tmp_path / "x"), hash_thread=hash_thread)
    finally:
        t.join()
        os.close(r)
    assert got["digest"] == sha(blob) and got["diff_id"] == sha(tar_bytes)


def test_directories_beyond_the_held_fds(tmp_path, ring_layer):
    """Directories are kept open for their final metadata up to a share of RLIMIT_NOFILE;
    the others are looked up again by path: the same tree either way."""
    tar_bytes, blobs = ring_layer
    ref = str(tmp_path / "ref")
    extract_file(blobs["gzip"], ref, workers=0)
    low = str(tmp_path / "low")
    code = (
        "import os, resource, sys\n"
        "from sangja._native import extract\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit("
        "resource.RLIMIT_NOFILE)[1]))\n"
        "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
        "os.mkdir(sys.argv[2])\n"
        "rfd = os.open(sys.argv[2], os.O_DIRECTORY)\n"
        "extract.extract(fd, rfd, workers=0)\n"
    )
    subprocess.run([sys.executable, "-c", code, blobs["gzip"], low], check=True)
    implied = implied_dirs(tar_bytes)
    a, b = snapshot(low, ignore_mtime=implied), snapshot(ref, ignore_mtime=implied)
    assert a == b, diff(a, b)


def test_root_entry_sets_the_layer_root(tmp_path, layers_dir):
    lay = Layer().dir("./", mode=0o750, uid=5, gid=6, mtime=1111111111).file("./a", b"a")
    r = unpack(tmp_path, layers_dir, lay.bytes()).path
    st = os.stat(r)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o750, 5, 6)
    assert st.st_mtime_ns == 1111111111 * 10**9
    assert os.listdir(r) == ["a"]


def test_gnu_forms(tmp_path, layers_dir):
    """GNU format: ././@LongLink 'L' names, 'K' link targets, base-256 numbers."""
    long_dir = "d" * 120
    long_name = f"{long_dir}/{'n' * 200}.txt"
    long_target = "t" * 180
    lay = (
        Layer(tarfile.GNU_FORMAT)
        .file(long_name, b"long", uid=3000000, gid=2**31)
        .symlink("s", long_target)
        .hardlink("h" * 150, long_name)
        .file("old", b"o", mtime=-1000)
    )
    r = unpack(tmp_path, layers_dir, lay.bytes()).path
    p = os.path.join(r, long_name)
    assert open(p, "rb").read() == b"long"
    assert (os.lstat(p).st_uid, os.lstat(p).st_gid) == (3000000, 2**31)
    assert os.readlink(os.path.join(r, "s")) == long_target
    assert os.lstat(os.path.join(r, "h" * 150)).st_ino == os.lstat(p).st_ino
    assert os.lstat(os.path.join(r, "old")).st_mtime == -1000


def test_pax_records(tmp_path, layers_dir):
    import base64

    lay = (
        Layer()
        .file("neg", b"n", pax={"mtime": "-1.5"})  # 1.5 s before the epoch
        .file(
            "la",  # bsdtar's form alone: %-encoded name, base64 value
            b"l",
            pax={"LIBARCHIVE.xattr.user.%41b": base64.b64encode(b"\x00v").decode()},
        )
        .file("unknown", b"u", pax={"SOME.vendor.key": "ignored", "atime": "1.25"})
        .file("empty-path", b"e", pax={"path": ""})  # an empty record removes the key
    )
    r = unpack(tmp_path, layers_dir, lay.bytes()).path
    assert os.lstat(os.path.join(r, "neg")).st_mtime_ns == -1_500_000_000
    assert os.getxattr(os.path.join(r, "la"), "user.Ab") == b"\x00v"
    assert os.path.isfile(os.path.join(r, "unknown"))
    assert os.path.isfile(os.path.join(r, "empty-path"))


def test_aufs_metadata_is_skipped(tmp_path, layers_dir):
    lay = Layer().dir(".wh..wh.plnk").file(".wh..wh.plnk/123.456", b"x").file("a", b"a")
    res = unpack(tmp_path, layers_dir, lay.bytes())
    assert os.listdir(res.path) == ["a"]


def test_concurrent_unpackers_of_one_layer(tmp_path, layers_dir):
    import threading

    tar_bytes, _ = kitchen_sink()
    blob_path, _ = write_blob(tmp_path, tar_bytes)
    results, errors = [], []

    def run():
        try:
            results.append(unpack_layer(blob_path, str(layers_dir), "c" * 64, sync=False))
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(r.created for r in results) <= 1
    assert leftovers(layers_dir) == ["c" * 64]
    implied = implied_dirs(tar_bytes)
    ref = unpack_layer(blob_path, str(layers_dir), "r" * 64, sync=False)
    a = snapshot(results[0].path, ignore_mtime=implied)
    b = snapshot(ref.path, ignore_mtime=implied)
    assert a == b, diff(a, b)


def make_source_tree(src):
    """A tree with what real layers hold, for GNU tar and bsdtar to archive."""
    os.makedirs(src)

    def w(rel, data=b"", mode=0o644):
        p = os.path.join(src, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        os.chmod(p, mode)
        return p

    w("usr/bin/prog", os.urandom(200000), 0o755)
    w("usr/bin/suid", b"s", 0o4755)
    os.link(os.path.join(src, "usr/bin/prog"), os.path.join(src, "usr/bin/prog-hardlink"))
    os.symlink("usr/bin", os.path.join(src, "bin"))
    os.symlink("../bin/prog", os.path.join(src, "usr/prog-rel"))
    long_dir = os.path.join("usr/share", *[f"component-{i:02d}-" + "x" * 40 for i in range(8)])
    w(os.path.join(long_dir, "f" * 200), b"deep")
    w("etc/ünïcødé-日本語.conf", b"u")
    w("etc/with spaces", b"s")
    p = w("etc/caps", b"c", 0o755)
    os.setxattr(p, "security.capability", CAP_NET_BIND)
    p = w("etc/user-xattr", b"x")
    os.setxattr(p, "user.k", b"v\x00\x01")
    for i, (uid, gid) in enumerate([(1000, 1000), (65534, 65534), (3000000, 3000000)]):
        p = w(f"home/owned-{i}", b"o")
        os.chown(p, uid, gid)
    os.makedirs(os.path.join(src, "var/empty"))
    os.chmod(os.path.join(src, "var/empty"), 0o1777)
    os.mkfifo(os.path.join(src, "var/fifo"))
    os.mknod(os.path.join(src, "var/null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.utime(os.path.join(src, "etc/with spaces"), ns=(0, 1580608922123456789))
    # fixed times for everything else (GNU tar sets them on extraction too)
    for root, dirs, files in os.walk(src):
        for n in dirs + files:
            p = os.path.join(root, n)
            if n != "with spaces":
                os.utime(p, (1700000000, 1700000000), follow_symlinks=False)
    os.utime(src, (1700000000, 1700000000))


WRITERS = {
    "gnutar-posix": [
        GNU_TAR,
        "--format=posix",
        "--xattrs",
        "--xattrs-include=*",
        "--numeric-owner",
        "-cf",
    ],
    "gnutar-gnu": [GNU_TAR, "--format=gnu", "--numeric-owner", "-cf"],
    "bsdtar": [BSDTAR, "--xattrs", "--numeric-owner", "-cf"],
}


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_same_tree_as_gnu_tar(tmp_path, layers_dir, writer):
    """Archives written by GNU tar (pax, GNU) and bsdtar, unpacked by us and by GNU tar."""
    if WRITERS[writer][0] is None:
        pytest.skip(f"{writer} is not installed")
    src = tmp_path / "src"
    make_source_tree(str(src))
    tar_path = str(tmp_path / "layer.tar")
    subprocess.run([*WRITERS[writer], tar_path, "-C", str(src), "."], check=True)
    ref = tmp_path / "ref"
    since = time.time_ns()
    gnu_tar_extract(tar_path, str(ref))
    with open(tar_path, "rb") as f:
        tar_bytes = f.read()
    for comp in ("gzip", "none"):
        ours = unpack(tmp_path, layers_dir, tar_bytes, comp, chain=comp).path
        a, b = compare_with_gnu_tar(ours, str(ref), since)
        if writer == "gnutar-gnu":  # the GNU format has no xattrs
            b = {k: {**v, "xattrs": {}} for k, v in b.items()}
            a = {k: {**v, "xattrs": {}} for k, v in a.items()}
        assert a == b, diff(a, b)
        assert a["usr/bin/suid"]["mode"] == "0o4755"


# ---- whiteouts, opaque directories, replacing entries ------------------------------------


def test_whiteouts_become_overlay_whiteouts(tmp_path, layers_dir):
    lay = (
        Layer()
        .dir("etc")
        .file("etc/.wh.motd")
        .file("usr/share/.wh.doc")  # parents implied
        .file(".wh.top")
    )
    res = unpack(tmp_path, layers_dir, lay.bytes())
    r = res.path
    for p in ("etc/motd", "usr/share/doc", "top"):
        st = os.lstat(os.path.join(r, p))
        assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 0
        assert os.minor(st.st_rdev) == 0
    assert not [n for n in os.listdir(os.path.join(r, "etc")) if n.startswith(".wh.")]
    assert res.stats["whiteouts"] == 3


def test_opaque_keeps_same_layer_entries_in_any_order(tmp_path, layers_dir):
    lay = (
        Layer()
        .dir("z")
        .file("z/+VERSION", b"before the marker")  # sorts before ".wh..wh..opq"
        .file("z/.wh..wh..opq")
        .file("z/UTC", b"after the marker")
        .dir("z/Etc")
        .file("z/Etc/UTC", b"u")
        .file("new/.wh..wh..opq")  # a directory that only the marker implies
    )
    res = unpack(tmp_path, layers_dir, lay.bytes())
    r = res.path
    assert os.getxattr(os.path.join(r, "z"), OPAQUE) == b"y"
    assert sorted(os.listdir(os.path.join(r, "z"))) == ["+VERSION", "Etc", "UTC"]
    assert os.getxattr(os.path.join(r, "new"), OPAQUE) == b"y"
    assert res.stats["opaques"] == 2
    with pytest.raises(OSError):
        os.getxattr(os.path.join(r, "z/Etc"), OPAQUE)


def test_whiteout_does_not_hide_the_same_layer(tmp_path, layers_dir):
    lay = (
        Layer()
        .file("a", b"kept")
        .file(".wh.a")  # after: the layer's own "a" stays
        .file(".wh.b")
        .dir("b")  # before: "b" replaces the whiteout, and stays opaque to lower layers
        .file("b/f", b"f")
        .file(".wh.c")
        .file("c", b"file over whiteout")
    )
    r = unpack(tmp_path, layers_dir, lay.bytes()).path
    assert open(os.path.join(r, "a"), "rb").read() == b"kept"
    assert os.path.isdir(os.path.join(r, "b")) and os.listdir(os.path.join(r, "b")) == ["f"]
    assert os.getxattr(os.path.join(r, "b"), OPAQUE) == b"y"
    assert open(os.path.join(r, "c"), "rb").read() == b"file over whiteout"


def test_type_changes_replace_within_the_layer(tmp_path, layers_dir):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_bytes(b"untouched")
    lay = (
        Layer()
        .file("f2d", b"file")
        .dir("f2d")  # file -> directory
        .file("f2d/inner", b"i")
        .dir("d2f")
        .file("d2f/a", b"a")
        .dir("d2f/sub")
        .file("d2f/sub/b", b"b")
        .file("d2f", b"dir became a file")  # directory (with contents) -> file
        .symlink("s2f", "../../outside/victim")
        .file("s2f", b"replaces the symlink")  # never written through
        .file("f2s", b"f")
        .symlink("f2s", "target")
        .file("dup", b"first")
        .file("dup", b"second")  # last one wins
        .dir("dd", mode=0o700)
        .file("dd/x", b"x")
        .dir("dd", mode=0o755)  # directory over directory: merged, last metadata
        .symlink("s2d", "/etc")
        .dir("s2d")
        .file("s2d/passwd", b"not the host's")
    )
    r = unpack(tmp_path, layers_dir, lay.bytes()).path
    assert os.listdir(os.path.join(r, "f2d")) == ["inner"]
    assert open(os.path.join(r, "d2f"), "rb").read() == b"dir became a file"
    assert not os.path.islink(os.path.join(r, "s2f"))
    assert open(os.path.join(r, "s2f"), "rb").read() == b"replaces the symlink"
    assert os.readlink(os.path.join(r, "f2s")) == "target"
    assert open(os.path.join(r, "dup"), "rb").read() == b"second"
    assert os.listdir(os.path.join(r, "dd")) == ["x"]
    assert stat.S_IMODE(os.stat(os.path.join(r, "dd")).st_mode) == 0o755
    assert os.path.isdir(os.path.join(r, "s2d")) and not os.path.islink(os.path.join(r, "s2d"))
    assert (outside / "victim").read_bytes() == b"untouched"


def test_a_directory_replaced_by_a_symlink_is_not_written_into(tmp_path, layers_dir):
    """The directory just made is the cached parent of the entries after it: once a later
    entry replaces it with a symlink, a file under that name goes where the symlink says
    (inside: there; outside: refused), never into the directory that was replaced."""
    lay = (
        Layer().dir("usr").dir("d2s").file("d2s/a", b"a").symlink("d2s", "usr").file("d2s/y", b"y")
    )
    r = unpack(tmp_path, layers_dir, lay.bytes()).path
    assert os.path.islink(os.path.join(r, "d2s"))
    assert open(os.path.join(r, "usr/y"), "rb").read() == b"y"
    outside = tmp_path / "outside"
    outside.mkdir()
    lay = Layer().dir("d").file("d/a", b"a").symlink("d", str(outside)).file("d/x", b"x")
    with pytest.raises(UnpackError, match="escapes the layer root"):
        unpack(tmp_path, layers_dir, lay.bytes(), chain="e" * 64)
    assert os.listdir(outside) == []


def test_symlinks_inside_the_layer_are_followed(tmp_path, layers_dir):
    """A parent reached through a symlink that stays inside (merged /usr) is fine."""
    lay = (
        Layer()
        .dir("usr/bin")
        .symlink("bin", "usr/bin")
        .file("bin/through", b"t")
        .symlink("usr/lib64", "../lib")
        .file("usr/lib64/ld.so", b"l")  # -> lib/ld.so, "lib" implied
    )
    r = unpack(tmp_path, layers_dir, lay.bytes()).path
    assert open(os.path.join(r, "usr/bin/through"), "rb").read() == b"t"
    assert os.path.islink(os.path.join(r, "bin"))
    assert open(os.path.join(r, "lib/ld.so"), "rb").read() == b"l"


# ---- lower layers (parents) --------------------------------------------------------------


def test_parents_resolve_missing_directories(tmp_path, layers_dir):
    lower = (
        Layer()
        .dir("usr", mtime=1000)
        .dir("usr/bin", mode=0o751, uid=3, gid=4, mtime=2000, xattrs={"user.k": b"v"})
        .symlink("bin", "usr/bin")
        .dir("opt/app/data", mtime=3000)
        .dir("gone")
        .dir("gone/sub")
    )
    base = unpack(tmp_path, layers_dir, lower.bytes(), chain="1" * 64).path
    middle = Layer().file(".wh.gone").file("opt/app/.wh..wh..opq").dir("opt/app/new")
    mid = unpack(tmp_path, layers_dir, middle.bytes(), chain="2" * 64, parents=[base]).path
    upper = (
        Layer()
        .file("bin/tool", b"tool")  # through the lower symlink: lands in usr/bin
        .file("opt/app/data/f", b"f")  # "data" is hidden by the opaque "app" in the middle
        .file("gone/sub/x", b"x")  # "gone" is whited out in the middle layer
    )
    top = unpack(tmp_path, layers_dir, upper.bytes(), chain="3" * 64, parents=[mid, base]).path
    assert not os.path.lexists(os.path.join(top, "bin"))
    assert open(os.path.join(top, "usr/bin/tool"), "rb").read() == b"tool"
    st = os.lstat(os.path.join(top, "usr/bin"))  # copied from the lower directory
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o751, 3, 4)
    assert st.st_mtime_ns == 2000 * 10**9
    assert os.getxattr(os.path.join(top, "usr/bin"), "user.k") == b"v"
    assert os.lstat(os.path.join(top, "usr")).st_mtime_ns == 1000 * 10**9
    assert os.lstat(os.path.join(top, "opt/app")).st_mtime_ns != 3000 * 10**9
    assert os.path.isfile(os.path.join(top, "opt/app/data/f"))
    assert os.lstat(os.path.join(top, "opt/app/data")).st_mtime_ns != 3000 * 10**9
    assert os.path.isfile(os.path.join(top, "gone/sub/x"))
    # the lower layers are only read
    assert sorted(os.listdir(base)) == ["bin", "gone", "opt", "usr"]
    assert os.listdir(os.path.join(base, "usr/bin")) == []


def test_parents_do_not_allow_escapes(tmp_path, layers_dir):
    lower = Layer().symlink("up", "../../..").symlink("abs", "/etc").bytes()
    base = unpack(tmp_path, layers_dir, lower, chain="1" * 64).path
    for name in ("up/x", "abs/passwd"):
        with pytest.raises(UnpackError, match="escapes the layer root") as e:
            unpack(
                tmp_path,
                layers_dir,
                Layer().file(name, b"x").bytes(),
                chain="2" * 64,
                parents=[base],
            )
        assert e.value.path == name
    assert leftovers(layers_dir) == ["1" * 64]


# ---- hostile layers ----------------------------------------------------------------------


HOSTILE = {
    "dotdot": (Layer().file("../../outside/new", b"x"), "../../outside/new", "escapes"),
    "dotdot-inner": (Layer().file("a/../../outside/new", b"x"), "a/../../outside/new", "escapes"),
    "absolute": (
        Layer().file("/tmp/sangja-absolute-test", b"x"),
        "/tmp/sangja-absolute-test",
        "escapes",
    ),
    "symlink-to-root-then-write": (
        Layer().symlink("a", "/").file("a/etc/passwd", b"x"),
        "a/etc/passwd",
        "escapes",
    ),
    "symlink-outside-then-write": (
        Layer().symlink("a", "../../outside").file("a/new", b"x"),
        "a/new",
        "escapes",
    ),
    "symlink-dotdot-chain": (
        Layer().symlink("a", ".").symlink("b", "a/..").file("b/new", b"x"),
        "b/new",
        "escapes",
    ),
    "symlink-dotdot-deep": (
        Layer().dir("d").symlink("d/up", "../..").file("d/up/outside/new", b"x"),
        "d/up/outside/new",
        "escapes",
    ),
    "symlink-then-dir": (  # tarfile writes directory names with a trailing "/"
        Layer().symlink("a", "../../outside").dir("a/newdir"),
        "a/newdir/",
        "escapes",
    ),
    "symlink-then-whiteout": (
        Layer().symlink("a", "../../outside").file("a/.wh.victim"),
        "a/.wh.victim",
        "escapes",
    ),
    "symlink-then-opaque": (
        Layer().symlink("a", "../../outside").file("a/.wh..wh..opq"),
        "a/.wh..wh..opq",
        "escapes",
    ),
    "hardlink-dotdot": (Layer().hardlink("h", "../../outside/victim"), "h", "escapes"),
    "hardlink-absolute": (Layer().hardlink("h", "/etc/shadow"), "h", "escapes"),
    "hardlink-through-symlink": (
        Layer().symlink("s", "../../outside").hardlink("h", "s/victim"),
        "h",
        "escapes",
    ),
    "hardlink-through-absolute-symlink": (
        Layer().symlink("s", "/etc").hardlink("h", "s/shadow"),
        "h",
        "escapes",
    ),
    "hardlink-not-yet-extracted": (
        Layer().hardlink("h", "later").file("later", b"l"),
        "h",
        "not in this layer",
    ),
    "hardlink-to-directory": (Layer().dir("d").hardlink("h", "d"), "h", "directory"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_layers_are_refused(tmp_path, layers_dir, case):
    lay, entry, why = HOSTILE[case]
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_bytes(b"untouched")
    blob_path, _ = write_blob(tmp_path, lay.bytes())
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(UnpackError) as e:
        unpack_layer(blob_path, str(layers_dir), "c" * 64)
    msg = str(e.value)
    assert f'layer entry "{entry}"' in msg and why in msg, msg
    assert e.value.path == entry
    assert e.value.errno in (errno.EXDEV, errno.ENOENT, errno.EPERM)
    assert isinstance(e.value, SangjaError)
    # nothing outside, no half layer
    assert leftovers(layers_dir) == []
    assert sorted(os.listdir(outside)) == ["victim"]
    assert (outside / "victim").read_bytes() == b"untouched"
    assert os.stat(outside / "victim").st_nlink == 1
    assert sorted(os.listdir(tmp_path)) == before
    assert not os.path.lexists("/tmp/sangja-absolute-test")


def test_hardlink_to_an_escaping_symlink_links_the_symlink(tmp_path, layers_dir):
    """linkat without AT_SYMLINK_FOLLOW: the new name is the symlink, never its target
    (GNU tar and containerd do the same); the target is only read inside the container."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_bytes(b"untouched")
    lay = Layer().symlink("s", "../../outside/victim").hardlink("h", "s")
    r = unpack(tmp_path, layers_dir, lay.bytes()).path
    assert os.path.islink(os.path.join(r, "h"))
    assert os.lstat(os.path.join(r, "h")).st_ino == os.lstat(os.path.join(r, "s")).st_ino
    assert os.stat(outside / "victim").st_nlink == 1
    assert (outside / "victim").read_bytes() == b"untouched"


def test_entry_names_in_errors_are_escaped(tmp_path, layers_dir):
    with pytest.raises(UnpackError) as e:
        unpack(tmp_path, layers_dir, Layer().file("../evil\nname", b"x").bytes())
    assert "\n" not in str(e.value) and "evil\\x0aname" in str(e.value)
    assert e.value.path == "../evil\nname"


# ---- corrupt, truncated, wrong digests, limits -------------------------------------------


@pytest.mark.parametrize("comp", [c for c in COMPRESSIONS if c != "none"])
def test_corrupt_stream(tmp_path, layers_dir, comp):
    tar_bytes, _ = kitchen_sink()
    blob = bytearray(compress(tar_bytes, comp))
    for i in range(len(blob) // 2, len(blob) // 2 + 64):
        blob[i] ^= 0x5A
    (tmp_path / "blob").write_bytes(bytes(blob))
    with pytest.raises(UnpackError, match=f"corrupt {comp} stream|not a tar stream") as e:
        unpack_layer(str(tmp_path / "blob"), str(layers_dir), "c" * 64)
    assert e.value.errno == errno.EBADMSG
    assert leftovers(layers_dir) == []


@pytest.mark.parametrize("comp", COMPRESSIONS)
def test_truncated_stream(tmp_path, layers_dir, comp):
    tar_bytes, _ = kitchen_sink()
    blob = compress(tar_bytes, comp)
    (tmp_path / "blob").write_bytes(blob[: len(blob) * 2 // 3])
    want = f"truncated {comp} stream" if comp != "none" else "truncated tar stream"
    with pytest.raises(UnpackError, match=want) as e:
        unpack_layer(str(tmp_path / "blob"), str(layers_dir), "c" * 64)
    assert e.value.errno == errno.EBADMSG
    assert leftovers(layers_dir) == []


def test_not_a_tar(tmp_path, layers_dir):
    (tmp_path / "blob").write_bytes(os.urandom(4096))
    with pytest.raises(UnpackError, match="not a tar stream"):
        unpack_layer(str(tmp_path / "blob"), str(layers_dir), "c" * 64)
    (tmp_path / "blob").write_bytes(b"\xfd7zXZ\x00" + os.urandom(100))
    with pytest.raises(UnpackError, match="xz compression is not supported"):
        unpack_layer(str(tmp_path / "blob"), str(layers_dir), "c" * 64)
    assert leftovers(layers_dir) == []


def test_gzip_members_and_padding(tmp_path, layers_dir):
    """Concatenated gzip members (pigz, appended layers) and zero padding after them."""
    a = Layer().file("a", b"a" * 5000).bytes()
    first, second = a[: 512 * 4], a[512 * 4 :]
    blob = compress(first, "gzip") + compress(second, "gzip") + b"\0" * 100
    (tmp_path / "blob").write_bytes(blob)
    res = unpack_layer(str(tmp_path / "blob"), str(layers_dir), "c" * 64, sync=False)
    assert open(os.path.join(res.path, "a"), "rb").read() == b"a" * 5000
    assert res.diff_id == sha(a) and res.digest == sha(blob)


def test_gzip_implementations_agree(tmp_path, layers_dir):
    from sangja._native import extract

    tar_bytes, _ = kitchen_sink()
    blob_path, blob = write_blob(tmp_path, tar_bytes)
    results = []
    for impl in ("isal", "zlib"):
        d = tmp_path / impl
        d.mkdir()
        fd, rfd = os.open(blob_path, os.O_RDONLY), os.open(d, os.O_DIRECTORY)
        try:
            results.append(extract.extract(fd, rfd, gzip=impl))
        finally:
            os.close(fd)
            os.close(rfd)
    assert results[0] == results[1]
    assert results[0]["diff_id"] == sha(tar_bytes)
    implied = implied_dirs(tar_bytes)
    a = snapshot(str(tmp_path / "isal"), ignore_mtime=implied)
    b = snapshot(str(tmp_path / "zlib"), ignore_mtime=implied)
    assert a == b, diff(a, b)


def test_wrong_digest_leaves_no_layer(tmp_path, layers_dir):
    tar_bytes, _ = kitchen_sink()
    blob_path, blob = write_blob(tmp_path, tar_bytes)
    with pytest.raises(UnpackError, match="digest mismatch") as e:
        unpack_layer(blob_path, str(layers_dir), "c" * 64, "sha256:" + "0" * 64)
    assert e.value.path == blob_path
    assert leftovers(layers_dir) == []
    with pytest.raises(UnpackError, match="diff_id mismatch"):
        unpack_layer(blob_path, str(layers_dir), "c" * 64, sha(blob), "sha256:" + "1" * 64)
    assert leftovers(layers_dir) == []


def test_missing_blob_and_bad_chain_id(tmp_path, layers_dir):
    with pytest.raises(UnpackError, match="No such file") as e:
        unpack_layer(str(tmp_path / "nope"), str(layers_dir), "c" * 64)
    assert e.value.errno == errno.ENOENT
    for bad in ("../x", "a/b", ".tmp-x", ""):
        with pytest.raises(UnpackError, match="invalid chain id"):
            unpack_layer(str(tmp_path / "nope"), str(layers_dir), bad)
    assert leftovers(layers_dir) == []


def test_bomb_limits(tmp_path, layers_dir):
    zeros = Layer().file("zeros", bytes(8 << 20)).bytes()  # 8 MiB of zeros: ~8 KiB gzipped
    with pytest.raises(UnpackError, match="more than 1048576 bytes") as e:
        unpack(tmp_path, layers_dir, zeros, max_bytes=1 << 20)
    assert e.value.errno == errno.EFBIG
    many = Layer()
    for i in range(50):
        many.file(f"f{i}")
    with pytest.raises(UnpackError, match="more than 10 entries") as e:
        unpack(tmp_path, layers_dir, many.bytes(), max_entries=10)
    assert e.value.errno == errno.EFBIG
    assert leftovers(layers_dir) == []
    res = unpack(tmp_path, layers_dir, many.bytes(), max_entries=50)
    assert res.stats["entries"] == 50


def test_sparse_files_are_refused_clearly(tmp_path, layers_dir):
    if GNU_TAR is None:
        pytest.skip("no GNU tar")
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "sparse", "wb") as f:
        f.truncate(1 << 20)
        f.write(b"end")
    tar_path = tmp_path / "s.tar"
    subprocess.run(
        [GNU_TAR, "--sparse", "--format=gnu", "-cf", str(tar_path), "-C", str(src), "sparse"],
        check=True,
    )
    with pytest.raises(UnpackError, match="sparse files .* not supported"):
        unpack(tmp_path, layers_dir, tar_path.read_bytes())
    subprocess.run(
        [GNU_TAR, "--sparse", "--sparse-version=1.0", "--format=posix", "-cf", str(tar_path)]
        + ["-C", str(src), "sparse"],
        check=True,
    )
    with pytest.raises(UnpackError, match="sparse files .* not supported"):
        unpack(tmp_path, layers_dir, tar_path.read_bytes())
    assert leftovers(layers_dir) == []


# ---- the test/debian fixture image --------------------------------------------------------


def ref_tree(tmp_path, blob, comp, name):
    tar_path = tmp_path / f"{name}.tar"
    tar_path.write_bytes(decompress_file(blob, comp))
    ref = tmp_path / name
    gnu_tar_extract(str(tar_path), str(ref))
    tar_path.unlink()
    return str(ref)


def check_against_archive(root, tar_bytes):
    """Every entry of the archive as the archive says (the last entry of a name wins)."""
    members = {}
    for m in tarfile.open(fileobj=io.BytesIO(tar_bytes)):
        members[os.path.normpath(m.name)] = m
    kinds = {
        tarfile.REGTYPE: stat.S_IFREG,
        tarfile.AREGTYPE: stat.S_IFREG,
        tarfile.DIRTYPE: stat.S_IFDIR,
        tarfile.SYMTYPE: stat.S_IFLNK,
        tarfile.CHRTYPE: stat.S_IFCHR,
        tarfile.BLKTYPE: stat.S_IFBLK,
        tarfile.FIFOTYPE: stat.S_IFIFO,
    }
    for name, m in members.items():
        st = os.lstat(os.path.join(root, name))
        if m.islnk():
            target = os.lstat(os.path.join(root, os.path.normpath(m.linkname)))
            assert st.st_ino == target.st_ino, name
            continue
        assert stat.S_IFMT(st.st_mode) == kinds[m.type], name
        assert (st.st_uid, st.st_gid) == (m.uid, m.gid), name
        if not m.issym():
            assert stat.S_IMODE(st.st_mode) == m.mode, name
        mtime = m.pax_headers.get("mtime")
        want = int(decimal.Decimal(mtime) * 10**9) if mtime else int(m.mtime) * 10**9
        assert st.st_mtime_ns == want, name
        if m.isreg():
            assert st.st_size == m.size, name
        if m.issym():
            assert os.readlink(os.path.join(root, name)) == m.linkname, name
    return len(members)


def test_debian_layers_match_gnu_tar(tmp_path, layers_dir, debian_fixtures):
    layers = debian_fixtures.image("debian-bookworm")
    assert len(layers) == 3
    for i in (0, 2):  # layer 2 is all whiteouts, checked below through overlayfs
        blob, digest, diff_id, comp = layers[i]
        res = unpack_layer(blob, str(layers_dir), f"layer{i}", digest, diff_id, sync=False)
        since = time.time_ns()
        ref = ref_tree(tmp_path, blob, comp, f"ref{i}")
        # "bin/" in layer 3 is implied (no entry): both tools create it "now"
        a, b = compare_with_gnu_tar(res.path, ref, since, ignore={".", "bin"})
        assert a == b, diff(a, b)
        # and without GNU tar: what each entry says, mtimes of every directory included
        n = check_against_archive(res.path, decompress_file(blob, comp))
        assert n == res.stats["entries"]


def test_debian_zstd_digests(tmp_path, layers_dir, debian_fixtures):
    gz = debian_fixtures.image("debian-bookworm")
    zs = debian_fixtures.image("debian-bookworm-zstd")
    for (_, _, gz_diff, _), (blob, digest, diff_id, comp) in zip(gz, zs, strict=True):
        assert comp == "zstd" and diff_id == gz_diff  # the same tar, recompressed
        res = unpack_layer(blob, str(layers_dir), digest.split(":")[1], digest, diff_id, sync=False)
        assert res.stats["compression"] == "zstd"


@pytest.fixture
def overlay_mount(tmp_path):
    mounted = []

    def mount(lowers):
        target = tmp_path / f"merged{len(mounted)}"
        target.mkdir()
        r = subprocess.run(
            [
                "mount",
                "-t",
                "overlay",
                "overlay",
                "-o",
                "ro,lowerdir=" + ":".join(lowers),
                str(target),
            ],
            capture_output=True,
            text=True,
        )
        if r.returncode:
            pytest.skip(f"cannot mount overlayfs here: {r.stderr.strip()}")
        mounted.append(target)
        return str(target)

    yield mount
    for t in reversed(mounted):
        subprocess.run(["umount", str(t)], check=True)


def test_debian_image_through_overlayfs(tmp_path, layers_dir, debian_fixtures, overlay_mount):
    """The three layers unpacked with their parents, merged by the kernel: the checks of
    make-fixtures.sh (which it runs on umoci's full unpack) hold on the overlay."""
    paths = []
    for blob, digest, diff_id, _ in debian_fixtures.image("debian-bookworm"):
        res = unpack_layer(
            blob,
            str(layers_dir),
            f"l{len(paths)}",
            digest,
            diff_id,
            parents=paths[::-1],
            sync=False,
        )
        paths.append(res.path)
    r = overlay_mount(paths[::-1])

    def p(rel):
        return os.path.join(r, rel)

    f = "fixtures"
    assert not os.path.lexists(p("etc/motd")) and not os.path.lexists(p("etc/issue.net"))
    assert not os.path.lexists(p("usr/share/doc")) and not os.path.lexists(p("usr/bin/rgrep"))
    assert os.listdir(p("etc/apt/apt.conf.d")) == ["99fixture"]
    assert os.listdir(p("usr/share/zoneinfo/Etc")) == ["UTC"]
    assert os.path.isfile(p("usr/share/zoneinfo/+VERSION"))
    assert sorted(os.listdir(p("usr/share/zoneinfo"))) == ["+VERSION", "Etc", "UTC"]
    assert os.path.isdir(p("etc/host.conf"))
    assert os.path.isfile(p("usr/share/bug")) and not os.path.isdir(p("usr/share/bug"))
    assert os.path.isfile(p("etc/os-release")) and not os.path.islink(p("etc/os-release"))
    assert "Debian" in open(p("usr/lib/os-release")).read()
    assert os.path.samefile(
        p(f"{f}/hardlinks/a-orig.txt"), p(f"{f}/hardlinks/sub/c-link-other-dir.txt")
    )
    n150 = "n" * 146 + ".txt"
    assert os.path.samefile(
        p(f"{f}/longnames/zz-hardlink-to-150-char-name"), p(f"{f}/longnames/{n150}")
    )
    assert os.listdir(p("dev")) == []
    assert os.stat(p(f"{f}/perms/setuid")).st_mode & stat.S_ISUID
    assert os.getxattr(p(f"{f}/xattrs/user-xattrs"), "user.fixture.comment") == b"hello world"
    assert os.getxattr(p(f"{f}/xattrs/file-capability"), "security.capability")
    assert stat.S_ISCHR(os.lstat(p(f"{f}/special/char-null")).st_mode)
    assert stat.S_ISBLK(os.lstat(p(f"{f}/special/block-loop7")).st_mode)
    assert stat.S_ISFIFO(os.lstat(p(f"{f}/special/fifo")).st_mode)
    assert os.lstat(p(f"{f}/owners/uid-3000000-gid-3000000")).st_uid == 3000000
    assert os.path.islink(p("bin")) and os.readlink(p("bin")) == "usr/bin"
    assert os.path.isfile(p("usr/bin/fixture-through-dirlink"))
    assert os.path.isfile(p(f"{f}/gnu-format/" + "g" * 150 + ".txt"))
    assert os.path.isfile(p("bin/bash"))  # still reachable through the merged-/usr link
