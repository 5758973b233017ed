"""COPY and ADD's file work: sources from a Tree (the context, another stage's or an
image's root) into a root file system being built (an overlay mount), and the digest of
the sources that the layer cache keys on.

Docker's semantics: a directory source copies its contents (not itself); a file goes to
DEST, or into DEST when DEST ends in `/` or is a directory; several sources need a
directory DEST that ends in `/`; missing directories of DEST are made (0755, owned by
the --chown ids or root); everything copied is owned by root (from the context) or keeps
its owner (--from), unless --chown; modes come from the source unless --chmod; mtimes,
xattrs (not overlayfs's own nor SELinux labels), hardlinks within one COPY, symlinks (as
links), devices and fifos are kept; sockets are skipped.  Every path of the destination
is resolved inside its root (rootfs.open_in) and every entry is made relative to a
directory fd with O_NOFOLLOW: nothing is written outside the root.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import hashlib
import os
import shutil
import stat as _stat

from sangja.engine.build import rootfs
from sangja.errors import SangjaError

_SKIP_XATTRS = ("security.selinux", "trusted.overlay.", "user.overlay.")


class CopyError(SangjaError):
    pass


class Options:
    """uid/gid: the owner of everything copied (None: the source's); mode: --chmod (None:
    the source's); dir_uid/dir_gid: the owner of directories made for DEST."""

    __slots__ = ("uid", "gid", "mode", "dir_uid", "dir_gid")

    def __init__(self, uid=None, gid=None, mode=None):
        self.uid, self.gid, self.mode = uid, gid, mode
        self.dir_uid = 0 if uid is None else uid
        self.dir_gid = 0 if gid is None else gid


def _xattrs(target, follow=True) -> list[tuple[str, bytes]]:
    try:
        names = os.listxattr(target, follow_symlinks=follow)
    except OSError:
        return []
    out = []
    for n in sorted(names):
        if n.startswith(_SKIP_XATTRS):
            continue
        with contextlib.suppress(OSError):
            out.append((n, os.getxattr(target, n, follow_symlinks=follow)))
    return out


# ---- the digest of the sources (the cache key's part for COPY/ADD) --------------------------

_content_cache: dict[tuple, str] = {}


def _file_sha(fd: int, st) -> str:
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    got = _content_cache.get(key)
    if got is not None:
        return got
    h = hashlib.sha256()
    while True:
        b = os.read(fd, 1 << 20)
        if not b:
            break
        h.update(b)
    got = h.hexdigest()
    _content_cache[key] = got
    return got


def digest_sources(tree, rels: list[str]) -> str:
    """sha256 over every entry the sources name: its path, type, mode, owner, size,
    link target, device, xattrs and content.  mtimes are left out, as Docker leaves
    them out: touching a file does not invalidate the cache, changing it does."""
    h = hashlib.sha256()
    for rel in rels:
        for e in tree.walk(rel):
            st = e.st
            path = rel if e.rel == "." else (e.rel if rel == "." else f"{rel}/{e.rel}")
            fmt = _stat.S_IFMT(st.st_mode)
            extra = ""
            if _stat.S_ISREG(st.st_mode):
                fd = tree.open_file(path)
                try:
                    extra = _file_sha(fd, st)
                    xa = _xattrs(fd)
                finally:
                    os.close(fd)
            else:
                xa = []
                if _stat.S_ISLNK(st.st_mode):
                    parent, name = rootfs.split(path)
                    dfd = rootfs.open_in(tree.fd, parent, os.O_PATH | os.O_DIRECTORY)
                    try:
                        extra = os.readlink(name, dir_fd=dfd)
                    finally:
                        os.close(dfd)
                elif _stat.S_ISCHR(st.st_mode) or _stat.S_ISBLK(st.st_mode):
                    extra = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
            h.update(f"{rel}\0{e.rel}\0{fmt:o}\0{st.st_mode & 0o7777:o}\0{st.st_uid}\0"
                     f"{st.st_gid}\0{st.st_size if fmt == _stat.S_IFREG else 0}\0{extra}\0"
                     .encode("utf-8", "surrogateescape"))  # fmt: skip
            for k, v in xa:
                h.update(k.encode() + b"=" + v + b"\0")
            h.update(b"\n")
    return h.hexdigest()


# ---- copying ----------------------------------------------------------------------------------


class _Copy:
    def __init__(self, tree, opts: Options):
        self.tree = tree
        self.o = opts
        self.links: dict[tuple[int, int], int] = {}  # (dev, ino) -> O_PATH fd of the copy
        self.entries = 0

    def close(self):
        for fd in self.links.values():
            os.close(fd)
        self.links.clear()

    def owner(self, st) -> tuple[int, int]:
        if self.o.uid is not None:
            return self.o.uid, self.o.gid
        return st.st_uid, st.st_gid

    def perm(self, st) -> int:
        return self.o.mode if self.o.mode is not None else st.st_mode & 0o7777

    def contents(self, src_dfd: int, src_rel: str, dst_dfd: int) -> None:
        """Copy what is in the source directory into the destination directory."""
        for name in sorted(os.listdir(src_dfd)):
            full = name if src_rel == "." else f"{src_rel}/{name}"
            try:
                st = os.stat(name, dir_fd=src_dfd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if self.tree.excluded(full) and not (
                _stat.S_ISDIR(st.st_mode) and self.tree.ignore.may_include_under(full)
            ):
                continue
            self.entry(src_dfd, name, st, dst_dfd, name, full)

    def entry(self, src_dfd, sname, st, dst_dfd, dname, full) -> None:
        self.entries += 1
        mode = st.st_mode
        uid, gid = self.owner(st)
        perm = self.perm(st)
        try:
            cur = os.stat(dname, dir_fd=dst_dfd, follow_symlinks=False)
        except FileNotFoundError:
            cur = None
        if _stat.S_ISDIR(mode):
            if cur is not None and not _stat.S_ISDIR(cur.st_mode):
                os.unlink(dname, dir_fd=dst_dfd)
                cur = None
            if cur is None:
                os.mkdir(dname, 0o700, dir_fd=dst_dfd)
            dfd = os.open(dname, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                          dir_fd=dst_dfd)  # fmt: skip
            try:
                sfd = os.open(sname, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                              dir_fd=src_dfd)  # fmt: skip
                try:
                    self.contents(sfd, full, dfd)
                    xa = _xattrs(sfd)
                finally:
                    os.close(sfd)
                self._meta_fd(dfd, uid, gid, perm, st, xa)
            finally:
                os.close(dfd)
            return
        if cur is not None:
            _remove(dst_dfd, dname, cur)
        if _stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self.links:
                os.link(f"/proc/self/fd/{self.links[key]}", dname, dst_dir_fd=dst_dfd)
                return
            sfd = os.open(sname, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src_dfd)
            try:
                dfd = os.open(dname, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW |
                              os.O_CLOEXEC, 0o600, dir_fd=dst_dfd)  # fmt: skip
                try:
                    copy_data(sfd, dfd, st.st_size)
                    self._meta_fd(dfd, uid, gid, perm, st, _xattrs(sfd))
                    if st.st_nlink > 1:
                        self.links[key] = os.open(f"/proc/self/fd/{dfd}", os.O_PATH | os.O_CLOEXEC)
                finally:
                    os.close(dfd)
            finally:
                os.close(sfd)
        elif _stat.S_ISLNK(mode):
            target = os.readlink(sname, dir_fd=src_dfd)
            os.symlink(target, dname, dir_fd=dst_dfd)
            os.chown(dname, uid, gid, dir_fd=dst_dfd, follow_symlinks=False)
            os.utime(dname, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_dfd,
                     follow_symlinks=False)  # fmt: skip
        elif _stat.S_ISCHR(mode) or _stat.S_ISBLK(mode) or _stat.S_ISFIFO(mode):
            os.mknod(dname, _stat.S_IFMT(mode) | 0o600, st.st_rdev, dir_fd=dst_dfd)
            os.chown(dname, uid, gid, dir_fd=dst_dfd, follow_symlinks=False)
            os.chmod(dname, perm, dir_fd=dst_dfd)
            os.utime(dname, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_dfd,
                     follow_symlinks=False)  # fmt: skip
        # sockets: a layer cannot carry them (tar has no type for them)

    @staticmethod
    def _meta_fd(fd, uid, gid, perm, st, xattrs):
        os.fchown(fd, uid, gid)
        os.fchmod(fd, perm)  # after chown, which clears setuid/setgid
        for k, v in xattrs:
            with contextlib.suppress(OSError):
                os.setxattr(fd, k, v)
        os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def _remove(dfd: int, name: str, st) -> None:
    if _stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dfd)
    else:
        os.unlink(name, dir_fd=dfd)


def copy_data(src: int, dst: int, size: int) -> None:
    left = size
    try:
        while left > 0:
            n = os.copy_file_range(src, dst, left)
            if n == 0:
                break
            left -= n
    except OSError as e:
        if e.errno not in (_errno.EXDEV, _errno.EINVAL, _errno.ENOSYS, _errno.EOPNOTSUPP):
            raise
        while True:
            b = os.read(src, 1 << 20)
            if not b:
                break
            os.write(dst, b)
    else:
        # the file grew or shrank meanwhile: copy what is there now, as it is
        while b := os.read(src, 1 << 20):
            os.write(dst, b)


def dest_is_dir(dest: str, nsources: int, dst_root_fd: int, cmd: str) -> bool:
    if dest.endswith("/") or dest.endswith("/.") or dest in (".", "/"):
        return True
    st = rootfs.stat_in(dst_root_fd, dest)
    if st is not None and _stat.S_ISDIR(st.st_mode):
        return True
    if nsources > 1:
        raise CopyError(f"When using {cmd} with more than one source file, the destination"
                        " must be a directory and end with a /")  # fmt: skip
    return False


def copy(tree, rels: list[str], dst_root_fd: int, dest: str, opts: Options,
         cmd: str = "COPY", as_dir: bool | None = None) -> int:  # fmt: skip
    """Copy the sources `rels` of `tree` to `dest` (absolute, in the root).  -> entries."""
    into = dest_is_dir(dest, len(rels), dst_root_fd, cmd) if as_dir is None else as_dir
    c = _Copy(tree, opts)
    try:
        for rel in rels:
            st = rootfs.stat_in(tree.fd, rel)
            if st is None:
                raise CopyError(f"{cmd} failed: {rel}: no such file")
            if _stat.S_ISDIR(st.st_mode):
                dfd_path = rootfs.mkdir_all(dst_root_fd, dest, opts.dir_uid, opts.dir_gid)
                try:
                    dfd = rootfs.open_in(dst_root_fd, dest, os.O_RDONLY | os.O_DIRECTORY)
                finally:
                    os.close(dfd_path)
                try:
                    sfd = tree.open_dir(rel)
                    try:
                        c.contents(sfd, rel, dfd)
                    finally:
                        os.close(sfd)
                finally:
                    os.close(dfd)
                continue
            name = rel.rsplit("/", 1)[-1] if rel != "." else ""
            if into:
                parent, dname = dest, name
            else:
                parent, dname = rootfs.split(dest)
            if not dname:
                raise CopyError(f"{cmd} failed: cannot copy {rel} to {dest}")
            pfd = rootfs.mkdir_all(dst_root_fd, parent, opts.dir_uid, opts.dir_gid)
            try:
                dfd = rootfs.open_in(dst_root_fd, parent, os.O_RDONLY | os.O_DIRECTORY)
            finally:
                os.close(pfd)
            try:
                _copy_top(c, tree, rel, dfd, dname)
            finally:
                os.close(dfd)
        return c.entries
    except OSError as e:
        where = f" {e.filename}" if e.filename else ""
        raise CopyError(f"{cmd} failed:{where} {e.strerror}", errno=e.errno or 0)
    finally:
        c.close()


def _copy_top(c: _Copy, tree, rel: str, dst_dfd: int, dname: str) -> None:
    """A source that is not a directory: resolved inside its tree (symlinks followed),
    then copied from its parent directory."""
    real = rootfs.open_in(tree.fd, rel, os.O_PATH)
    try:
        # the entry the path ends at, once every symlink is followed
        path = os.readlink(f"/proc/self/fd/{real}")
        root = os.readlink(f"/proc/self/fd/{tree.fd}")
    finally:
        os.close(real)
    inner = os.path.relpath(path, root)
    if inner.startswith(".."):
        raise CopyError(f"{rel}: outside its tree")
    parent, name = rootfs.split(inner)
    pfd = rootfs.open_in(tree.fd, parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        c.entry(pfd, name, st, dst_dfd, dname, rel)
    finally:
        os.close(pfd)


def write_file(dst_root_fd: int, dest: str, src_fd: int, size: int, mode: int, uid: int,
               gid: int, mtime_ns: int | None = None, dir_ids=(0, 0)) -> None:  # fmt: skip
    """One file (a heredoc, a download) at `dest` in the root."""
    parent, name = rootfs.split(dest)
    if not name:
        raise CopyError(f"cannot write a file at {dest}")
    pfd = rootfs.mkdir_all(dst_root_fd, parent, *dir_ids)
    os.close(pfd)
    dfd = rootfs.open_in(dst_root_fd, parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            cur = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            _remove(dfd, name, cur)
        except FileNotFoundError:
            pass
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=dfd)  # fmt: skip
        try:
            copy_data(src_fd, fd, size)
            os.fchown(fd, uid, gid)
            os.fchmod(fd, mode)
            if mtime_ns is not None:
                os.utime(fd, ns=(mtime_ns, mtime_ns))
        finally:
            os.close(fd)
    finally:
        os.close(dfd)
