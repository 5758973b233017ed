"""Containers in Docker's JSON shapes: `inspect` (ContainerInspect) and the list entries of
`ps` (ContainerSummary, /containers/json), built from a record checked by
Containers.observe and the image's config."""

from __future__ import annotations

import os
import time

from sangja.engine.records import Record
from sangja.engine.units import human_duration, rfc3339_nano


def effective_config(rec: Record, image_conf: dict) -> dict:
    """The container's Config with the image's defaults applied, as Docker shows it."""
    from sangja.image.runspec import merge_env

    cfg = dict(rec.config)
    icfg = image_conf.get("config") or {}
    if cfg.get("Entrypoint") is None:
        cfg["Entrypoint"] = icfg.get("Entrypoint")
        if not cfg.get("Cmd"):
            cfg["Cmd"] = icfg.get("Cmd")
    elif cfg.get("Entrypoint") == [""]:
        cfg["Entrypoint"] = None
    cfg["Env"] = merge_env(icfg.get("Env") or [], cfg.get("Env") or []) or None
    cfg["WorkingDir"] = cfg.get("WorkingDir") or icfg.get("WorkingDir") or ""
    cfg["User"] = cfg.get("User") or icfg.get("User") or ""
    cfg["Labels"] = {**(icfg.get("Labels") or {}), **(cfg.get("Labels") or {})}
    cfg["Hostname"] = cfg.get("Hostname") or rec.id[:12]
    if not cfg.get("StopSignal") and icfg.get("StopSignal"):
        cfg["StopSignal"] = icfg["StopSignal"]
    if not cfg.get("ExposedPorts") and icfg.get("ExposedPorts"):
        cfg["ExposedPorts"] = icfg["ExposedPorts"]
    if not cfg.get("Healthcheck") and icfg.get("Healthcheck"):
        cfg["Healthcheck"] = icfg["Healthcheck"]
    if not cfg.get("Volumes") and icfg.get("Volumes"):
        cfg["Volumes"] = icfg["Volumes"]
    return cfg


def status_word(rec: Record) -> str:
    """State.Status: created, running, paused, restarting, removing, exited, dead."""
    return "created" if rec.state == "creating" else rec.state


def status_text(rec: Record, now: float | None = None) -> str:
    """ps's STATUS column, as Docker words it."""
    now = time.time() if now is None else now
    health = _health(rec)
    h = f" ({health})" if health and health != "none" else ""
    if health == "starting":
        h = " (health: starting)"
    if rec.state == "running":
        return f"Up {human_duration(now - (rec.started or now))}{h}"
    if rec.state == "paused":
        return f"Up {human_duration(now - (rec.started or now))} (Paused)"
    if rec.state == "restarting":
        return f"Restarting ({rec.exit_code}) {human_duration(now - (rec.finished or now))} ago"
    if rec.state == "removing":
        return "Removal In Progress"
    if rec.state == "dead":
        return "Dead"
    if rec.state == "exited" and rec.finished:
        return f"Exited ({rec.exit_code}) {human_duration(now - rec.finished)} ago"
    return "Created"


def _health(rec: Record) -> str:
    if not rec.health:
        return ""
    import json

    try:
        return json.loads(rec.health).get("Status", "")
    except ValueError:
        return ""


def summary(rec: Record, image_conf: dict, size: tuple[int, int] | None = None,
            mounts: list[dict] | None = None) -> dict:  # fmt: skip
    """One entry of /containers/json (`mounts`: Docker's Mounts entries)."""
    cfg = effective_config(rec, image_conf)
    args = list(cfg.get("Entrypoint") or []) + list(cfg.get("Cmd") or [])
    if rec.host_config.get("Init"):
        args = ["/dev/init", "--"] + args
    out = {
        "Id": rec.id,
        "Names": ["/" + rec.name],
        "Image": rec.image_ref,
        "ImageID": rec.image,
        "Command": " ".join(args),
        "Created": int(rec.created),
        "Ports": [],
        "Labels": cfg.get("Labels") or {},
        "State": status_word(rec),
        "Status": status_text(rec),
        "HostConfig": {"NetworkMode": rec.host_config.get("NetworkMode") or "default"},
        "NetworkSettings": {"Networks": _networks(rec)},
        "Mounts": mounts or [],
    }
    if size is not None:
        out["SizeRw"], out["SizeRootFs"] = size
    return out


