"""A container's files: `diff` (the changes in its writable layer) and `cp` (tar archives of
a path in and out, with Docker's copy semantics).

Paths inside the container are never resolved by hand on the host: the work on the
container's side runs in a child process that stands in the container's root, so every
symlink and `..` resolves inside it, whatever the container (running, and writing its
files meanwhile) holds there.  For a running container the child joins its mount
namespace (its tmpfs and, later, volume mounts are seen as the container sees them); for
a stopped one it chroots into the container's overlay, mounted for the time of the copy.
On the host, a directory is extracted by a child chrooted into the target directory, so a
hostile archive (a symlink, then a file through it) cannot write outside it.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import stat
import tarfile

from sangja.engine.errors import EngineError, InvalidArgument, NotFoundError

# The children that work in a container's root can import nothing once there: what they
# use is imported here, before they are forked.
from sangja.engine.units import rfc3339_nano

CLONE_NEWNS = 0x00020000
KIND_MODIFY, KIND_ADD, KIND_DELETE = 0, 1, 2


# ---- diff ----------------------------------------------------------------------------------


def _whiteout(st) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False


def _in_lowers(lowers: list[str], rel: str) -> bool:
    from sangja.engine.ocispec import _lookup

    return _lookup(lowers, rel) is not None


def changes(upper: str, lowers: list[str]) -> list[dict]:
    """ContainerChanges: [{"Path", "Kind"}] (0 changed, 1 added, 2 deleted), by path, from
    the overlay's upper directory: a whiteout is a deletion, an entry the image has is a
    change, any other an addition; an opaque directory also deletes what the image had in
    it."""
    out = []

    def walk(d: str, rel: str):
        try:
            names = sorted(os.listdir(d))
        except OSError:
            return
        for n in names:
            p = os.path.join(d, n)
            r = f"{rel}/{n}"
            st = os.lstat(p)
            if _whiteout(st):
                out.append({"Path": r, "Kind": KIND_DELETE})
                continue
            existed = _in_lowers(lowers, r)
            out.append({"Path": r, "Kind": KIND_MODIFY if existed else KIND_ADD})
            if stat.S_ISDIR(st.st_mode):
                if existed and _opaque(p):
                    for gone in _lower_children(lowers, r):
                        if not os.path.lexists(os.path.join(p, gone)):
                            out.append({"Path": f"{r}/{gone}", "Kind": KIND_DELETE})
                walk(p, r)

    walk(upper, "")
    out.sort(key=lambda c: c["Path"])
    return out


def _lower_children(lowers: list[str], rel: str) -> set[str]:
    names: set[str] = set()
    for layer in lowers:
        d = layer + rel
        with contextlib.suppress(OSError):
            for n in os.listdir(d):
                if not _whiteout(os.lstat(os.path.join(d, n))):
                    names.add(n)
        if _opaque(d):
            break
    return names


# ---- entering the container's root --------------------------------------------------------


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNS) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"setns: {os.strerror(e)}")


def _child(enter, work) -> int:
    """fork; the child calls enter() (into the container's root) then work(); its error
    travels back on a pipe.  -> the pid; `errors(pid, fd)` collects the outcome."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: only what it needs, then _exit
        os.close(r)
        code = 0
        try:
            enter()
            work()
        except BaseException as e:  # noqa: BLE001 (reported to the parent)
            msg = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            if isinstance(e, OSError) and e.filename:
                msg = f"{e.filename}: {msg}"
            os.write(w, (type(e).__name__ + "\n" + msg).encode(errors="replace")[:4000])
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    return pid, r


def _collect(pid: int, r: int) -> None:
    msg = b""
    while b := os.read(r, 4096):
        msg += b
    os.close(r)
    os.waitpid(pid, 0)
    if msg:
        kind, _, text = msg.decode(errors="replace").partition("\n")
        if kind in ("FileNotFoundError", "NotFoundError"):
            raise NotFoundError(text)
        raise EngineError(text)


class Root:
    """Where the container's files are: its mount namespace (running) or its overlay,
    mounted for the time we need it (stopped; the caller holds the container's lock)."""

    def __init__(self, containers, rec):
        self.cs, self.rec = containers, rec
        self.nsfd = None
        self.mounted = False
        self.paths = containers.paths(rec.id)

    def __enter__(self):
        from sangja.image.snapshot import is_mounted

        if self.rec.state in ("running", "paused"):
            self.nsfd = _mount_ns(self.cs.runtime_root, self.rec.id)
        if self.nsfd is None and not is_mounted(self.paths.rootfs):
            drv = self.cs.storage(self.rec.id)  # vfs: the root is a directory, never mounted
            drv.mount([self.paths.init] + self.cs._image_lowers(self.rec.image), self.paths.dir)
            self.mounted = drv.name != "vfs"
        return self

    def enter(self):
        """In the child: stand in the container's root."""
        if self.nsfd is not None:
            _setns(self.nsfd)
        else:
            os.chroot(self.paths.rootfs)
        os.chdir("/")

    def __exit__(self, *exc):
        if self.nsfd is not None:
            os.close(self.nsfd)
        if self.mounted:
            from sangja.image.snapshot import unmount

            unmount(self.paths.rootfs)


def _mount_ns(runtime_root: str, cid: str) -> int | None:
    """An fd of the container init's mount namespace (checked against pid reuse)."""
    from sangja.runtime.state import peek, proc_start_time

    try:
        state = peek(runtime_root, cid)[0]
        pid = state["pid"]
        fd = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if proc_start_time(pid) != state.get("pid_start"):
        os.close(fd)
        return None
    return fd


# ---- stat, get and put ----------------------------------------------------------------------


def _go_mode(st) -> int:
    """os.FileMode as Docker's PathStat carries it."""
    m = stat.S_IMODE(st.st_mode) & 0o777
    if stat.S_ISDIR(st.st_mode):
        m |= 1 << 31
    elif stat.S_ISLNK(st.st_mode):
        m |= 1 << 27
    elif stat.S_ISFIFO(st.st_mode):
        m |= 1 << 25
    elif stat.S_ISSOCK(st.st_mode):
        m |= 1 << 24
    elif stat.S_ISCHR(st.st_mode):
        m |= (1 << 26) | (1 << 21)
    elif stat.S_ISBLK(st.st_mode):
        m |= 1 << 26
    if st.st_mode & stat.S_ISUID:
        m |= 1 << 23
    if st.st_mode & stat.S_ISGID:
        m |= 1 << 22
    if st.st_mode & stat.S_ISVTX:
        m |= 1 << 20
    return m


def _stat_in(path: str, follow: bool) -> dict:
    st = os.stat(path) if follow else os.lstat(path)
    link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""
    return {"name": os.path.basename(path.rstrip("/")) or "/", "size": st.st_size,
            "mode": _go_mode(st), "mtime": rfc3339_nano(st.st_mtime),
            "linkTarget": link, "_dir": stat.S_ISDIR(st.st_mode)}  # fmt: skip


def stat_path(containers, rec, path: str) -> dict:
    """ContainerArchiveInfo: the PathStat of `path` in the container (a symlink itself)."""
    if not path.startswith("/"):
        path = "/" + path
    r, w = os.pipe()

    def work():
        os.write(w, json.dumps(_stat_in(path, follow=False)).encode())

    with Root(containers, rec) as root:
        pid, errfd = _child(root.enter, work)
        os.close(w)
        data = b""
        while b := os.read(r, 65536):
            data += b
        os.close(r)
        _collect(pid, errfd)
    return json.loads(data)


def _resolve_src(path: str, follow: bool) -> tuple[str, bool]:
    """Docker's reading of a source path: a trailing '/.' means "the contents", a trailing
    '/' (or -L) follows a symlink."""
    contents = path.endswith("/.") or path == "."
    follow = follow or path.endswith("/") or contents
    return path, follow


def get_archive(containers, rec, path: str, follow: bool = False, out=None) -> dict:
    """A tar of `path` in the container, its top entry named after the path's last
    component (Docker's GET /containers/ID/archive), written to the binary file `out`.
    -> its PathStat."""
    if not path.startswith("/"):
        path = "/" + path
    path, follow = _resolve_src(path, follow)
    r, w = os.pipe()
    sr, sw = os.pipe()

    def work():
        os.close(r)
        os.close(sr)
        info = _stat_in(path, follow)
        os.write(sw, json.dumps(info).encode())
        os.close(sw)
        target = os.path.realpath(path) if follow else path
        name = info["name"] if not path.endswith("/.") else "."
        with os.fdopen(w, "wb") as f, tarfile.open(fileobj=f, mode="w|",
                                                   format=tarfile.PAX_FORMAT) as tar:  # fmt: skip
            tar.add(target, arcname=name, recursive=True)

    with Root(containers, rec) as root:
        pid, errfd = _child(root.enter, work)
        os.close(w)
        os.close(sw)
        meta = b""
        while b := os.read(sr, 65536):
            meta += b
        os.close(sr)
        try:
            if meta and out is not None:
                while b := os.read(r, 1 << 20):
                    out.write(b)
        finally:
            os.close(r)
            _collect(pid, errfd)
    info = json.loads(meta)
    info.pop("_dir", None)
    return info


def _extract(tar: tarfile.TarFile, keep_owner: bool, uid: int = 0, gid: int = 0) -> None:
    """Extract every member into the cwd (the child stands in its target)."""
    for m in tar:
        name = m.name.lstrip("/")
        if any(p == ".." for p in name.split("/")):
            raise InvalidArgument(f"archive entry {m.name!r} leaves the target")
        m.name = name or "."
        if not keep_owner:
            m.uid, m.gid, m.uname, m.gname = uid, gid, "", ""
        if m.name == "." and m.isdir():
            os.chmod(".", m.mode & 0o7777)
            if keep_owner:
                os.lchown(".", m.uid, m.gid)
            continue
        if m.isdir() and os.path.isdir(m.name) and not os.path.islink(m.name):
            os.chmod(m.name, m.mode & 0o7777)
            if keep_owner:
                os.lchown(m.name, m.uid, m.gid)
            continue
        if os.path.lexists(m.name) and not os.path.isdir(m.name):
            os.unlink(m.name)
        tar.extract(m, ".", set_attrs=True, numeric_owner=True)


def put_archive(containers, rec, path: str, stream, copy_uidgid: bool = False) -> None:
    """Extract a tar (a binary file `stream`) into the directory `path` of the container
    (Docker's PUT /containers/ID/archive).  Files belong to root unless `copy_uidgid`."""
    if not path.startswith("/"):
        path = "/" + path
    r, w = os.pipe()

    def work():
        os.close(w)
        st = os.stat(path)
        if not stat.S_ISDIR(st.st_mode):
            raise EngineError(f"extraction point is not a directory: {path}")
        os.chdir(path)
        with os.fdopen(r, "rb") as f, tarfile.open(fileobj=f, mode="r|*") as tar:
            _extract(tar, keep_owner=copy_uidgid)

    with Root(containers, rec) as root:
        pid, errfd = _child(root.enter, work)
        os.close(r)
        try:
            with contextlib.suppress(BrokenPipeError):
                while b := stream.read(1 << 20):
                    os.write(w, b)
        finally:
            os.close(w)
            _collect(pid, errfd)


# ---- docker cp ------------------------------------------------------------------------------


def copy_from(containers, rec, src: str, dest: str, archive: bool = False,
              follow: bool = False, stdout=None) -> None:  # fmt: skip
    """`cp CONTAINER:SRC DEST` with docker's semantics (DEST '-': the tar on stdout)."""
    if dest == "-":
        get_archive(containers, rec, src, follow, out=stdout)
        return
    contents = src.endswith("/.")
    dest_exists = os.path.lexists(dest)
    dest_dir = os.path.isdir(dest)
    if dest.endswith("/") and not dest_dir:
        raise EngineError(f"destination directory {dest!r} must exist")
    import tempfile

    with tempfile.TemporaryFile() as spool:
        st = get_archive(containers, rec, src, follow, out=spool)
        is_dir = bool(st["mode"] & (1 << 31))
        spool.seek(0)
        if is_dir:
            if dest_exists and not dest_dir:
                raise EngineError(f"cannot copy a directory to a file: {dest}")
            target = dest if (not dest_exists or contents) else os.path.join(
                dest, st["name"])  # fmt: skip
            os.makedirs(target, exist_ok=True)
            _host_extract(spool, target, strip=not contents, keep_owner=archive)
        else:
            target = os.path.join(dest, st["name"]) if dest_dir else dest
            parent = os.path.dirname(os.path.abspath(target)) or "/"
            _host_extract(spool, parent, strip=False, keep_owner=archive,
                          rename=(st["name"], os.path.basename(target)))  # fmt: skip


def _host_extract(spool, target: str, strip: bool, keep_owner: bool,
                  rename: tuple[str, str] | None = None) -> None:  # fmt: skip
    """Extract the archive into the host directory `target` from a child chrooted there;
    `strip`: drop the archive's top component (a directory copied as `target` itself);
    `rename`: the single top entry gets another name."""

    def work():
        with tarfile.open(fileobj=spool, mode="r:") as tar:
            members = []
            for m in tar.getmembers():
                if strip:
                    head, _, rest = m.name.partition("/")
                    m.name = rest or "."
                elif rename and m.name == rename[0]:
                    m.name = rename[1]
                members.append(m)
            tar.members = members
            _extract(_Replay(tar, members), keep_owner, os.getuid(), os.getgid())

    def enter():
        os.chroot(target)
        os.chdir("/")

    pid, errfd = _child(enter, work)
    _collect(pid, errfd)


class _Replay:
    """A TarFile that yields given members (renamed) and extracts through the original."""

    def __init__(self, tar, members):
        self.tar, self.members = tar, members

    def __iter__(self):
        return iter(self.members)

    def extract(self, m, path, set_attrs=True, numeric_owner=True):
        self.tar.extract(m, path, set_attrs=set_attrs, numeric_owner=numeric_owner)


def copy_to(containers, rec, src: str, dest: str, archive: bool = False,
            follow: bool = False, stdin=None) -> None:  # fmt: skip
    """`cp SRC CONTAINER:DEST` with docker's semantics (SRC '-': a tar on stdin, extracted
    into the directory DEST)."""
    if not dest.startswith("/"):
        dest = "/" + dest
    if src == "-":
        put_archive(containers, rec, dest, stdin, copy_uidgid=True)
        return
    contents = src.endswith("/.")
    follow = follow or src.endswith("/")
    try:
        st = os.stat(src) if follow else os.lstat(src)
    except OSError as e:
        raise EngineError(f"could not find the file {src} on the host: {e.strerror}")
    is_dir = stat.S_ISDIR(st.st_mode)
    try:
        dinfo = stat_path(containers, rec, dest)
    except NotFoundError:
        dinfo = None
    if dinfo is not None and dinfo["_dir"] is False and dinfo["linkTarget"]:
        try:  # a symlink to a directory counts as that directory
            dinfo = stat_path(containers, rec, dest.rstrip("/") + "/.")
        except (NotFoundError, EngineError):
            pass
    if dinfo is None:
        if dest.endswith("/"):
            raise EngineError(f"destination directory {dest!r} must exist")
        into, name = os.path.dirname(dest.rstrip("/")) or "/", os.path.basename(dest.rstrip("/"))
    elif dinfo["_dir"]:
        into, name = dest, os.path.basename(os.path.abspath(src))
        if contents:
            name = "."
    else:
        if is_dir:
            raise EngineError(f"cannot copy a directory to a file: {dest}")
        into, name = os.path.dirname(dest.rstrip("/")) or "/", os.path.basename(dest)
    r, w = os.pipe()
    srcpath = os.path.realpath(src) if follow else src.rstrip("/") if src != "/" else src
    if contents:
        srcpath = os.path.dirname(src) or "."

    def produce():
        with os.fdopen(w, "wb") as f, tarfile.open(fileobj=f, mode="w|",
                                                   format=tarfile.PAX_FORMAT) as tar:  # fmt: skip
            if contents:
                for n in sorted(os.listdir(srcpath)):
                    tar.add(os.path.join(srcpath, n), arcname=n)
            else:
                tar.add(srcpath, arcname=name)

    pid = os.fork()
    if pid == 0:
        os.close(r)
        code = 0
        try:
            produce()
        except BaseException:  # noqa: BLE001 (the reader sees a short archive)
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    try:
        with os.fdopen(r, "rb") as f:
            put_archive(containers, rec, into, f, copy_uidgid=archive)
    finally:
        _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise EngineError(f"cannot read {src} on the host")
