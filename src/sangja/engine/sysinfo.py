"""Docker's /version and /info bodies, with the fields that apply to sangja."""

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


def info(store, containers: dict | None = None, systemd_cgroup: bool = False) -> dict:
    """Docker's /info.  `containers`: {total, running, paused, stopped} from the engine."""
    import sys

    from sangja import __version__
    from sangja.image import config as cfg

    c = containers or {"total": 0, "running": 0, "paused": 0, "stopped": 0}
    pretty, osver = _os_release()
    uname = os.uname()
    binary = os.path.join(os.path.dirname(sys.executable), "sangja")
    return {
        "ID": "", "Containers": c["total"], "ContainersRunning": c["running"],
        "ContainersPaused": c["paused"], "ContainersStopped": c["stopped"],
        "Images": len(store.images()), "Driver": "overlay", "DriverStatus": [],
        "Plugins": {"Volume": [], "Network": ["host", "none"], "Authorization": None,
                    "Log": ["k8s-file", "none"]},
        "MemoryLimit": True, "SwapLimit": False, "CpuCfsPeriod": True, "CpuCfsQuota": True,
        "CPUShares": True, "CPUSet": True, "PidsLimit": True, "IPv4Forwarding": False,
        "Debug": False, "NFd": len(os.listdir("/proc/self/fd")), "OomKillDisable": True,
        "NGoroutines": 0, "LoggingDriver": "k8s-file",
        "CgroupDriver": "systemd" if systemd_cgroup else "cgroupfs", "CgroupVersion": "1",
        "NEventsListener": 0, "KernelVersion": uname.release, "OperatingSystem": pretty,
        "OSVersion": osver, "OSType": "linux", "Architecture": uname.machine,
        "IndexServerAddress": cfg.default_registry(),
        "RegistryConfig": {"InsecureRegistryCIDRs": [], "IndexConfigs": {}, "Mirrors": []},
        "NCPU": len(os.sched_getaffinity(0)), "MemTotal": _mem_total(),
        "DockerRootDir": store.root, "Name": uname.nodename, "Labels": [],
        "ExperimentalBuild": False, "ServerVersion": __version__,
        "Runtimes": {"sangja": {"path": binary}}, "DefaultRuntime": "sangja",
        "Swarm": {"LocalNodeState": "inactive"}, "LiveRestoreEnabled": True,
        "Isolation": "", "InitBinary": "catatonit",
        "SecurityOptions": ["name=seccomp,profile=builtin"], "Warnings": [],
    }  # fmt: skip


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
    return {"Platform": {"Name": "sangja"}, "Components": components, "Version": __version__,
            "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
            "PythonVersion": platform.python_version(), "Os": "linux", "Arch": arch,
            "KernelVersion": uname.release, "Experimental": False}  # fmt: skip


def disk_usage(cs) -> dict:
    """Docker's /system/df: the layers' bytes, each image (with the bytes of its layers
    other images use too: SharedSize), each container with its sizes.  No volumes and no
    build cache yet (the engine has neither)."""
    db = cs.store.db
    layers = db.execute("SELECT COALESCE(SUM(size), 0) FROM layers").fetchone()[0]
    shared = dict(db.execute(
        "SELECT il.image, COALESCE(SUM(l.size), 0) FROM image_layers il JOIN layers l"
        " ON l.chain_id = il.chain_id WHERE l.refs > 1 GROUP BY il.image"))  # fmt: skip
    images = cs.images.list(all=True)
    for img in images:
        img["SharedSize"] = shared.get(img["Id"], 0)
    return {"LayersSize": layers, "Images": images,
            "Containers": cs.summaries(all=True, size=True), "Volumes": [],
            "BuildCache": []}  # fmt: skip