def _networks(rec: Record) -> dict:
    mode = rec.host_config.get("NetworkMode") or "default"
    name = "none" if mode == "default" else mode
    return {name: {"IPAMConfig": None, "Links": None, "Aliases": None, "NetworkID": "",
                   "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
                   "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
                   "MacAddress": "", "DriverOpts": None}}  # fmt: skip


def inspect(rec: Record, image_conf: dict, paths, lowers: list[str],
            size: tuple[int, int] | None = None, driver: str = "overlay",
            mounts: list[dict] | None = None) -> dict:  # fmt: skip
    """ContainerInspect.  `driver`: its storage driver's name; `mounts`: Docker's Mounts
    entries (engine/mounts.py)."""
    import json

    cfg = effective_config(rec, image_conf)
    args = list(cfg.get("Entrypoint") or []) + list(cfg.get("Cmd") or [])
    if rec.host_config.get("Init"):
        args = ["/dev/init", "--"] + args
    state = {
        "Status": status_word(rec),
        "Running": rec.state in ("running", "paused", "restarting"),
        "Paused": rec.state == "paused",
        "Restarting": rec.state == "restarting",
        "OOMKilled": bool(rec.oom_killed),
        "Dead": rec.state == "dead",
        "Pid": rec.pid if rec.state in ("running", "paused") else 0,
        "ExitCode": rec.exit_code,
        "Error": rec.error,
        "StartedAt": rfc3339_nano(rec.started),
        "FinishedAt": rfc3339_nano(rec.finished),
    }
    if rec.health:
        state["Health"] = json.loads(rec.health)
    out = {
        "Id": rec.id,
        "Created": rfc3339_nano(rec.created),
        "Path": args[0] if args else "",
        "Args": args[1:],
        "State": state,
        "Image": rec.image,
        "ResolvConfPath": paths.resolv,
        "HostnamePath": paths.hostname,
        "HostsPath": paths.hosts,
        "LogPath": paths.log,
        "Name": "/" + rec.name,
        "RestartCount": rec.restart_count,
        "Driver": driver,
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": _exec_ids(paths) if rec.state in ("running", "paused") else None,
        "HostConfig": rec.host_config,
        "GraphDriver": {
            "Name": "overlay",
            "Data": {
                "LowerDir": ":".join([paths.init] + lowers),
                "MergedDir": paths.rootfs,
                "UpperDir": paths.upper,
                "WorkDir": paths.work,
            },
        }
        if driver == "overlay"
        else {"Name": driver, "Data": {"Dir": paths.rootfs}},
        "Mounts": mounts or [],
        "Config": cfg,
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": "",
            "HairpinMode": False,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "Ports": {},
            "SandboxKey": "",
            "SecondaryIPAddresses": None,
            "SecondaryIPv6Addresses": None,
            "EndpointID": "",
            "Gateway": "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "IPAddress": "",
            "IPPrefixLen": 0,
            "IPv6Gateway": "",
            "MacAddress": "",
            "Networks": _networks(rec),
        },  # fmt: skip
    }
    if size is not None:
        out["SizeRw"], out["SizeRootFs"] = size
    return out


def _exec_ids(paths) -> list[str] | None:
    """The container's exec instances that have not ended (Docker lists those)."""
    try:
        names = os.listdir(paths.execs)
    except OSError:
        return None
    out = [n for n in sorted(names) if len(n) == 64
           and not os.path.exists(os.path.join(paths.execs, n, "exit"))]  # fmt: skip
    return out or None


def sizes(paths, image_size: int, rw: int | None = None) -> tuple[int, int]:
    """(SizeRw, SizeRootFs): the writable layer's bytes (`rw`, when the caller measured
    it another way: the vfs driver's changes), and with the image's."""
    from sangja.image.store import _du

    if rw is None:
        rw = _du(paths.upper) if os.path.isdir(paths.upper) else 0
    return rw, rw + image_size
