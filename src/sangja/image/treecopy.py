"""Copying directory trees with everything a file system keeps: owners, modes, times,
extended attributes, hard links, symlinks, device nodes and fifos.

Two users: the `vfs` storage driver, which applies an image's unpacked layers one over the
other into a plain directory (`apply_layer`: overlayfs whiteouts and opaque directories
honoured, as the merged overlay would show them), and volumes, which are filled with the
content an image has where they are mounted (`copy_contents`, Docker's copy-up).

Every step is relative to a directory fd opened without following symlinks (`*at()` calls
with O_NOFOLLOW), so a symlink in the source is copied as a symlink and never followed,
and a name in the destination is never written through: an existing entry is removed
before its replacement is made.  The order of metadata is the extractor's: data, owner
(chown clears setuid bits and file capabilities), xattrs, mode, then times; a directory's
times are set once everything in it is made.
"""

from __future__ import annotations

import errno as _errno
import os
import stat as _stat

from sangja.errors import SangjaError

OPAQUE = "trusted.overlay.opaque"
MAX_DEPTH = 400  # two fds per level: stays below the usual limit of 1024 open files
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class CopyError(SangjaError):
    pass


class _Copier:
    def __init__(self, dst_root: int, layer: bool):
        self.dst_root = dst_root
        self.layer = layer
        self.links: dict[tuple[int, int], str] = {}  # (dev, ino) of a source -> its copy
        self.bytes = 0
        self.entries = 0

    # ---- one directory ------------------------------------------------------------------
    def tree(self, src: int, dst: int, rel: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise CopyError(f"{rel or '/'}: more than {MAX_DEPTH} directory levels", path=rel)
        with os.scandir(src) as it:
            entries = list(it)
        for e in entries:
            name = e.name
            path = f"{rel}/{name}" if rel else name
            try:
                st = e.stat(follow_symlinks=False)
                self.entry(src, dst, name, path, st, depth)
            except OSError as err:
                if isinstance(err, CopyError):
                    raise
                raise CopyError(f"copy {path}: {err.strerror}", errno=err.errno or 0,
                                path=path) from None  # fmt: skip
            self.entries += 1

    def entry(self, src: int, dst: int, name: str, path: str, st, depth: int) -> None:
        mode = st.st_mode
        if self.layer and _stat.S_ISCHR(mode) and st.st_rdev == 0:
            _remove(dst, name)  # a whiteout: the name is gone from here up
            return
        if _stat.S_ISDIR(mode):
            self.directory(src, dst, name, path, st, depth)
            return
        _remove(dst, name)
        if _stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self.links:
                os.link(self.links[key], name, src_dir_fd=self.dst_root, dst_dir_fd=dst,
                        follow_symlinks=False)  # fmt: skip
                return
            self.regular(src, dst, name, st)
            if st.st_nlink > 1:
                self.links[key] = path
            return
        if _stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
        elif _stat.S_ISCHR(mode) or _stat.S_ISBLK(mode) or _stat.S_ISFIFO(mode):
            os.mknod(name, _stat.S_IFMT(mode) | 0o600, st.st_rdev, dir_fd=dst)
        else:
            return  # a socket: it means nothing without its process (tar skips them too)
        os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
        _copy_xattrs(f"/proc/self/fd/{src}/{name}", f"/proc/self/fd/{dst}/{name}", follow=False)
        if not _stat.S_ISLNK(mode):
            os.chmod(name, _stat.S_IMODE(mode), dir_fd=dst)
        os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst, follow_symlinks=False)

    def directory(self, src: int, dst: int, name: str, path: str, st, depth: int) -> None:
        sfd = os.open(name, _DIR_FLAGS, dir_fd=src)
        try:
            try:
                dst_st = os.stat(name, dir_fd=dst, follow_symlinks=False)
            except FileNotFoundError:
                dst_st = None
            if dst_st is not None and not _stat.S_ISDIR(dst_st.st_mode):
                _remove(dst, name)
                dst_st = None
            if dst_st is None:
                os.mkdir(name, 0o700, dir_fd=dst)
            dfd = os.open(name, _DIR_FLAGS, dir_fd=dst)
            try:
                if dst_st is not None and self.layer and _has_opaque(sfd):
                    _empty(dfd)  # an opaque directory hides what the layers below had here
                self.tree(sfd, dfd, path, depth + 1)
                self.meta(sfd, dfd, st)
            finally:
                os.close(dfd)
        finally:
            os.close(sfd)

    def regular(self, src: int, dst: int, name: str, st) -> None:
        sfd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src)
        try:
            dfd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                          | os.O_CLOEXEC, 0o600, dir_fd=dst)  # fmt: skip
            try:
                self.bytes += _copy_data(sfd, dfd, st.st_size)
                self.meta(sfd, dfd, st)
            finally:
                os.close(dfd)
        finally:
            os.close(sfd)

    def meta(self, sfd: int, dfd: int, st) -> None:
        os.fchown(dfd, st.st_uid, st.st_gid)
        _copy_xattrs(sfd, dfd)
        os.fchmod(dfd, _stat.S_IMODE(st.st_mode))
        os.utime(dfd, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_data(sfd: int, dfd: int, size: int) -> int:
    done = 0
    try:
        while True:
            n = os.copy_file_range(sfd, dfd, 1 << 30)
            if n == 0:
                break
            done += n
        return done
    except OSError as e:
        if e.errno not in (_errno.EXDEV, _errno.EINVAL, _errno.ENOSYS, _errno.EOPNOTSUPP):
            raise
    while True:  # a file system without copy_file_range between these two
        n = os.sendfile(dfd, sfd, None, 1 << 30)
        if n == 0:
            return done
        done += n


def _copy_xattrs(src, dst, follow: bool = True) -> None:
    try:
        names = os.listxattr(src, follow_symlinks=follow)
    except OSError as e:
        if e.errno in (_errno.ENOTSUP, _errno.EPERM):
            return
        raise
    for n in names:
        if n.startswith("trusted.overlay."):
            continue  # overlayfs' own: a whiteout, an opaque mark (applied, never copied)
        try:
            os.setxattr(dst, n, os.getxattr(src, n, follow_symlinks=follow),
                        follow_symlinks=follow)  # fmt: skip
        except OSError as e:
            if e.errno == _errno.ENODATA:
                continue  # gone meanwhile
            # the destination cannot keep it: say so, never drop it quietly
            raise CopyError(f"extended attribute {n}: {e.strerror}", errno=e.errno) from None


def _has_opaque(fd: int) -> bool:
    try:
        return os.getxattr(fd, OPAQUE) == b"y"
    except OSError:
        return False


def _remove(dirfd: int, name: str) -> None:
    """Remove a name (a tree too) in dirfd; nothing there is fine."""
    try:
        st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if _stat.S_ISDIR(st.st_mode):
        fd = os.open(name, _DIR_FLAGS, dir_fd=dirfd)
        try:
            _empty(fd)
        finally:
            os.close(fd)
        os.rmdir(name, dir_fd=dirfd)
    else:
        os.unlink(name, dir_fd=dirfd)


def _empty(fd: int, depth: int = 0) -> None:
    """Remove everything in a directory, never leaving its file system (a mount point
    below is an error) and never following a symlink."""
    if depth > MAX_DEPTH:
        raise CopyError(f"more than {MAX_DEPTH} directory levels")
    dev = os.fstat(fd).st_dev
    with os.scandir(fd) as it:
        entries = list(it)
    for e in entries:
        st = e.stat(follow_symlinks=False)
        if _stat.S_ISDIR(st.st_mode):
            if st.st_dev != dev:
                raise CopyError(f"{e.name}: a mount point, not removed", errno=_errno.EBUSY)
            sub = os.open(e.name, _DIR_FLAGS, dir_fd=fd)
            try:
                os.fchmod(sub, 0o700)  # a read-only directory's entries can still go
                _empty(sub, depth + 1)
            finally:
                os.close(sub)
            os.rmdir(e.name, dir_fd=fd)
        else:
            os.unlink(e.name, dir_fd=fd)


def _open_dir(path: str) -> int:
    try:
        return os.open(path, _DIR_FLAGS)
    except OSError as e:
        raise CopyError(f"open {path}: {e.strerror}", errno=e.errno, path=path) from None


def copy_contents(src_fd: int, dst_fd: int, *, owner: bool = True) -> tuple[int, int]:
    """Copy what the directory `src_fd` holds into `dst_fd` (Docker's copy-up of an image
    directory into a new volume), and with `owner` the directory's own owner, mode and
    times onto `dst_fd`.  -> (entries, bytes)."""
    c = _Copier(dst_fd, layer=False)
    c.tree(src_fd, dst_fd, "", 0)
    if owner:
        c.meta(src_fd, dst_fd, os.fstat(src_fd))
    return c.entries, c.bytes


def apply_layer(layer: str, dst: str) -> tuple[int, int]:
    """Apply one unpacked layer (overlayfs form) over the tree in `dst`, as the merged
    overlay shows a layer above the ones below.  -> (entries, bytes)."""
    src_fd = _open_dir(layer)
    try:
        dst_fd = _open_dir(dst)
        try:
            c = _Copier(dst_fd, layer=True)
            c.tree(src_fd, dst_fd, "", 0)
            c.meta(src_fd, dst_fd, os.fstat(src_fd))
            return c.entries, c.bytes
        finally:
            os.close(dst_fd)
    finally:
        os.close(src_fd)


def remove_contents(path: str) -> None:
    """Empty a directory without crossing into a mount below it (an error instead)."""
    fd = _open_dir(path)
    try:
        _empty(fd)
    except OSError as e:
        if isinstance(e, CopyError):
            raise
        raise CopyError(f"remove {path}: {e.strerror}", errno=e.errno, path=path) from None
    finally:
        os.close(fd)


# ---- what a copied root changed (the vfs driver's `diff`) -----------------------------------

CHANGED, ADDED, DELETED = 0, 1, 2  # Docker's ContainerChanges kinds


def _is_whiteout(st) -> bool:
    return _stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _visible(layers: list[str], rel: str) -> list[str]:
    """Of `layers` (topmost first, those the parent shows), the ones whose directory `rel`
    shows in the image: down to one where it is opaque, stopping above one where it is a
    whiteout or not a directory."""
    visible = []
    for layer in layers:
        try:
            st = os.lstat(layer + rel)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if not _stat.S_ISDIR(st.st_mode):
            break
        visible.append(layer)
        try:
            if os.getxattr(layer + rel, OPAQUE, follow_symlinks=False) == b"y":
                break
        except OSError:
            pass
    return visible


def _children(visible: list[str], rel: str) -> dict:
    """name -> (stat, path) of the topmost entry of each name the image has in `rel`."""
    out: dict = {}
    hidden: set[str] = set()
    for layer in visible:
        try:
            names = os.listdir(layer + rel)
        except OSError:
            continue
        for n in names:
            if n in out or n in hidden:
                continue
            st = os.lstat(f"{layer}{rel}/{n}")
            if _is_whiteout(st):
                hidden.add(n)
            else:
                out[n] = (st, f"{layer}{rel}/{n}")
    return out


def _same(a, pa: str, b, pb: str) -> bool:
    if _stat.S_IFMT(a.st_mode) != _stat.S_IFMT(b.st_mode):
        return False
    if (a.st_mode, a.st_uid, a.st_gid, a.st_rdev) != (b.st_mode, b.st_uid, b.st_gid, b.st_rdev):
        return False
    if _stat.S_ISDIR(a.st_mode):
        return a.st_mtime_ns == b.st_mtime_ns
    if a.st_size != b.st_size or a.st_mtime_ns != b.st_mtime_ns:
        return False
    if _stat.S_ISLNK(a.st_mode):
        return os.readlink(pa) == os.readlink(pb)
    return True


def diff(layers: list[str], root: str) -> list[tuple[str, int]]:
    """[(path, kind)] of what `root` (a full copy of the layers, topmost first) changed,
    by path: Docker's naive diff (type, mode, owner, device, size, mtime, link target)."""
    out: list[tuple[str, int]] = []

    def added(rel: str):
        out.append((rel, ADDED))
        p = root + rel
        if os.path.isdir(p) and not os.path.islink(p):
            for n in sorted(os.listdir(p)):
                added(f"{rel}/{n}")

    def walk(rel: str, visible: list[str], depth: int):
        if depth > MAX_DEPTH:
            raise CopyError(f"{rel}: more than {MAX_DEPTH} directory levels", path=rel)
        image = _children(visible, rel)
        try:
            names = os.listdir(root + rel)
        except OSError:
            names = []
        for n in sorted(set(names) | set(image)):
            r = f"{rel}/{n}"
            if n not in image:
                added(r)
                continue
            if n not in names:
                out.append((r, DELETED))
                continue
            ist, ipath = image[n]
            st = os.lstat(root + r)
            if not _same(st, root + r, ist, ipath):
                out.append((r, CHANGED))
            if _stat.S_ISDIR(st.st_mode):
                if _stat.S_ISDIR(ist.st_mode):
                    walk(r, _visible(visible, r), depth + 1)
                else:
                    for c in sorted(os.listdir(root + r)):
                        added(f"{r}/{c}")

    walk("", _visible(list(layers), ""), 0)
    out.sort()
    return out


def changes_tree(layers: list[str], root: str, dest: str) -> None:
    """What `root` (a full copy of the layers, topmost first) changed, as overlayfs keeps
    it in an upper directory: at `dest` (new, on root's file system) the changed and added
    entries (files hard-linked: the same inode, no copy), their parent directories with
    root's metadata, and a whiteout (0/0 char device) for each deleted path. The layer
    writer takes it as it takes overlay's upper dir (commit of a vfs container). `root`
    must not change meanwhile (a paused or stopped container): it is read by path."""
    os.mkdir(dest, 0o755)
    made = {""}
    dirs = []

    def directory(rel: str) -> None:
        if rel in made:
            return
        directory(os.path.dirname(rel) if rel.count("/") > 1 else "")
        st = os.lstat(root + rel)
        os.mkdir(dest + rel, 0o700)
        os.chown(dest + rel, st.st_uid, st.st_gid)
        _copy_xattrs(root + rel, dest + rel, follow=False)
        dirs.append((rel, st))
        made.add(rel)

    for rel, kind in diff(layers, root):
        parent = os.path.dirname(rel) if rel.count("/") > 1 else ""
        directory(parent)
        if kind == DELETED:
            os.mknod(dest + rel, _stat.S_IFCHR | 0o600, os.makedev(0, 0))
            continue
        st = os.lstat(root + rel)
        if _stat.S_ISDIR(st.st_mode):
            directory(rel)
        elif _stat.S_ISREG(st.st_mode):
            os.link(root + rel, dest + rel, follow_symlinks=False)
        elif _stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(root + rel), dest + rel)
            os.lchown(dest + rel, st.st_uid, st.st_gid)
            _copy_xattrs(root + rel, dest + rel, follow=False)
        else:  # device, fifo, socket
            os.mknod(dest + rel, st.st_mode, st.st_rdev)
            os.chown(dest + rel, st.st_uid, st.st_gid)
            _copy_xattrs(root + rel, dest + rel, follow=False)
    for rel, st in reversed(dirs):  # deepest first: a child's entry changes no parent's times
        os.chmod(dest + rel, _stat.S_IMODE(st.st_mode))
        os.utime(dest + rel, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
