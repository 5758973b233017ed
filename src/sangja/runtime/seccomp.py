"""linux.seccomp -> a BPF program for the launch plan; the notify listener's hand-over; the
default profile (Docker's).

The rules are read and checked here (a clear error naming the bad field), libseccomp builds
the program in this process (sangja._native.seccomp, imported by compile_filter only), and
the init only loads the bytes (csrc/launch/seccomp.c). Nothing else here loads libseccomp:
exec and the engine may import this module freely.
"""

import os

from sangja.errors import ConfigError

ACT_KILL_THREAD = 0x00000000
ACT_KILL_PROCESS = 0x80000000
ACT_TRAP = 0x00030000
ACT_ERRNO = 0x00050000
ACT_NOTIFY = 0x7FC00000
ACT_TRACE = 0x7FF00000
ACT_LOG = 0x7FFC0000
ACT_ALLOW = 0x7FFF0000
EPERM = 1
ENOSYS = 38

_ACTIONS = {
    "SCMP_ACT_KILL": ACT_KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": ACT_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": ACT_KILL_PROCESS,
    "SCMP_ACT_TRAP": ACT_TRAP,
    "SCMP_ACT_ERRNO": ACT_ERRNO,
    "SCMP_ACT_TRACE": ACT_TRACE,
    "SCMP_ACT_ALLOW": ACT_ALLOW,
    "SCMP_ACT_LOG": ACT_LOG,
    "SCMP_ACT_NOTIFY": ACT_NOTIFY,
}
_OPS = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}
FILTER_FLAG_TSYNC = 1
FILTER_FLAG_NEW_LISTENER = 8
_FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32,
}
# OCI names -> libseccomp's: SCMP_ARCH_X86_64 -> x86_64, SCMP_ARCH_AARCH64 -> aarch64, ...
_ARCHES = (
    "X86 X86_64 X32 ARM AARCH64 MIPS MIPS64 MIPS64N32 MIPSEL MIPSEL64 MIPSEL64N32 PPC PPC64 "
    "PPC64LE S390 S390X PARISC PARISC64 RISCV64 LOONGARCH64"
).split()


class Filter:
    """What the plan carries: the program and how to load it."""

    def __init__(self, bpf, flags, listener_path=None, listener_metadata=None):
        self.bpf = bpf
        self.flags = flags
        self.listener_path = listener_path
        self.listener_metadata = listener_metadata

    def state(self):
        """What state.json keeps for exec (the program itself goes next to it)."""
        return {"flags": self.flags, "listenerPath": self.listener_path,
                "listenerMetadata": self.listener_metadata}  # fmt: skip


def _action(name, errno_ret, where, key="errnoRet"):
    base = _ACTIONS.get(name) if isinstance(name, str) else None
    if base is None:
        raise ConfigError(f"config.json: {where}: unknown seccomp action {name!r}")
    if base in (ACT_ERRNO, ACT_TRACE):
        ret = EPERM if errno_ret is None else errno_ret
        if not isinstance(ret, int) or isinstance(ret, bool) or not 0 <= ret <= 0xFFFF:
            raise ConfigError(f"config.json: {where}: {key} must be an integer 0..65535")
        return base | ret
    if errno_ret is not None:  # the spec: an error, not silently ignored
        only = "SCMP_ACT_ERRNO and SCMP_ACT_TRACE"
        raise ConfigError(f"config.json: {where}: {key} is only for {only}, not {name}")
    return base


CACHE_ENTRIES = 64  # profiles kept per runtime root (the engine's vary with the caps only)


