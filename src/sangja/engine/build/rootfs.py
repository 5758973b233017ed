"""Paths inside a root directory, resolved by the kernel as if that directory were `/`.

Every path a build step names (COPY's destination, a WORKDIR, a file read from another
stage or from the context) is opened with openat2(RESOLVE_IN_ROOT): a symlink in an
image or in the context, absolute or full of `..`, never leads outside its root.

    fd = open_in(root_fd, "etc/passwd", os.O_RDONLY)
    dfd = mkdir_all(root_fd, "app/data", uid=0, gid=0)      # an O_PATH|O_DIRECTORY fd
"""

from __future__ import annotations

import ctypes
import errno as _errno
import os
import struct

SYS_OPENAT2 = 437  # x86_64, aarch64, and every architecture since 5.6
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10

_libc = None


def _c():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    return _libc


def open_in(root_fd: int, path: str, flags: int, mode: int = 0) -> int:
    """openat2(root_fd, path, flags | O_CLOEXEC, RESOLVE_IN_ROOT).  Raises OSError."""
    rel = path.lstrip("/") or "."
    how = struct.pack("QQQ", flags | os.O_CLOEXEC, mode, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
    buf = ctypes.create_string_buffer(how, len(how))
    p = os.fsencode(rel)
    while True:
        fd = _c().syscall(SYS_OPENAT2, ctypes.c_int(root_fd), ctypes.c_char_p(p), buf,
                          ctypes.c_size_t(len(how)))  # fmt: skip
        if fd >= 0:
            return fd
        err = ctypes.get_errno()
        if err not in (_errno.EINTR, _errno.EAGAIN):
            raise OSError(err, os.strerror(err), path)


def clean(path: str) -> str:
    """A path in the root as /a/b (no ., .., //): lexical, as Go's path.Clean on '/'+p."""
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out:
                out.pop()
            continue
        out.append(part)
    return "/" + "/".join(out)


def split(path: str) -> tuple[str, str]:
    """clean(path) -> (parent, name); name '' for the root."""
    p = clean(path)
    if p == "/":
        return "/", ""
    parent, _, name = p.rpartition("/")
    return parent or "/", name


def lstat_in(root_fd: int, path: str):
    """os.stat_result of the entry itself (the last component not followed), or None."""
    parent, name = split(path)
    try:
        dfd = open_in(root_fd, parent, os.O_PATH | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        if not name:
            return os.fstat(dfd)
        return os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except OSError:
        return None
    finally:
        os.close(dfd)


def stat_in(root_fd: int, path: str):
    """os.stat_result with every symlink followed (inside the root), or None."""
    try:
        fd = open_in(root_fd, path, os.O_PATH)
    except OSError:
        return None
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def mkdir_all(root_fd: int, path: str, uid: int = 0, gid: int = 0, mode: int = 0o755,
              made: list | None = None) -> int:  # fmt: skip
    """`mkdir -p` inside the root; directories it makes get uid:gid and mode (existing
    ones are left as they are).  -> an O_PATH|O_DIRECTORY fd of the directory.
    made: appended the paths made (clean, absolute in the root)."""
    cur = "/"
    fd = open_in(root_fd, "/", os.O_PATH | os.O_DIRECTORY)
    try:
        for part in clean(path).split("/")[1:]:
            nxt = cur.rstrip("/") + "/" + part
            try:
                nfd = open_in(root_fd, nxt, os.O_PATH | os.O_DIRECTORY)
            except FileNotFoundError:
                # a dangling symlink is an error here, as mkdir -p would say
                st = None
                try:
                    st = os.stat(part, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    pass
                if st is not None:
                    raise OSError(_errno.ENOTDIR, "not a directory", nxt)
                os.mkdir(part, mode, dir_fd=fd)
                os.chown(part, uid, gid, dir_fd=fd, follow_symlinks=False)
                os.chmod(part, mode, dir_fd=fd)  # whatever the umask said
                if made is not None:
                    made.append(nxt)
                nfd = open_in(root_fd, nxt, os.O_PATH | os.O_DIRECTORY)
            os.close(fd)
            fd, cur = nfd, nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


# ---- users and groups of the root (COPY --chown, RUN's mounts) ------------------------------


def _read(root_fd: int, path: str) -> bytes:
    try:
        fd = open_in(root_fd, path, os.O_RDONLY)
    except OSError:
        return b""
    with os.fdopen(fd, "rb") as f:
        return f.read(4 << 20)


def _lookup(data: bytes, name: str) -> int | None:
    for line in data.decode("utf-8", "replace").splitlines():
        parts = line.split(":")
        if len(parts) >= 3 and parts[0] == name:
            try:
                return int(parts[2])
            except ValueError:
                return None
    return None


def chown_ids(root_fd: int, spec: str) -> tuple[int, int]:
    """--chown=USER[:GROUP] -> (uid, gid), names looked up in the root's /etc/passwd and
    /etc/group; without a group the gid is the uid (as Docker documents it)."""
    from sangja.errors import SangjaError

    user, sep, group = spec.partition(":")
    if not user or (sep and not group):
        raise SangjaError(f"invalid --chown {spec!r}: want USER[:GROUP]")

    def one(s: str, path: str, what: str) -> int:
        if s.isdigit():
            return int(s)
        n = _lookup(_read(root_fd, path), s)
        if n is None:
            raise SangjaError(f"unable to convert {what} {s!r} of --chown={spec}: no such"
                              f" {what} in the image's {path}")  # fmt: skip
        return n

    uid = one(user, "/etc/passwd", "user")
    gid = one(group, "/etc/group", "group") if group else uid
    return uid, gid
