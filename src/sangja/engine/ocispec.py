"""A container's runtime spec (config.json), from its image config and its create body, as
Docker makes it: args = Entrypoint + Cmd (a given Entrypoint drops the image's Cmd), Env
(PATH, HOSTNAME, TERM with a tty, the image's, then the body's), WorkingDir, User resolved
through the image's own /etc/passwd and /etc/group, Docker's default capabilities and
seccomp profile, masked and read-only /proc and /sys paths, /dev/shm of ShmSize, the
container's /etc/hostname, /etc/hosts and /etc/resolv.conf, and the resources and security
options of HostConfig.  `--privileged` is what Docker makes it: every capability this host
lets us hold, every host device, no seccomp, /sys and the cgroup mount writable, nothing
masked.

Also here: the container's init layer (mount targets kept out of its writable layer).
"""

from __future__ import annotations

import os
import stat

from sangja.engine.errors import EngineError, InvalidArgument

DOCKER_MASKED = [
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
]  # fmt: skip
DOCKER_READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
INIT_PATH = "/dev/init"  # where --init's program (catatonit) is bound
INIT_PROGRAMS = ("/usr/bin/catatonit", "/usr/libexec/podman/catatonit")
# the mount targets the init layer holds: files, and the directories they live in
INIT_FILES = ("/etc/hostname", "/etc/hosts", "/etc/resolv.conf")
INIT_DIRS = ("/proc", "/sys", "/dev")
_SKIP_DEVICES = {"console", "pts", "shm", "mqueue", "ptmx", "fd", "stdin", "stdout", "stderr",
                 "null", "zero", "full", "random", "urandom", "tty", "core"}  # fmt: skip
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386", "armv7l": "arm",
           "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}  # fmt: skip
_SCMP_ARCH = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64",
              "i686": "SCMP_ARCH_X86", "armv7l": "SCMP_ARCH_ARM", "ppc64le": "SCMP_ARCH_PPC64LE",
              "s390x": "SCMP_ARCH_S390X", "riscv64": "SCMP_ARCH_RISCV64"}  # fmt: skip


# ---- the init layer -------------------------------------------------------------------------


def _lookup(lowers: list[str], rel: str) -> os.stat_result | None:
    """lstat of `rel` in the image's merged view (lower dirs topmost first)."""
    parts = [p for p in rel.strip("/").split("/") if p]
    for layer in lowers:
        # a whiteout or an opaque directory on the way hides what lies below
        cur = layer
        hidden = False
        for i, part in enumerate(parts):
            p = os.path.join(cur, part)
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                if _opaque(cur):
                    hidden = True
                break
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                hidden = True  # whiteout
                break
            if i == len(parts) - 1:
                return st
            cur = p
        if hidden:
            return None
    return None


def _opaque(d: str) -> bool:
    try:
        return os.getxattr(d, "trusted.overlay.opaque") == b"y"
    except OSError:
        return False


def make_init_layer(path: str, lowers: list[str]) -> None:
    """The mount targets of every container (/etc/hostname, /etc/hosts, /etc/resolv.conf,
    /proc, /sys, /dev) in a layer of the container's own between the image and its writable
    layer (as Docker's "-init" layer): they exist whatever the image holds, and never show
    in `diff` or a commit.  A directory the image has is made with the image's mode and
    owner (the topmost layer's directory attributes win in overlayfs); nothing is made
    where the image has a symlink."""
    os.makedirs(path, mode=0o755, exist_ok=True)

    def mkdirs(rel: str) -> bool:
        cur = ""
        for part in [p for p in rel.strip("/").split("/") if p]:
            cur += "/" + part
            st = _lookup(lowers, cur)
            if st is not None and not stat.S_ISDIR(st.st_mode):
                return False  # a symlink (or a file) in the image: leave it be
            target = path + cur
            if not os.path.isdir(target):
                os.mkdir(target, 0o755)
                if st is not None:
                    os.chown(target, st.st_uid, st.st_gid)
                    os.chmod(target, stat.S_IMODE(st.st_mode))
        return True

    for d in INIT_DIRS:
        mkdirs(d)
    for f in INIT_FILES:
        parent = os.path.dirname(f)
        st = _lookup(lowers, f)
        if st is not None and not stat.S_ISREG(st.st_mode):
            continue
        if mkdirs(parent) and not os.path.exists(path + f):
            os.close(os.open(path + f, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))