def compile_filter(seccomp, warn, cache_dir=None):
    """linux.seccomp (validated here) -> Filter. Unknown syscall names are skipped with a
    warning, as runc does (a profile names calls that newer kernels have).

    With `cache_dir` (state.seccomp_cache_dir), a profile compiled before by the same
    libseccomp on the same kernel is read back, warnings included: an engine gives every
    container the same profile, and compiling Docker's costs more than all the rest of
    `create`."""
    if cache_dir is None:
        return _compile(seccomp, warn)
    try:  # hashlib loads OpenSSL (~3 ms): the builtin module computes the same digest
        from _sha256 import sha256
    except ImportError:
        from hashlib import sha256

    from sangja import __version__, jsonio
    from sangja._native import seccomp as native

    try:  # json.dumps(sort_keys=True)'s text, without `import json` (re, enum: ~5 ms)
        key = jsonio.dumps_sorted([__version__, native.version(), os.uname().release,
                                   seccomp]).encode()  # fmt: skip
    except (TypeError, ValueError):  # not JSON data: let the checks name what is wrong
        return _compile(seccomp, warn)
    path = os.path.join(cache_dir, sha256(key).hexdigest())
    filt = _cached(path, warn)
    if filt is None:
        seen = []
        filt = _compile(seccomp, lambda m: (seen.append(m), warn(m)))
        _store(path, filt, seen)
    return filt


def _cached(path, warn):
    """A cache entry: one JSON line (what Filter holds but the program, the warnings),
    then the program's bytes. Anything else is no entry."""
    from sangja import jsonio

    try:
        with open(path, "rb") as f:
            head, _, bpf = f.read().partition(b"\n")
        meta = jsonio.loads(head)
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("size") != len(bpf) or len(bpf) % 8:
        return None
    for m in meta.get("warnings") or ():
        warn(m)
    return Filter(bpf, meta["flags"], meta["listenerPath"], meta["listenerMetadata"])


