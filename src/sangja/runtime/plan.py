"""The launch plan of `create` and of `exec`, compiled here and nowhere else: the C init
(csrc/launch/launch.h) only acts on it.

Everything that can be decided in Python is decided here: namespace flags, the flat mount
list with flags parsed, devices, capability masks, rlimits, argv/env, the seccomp program,
the hooks the init runs, the session keyring, the log fd and preserved fds, which cgroups the
init joins and which the runtime moves it into, the uid/gid maps the runtime writes. A plan is
data: compiling opens no fd and changes nothing on the host (it reads what it must: a bind
mount's source, the rootfs, the runtime's bounding set, whether an LSM is on). The Runtime
(container.py) then opens the fds the plan names (exec fifo, console, cgroup directory,
mount trees, the init's pidfd and root) and spawns.

`compile_create(config.json, ...)` for create; `compile_exec(state record, process, ...)` for
exec, from what create recorded, never from the bundle (its config.json may have changed).
"""

import os
import stat

from sangja import OCI_VERSION
from sangja.errors import ConfigError, SangjaError
from sangja.runtime import constants as K


class Mount:
    __slots__ = (
        "kind", "source", "target", "fstype", "flags", "data", "attr_set", "attr_clr",
        "attr_recursive", "recursive", "propagation", "target_is_dir", "data_mode", "copy_up",
        "inherit_mode", "host_tree", "idmap", "idmap_recursive", "tree_fd",
    )  # fmt: skip

    def __init__(self, kind, target, source=None, fstype=None, flags=0, data=None,
                 attr_set=0, attr_clr=0, attr_recursive=False, recursive=False,
                 propagation=0, target_is_dir=True, data_mode=0, copy_up=False,
                 inherit_mode=False, host_tree=False, idmap=None,
                 idmap_recursive=False):  # fmt: skip
        self.kind = kind
        self.source = source
        self.target = target
        self.fstype = fstype
        self.flags = flags
        self.data = data
        self.attr_set = attr_set
        self.attr_clr = attr_clr
        self.attr_recursive = attr_recursive
        self.recursive = recursive
        self.propagation = propagation
        self.target_is_dir = target_is_dir
        self.data_mode = data_mode
        self.copy_up = copy_up
        self.inherit_mode = inherit_mode  # tmpfs: the covered directory's mode (runc)
        # BIND: the runtime makes a detached copy of the source itself, in its own
        # namespaces (runtime/mounttrees.py), which the init moves into place: in a user
        # namespace, and for idmapped mounts (idmap: the mapping, see compile_mount).
        self.host_tree = host_tree
        self.idmap = idmap
        self.idmap_recursive = idmap_recursive
        self.tree_fd = -1

    def __repr__(self):
        return f"Mount({', '.join(f'{k}={getattr(self, k)!r}' for k in self.__slots__)})"


class Device:
    __slots__ = ("path", "type", "major", "minor", "mode", "uid", "gid", "bind_from_host")

    def __init__(self, path, type, major, minor, mode=0o666, uid=0, gid=0, bind_from_host=False):
        self.path = path
        self.type = type
        self.major = major
        self.minor = minor
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.bind_from_host = bind_from_host