def write_etc_files(paths, hostname: str, domainname: str, network_mode: str) -> None:
    """/etc/hostname, /etc/hosts and /etc/resolv.conf of the container (bind-mounted).
    Networks (issue 15) write their own: addresses, aliases, the network's DNS."""
    fqdn = f"{hostname}.{domainname}" if domainname else hostname
    if network_mode == "host":
        hosts = _read("/etc/hosts") or "127.0.0.1\tlocalhost\n"
    else:
        hosts = (
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
            f"ff02::2\tip6-allrouters\n127.0.1.1\t{fqdn} {hostname}\n"
        )
    resolv = _read("/etc/resolv.conf") or ""
    if network_mode != "host":
        # Docker's filtering: nameservers on the host's loopback mean nothing in the container
        lines = [
            ln for ln in resolv.splitlines()
            if not (ln.split()[:1] == ["nameserver"] and _loopback(ln.split()[1:2]))
        ]  # fmt: skip
        resolv = "\n".join(lines) + ("\n" if lines else "")
    for p, text in ((paths.hostname, hostname + "\n"), (paths.hosts, hosts),
                    (paths.resolv, resolv)):  # fmt: skip
        tmp = p + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.rename(tmp, p)


def _read(p: str) -> str | None:
    try:
        with open(p) as f:
            return f.read()
    except OSError:
        return None


def _loopback(words) -> bool:
    return bool(words) and (words[0].startswith("127.") or words[0] == "::1")


# ---- the spec --------------------------------------------------------------------------------


def host_capabilities() -> list[str]:
    """The capabilities this process may give (its bounding set): what --privileged gets."""
    from sangja.runtime.constants import CAPABILITIES

    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    mask = int(line.split()[1], 16)
                    return [c for i, c in enumerate(CAPABILITIES) if mask >> i & 1]
    except OSError:
        pass
    return list(CAPABILITIES)


def capabilities(hc: dict) -> list[str]:
    from sangja.image.runspec import DOCKER_CAPS
    from sangja.runtime.constants import CAPABILITIES

    have = host_capabilities()
    if hc.get("Privileged"):
        return have

    def norm(c: str) -> str:
        c = c.upper()
        if c == "ALL":
            return c
        c = c if c.startswith("CAP_") else "CAP_" + c
        if c not in CAPABILITIES:
            raise InvalidArgument(f"unknown capability: {c!r}")
        return c

    add = [norm(c) for c in hc.get("CapAdd") or ()]
    drop = [norm(c) for c in hc.get("CapDrop") or ()]
    caps = list(DOCKER_CAPS)
    if "ALL" in add:
        caps = list(have)
    caps += [c for c in add if c != "ALL" and c not in caps]
    if "ALL" in drop:
        caps = [c for c in caps if c in add and c != "ALL"]
    else:
        caps = [c for c in caps if c not in drop]
    return [c for c in CAPABILITIES if c in caps]


def args_of(cfg: dict, image_cfg: dict, init: bool) -> list[str]:
    ep = cfg.get("Entrypoint")
    cmd = cfg.get("Cmd")
    if ep is None:
        ep = list(image_cfg.get("Entrypoint") or [])
        if not cmd:
            cmd = list(image_cfg.get("Cmd") or [])
    else:
        ep = [a for a in ep] if ep != [""] else []
        cmd = list(cmd or [])  # a given Entrypoint drops the image's Cmd (Docker)
    args = list(ep) + list(cmd or [])
    if not args:
        raise InvalidArgument("No command specified (the image has no Entrypoint or Cmd)")
    if init:
        args = [INIT_PATH, "--"] + args
    return args


