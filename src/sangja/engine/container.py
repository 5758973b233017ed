"""Containers from images, first piece: `container run` in the foreground, `ls`, `rm`.

A container lives in `<engine root>/containers/<id>/`, which is also its bundle:
    config.json   made from the image config (sangja.image.runspec)
    rootfs/       the overlay mount: the image's layers + upper/ + work/
    upper/ work/  the container's own changes
    hostname hosts   bind-mounted over /etc/hostname and /etc/hosts
The container is run through the runtime's Python API (sangja.runtime.container.Runtime),
never through a subprocess of sangja.  Its row in `containers` (sangja.db) and a hold on
its image (the image store will not remove an image a container uses) are written first;
the overlay is unmounted when the process exits, and with --rm everything goes.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import json
import os
import secrets
import sys
import time
from dataclasses import dataclass, field

from sangja.errors import LaunchError, NotFound, SangjaError
from sangja.image.store import Store, remove_tree

SCHEMA = """
CREATE TABLE IF NOT EXISTS containers (
    id       TEXT PRIMARY KEY,
    name     TEXT UNIQUE NOT NULL,
    image    TEXT NOT NULL,      -- image id
    ref      TEXT NOT NULL,      -- as the user named it
    command  TEXT NOT NULL,      -- JSON args
    created  REAL NOT NULL,
    status   TEXT NOT NULL,      -- created | running | exited
    exit_code INTEGER
);
"""


_EXEC_CODES = {_errno.ENOENT: 127, _errno.EACCES: 126, _errno.ENOEXEC: 126}


class RunError(SangjaError):
    """docker run's convention: an error of the engine, not of the container."""

    exit_code = 125


@dataclass
class RunOptions:
    image: str
    command: list[str] = field(default_factory=list)
    rm: bool = False
    interactive: bool = False
    tty: bool = False
    env: list[str] = field(default_factory=list)
    workdir: str | None = None
    user: str | None = None
    name: str | None = None
    entrypoint: list[str] | None = None
    hostname: str | None = None
    platform: str | None = None
    pull: str = "missing"  # missing | always | never
    signature_policy: str | None = None  # content trust (sangja.image.trust)


