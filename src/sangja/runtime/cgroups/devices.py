"""Device access rules: `linux.resources.devices` in order, then runc's always-allowed devices.

The rules are first reduced the way the v1 devices controller reduces them (a default,
allow or deny, and a list of exceptions), so that v1 and v2 enforce exactly the same thing:
- v1: `v1_writes` gives the lines for devices.deny / devices.allow;
- v2: `program` gives a BPF_PROG_TYPE_CGROUP_DEVICE program (the instructions, as bytes),
  loaded and attached by sangja._native.cgroup.
Reference: runc's libcontainer/cgroups/devices (emulator, devicefilter), the kernel's
Documentation/admin-guide/cgroup-v1/devices.rst and include/uapi/linux/bpf.h.
"""

import os

from sangja.errors import ConfigError, SangjaError

WILDCARD = -1

# runc's AllowedDevices (libcontainer/specconv): appended after the spec's rules. A rule
# with a path is dropped when linux.devices has a device at the same path.
ALLOWED = (
    (None, "c", WILDCARD, WILDCARD, "m"),
    (None, "b", WILDCARD, WILDCARD, "m"),
    ("/dev/null", "c", 1, 3, "rwm"),
    ("/dev/random", "c", 1, 8, "rwm"),
    ("/dev/full", "c", 1, 7, "rwm"),
    ("/dev/tty", "c", 5, 0, "rwm"),
    ("/dev/zero", "c", 1, 5, "rwm"),
    ("/dev/urandom", "c", 1, 9, "rwm"),
    (None, "c", 136, WILDCARD, "rwm"),  # /dev/pts/*
    (None, "c", 5, 2, "rwm"),  # /dev/ptmx
    (None, "c", 10, 200, "rwm"),  # /dev/net/tun (runc 1.1.5 as Debian ships it, and 1.2)
)


class Rule:
    __slots__ = ("allow", "type", "major", "minor", "access")

    def __init__(self, allow, type, major, minor, access):
        self.allow = allow
        self.type = type  # 'a', 'b' or 'c'
        self.major = major  # WILDCARD or a number
        self.minor = minor
        self.access = access  # a subset of "rwm", in that order

    def __eq__(self, other):
        return isinstance(other, Rule) and self.tuple() == other.tuple()

    def tuple(self):
        return (self.allow, self.type, self.major, self.minor, self.access)

    def __repr__(self):
        return f"Rule({'allow' if self.allow else 'deny'} {self.line()})"

    def line(self):
        """The v1 text: 'c 1:3 rwm', 'c 136:* rwm', 'a'."""
        if self.type == "a":
            return "a"
        n = "*" if self.major == WILDCARD else str(self.major)
        m = "*" if self.minor == WILDCARD else str(self.minor)
        return f"{self.type} {n}:{m} {self.access}"


def _access(s, where):
    if not s:
        raise ConfigError(f"{where}.access must not be empty")
    if not set(s) <= set("rwm"):
        raise ConfigError(f"{where}.access must be made of r, w and m, got {s!r}")
    return "".join(c for c in "rwm" if c in s)


def _field(d, key, typ, where, what):
    v = d.get(key)
    if v is not None and (not isinstance(v, typ) or (typ is int and isinstance(v, bool))):
        raise ConfigError(f"{where}.{key} must be {what}")
    return v


def rules(linux):
    """config.json `linux` -> the ordered Rule list (the spec's, then the always-allowed)."""
    res = linux.get("resources") or {}
    if not isinstance(res, dict):
        raise ConfigError("linux.resources must be an object")
    items = res.get("devices")
    if items is None:
        items = []
    if not isinstance(items, list):  # `{}` too (runc refuses it)
        raise ConfigError("linux.resources.devices must be an array")
    out = []
    for i, d in enumerate(items):
        where = f"linux.resources.devices[{i}]"
        if not isinstance(d, dict):
            raise ConfigError(f"{where} must be an object")
        allow = _field(d, "allow", bool, where, "a boolean")
        if allow is None:
            raise ConfigError(f"{where}.allow is required")
        typ = _field(d, "type", str, where, "a string") or "a"
        if typ not in ("a", "b", "c"):
            raise ConfigError(f"{where}.type must be a, b or c, got {typ!r}")
        major = _field(d, "major", int, where, "an integer")
        minor = _field(d, "minor", int, where, "an integer")
        for k, v in (("major", major), ("minor", minor)):
            if v is not None and not WILDCARD <= v < 1 << 32:  # -1: any (as runc reads it)
                raise ConfigError(f"{where}.{k} must be -1 (any) to {(1 << 32) - 1}, got {v}")
        access = _access(_field(d, "access", str, where, "a string"), where)
        out.append(
            Rule(
                allow,
                typ,
                WILDCARD if major is None else major,
                WILDCARD if minor is None else minor,
                access,
            )
        )
    spec_paths = {d.get("path") for d in linux.get("devices") or () if isinstance(d, dict)}
    for path, typ, major, minor, access in ALLOWED:
        if path is None or path not in spec_paths:
            out.append(Rule(True, typ, major, minor, access))
    return out


