"""The body of a container create: the Docker Engine API's ContainerCreate (API v1.41:
`Config` + `HostConfig` + `NetworkingConfig`), with Docker's defaults filled in and every
value checked before anything is made.

Both faces hand the engine this body: the CLI builds it from `run`/`create` flags the way
the docker CLI does (cli/runflags.py), the HTTP API (issue 18) passes the client's JSON.
Mounts (Binds, Mounts, VolumesFrom, Tmpfs, Config.Volumes) are read by engine/mounts.py
here; links are refused.  The network part (NetworkMode, NetworkingConfig, PortBindings,
Dns, ExtraHosts, ...) is checked by engine/endpoints.py at create, where the networks are
known.
"""

from __future__ import annotations

import copy
import os

from sangja.engine.errors import InvalidArgument

CONFIG_DEFAULTS = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False,
    "AttachStdout": True, "AttachStderr": True, "ExposedPorts": None, "Tty": False,
    "OpenStdin": False, "StdinOnce": False, "Env": None, "Cmd": None, "Healthcheck": None,
    "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None, "OnBuild": None,
    "Labels": None, "StopSignal": None, "StopTimeout": None,
}  # fmt: skip

RESOURCE_DEFAULTS = {
    "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0,
    "BlkioWeightDevice": None, "BlkioDeviceReadBps": None, "BlkioDeviceWriteBps": None,
    "BlkioDeviceReadIOps": None, "BlkioDeviceWriteIOps": None, "CpuPeriod": 0, "CpuQuota": 0,
    "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "",
    "Devices": None, "DeviceCgroupRules": None, "DeviceRequests": None, "KernelMemory": 0,
    "KernelMemoryTCP": 0, "MemoryReservation": 0, "MemorySwap": 0, "MemorySwappiness": None,
    "OomKillDisable": False, "PidsLimit": None, "Ulimits": None, "CpuCount": 0,
    "CpuPercent": 0,
}  # fmt: skip

HOST_DEFAULTS = {
    "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "", "Config": {}},
    "NetworkMode": "default", "PortBindings": None,
    "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "AutoRemove": False,
    "VolumeDriver": "", "VolumesFrom": None, "CapAdd": None, "CapDrop": None,
    "CgroupnsMode": "host", "Dns": None, "DnsOptions": None, "DnsSearch": None,
    "ExtraHosts": None, "GroupAdd": None, "IpcMode": "private", "Cgroup": "", "Links": None,
    "OomScoreAdj": 0, "PidMode": "", "Privileged": False, "PublishAllPorts": False,
    "ReadonlyRootfs": False, "SecurityOpt": None, "StorageOpt": None, "Tmpfs": None,
    "UTSMode": "", "UsernsMode": "", "ShmSize": 64 * 1024 * 1024, "Sysctls": None,
    "Runtime": "sangja", "ConsoleSize": [0, 0], "Isolation": "", "Init": None,
    "Mounts": None, "MaskedPaths": None, "ReadonlyPaths": None, **RESOURCE_DEFAULTS,
}  # fmt: skip

RESTART_POLICIES = ("no", "always", "unless-stopped", "on-failure")
LOG_DRIVERS = ("k8s-file", "json-file", "none")
MIN_MEMORY = 6 * 1024 * 1024  # Docker's


