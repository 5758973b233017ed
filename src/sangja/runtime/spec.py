"""config.json: read it once and check every field we use, naming the bad one.

Types *and* ranges: every number that reaches C (or a kernel interface) is checked against
the type the spec gives it (uint32, int64, ...) and against what the kernel takes, so that no
value is cut short on the way (a uid of 4294967295 is (uid_t)-1, "unchanged" to setresuid),
and every string is checked for NUL (C would stop there) and for lone surrogates (they have
no UTF-8 form). A value that fails is a ConfigError naming the field.
"""

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

# Ranges of the spec's integer types, and of the ids the kernel takes: runc refuses uids and
# gids outside 0..2^31-1 (a negative one, as an unsigned 32-bit value, has its top bit set).
U16 = (0, (1 << 16) - 1)
U32 = (0, (1 << 32) - 1)
I32 = (-(1 << 31), (1 << 31) - 1)
I64 = (-(1 << 63), (1 << 63) - 1)
U64 = (0, (1 << 64) - 1)
IDS = (0, (1 << 31) - 1)


def _fail(where, what):
    raise ConfigError(f"config.json: {where} {what}")


def _want(value, typ, where):
    # bool is an int in Python; the spec keeps them apart.
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        _fail(where, f"must be {_TYPES[typ]}")
    return value


def _in_range(value, rng, where):
    lo, hi = rng
    if not lo <= value <= hi:
        _fail(where, f"must be {lo} to {hi}, got {value}")
    return value


def _opt(obj, key, typ, where, default=None):
    v = obj.get(key)
    if v is None:
        return default
    return _want(v, typ, f"{where}.{key}" if where else key)


def _opt_int(obj, key, where, rng, default=None):
    """An optional integer in `rng` (inclusive); `default` when absent or null."""
    v = _opt(obj, key, int, where)
    if v is None:
        return default
    return _in_range(v, rng, f"{where}.{key}" if where else key)


def _req_int(obj, key, where, rng):
    if obj.get(key) is None:
        _fail(f"{where}.{key}", "is required")
    return _opt_int(obj, key, where, rng)


def _strlist(obj, key, where):
    items = _opt(obj, key, list, where, [])
    for i, s in enumerate(items):
        _want(s, str, f"{where}.{key}[{i}]")
    return items


def _abs_path(obj, key, where, required=False):
    p = _opt(obj, key, str, where)
    if p is None:
        if required:
            _fail(f"{where}.{key}", "is required")
        return None
    if not p.startswith("/"):
        _fail(f"{where}.{key}", f"must be an absolute path, got {p!r}")
    return p


# -- strings --------------------------------------------------------------------------------

# Strings that never reach C or a path: they go out as JSON (state, hooks' stdin).
_FREE_TEXT = ("annotations", "linux.seccomp.listenerMetadata")


def check_strings(obj, where="", prefix="config.json: "):
    """Every string (keys too) outside _FREE_TEXT: no NUL, no lone surrogate. Iterative, so
    that no nesting depth can exhaust the stack."""
    stack = [(obj, where)]
    while stack:
        o, w = stack.pop()
        if w in _FREE_TEXT:
            continue
        if isinstance(o, str):
            _check_str(o, w, prefix)
        elif isinstance(o, dict):
            for k, v in o.items():
                name = k if len(k) <= 40 else k[:40] + "..."
                kw = f"{w}.{name}" if w else name
                _check_str(k, f"{w or 'the top level'}: a key", prefix)
                stack.append((v, kw))
        elif isinstance(o, list):
            stack.extend((v, f"{w}[{i}]") for i, v in enumerate(o))


def _check_str(s, where, prefix):
    if "\0" in s:
        raise ConfigError(f"{prefix}{where} must not contain NUL (\\u0000): {s[:60]!r}")
    try:
        s.encode()
    except UnicodeEncodeError as e:
        bad = s[e.start : e.end].encode("unicode_escape").decode()
        raise ConfigError(f"{prefix}{where} is not valid Unicode (lone surrogate {bad})")


def maybe_bad_strings(data):
    """Can the JSON text `data` (bytes) hold a NUL or a surrogate at all? Both need an
    escape (\\u0000, \\udXXX): most configs have neither, and skip the walk."""
    low = data.lower()
    return b"\\u0000" in low or b"\\ud" in low