def _store(path, filt, warnings):
    """Written whole or not at all (a new name, renamed over); the oldest entries go
    beyond CACHE_ENTRIES. A cache that cannot be written costs only the next compile."""
    from sangja import jsonio

    d = os.path.dirname(path)
    meta = dict(filt.state(), size=len(filt.bpf), warnings=warnings)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(d, mode=0o700, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, jsonio.dumps(meta).encode() + b"\n" + filt.bpf)
        finally:
            os.close(fd)
        os.rename(tmp, path)
        entries = [os.path.join(d, n) for n in os.listdir(d) if not n.endswith(".tmp")]
        if len(entries) > CACHE_ENTRIES:
            entries.sort(key=lambda p: os.stat(p).st_mtime)
            for old in entries[: len(entries) - CACHE_ENTRIES]:
                os.unlink(old)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _compile(seccomp, warn):
    from sangja._native import seccomp as native

    if not isinstance(seccomp, dict):
        raise ConfigError("config.json: linux.seccomp must be an object")
    for key in ("architectures", "flags", "syscalls"):
        if not isinstance(seccomp.get(key) or [], list):
            raise ConfigError(f"config.json: linux.seccomp.{key} must be an array")
    default = seccomp.get("defaultAction")
    if not default:
        raise ConfigError("config.json: linux.seccomp.defaultAction is required")
    if default == "SCMP_ACT_NOTIFY":
        raise ConfigError("config.json: linux.seccomp.defaultAction cannot be SCMP_ACT_NOTIFY")
    default_action = _action(default, seccomp.get("defaultErrnoRet"), "linux.seccomp",
                             "defaultErrnoRet")  # fmt: skip

    arches = []
    for name in seccomp.get("architectures") or ():
        short = name[len("SCMP_ARCH_") :] if isinstance(name, str) else ""
        token = native.resolve_arch(short.lower()) if short in _ARCHES else 0
        if not token:
            raise ConfigError(f"config.json: linux.seccomp: unknown architecture {name!r}")
        arches.append(token)

    flags = 0
    for name in seccomp.get("flags") or ():
        if not isinstance(name, str) or name not in _FLAGS:
            raise ConfigError(f"config.json: linux.seccomp: unknown flag {name!r}")
        if not flag_supported(native, _FLAGS[name]):  # an older kernel: as runc, go on
            warn(f"seccomp: flag {name} is not supported by this kernel, ignored")
            continue
        flags |= _FLAGS[name]

    rules, notify, unknown, named = [], False, [], []
    for i, sc in enumerate(seccomp.get("syscalls") or ()):
        where = f"linux.seccomp.syscalls[{i}]"
        if not isinstance(sc, dict) or not isinstance(sc.get("names"), list) or not sc["names"]:
            raise ConfigError(f"config.json: {where}.names must be a non-empty array")
        action = _action(sc.get("action"), sc.get("errnoRet"), where)
        notify |= action == ACT_NOTIFY
        if not isinstance(sc.get("args") or [], list):
            raise ConfigError(f"config.json: {where}.args must be an array")
        conds = [_arg(a, f"{where}.args[{j}]") for j, a in enumerate(sc.get("args") or ())]
        # libseccomp refuses two conditions on one argument in a rule; as runc, such
        # conditions become one rule each (any of them matches).
        indexes = [c[0] for c in conds]
        groups = [[c] for c in conds] if len(set(indexes)) < len(indexes) else [conds]
        for name in sc["names"]:
            if not isinstance(name, str):
                raise ConfigError(f"config.json: {where}.names must be strings")
            # -1: a name this libseccomp does not know (a newer call); numbers below it are
            # libseccomp's pseudo numbers for calls of another of the filter's arches (mmap2
            # on x86_64 for i386): valid.
            named.append(name)
            nr = native.resolve_syscall(name)
            if nr == -1:
                if name not in unknown:
                    unknown.append(name)
                continue
            for g in groups:
                if action != default_action:  # a rule that does what the default does: none
                    rules.append((nr, action, g))
    if unknown:
        warn(f"seccomp: syscalls unknown to libseccomp ignored: {', '.join(unknown)}")

    listener = seccomp.get("listenerPath")
    if listener is not None and not isinstance(listener, str):
        raise ConfigError("config.json: linux.seccomp.listenerPath must be a string")
    if seccomp.get("listenerMetadata") is not None and not isinstance(
        seccomp["listenerMetadata"], str
    ):
        raise ConfigError("config.json: linux.seccomp.listenerMetadata must be a string")
    if seccomp.get("listenerMetadata") is not None and not listener:
        raise ConfigError("config.json: linux.seccomp.listenerMetadata needs listenerPath")
    if notify:
        if not listener:
            raise ConfigError(
                "config.json: linux.seccomp.listenerPath is required for SCMP_ACT_NOTIFY"
            )
        if not isinstance(listener, str) or not listener.startswith("/"):
            raise ConfigError("config.json: linux.seccomp.listenerPath must be an absolute path")
        flags |= FILTER_FLAG_NEW_LISTENER
        # The kernel refuses TSYNC with a listener; the init has one thread anyway.
        flags &= ~FILTER_FLAG_TSYNC
    elif flags & _FLAGS["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]:
        raise ConfigError(
            "config.json: linux.seccomp: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs "
            "SCMP_ACT_NOTIFY rules"
        )
    stub = named if enosys_stub(default_action) else None
    bpf = native.compile(default_action, arches, rules, stub)
    return Filter(bpf, flags, listener if notify else None, seccomp.get("listenerMetadata"))


def flag_supported(native, flag):
    """Does this kernel take SECCOMP_FILTER_FLAG_* `flag`? WAIT_KILLABLE_RECV only comes
    with a listener (the kernel refuses it alone)."""
    if flag == _FLAGS["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]:
        flag |= FILTER_FLAG_NEW_LISTENER
    return native.flag_supported(flag)


def enosys_stub(default_action):
    """runc's rule: a call newer than every one the profile names answers ENOSYS, not the
    default action, so that programs fall back to the older calls it allows (glibc from
    clone3, faccessat2). Not when the default allows (or traces) anyway, nor when it is
    ENOSYS already."""
    base = default_action & 0xFFFF0000
    return base not in (ACT_ALLOW, ACT_LOG, ACT_TRACE) and default_action != ACT_ERRNO | ENOSYS


def _arg(a, where):
    if not isinstance(a, dict):
        raise ConfigError(f"config.json: {where} must be an object")
    index, op = a.get("index"), a.get("op")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index <= 5:
        raise ConfigError(f"config.json: {where}.index must be 0..5")
    if not isinstance(op, str) or op not in _OPS:
        raise ConfigError(f"config.json: {where}: unknown seccomp operator {op!r}")
    value, value_two = a.get("value", 0), a.get("valueTwo", 0)
    for k, v in (("value", value), ("valueTwo", value_two)):
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 1 << 64:
            raise ConfigError(f"config.json: {where}.{k} must be an unsigned 64-bit integer")
    return (index, value, value_two, _OPS[op])


def send_listener(path, metadata, fd, pid, state):
    """The spec's container process state, to `path` (AF_UNIX, SOCK_STREAM), with the notify
    fd in SCM_RIGHTS: one message per connection, then closed."""
    import _socket
    import sys

    from sangja import OCI_VERSION, jsonio
    from sangja.errors import SangjaError

    msg = {"ociVersion": OCI_VERSION, "fds": ["seccompFd"], "pid": pid, "state": state}
    if metadata:
        msg["metadata"] = metadata
    data = jsonio.dumps(msg).encode()
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        s.connect(path)
        rights = fd.to_bytes(4, sys.byteorder, signed=True)
        n = s.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])
        if n < len(data):  # the fd went with the first part, as the spec asks
            s.sendall(data[n:])
    except OSError as e:
        raise SangjaError(f"seccomp: send the listener fd to {path}: {e.strerror or e}",
                          errno=e.errno or 0, path=path)  # fmt: skip
    finally:
        s.close()


