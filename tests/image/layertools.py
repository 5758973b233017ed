"""Helpers for the layer extractor tests: build tar layers, compress them, snapshot trees.

A snapshot maps every path below a root to what a layer must preserve: type, mode, owner,
mtime, size and content hash, link target, device numbers, xattrs, and which paths share
an inode.  Two extractions of the same tar agree when their snapshots are equal.
"""

import fcntl
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile

HAVE_ZSTD = shutil.which("zstd") is not None
GNU_TAR = shutil.which("tar")
BSDTAR = shutil.which("bsdtar")
OPAQUE = "trusted.overlay.opaque"


def compress(data: bytes, comp: str) -> bytes:
    if comp == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if comp == "zstd":
        return subprocess.run(
            ["zstd", "-q", "-c", "-3"], input=data, capture_output=True, check=True
        ).stdout
    assert comp == "none", comp
    return data


class Layer:
    """A tar layer built entry by entry with Python's tarfile."""

    def __init__(self, fmt=tarfile.PAX_FORMAT):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=fmt)

    def _add(
        self,
        name,
        type_,
        data=b"",
        *,
        mode=0o644,
        uid=0,
        gid=0,
        mtime=1700000000,
        link="",
        xattrs=None,
        devmajor=0,
        devminor=0,
        pax=None,
    ):
        ti = tarfile.TarInfo(name)
        ti.type = type_
        ti.mode = mode
        ti.uid, ti.gid = uid, gid
        ti.mtime = mtime
        ti.linkname = link
        ti.devmajor, ti.devminor = devmajor, devminor
        ti.size = len(data) if type_ == tarfile.REGTYPE else 0
        headers = dict(pax or {})
        for k, v in (xattrs or {}).items():
            headers["SCHILY.xattr." + k] = v.decode("utf-8", "surrogateescape")
        ti.pax_headers = headers
        self.tar.addfile(ti, io.BytesIO(data) if type_ == tarfile.REGTYPE else None)
        return self

    def file(self, name, data=b"", **kw):
        return self._add(name, tarfile.REGTYPE, data, **kw)

    def dir(self, name, mode=0o755, **kw):
        return self._add(name, tarfile.DIRTYPE, mode=mode, **kw)

    def symlink(self, name, target, **kw):
        return self._add(name, tarfile.SYMTYPE, link=target, mode=0o777, **kw)

    def hardlink(self, name, target, **kw):
        return self._add(name, tarfile.LNKTYPE, link=target, **kw)

    def fifo(self, name, **kw):
        return self._add(name, tarfile.FIFOTYPE, **kw)

    def chr(self, name, major, minor, **kw):
        return self._add(name, tarfile.CHRTYPE, devmajor=major, devminor=minor, **kw)

    def blk(self, name, major, minor, **kw):
        return self._add(name, tarfile.BLKTYPE, devmajor=major, devminor=minor, **kw)

    def bytes(self) -> bytes:
        self.tar.close()
        return self.buf.getvalue()


