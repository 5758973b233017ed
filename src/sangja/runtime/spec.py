"""config.json: read it once and check every field we use, naming the bad one."""

import os

from sangja import jsonio
from sangja.errors import ConfigError
from sangja.runtime.constants import NAMESPACES

_TYPES = {
    str: "a string",
    int: "an integer",
    bool: "a boolean",
    list: "an array",
    dict: "an object",
}


def _want(value, typ, where):
    # bool is an int in Python; the spec keeps them apart.
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise ConfigError(f"config.json: {where} must be {_TYPES[typ]}")
    return value


def _opt(obj, key, typ, where, default=None):
    v = obj.get(key)
    if v is None:
        return default
    return _want(v, typ, f"{where}.{key}" if where else key)


def _strlist(obj, key, where):
    items = _opt(obj, key, list, where, [])
    for i, s in enumerate(items):
        _want(s, str, f"{where}.{key}[{i}]")
    return items


def load(bundle):
    """Read `bundle`/config.json; return the parsed, validated dict."""
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ConfigError(f"config.json not found in bundle {bundle}", errno=2, path=path)
    except OSError as e:
        raise ConfigError(f"open {path}: {e.strerror}", errno=e.errno, path=path)
    try:
        spec = jsonio.loads(data)
    except ValueError as e:
        raise ConfigError(f"config.json: invalid JSON: {e}", path=path)
    validate(spec)
    return spec


def validate_process(p, where="process"):
    _want(p, dict, where)
    args = _strlist(p, "args", where)
    if not args and p.get("commandLine") is None:
        raise ConfigError(f"config.json: {where}.args must not be empty")
    cwd = p.get("cwd")
    if cwd is None:
        raise ConfigError(f"config.json: {where}.cwd is required")
    if not _want(cwd, str, f"{where}.cwd").startswith("/"):
        raise ConfigError(f"config.json: {where}.cwd must be an absolute path, got {cwd!r}")
    _strlist(p, "env", where)
    _opt(p, "terminal", bool, where)
    _opt(p, "noNewPrivileges", bool, where)
    _opt(p, "apparmorProfile", str, where)
    _opt(p, "selinuxLabel", str, where)
    _opt(p, "oomScoreAdj", int, where)
    cs = _opt(p, "consoleSize", dict, where)
    if cs:
        _opt(cs, "height", int, f"{where}.consoleSize")
        _opt(cs, "width", int, f"{where}.consoleSize")
    user = _opt(p, "user", dict, where, {})
    for k in ("uid", "gid", "umask"):
        v = _opt(user, k, int, f"{where}.user")
        if v is not None and v < 0:
            raise ConfigError(f"config.json: {where}.user.{k} must not be negative")
    for i, g in enumerate(_opt(user, "additionalGids", list, f"{where}.user", [])):
        _want(g, int, f"{where}.user.additionalGids[{i}]")
    caps = _opt(p, "capabilities", dict, where, {})
    for k in ("bounding", "effective", "permitted", "inheritable", "ambient"):
        _strlist(caps, k, f"{where}.capabilities")
    for i, r in enumerate(_opt(p, "rlimits", list, where, [])):
        w = f"{where}.rlimits[{i}]"
        _want(r, dict, w)
        if r.get("type") is None:
            raise ConfigError(f"config.json: {w}.type is required")
        _want(r["type"], str, f"{w}.type")
        for k in ("soft", "hard"):
            v = r.get(k)
            if v is None:
                raise ConfigError(f"config.json: {w}.{k} is required")
            _want(v, int, f"{w}.{k}")
    return p


def validate(spec):
    """Check the shape of every field sangja reads. Raises ConfigError naming the field."""
    _want(spec, dict, "the top level")
    if "ociVersion" not in spec:
        raise ConfigError("config.json: ociVersion is required")
    _want(spec["ociVersion"], str, "ociVersion")
    root = spec.get("root")
    if root is None:
        raise ConfigError("config.json: root is required")
    _want(root, dict, "root")
    if not root.get("path"):
        raise ConfigError("config.json: root.path is required")
    _want(root["path"], str, "root.path")
    _opt(root, "readonly", bool, "root")
    if spec.get("process") is not None:
        validate_process(spec["process"])
    _opt(spec, "hostname", str, "")
    _opt(spec, "domainname", str, "")
    for i, m in enumerate(_opt(spec, "mounts", list, "", [])):
        w = f"mounts[{i}]"
        _want(m, dict, w)
        dest = m.get("destination")
        if dest is None:
            raise ConfigError(f"config.json: {w}.destination is required")
        _want(dest, str, f"{w}.destination")
        # A relative destination is taken relative to "/" (spec 1.2; deprecated), as runc.
        _opt(m, "type", str, w)
        _opt(m, "source", str, w)
        _strlist(m, "options", w)
    _opt(spec, "annotations", dict, "")
    hooks = _opt(spec, "hooks", dict, "", {})
    for stage, items in hooks.items():
        _want(items, list, f"hooks.{stage}")
        for i, h in enumerate(items):
            w = f"hooks.{stage}[{i}]"
            _want(h, dict, w)
            if not h.get("path"):
                raise ConfigError(f"config.json: {w}.path is required")
            _want(h["path"], str, f"{w}.path")
            _strlist(h, "args", w)
            _strlist(h, "env", w)
            _opt(h, "timeout", int, w)
    linux = _opt(spec, "linux", dict, "", {})
    _validate_linux(spec, linux)
    return spec


