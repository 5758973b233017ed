"""A container's mounts as Docker reads them: `-v` strings (HostConfig.Binds), `--mount`
objects (HostConfig.Mounts), `--volumes-from`, `--tmpfs` (HostConfig.Tmpfs), anonymous
volumes (Config.Volumes and the image's VOLUME), turned into mount points and then into
the OCI spec's mounts.

    -v NAME:/path[:MODE]     a named volume (created if missing)
    -v /host/path:/path[:MODE]   a bind mount of a host path (created if missing, as
                             Docker's -v does; --mount type=bind refuses a missing one)
    -v /path                 an anonymous volume
    MODE: ro|rw, z|Z (SELinux labels: accepted, nothing to do on a host without SELinux),
          nocopy, shared|rshared|slave|rslave|private|rprivate, consistent|cached|delegated
          (one of each kind at most)

A host path must be absolute: anything else reads as a volume name and fails its check
("... If you intended to pass a host directory, use absolute path").  Bind sources are
resolved on the host as given (its symlinks followed there, `os.path.realpath`), the
destination inside the container's root by the runtime (it refuses escapes).

Order (Docker's): points from --volumes-from first, replaced by -v and --mount on the
same destination; two of -v/--mount/--tmpfs on one destination are an error; the image's
VOLUME paths and Config.Volumes get anonymous volumes where nothing else is mounted.
The OCI mounts are sorted by the depth of their destination, so /a comes before /a/b.
"""

from __future__ import annotations

import os
import posixpath

from sangja.engine.volumes import InvalidVolume

RW_MODES = ("rw", "ro")
LABEL_MODES = ("z", "Z")
PROPAGATIONS = ("private", "rprivate", "slave", "rslave", "shared", "rshared")
CONSISTENCY = ("consistent", "cached", "delegated", "default")
DEFAULT_PROPAGATION = "rprivate"


class InvalidMount(InvalidVolume):
    pass


class MountPoint:
    """One mount of a container (Docker's MountPoint).  `name`: the volume's (filled in
    for an anonymous one once it is created); `source`: a bind's host path."""

    FIELDS = ("type", "name", "source", "destination", "rw", "mode", "propagation", "copy",
              "driver", "volume_opts", "volume_labels", "nonrecursive", "recursive_ro",
              "tmpfs", "anonymous", "create_source")  # fmt: skip
    __slots__ = FIELDS

    def __init__(self, **kw):
        defaults = {"type": "volume", "name": "", "source": "", "destination": "", "rw": True,
                    "mode": "", "propagation": "", "copy": True, "driver": "",
                    "volume_opts": {}, "volume_labels": {}, "nonrecursive": False,
                    "recursive_ro": True, "tmpfs": "", "anonymous": False,
                    "create_source": False}  # fmt: skip
        for k in self.FIELDS:
            setattr(self, k, kw.pop(k, defaults[k]))
        if kw:
            raise TypeError(f"unknown fields {sorted(kw)}")

    def __repr__(self):
        return f"MountPoint({self.type} {self.name or self.source} -> {self.destination})"

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.FIELDS}

    @classmethod
    def from_dict(cls, d: dict) -> MountPoint:
        return cls(**{k: v for k, v in d.items() if k in cls.FIELDS})

    def api(self, volumes_dir: str = "") -> dict:
        """Docker's inspect `Mounts` entry."""
        out = {"Type": self.type}
        if self.type == "volume":
            out["Name"] = self.name
            out["Source"] = os.path.join(volumes_dir, self.name, "_data") if volumes_dir else ""
        else:
            out["Source"] = self.source
        out["Destination"] = self.destination
        if self.type == "volume":
            out["Driver"] = self.driver or "local"
        out["Mode"] = self.mode
        out["RW"] = self.rw
        out["Propagation"] = self.propagation
        return out


def _err(raw: str, why: str | None = None) -> InvalidMount:
    msg = f"invalid volume specification: '{raw}'"
    return InvalidMount(f"{msg}: {why}" if why else msg)