def init_program() -> str:
    for p in INIT_PROGRAMS:
        if os.access(p, os.X_OK):
            return p
    raise EngineError("--init: catatonit is not installed (apt-get install catatonit)")


def build(body: dict, image_conf: dict, *, cid: str, name: str, paths, rootfs: str) -> dict:
    """config.json for the container; `rootfs` is its root, mounted (the image's /etc/passwd
    and /etc/group are read from it)."""
    from sangja.image import runspec
    from sangja.runtime.defaults import default_spec

    cfg, hc = body["Config"], body["HostConfig"]
    icfg = runspec.image_config(image_conf)
    spec = default_spec()
    privileged = bool(hc.get("Privileged"))
    net = hc.get("NetworkMode") or "default"
    hostname = cfg.get("Hostname") or (os.uname().nodename if net == "host" else cid[:12])

    proc = spec["process"]
    proc["terminal"] = bool(cfg.get("Tty"))
    size = console_size(hc.get("ConsoleSize")) if cfg.get("Tty") else None
    if size:
        proc["consoleSize"] = size
    proc["args"] = args_of(cfg, icfg, bool(hc.get("Init")))
    user = cfg.get("User") or icfg.get("User") or ""
    try:
        u = runspec.resolve_user(rootfs, user)
    except runspec.UserError as e:
        raise EngineError(str(e))
    gids = list(u.additional_gids)
    for g in hc.get("GroupAdd") or ():
        gid = _group(rootfs, g)
        if gid not in gids:
            gids.append(gid)
    proc["user"] = {"uid": u.uid, "gid": u.gid}
    if gids:
        proc["user"]["additionalGids"] = gids
    defaults = [runspec.DEFAULT_PATH, f"HOSTNAME={hostname}"]
    if cfg.get("Tty"):
        defaults.append("TERM=xterm")
    env = runspec.merge_env(defaults, icfg.get("Env") or [], cfg.get("Env") or [])
    if not any(e.split("=", 1)[0] == "HOME" for e in env):
        env.append(f"HOME={u.home}")
    proc["env"] = env
    proc["cwd"] = cfg.get("WorkingDir") or icfg.get("WorkingDir") or "/"
    if not proc["cwd"].startswith("/"):
        raise InvalidArgument(f"the working directory {proc['cwd']!r} is not absolute")
    caps = capabilities(hc)
    proc["capabilities"] = {k: list(caps) for k in ("bounding", "effective", "permitted")}
    proc["noNewPrivileges"] = _no_new_privileges(hc)
    proc.pop("rlimits", None)  # Docker's default: the limits the engine runs with
    rl = []
    for ul in hc.get("Ulimits") or ():
        rl.append({"type": f"RLIMIT_{ul['Name'].upper()}", "soft": ul.get("Soft", 0),
                   "hard": ul.get("Hard", 0)})  # fmt: skip
    rl += _default_ulimits({ul["Name"] for ul in hc.get("Ulimits") or ()})
    if rl:
        proc["rlimits"] = rl
    if hc.get("OomScoreAdj"):
        proc["oomScoreAdj"] = hc["OomScoreAdj"]

    spec["root"] = {"path": "rootfs", "readonly": bool(hc.get("ReadonlyRootfs"))}
    spec["hostname"] = hostname
    if cfg.get("Domainname"):
        spec["domainname"] = cfg["Domainname"]
    spec["mounts"] = _mounts(spec["mounts"], hc, paths, privileged)
    linux = spec["linux"]
    linux["namespaces"] = _namespaces(hc)
    if hc.get("UTSMode") == "host":
        spec.pop("hostname", None)
    linux["maskedPaths"] = [] if privileged else list(DOCKER_MASKED)
    linux["readonlyPaths"] = [] if privileged else list(DOCKER_READONLY)
    parent = hc.get("CgroupParent") or _default_cgroup_parent()
    linux["cgroupsPath"] = f"{'' if parent.startswith('/') else '/'}{parent}/{cid}"
    linux["resources"] = resources(hc)
    devices, rules = _devices(hc, privileged)
    if devices:
        linux["devices"] = devices
    linux["resources"]["devices"] = rules
    if hc.get("Sysctls"):
        linux["sysctl"] = dict(hc["Sysctls"])
    sc = _seccomp(hc, caps, privileged)
    if sc is not None:
        linux["seccomp"] = sc
    ann = runspec.annotations(image_conf)
    ann["org.sangja.container.name"] = name
    spec["annotations"] = ann
    return spec