def _validate_linux(spec, linux):
    seen = set()
    for i, ns in enumerate(_opt(linux, "namespaces", list, "linux", [])):
        w = f"linux.namespaces[{i}]"
        _want(ns, dict, w)
        t = ns.get("type")
        if t not in NAMESPACES:
            raise ConfigError(f"config.json: {w}.type: unknown namespace type {t!r}")
        if t in seen:
            raise ConfigError(f"config.json: {w}: duplicate namespace type {t!r}")
        seen.add(t)
        _opt(ns, "path", str, w)
    for key in ("uidMappings", "gidMappings"):
        for i, m in enumerate(_opt(linux, key, list, "linux", [])):
            w = f"linux.{key}[{i}]"
            _want(m, dict, w)
            for k in ("containerID", "hostID", "size"):
                if m.get(k) is None:
                    raise ConfigError(f"config.json: {w}.{k} is required")
                _want(m[k], int, f"{w}.{k}")
    if (linux.get("uidMappings") or linux.get("gidMappings")) and "user" not in seen:
        raise ConfigError("config.json: uid/gid mappings need a user namespace")
    new_userns = "user" in seen and not _ns_path(linux, "user")
    if new_userns and not (linux.get("uidMappings") and linux.get("gidMappings")):
        raise ConfigError("config.json: a new user namespace needs uidMappings and gidMappings")
    if spec.get("hostname") and "uts" not in seen:
        raise ConfigError("config.json: unable to set hostname without a private UTS namespace")
    if spec.get("domainname") and "uts" not in seen:
        raise ConfigError("config.json: unable to set domainname without a private UTS namespace")
    for i, d in enumerate(_opt(linux, "devices", list, "linux", [])):
        w = f"linux.devices[{i}]"
        _want(d, dict, w)
        if not isinstance(d.get("path"), str) or not d["path"].startswith("/"):
            raise ConfigError(f"config.json: {w}.path must be an absolute path")
        if d.get("type") not in ("c", "b", "u", "p"):
            raise ConfigError(f"config.json: {w}.type must be one of c, b, u, p")
        for k in ("major", "minor", "fileMode", "uid", "gid"):
            _opt(d, k, int, w)
        if d["type"] != "p" and (d.get("major") is None or d.get("minor") is None):
            raise ConfigError(f"config.json: {w}: major and minor are required")
    _strlist(linux, "maskedPaths", "linux")
    _strlist(linux, "readonlyPaths", "linux")
    for k, v in _opt(linux, "sysctl", dict, "linux", {}).items():
        _want(v, str, f"linux.sysctl.{k}")
        _check_sysctl(k, seen)
    _opt(linux, "cgroupsPath", str, "linux")
    _opt(linux, "resources", dict, "linux")
    prop = _opt(linux, "rootfsPropagation", str, "linux")
    if prop and prop not in ("shared", "slave", "private", "unbindable", "rshared", "rslave",
                             "rprivate", "runbindable"):  # fmt: skip
        raise ConfigError(f"config.json: linux.rootfsPropagation: unknown value {prop!r}")
    pers = _opt(linux, "personality", dict, "linux")
    if pers is not None and pers.get("domain") not in ("LINUX", "LINUX32"):
        raise ConfigError(
            f"config.json: linux.personality.domain: unknown domain {pers.get('domain')!r}"
        )
    offs = _opt(linux, "timeOffsets", dict, "linux")
    if offs:
        if "time" not in seen:
            raise ConfigError("config.json: linux.timeOffsets need a time namespace")
        for clock, o in offs.items():
            if clock not in ("monotonic", "boottime"):
                raise ConfigError(f"config.json: linux.timeOffsets: unknown clock {clock!r}")
            _want(o, dict, f"linux.timeOffsets.{clock}")
            _opt(o, "secs", int, f"linux.timeOffsets.{clock}")
            _opt(o, "nanosecs", int, f"linux.timeOffsets.{clock}")


def _ns_path(linux, typ):
    for ns in linux.get("namespaces") or ():
        if ns.get("type") == typ:
            return ns.get("path")
    return None


_IPC_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")  # fmt: skip


def _check_sysctl(key, namespaces):
    # As runc: only namespaced sysctls, and only with the namespace they belong to.
    key = key.replace("/", ".")  # "net/ipv4/ip_forward" is accepted too (see plan.sysctl_path)
    if key in _IPC_SYSCTLS or key.startswith("fs.mqueue."):
        ns = "ipc"
    elif key.startswith("net."):
        ns = "network"
    elif key in ("kernel.hostname", "kernel.domainname"):
        ns = "uts"
    else:
        raise ConfigError(f"config.json: linux.sysctl: {key!r} is not a namespaced sysctl")
    if ns not in namespaces:
        raise ConfigError(f"config.json: linux.sysctl: {key!r} needs a new {ns} namespace")