def valid_mode(mode: str) -> bool:
    if mode == "":
        return True
    counts = {"rw": 0, "label": 0, "prop": 0, "copy": 0, "cons": 0}
    for o in mode.split(","):
        if o in RW_MODES:
            counts["rw"] += 1
        elif o in LABEL_MODES:
            counts["label"] += 1
        elif o in PROPAGATIONS:
            counts["prop"] += 1
        elif o == "nocopy":
            counts["copy"] += 1
        elif o in CONSISTENCY:
            counts["cons"] += 1
        else:
            return False
    return all(n <= 1 for n in counts.values())


def _check_target(target: str, kind: str) -> str:
    if not target:
        raise InvalidMount(f'invalid mount config for type "{kind}": field Target must not'
                           " be empty")  # fmt: skip
    if not target.startswith("/"):
        raise InvalidMount(f'invalid mount config for type "{kind}": invalid mount path:'
                           f" '{target}' mount path must be absolute")  # fmt: skip
    clean = posixpath.normpath(target)
    if clean == "/" or clean == "//":
        raise InvalidMount("invalid specification: destination can't be '/'")
    return clean


def parse_bind(raw: str) -> MountPoint:
    """One -v / HostConfig.Binds string -> its mount point (not yet resolved)."""
    arr = raw.split(":", 3)
    if not arr[0]:
        raise _err(raw)
    mode, source = "", ""
    if len(arr) == 1:
        target = arr[0]
    elif len(arr) == 2:
        if valid_mode(arr[1]):
            raise _err(raw)  # /dest:ro: a destination cannot have a mode alone
        source, target = arr
    elif len(arr) == 3:
        source, target, mode = arr
    else:
        raise _err(raw)
    if not valid_mode(mode):
        raise InvalidMount(f"invalid mode: {mode}")
    opts = mode.split(",") if mode else []
    kind = "bind" if source.startswith("/") else "volume"
    try:
        dest = _check_target(target, kind)
    except InvalidMount as e:
        raise _err(raw, str(e)) from None
    prop = next((o for o in opts if o in PROPAGATIONS), "")
    mp = MountPoint(type=kind, destination=dest, rw="ro" not in opts, mode=mode,
                    copy="nocopy" not in opts)  # fmt: skip
    if kind == "bind":
        if "nocopy" in opts:
            raise InvalidMount(f"invalid mode: {mode} (nocopy is for volumes)")
        mp.source = posixpath.normpath(source)
        mp.propagation = prop or DEFAULT_PROPAGATION
        mp.create_source = True  # -v makes a missing host directory, as Docker's does
    else:
        if prop:
            raise InvalidMount(f"invalid mode: {mode} (propagation is for bind mounts)")
        if source:
            from sangja.engine.volumes import check_name

            try:
                check_name(source)
            except InvalidVolume as e:
                raise _err(raw, str(e).split(": ", 1)[1]) from None
            mp.name = source
        else:
            mp.anonymous = True
    return mp


def anonymous(dest: str) -> MountPoint:
    """Config.Volumes / the image's VOLUME entry."""
    return MountPoint(type="volume", destination=_check_target(dest, "volume"),
                      anonymous=True)  # fmt: skip


