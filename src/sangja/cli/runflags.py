"""`container run` / `container create` flags -> the Docker Engine API's ContainerCreate body,
as the docker CLI builds it (cli/command/container/opts.go).  A bad value is a UsageError
in the docker CLI's words (`invalid argument "12q" for "-m, --memory" flag: ...`)."""

from __future__ import annotations

import os

from sangja.cli.parse import B, M, UsageError, V, flags

RUN_FLAGS = flags(
    ("-a", "--attach", "attach", M), ("--add-host", "add_host", M),
    ("--blkio-weight", "blkio_weight", V), ("--cap-add", "cap_add", M),
    ("--cap-drop", "cap_drop", M), ("--cgroup-parent", "cgroup_parent", V),
    ("--cgroupns", "cgroupns", V), ("--cidfile", "cidfile", V),
    ("--cpu-period", "cpu_period", V), ("--cpu-quota", "cpu_quota", V),
    ("--cpu-rt-period", "cpu_rt_period", V), ("--cpu-rt-runtime", "cpu_rt_runtime", V),
    ("-c", "--cpu-shares", "cpu_shares", V), ("--cpus", "cpus", V),
    ("--cpuset-cpus", "cpuset_cpus", V), ("--cpuset-mems", "cpuset_mems", V),
    ("-d", "--detach", "detach", B), ("--detach-keys", "detach_keys", V),
    ("--device", "device", M), ("--device-cgroup-rule", "device_cgroup_rule", M),
    ("--dns", "dns", M), ("--dns-option", "dns_option", M), ("--dns-search", "dns_search", M),
    ("--domainname", "domainname", V), ("--entrypoint", "entrypoint", V),
    ("-e", "--env", "env", M), ("--env-file", "env_file", M), ("--expose", "expose", M),
    ("--group-add", "group_add", M), ("--health-cmd", "health_cmd", V),
    ("--health-interval", "health_interval", V), ("--health-retries", "health_retries", V),
    ("--health-start-period", "health_start_period", V),
    ("--health-timeout", "health_timeout", V), ("--no-healthcheck", "no_healthcheck", B),
    ("-h", "--hostname", "hostname", V), ("--init", "init", B),
    ("--ip", "ip", V), ("--ip6", "ip6", V), ("--link-local-ip", "link_local_ip", M),
    ("--mac-address", "mac_address", V), ("--link", "link", M),
    ("-i", "--interactive", "interactive", B), ("--ipc", "ipc", V),
    ("--kernel-memory", "kernel_memory", V), ("-l", "--label", "label", M),
    ("--label-file", "label_file", M), ("--log-driver", "log_driver", V),
    ("--log-opt", "log_opt", M), ("-m", "--memory", "memory", V),
    ("--memory-reservation", "memory_reservation", V), ("--memory-swap", "memory_swap", V),
    ("--memory-swappiness", "memory_swappiness", V), ("--mount", "mount", M),
    ("--name", "name", V), ("--network", "--net", "network", M),
    ("--network-alias", "network_alias", M), ("--oom-kill-disable", "oom_kill_disable", B),
    ("--oom-score-adj", "oom_score_adj", V), ("--pid", "pid", V),
    ("--pids-limit", "pids_limit", V), ("--platform", "platform", V),
    ("--privileged", "privileged", B), ("-p", "--publish", "publish", M),
    ("-P", "--publish-all", "publish_all", B), ("--pull", "pull", V),
    ("-q", "--quiet", "quiet", B), ("--read-only", "read_only", B),
    ("--restart", "restart", V), ("--rm", "rm", B), ("--security-opt", "security_opt", M),
    ("--shm-size", "shm_size", V), ("--sig-proxy", "sig_proxy", B),
    ("--signature-policy", "signature_policy", V),
    ("--stop-signal", "stop_signal", V), ("--stop-timeout", "stop_timeout", V),
    ("--sysctl", "sysctl", M), ("-t", "--tty", "tty", B), ("--tmpfs", "tmpfs", M),
    ("-u", "--user", "user", V), ("--ulimit", "ulimit", M), ("--userns", "userns", V),
    ("--uts", "uts", V), ("-v", "--volume", "volume", M),
    ("--volumes-from", "volumes_from", M), ("-w", "--workdir", "workdir", V),
)  # fmt: skip

