"""A container's root file system: an overlay of an image's unpacked layers (read-only,
shared) with the container's own upper and work directories.

    mount -t overlay overlay -o lowerdir=L3:L2:L1,upperdir=U,workdir=W,index=off TARGET

Lower dirs are `layers/<chain id>` (topmost first); the extractor already wrote whiteouts
and opaque directories the way overlayfs reads them.  A lowerdir list longer than a mount
option page is given relative to the layers directory (the mount is made from there).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno as _errno
import os
import stat as _stat

from sangja.errors import SangjaError

MS_NOSUID = 0x2
MS_NODEV = 0x4
MNT_DETACH = 0x2
OPTION_MAX = 4000  # a mount option string must fit a page

_libc = None


def _c():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
        _libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    return _libc


class SnapshotError(SangjaError):
    pass


def mount_overlay(lowers: list[str], upper: str, work: str, target: str, extra: str = "") -> None:
    """lowers: topmost first.  An image without layers gets an empty lower dir.
    extra: more mount options (build: "redirect_dir=off,metacopy=off", so that its upper
    dirs can always be written as layers whatever the kernel's defaults)."""
    if not lowers:
        empty = os.path.join(os.path.dirname(upper), "empty")
        os.makedirs(empty, exist_ok=True)
        lowers = [empty]
    for d in (upper, work, target):
        os.makedirs(d, mode=0o755, exist_ok=True)
    for p in lowers + [upper, work]:
        if any(c in p for c in ",:\n"):
            raise SnapshotError(f"overlay: unusable path {p!r} (holds ',' or ':')")
    tail = f",{extra}" if extra else ""
    opts = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work},index=off{tail}"
    cwd = None
    if len(opts) > OPTION_MAX:
        base = os.path.dirname(lowers[0])
        if any(os.path.dirname(p) != base for p in lowers):
            raise SnapshotError(f"overlay: {len(lowers)} layers: the mount options are too long")
        short = ":".join(os.path.basename(p) for p in lowers)
        opts = f"lowerdir={short},upperdir={upper},workdir={work},index=off{tail}"
        if len(opts) > OPTION_MAX:
            raise SnapshotError(f"overlay: {len(lowers)} layers: the mount options are too long")
        cwd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        os.chdir(base)
    try:
        rc = _c().mount(b"overlay", os.fsencode(target), b"overlay", MS_NODEV,
                        opts.encode())  # fmt: skip
        err = ctypes.get_errno()
    finally:
        if cwd is not None:
            os.fchdir(cwd)
            os.close(cwd)
    if rc != 0:
        raise SnapshotError(f"mount overlay on {target}: {os.strerror(err)}", errno=err)


def unmount(target: str) -> None:
    """Unmount (lazily if busy); nothing mounted there is not an error."""
    rc = _c().umount2(os.fsencode(target), 0)
    if rc != 0:
        err = ctypes.get_errno()
        if err == _errno.EBUSY:
            rc = _c().umount2(os.fsencode(target), MNT_DETACH)
            err = ctypes.get_errno() if rc else 0
        if rc != 0 and err not in (_errno.EINVAL, _errno.ENOENT):
            raise SnapshotError(f"unmount {target}: {os.strerror(err)}", errno=err)


def is_mounted(target: str) -> bool:
    target = os.path.realpath(target)
    with contextlib.suppress(OSError), open("/proc/self/mountinfo") as f:
        for line in f:
            if line.split()[4] == target:
                return True
    return False


# ---- reading files of the image safely --------------------------------------------------


def open_in_root(root: str, path: str, limit: int = 40) -> int:
    """open(path) as if `root` were /: symlinks (absolute or with ..) never leave root.

    -> an O_RDONLY fd of a regular file.  Raises FileNotFoundError, OSError."""
    rootfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    fds = [rootfd]
    try:
        parts = [p for p in path.split("/") if p not in ("", ".")]
        stack: list[int] = []  # dir fds of the current path, below root
        hops = 0
        while parts:
            name = parts.pop(0)
            cur = stack[-1] if stack else rootfd
            if name == "..":
                if stack:
                    os.close(stack.pop())
                continue
            try:
                st = os.stat(name, dir_fd=cur, follow_symlinks=False)
            except FileNotFoundError:
                raise FileNotFoundError(_errno.ENOENT, "no such file", path)
            if _stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > limit:
                    raise OSError(_errno.ELOOP, "too many levels of symbolic links", path)
                target = os.readlink(name, dir_fd=cur)
                if target.startswith("/"):
                    while stack:
                        os.close(stack.pop())
                parts = [p for p in target.split("/") if p not in ("", ".")] + parts
                continue
            flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW
            if parts:
                fd = os.open(name, flags | os.O_DIRECTORY, dir_fd=cur)
                stack.append(fd)
            else:
                if not _stat.S_ISREG(st.st_mode):
                    raise OSError(_errno.EINVAL, "not a regular file", path)
                return os.open(name, flags, dir_fd=cur)
        raise OSError(_errno.EISDIR, "is a directory", path)
    finally:
        for fd in stack:
            os.close(fd)
        for fd in fds:
            os.close(fd)


def read_in_root(root: str, path: str, max_bytes: int = 4 << 20) -> bytes | None:
    """The file's bytes, or None if it does not exist (or is no regular file)."""
    try:
        fd = open_in_root(root, path)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        return f.read(max_bytes)