def parse_spec(m: dict) -> MountPoint:
    """One HostConfig.Mounts object (what --mount makes) -> its mount point."""
    if not isinstance(m, dict):
        raise InvalidMount("HostConfig.Mounts: want objects {Type, Source, Target, ...}")
    kind = m.get("Type") or ""
    if kind not in ("bind", "volume", "tmpfs"):
        raise InvalidMount(f'invalid mount config for type "{kind}": mount type unknown')
    pre = f'invalid mount config for type "{kind}": '
    dest = _check_target(m.get("Target") or m.get("Destination") or "", kind)
    src = m.get("Source") or ""
    bo, vo, to = m.get("BindOptions"), m.get("VolumeOptions"), m.get("TmpfsOptions")
    ro = bool(m.get("ReadOnly"))
    mode = "ro" if ro else ""
    if kind == "bind":
        if vo:
            raise InvalidMount(pre + "field VolumeOptions must not be specified")
        if to:
            raise InvalidMount(pre + "field TmpfsOptions must not be specified")
        if not src:
            raise InvalidMount(pre + "field Source must not be empty")
        if not src.startswith("/"):
            raise InvalidMount(pre + f"invalid mount path: '{src}' mount path must be absolute")
        bo = bo or {}
        prop = bo.get("Propagation") or DEFAULT_PROPAGATION
        if prop not in PROPAGATIONS:
            raise InvalidMount(pre + f"invalid propagation mode: {prop}")
        if not os.path.exists(src) and not bo.get("CreateMountpoint"):
            raise InvalidMount(pre + f"bind source path does not exist: {src}")
        if bo.get("ReadOnlyNonRecursive") and bo.get("ReadOnlyForceRecursive"):
            raise InvalidMount(pre + "ReadOnlyNonRecursive and ReadOnlyForceRecursive are"
                               " mutually exclusive")  # fmt: skip
        return MountPoint(type="bind", source=posixpath.normpath(src), destination=dest,
                          rw=not ro, mode=mode, propagation=prop,
                          nonrecursive=bool(bo.get("NonRecursive")),
                          recursive_ro=not bo.get("ReadOnlyNonRecursive"),
                          create_source=bool(bo.get("CreateMountpoint")))  # fmt: skip
    if kind == "volume":
        if bo:
            raise InvalidMount(pre + "field BindOptions must not be specified")
        if to:
            raise InvalidMount(pre + "field TmpfsOptions must not be specified")
        vo = vo or {}
        if vo.get("Subpath"):
            raise InvalidMount(pre + "volume subpaths are not supported")
        if ro and not src:
            raise InvalidMount(pre + "must not set ReadOnly mode when using anonymous volumes")
        if src:
            from sangja.engine.volumes import check_name

            check_name(src)
        dc = vo.get("DriverConfig") or {}
        return MountPoint(type="volume", name=src, destination=dest, rw=not ro, mode=mode,
                          copy=not vo.get("NoCopy"), driver=dc.get("Name") or "",
                          volume_opts=dict(dc.get("Options") or {}),
                          volume_labels=dict(vo.get("Labels") or {}),
                          anonymous=not src)  # fmt: skip
    if bo:
        raise InvalidMount(pre + "field BindOptions must not be specified")
    if vo:
        raise InvalidMount(pre + "field VolumeOptions must not be specified")
    if src:
        raise InvalidMount(pre + "field Source must not be specified")
    return MountPoint(type="tmpfs", destination=dest, rw=not ro, mode=mode,
                      tmpfs=tmpfs_options(to or {}, ro))  # fmt: skip


def tmpfs_options(to: dict, ro: bool) -> str:
    opts = ["ro"] if ro else []
    mode = to.get("Mode") or 0
    if mode:
        opts.append(f"mode={int(mode):o}")
    size = int(to.get("SizeBytes") or 0)
    if size < 0:
        raise InvalidMount('invalid mount config for type "tmpfs": size must be >= 0')
    if size:
        for suffix, div in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
            if size % div == 0:
                opts.append(f"size={size // div}{suffix}")
                break
        else:
            opts.append(f"size={size}")
    for o in to.get("Options") or ():
        if not o or o[0] not in ("exec", "noexec"):
            raise InvalidMount(f'invalid mount config for type "tmpfs": invalid option: {o}')
        opts.append("=".join(o))
    return ",".join(opts)


def parse_volumes_from(spec: str) -> tuple[str, str]:
    """'CONTAINER[:ro|rw]' -> (container, mode)."""
    if not spec:
        raise InvalidMount("volumes-from specification cannot be an empty string")
    ref, _, mode = spec.partition(":")
    if not mode:
        return ref, "rw"
    if not valid_mode(mode) or any(o in PROPAGATIONS or o == "nocopy" for o in mode.split(",")):
        raise InvalidMount(f"invalid mode: {mode}")
    return ref, mode


