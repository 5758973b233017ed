"""Volumes: data that outlives containers, Docker's `local` driver.

    <engine root>/volumes/<name>/_data     what containers see (Docker's layout)
    sangja.db: volumes (name, driver, created, labels, options), volume_refs (which
               containers use a volume: the reason it cannot be removed), volume_mounts
               (which running containers hold it: one with mount options is mounted
               while any does)

A volume is a directory, bind-mounted into each container that names it.  With options
(`--opt type=tmpfs --opt device=tmpfs --opt o=size=64m`, `type=none o=bind device=/path`,
`type=nfs o=addr=… device=:/export`) its `_data` is a mount made when the first container
using it starts and undone when the last one stops (`mount`/`unmount`, counted by holder).
Anonymous volumes (`-v /path`, an image's VOLUME) are named by 64 hex digits and carry
the label com.docker.volume.anonymous, as Docker's do; `container rm -v` and `run --rm`
remove them, never named ones.

Docker's rules: a volume a container uses (running or not) cannot be removed, with or
without force; creating a name that exists returns that volume; `prune` removes unused
anonymous volumes (`all`: every unused one) but never one with mount options (nothing
to reclaim); a new, empty volume mounted over a directory of the image is first filled
with that directory's content (`copy_up`: owners, modes, times, xattrs kept).

Writers take `volumes/.lock` (flock) for the few steps that pair a row with its
directory, so create/rm/prune of one name never interleave.  A row is the truth: a row
without its directory gets one when used; a directory without a row (a `rm` killed
between its two steps) is removed by the next create, rm or prune.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time

from sangja.engine.errors import Conflict, EngineError, InvalidArgument, NotFoundError
from sangja.errors import SangjaError

SCHEMA = """
CREATE TABLE IF NOT EXISTS volumes (
    name     TEXT PRIMARY KEY,
    driver   TEXT NOT NULL,
    created  REAL NOT NULL,
    labels   TEXT NOT NULL,         -- JSON object
    options  TEXT NOT NULL          -- JSON object: the driver's options (type, device, o)
);
CREATE TABLE IF NOT EXISTS volume_refs (
    volume    TEXT NOT NULL,
    container TEXT NOT NULL,
    PRIMARY KEY (volume, container)
);
CREATE INDEX IF NOT EXISTS volume_refs_container ON volume_refs(container);
CREATE TABLE IF NOT EXISTS volume_mounts (
    volume TEXT NOT NULL,
    holder TEXT NOT NULL,           -- a container id: its run holds the mount
    PRIMARY KEY (volume, holder)
);
"""

ANONYMOUS = "com.docker.volume.anonymous"
DRIVER = "local"
LOCAL_OPTS = ("type", "device", "o")
_NAME = r"[a-zA-Z0-9][a-zA-Z0-9_.-]+"  # (re is imported where it is used: ~3 ms)
TRASH = ".removing-"


class VolumeError(EngineError):
    pass


class InvalidVolume(VolumeError, InvalidArgument):
    pass


class NoSuchVolume(VolumeError, NotFoundError):
    pass


class VolumeInUse(VolumeError, Conflict):
    pass


def check_name(name: str) -> str:
    """Docker's rule for a local volume's name (a path given where a name was expected
    reads as one: the hint says to use an absolute path)."""
    if len(name) == 1:
        raise InvalidVolume(f'create {name}: volume name is too short, names should be at'
                            " least two alphanumeric characters")  # fmt: skip
    import re

    if not re.fullmatch(_NAME, name):
        raise InvalidVolume(
            f'create {name}: "{name}" includes invalid characters for a local volume name,'
            ' only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host'
            " directory, use absolute path"
        )
    return name


def check_options(driver: str, options: dict) -> None:
    if driver != DRIVER:
        raise InvalidVolume(f"volume driver {driver!r} is not supported (only local)")
    for k in options:
        if k not in LOCAL_OPTS:
            hint = " (quotas are not supported)" if k == "size" else ""
            raise InvalidVolume(f'invalid option: "{k}"{hint}')
    for k, needs in (("device", ("type",)), ("type", ("device",)), ("o", ("device", "type"))):
        if k in options:
            for n in needs:
                if n not in options:
                    raise InvalidVolume(f'missing required option: "{n}"')
    if options:
        flags_and_data(options.get("o", ""))


# ---- mount options ------------------------------------------------------------------------

MS = {"ro": (1, True), "rw": (1, False), "nosuid": (2, True), "suid": (2, False),
      "nodev": (4, True), "dev": (4, False), "noexec": (8, True), "exec": (8, False),
      "sync": (16, True), "async": (16, False), "remount": (32, True), "mand": (64, True),
      "nomand": (64, False), "dirsync": (128, True), "noatime": (1024, True),
      "atime": (1024, False), "nodiratime": (2048, True), "diratime": (2048, False),
      "bind": (4096, True), "rbind": (4096 | 16384, True), "relatime": (1 << 21, True),
      "norelatime": (1 << 21, False), "strictatime": (1 << 24, True),
      "defaults": (0, False)}  # fmt: skip
MS_BIND, MS_REC, MS_REMOUNT = 4096, 16384, 32
MS_PROPAGATION = {"private": 1 << 18, "rprivate": (1 << 18) | MS_REC, "slave": 1 << 19,
                  "rslave": (1 << 19) | MS_REC, "shared": 1 << 20,
                  "rshared": (1 << 20) | MS_REC, "unbindable": 1 << 17,
                  "runbindable": (1 << 17) | MS_REC}  # fmt: skip


def flags_and_data(o: str) -> tuple[int, int, str]:
    """`o=` as mount(8) reads it -> (flags, propagation flags, data for the file system)."""
    flags, prop, data = 0, 0, []
    for opt in (x.strip() for x in o.split(",")):
        if not opt:
            continue
        if opt in MS:
            bit, on = MS[opt]
            flags = flags | bit if on else flags & ~bit
        elif opt in MS_PROPAGATION:
            prop = MS_PROPAGATION[opt]
        else:
            data.append(opt)
    return flags, prop, ",".join(data)


def _hide_password(text: str) -> str:
    import re

    return re.sub(r"(password=)[^,]*", r"\1********", text)


# ---- records --------------------------------------------------------------------------------


class Volume:
    __slots__ = ("name", "driver", "created", "labels", "options")

    def __init__(self, name, driver, created, labels, options):
        from sangja import jsonio

        self.name, self.driver, self.created = name, driver, created
        self.labels = jsonio.loads(labels) if isinstance(labels, str) else labels
        self.options = jsonio.loads(options) if isinstance(options, str) else options

    @property
    def anonymous(self) -> bool:
        return ANONYMOUS in self.labels

    @property
    def needs_mount(self) -> bool:
        return bool(self.options.get("type") or self.options.get("device"))


def rfc3339(ts: float) -> str:
    """Go's time.RFC3339 in the local zone ('Z' for UTC), as Docker prints CreatedAt."""
    import datetime

    d = datetime.datetime.fromtimestamp(int(ts)).astimezone()
    off = d.strftime("%z")
    zone = "Z" if off in ("+0000", "") else f"{off[:3]}:{off[3:]}"
    return d.strftime("%Y-%m-%dT%H:%M:%S") + zone