class LaunchPlan:
    """Mirrors struct sj_plan; the defaults are 'leave as is'. The fd fields stay -1 here:
    the Runtime fills them from the paths below the "for the Runtime" line."""

    def __init__(self):
        self.clone_flags = 0
        self.joins = []  # (CLONE_NEW*, path)
        self.timens_offsets = None
        self.rootfs = None
        self.own_mntns = True  # False: mounts in the runtime's namespace (plan.compile_plan)
        self.no_pivot = False
        self.root_readonly = False
        self.root_propagation = K.MS_SLAVE | K.MS_REC
        self.rootfs_propagation = 0
        self.mounts = []
        self.devices = []
        self.masked_paths = []
        self.readonly_paths = []
        self.hostname = None
        self.domainname = None
        self.sysctls = []
        self.oom_score_adj = None
        self.personality = -1
        self.rlimits = []
        self.uid = 0
        self.gid = 0
        self.additional_gids = []
        self.umask = -1
        self.cap_bounding = self.cap_effective = self.cap_permitted = 0
        self.cap_inheritable = self.cap_ambient = 0
        self.no_new_privs = False
        self.cwd = "/"
        self.args = []
        self.env = []
        self.path_env = None
        self.preserve_fds = 0
        self.exec_fifo_fd = -1
        self.console_fd = -1
        self.stdio_fds = (-1, -1, -1)  # the init's 0-2 instead of ours (create(stdio=))
        self.console_rows = self.console_cols = 0
        self.setsid = True
        self.hook_sync = False
        self.log_fd = -1
        self.session_keyring = None  # join a new session keyring with this name
        self.cgroup_join = []  # v1: files the init writes "0" to (its own `tasks`)
        self.cgroup_fd = -1  # v2: CLONE_INTO_CGROUP
        # hooks the init runs itself: [(path, args, env, timeout)]
        self.create_container_hooks = []
        self.start_container_hooks = []
        self.hook_state = None  # the state's members but pid and status, as JSON text
        self.apparmor_profile = None
        self.selinux_label = None
        self.exec_pidfd = -1  # exec: a pidfd of the container's init
        self.exec_nstypes = 0  # exec: CLONE_NEW* of the init to join
        self.exec_root_fd = -1  # exec without a mount namespace: the init's root
        self.seccomp_bpf = None  # bytes: a BPF program (runtime/seccomp.py)
        self.seccomp_flags = 0  # SECCOMP_FILTER_FLAG_*
        # -- for the Runtime: what it opens, writes and records around the spawn ----------
        self.namespaces = {}  # type -> path joined, or None: made
        self.id_maps = None  # (uid_map, gid_map) texts the runtime writes for a new userns
        self.cgroup_dir = None  # the unified cgroup the init is cloned into (-> cgroup_fd)
        self.parent_cgroup_joins = []  # cgroups the runtime moves the init into after spawn
        self.exec_root = None  # exec without a mount namespace: the init's root (-> fd)
        self.seccomp = None  # what state.json keeps of the filter (seccomp.Filter.state)


# The devices every container gets (runc's AllowedDevices that are created), and the links.
DEFAULT_DEVICES = (
    ("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
    ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0),
)  # fmt: skip
DEFAULT_LINKS = (
    ("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"),
    ("pts/ptmx", "/dev/ptmx"),
)  # fmt: skip


def parse_mount_options(options):
    """-> (flags, clear, propagation, attr_set, attr_clr, recursive-attrs?, data). The
    kind of mount (bind, rbind), tmpcopyup, idmap and ridmap are the caller's."""
    flags = clear = prop = aset = aclr = 0
    rattr = False
    data = []
    for opt in options:
        if opt in K.MOUNT_FLAGS:
            s, c = K.MOUNT_FLAGS[opt]
            flags = (flags | s) & ~c
            clear = (clear | c) & ~s
        elif opt in K.PROPAGATION:
            prop = K.PROPAGATION[opt]
        elif opt in K.RECURSIVE_ATTRS:
            s, c = K.RECURSIVE_ATTRS[opt]
            aset |= s
            aclr |= c
            rattr = True
        elif opt in ("bind", "rbind", "tmpcopyup", "idmap", "ridmap"):
            pass  # the kind of mount, or a runtime extension: handled by the caller
        else:
            data.append(opt)
    return flags, clear, prop, aset, aclr, rattr, ",".join(data) or None


def _bind_attrs(flags, clear):
    """mount(2) flags of a bind mount -> mount_setattr (set, clear)."""
    aset = aclr = 0
    for ms, attr in K.FLAG_ATTRS:
        if flags & ms:
            aset |= attr
        elif clear & ms:
            aclr |= attr
    for ms, attr in K.ATIME_ATTRS:
        if flags & ms:
            aset = (aset & ~K.MOUNT_ATTR__ATIME) | attr
            aclr |= K.MOUNT_ATTR__ATIME
    return aset, aclr