def normalize(body: dict) -> dict:
    """A ContainerCreate body -> {"Config", "HostConfig", "NetworkingConfig"} with every
    default, or InvalidArgument naming the bad field."""
    if not isinstance(body, dict):
        raise InvalidArgument("the create body must be a JSON object")
    body = copy.deepcopy(body)
    hc = body.pop("HostConfig", None) or {}
    nc = body.pop("NetworkingConfig", None) or {}
    cfg = {**CONFIG_DEFAULTS, **body}
    hc = {**HOST_DEFAULTS, **hc}
    if not cfg["Image"]:
        raise InvalidArgument("no image given (Config.Image)")
    for key in ("Env", "Cmd", "Entrypoint"):
        if cfg[key] is not None and not (
            isinstance(cfg[key], list) and all(isinstance(x, str) for x in cfg[key])
        ):
            raise InvalidArgument(f"Config.{key} must be a list of strings")
    if cfg["Labels"] is not None and not isinstance(cfg["Labels"], dict):
        raise InvalidArgument("Config.Labels must be an object")
    if cfg["WorkingDir"] and not cfg["WorkingDir"].startswith("/"):
        raise InvalidArgument(
            f"the working directory '{cfg['WorkingDir']}' is invalid, it needs to be an"
            " absolute path"
        )
    if cfg["StopSignal"]:
        _signal(cfg["StopSignal"], "StopSignal")
    _check_health(cfg.get("Healthcheck"))
    hc["ConsoleSize"] = check_console_size(hc.get("ConsoleSize"), "HostConfig.ConsoleSize")
    _check_host(hc)
    _check_mounts(cfg, hc)
    _check_unsupported(cfg, hc, nc)
    return {"Config": cfg, "HostConfig": hc, "NetworkingConfig": nc}


def check_console_size(value, where: str) -> list[int]:
    """[height, width], each 0..65535 (a pty's unsigned short), or InvalidArgument."""
    if value is None:
        return [0, 0]
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 65535
                   for v in value)
    ):  # fmt: skip
        raise InvalidArgument(f"{where} must be [height, width], each 0 to 65535")
    return value


def _log_config(driver: str, conf: dict) -> tuple[str, dict]:
    """The config file's log-driver for a container that names none, and its log-opts
    under the container's own when the container uses that driver (Docker's merge)."""
    from sangja import settings

    default = settings.get("log-driver") or "k8s-file"
    driver = driver or default
    if driver not in LOG_DRIVERS:
        raise InvalidArgument(f"log driver {driver!r} is not supported (k8s-file or none)")
    same = {"json-file": "k8s-file"}
    if same.get(driver, driver) == same.get(default, default):
        conf = {**(settings.get("log-opts") or {}), **conf}
    return driver, conf


def log_limits(conf: dict) -> tuple[int, int]:
    """(max-size in bytes, 0: none; max-file) of a log config, checked as Docker's json-file
    driver checks them (its texts).  max-file without max-size is accepted and changes
    nothing, as in Docker: the one file never rotates."""
    max_size, max_file = 0, 1
    if conf.get("max-size"):
        from sangja.gounits import parse_size

        try:  # decimal, as Docker's json-file driver (units.FromHumanSize): 10m = 10^7
            max_size = parse_size(conf["max-size"], decimal=True)
        except ValueError:
            raise InvalidArgument(f"invalid log opt max-size: {conf['max-size']!r}")
        if max_size <= 0:
            raise InvalidArgument("max-size must be a positive number")
    if conf.get("max-file") not in (None, ""):  # (an empty one was accepted before)
        import re

        text = str(conf["max-file"])
        if not re.fullmatch(r"[+-]?[0-9]+", text):
            raise InvalidArgument(f'invalid log opt max-file: strconv.Atoi: parsing "{text}":'
                                  " invalid syntax")  # fmt: skip
        max_file = int(text)
        if max_file < 1:
            raise InvalidArgument("max-file cannot be less than 1")
        from sangja.engine.logfiles import MAX_FILES

        if max_file > MAX_FILES:
            raise InvalidArgument(f"max-file {max_file} is more than sangja keeps ({MAX_FILES})")
    if not max_size:
        max_file = 1
    return max_size, max_file


def _signal(s, what: str) -> int:
    from sangja.errors import SangjaError
    from sangja.runtime.container import parse_signal

    try:
        return parse_signal(s)
    except SangjaError:
        raise InvalidArgument(f"invalid signal {s!r} ({what})")


