"""The build context: a directory (read where it is) or a tar read from stdin (unpacked
with the layer extractor, confined, into a directory of the build's own), the Dockerfile,
and .dockerignore (or `<Dockerfile>.dockerignore` beside the Dockerfile, which wins).

Sources of COPY/ADD are named relative to the context root; `..` may not leave it
("forbidden path outside the build context"); wildcards (`*`, `?`, `[...]`) match paths as
Go's filepath.Match does; a path .dockerignore leaves out does not exist for COPY.  Every
path is opened inside the context root (rootfs.open_in): a symlink in the context never
reaches a file outside it.
"""

from __future__ import annotations

import errno as _errno
import os
import re
import stat as _stat

from sangja.engine.build import rootfs
from sangja.engine.build.ignore import Matcher
from sangja.errors import SangjaError

_WILD = re.compile(r"(?<!\\)[*?\[]")


class ContextError(SangjaError):
    pass


def has_wildcards(p: str) -> bool:
    return _WILD.search(p) is not None


def rel_clean(src: str) -> str:
    """A source as a clean relative path ('.' for the root); ../ beyond the root raises."""
    parts: list[str] = []
    for part in src.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts or parts[-1] == "..":
                if not src.startswith("/"):
                    raise ContextError(f"forbidden path outside the build context: {src} ()")
                continue  # /.. is /
            parts.pop()
            continue
        parts.append(part)
    return "/".join(parts) or "."


class Entry:
    """One path of a source: rel (in its root), st (lstat), and for a source's own top
    the name it gets at the destination."""

    __slots__ = ("rel", "st")

    def __init__(self, rel, st):
        self.rel, self.st = rel, st


class Tree:
    """A root directory that sources are read from: the context, or another stage's or
    image's root file system (mounted read-only by the caller).  ignore: the context's
    .dockerignore (None for roots of stages/images)."""

    def __init__(self, root: str, ignore: Matcher | None = None, label: str = "build context"):
        self.root = root
        self.ignore = ignore if ignore else None
        self.label = label
        self.fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def excluded(self, rel: str) -> bool:
        return self.ignore is not None and rel != "." and self.ignore.excluded(rel)

    # ---- resolving COPY sources ----------------------------------------------------------
    def sources(self, src: str, cmd: str = "COPY") -> list[str]:
        """The paths (relative) a source names: itself, or what its wildcards match."""
        rel = rel_clean(src)
        if has_wildcards(rel):
            return self._glob(rel, src, cmd)
        if self.excluded(rel) or rootfs.stat_in(self.fd, rel) is None:
            why = " or excluded by .dockerignore" if self.label == "build context" else ""
            msg = f"{cmd} failed: file not found in {self.label}{why}: stat {src}"
            msg += ": file does not exist"
            raise ContextError(msg, errno=_errno.ENOENT)
        return [rel]

    def _glob(self, pattern: str, src: str, cmd: str) -> list[str]:
        from sangja.engine.build.ignore import Pattern

        # match component by component, as filepath.Glob does
        parts = pattern.split("/")
        found = [""]
        for i, part in enumerate(parts):
            nxt = []
            last = i == len(parts) - 1
            for base in found:
                if not has_wildcards(part):
                    cand = f"{base}/{_unescape(part)}" if base else _unescape(part)
                    if rootfs.lstat_in(self.fd, cand) is not None:
                        nxt.append(cand)
                    continue
                pat = Pattern(part, False)
                for name in self._list(base or "."):
                    if pat.match(name):
                        nxt.append(f"{base}/{name}" if base else name)
            found = [p for p in nxt if last or _is_dir(self.fd, p)]
        found = sorted(p for p in found if not self.excluded(p))
        if not found:
            raise ContextError(f"{cmd} failed: no source files were specified ({src} matches"
                               f" nothing in the {self.label})", errno=_errno.ENOENT)  # fmt: skip
        return found

    def _list(self, rel: str) -> list[str]:
        try:
            fd = rootfs.open_in(self.fd, rel, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return []
        try:
            return sorted(os.listdir(fd))
        finally:
            os.close(fd)

    # ---- walking -------------------------------------------------------------------------
    def walk(self, rel: str):
        """Entry for `rel` (followed if it is a symlink: a source names what it points to)
        and, for a directory, everything under it that .dockerignore keeps, parents before
        children, names sorted.  Entry.rel is relative to `rel` ('.' for itself)."""
        st = rootfs.stat_in(self.fd, rel)
        if st is None:
            raise ContextError(f"file not found in {self.label}: {rel}", errno=_errno.ENOENT)
        yield Entry(".", st)
        if _stat.S_ISDIR(st.st_mode):
            fd = rootfs.open_in(self.fd, rel, os.O_RDONLY | os.O_DIRECTORY)
            try:
                yield from self._walk_dir(fd, "" if rel == "." else rel, "")
            finally:
                os.close(fd)

    def _walk_dir(self, dfd: int, base: str, sub: str):
        names = sorted(os.listdir(dfd))
        for name in names:
            full = f"{base}/{name}" if base else name
            rel = f"{sub}/{name}" if sub else name
            try:
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            isdir = _stat.S_ISDIR(st.st_mode)
            if self.excluded(full):
                if not (isdir and self.ignore.may_include_under(full)):
                    continue
                if not self._any_included(dfd, name, full):
                    continue
            yield Entry(rel, st)
            if isdir:
                cfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                              dir_fd=dfd)  # fmt: skip
                try:
                    yield from self._walk_dir(cfd, full, rel)
                finally:
                    os.close(cfd)

    def _any_included(self, dfd: int, name: str, full: str) -> bool:
        cfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        try:
            for e in self._walk_dir(cfd, full, ""):
                if not self.excluded(f"{full}/{e.rel}"):
                    return True
        finally:
            os.close(cfd)
        return False

    def open_dir(self, rel: str) -> int:
        """An O_RDONLY|O_DIRECTORY fd of a directory in the tree (followed inside it)."""
        return rootfs.open_in(self.fd, rel, os.O_RDONLY | os.O_DIRECTORY)

    def open_file(self, rel: str) -> int:
        return rootfs.open_in(self.fd, rel, os.O_RDONLY)