def _maps_text(maps):
    return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in maps)


def _idmap(m, w, options, is_bind, linux, namespaces):
    """The mapping of an idmapped mount: None (not one), ("maps", uid_map, gid_map) texts,
    or ("path", the user namespace joined by path)."""
    uidm, gidm = m.get("uidMappings") or [], m.get("gidMappings") or []
    idmap = "idmap" in options or "ridmap" in options
    if (uidm or gidm) and not idmap:
        # the spec: MUST, so that a runtime that does not know them fails (runc 1.1 does not)
        raise ConfigError(f"config.json: {w}: uidMappings/gidMappings need the idmap or "
                          "ridmap option")  # fmt: skip
    if not idmap:
        return None
    if not is_bind:
        raise ConfigError(f"config.json: {w}: only bind mounts can be idmapped")
    if bool(uidm) != bool(gidm):
        raise ConfigError(f"config.json: {w}: an idmapped mount needs both uidMappings and "
                          "gidMappings")  # fmt: skip
    if uidm:
        return ("maps", _maps_text(uidm), _maps_text(gidm))
    # no mappings of its own: the container's user namespace's (spec 1.2)
    if "user" not in namespaces:
        raise ConfigError(f"config.json: {w}: idmap without uidMappings/gidMappings uses the "
                          "container's user namespace, and there is none")  # fmt: skip
    if namespaces["user"]:
        return ("path", namespaces["user"])
    return ("maps", _maps_text(linux.get("uidMappings")), _maps_text(linux.get("gidMappings")))


def compile_mount(m, bundle, cgroups, namespaces, linux=None, where="mounts[?]"):
    """One config.json mount -> one or more plan mounts."""
    dest = os.path.normpath(os.path.join("/", m["destination"]))
    options = m.get("options") or ()
    typ = m.get("type") or ""
    source = m.get("source") or ""
    is_bind = typ == "bind" or "bind" in options or "rbind" in options
    flags, clear, prop, aset, aclr, rattr, data = parse_mount_options(options)
    idmap = _idmap(m, where, options, is_bind, linux or {}, namespaces)
    if is_bind:
        if not source:
            raise ConfigError(f"config.json: bind mount to {dest} has no source")
        if not source.startswith("/"):
            source = os.path.join(bundle, source)
        try:
            st = os.stat(source)
        except OSError as e:
            raise ConfigError(f"mount {source} to {dest}: {e.strerror}", errno=e.errno, path=source)
        fa_set, fa_clr = _bind_attrs(flags, clear)
        return [
            Mount(
                K.MOUNT_BIND, dest, source=source, attr_set=fa_set | aset,
                attr_clr=fa_clr | aclr, attr_recursive=rattr, recursive="rbind" in options,
                propagation=prop, target_is_dir=stat.S_ISDIR(st.st_mode),
                # a user namespace may not reach the source: we open it ourselves
                host_tree=idmap is not None or "user" in namespaces, idmap=idmap,
                idmap_recursive="ridmap" in options,
            )
        ]  # fmt: skip
    if typ == "cgroup":
        return _cgroup_mounts(dest, flags, cgroups, "cgroup" in namespaces)
    if not typ:
        raise ConfigError(f"config.json: mount to {dest} has no type")
    if flags & K.MS_REMOUNT:
        # Change the mount already at the destination (an earlier entry), as runc does.
        fa_set, fa_clr = _bind_attrs(flags, clear)
        return [Mount(K.MOUNT_REMOUNT, dest, attr_set=fa_set | aset, attr_clr=fa_clr | aclr,
                      attr_recursive=rattr, propagation=prop)]  # fmt: skip
    copy_up = "tmpcopyup" in options
    if copy_up and typ != "tmpfs":
        raise ConfigError(f"config.json: mount to {dest}: tmpcopyup is for tmpfs mounts only")
    inherit = (
        typ == "tmpfs"
        and not copy_up
        and not any(o.startswith("mode=") for o in (data or "").split(","))
    )
    return [
        Mount(
            K.MOUNT_FS, dest, source=source or typ, fstype=typ, flags=flags, data=data,
            attr_set=aset, attr_clr=aclr, attr_recursive=rattr, propagation=prop,
            copy_up=copy_up, inherit_mode=inherit,
        )
    ]  # fmt: skip