class Volumes:
    def __init__(self, store=None):
        if store is None:
            from sangja.image.store import Store

            store = Store()
        self.store = store
        self.dir = os.path.join(store.root, "volumes")
        self._ready = False

    @property
    def db(self):
        db = self.store.db
        if not self._ready:
            db.executescript(SCHEMA)
            self._ready = True
        return db

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def mountpoint(self, name: str) -> str:
        return os.path.join(self.dir, name, "_data")

    @contextlib.contextmanager
    def _lock(self):
        os.makedirs(self.dir, mode=0o701, exist_ok=True)
        fd = os.open(os.path.join(self.dir, ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                     0o600)  # fmt: skip
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # ---- reading ------------------------------------------------------------------------
    def all(self) -> list[Volume]:
        rows = self.db.execute(
            "SELECT name, driver, created, labels, options FROM volumes ORDER BY name"
        ).fetchall()
        return [Volume(*r) for r in rows]

    def get(self, name: str) -> Volume:
        row = self.db.execute(
            "SELECT name, driver, created, labels, options FROM volumes WHERE name=?", (name,)
        ).fetchone()
        if row is None:
            raise NoSuchVolume(f"get {name}: no such volume")
        return Volume(*row)

    def exists(self, name: str) -> bool:
        return self.db.execute("SELECT 1 FROM volumes WHERE name=?", (name,)).fetchone() is not None

    def refs(self, name: str | None = None) -> dict[str, list[str]]:
        """volume -> the containers that use it (every volume when `name` is None)."""
        sql, args = "SELECT volume, container FROM volume_refs", ()
        if name is not None:
            sql, args = sql + " WHERE volume=?", (name,)
        out: dict[str, list[str]] = {}
        for v, c in self.db.execute(sql + " ORDER BY container", args):
            out.setdefault(v, []).append(c)
        return out

    def of_container(self, container: str) -> list[str]:
        rows = self.db.execute(
            "SELECT volume FROM volume_refs WHERE container=? ORDER BY volume", (container,)
        )
        return [r[0] for r in rows]

    def to_api(self, v: Volume, usage: dict | None = None) -> dict:
        """Docker's Volume object (inspect, the API's /volumes)."""
        out = {"CreatedAt": rfc3339(v.created), "Driver": v.driver,
               "Labels": dict(v.labels) or None, "Mountpoint": self.mountpoint(v.name),
               "Name": v.name, "Options": dict(v.options) or None, "Scope": "local"}  # fmt: skip
        if usage is not None:
            out["UsageData"] = usage
        return out

    def inspect(self, name: str) -> dict:
        return self.to_api(self.get(name))

    def list(self, filters: dict[str, list[str]] | None = None) -> list[dict]:
        """Docker's /volumes filters: dangling (true|false), driver, label (KEY or
        KEY=VALUE), name (a regular expression, searched)."""
        f = _list_filters(filters or {})
        refs = self.refs() if "dangling" in f else {}
        out = []
        for v in self.all():
            if "dangling" in f and (v.name not in refs) != f["dangling"]:
                continue
            if "driver" in f and v.driver not in f["driver"]:
                continue
            if "name" in f and not any(p.search(v.name) for p in f["name"]):
                continue
            if "label" in f and not all(_label_match(v.labels, w) for w in f["label"]):
                continue
            out.append(self.to_api(v))
        return out

    # ---- create -------------------------------------------------------------------------
    def create(self, name: str | None = None, driver: str = "", labels: dict | None = None,
               options: dict | None = None, *, ref: str | None = None,
               events: bool = True) -> dict:  # fmt: skip
        """VolumeCreate: -> Docker's Volume.  No name: an anonymous volume.  A name that
        exists: that volume (its driver must match).  `ref`: a container that uses it,
        recorded in the same transaction (nothing can remove it in between)."""
        driver = driver or DRIVER
        labels = {str(k): str(v) for k, v in (labels or {}).items()}
        options = {str(k): str(v) for k, v in (options or {}).items()}
        if name is None or name == "":
            name = os.urandom(32).hex()
            labels.setdefault(ANONYMOUS, "")
        check_name(name)
        check_options(driver, options)
        from sangja import jsonio

        self.db  # noqa: B018 (the tables exist before the transaction)
        with self._lock():
            self._collect()
            with self.store.transaction() as db:
                row = db.execute("SELECT driver FROM volumes WHERE name=?", (name,)).fetchone()
                new = row is None
                if new:
                    db.execute(
                        "INSERT INTO volumes (name, driver, created, labels, options)"
                        " VALUES (?,?,?,?,?)",
                        (name, driver, time.time(), jsonio.dumps(labels),
                         jsonio.dumps(options)),
                    )  # fmt: skip
                elif row[0] != driver:
                    raise VolumeInUse(f"create {name}: volume name is already in use with"
                                      f" driver {row[0]!r}")  # fmt: skip
                if ref:
                    db.execute("INSERT OR IGNORE INTO volume_refs VALUES (?,?)", (name, ref))
            if new:
                self._make_dirs(name)
        if new and events:
            from sangja.engine import events as ev

            ev.emit("volume", "create", name, {"driver": driver}, root=self.store.root)
        return self.inspect(name)

    def _make_dirs(self, name: str) -> str:
        os.makedirs(self.dir, mode=0o701, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(self.path(name), 0o755)
        data = self.mountpoint(name)
        with contextlib.suppress(FileExistsError):
            os.mkdir(data, 0o755)
        return data

    def add_ref(self, name: str, container: str) -> None:
        """Record that a container uses a volume (NoSuchVolume if it is gone)."""
        self.db  # noqa: B018
        with self.store.transaction() as db:
            if db.execute("SELECT 1 FROM volumes WHERE name=?", (name,)).fetchone() is None:
                raise NoSuchVolume(f"get {name}: no such volume")
            db.execute("INSERT OR IGNORE INTO volume_refs VALUES (?,?)", (name, container))

    def release(self, container: str) -> list[str]:
        """A container is removed: it uses none of its volumes any more.  -> their names."""
        self.db  # noqa: B018
        with self.store.transaction() as db:
            names = [r[0] for r in db.execute(
                "SELECT volume FROM volume_refs WHERE container=?", (container,))]  # fmt: skip
            db.execute("DELETE FROM volume_refs WHERE container=?", (container,))
            db.execute("DELETE FROM volume_mounts WHERE holder=?", (container,))
        return names

    # ---- remove -------------------------------------------------------------------------
    def remove(self, name: str, force: bool = False, *, events: bool = True) -> None:
        """VolumeDelete: refused while a container uses it, force or not (Docker's rule).
        `force`: a name that does not exist is not an error."""
        self.db  # noqa: B018
        with self._lock():
            self._collect()
            with self.store.transaction() as db:
                if db.execute("SELECT 1 FROM volumes WHERE name=?", (name,)).fetchone() is None:
                    if force:
                        return
                    raise NoSuchVolume(f"get {name}: no such volume")
                users = [r[0] for r in db.execute(
                    "SELECT container FROM volume_refs WHERE volume=? ORDER BY container",
                    (name,))]  # fmt: skip
                if users:
                    raise VolumeInUse(f"remove {name}: volume is in use - [{', '.join(users)}]")
                self._unmount_data(name)
                db.execute("DELETE FROM volumes WHERE name=?", (name,))
                db.execute("DELETE FROM volume_mounts WHERE volume=?", (name,))
                trash = self._to_trash(name)
        self._delete(trash)
        if events:
            from sangja.engine import events as ev

            ev.emit("volume", "destroy", name, {"driver": DRIVER}, root=self.store.root)

    def remove_anonymous(self, names: list[str]) -> list[str]:
        """`rm -v`, `run --rm`: of the volumes a removed container used (`release` gave
        them), the anonymous ones no other container uses.  -> the names removed."""
        gone = []
        for name in names:
            try:
                if not self.get(name).anonymous:
                    continue
                self.remove(name)
            except (NoSuchVolume, VolumeInUse):
                continue  # gone, or shared with another container (--volumes-from)
            gone.append(name)
        return gone

    def _unmount_data(self, name: str) -> None:
        """Before a volume's directory goes: nothing may stay mounted on its _data (a bind
        of a host directory must never be emptied)."""
        from sangja.image.snapshot import is_mounted, unmount

        data = self.mountpoint(name)
        if is_mounted(data):
            unmount(data)
            if is_mounted(data):
                raise VolumeInUse(f"remove {name}: {data} is still mounted")

    def _to_trash(self, name: str) -> str | None:
        src = self.path(name)
        if not os.path.lexists(src):
            return None
        dst = os.path.join(self.dir, f"{TRASH}{name}-{os.urandom(4).hex()}")
        os.rename(src, dst)
        return dst

    def _delete(self, path: str | None) -> None:
        if path is None:
            return
        from sangja.image import treecopy

        treecopy.remove_contents(path)  # never crosses into a mount left below
        os.rmdir(path)

    def _collect(self) -> None:
        """Directories no row names (a killed rm) and trash: removed.  Lock held."""
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return
        known = {r[0] for r in self.db.execute("SELECT name FROM volumes")}
        for n in names:
            if n == ".lock" or n in known:
                continue
            p = os.path.join(self.dir, n)
            if not n.startswith(TRASH):
                if is_mount_below(p):
                    continue  # something is mounted there: leave it to a person
                with contextlib.suppress(OSError):
                    p = self._trash_path(p)
            with contextlib.suppress(OSError, SangjaError):
                self._delete(p)

    def _trash_path(self, p: str) -> str:
        dst = os.path.join(self.dir, f"{TRASH}{os.path.basename(p)}-{os.urandom(4).hex()}")
        os.rename(p, dst)
        return dst

    def prune(self, filters: dict[str, list[str]] | None = None) -> tuple[list[str], int]:
        """VolumesPrune: unused anonymous volumes (filter all=true: every unused one), by
        label / label! filters; never one with mount options.  -> (names, bytes freed)."""
        from sangja.engine.diskusage import du

        f = dict(filters or {})
        for k in f:
            if k not in ("label", "label!", "all"):
                raise InvalidVolume(f"invalid filter '{k}'")
        every = False
        for v in f.get("all", ()):
            if v.lower() not in ("true", "false", "1", "0"):
                raise InvalidVolume(f"invalid filter 'all={v}'")
            every = every or v.lower() in ("true", "1")
        refs = self.refs()
        gone, freed = [], 0
        for v in self.all():
            if v.name in refs or v.needs_mount or v.driver != DRIVER:
                continue
            if not every and not v.anonymous:
                continue
            if not all(_label_match(v.labels, w) for w in f.get("label", ())):
                continue
            if any(_label_match(v.labels, w) for w in f.get("label!", ())):
                continue
            size = du(self.mountpoint(v.name))
            try:
                self.remove(v.name)
            except VolumeError:
                continue  # taken by a container meanwhile
            gone.append(v.name)
            freed += size
        from sangja.engine import events as ev

        ev.emit("volume", "prune", "", {"reclaimed": str(freed)}, root=self.store.root)
        return gone, freed

    # ---- mounting (volumes with options) -------------------------------------------------
    @contextlib.contextmanager
    def _volume_lock(self, name: str):
        d = self.path(name)
        os.makedirs(d, mode=0o755, exist_ok=True)
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def mount(self, name: str, holder: str, live=None) -> str:
        """The volume's directory, ready to bind into a container (who holds it is kept:
        `volume_mounts`): a volume with options is mounted there by its first holder.
        `live(holder) -> bool`: drops holders that died without unmounting.
        -> the _data path."""
        v = self.get(name)
        data = self._make_dirs(name)
        with self._volume_lock(name):
            self._drop_dead(name, live)
            with self.store.transaction() as db:
                db.execute("INSERT OR IGNORE INTO volume_mounts VALUES (?,?)", (name, holder))
            if not v.needs_mount:
                return data
            from sangja.image.snapshot import is_mounted

            if not is_mounted(data):
                try:
                    self._mount(v, data)
                except BaseException:
                    with self.store.transaction() as db:
                        db.execute("DELETE FROM volume_mounts WHERE volume=? AND holder=?",
                                   (name, holder))  # fmt: skip
                    raise
        return data

    def unmount(self, name: str, holder: str, live=None) -> None:
        """The holder's run is over (it holds the volume no more): the last holder
        unmounts a volume with options."""
        try:
            v = self.get(name)
        except NoSuchVolume:
            return
        with self._volume_lock(name):
            with self.store.transaction() as db:
                db.execute("DELETE FROM volume_mounts WHERE volume=? AND holder=?",
                           (name, holder))  # fmt: skip
            if not v.needs_mount:
                return
            self._drop_dead(name, live)
            left = self.db.execute("SELECT 1 FROM volume_mounts WHERE volume=?",
                                   (name,)).fetchone()  # fmt: skip
            if left is None:
                from sangja.image.snapshot import unmount

                unmount(self.mountpoint(name))

    def _drop_dead(self, name: str, live) -> None:
        if live is None:
            return
        for (h,) in self.db.execute(
            "SELECT holder FROM volume_mounts WHERE volume=?", (name,)
        ).fetchall():
            if not live(h):
                with self.store.transaction() as db:
                    db.execute("DELETE FROM volume_mounts WHERE volume=? AND holder=?",
                               (name, h))  # fmt: skip

    def _mount(self, v: Volume, data: str) -> None:
        from sangja.image.snapshot import SnapshotError, mount

        opts = v.options
        flags, prop, fsdata = flags_and_data(opts.get("o", ""))
        fstype, device = opts.get("type") or None, opts.get("device", "")
        if not device:
            raise VolumeError(f"mount {v.name}: missing device in volume options")
        try:
            if flags & MS_BIND:
                mount(device, data, None, flags & (MS_BIND | MS_REC))
                rest = flags & ~(MS_BIND | MS_REC)
                if rest:  # bind flags (ro, nosuid, ...) need a remount of the bind
                    mount("", data, None, MS_REMOUNT | MS_BIND | rest)
            else:
                mount(device, data, fstype, flags, fsdata)
            if prop:
                mount("", data, None, prop)
        except SnapshotError as e:
            from sangja.image.snapshot import unmount

            with contextlib.suppress(SangjaError):
                if flags & MS_BIND or e.errno == 0:
                    unmount(data)
            raise VolumeError(_hide_password(f"failed to mount local volume: {e}"),
                              errno=e.errno, path=data) from None  # fmt: skip

    # ---- copy-up ------------------------------------------------------------------------
    def copy_up(self, name: str, rootfs: str, dest: str) -> bool:
        """Fill an empty volume with what the image has at `dest` (resolved inside
        `rootfs`: a symlink there never leads out of it), owner and mode of that directory
        included.  Nothing happens if the volume holds anything or the image has no
        directory there.  The volume must be mounted (`mount`) first.  -> copied?"""
        from sangja.image import treecopy
        from sangja.image.snapshot import open_in_root

        data = self.mountpoint(name)
        with self._volume_lock(name):
            dfd = os.open(data, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                if os.listdir(dfd):
                    return False
                try:
                    sfd = open_in_root(rootfs, dest, directory=True)
                except OSError:
                    return False  # nothing there, or not a directory: nothing to copy
                try:
                    if not os.listdir(sfd):
                        return False
                    try:
                        treecopy.copy_contents(sfd, dfd)
                    except treecopy.CopyError as e:
                        raise VolumeError(f"copy-up of {dest} into volume {name}: {e}",
                                          errno=e.errno, path=e.path) from None  # fmt: skip
                finally:
                    os.close(sfd)
            finally:
                os.close(dfd)
        return True

    # ---- disk usage ---------------------------------------------------------------------
    def usage(self) -> list[dict]:
        """Docker's /system/df Volumes: local volumes without mount options (the others
        are not local data), with UsageData {Size (bytes, du), RefCount}."""
        from sangja.engine.diskusage import du

        refs = self.refs()
        out = []
        for v in self.all():
            if v.needs_mount:
                continue
            usage = {"Size": du(self.mountpoint(v.name)), "RefCount": len(refs.get(v.name, ()))}
            out.append(self.to_api(v, usage))
        return out


def is_mount_below(path: str) -> bool:
    """Is anything mounted at or below `path`?"""
    real = os.path.realpath(path)
    with contextlib.suppress(OSError), open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == real or mp.startswith(real + "/"):
                return True
    return False


def _label_match(labels: dict, want: str) -> bool:
    k, eq, v = want.partition("=")
    return k in labels and (not eq or labels[k] == v)


def _list_filters(f: dict[str, list[str]]) -> dict:
    out: dict = {}
    for k, vs in f.items():
        if k == "dangling":
            vals = set()
            for v in vs:
                if v.lower() not in ("true", "false", "1", "0"):
                    raise InvalidVolume(f"invalid filter 'dangling={v}'")
                vals.add(v.lower() in ("true", "1"))
            if len(vals) > 1:
                raise InvalidVolume("conflicting filters: dangling=true and dangling=false")
            out["dangling"] = vals.pop()
        elif k == "name":
            import re

            try:
                out["name"] = [re.compile(v) for v in vs]
            except re.error as e:
                raise InvalidVolume(f"invalid filter 'name': {e}")
        elif k in ("driver", "label"):
            out[k] = list(vs)
        else:
            raise InvalidVolume(f"invalid filter '{k}'")
    return out


def parse_filters(items) -> dict[str, list[str]]:
    """['dangling=true', 'label=a=b'] -> {"dangling": ["true"], "label": ["a=b"]}."""
    out: dict[str, list[str]] = {}
    for it in items or ():
        k, eq, v = it.partition("=")
        if not eq:
            raise InvalidVolume(f"bad format of filter (expected name=value): {it!r}")
        out.setdefault(k.strip().lower(), []).append(v)
    return out
