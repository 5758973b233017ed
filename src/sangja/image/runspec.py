"""Image config -> the runtime's config.json, starting from the runtime's default spec.

As Docker does it: args = Entrypoint + (the command given, else Cmd); Env from the image,
then -e; WorkingDir, else /; User resolved through the image's own /etc/passwd and
/etc/group (uid, primary gid, supplementary groups, HOME); Docker's default capability set
and no no_new_privs.  Labels, StopSignal, ExposedPorts and Volumes become annotations (the
names of the OCI image spec's conversion section) for the engine's later pieces.
"""

from __future__ import annotations

from sangja.errors import SangjaError
from sangja.image.snapshot import read_in_root

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# moby's default capabilities (oci/caps/defaults.go)
DOCKER_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]  # fmt: skip


class UserError(SangjaError):
    pass


class ExecUser:
    """Who a process runs as (a plain class: dataclasses cost ~9 ms of import to every
    container start)."""

    __slots__ = ("uid", "gid", "additional_gids", "home")

    def __init__(self, uid: int = 0, gid: int = 0, additional_gids=None, home: str = "/"):
        self.uid, self.gid, self.home = uid, gid, home
        self.additional_gids: list[int] = list(additional_gids or [])

    def __eq__(self, other):
        return isinstance(other, ExecUser) and (self.uid, self.gid, self.additional_gids,
                                                self.home) == (other.uid, other.gid,
                                                               other.additional_gids,
                                                               other.home)  # fmt: skip

    def __repr__(self):
        return (f"ExecUser(uid={self.uid}, gid={self.gid}, "
                f"additional_gids={self.additional_gids}, home={self.home!r})")  # fmt: skip


def _entries(data: bytes | None, nfields: int):
    for line in (data or b"").decode("utf-8", "replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) < nfields:
            parts += [""] * (nfields - len(parts))
        yield parts


def _int(s: str) -> int | None:
    try:
        n = int(s)
    except ValueError:
        return None
    return n if 0 <= n < 2**32 - 1 else None


def resolve_user(rootfs: str, spec: str) -> ExecUser:
    """'', 'name', 'uid', 'name:group', 'uid:gid' (and mixed) -> ExecUser."""
    user, _, group = (spec or "").partition(":")
    passwd = read_in_root(rootfs, "/etc/passwd")
    groups = read_in_root(rootfs, "/etc/group")
    out = ExecUser()
    matched_name = None
    if user == "":
        user = "0"
    n = _int(user)
    for name, _pw, uid, gid, _gecos, home, *_ in _entries(passwd, 7):
        if (n is None and name == user) or (n is not None and _int(uid) == n):
            out.uid, out.gid, out.home = _int(uid) or 0, _int(gid) or 0, home or "/"
            matched_name = name
            break
    else:
        if n is None:
            raise UserError(f"unable to find user {user}: no matching entries in passwd file")
        out.uid = n
    if group:
        g = _int(group)
        for name, _pw, gid, _members in _entries(groups, 4):
            if (g is None and name == group) or (g is not None and _int(gid) == g):
                out.gid = _int(gid) or 0
                break
        else:
            if g is None:
                raise UserError(f"unable to find group {group}: no matching entries in group file")
            out.gid = g
    elif matched_name is not None:
        for _name, _pw, gid, members in _entries(groups, 4):
            gi = _int(gid)
            member = matched_name in members.split(",")
            if member and gi is not None and gi != out.gid and gi not in out.additional_gids:
                out.additional_gids.append(gi)
    return out


def _env_key(e: str) -> str:
    return e.split("=", 1)[0]


def merge_env(*lists) -> list[str]:
    """Later lists win, by name; order of first appearance is kept."""
    out: dict[str, str] = {}
    for lst in lists:
        for e in lst or ():
            out[_env_key(e)] = e
    return list(out.values())


def image_config(conf: dict) -> dict:
    c = conf.get("config")
    return c if isinstance(c, dict) else {}


def build(conf: dict, rootfs: str, *, command: list[str] | None = None,
          entrypoint: list[str] | None = None, env: list[str] = (), workdir: str | None = None,
          user: str | None = None, tty: bool = False, hostname: str = "sangja",
          base: dict | None = None) -> dict:  # fmt: skip
    """The config.json for a container of the image whose config is `conf`, its root file
    system mounted at `rootfs` (read for /etc/passwd and /etc/group)."""
    from sangja.runtime.defaults import default_spec

    ic = image_config(conf)
    spec = base or default_spec()
    ep = list(ic.get("Entrypoint") or []) if entrypoint is None else list(entrypoint)
    cmd = list(ic.get("Cmd") or []) if not command else list(command)
    if entrypoint is not None and not command:
        cmd = []  # docker run --entrypoint X drops the image's Cmd
    args = ep + cmd
    if not args:
        raise SangjaError("no command specified (the image has no Entrypoint or Cmd)")
    u = resolve_user(rootfs, user if user is not None else ic.get("User") or "")
    image_env = list(ic.get("Env") or [])
    defaults = [DEFAULT_PATH, f"HOSTNAME={hostname}"]
    if tty:
        defaults.append("TERM=xterm")
    merged = merge_env(defaults, image_env, env)
    if not any(_env_key(e) == "HOME" for e in merged):
        merged.append(f"HOME={u.home}")
    cwd = workdir or ic.get("WorkingDir") or "/"
    if not cwd.startswith("/"):
        raise SangjaError(f"the working directory {cwd!r} is invalid: it needs to be absolute")

    proc = spec["process"]
    proc["terminal"] = bool(tty)
    proc["args"] = args
    proc["env"] = merged
    proc["cwd"] = cwd
    proc["user"] = {"uid": u.uid, "gid": u.gid}
    if u.additional_gids:
        proc["user"]["additionalGids"] = u.additional_gids
    proc["capabilities"] = {k: list(DOCKER_CAPS) for k in ("bounding", "effective", "permitted")}
    proc["noNewPrivileges"] = False
    spec["root"] = {"path": "rootfs", "readonly": False}
    spec["hostname"] = hostname
    spec["annotations"] = annotations(conf)
    return spec


def annotations(conf: dict) -> dict:
    """The image spec's config -> annotations conversion (labels as they are)."""
    ic = image_config(conf)
    out = {}
    labels = ic.get("Labels") or {}
    if isinstance(labels, dict):
        out.update({str(k): str(v) for k, v in labels.items()})
    if conf.get("created"):
        out["org.opencontainers.image.created"] = str(conf["created"])
    if conf.get("author"):
        out["org.opencontainers.image.author"] = str(conf["author"])
    if ic.get("StopSignal"):
        out["org.opencontainers.image.stopSignal"] = str(ic["StopSignal"])
    if ic.get("ExposedPorts"):
        out["org.opencontainers.image.exposedPorts"] = ",".join(sorted(ic["ExposedPorts"]))
    if ic.get("Volumes"):
        out["org.sangja.image.volumes"] = ",".join(sorted(ic["Volumes"]))
    for k in ("os", "architecture", "variant"):
        if conf.get(k):
            out[f"org.opencontainers.image.{k}"] = str(conf[k])
    return out