def _cgroup_mounts(dest, flags, cgroups, own_cgroupns):
    """A `cgroup` mount: the container's own cgroups, read-only by default, as runc lays them.
    `cgroups`: the manager's layout ({"paths": {hierarchy: dir}, "unified": bool}) or None."""
    ro = flags & K.MS_RDONLY
    base = K.MOUNT_ATTR_NOSUID | K.MOUNT_ATTR_NODEV | K.MOUNT_ATTR_NOEXEC
    if cgroups is None:  # no cgroup driver: an empty tmpfs keeps the layout
        return [Mount(K.MOUNT_FS, dest, source="tmpfs", fstype="tmpfs", flags=flags,
                      data="mode=755")]  # fmt: skip
    if cgroups["unified"]:
        if own_cgroupns:
            return [Mount(K.MOUNT_FS, dest, source="cgroup", fstype="cgroup2", flags=flags)]
        return [Mount(K.MOUNT_BIND, dest, source=cgroups["paths"][""],
                      attr_set=base | (K.MOUNT_ATTR_RDONLY if ro else 0))]  # fmt: skip
    out = [Mount(K.MOUNT_FS, dest, source="tmpfs", fstype="tmpfs",
                 flags=(flags & ~K.MS_RDONLY) | K.MS_NOSUID | K.MS_NODEV | K.MS_NOEXEC,
                 data="mode=755")]  # fmt: skip
    for name, host_path in sorted((n, p) for n, p in cgroups["paths"].items() if n):
        out.append(Mount(K.MOUNT_BIND, f"{dest}/{name}", source=host_path,
                         attr_set=base | (K.MOUNT_ATTR_RDONLY if ro else 0)))  # fmt: skip
        if "," in name:  # comounted controllers: cpu -> cpu,cpuacct
            for ctrl in name.split(","):
                out.append(Mount(K.MOUNT_SYMLINK, f"{dest}/{ctrl}", source=name))
    if ro:  # the tmpfs holding them goes read-only once they are in place, as runc does
        out.append(Mount(K.MOUNT_REMOUNT, dest, attr_set=K.MOUNT_ATTR_RDONLY))
    return out


def sysctl_path(key):
    """A sysctl name -> its path under /proc/sys, with sysctl(8)'s rule: when '/' comes
    first it is the separator and '.' is literal (net/ipv4/conf/eth0.100/forwarding),
    otherwise the two swap (net.ipv4.conf.eth0/100.forwarding)."""
    key = key.strip("./")
    dot, slash = key.find("."), key.find("/")
    if slash != -1 and (dot == -1 or slash < dot):
        return key
    return key.translate(str.maketrans("./", "/."))


def capability_mask(names, where, warn):
    mask = 0
    for name in names:
        n = K.CAP_NUMBERS.get(name)
        if n is None:
            warn(f"config.json: {where}: unknown capability {name!r}, ignored")
            continue
        mask |= 1 << n
    return mask


def _host_cap_bounding():
    with open("/proc/self/status", "rb") as f:
        for line in f:
            if line.startswith(b"CapBnd:"):
                return int(line.split()[1], 16)
    return (1 << 64) - 1


def merge_env(env):
    """KEY=V entries with a later KEY replacing an earlier one in its place (as runc)."""
    out = {}
    for e in env:
        out[e.partition("=")[0]] = e
    return list(out.values())


