"""A build's working directory: its overlay snapshots, RUN bundles, a tar context.

    <engine root>/build/lock            shared by running builds; `builder prune` takes it
                                        exclusively (cache mounts are not removed under a RUN)
    <engine root>/build/work/<id>/      one per build, flock'ed by it while it runs:
        lock                            the build's flock
        ctr-<container id>              a RUN container that may exist (content: --root),
                                        with its network on the default bridge
        snap-*/upper work merged        overlay snapshots (merged is mounted)

A build removes its directory when it ends, whatever the outcome.  A build killed with
-9 leaves it: the next build (or `builder prune`) finds its lock free, deletes the
containers it names (and tears their networks down: namespace, veth, rules, leases),
unmounts whatever is mounted below it and removes it.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import fcntl
import os
import secrets
import tempfile

from sangja.errors import SangjaError
from sangja.image.store import remove_tree

OVERLAY_OPTIONS = "redirect_dir=off,metacopy=off"


class Snapshot:
    """An overlay of layers (topmost first) with an upper dir of its own, mounted at
    `merged`; what a step writes lands in `upper`."""

    def __init__(self, ws: Workspace, lowers: list[str]):
        from sangja.image.snapshot import mount_overlay

        self.dir = tempfile.mkdtemp(prefix="snap-", dir=ws.dir)
        self.upper = os.path.join(self.dir, "upper")
        self.work = os.path.join(self.dir, "work")
        self.merged = os.path.join(self.dir, "merged")
        self.mounted = False
        os.mkdir(self.upper, 0o755)
        try:
            mount_overlay(lowers, self.upper, self.work, self.merged, extra=OVERLAY_OPTIONS)
        except BaseException:
            remove_tree(self.dir)
            raise
        self.mounted = True

    def unmount(self):
        if self.mounted:
            from sangja.image.snapshot import unmount

            unmount(self.merged)
            self.mounted = False

    def remove(self):
        self.unmount()
        remove_tree(self.dir)


class Workspace:
    def __init__(self, store):
        self.store = store
        base = os.path.join(store.root, "build")
        self.base = base
        os.makedirs(os.path.join(base, "work"), mode=0o700, exist_ok=True)
        self._shared = _lock(os.path.join(base, "lock"), fcntl.LOCK_SH)
        sweep(store, skip=None)
        self.id = secrets.token_hex(6)
        # made under a hidden name, locked, then renamed: a sweep never sees it unlocked
        hidden = os.path.join(base, "work", "." + self.id)
        os.mkdir(hidden, 0o700)
        self._lock = _lock(os.path.join(hidden, "lock"), fcntl.LOCK_EX)
        self.dir = os.path.join(base, "work", self.id)
        os.rename(hidden, self.dir)

    def snapshot(self, lowers: list[str]) -> Snapshot:
        return Snapshot(self, lowers)

    def subdir(self, prefix: str) -> str:
        return tempfile.mkdtemp(prefix=prefix, dir=self.dir)

    def note_container(self, cid: str, runtime_root: str) -> str:
        path = os.path.join(self.dir, f"ctr-{cid}")
        with open(path, "w") as f:
            f.write(runtime_root)
        return path

    def close(self):
        if self.dir:
            _clean(self.dir, self.store)
            self.dir = None
        for fd in (self._lock, self._shared):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._lock = self._shared = -1


def _lock(path: str, how: int) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, how)
    except BaseException:
        os.close(fd)
        raise
    return fd


def exclusive(store):
    """For `builder prune`: waits until no build runs, then holds them off."""

    @contextlib.contextmanager
    def held():
        base = os.path.join(store.root, "build")
        os.makedirs(base, mode=0o700, exist_ok=True)
        fd = _lock(os.path.join(base, "lock"), fcntl.LOCK_EX)
        try:
            sweep(store, skip=None)
            yield
        finally:
            os.close(fd)

    return held()


def _mounts_under(path: str) -> list[str]:
    out = []
    with contextlib.suppress(OSError), open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == path or mp.startswith(path + "/"):
                out.append(mp)
    return sorted(out, key=len, reverse=True)


def _clean(d: str, store=None) -> None:
    """Delete the containers a build dir names (their networks torn down), unmount what
    is below it, remove it."""
    from sangja.image.snapshot import unmount

    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(d):
            if name.startswith("ctr-"):
                try:
                    with open(os.path.join(d, name)) as f:
                        root = f.read().strip()
                except OSError:
                    continue
                from sangja.runtime.container import Runtime

                with contextlib.suppress(SangjaError, OSError):
                    Runtime(root=root).delete(name[4:], force=True)
                if store is not None:
                    from sangja.engine import containernet

                    with contextlib.suppress(SangjaError, OSError):
                        containernet.step_end(store, root, name[4:])
    for mp in _mounts_under(d):
        with contextlib.suppress(SangjaError):
            unmount(mp)
    remove_tree(d)


def _release_holds(store, build_id: str) -> None:
    """The base images a killed build held (holds `build-<id>-N`)."""
    with contextlib.suppress(Exception), store.transaction() as db:
        db.execute("DELETE FROM holds WHERE holder LIKE ?", (f"build-{build_id}-%",))


def sweep(store, skip=None) -> int:
    """Remove what killed builds left.  -> the number of build dirs removed."""
    work = os.path.join(store.root, "build", "work")
    n = 0
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(work):
            d = os.path.join(work, name)
            if d == skip:
                continue
            if name.startswith("."):
                # a build killed before it renamed its dir (that takes microseconds)
                with contextlib.suppress(OSError):
                    import time

                    if time.time() - os.stat(d).st_mtime > 60:
                        _clean(d, store)
                continue
            try:
                fd = os.open(os.path.join(d, "lock"), os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:
                _clean(d, store)  # killed before it took its lock
                n += 1
                continue
            except OSError as e:
                if e.errno == _errno.ENOTDIR:
                    remove_tree(d)
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a build that runs
                _clean(d, store)
                _release_holds(store, name)
                n += 1
            finally:
                os.close(fd)
    return n