def _int(hc: dict, key: str, lo: int | None = 0) -> int:
    v = hc.get(key) or 0
    if not isinstance(v, int) or isinstance(v, bool):
        raise InvalidArgument(f"HostConfig.{key} must be an integer")
    if lo is not None and v < lo:
        raise InvalidArgument(f"invalid HostConfig.{key}: {v}")
    return v


def _check_host(hc: dict) -> None:
    rp = hc.get("RestartPolicy") or {}
    name = rp.get("Name") or "no"
    if name not in RESTART_POLICIES:
        raise InvalidArgument(f"invalid restart policy '{name}'")
    retries = rp.get("MaximumRetryCount") or 0
    if retries and name != "on-failure":
        raise InvalidArgument(f"maximum retry count cannot be used with restart policy '{name}'")
    if retries < 0:
        raise InvalidArgument("maximum retry count cannot be negative")
    hc["RestartPolicy"] = {"Name": name, "MaximumRetryCount": retries}
    if hc.get("AutoRemove") and name != "no":
        raise InvalidArgument("can't create 'AutoRemove' container with restart policy")
    mem = _int(hc, "Memory")
    if mem and mem < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    swap = _int(hc, "MemorySwap", lo=-1)
    if swap > 0 and not mem:
        raise InvalidArgument(
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        )
    if swap > 0 and swap < mem:
        raise InvalidArgument(
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        )
    res = _int(hc, "MemoryReservation")
    if mem and res > mem:
        raise InvalidArgument(
            "Minimum memory limit can not be less than memory reservation limit, see usage"
        )
    sw = hc.get("MemorySwappiness")
    if sw is not None and sw != -1 and not 0 <= sw <= 100:
        raise InvalidArgument(f"Invalid value: {sw}, valid memory swappiness range is 0-100")
    nano = _int(hc, "NanoCpus")
    if nano:
        ncpu = os.cpu_count() or 1
        if nano < 10_000_000 or nano > ncpu * 1_000_000_000:
            raise InvalidArgument(
                f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
            )
        if _int(hc, "CpuQuota") or _int(hc, "CpuPeriod"):
            raise InvalidArgument(
                "Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set"
            )
    _int(hc, "CpuShares")
    _int(hc, "CpuQuota", lo=None)
    _int(hc, "CpuPeriod")
    bw = _int(hc, "BlkioWeight")
    if bw and not 10 <= bw <= 1000:
        raise InvalidArgument("Range of blkio weight is from 10 to 1000")
    if hc.get("PidsLimit") is not None:
        _int(hc, "PidsLimit", lo=-1)
    _int(hc, "ShmSize")
    if not hc.get("ShmSize"):
        hc["ShmSize"] = HOST_DEFAULTS["ShmSize"]
    score = _int(hc, "OomScoreAdj", lo=None)
    if not -1000 <= score <= 1000:
        raise InvalidArgument(f"Invalid value {score}, range for oom score adj is [-1000, 1000]")
    for u in hc.get("Ulimits") or ():
        if not isinstance(u, dict) or not u.get("Name"):
            raise InvalidArgument("HostConfig.Ulimits: want [{Name, Soft, Hard}]")
        if u.get("Soft", 0) > u.get("Hard", 0):
            raise InvalidArgument(
                f"ulimit soft limit must be less than or equal to hard limit: "
                f"{u.get('Soft')} > {u.get('Hard')}"
            )
    lc = hc.get("LogConfig") or {}
    driver, conf = _log_config(lc.get("Type") or "", dict(lc.get("Config") or {}))
    for k in conf:
        if k not in ("max-size", "max-file"):
            raise InvalidArgument(f"unknown log opt '{k}' for {driver} log driver")
    log_limits(conf)  # checked now: nothing is made for a container that cannot start
    hc["LogConfig"] = {"Type": "k8s-file" if driver == "json-file" else driver, "Config": conf}
    for key, allowed in (("IpcMode", ("", "private", "shareable", "host")),
                         ("PidMode", ("", "private", "host")),
                         ("UTSMode", ("", "private", "host")),
                         ("CgroupnsMode", ("", "host", "private"))):  # fmt: skip
        if (hc.get(key) or "") not in allowed:
            raise InvalidArgument(f"HostConfig.{key} {hc[key]!r} is not supported")
    if hc.get("UsernsMode") not in ("", "host"):
        raise InvalidArgument("user namespaces (--userns) are not supported by the engine yet")
    for opt in hc.get("SecurityOpt") or ():
        _security_opt(opt)
    for d in hc.get("Devices") or ():
        if not isinstance(d, dict) or not d.get("PathOnHost"):
            raise InvalidArgument("HostConfig.Devices: want [{PathOnHost, PathInContainer, "
                                  "CgroupPermissions}]")  # fmt: skip
        perms = d.get("CgroupPermissions") or "rwm"
        if not perms or set(perms) - set("rwm"):
            raise InvalidArgument(f"invalid device permissions {perms!r} (want r, w, m)")
    for path in hc.get("Tmpfs") or {}:
        if not path.startswith("/"):
            raise InvalidArgument(f"invalid tmpfs mount point {path!r}: it must be absolute")