def selinux_enabled():
    return os.path.exists("/sys/fs/selinux/enforce")


def apparmor_enabled():
    try:
        with open("/sys/module/apparmor/parameters/enabled", "rb") as f:
            return f.read(1) == b"Y"
    except OSError:
        return False


def compile_process(plan, process, namespaces, warn):
    """process -> plan fields (shared by create and exec)."""
    plan.args = list(process["args"])
    plan.env = merge_env(process.get("env") or ())
    plan.cwd = process["cwd"]
    for e in plan.env:
        if e.startswith("PATH="):
            plan.path_env = e[5:]
    profile = process.get("apparmorProfile")
    if profile:
        # Asked for, the profile must confine the process: never run it unconfined.
        if not apparmor_enabled():
            raise SangjaError(
                f"apparmor profile {profile!r} is specified in config, but AppArmor is not "
                "enabled on this host"
            )
        plan.apparmor_profile = profile
    label = process.get("selinuxLabel")
    if label:
        if not selinux_enabled():
            raise SangjaError(
                "selinux label is specified in config, but selinux is disabled or not supported"
            )
        plan.selinux_label = label
    user = process.get("user") or {}
    plan.uid = user.get("uid") or 0
    plan.gid = user.get("gid") or 0
    plan.additional_gids = list(user.get("additionalGids") or ())
    if user.get("umask") is not None:
        plan.umask = user["umask"] & 0o7777  # umask(2) takes the permission bits
    caps = process.get("capabilities") or {}
    plan.cap_bounding = capability_mask(caps.get("bounding") or (), "bounding", warn)
    plan.cap_effective = capability_mask(caps.get("effective") or (), "effective", warn)
    plan.cap_permitted = capability_mask(caps.get("permitted") or (), "permitted", warn)
    plan.cap_inheritable = capability_mask(caps.get("inheritable") or (), "inheritable", warn)
    plan.cap_ambient = capability_mask(caps.get("ambient") or (), "ambient", warn)
    # Capabilities outside the runtime's own bounding set can never be granted (here:
    # CAP_SYS_RESOURCE): say which one, rather than a bare EPERM from capset.
    if "user" not in namespaces:
        missing = (plan.cap_bounding | plan.cap_permitted | plan.cap_effective
                   | plan.cap_inheritable | plan.cap_ambient) & ~_host_cap_bounding()  # fmt: skip
        if missing:
            names = [K.CAPABILITIES[i] for i in range(len(K.CAPABILITIES)) if missing >> i & 1]
            raise SangjaError(
                f"unable to apply caps: {', '.join(names)} not in the runtime's bounding set"
            )
    plan.no_new_privs = bool(process.get("noNewPrivileges"))
    if process.get("oomScoreAdj") is not None:
        plan.oom_score_adj = process["oomScoreAdj"]
    rlimits = []
    for r in process.get("rlimits") or ():
        res = K.RLIMITS.get(r["type"])
        if res is None:
            raise ConfigError(f"config.json: unknown rlimit type {r['type']!r}")
        rlimits.append((res, r["soft"], r["hard"]))
    plan.rlimits = rlimits
    cs = process.get("consoleSize") or {}
    plan.console_rows = cs.get("height") or 0
    plan.console_cols = cs.get("width") or 0