def _default_cgroup_parent() -> str:
    from sangja.image.config import cgroup_parent

    return cgroup_parent()


def _group(rootfs: str, g: str) -> int:
    from sangja.image.snapshot import read_in_root

    if str(g).isdigit():
        return int(g)
    for line in (read_in_root(rootfs, "/etc/group") or b"").decode(errors="replace").splitlines():
        parts = line.split(":")
        if len(parts) >= 3 and parts[0] == g and parts[2].isdigit():
            return int(parts[2])
    raise EngineError(f"unable to find group {g}: no matching entries in group file")


def _no_new_privileges(hc: dict) -> bool:
    for opt in hc.get("SecurityOpt") or ():
        key, _, val = opt.replace(":", "=", 1).partition("=")
        if key == "no-new-privileges":
            return val in ("", "true")
    return False


def _mounts(base: list[dict], hc: dict, paths, privileged: bool) -> list[dict]:
    out = []
    for m in base:
        m = dict(m, options=list(m.get("options") or []))
        if m["destination"] == "/dev/shm":
            if hc.get("IpcMode") == "host":
                m = {"destination": "/dev/shm", "type": "bind", "source": "/dev/shm",
                     "options": ["rbind", "nosuid", "noexec", "nodev"]}  # fmt: skip
            else:
                m["options"] = [o for o in m["options"] if not o.startswith("size=")]
                m["options"].append(f"size={hc.get('ShmSize') or 67108864}")
        elif m["destination"] in ("/sys", "/sys/fs/cgroup") and privileged:
            m["options"] = [o for o in m["options"] if o != "ro"] + ["rw"]
        out.append(m)
    for dest, opts in (hc.get("Tmpfs") or {}).items():
        given = [o for o in (opts or "").split(",") if o]
        base_opts = ["nosuid", "nodev", "noexec"]
        keys = {o.split("=", 1)[0] for o in given}
        if "exec" in keys:
            base_opts.remove("noexec")
        if "suid" in keys:
            base_opts.remove("nosuid")
        if "dev" in keys:
            base_opts.remove("nodev")
        out.append({"destination": dest, "type": "tmpfs", "source": "tmpfs",
                    "options": base_opts + given})  # fmt: skip
    for src, dest in ((paths.hostname, "/etc/hostname"), (paths.hosts, "/etc/hosts"),
                      (paths.resolv, "/etc/resolv.conf")):  # fmt: skip
        out.append({"destination": dest, "type": "bind", "source": src,
                    "options": ["rbind", "rprivate"]})  # fmt: skip
    if hc.get("Init"):
        out.append({"destination": INIT_PATH, "type": "bind", "source": init_program(),
                    "options": ["bind", "ro", "nosuid", "nodev"]})  # fmt: skip
    return out


def _namespaces(hc: dict) -> list[dict]:
    drop = set()
    if hc.get("PidMode") == "host":
        drop.add("pid")
    if (hc.get("NetworkMode") or "default") == "host":
        drop.add("network")
    if hc.get("IpcMode") == "host":
        drop.add("ipc")
    if hc.get("UTSMode") == "host":
        drop.add("uts")
    out = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount") if t not in drop]
    if hc.get("CgroupnsMode") == "private":
        out.append({"type": "cgroup"})
    return out