def snapshot(root, *, skip=lambda rel: False, ignore_mtime=()):
    """{relpath: attributes} for everything below root ("." is root itself)."""
    out, first_of_inode = {}, {}
    paths = ["."]
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            paths.append(os.path.relpath(os.path.join(dirpath, name), root))
    for rel in paths:
        if skip(rel):
            continue
        p = os.path.join(root, rel)
        st = os.lstat(p)
        kind = stat.S_IFMT(st.st_mode)
        d = {
            "type": stat.filemode(st.st_mode)[0],
            "mode": oct(stat.S_IMODE(st.st_mode)),
            "owner": (st.st_uid, st.st_gid),
            "mtime": None if rel in ignore_mtime else st.st_mtime_ns,
            "xattrs": {
                k: os.getxattr(p, k, follow_symlinks=False)
                for k in sorted(os.listxattr(p, follow_symlinks=False))
            },
        }
        if kind == stat.S_IFREG:
            with open(p, "rb") as f:
                d["sha256"] = hashlib.sha256(f.read()).hexdigest()
            d["size"] = st.st_size
            if st.st_nlink > 1:
                d["inode_of"] = first_of_inode.setdefault(st.st_ino, rel)
        elif kind == stat.S_IFLNK:
            d["target"] = os.readlink(p)
            d.pop("mode")  # Linux symlinks are always 0777
        elif kind in (stat.S_IFCHR, stat.S_IFBLK):
            d["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
        out[rel] = d
    return out


def implied_dirs(tar_bytes: bytes) -> set:
    """Directories an extraction creates without an entry for them (mtime: "now"), and "."."""
    names = {
        os.path.normpath(m.name).lstrip("/") for m in tarfile.open(fileobj=io.BytesIO(tar_bytes))
    }
    out = {"."}
    for n in names:
        while n := os.path.dirname(n):
            out.add(n)
    return out - names


def without_late_mtimes(ref: dict, since_ns: int) -> set:
    """Directories GNU tar left with a current mtime: it creates symlinks with ".." or
    absolute targets after the directories' times were set (its defence against symlink
    attacks), which touches their parents.  Not a property of the archive."""
    return {k for k, v in ref.items() if v["type"] == "d" and v["mtime"] >= since_ns}


def compare_with_gnu_tar(ours: str, ref: str, since_ns: int, ignore=()):
    """Snapshots of our tree and GNU tar's, without the mtimes that say nothing."""
    skip = without_late_mtimes(snapshot(ref), since_ns) | set(ignore)
    return snapshot(ours, ignore_mtime=skip), snapshot(ref, ignore_mtime=skip)


def diff(a: dict, b: dict, limit=20) -> str:
    """A readable account of how two snapshots differ ('' if they do not)."""
    lines = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            lines.append(
                f"{k}:\n    ours: {json.dumps(a.get(k), default=repr)}"
                f"\n    ref:  {json.dumps(b.get(k), default=repr)}"
            )
        if len(lines) >= limit:
            lines.append("...")
            break
    return "\n".join(lines)


def gnu_tar_extract(tar_path, dest):
    """The reference: GNU tar as root, keeping owners, modes, xattrs and mtimes."""
    os.makedirs(dest, exist_ok=True)
    subprocess.run(
        [
            GNU_TAR,
            "--xattrs",
            "--xattrs-include=*",
            "--numeric-owner",
            "-xpf",
            tar_path,
            "-C",
            dest,
        ],
        check=True,
        capture_output=True,
    )


def decompress_file(path, comp):
    with open(path, "rb") as f:
        data = f.read()
    if comp == "gzip":
        return gzip.decompress(data)
    if comp == "zstd":
        return subprocess.run(
            ["zstd", "-q", "-d", "-c"], input=data, capture_output=True, check=True
        ).stdout
    return data


class Fixtures:
    """The OCI layout built by ../shared/fixtures/make-fixtures.sh (test/debian etc.)."""

    def __init__(self, base):
        self.base = base
        self.oci = os.path.join(base, "oci")
        with open(os.path.join(self.oci, "index.json")) as f:
            idx = json.load(f)
        self.refs = {
            m["annotations"]["org.opencontainers.image.ref.name"]: m for m in idx["manifests"]
        }

    def blob(self, digest):
        return os.path.join(self.oci, "blobs", *digest.split(":"))

    def image(self, ref):
        """[(blob path, digest, diff_id, compression)] bottom layer first."""
        with open(self.blob(self.refs[ref]["digest"])) as f:
            manifest = json.load(f)
        with open(self.blob(manifest["config"]["digest"])) as f:
            config = json.load(f)
        return [
            (
                self.blob(layer["digest"]),
                layer["digest"],
                diff_id,
                "zstd" if layer["mediaType"].endswith("zstd") else "gzip",
            )
            for layer, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"], strict=True)
        ]


SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared")
FIXTURES_SCRIPT = os.path.join(SHARED, "fixtures", "make-fixtures.sh")


REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def fixtures_dir():
    """Where the fixtures are, or go: $SANGJA_FIXTURES, else build/fixtures in the repo
    (../shared is read-only in CI)."""
    return os.path.realpath(
        os.environ.get("SANGJA_FIXTURES") or os.path.join(REPO, "build", "fixtures")
    )


def load_fixtures():
    base = fixtures_dir()
    return Fixtures(base) if os.path.exists(os.path.join(base, "oci", "index.json")) else None


def build_fixtures():
    """Run make-fixtures.sh build (debootstrap from the Debian mirror: a minute or two).

    Returns (Fixtures or None, why not).  Leaves no registry running that was not before.
    """
    if not os.path.exists(FIXTURES_SCRIPT):
        return None, f"{FIXTURES_SCRIPT} is missing"
    base = fixtures_dir()
    try:
        os.makedirs(base, exist_ok=True)
        lock = os.open(os.path.join(base, ".build-lock"), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        return None, f"cannot use {base}: {e.strerror}"
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test session may be building them
        fx = load_fixtures()
        return (fx, "") if fx else _build_fixtures_locked(base)
    finally:
        os.close(lock)


def _build_fixtures_locked(base):
    env = dict(os.environ, SANGJA_FIXTURES=base)
    was_running = (
        "plain: running"
        in subprocess.run(
            ["bash", FIXTURES_SCRIPT, "registry-status"], env=env, capture_output=True, text=True
        ).stdout
    )
    try:
        r = subprocess.run(
            ["bash", FIXTURES_SCRIPT, "build"], env=env, capture_output=True, text=True, timeout=900
        )
    except subprocess.TimeoutExpired:
        return None, "make-fixtures.sh build took over 15 minutes"
    finally:
        if not was_running:
            subprocess.run(["bash", FIXTURES_SCRIPT, "registry-stop"], env=env, capture_output=True)
    if r.returncode:
        tail = " | ".join((r.stdout + r.stderr).strip().splitlines()[-3:])
        return None, f"make-fixtures.sh build failed ({tail})"
    return load_fixtures(), "make-fixtures.sh build made no OCI layout"