DEFAULT_PROFILE = os.path.join(os.path.dirname(__file__), "seccomp_default.json")
_RULE_KEYS = ("names", "action", "errnoRet", "args")


def default_profile(capabilities=(), machine=None):
    """sangja's default profile (seccomp_default.json: Docker's default, in groups) rendered as
    an OCI linux.seccomp for a container whose bounding set is `capabilities`, on `machine`
    (os.uname().machine when None), as Docker renders its own per container."""
    from sangja import jsonio

    with open(DEFAULT_PROFILE, "rb") as f:
        p = jsonio.loads(f.read())
    machine = machine or os.uname().machine
    caps = set(capabilities)
    allow = {n for names in p["allow"].values() for n in names}
    allow.update(p["allowOnMachine"].get(machine, ()))
    for cap, names in p["allowWithCapability"].items():
        if cap in caps:
            allow.update(names)
    rules = list(p["rules"])
    for cap, extra in p["rulesWithoutCapability"].items():
        if cap not in caps:
            rules += extra
    out = {"defaultAction": p["defaultAction"], "defaultErrnoRet": p["defaultErrnoRet"]}
    if p["architectures"].get(machine):
        out["architectures"] = list(p["architectures"][machine])
    out["syscalls"] = [{"names": sorted(allow), "action": "SCMP_ACT_ALLOW"}]
    for r in rules:
        if r.get("machines") and machine not in r["machines"]:
            continue
        if machine in r.get("notMachines", ()):
            continue
        if r["action"] == "SCMP_ACT_ALLOW" and set(r["names"]) <= allow:
            continue  # allowed outright already (clone with CAP_SYS_ADMIN)
        out["syscalls"].append({k: r[k] for k in _RULE_KEYS if k in r})
    return out


# What this module recognises, by the spec's names (`sangja features` lists them).
ACTIONS, OPERATORS, FLAGS, ARCHES = _ACTIONS, _OPS, _FLAGS, _ARCHES