def plan(config: dict, host_config: dict, image_volumes=(), volumes_from=None) -> list[MountPoint]:
    """The container's mount points, in Docker's order of precedence.
    `volumes_from(ref) -> [MountPoint]`: another container's points (the engine's)."""
    by_dest: dict[str, MountPoint] = {}
    for spec in host_config.get("VolumesFrom") or ():
        ref, mode = parse_volumes_from(spec)
        if volumes_from is None:
            raise InvalidMount("--volumes-from needs the engine's containers")
        for p in volumes_from(ref):
            q = MountPoint.from_dict(p.to_dict())
            q.rw = p.rw and "ro" not in mode.split(",")
            q.anonymous = False  # it is the other container's: never removed with this one
            by_dest[q.destination] = q
    given: set[str] = set()

    def add(p: MountPoint):
        if p.destination in given:
            raise InvalidMount(f"Duplicate mount point: {p.destination}")
        given.add(p.destination)
        by_dest[p.destination] = p

    for raw in host_config.get("Binds") or ():
        add(parse_bind(raw))
    for m in host_config.get("Mounts") or ():
        add(parse_spec(m))
    for dest in host_config.get("Tmpfs") or {}:
        d = _check_target(dest, "tmpfs")
        if d in given:
            raise InvalidMount(f"Duplicate mount point: {d}")
        given.add(d)
        by_dest.pop(d, None)  # the tmpfs itself is in the spec already (ocispec)
    for dest in list(config.get("Volumes") or {}) + list(image_volumes or ()):
        p = anonymous(dest)
        if p.destination not in by_dest and p.destination not in given:
            by_dest[p.destination] = p
    return list(by_dest.values())


def depth(path: str) -> int:
    return len([c for c in path.split("/") if c])


def oci_mount(p: MountPoint, source: str) -> dict:
    """A resolved point (source: the host directory) -> one OCI mount."""
    if p.type == "tmpfs":
        base = ["nosuid", "nodev", "noexec"]
        given = [o for o in p.tmpfs.split(",") if o]
        if "exec" in given:
            base.remove("noexec")
        return {"destination": p.destination, "type": "tmpfs", "source": "tmpfs",
                "options": base + given}  # fmt: skip
    opts = ["bind" if p.nonrecursive else "rbind"]
    if not p.rw:  # read-only all the way down (rro: mount_setattr), unless asked otherwise
        opts += ["ro", "rro"] if p.recursive_ro and not p.nonrecursive else ["ro"]
    opts.append(p.propagation or DEFAULT_PROPAGATION)
    return {"destination": p.destination, "type": "bind", "source": source, "options": opts}


def resolve_bind_source(p: MountPoint, create: bool) -> str:
    """A bind's host path, symlinks followed on the host (Docker's rule).  `create`: a -v
    source that does not exist is made (a directory, 0755), as Docker's -v makes it."""
    src = p.source
    if not os.path.lexists(src):
        if not create:
            raise InvalidMount(f'invalid mount config for type "bind": bind source path does'
                               f" not exist: {src}")  # fmt: skip
        try:
            os.makedirs(src, mode=0o755, exist_ok=True)
        except OSError as e:
            raise InvalidMount(f"bind source {src}: {e.strerror}", errno=e.errno, path=src)
    return os.path.realpath(src)


# ---- a container's mount points: checked at create, resolved and kept, used at each start --

MOUNTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS container_mounts (
    container TEXT PRIMARY KEY,
    points    TEXT NOT NULL         -- JSON: [MountPoint], volumes named (anonymous ones too)
);
"""
# the runtime's own mounts stay first; the rest (Docker's daemon mounts: /etc files, /dev/shm,
# --tmpfs, --init; and the user's) follow, sorted by the depth of their destination
SYSTEM_MOUNTS = ("/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue")
NOT_RUNNING = ("exited", "dead", "removing")


def check(config: dict, host_config: dict) -> None:
    """What ContainerCreate can check before anything is made: the -v strings, the
    --mount objects, --volumes-from specs, duplicates.  InvalidMount."""
    plan(config, host_config, (), volumes_from=lambda ref: [])


class ContainerMounts:
    """The engine's side of a container's mounts (engine/containers.py calls these in its
    create, start, teardown and removal steps)."""

    def __init__(self, store, volumes=None):
        if volumes is None:
            from sangja.engine.volumes import Volumes

            volumes = Volumes(store)
        self.store = store
        self.volumes = volumes
        self._ready = False

    @property
    def db(self):
        db = self.volumes.db  # the volume tables first
        if not self._ready:
            db.executescript(MOUNTS_SCHEMA)
            self._ready = True
        return db

    def create(self, cid: str, config: dict, host_config: dict, image_volumes=(),
               volumes_from=None) -> list[MountPoint]:  # fmt: skip
        """Resolve the container's points, create the volumes they name (each recorded as
        used by `cid` in the volume's own transaction, so nothing can remove it
        meanwhile), and keep the points.  What a failure leaves is the container's, and
        goes with it (`forget`, `remove_anonymous`)."""
        from sangja import jsonio

        points = plan(config, host_config, image_volumes, volumes_from)
        for p in points:
            if p.type != "volume":
                continue
            v = self.volumes.create(p.name or None, p.driver, p.volume_labels, p.volume_opts,
                                    ref=cid)  # fmt: skip
            p.name, p.driver = v["Name"], v["Driver"]
        self.db  # noqa: B018
        with self.store.transaction(durable=False) as db:  # a container's own row
            db.execute("INSERT OR REPLACE INTO container_mounts VALUES (?,?)",
                       (cid, jsonio.dumps([p.to_dict() for p in points])))  # fmt: skip
        return points

    def points(self, cid: str) -> list[MountPoint]:
        from sangja import jsonio

        row = self.db.execute("SELECT points FROM container_mounts WHERE container=?",
                              (cid,)).fetchone()  # fmt: skip
        return [MountPoint.from_dict(d) for d in jsonio.loads(row[0])] if row else []

    def all_points(self) -> dict[str, list[MountPoint]]:
        from sangja import jsonio

        rows = self.db.execute("SELECT container, points FROM container_mounts").fetchall()
        return {c: [MountPoint.from_dict(d) for d in jsonio.loads(p)] for c, p in rows}

    def start(self, cid: str, rootfs: str, base: list[dict], live=None) -> list[dict]:
        """The OCI mounts of a start: `base` (ocispec's) with the container's points in
        their place.  Volumes with options are mounted (this container holds them until
        `stop`), an empty volume is first filled from the image (copy-up, unless nocopy),
        a -v bind source that does not exist is made."""
        from sangja.engine import events

        out = []
        for p in self.points(cid):
            if p.type == "volume":
                src = self.volumes.mount(p.name, cid, live)
                if p.copy:
                    self.volumes.copy_up(p.name, rootfs, p.destination)
                events.emit("volume", "mount", p.name,
                            {"container": cid, "destination": p.destination,
                             "driver": p.driver or "local", "propagation": p.propagation,
                             "read/write": str(p.rw).lower()}, root=self.store.root)  # fmt: skip
            elif p.type == "bind":
                src = resolve_bind_source(p, create=p.create_source)
            else:
                src = ""
            out.append(oci_mount(p, src))
        mine = {m["destination"] for m in out}
        system = [m for m in base if m["destination"] in SYSTEM_MOUNTS
                  and m["destination"] not in mine]  # fmt: skip
        rest = [m for m in base if m["destination"] not in SYSTEM_MOUNTS
                and m["destination"] not in mine]  # fmt: skip
        return system + sorted(rest + out, key=lambda m: depth(m["destination"]))

    def stop(self, cid: str, live=None) -> None:
        """The run is over: the volumes with options it held are unmounted by their last
        holder."""
        from sangja.engine import events

        for p in self.points(cid):
            if p.type != "volume":
                continue
            held = self.volumes.db.execute(
                "SELECT 1 FROM volume_mounts WHERE volume=? AND holder=?", (p.name, cid)
            ).fetchone()
            self.volumes.unmount(p.name, cid, live)
            if held:
                events.emit("volume", "unmount", p.name, {"container": cid, "driver": "local"},
                            root=self.store.root)  # fmt: skip

    def forget(self, db, cid: str) -> list[str]:
        """In the transaction that deletes the container's row (the caller read `.db`
        before it began: the tables exist): it uses its volumes no more.  -> their names
        (for `remove_anonymous`)."""
        names = [r[0] for r in db.execute(
            "SELECT volume FROM volume_refs WHERE container=?", (cid,))]  # fmt: skip
        db.execute("DELETE FROM volume_refs WHERE container=?", (cid,))
        db.execute("DELETE FROM volume_mounts WHERE holder=?", (cid,))
        db.execute("DELETE FROM container_mounts WHERE container=?", (cid,))
        return names

    def remove_anonymous(self, names: list[str]) -> list[str]:
        return self.volumes.remove_anonymous(names)