# -- loading --------------------------------------------------------------------------------


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
    if maybe_bad_strings(data):
        check_strings(spec)
    validate(spec)
    return spec


def validate_process(p, where="process"):
    _want(p, dict, where)
    args = _strlist(p, "args", where)
    if not args and p.get("commandLine") is None:
        _fail(f"{where}.args", "must not be empty")
    _opt(p, "commandLine", str, where)
    cwd = p.get("cwd")
    if cwd is None:
        _fail(f"{where}.cwd", "is required")
    if not _want(cwd, str, f"{where}.cwd").startswith("/"):
        _fail(f"{where}.cwd", f"must be an absolute path, got {cwd!r}")
    _strlist(p, "env", where)
    _opt(p, "terminal", bool, where)
    _opt(p, "noNewPrivileges", bool, where)
    _opt(p, "apparmorProfile", str, where)
    _opt(p, "selinuxLabel", str, where)
    _opt_int(p, "oomScoreAdj", where, (-1000, 1000))  # what the kernel takes
    cs = _opt(p, "consoleSize", dict, where)
    if cs:
        _opt_int(cs, "height", f"{where}.consoleSize", U16)  # struct winsize: unsigned short
        _opt_int(cs, "width", f"{where}.consoleSize", U16)
    user = _opt(p, "user", dict, where, {})
    uw = f"{where}.user"
    for k in ("uid", "gid"):
        _opt_int(user, k, uw, IDS)
    _opt_int(user, "umask", uw, U32)
    for i, g in enumerate(_opt(user, "additionalGids", list, uw, [])):
        _in_range(_want(g, int, f"{uw}.additionalGids[{i}]"), IDS, f"{uw}.additionalGids[{i}]")
    caps = _opt(p, "capabilities", dict, where, {})
    for k in ("bounding", "effective", "permitted", "inheritable", "ambient"):
        _strlist(caps, k, f"{where}.capabilities")
    for i, r in enumerate(_opt(p, "rlimits", list, where, [])):
        w = f"{where}.rlimits[{i}]"
        _want(r, dict, w)
        if r.get("type") is None:
            _fail(f"{w}.type", "is required")
        _want(r["type"], str, f"{w}.type")
        for k in ("soft", "hard"):
            _req_int(r, k, w, U64)
    return p


def validate(spec):
    """Check the shape of every field sangja reads. Raises ConfigError naming the field."""
    _want(spec, dict, "the top level")
    if "ociVersion" not in spec:
        _fail("ociVersion", "is required")
    _want(spec["ociVersion"], str, "ociVersion")
    root = spec.get("root")
    if root is None:
        _fail("root", "is required")
    _want(root, dict, "root")
    if not root.get("path"):
        _fail("root.path", "is required")
    _want(root["path"], str, "root.path")
    _opt(root, "readonly", bool, "root")
    if spec.get("process") is not None:
        validate_process(spec["process"])
    _opt(spec, "hostname", str, "")
    _opt(spec, "domainname", str, "")
    for i, m in enumerate(_opt(spec, "mounts", list, "", [])):
        _validate_mount(m, f"mounts[{i}]")
    for k, v in _opt(spec, "annotations", dict, "", {}).items():
        _want(v, str, f"annotations.{k}")  # a map of strings (runc: map[string]string)
    hooks = _opt(spec, "hooks", dict, "", {})
    for stage, items in hooks.items():
        _want(items, list, f"hooks.{stage}")
        for i, h in enumerate(items):
            w = f"hooks.{stage}[{i}]"
            _want(h, dict, w)
            if not h.get("path"):
                _fail(f"{w}.path", "is required")
            _want(h["path"], str, f"{w}.path")
            _strlist(h, "args", w)
            _strlist(h, "env", w)
            # seconds; 0 (or absent) is no timeout
            _opt_int(h, "timeout", w, (0, I32[1]))
    linux = _opt(spec, "linux", dict, "", {})
    _validate_linux(spec, linux)
    return spec