def compile_create(spec, bundle, cid, cgroups=None, no_pivot=False, no_new_keyring=False,
                   preserve_fds=0, log_fd=-1, warn=print, seccomp_cache=None):  # fmt: skip
    """A validated config.json -> the whole LaunchPlan of `create ID`. `cgroups`: the cgroup
    manager's layout (cgroups.Manager.layout: paths, unified, clone_into, join), or None
    for no cgroups; `log_fd`: where the init writes an error it can no longer send;
    `seccomp_cache`: a directory of programs compiled before (seccomp.compile_filter)."""
    plan = LaunchPlan()
    linux = spec.get("linux") or {}
    namespaces = plan.namespaces
    for ns in linux.get("namespaces") or ():
        namespaces[ns["type"]] = ns.get("path")
        flag = K.NAMESPACES[ns["type"]]
        if ns.get("path"):
            plan.joins.append((flag, ns["path"]))
        else:
            plan.clone_flags |= flag
    userns = "user" in namespaces
    if linux.get("intelRdt") is not None:
        # Intel RDT (resctrl) is not implemented; without resctrl it is an error for runc too.
        why = (
            "is not supported by sangja"
            if os.path.exists("/sys/fs/resctrl/info")
            else ("needs resctrl, which is not mounted at /sys/fs/resctrl on this host")
        )
        raise ConfigError(f"config.json: linux.intelRdt {why}")

    root = spec["root"]
    rootfs = root["path"]
    if not rootfs.startswith("/"):
        rootfs = os.path.join(bundle, rootfs)
    rootfs = os.path.realpath(rootfs)
    if not os.path.isdir(rootfs):
        raise ConfigError(f"rootfs {rootfs} does not exist or is not a directory", errno=2,
                          path=rootfs)  # fmt: skip
    plan.rootfs = rootfs
    plan.root_readonly = bool(root.get("readonly"))
    plan.no_pivot = no_pivot
    # Without a mount namespace the container's mounts are made in the runtime's (below a
    # bind of the rootfs, which delete detaches) and the init chroots: see csrc/launch/launch.h.
    plan.own_mntns = "mount" in namespaces
    prop = linux.get("rootfsPropagation")
    if prop:
        plan.rootfs_propagation = K.PROPAGATION[prop]
        if plan.rootfs_propagation & (K.MS_SHARED | K.MS_SLAVE):
            plan.root_propagation = plan.rootfs_propagation | K.MS_REC

    dev_bound = False
    for i, m in enumerate(spec.get("mounts") or ()):
        compiled = compile_mount(m, bundle, cgroups, namespaces, linux, f"mounts[{i}]")
        if os.path.normpath(m["destination"]) == "/dev" and compiled[0].kind == K.MOUNT_BIND:
            dev_bound = True
        plan.mounts.extend(compiled)
    if not dev_bound:
        # As runc: the default devices and links whenever /dev is not the host's.
        for path, major, minor in DEFAULT_DEVICES:
            plan.devices.append(Device(path, "c", major, minor, 0o666, bind_from_host=userns))
        for target, link in DEFAULT_LINKS:
            plan.mounts.append(Mount(K.MOUNT_SYMLINK, link, source=target))
        if os.path.exists("/proc/kcore"):
            plan.mounts.append(Mount(K.MOUNT_SYMLINK, "/dev/core", source="/proc/kcore"))
    defaults = {d.path for d in plan.devices}
    for d in linux.get("devices") or ():
        dev = Device(
            os.path.normpath(d["path"]), "c" if d["type"] == "u" else d["type"],
            d.get("major") or 0, d.get("minor") or 0,
            0o666 if d.get("fileMode") is None else d["fileMode"] & 0o7777,
            d.get("uid") or 0, d.get("gid") or 0, bind_from_host=userns,
        )  # fmt: skip
        if dev.path in defaults:
            plan.devices = [x for x in plan.devices if x.path != dev.path]
        plan.devices.append(dev)
    plan.masked_paths = list(linux.get("maskedPaths") or ())
    plan.readonly_paths = list(linux.get("readonlyPaths") or ())

    plan.hostname = spec.get("hostname") or None
    plan.domainname = spec.get("domainname") or None
    plan.sysctls = [(sysctl_path(k), v) for k, v in (linux.get("sysctl") or {}).items()]
    pers = linux.get("personality")
    if pers:
        plan.personality = K.PERSONALITY[pers["domain"]]
    offs = linux.get("timeOffsets")
    if offs:
        lines = [f"{clock} {o.get('secs') or 0} {o.get('nanosecs') or 0}"
                 for clock, o in offs.items()]  # fmt: skip
        # C unshares the time namespace in an intermediate process and writes these there.
        plan.timens_offsets = "\n".join(lines) + "\n"
    process = spec.get("process")
    if process is None:
        raise ConfigError("config.json: process is required to create a container")
    compile_process(plan, process, namespaces, warn)
    if linux.get("seccomp") is not None:
        # libseccomp is loaded here only: the program goes into the plan, and into the state
        # dir for exec, which never compiles it again.
        from sangja.runtime import seccomp

        filt = seccomp.compile_filter(linux["seccomp"], warn, seccomp_cache)
        plan.seccomp_bpf, plan.seccomp_flags = filt.bpf, filt.flags
        plan.seccomp = filt.state()
    plan.preserve_fds = preserve_fds
    plan.log_fd = log_fd
    if not no_new_keyring:
        plan.session_keyring = cid
    _compile_hooks(plan, spec, cid, bundle)
    if plan.clone_flags & K.CLONE_NEWUSER:  # the runtime writes them: the init waits
        plan.id_maps = (_maps_text(linux.get("uidMappings") or ()),
                        _maps_text(linux.get("gidMappings") or ()))  # fmt: skip
    if cgroups is not None:
        plan.cgroup_dir = cgroups.get("clone_into")
        _cgroup_joins(plan, cgroups.get("join") or (), userns)
    return plan


