"""RUN --mount, BuildKit's forms, and build secrets.

    --mount=type=cache,target=/root/.cache[,id=ID][,sharing=shared|private|locked]
            [,mode=0755][,uid=0][,gid=0][,ro]
        a directory kept between builds (<engine root>/build/cache-mounts/<id>), never
        part of a layer; `builder prune` removes them.  `locked` serializes the builds
        that use it; `shared` and `private` share it.
    --mount=type=bind,target=/src[,source=PATH][,from=STAGE|IMAGE][,rw]
        a path of the context (default) or of a stage's/image's root, read-only unless
        `rw` (then writes go to a throw-away layer)
    --mount=type=secret,id=ID[,target=/run/secrets/ID][,required][,mode=0400][,uid][,gid]
        the file `build --secret id=ID,src=PATH` (or env=VAR) gave, read-only
    --mount=type=tmpfs,target=/tmp[,size=BYTES]

Fields are comma separated KEY=VALUE (a bare `ro`, `rw`, `required`); `dst` and
`destination` are `target`, `src` is `source`.  type=ssh is not supported (no agent is
forwarded): an error says so.
"""

from __future__ import annotations

from sangja.errors import SangjaError

TYPES = ("bind", "cache", "secret", "tmpfs", "ssh")


class MountError(SangjaError):
    pass


class Mount:
    __slots__ = ("type", "target", "source", "from_", "readonly", "id", "sharing", "mode",
                 "uid", "gid", "required", "size")  # fmt: skip

    def __init__(self):
        self.type = "bind"
        self.target = ""
        self.source = ""
        self.from_ = ""
        self.readonly = None
        self.id = ""
        self.sharing = "shared"
        self.mode = None
        self.uid = None
        self.gid = None
        self.required = False
        self.size = None

    def key(self) -> str:
        """What of the mount enters the step's cache key (not a secret's content)."""
        return ",".join(f"{k}={getattr(self, k)}" for k in self.__slots__)


def _bool(v: str, field: str) -> bool:
    if v.lower() in ("", "true", "1"):
        return True
    if v.lower() in ("false", "0"):
        return False
    raise MountError(f"invalid value {v!r} for {field} in --mount")


def parse(spec: str) -> Mount:
    import csv

    m = Mount()
    fields = next(csv.reader([spec]))
    for f in fields:
        k, eq, v = f.partition("=")
        k = k.strip().lower()
        if k == "type":
            if v not in TYPES:
                raise MountError(f"unsupported mount type {v!r} (want bind, cache, secret, tmpfs)")
            m.type = v
        elif k in ("target", "dst", "destination"):
            m.target = v
        elif k in ("source", "src"):
            m.source = v
        elif k == "from":
            m.from_ = v
        elif k in ("ro", "readonly"):
            m.readonly = _bool(v if eq else "", k)
        elif k in ("rw", "readwrite"):
            m.readonly = not _bool(v if eq else "", k)
        elif k == "id":
            m.id = v
        elif k == "sharing":
            if v not in ("shared", "private", "locked"):
                raise MountError(
                    f"invalid sharing {v!r} in --mount (want shared, private or locked)"
                )
            m.sharing = v
        elif k == "mode":
            try:
                m.mode = int(v, 8)
            except ValueError:
                raise MountError(f"invalid mode {v!r} in --mount (want octal)")
        elif k in ("uid", "gid", "size"):
            try:
                setattr(m, k, int(v))
            except ValueError:
                raise MountError(f"invalid {k} {v!r} in --mount")
        elif k == "required":
            m.required = _bool(v if eq else "", k)
        elif k == "relabel" or k == "env":
            raise MountError(f"--mount field {k!r} is not supported")
        else:
            raise MountError(f"unexpected key {k!r} in --mount={spec}")
    if m.type == "ssh":
        raise MountError("--mount=type=ssh is not supported: sangja build forwards no SSH agent")
    if m.type == "secret":
        if not m.id:
            m.id = m.target.rsplit("/", 1)[-1] if m.target else ""
        if not m.id:
            raise MountError("--mount=type=secret needs an id")
        if not m.target:
            m.target = f"/run/secrets/{m.id}"
    if not m.target:
        raise MountError(f"--mount={spec}: a target is required")
    if not m.target.startswith("/"):
        m.target = "/" + m.target  # relative to the working dir: the caller makes it absolute
    if m.type == "cache" and not m.id:
        m.id = m.target
    return m


def parse_secret(spec: str) -> tuple[str, str]:
    """`build --secret id=ID,src=PATH` (or `,env=VAR`, or `type=file|env`) -> (id, path
    or 'env:VAR')."""
    import csv
    import os

    fields = dict(f.partition("=")[::2] for f in next(csv.reader([spec])))
    sid = fields.get("id", "")
    src = fields.get("src") or fields.get("source") or ""
    env = fields.get("env", "")
    if fields.get("type") == "env" and not env:
        env = src or sid
        src = ""
    if not sid:
        raise MountError(f"--secret {spec}: an id is required")
    if env:
        return sid, "env:" + env
    if not src:
        src = sid if os.path.exists(sid) else ""
        if not src:
            env = sid
            return sid, "env:" + env
    if not os.path.isfile(src):
        raise MountError(f"--secret {spec}: {src}: no such file")
    return sid, os.path.abspath(src)
