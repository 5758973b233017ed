"""`system info` and `version`: Docker's /info and /version bodies, with the fields that
apply to sangja (no swarm, no plugins beyond the built-in ones, no containerd)."""

from __future__ import annotations

import os
import platform

API_VERSION = "1.41"
MIN_API_VERSION = "1.24"

_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
           "s390x": "s390x", "i686": "386", "riscv64": "riscv64"}  # fmt: skip


def _os_release() -> tuple[str, str]:
    vals = {}
    try:
        with open("/etc/os-release") as f:
            for line in f:
                k, _, v = line.strip().partition("=")
                vals[k] = v.strip('"')
    except OSError:
        pass
    return vals.get("PRETTY_NAME", "Linux"), vals.get("VERSION_ID", "")


def _mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def engine_id(root: str) -> str:
    """A stable id of this engine (its data root): made once, as Docker's engine-id."""
    path = os.path.join(root, "engine-id")
    try:
        with open(path) as f:
            got = f.read().strip()
        if got:
            return got
    except FileNotFoundError:
        pass
    import uuid

    new = str(uuid.uuid4())
    os.makedirs(root, mode=0o700, exist_ok=True)
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(new + "\n")
    try:
        os.link(tmp, path)  # the first writer wins; a concurrent one reads its id
    except FileExistsError:
        os.unlink(tmp)
        return engine_id(root)
    os.unlink(tmp)
    return new


def _conmon_version() -> str:
    import shutil
    import subprocess

    exe = shutil.which("conmon")
    if not exe:
        return ""
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    first = (out.stdout or "").splitlines()[:1]
    return first[0].replace("conmon version ", "") if first else ""


def storage(root: str) -> tuple[str, list[list[str]], list[str]]:
    """-> (driver name, DriverStatus, warnings) as the next container would get them."""
    from sangja.errors import SangjaError
    from sangja.image import snapshot

    warnings = []
    try:
        drv, warn = snapshot.driver(root)
    except SangjaError as e:
        return "none", [], [str(e)]
    if warn:
        warnings.append(warn)
    status = [["Backing Filesystem", snapshot.backing_filesystem(root)]]
    if drv.name == "overlay":
        status += [["Supports d_type", "true"], ["Native Overlay Diff", "true"],
                   ["userxattr", "false"]]  # fmt: skip
    return drv.name, status, warnings


def info(store, containers: dict | None = None, systemd_cgroup: bool = False) -> dict:
    """Docker's /info.  `containers`: {total, running, paused, stopped} from the engine."""
    from sangja import __version__, settings
    from sangja.errors import SangjaError
    from sangja.image import config as cfg

    root = store.root
    c = containers or {"total": 0, "running": 0, "paused": 0, "stopped": 0}
    name, status, warnings = storage(root)
    try:
        from sangja.runtime.cgroups import driver as cgroup_driver

        cgv = cgroup_driver()[0][1:]
    except Exception:  # no cgroups mounted: say so rather than fail `info`
        cgv = ""
        warnings.append("no cgroup hierarchy is mounted")
    pretty, osver = _os_release()
    uname = os.uname()
    insecure = cfg._insecure_list()
    log_driver = settings.get("log-driver") or "k8s-file"
    if log_driver == "json-file":
        log_driver = "k8s-file"
    from sangja.engine.paths import sangja_binary

    try:
        binary = sangja_binary()
    except SangjaError as e:  # info still answers, and says why
        binary = settings.get("runtime") or ""
        warnings.append(str(e))
    return {
        "ID": engine_id(root),
        "Containers": c["total"], "ContainersRunning": c["running"],
        "ContainersPaused": c["paused"], "ContainersStopped": c["stopped"],
        "Images": len(store.images()),
        "Driver": name, "DriverStatus": status,
        "Plugins": {"Volume": ["local"], "Network": ["host", "none"],
                    "Authorization": None, "Log": ["k8s-file", "none"]},
        "MemoryLimit": True, "SwapLimit": os.path.exists(
            "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes") or cgv == "2",
        "CpuCfsPeriod": True, "CpuCfsQuota": True, "CPUShares": True, "CPUSet": True,
        "PidsLimit": True, "IPv4Forwarding": _read("/proc/sys/net/ipv4/ip_forward") == "1",
        "Debug": False, "NFd": len(os.listdir("/proc/self/fd")), "OomKillDisable": cgv == "1",
        "NGoroutines": 0, "SystemTime": _now(), "LoggingDriver": log_driver,
        "CgroupDriver": "systemd" if systemd_cgroup else "cgroupfs", "CgroupVersion": cgv,
        "NEventsListener": 0, "KernelVersion": uname.release, "OperatingSystem": pretty,
        "OSVersion": osver, "OSType": "linux", "Architecture": uname.machine,
        "IndexServerAddress": cfg.default_registry(),
        "RegistryConfig": {"InsecureRegistryCIDRs": [i for i in insecure if "/" in i],
                           "IndexConfigs": {}, "Mirrors": []},
        "NCPU": len(os.sched_getaffinity(0)), "MemTotal": _mem_total(),
        "DockerRootDir": root, "Name": uname.nodename, "Labels": [],
        "ExperimentalBuild": False, "ServerVersion": __version__,
        "Runtimes": {"sangja": {"path": binary}}, "DefaultRuntime": "sangja",
        "Swarm": {"LocalNodeState": "inactive"}, "LiveRestoreEnabled": True,
        "Isolation": "", "InitBinary": "catatonit",
        "SecurityOptions": ["name=seccomp,profile=builtin"]
        + (["name=cgroupns"] if cgv == "2" else []),
        "ConfigFile": settings.path(), "InsecureRegistries": insecure,
        "Warnings": warnings,
    }  # fmt: skip


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def _now() -> str:
    import datetime

    return datetime.datetime.now().astimezone().isoformat()


def version() -> dict:
    """Docker's /version: the engine and its components (the runtime is sangja itself)."""
    from sangja import OCI_VERSION, __version__

    uname = os.uname()
    arch = _GOARCH.get(uname.machine, uname.machine)
    components = [{"Name": "Engine", "Version": __version__,
                   "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
                               "Os": "linux", "Arch": arch, "KernelVersion": uname.release,
                               "PythonVersion": platform.python_version()}},
                  {"Name": "sangja", "Version": __version__,
                   "Details": {"OCIRuntimeSpec": OCI_VERSION}}]  # fmt: skip
    conmon = _conmon_version()
    if conmon:
        components.append({"Name": "conmon", "Version": conmon, "Details": {}})
    return {"Platform": {"Name": "sangja"}, "Components": components, "Version": __version__,
            "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
            "PythonVersion": platform.python_version(), "Os": "linux", "Arch": arch,
            "KernelVersion": uname.release, "Experimental": False}  # fmt: skip