def _compile_hooks(plan, spec, cid, bundle):
    """prestart and createRuntime run in the runtime, when the init stops before pivot_root
    (hook_sync); createContainer and startContainer are the init's own, with the state's
    members but pid and status (which the init knows) as hook_state."""
    hooks = spec.get("hooks")
    if not hooks:
        return
    from sangja.runtime.hooks import entries

    plan.hook_sync = bool(hooks.get("prestart") or hooks.get("createRuntime"))
    plan.create_container_hooks = entries(hooks.get("createContainer"))
    plan.start_container_hooks = entries(hooks.get("startContainer"))
    if plan.create_container_hooks or plan.start_container_hooks:
        from sangja import jsonio

        members = {"ociVersion": OCI_VERSION, "id": cid, "bundle": bundle}
        if spec.get("annotations"):
            members["annotations"] = spec["annotations"]
        plan.hook_state = jsonio.dumps(members)[1:-1]


def _cgroup_joins(plan, dirs, userns):
    """The v1 cgroups `dirs` are joined by the init itself (a `tasks` file each, see
    csrc/launch/launch.h); in a user namespace it may not write them: then the runtime
    moves it (parent_cgroup_joins) before it lets the init go on."""
    if userns:
        plan.cgroup_join, plan.parent_cgroup_joins = [], list(dirs)
    else:
        plan.cgroup_join, plan.parent_cgroup_joins = [f"{p}/tasks" for p in dirs], []


def namespace_paths(namespaces, pid):
    """What state.json records of the namespaces: the path joined, or the init's own."""
    return {t: p or f"/proc/{pid}/ns/{K.NS_PROC_NAMES[t]}" for t, p in namespaces.items()}


# -- exec ------------------------------------------------------------------------------------


def compile_exec(state, process, cgroup=(), preserve_fds=0, log_fd=-1, seccomp_bpf=None,
                 join_userns=True, warn=print):  # fmt: skip
    """The LaunchPlan of `exec`: `process` (validated) into the container as create recorded
    it in `state` (state.json: its init's pid, namespaces, cgroups, seccomp flags, keyring).
    `cgroup`: exec's --cgroup [CONTROLLER[,CONTROLLER]:]PATH items; `seccomp_bpf`: the
    container's program (the state dir's seccomp.bpf); `join_userns`: False when the
    container's user namespace is the runtime's own (setns refuses that one)."""
    plan = LaunchPlan()
    namespaces = state.get("namespaces") or {}
    compile_process(plan, process, namespaces, warn)
    plan.preserve_fds = preserve_fds
    plan.log_fd = log_fd
    if not state.get("no_new_keyring"):
        plan.session_keyring = state["id"]
    plan.cgroup_dir, plan.cgroup_join = exec_cgroups(state.get("cgroups") or {}, cgroup)
    for typ in namespaces:
        if typ != "user" or join_userns:
            plan.exec_nstypes |= K.NAMESPACES[typ]
    if "mount" not in namespaces:  # the init is chrooted in our own: so are we
        plan.exec_root = f"/proc/{state['pid']}/root"
    sc = state.get("seccomp")
    if sc:  # the container's filter, as create built it
        plan.seccomp_bpf, plan.seccomp_flags = seccomp_bpf, sc["flags"]
    return plan


