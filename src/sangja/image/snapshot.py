"""A container's root file system, made by one of two storage drivers.

`overlay` (the default): an overlay of an image's unpacked layers (read-only, shared) with
the container's own upper and work directories, mounted while the container runs.

    mount -t overlay overlay -o lowerdir=L3:L2:L1,upperdir=U,workdir=W,index=off TARGET

Lower dirs are `layers/<chain id>` (topmost first); the extractor already wrote whiteouts
and opaque directories the way overlayfs reads them.  A lowerdir list longer than a mount
option page is given relative to the layers directory (the mount is made from there).

`vfs`: a full copy of the layers into the container's `rootfs/`, made once when the
container is created (image/treecopy.py applies the layers bottom-up, whiteouts and opaque
directories honoured), for file systems overlayfs cannot use as its upper layer (overlay on
overlay, some network file systems).  Nothing is mounted; creating costs a copy of the
image and its disk space.  `driver()` picks one: `--storage-driver` / SANGJA_STORAGE_DRIVER,
else the config file's `storage-driver`, else overlay when an overlay can be mounted under
the engine root, and vfs with a warning when it cannot.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import os
import stat as _stat

from sangja.errors import SangjaError

MS_NOSUID = 0x2
MS_NODEV = 0x4
MNT_DETACH = 0x2
OPTION_MAX = 4000  # a mount option string must fit a page


def _mount(source: bytes | None, target: bytes, fstype: bytes | None, flags: int,
           data: bytes | None) -> int:  # fmt: skip
    """mount(2) -> 0 or its errno (the native binding: ctypes costs more to import than a
    whole run's mounts)."""
    from sangja._native import launch

    try:
        launch.mount(source, target, fstype, flags, data)
    except OSError as e:
        return e.errno
    return 0


def _umount(target: str, detach: bool) -> int:
    """umount2(2) -> 0 or its errno."""
    from sangja._native import launch

    try:
        launch.umount(target, detach)
    except OSError as e:
        return e.errno
    return 0


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
        err = _mount(b"overlay", os.fsencode(target), b"overlay", MS_NODEV, opts.encode())
    finally:
        if cwd is not None:
            os.fchdir(cwd)
            os.close(cwd)
    if err != 0:
        raise SnapshotError(f"mount overlay on {target}: {os.strerror(err)}", errno=err)


def mount(source: str, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    """mount(2), for the local volume driver's `--opt type/device/o` volumes."""
    err = _mount(source.encode() if source else None, os.fsencode(target),
                 fstype.encode() if fstype else None, flags,
                 data.encode() if data else None)  # fmt: skip
    if err != 0:
        raise SnapshotError(f"mount {source} on {target}: {os.strerror(err)}", errno=err,
                            path=target)  # fmt: skip


def unmount(target: str) -> None:
    """Unmount (lazily if busy); nothing mounted there is not an error."""
    err = _umount(target, False)
    if err != 0:
        if err == _errno.EBUSY:
            err = _umount(target, True)
        if err != 0 and err not in (_errno.EINVAL, _errno.ENOENT):
            raise SnapshotError(f"unmount {target}: {os.strerror(err)}", errno=err)


def is_mounted(target: str) -> bool:
    target = os.path.realpath(target)
    with contextlib.suppress(OSError), open("/proc/self/mountinfo") as f:
        for line in f:
            if line.split()[4] == target:
                return True
    return False


# ---- reading files of the image safely --------------------------------------------------


def open_in_root(root: str, path: str, limit: int = 40, directory: bool = False) -> int:
    """open(path) as if `root` were /: symlinks (absolute or with ..) never leave root.

    -> an O_RDONLY fd of a regular file (with `directory`: of a directory).
    Raises FileNotFoundError, OSError."""
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
            if parts or (directory and _stat.S_ISDIR(st.st_mode)):
                fd = os.open(name, flags | os.O_DIRECTORY, dir_fd=cur)
                stack.append(fd)
            else:
                if directory:
                    raise OSError(_errno.ENOTDIR, "not a directory", path)
                if not _stat.S_ISREG(st.st_mode):
                    raise OSError(_errno.EINVAL, "not a regular file", path)
                return os.open(name, flags, dir_fd=cur)
        if directory:
            return stack.pop() if stack else os.dup(rootfd)
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


# ---- storage drivers -------------------------------------------------------------------
#
# One small interface, on a container directory `cdir` holding upper/ work/ rootfs/:
#   create(lowers, cdir)   make the container's root (lowers: topmost first)
#   mount(lowers, cdir)    -> the rootfs path, ready for the runtime
#   unmount(cdir)          undo mount (idempotent)
#   changes(cdir)          the directory holding the container's own files (df, diff)


class Overlay:
    name = "overlay"

    def create(self, lowers: list[str], cdir: str) -> None:
        for d in ("upper", "work", "rootfs"):
            os.makedirs(os.path.join(cdir, d), mode=0o755, exist_ok=True)

    def mount(self, lowers: list[str], cdir: str) -> str:
        rootfs = os.path.join(cdir, "rootfs")
        mount_overlay(lowers, os.path.join(cdir, "upper"), os.path.join(cdir, "work"), rootfs)
        return rootfs

    def unmount(self, cdir: str) -> None:
        unmount(os.path.join(cdir, "rootfs"))

    def changes(self, cdir: str) -> str:
        return os.path.join(cdir, "upper")


class Vfs:
    name = "vfs"

    def create(self, lowers: list[str], cdir: str) -> None:
        """Apply the layers bottom-up into rootfs.tmp, then rename it to rootfs: a create
        killed half-way leaves no rootfs that looks whole."""
        from sangja.image import treecopy

        rootfs = os.path.join(cdir, "rootfs")
        if os.path.isdir(rootfs) and os.listdir(rootfs):
            return
        tmp = rootfs + ".tmp"
        if os.path.lexists(tmp):
            treecopy.remove_contents(tmp)
            os.rmdir(tmp)
        os.makedirs(tmp, mode=0o755)
        try:
            for layer in reversed(lowers):
                treecopy.apply_layer(layer, tmp)
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(rootfs)  # the empty directory a caller may have made
            os.rename(tmp, rootfs)
        except BaseException:
            with contextlib.suppress(OSError, SangjaError):
                treecopy.remove_contents(tmp)
                os.rmdir(tmp)
            raise

    def mount(self, lowers: list[str], cdir: str) -> str:
        rootfs = os.path.join(cdir, "rootfs")
        if not os.path.isdir(rootfs) or os.path.lexists(rootfs + ".tmp"):
            self.create(lowers, cdir)  # a create that was killed: made again
        return rootfs

    def unmount(self, cdir: str) -> None:
        return None

    def changes(self, cdir: str) -> str:
        return os.path.join(cdir, "rootfs")


DRIVERS = {"overlay": Overlay, "overlay2": Overlay, "vfs": Vfs}
_probed: dict[str, str | None] = {}


def requested_driver() -> str | None:
    """What the user asked for: SANGJA_STORAGE_DRIVER (the CLI's --storage-driver sets it),
    else the config file's storage-driver; None to let the host decide."""
    name = os.environ.get("SANGJA_STORAGE_DRIVER")
    if not name:
        from sangja import settings

        name = settings.get("storage-driver")
    if name and name not in DRIVERS:
        raise SnapshotError(f"unknown storage driver {name!r} (want overlay or vfs)")
    return name or None


def driver(root: str, name: str | None = None):
    """-> (driver, warning or None).  `name`: a container's recorded driver, which wins
    (its root was made by it)."""
    name = name or requested_driver()
    if name:
        if DRIVERS[name] is Overlay:
            why = overlay_unsupported(root)
            if why:
                raise SnapshotError(f"storage driver overlay cannot be used on {root}: {why}")
        return DRIVERS[name](), None
    why = overlay_unsupported(root)
    if why is None:
        return Overlay(), None
    return Vfs(), (f"overlay cannot be mounted on {root} ({why}): using the vfs storage"
                   " driver (a full copy of the image per container)")  # fmt: skip


PROBE_FILE = "overlay-works"


def _probe_key(root: str) -> str:
    """What a success holds for: this file system (its device) in this boot (modules,
    kernel).  Another file system mounted at the root, or a reboot, probes again."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
    except OSError:
        boot = "?"
    return f"{os.stat(root).st_dev} {boot}"


def overlay_unsupported(root: str) -> str | None:
    """None if an overlay with its upper dir under `root` can be mounted, else why not.
    Tried for real (a small overlay, mounted and unmounted at once) and remembered for
    this process: overlay on overlay, or on a file system without d_type, fails here.
    A success is also kept in `<root>/overlay-works` for the same device and boot, so each
    command does not pay a mount and an unmount (~10 ms); a failure is tried again."""
    root = os.path.abspath(root)
    if root in _probed:
        return _probed[root]
    os.makedirs(root, mode=0o700, exist_ok=True)
    key = _probe_key(root)
    try:
        with open(os.path.join(root, PROBE_FILE)) as f:
            if f.read().strip() == key:
                _probed[root] = None
                return None
    except OSError:
        pass
    _clean_probes(root)
    import secrets

    base = os.path.join(root, f".overlay-probe-{os.getpid()}-{secrets.token_hex(4)}")
    why = None
    try:
        for d in ("lower", "upper", "work", "merged"):
            os.makedirs(os.path.join(base, d))
        try:
            mount_overlay([os.path.join(base, "lower")], os.path.join(base, "upper"),
                          os.path.join(base, "work"), os.path.join(base, "merged"))  # fmt: skip
        except SnapshotError as e:
            why = os.strerror(e.errno) if e.errno else str(e)
        else:
            unmount(os.path.join(base, "merged"))
    finally:
        from sangja.image import treecopy

        with contextlib.suppress(OSError, SangjaError):
            treecopy.remove_contents(base)
            os.rmdir(base)
    _probed[root] = why
    if why is None:
        with contextlib.suppress(OSError):  # only a cache: a failure to write it is harmless
            tmp = os.path.join(root, f".{PROBE_FILE}.{os.getpid()}")
            with open(tmp, "w") as f:
                f.write(key + "\n")
            os.rename(tmp, os.path.join(root, PROBE_FILE))
    return why


def _clean_probes(root: str) -> None:
    """A probe whose process was killed between mount and unmount: undo it."""
    from sangja.image import treecopy

    for n in os.listdir(root):
        if n.startswith(f".{PROBE_FILE}."):  # a write of the cache killed before its rename
            pid = n.rpartition(".")[2]
            if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(root, n))
            continue
        if not n.startswith(".overlay-probe-"):
            continue
        pid = n.split("-")[2]
        if pid.isdigit() and os.path.exists(f"/proc/{pid}"):
            continue
        p = os.path.join(root, n)
        with contextlib.suppress(OSError, SangjaError):
            unmount(os.path.join(p, "merged"))
            treecopy.remove_contents(p)
            os.rmdir(p)


# statfs f_type names as Docker's `info` prints them (Backing Filesystem)
_FS_NAMES = {"ext2": "extfs", "ext3": "extfs", "ext4": "extfs", "overlay": "overlayfs"}


def backing_filesystem(path: str) -> str:
    """The file system `path` lives on, by Docker's names ('extfs', 'xfs', 'tmpfs', ...)."""
    path = os.path.realpath(path)
    best, fstype = "", "unknown"
    with contextlib.suppress(OSError), open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mp = fields[4].replace("\\040", " ")
            sep = fields.index("-")
            if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best):
                best, fstype = mp, fields[sep + 1]
    return _FS_NAMES.get(fstype, fstype)