class Emulator:
    """The v1 devices controller's state: a default and exceptions (runc's emulator).

    A wildcard-type rule ('a') resets: allow-all or deny-all with no exceptions. Any other
    rule adds an exception when it goes against the default, or takes access away from an
    existing exception when it goes with it. Taking access from a device that a wider
    (wildcard) exception covers cannot be expressed by v1 (it only removes exact matches):
    that is an error rather than a silently ignored rule.
    """

    def __init__(self, default_allow=True):
        self.default_allow = default_allow
        self.exceptions = {}  # (type, major, minor) -> access

    def apply(self, rule):
        if rule.type == "a":
            self.default_allow = rule.allow
            self.exceptions = {}
            return
        key = (rule.type, rule.major, rule.minor)
        if rule.allow != self.default_allow:
            old = self.exceptions.get(key, "")
            self.exceptions[key] = "".join(c for c in "rwm" if c in old or c in rule.access)
            return
        for wider in (
            (rule.type, WILDCARD, rule.minor),
            (rule.type, rule.major, WILDCARD),
            (rule.type, WILDCARD, WILDCARD),
        ):
            if wider != key and set(self.exceptions.get(wider, "")) & set(rule.access):
                w = Rule(not rule.allow, *wider, self.exceptions[wider])
                raise ConfigError(
                    f"linux.resources.devices: rule '{rule.line()}' cannot take access away "
                    f"from the wider rule '{w.line()}' before it (the devices cgroup cannot "
                    "punch a hole in a wildcard)"
                )
        left = "".join(c for c in self.exceptions.get(key, "") if c not in rule.access)
        if left:
            self.exceptions[key] = left
        else:
            self.exceptions.pop(key, None)

    def exception_rules(self):
        allow = not self.default_allow
        return [Rule(allow, t, a, b, acc) for (t, a, b), acc in self.exceptions.items()]


def reduce(rule_list, default_allow=True):
    """-> (default_allow, [exception Rule]) after applying the rules in order."""
    emu = Emulator(default_allow)
    for r in rule_list:
        emu.apply(r)
    return emu.default_allow, emu.exception_rules()


def v1_writes(rule_list, currently_allow_all=True):
    """-> [(file, line)] for a v1 devices cgroup now allowing everything (a new one under
    an unrestricted parent) or not (then the default is always written)."""
    default_allow, exceptions = reduce(rule_list)
    out = []
    if default_allow:
        if not currently_allow_all:
            out.append(("devices.allow", "a"))
        out += [("devices.deny", r.line()) for r in exceptions]
    else:
        out.append(("devices.deny", "a"))
        out += [("devices.allow", r.line()) for r in exceptions]
    return out


def apply_v1(path, rule_list):
    """Write the rules into the v1 devices cgroup at `path` (one open per file)."""
    default_allow, _ = reduce(rule_list)
    allow_all = True
    if default_allow:  # only then does what is there matter
        with open(f"{path}/devices.list") as f:
            allow_all = f.read().strip() == "a *:* rwm"
    fds = {}
    try:
        for name, line in v1_writes(rule_list, currently_allow_all=allow_all):
            if name not in fds:
                fds[name] = os.open(f"{path}/{name}", os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fds[name], line.encode())
            except OSError as e:
                raise SangjaError(
                    f"linux.resources.devices: write {line!r} to {path}/{name}: {e.strerror}",
                    errno=e.errno,
                    path=f"{path}/{name}",
                )
    finally:
        for fd in fds.values():
            os.close(fd)