def _validate_mount(m, w):
    _want(m, dict, w)
    dest = m.get("destination")
    if dest is None:
        _fail(f"{w}.destination", "is required")
    _want(dest, str, f"{w}.destination")
    # A relative destination is taken relative to "/" (spec 1.2; deprecated), as runc;
    # nothing can be mounted over the root itself (runc refuses "" and "/" too).
    if os.path.normpath(os.path.join("/", dest)) == "/":
        _fail(f"{w}.destination", f"must name a path below / (got {dest!r})")
    _opt(m, "type", str, w)
    _opt(m, "source", str, w)
    _strlist(m, "options", w)
    for key in ("uidMappings", "gidMappings"):
        _id_mappings(m, key, w)


def _id_mappings(obj, key, where):
    items = _opt(obj, key, list, where, [])
    for i, m in enumerate(items):
        w = f"{where}.{key}[{i}]"
        _want(m, dict, w)
        for k in ("containerID", "hostID"):
            _req_int(m, k, w, U32)
        if _req_int(m, "size", w, U32) == 0:
            _fail(f"{w}.size", "must not be 0")
    return items


def _validate_linux(spec, linux):
    seen = set()
    for i, ns in enumerate(_opt(linux, "namespaces", list, "linux", [])):
        w = f"linux.namespaces[{i}]"
        _want(ns, dict, w)
        t = ns.get("type")
        if not isinstance(t, str) or t not in NAMESPACES:
            _fail(f"{w}.type:", f"unknown namespace type {t!r}")
        if t in seen:
            _fail(f"{w}:", f"duplicate namespace type {t!r}")
        seen.add(t)
        _abs_path(ns, "path", w)
    for key in ("uidMappings", "gidMappings"):
        _id_mappings(linux, key, "linux")
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
            _fail(f"{w}.path", "must be an absolute path")
        if os.path.normpath(d["path"]) == "/":
            _fail(f"{w}.path", "must name a path below /")
        if d.get("type") not in ("c", "b", "u", "p"):
            _fail(f"{w}.type", "must be one of c, b, u, p")
        for k in ("major", "minor"):
            _opt_int(d, k, w, U32)
        _opt_int(d, "fileMode", w, U32)
        for k in ("uid", "gid"):
            _opt_int(d, k, w, IDS)
        if d["type"] != "p" and (d.get("major") is None or d.get("minor") is None):
            _fail(f"{w}:", "major and minor are required")
    for key in ("maskedPaths", "readonlyPaths"):
        for i, p in enumerate(_strlist(linux, key, "linux")):
            if not p.startswith("/"):
                _fail(f"linux.{key}[{i}]", f"must be an absolute path, got {p!r}")
    for k, v in _opt(linux, "sysctl", dict, "linux", {}).items():
        _want(v, str, f"linux.sysctl.{k}")
        _check_sysctl(k, seen)
    _opt(linux, "cgroupsPath", str, "linux")
    res = _opt(linux, "resources", dict, "linux")
    if res is not None and res.get("devices") is not None:
        _want(res["devices"], list, "linux.resources.devices")  # runc: `{}` is no array
    _opt(linux, "mountLabel", str, "linux")
    prop = _opt(linux, "rootfsPropagation", str, "linux")
    if prop and prop not in ("shared", "slave", "private", "unbindable", "rshared", "rslave",
                             "rprivate", "runbindable"):  # fmt: skip
        _fail("linux.rootfsPropagation:", f"unknown value {prop!r}")
    pers = _opt(linux, "personality", dict, "linux")
    if pers is not None and pers.get("domain") not in ("LINUX", "LINUX32"):
        _fail("linux.personality.domain:", f"unknown domain {pers.get('domain')!r}")
    offs = _opt(linux, "timeOffsets", dict, "linux")
    if offs:
        if "time" not in seen:
            raise ConfigError("config.json: linux.timeOffsets need a time namespace")
        for clock, o in offs.items():
            if clock not in ("monotonic", "boottime"):
                _fail("linux.timeOffsets:", f"unknown clock {clock!r}")
            w = f"linux.timeOffsets.{clock}"
            _want(o, dict, w)
            _opt_int(o, "secs", w, I64)
            _opt_int(o, "nanosecs", w, (0, 999_999_999))


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