def _check_mounts(cfg: dict, hc: dict) -> None:
    """-v, --mount, --volumes-from, --tmpfs and Config.Volumes as Docker reads them
    (engine/mounts.py); the volume driver, when named, must be local."""
    from sangja.engine import mounts

    if cfg.get("Volumes") is not None and not isinstance(cfg["Volumes"], dict):
        raise InvalidArgument('Config.Volumes must be an object {"/path": {}}')
    for key in ("Binds", "VolumesFrom", "Mounts"):
        if hc.get(key) is not None and not isinstance(hc[key], list):
            raise InvalidArgument(f"HostConfig.{key} must be a list")
    if hc.get("VolumeDriver") not in (None, "", "local"):
        raise InvalidArgument(f"volume driver {hc['VolumeDriver']!r} is not supported (only"
                              " local)")  # fmt: skip
    mounts.check(cfg, hc)


def _security_opt(opt: str) -> None:
    key, sep, val = opt.partition("=")
    if not sep:
        key, sep, val = opt.partition(":")
    if key == "no-new-privileges" and val in ("", "true", "false"):
        return
    if key == "seccomp" and val:
        if val != "unconfined" and not os.path.isfile(val):
            raise InvalidArgument(f"opening seccomp profile ({val}) failed: no such file")
        return
    if key == "apparmor" and val == "unconfined":
        return
    if key == "label" and val == "disable":
        return
    if key in ("apparmor", "label"):
        raise InvalidArgument(f"--security-opt {opt}: this host has no {key} (no LSM)")
    raise InvalidArgument(f"invalid --security-opt: {opt!r}")


def _check_health(h) -> None:
    if not h:
        return
    test = h.get("Test")
    if test is not None and (not isinstance(test, list) or not test):
        raise InvalidArgument("Healthcheck.Test must be a non-empty list")
    if test and test[0] not in ("NONE", "CMD", "CMD-SHELL"):
        raise InvalidArgument(f"Healthcheck.Test: unknown kind {test[0]!r}")
    for k in ("Interval", "Timeout", "StartPeriod"):
        v = h.get(k) or 0
        if v and v < 1_000_000:
            raise InvalidArgument(f"Healthcheck.{k} must be at least 1ms")
    if (h.get("Retries") or 0) < 0:
        raise InvalidArgument("Healthcheck.Retries must not be negative")


def _check_unsupported(cfg: dict, hc: dict, nc: dict) -> None:
    """What the engine cannot do yet: a clear error rather than a container that is not
    what was asked."""
    if hc.get("Links"):
        raise InvalidArgument("links: not supported yet")
    eps = (nc or {}).get("EndpointsConfig")
    if eps is not None and not isinstance(eps, dict):
        raise InvalidArgument("NetworkingConfig.EndpointsConfig must be an object")