# -- the v2 program -------------------------------------------------------------------------
# struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }, with
# access_type = (BPF_DEVCG_ACC_* << 16) | BPF_DEVCG_DEV_*. The program returns 1 to allow.
DEV_BLOCK, DEV_CHAR = 1, 2
ACC_MKNOD, ACC_READ, ACC_WRITE = 1, 2, 4
_ACC = {"m": ACC_MKNOD, "r": ACC_READ, "w": ACC_WRITE}

# opcodes (include/uapi/linux/bpf_common.h + bpf.h)
LDX_MEM_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W
ALU32_AND_K = 0x54  # BPF_ALU | BPF_AND | BPF_K
ALU32_RSH_K = 0x74  # BPF_ALU | BPF_RSH | BPF_K
ALU32_MOV_K = 0xB4  # BPF_ALU | BPF_MOV | BPF_K
ALU32_MOV_X = 0xBC  # BPF_ALU | BPF_MOV | BPF_X
JNE_K = 0x55  # BPF_JMP | BPF_JNE | BPF_K
JNE_X = 0x5D  # BPF_JMP | BPF_JNE | BPF_X
EXIT = 0x95  # BPF_JMP | BPF_EXIT
NEXT = object()  # a jump to the first instruction of the next block


def _block(rule):
    """The instructions of one exception: fall through to the next block unless the
    access matches, then return the rule's verdict. (code, dst, src, off, imm)."""
    out = []
    if rule.type != "a":
        out.append((JNE_K, 2, 0, NEXT, DEV_CHAR if rule.type == "c" else DEV_BLOCK))
    acc = sum(_ACC[c] for c in rule.access)
    if acc != ACC_MKNOD | ACC_READ | ACC_WRITE:
        # the access asked for must be a subset of the rule's: (R3 & acc) == R3
        out += [(ALU32_MOV_X, 1, 3, 0, 0), (ALU32_AND_K, 1, 0, 0, acc), (JNE_X, 1, 3, NEXT, 0)]
    if rule.major != WILDCARD:
        out.append((JNE_K, 4, 0, NEXT, rule.major))
    if rule.minor != WILDCARD:
        out.append((JNE_K, 5, 0, NEXT, rule.minor))
    out += [(ALU32_MOV_K, 0, 0, 0, 1 if rule.allow else 0), (EXIT, 0, 0, 0, 0)]
    return out


def program_insns(default_allow, exceptions):
    """The reduced rules -> [(code, dst, src, off, imm)]: the whole program, jumps resolved."""
    insns = [
        (LDX_MEM_W, 2, 1, 0, 0),  # r2 = ctx->access_type
        (ALU32_AND_K, 2, 0, 0, 0xFFFF),  # w2 &= 0xffff: the device type
        (LDX_MEM_W, 3, 1, 0, 0),  # r3 = ctx->access_type
        (ALU32_RSH_K, 3, 0, 0, 16),  # w3 >>= 16: the access
        (LDX_MEM_W, 4, 1, 4, 0),  # r4 = ctx->major
        (LDX_MEM_W, 5, 1, 8, 0),  # r5 = ctx->minor
    ]
    for rule in exceptions:
        block = _block(rule)
        n = len(block)
        insns += [
            (c, d, s, n - i - 1 if off is NEXT else off, imm)
            for i, (c, d, s, off, imm) in enumerate(block)
        ]
    insns += [(ALU32_MOV_K, 0, 0, 0, 1 if default_allow else 0), (EXIT, 0, 0, 0, 0)]
    return insns


def encode(insns):
    """struct bpf_insn[] (little-endian: dst_reg in the low nibble)."""
    out = bytearray()
    for code, dst, src, off, imm in insns:
        out += bytes((code, (src << 4) | dst))
        out += off.to_bytes(2, "little", signed=True) + imm.to_bytes(4, "little", signed=True)
    return bytes(out)


def program(rule_list):
    """-> (instructions as bytes, allows everything?): no program is needed for the latter."""
    default_allow, exceptions = reduce(rule_list)
    insns = program_insns(default_allow, exceptions)
    return encode(insns), default_allow and not exceptions