def exec_cgroups(cg, sub):
    """Where the exec'd process goes: (the unified cgroup it is cloned into, or None; the
    v1 `tasks` files its intermediate writes "0" to). The container's own cgroups (`cg`:
    their record), or sub-cgroups of them with --cgroup [CONTROLLER[,CONTROLLER]:]PATH (as
    runc)."""
    wanted = {}
    for item in sub or ():
        ctrls, _, rel = item.rpartition(":")
        for c in ctrls.split(","):
            wanted[c] = rel
    unified, tasks = None, []
    for name, path in (cg.get("paths") or {}).items():
        rel = next((wanted[c] for c in name.split(",") if c in wanted), wanted.get(""))
        if rel:
            sub_path = os.path.normpath(f"{path}/{rel}")
            if not sub_path.startswith(path.rstrip("/") + "/"):
                raise SangjaError(f"--cgroup {rel}: not inside the container's cgroup")
            if not os.path.isdir(sub_path):
                raise SangjaError(f"--cgroup: {sub_path} does not exist", errno=2,
                                  path=sub_path)  # fmt: skip
            path = sub_path
        if name == "":  # the unified hierarchy (v2, or next to v1 on a hybrid host)
            unified = path
        else:
            tasks.append(f"{path}/tasks")
    return unified, tasks


def exec_process(base, args, tty=False, cwd=None, env=(), user=None, additional_gids=(),
                 caps=(), no_new_privs=None, process_label=None, apparmor=None):  # fmt: skip
    """The container's process (`base`, as create recorded it) with exec's command line
    applied, as runc applies it; validated."""
    from sangja.runtime.spec import validate_process

    if not args:
        raise SangjaError("process args cannot be empty")
    proc = dict(base)
    proc["args"] = list(args)
    proc["terminal"] = bool(tty)
    if cwd:
        proc["cwd"] = cwd
    if apparmor:
        proc["apparmorProfile"] = apparmor
    if process_label:
        proc["selinuxLabel"] = process_label
    if caps:
        have = dict(proc.get("capabilities") or {})
        for kind in ("bounding", "effective", "permitted"):
            have[kind] = list(have.get(kind) or ()) + list(caps)
        # Ambient ones need inheritable ones: only when the config has those (as runc).
        if have.get("inheritable") is not None:
            have["ambient"] = list(have.get("ambient") or ()) + list(caps)
        proc["capabilities"] = have
    proc["env"] = list(proc.get("env") or ()) + list(env)
    if no_new_privs is not None:
        proc["noNewPrivileges"] = bool(no_new_privs)
    u = dict(proc.get("user") or {})
    if user:
        uid, _, gid = str(user).partition(":")
        try:
            u["uid"] = int(uid)
            if gid:
                u["gid"] = int(gid)
        except ValueError:
            raise SangjaError(f"invalid user {user!r}: want UID[:GID], numeric")
    if additional_gids:
        try:
            extra = [int(g) for g in additional_gids]
        except ValueError:
            raise SangjaError(f"invalid --additional-gids {list(additional_gids)}")
        u["additionalGids"] = list(u.get("additionalGids") or ()) + extra
    proc["user"] = u
    # (the recorded process was checked at create; what comes from our command line is the
    # caller's bytes, passed on as they are)
    return validate_process(proc)