def _unescape(s: str) -> str:
    return re.sub(r"\\(.)", r"\1", s)


def _is_dir(root_fd: int, rel: str) -> bool:
    st = rootfs.stat_in(root_fd, rel)
    return st is not None and _stat.S_ISDIR(st.st_mode)


# ---- the context and its Dockerfile ---------------------------------------------------------


class Context:
    """What `sangja build` was given: the context tree, the Dockerfile's bytes and its
    name, the ignore rules."""

    def __init__(self, tree: Tree, dockerfile: bytes, dockerfile_name: str, own_dir: str | None):
        self.tree = tree
        self.dockerfile = dockerfile
        self.dockerfile_name = dockerfile_name
        self.own_dir = own_dir  # a directory the build made (a tar context): removed at close

    def close(self):
        self.tree.close()
        if self.own_dir:
            from sangja.image.store import remove_tree

            remove_tree(self.own_dir)
            self.own_dir = None


def _read_file(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise ContextError(f"{what} {path}: {e.strerror}", errno=e.errno or 0, path=path)


def _ignore_for(ctx_root: str, dockerfile_path: str | None) -> Matcher:
    """<Dockerfile>.dockerignore beside the Dockerfile, else <context>/.dockerignore."""
    candidates = []
    if dockerfile_path:
        candidates.append(dockerfile_path + ".dockerignore")
    candidates.append(os.path.join(ctx_root, ".dockerignore"))
    for c in candidates:
        try:
            with open(c, "rb") as f:
                return Matcher.parse(f.read())
        except FileNotFoundError:
            continue
        except OSError as e:
            raise ContextError(f"read {c}: {e.strerror}", errno=e.errno or 0)
    return Matcher([])


def from_dir(path: str, dockerfile: str | None, stdin=None) -> Context:
    """A directory context.  dockerfile: a path (relative to the current directory, as
    docker's -f), '-' for stdin, or None for <context>/Dockerfile."""
    root = os.path.abspath(path)
    if not os.path.isdir(root):
        raise ContextError(f"unable to prepare context: path {path!r} not found",
                           errno=_errno.ENOENT)  # fmt: skip
    if dockerfile == "-":
        data = (stdin or _stdin()).read()
        df_path = None
        name = "Dockerfile"
    else:
        if dockerfile is None:
            df_path = os.path.join(root, "Dockerfile")
            if not os.path.exists(df_path) and os.path.exists(os.path.join(root, "dockerfile")):
                df_path = os.path.join(root, "dockerfile")
        else:
            df_path = os.path.abspath(dockerfile)
        if not os.path.isfile(df_path):
            raise ContextError(f"unable to prepare context: the Dockerfile ({df_path}) cannot be"
                               " found", errno=_errno.ENOENT)  # fmt: skip
        data = _read_file(df_path, "Dockerfile")
        name = os.path.basename(df_path)
    tree = Tree(root, _ignore_for(root, df_path))
    return Context(tree, data, name, None)


def from_stdin(work_dir: str, dockerfile: str | None, stdin=None) -> Context:
    """`sangja build -`: a tar (plain, gzip, zstd, bzip2, xz) of the context on stdin, or
    a Dockerfile alone (then the context is empty)."""
    src = stdin or _stdin()
    head = src.read(512)
    from sangja.engine.build import archive

    os.makedirs(work_dir, mode=0o700)
    root = os.path.join(work_dir, "context")
    os.mkdir(root, 0o755)
    try:
        if archive.kind(head) is None:
            if dockerfile not in (None, "Dockerfile", "-"):
                raise ContextError("a Dockerfile on stdin has no context to read -f from")
            data = head + src.read()
            return Context(Tree(root, Matcher([])), data, "Dockerfile", work_dir)
        tar = os.path.join(work_dir, "context.tar")
        with open(tar, "wb") as out:
            out.write(head)
            while chunk := src.read(1 << 20):
                out.write(chunk)
        archive.unpack(tar, root)
        os.unlink(tar)
        rel = rel_clean(dockerfile or "Dockerfile")
        tree_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            try:
                fd = rootfs.open_in(tree_fd, rel, os.O_RDONLY)
            except OSError:
                raise ContextError(f"unable to prepare context: the Dockerfile ({rel}) is not in"
                                   " the context on stdin", errno=_errno.ENOENT)  # fmt: skip
            with os.fdopen(fd, "rb") as f:
                data = f.read()
            ign = b""
            for cand in (rel + ".dockerignore", ".dockerignore"):
                try:
                    ifd = rootfs.open_in(tree_fd, cand, os.O_RDONLY)
                except OSError:
                    continue
                with os.fdopen(ifd, "rb") as f:
                    ign = f.read()
                break
        finally:
            os.close(tree_fd)
        return Context(Tree(root, Matcher.parse(ign)), data, os.path.basename(rel), work_dir)
    except BaseException:
        from sangja.image.store import remove_tree

        remove_tree(work_dir)
        raise


def _stdin():
    import sys

    return sys.stdin.buffer