def resources(hc: dict) -> dict:
    """HostConfig's resources -> linux.resources (runc's LinuxResources), as Docker maps
    them.  Also what `update` sends the runtime for a running container."""
    r: dict = {}
    mem: dict = {}
    if hc.get("Memory"):
        mem["limit"] = hc["Memory"]
        swap = hc.get("MemorySwap") or 0
        mem["swap"] = -1 if swap == -1 else (swap or 2 * hc["Memory"])
    elif hc.get("MemorySwap") == -1:
        mem["swap"] = -1
    if hc.get("MemoryReservation"):
        mem["reservation"] = hc["MemoryReservation"]
    if hc.get("MemorySwappiness") not in (None, -1):
        mem["swappiness"] = hc["MemorySwappiness"]
    if hc.get("OomKillDisable"):
        mem["disableOOMKiller"] = True
    if hc.get("KernelMemory"):
        mem["kernel"] = hc["KernelMemory"]
    if mem:
        r["memory"] = mem
    cpu: dict = {}
    if hc.get("CpuShares"):
        cpu["shares"] = hc["CpuShares"]
    if hc.get("NanoCpus"):
        cpu["period"] = 100000
        cpu["quota"] = hc["NanoCpus"] * 100000 // 1_000_000_000
    if hc.get("CpuPeriod"):
        cpu["period"] = hc["CpuPeriod"]
    if hc.get("CpuQuota"):
        cpu["quota"] = hc["CpuQuota"]
    if hc.get("CpusetCpus"):
        cpu["cpus"] = hc["CpusetCpus"]
    if hc.get("CpusetMems"):
        cpu["mems"] = hc["CpusetMems"]
    if hc.get("CpuRealtimePeriod"):
        cpu["realtimePeriod"] = hc["CpuRealtimePeriod"]
    if hc.get("CpuRealtimeRuntime"):
        cpu["realtimeRuntime"] = hc["CpuRealtimeRuntime"]
    if cpu:
        r["cpu"] = cpu
    if hc.get("PidsLimit"):
        r["pids"] = {"limit": hc["PidsLimit"] if hc["PidsLimit"] > 0 else -1}
    if hc.get("BlkioWeight"):
        r["blockIO"] = {"weight": hc["BlkioWeight"]}
    return r