_NAMES = {}
for _flag, (_key, _) in RUN_FLAGS.items():
    _NAMES.setdefault(_key, []).append(_flag)


def _bad(key: str, value: str, why: str) -> UsageError:
    names = ", ".join(sorted(_NAMES.get(key, [key]), key=len))
    return UsageError(f'invalid argument "{value}" for "{names}" flag: {why}')


def _size(opts: dict, key: str, allow_unlimited: bool = False) -> int:
    v = opts.get(key)
    if v is None or v == "":
        return 0
    if allow_unlimited and v == "-1":
        return -1
    from sangja.gounits import parse_size

    try:
        return parse_size(v)
    except ValueError as e:
        raise _bad(key, v, str(e))


def _int(opts: dict, key: str, default=0):
    v = opts.get(key)
    if v is None:
        return default
    try:
        return int(v)
    except ValueError:
        raise _bad(key, v, "strconv.ParseInt: parsing " + repr(v) + ": invalid syntax")


def _duration_ns(opts: dict, key: str) -> int:
    from sangja.gounits import parse_duration

    v = opts.get(key)
    if not v:
        return 0
    try:
        return int(parse_duration(v) * 1e9)
    except ValueError as e:
        raise _bad(key, v, str(e))


def _kv_list(items, key: str) -> dict:
    out = {}
    for it in items or ():
        k, eq, v = it.partition("=")
        if not k:
            raise _bad(key, it, "want KEY=VALUE")
        out[k] = v
    return out