class Containers:
    def __init__(self, store: Store | None = None, runtime_root: str = "/run/sangja", log=None):
        self.store = store or Store()
        self.runtime_root = runtime_root
        self.log = log
        self.dir = os.path.join(self.store.root, "containers")
        self._ready = False

    @property
    def db(self):
        db = self.store.db
        if not self._ready:
            db.executescript(SCHEMA)
            self._ready = True
        return db

    # ---- image ------------------------------------------------------------------------
    def _image(self, o: RunOptions) -> str:
        from sangja.image.store import ImageNotFound

        if o.pull == "always":
            return self._pull(o)
        try:
            image_id = self.store.resolve(o.image)
        except ImageNotFound:
            if o.pull == "never":
                raise RunError(f"no such image: {o.image}")
            sys.stderr.write(f"Unable to find image '{o.image}' locally\n")
            return self._pull(o)
        # content trust (issue 19): with trust on, the image under this name must be the
        # one its registry has signed for it; when the signed one is another, pull it
        # (pull verifies).  With trust off this returns True without reading anything.
        from sangja.image import trust

        if not trust.check_local(self.store, o.image, image_id, o.signature_policy):
            if o.pull == "never":
                raise RunError(f"image {o.image}: the local image is not the one signed for it")
            return self._pull(o)
        return image_id

    def _pull(self, o: RunOptions) -> str:
        from sangja.image.progress import Progress
        from sangja.image.pull import pull

        return pull(o.image, platform=o.platform, store=self.store, progress=Progress(sys.stderr),
                    signature_policy=o.signature_policy).image_id  # fmt: skip

    # ---- run --------------------------------------------------------------------------
    def run(self, o: RunOptions) -> int:
        if o.pull not in ("missing", "always", "never"):
            raise RunError(f"invalid pull policy {o.pull!r} (want missing, always or never)")
        try:
            image_id = self._image(o)
        except SangjaError as e:
            raise RunError(str(e), errno=e.errno)
        cid = secrets.token_hex(32)
        name = o.name or f"sangja_{cid[:12]}"
        _check_name(name)
        cdir = os.path.join(self.dir, cid)
        rootfs = os.path.join(cdir, "rootfs")
        mounted = False
        registered = False
        self.db  # noqa: B018 (the table exists before a transaction uses it)
        try:
            with self.store.transaction() as db:
                if db.execute("SELECT 1 FROM containers WHERE name=?", (name,)).fetchone():
                    raise RunError(f'the container name "{name}" is already in use')
                db.execute(
                    "INSERT INTO containers (id, name, image, ref, command, created, status)"
                    " VALUES (?,?,?,?,?,?,'created')",
                    (cid, name, image_id, o.image, json.dumps(o.command), time.time()),
                )
                if db.execute("SELECT 1 FROM images WHERE id=?", (image_id,)).fetchone() is None:
                    raise RunError(f"no such image: {o.image} (removed meanwhile)")
                db.execute("INSERT OR REPLACE INTO holds VALUES (?,?)", (cid, image_id))
            registered = True
            os.makedirs(cdir, mode=0o711)
            spec = self._prepare(o, image_id, cid, cdir, rootfs)
            mounted = True
            with open(os.path.join(cdir, "config.json"), "w") as f:
                json.dump(spec, f, indent="\t")
            self._set_status(cid, "running")
            from sangja.runtime.container import Runtime

            rt = Runtime(root=self.runtime_root, log=self.log)
            with _stdin_for(o):
                code = rt.run(cid, cdir)
            self._set_status(cid, "exited", code)
            return code
        except SangjaError as e:
            if registered and not o.rm:
                with contextlib.suppress(SangjaError):
                    self._set_status(cid, "created")
            if isinstance(e, RunError):
                raise
            err = RunError(str(e), errno=e.errno)
            if isinstance(e, LaunchError) and e.errno in _EXEC_CODES:
                err.exit_code = _EXEC_CODES[e.errno]  # docker run: 127 not found, 126 not runnable
            raise err
        finally:
            if mounted or os.path.isdir(rootfs):
                from sangja.image.snapshot import unmount

                with contextlib.suppress(SangjaError):
                    unmount(rootfs)
            if registered and (o.rm or not mounted):
                self._remove(cid, cdir)

    def _prepare(self, o: RunOptions, image_id: str, cid: str, cdir: str, rootfs: str) -> dict:
        from sangja.image import runspec
        from sangja.image.snapshot import mount_overlay

        layers = self.store.layers_of(image_id)
        lowers = [self.store.layer_path(ly.chain_id) for ly in reversed(layers)]
        mount_overlay(lowers, os.path.join(cdir, "upper"), os.path.join(cdir, "work"), rootfs)
        conf = self.store.config_of(image_id)
        hostname = o.hostname or cid[:12]
        spec = runspec.build(
            conf, rootfs, command=o.command, entrypoint=o.entrypoint, env=o.env,
            workdir=o.workdir, user=o.user, tty=o.tty, hostname=hostname,
        )  # fmt: skip
        # /etc/hostname and /etc/hosts of the container's own, as Docker gives them
        with open(os.path.join(cdir, "hostname"), "w") as f:
            f.write(hostname + "\n")
        with open(os.path.join(cdir, "hosts"), "w") as f:
            f.write(f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                    f"127.0.1.1\t{hostname}\n")  # fmt: skip
        for n in ("hostname", "hosts"):
            spec["mounts"].append({"destination": f"/etc/{n}", "type": "bind",
                                   "source": os.path.join(cdir, n),
                                   "options": ["rbind", "rprivate"]})  # fmt: skip
        spec["annotations"]["org.sangja.container.name"] = o.name or f"sangja_{cid[:12]}"
        spec["annotations"]["org.sangja.image.id"] = image_id
        return spec

    def _set_status(self, cid: str, status: str, code: int | None = None) -> None:
        with self.store.transaction() as db:
            db.execute(
                "UPDATE containers SET status=?, exit_code=? WHERE id=?", (status, code, cid)
            )

    def _remove(self, cid: str, cdir: str) -> None:
        from sangja.runtime.container import Runtime

        with contextlib.suppress(SangjaError):
            Runtime(root=self.runtime_root, log=self.log).delete(cid, force=True)
        from sangja.image.snapshot import unmount

        rootfs = os.path.join(cdir, "rootfs")
        if os.path.isdir(rootfs):
            unmount(rootfs)
        remove_tree(cdir)
        with self.store.transaction() as db:
            db.execute("DELETE FROM holds WHERE holder=?", (cid,))
            db.execute("DELETE FROM containers WHERE id=?", (cid,))

    # ---- ls / rm ----------------------------------------------------------------------
    def list(self) -> list[dict]:
        rows = self.db.execute(
            "SELECT id, name, image, ref, command, created, status, exit_code FROM containers"
            " ORDER BY created DESC"
        ).fetchall()
        keys = ("id", "name", "image", "ref", "command", "created", "status", "exit_code")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def find(self, s: str) -> dict:
        matches = [c for c in self.list() if s in (c["name"], c["id"]) or c["id"].startswith(s)]
        if not matches:
            raise NotFound(f"no such container: {s}")
        exact = [c for c in matches if s in (c["name"], c["id"])]
        if len(exact) == 1:
            return exact[0]
        if len(matches) > 1:
            raise SangjaError(f"ambiguous container id prefix {s!r}")
        return matches[0]

    def remove(self, s: str, force: bool = False) -> str:
        c = self.find(s)
        if c["status"] == "running" and not force:
            state = self._runtime_status(c["id"])
            if state in ("running", "paused", "created"):
                raise SangjaError(
                    f"cannot remove container {c['name']}: it is running (stop it, or use -f)"
                )
        self._remove(c["id"], os.path.join(self.dir, c["id"]))
        return c["name"]

    def _runtime_status(self, cid: str) -> str:
        from sangja.runtime.container import Runtime

        try:
            return Runtime(root=self.runtime_root).state(cid)["status"]
        except SangjaError:
            return "stopped"


def _check_name(name: str) -> None:
    import re

    if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", name) or len(name) > 128:
        raise RunError(
            f"invalid container name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )


@contextlib.contextmanager
def _stdin_for(o: RunOptions):
    """docker run's stdin: ours with -i; else /dev/null, or (with -t) a pipe that never
    delivers, so the terminal relay sends no end-of-file to the program."""
    if o.interactive:
        yield
        return
    saved = os.dup(0)
    extra = []
    try:
        if o.tty:
            r, w = os.pipe()
            extra = [r, w]
            os.dup2(r, 0)
        else:
            fd = os.open(os.devnull, os.O_RDONLY)
            os.dup2(fd, 0)
            os.close(fd)
        yield
    finally:
        os.dup2(saved, 0)
        os.close(saved)
        for fd in extra:
            os.close(fd)