def _device_entry(host: str, inside: str, perms: str) -> tuple[dict, dict]:
    try:
        st = os.stat(host)
    except OSError as e:
        raise InvalidArgument(f"error gathering device information while adding custom device"
                              f" {host!r}: {e.strerror}")  # fmt: skip
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        raise InvalidArgument(f"{host}: not a device node")
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    dev = {"path": inside, "type": kind, "major": major, "minor": minor,
           "fileMode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid}  # fmt: skip
    rule = {"allow": True, "type": kind, "major": major, "minor": minor, "access": perms}
    return dev, rule


def _devices(hc: dict, privileged: bool) -> tuple[list[dict], list[dict]]:
    devices: list[dict] = []
    rules: list[dict] = [{"allow": False, "access": "rwm"}]
    if privileged:
        rules = [{"allow": True, "access": "rwm"}]
        for root, dirs, files in os.walk("/dev"):
            dirs[:] = [d for d in dirs if d not in _SKIP_DEVICES]
            for f in files:
                p = os.path.join(root, f)
                if root == "/dev" and f in _SKIP_DEVICES or os.path.islink(p):
                    continue
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                    devices.append(_device_entry(p, p, "rwm")[0])
    for d in hc.get("Devices") or ():
        host = d["PathOnHost"]
        inside = d.get("PathInContainer") or host
        perms = d.get("CgroupPermissions") or "rwm"
        if os.path.isdir(host):
            for root, _dirs, files in os.walk(host):
                for f in files:
                    p = os.path.join(root, f)
                    dev, rule = _device_entry(p, os.path.join(inside, os.path.relpath(p, host)),
                                              perms)  # fmt: skip
                    devices.append(dev)
                    rules.append(rule)
            continue
        dev, rule = _device_entry(host, inside, perms)
        devices.append(dev)
        rules.append(rule)
    for rule in hc.get("DeviceCgroupRules") or ():
        rules.append(_cgroup_rule(rule))
    return devices, rules


def _cgroup_rule(text: str) -> dict:
    """'c 1:3 rwm', 'b *:* m' -> a device rule."""
    try:
        kind, nums, access = text.split()
        major, minor = nums.split(":")
        out = {"allow": True, "type": kind, "access": access}
        if major != "*":
            out["major"] = int(major)
        if minor != "*":
            out["minor"] = int(minor)
        if kind not in ("a", "b", "c") or set(access) - set("rwm"):
            raise ValueError
        return out
    except ValueError:
        raise InvalidArgument(f"invalid device cgroup rule {text!r} (want 'c|b|a MAJ:MIN rwm')")


def _seccomp(hc: dict, caps: list[str], privileged: bool) -> dict | None:
    profile = None
    for opt in hc.get("SecurityOpt") or ():
        key, _, val = opt.replace(":", "=", 1).partition("=")
        if key == "seccomp":
            profile = val
    if privileged or profile == "unconfined":
        return None
    if profile:
        from sangja import jsonio

        try:
            with open(profile, "rb") as f:
                doc = jsonio.loads(f.read())
        except (OSError, ValueError) as e:
            raise InvalidArgument(f"seccomp profile {profile}: {e}")
        return docker_seccomp(doc, caps)
    from sangja.runtime.seccomp import default_profile

    return default_profile(caps)


def docker_seccomp(doc: dict, caps: list[str], machine: str | None = None) -> dict:
    """A profile in Docker's format (`archMap`, `includes`/`excludes` by capability,
    architecture and kernel version; an OCI linux.seccomp is a special case of it) -> the
    OCI linux.seccomp for a container holding `caps`."""
    if not isinstance(doc, dict) or "defaultAction" not in doc:
        raise InvalidArgument("seccomp profile: not a profile (no defaultAction)")
    machine = machine or os.uname().machine
    native = _SCMP_ARCH.get(machine)
    out = {k: doc[k] for k in ("defaultAction", "defaultErrnoRet", "flags", "listenerPath",
                               "listenerMetadata") if k in doc}  # fmt: skip
    if doc.get("archMap"):
        for a in doc["archMap"]:
            if a.get("architecture") == native:
                out["architectures"] = [native] + list(a.get("subArchitectures") or [])
    elif doc.get("architectures"):
        out["architectures"] = list(doc["architectures"])
    kernel = tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])
    goarch = _GOARCH.get(machine, machine)

    def matches(cond: dict | None, default: bool) -> bool:
        if not cond:
            return default
        ok = True
        if cond.get("caps"):
            ok = ok and all(c in caps for c in cond["caps"])
        if cond.get("arches"):
            ok = ok and goarch in cond["arches"]
        if cond.get("minKernel"):
            want = tuple(int(x) for x in str(cond["minKernel"]).split(".")[:2])
            ok = ok and kernel >= want
        return ok

    calls = []
    for s in doc.get("syscalls") or ():
        if not matches(s.get("includes"), True):
            continue
        if s.get("excludes") and matches(s.get("excludes"), False):
            continue
        names = list(s.get("names") or ([s["name"]] if s.get("name") else []))
        entry = {"names": names, "action": s["action"]}
        for k in ("args", "errnoRet"):
            if s.get(k) is not None:
                entry[k] = s[k]
        calls.append(entry)
    out["syscalls"] = calls
    return out


def _default_ulimits(named: set) -> list:
    """The config file's default-ulimits the container does not set itself (Docker's merge,
    at each start: a changed file applies from the next start)."""
    from sangja import settings

    def lim(v):
        return (1 << 64) - 1 if v == -1 else v  # -1: unlimited (RLIM_INFINITY)

    defaults = settings.get("default-ulimits") or {}
    return [{"type": f"RLIMIT_{n.upper()}", "soft": lim(soft), "hard": lim(hard)}
            for n, (soft, hard) in defaults.items() if n not in named]  # fmt: skip


def console_size(value) -> dict | None:
    """Docker's ConsoleSize ([height, width]) as the spec's process.consoleSize: the pty
    is that size before the process runs.  None for [0, 0] (no terminal on the client).
    Checked where the body is taken (createconfig/execs)."""
    if not value or not any(value):
        return None
    return {"height": int(value[0]), "width": int(value[1])}