def _read_lines(path: str, key: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise UsageError(f"open {path}: {e.strerror.lower()}")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def _env(opts: dict) -> list[str]:
    items = []
    for f in opts.get("env_file", []):
        items += _read_lines(f, "env_file")
    items += opts.get("env", [])
    out = []
    for e in items:
        name, eq, _ = e.partition("=")
        if not name:
            raise _bad("env", e, "no variable name")
        if not eq:  # NAME alone: from our environment, dropped if unset (as docker)
            if name in os.environ:
                out.append(f"{name}={os.environ[name]}")
            continue
        out.append(e)
    return out


def _restart(v: str | None) -> dict:
    if not v:
        return {"Name": "no", "MaximumRetryCount": 0}
    name, _, count = v.partition(":")
    if name not in ("no", "always", "unless-stopped", "on-failure"):
        raise _bad("restart", v, f"invalid restart policy {name!r}")
    if count:
        if name != "on-failure":
            raise _bad("restart", v, f"maximum retry count cannot be used with restart policy"
                                     f" '{name}'")  # fmt: skip
        if not count.isdigit():
            raise _bad("restart", v, f"maximum retry count must be an integer: {count!r}")
    return {"Name": name, "MaximumRetryCount": int(count or 0)}


def _ulimits(items) -> list[dict]:
    out = []
    for it in items or ():
        name, eq, val = it.partition("=")
        soft, _, hard = val.partition(":")
        try:
            s = int(soft)
            h = int(hard) if hard else s
        except ValueError:
            raise _bad("ulimit", it, "want NAME=SOFT[:HARD]")
        if not eq or not name:
            raise _bad("ulimit", it, "want NAME=SOFT[:HARD]")
        out.append({"Name": name, "Soft": s, "Hard": h})
    return out


def _devices(items) -> list[dict]:
    out = []
    for it in items or ():
        parts = it.split(":")
        if len(parts) > 3 or not parts[0]:
            raise _bad("device", it, "want HOST[:CONTAINER][:PERMISSIONS]")
        host = parts[0]
        inside, perms = host, "rwm"
        if len(parts) == 2:
            if set(parts[1]) <= set("rwm") and not parts[1].startswith("/"):
                perms = parts[1]
            else:
                inside = parts[1]
        elif len(parts) == 3:
            inside, perms = parts[1], parts[2]
        out.append({"PathOnHost": host, "PathInContainer": inside or host,
                    "CgroupPermissions": perms})  # fmt: skip
    return out


def _tmpfs(items) -> dict:
    out = {}
    for it in items or ():
        path, _, o = it.partition(":")
        out[path] = o
    return out


def _attach(opts: dict) -> tuple[bool, bool, bool]:
    """(stdin, stdout, stderr) to attach, as docker run decides."""
    want = opts.get("attach")
    if want:
        bad = [a for a in want if a.lower() not in ("stdin", "stdout", "stderr")]
        if bad:
            raise _bad("attach", bad[0], "valid streams are STDIN, STDOUT and STDERR")
        if opts.get("detach"):
            raise UsageError("Conflicting options: -a and -d")
        low = {a.lower() for a in want}
        return "stdin" in low, "stdout" in low, "stderr" in low
    if opts.get("detach"):
        return False, False, False
    return bool(opts.get("interactive")), True, True


def body_from(opts: dict, pos: list[str]) -> dict:
    """The ContainerCreate body for `run`/`create OPTS IMAGE [CMD...]`."""
    from sangja.cli.mountflag import parse_mount

    if not pos:
        raise UsageError('"run"/"create" requires at least 1 argument: IMAGE [COMMAND] [ARG...]')
    a_in, a_out, a_err = _attach(opts)
    ep = opts.get("entrypoint")
    labels = {}
    for f in opts.get("label_file", []):
        labels.update(_kv_list(_read_lines(f, "label_file"), "label_file"))
    labels.update(_kv_list(opts.get("label"), "label"))
    cfg = {
        "Hostname": opts.get("hostname") or "",
        "Domainname": opts.get("domainname") or "",
        "User": opts.get("user") or "",
        "AttachStdin": a_in,
        "AttachStdout": a_out,
        "AttachStderr": a_err,
        "Tty": bool(opts.get("tty")),
        "OpenStdin": bool(opts.get("interactive")),
        "StdinOnce": bool(opts.get("interactive") and a_in),
        "Env": _env(opts) or None,
        "Cmd": pos[1:] or None,
        "Image": pos[0],
        "WorkingDir": opts.get("workdir") or "",
        "Entrypoint": None if ep is None else ([ep] if ep else [""]),
        "Labels": labels or None,
    }
    bindings, exposed = _ports(opts)
    if exposed:
        cfg["ExposedPorts"] = exposed
    if opts.get("stop_signal"):
        cfg["StopSignal"] = opts["stop_signal"]
    if opts.get("stop_timeout") is not None:
        cfg["StopTimeout"] = _int(opts, "stop_timeout")
    hcheck = _healthcheck(opts)
    if hcheck:
        cfg["Healthcheck"] = hcheck
    vols = [v for v in opts.get("volume", []) if ":" not in v]
    if vols:
        cfg["Volumes"] = {v: {} for v in vols}
    cpus = 0
    if opts.get("cpus"):
        try:
            cpus = int(round(float(opts["cpus"]) * 1e9))
        except ValueError:
            raise _bad("cpus", opts["cpus"], "failed to parse as a number")
    mode, endpoints = _networks(opts)
    log = {"Type": opts.get("log_driver") or "",  # "": the engine's default (config file)
           "Config": _kv_list(opts.get("log_opt"), "log_opt")}  # fmt: skip
    hc = {
        "Binds": [v for v in opts.get("volume", []) if ":" in v] or None,
        "ContainerIDFile": opts.get("cidfile") or "",
        "LogConfig": log,
        "NetworkMode": mode,
        "PortBindings": bindings or None,
        "RestartPolicy": _restart(opts.get("restart")),
        "AutoRemove": bool(opts.get("rm")),
        "VolumesFrom": opts.get("volumes_from") or None,
        "CapAdd": opts.get("cap_add") or None,
        "CapDrop": opts.get("cap_drop") or None,
        "CgroupnsMode": opts.get("cgroupns") or "host",
        "Dns": opts.get("dns") or None,
        "DnsOptions": opts.get("dns_option") or None,
        "DnsSearch": opts.get("dns_search") or None,
        "ExtraHosts": opts.get("add_host") or None,
        "GroupAdd": opts.get("group_add") or None,
        "IpcMode": opts.get("ipc") or "private",
        "OomScoreAdj": _int(opts, "oom_score_adj"),
        "PidMode": opts.get("pid") or "",
        "Privileged": bool(opts.get("privileged")),
        "PublishAllPorts": bool(opts.get("publish_all")),
        "ReadonlyRootfs": bool(opts.get("read_only")),
        "SecurityOpt": opts.get("security_opt") or None,
        "Tmpfs": _tmpfs(opts.get("tmpfs")) or None,
        "UTSMode": opts.get("uts") or "",
        "UsernsMode": opts.get("userns") or "",
        "ShmSize": _size(opts, "shm_size"),
        "Sysctls": _kv_list(opts.get("sysctl"), "sysctl") or None,
        "Init": True if opts.get("init") else None,
        "Mounts": [parse_mount(m) for m in opts.get("mount") or ()] or None,
        "CgroupParent": opts.get("cgroup_parent") or "",
        "BlkioWeight": _int(opts, "blkio_weight"),
        "CpuShares": _int(opts, "cpu_shares"),
        "CpuPeriod": _int(opts, "cpu_period"),
        "CpuQuota": _int(opts, "cpu_quota"),
        "CpuRealtimePeriod": _int(opts, "cpu_rt_period"),
        "CpuRealtimeRuntime": _int(opts, "cpu_rt_runtime"),
        "CpusetCpus": opts.get("cpuset_cpus") or "",
        "CpusetMems": opts.get("cpuset_mems") or "",
        "NanoCpus": cpus,
        "Devices": _devices(opts.get("device")) or None,
        "DeviceCgroupRules": opts.get("device_cgroup_rule") or None,
        "KernelMemory": _size(opts, "kernel_memory"),
        "Memory": _size(opts, "memory"),
        "MemoryReservation": _size(opts, "memory_reservation"),
        "MemorySwap": _size(opts, "memory_swap", allow_unlimited=True),
        "MemorySwappiness": _int(opts, "memory_swappiness", None),
        "OomKillDisable": bool(opts.get("oom_kill_disable")),
        "PidsLimit": _int(opts, "pids_limit", None),
        "Ulimits": _ulimits(opts.get("ulimit")) or None,
    }
    if cfg["Tty"]:
        hc["ConsoleSize"] = console_size()
    nc = {"EndpointsConfig": endpoints} if endpoints else {}
    return {**cfg, "HostConfig": hc, "NetworkingConfig": nc}


def console_size() -> list[int]:
    """[rows, columns] of the terminal we print on ([0, 0]: none, or one nobody sized):
    the container's pty gets it before its process runs, as the docker CLI sends it, so
    the first thing the process asks (`stty size`, a shell's prompt) sees the size."""
    try:
        size = os.get_terminal_size(1)
    except OSError:
        return [0, 0]
    return [size.lines, size.columns]


def _ports(opts: dict) -> tuple[dict, dict]:
    """-p (every form of Docker's) and --expose -> (PortBindings, ExposedPorts)."""
    from sangja.engine import ports
    from sangja.engine.neterrors import NetworkInvalid

    try:
        bindings, exposed = ports.bindings_from_flags(opts.get("publish") or [])
    except NetworkInvalid as e:
        raise UsageError(f"invalid argument for -p, --publish: {e}")
    for spec in opts.get("expose") or ():
        try:
            for p in ports.parse_expose(spec):
                exposed[p] = {}
        except NetworkInvalid as e:
            raise _bad("expose", spec, str(e))
    return bindings, exposed


_NET_KEYS = {"name": "name", "alias": "alias", "ip": "ip", "ip6": "ip6",
             "mac-address": "mac", "driver-opt": "driver_opt", "link-local-ip": "lli"}  # fmt: skip


def _networks(opts: dict) -> tuple[str, dict]:
    """--network (repeated; NAME or docker's NAME=,alias=,ip=,ip6=,mac-address=,driver-opt=
    form), --network-alias, --ip, --ip6, --mac-address -> (NetworkMode, EndpointsConfig):
    the flags without a network name apply to the first network, as the docker CLI does."""
    if opts.get("link"):
        raise UsageError("--link: links are not supported (use a user network: containers on"
                         " it find each other by name)")  # fmt: skip
    if opts.get("link_local_ip"):
        raise UsageError("--link-local-ip is not supported")
    nets = []
    for item in opts.get("network") or []:
        if "=" not in item:
            nets.append({"name": item})
            continue
        d: dict = {}
        for part in item.split(","):
            k, eq, v = part.partition("=")
            key = _NET_KEYS.get(k.strip())
            if not eq or key is None:
                raise _bad("network", item, f"invalid field {k!r} (want name, alias, ip,"
                           " ip6, mac-address, driver-opt)")  # fmt: skip
            if key in ("alias", "driver_opt"):
                d.setdefault(key, []).append(v)
            else:
                d[key] = v
        if not d.get("name"):
            raise _bad("network", item, "a network name is required (name=...)")
        if d.get("lli"):
            raise UsageError("link-local-ip is not supported")
        nets.append(d)
    if not nets:
        nets = [{"name": "default"}]
    first = nets[0]
    legacy = {"alias": opts.get("network_alias"), "ip": opts.get("ip"),
              "ip6": opts.get("ip6"), "mac": opts.get("mac_address")}  # fmt: skip
    for k, v in legacy.items():
        if v:
            if first.get(k):
                raise UsageError(f"conflicting options: cannot specify both --{k} and"
                                 f" per-network {k}")  # fmt: skip
            first[k] = v
    mode = first["name"]
    special = mode in ("host", "none", "default") or mode.startswith("container:")
    if special and len(nets) > 1:
        raise UsageError(f"conflicting options: network {mode} cannot be combined with other"
                         " networks")  # fmt: skip
    endpoints = {}
    for n in nets:
        ep = {}
        if n.get("alias"):
            ep["Aliases"] = list(n["alias"])
        ipam = {}
        if n.get("ip"):
            ipam["IPv4Address"] = n["ip"]
        if n.get("ip6"):
            ipam["IPv6Address"] = n["ip6"]
        if ipam:
            ep["IPAMConfig"] = ipam
        if n.get("mac"):
            ep["MacAddress"] = n["mac"]
        if n.get("driver_opt"):
            ep["DriverOpts"] = dict(o.partition("=")[::2] for o in n["driver_opt"])
        if ep or len(nets) > 1:
            endpoints[n["name"]] = ep
    return mode, endpoints


def _healthcheck(opts: dict) -> dict | None:
    if opts.get("no_healthcheck"):
        if any(opts.get(k) for k in ("health_cmd", "health_interval", "health_timeout",
                                     "health_retries", "health_start_period")):  # fmt: skip
            raise UsageError("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    keys = ("health_cmd", "health_interval", "health_timeout", "health_retries",
            "health_start_period")  # fmt: skip
    if not any(opts.get(k) for k in keys):
        return None
    h = {}
    if opts.get("health_cmd"):
        h["Test"] = ["CMD-SHELL", opts["health_cmd"]]
    for key, field in (("health_interval", "Interval"), ("health_timeout", "Timeout"),
                       ("health_start_period", "StartPeriod")):  # fmt: skip
        ns = _duration_ns(opts, key)
        if ns < 0:
            raise _bad(key, opts[key], "must not be negative")
        h[field] = ns
    h["Retries"] = _int(opts, "health_retries")
    if h["Retries"] < 0:
        raise _bad("health_retries", opts["health_retries"], "must not be negative")
    return h
