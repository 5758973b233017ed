"""`sangja system df|info|events|prune`, `sangja info`, `sangja version`: Docker's
housekeeping commands, their flags and output shapes.  The work is the engine's
(engine/diskusage.py, sysinfo.py, events.py, prune.py); this module parses and prints."""

from __future__ import annotations

import sys

from sangja.cli.groups import Sub, dispatch, need
from sangja.cli.groups import containers as _cs
from sangja.cli.output import Struct, age, print_formatted, print_template, size, table
from sangja.cli.parse import B, M, UsageError, V, flags


def main(word: str, args: list[str], g: dict) -> int:
    if word in ("info", "version"):
        args = [word, *args]
    return dispatch("system", SYSTEM, {}, args, g)


# ---- df -------------------------------------------------------------------------------------


def system_df(opts, pos, g):
    from sangja.engine import diskusage

    need(pos, "system df", 0, 0)
    cs = _cs(g)
    df = diskusage.disk_usage(cs.store, cs.mounts.volumes, diskusage.containers(cs))
    fmt = opts.get("format")
    if opts.get("verbose"):
        if fmt:
            body = {k: v for k, v in df.items() if not k.startswith("_")}
            return print_template(fmt, [body])
        _df_verbose(df)
        return 0
    rows = [Struct(_df_row(r)) for r in diskusage.summary(df)]
    titles = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
              "Reclaimable": "RECLAIMABLE"}  # fmt: skip
    default = "{{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
    return print_formatted(fmt or "table", rows, titles, default)


def _df_row(r: dict) -> dict:
    rec = size(r["Reclaimable"])
    if r["Size"] > 0:
        rec += f" ({r['Reclaimable'] * 100 // r['Size']}%)"
    return {"Type": r["Type"], "TotalCount": str(r["TotalCount"]), "Active": str(r["Active"]),
            "Size": size(r["Size"]), "Reclaimable": rec}  # fmt: skip


def _df_verbose(df: dict) -> None:
    from sangja.image.reference import familiar, split_name

    out = sys.stdout
    out.write("Images space usage:\n\n")
    rows = [("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE", "UNIQUE SIZE",
             "CONTAINERS")]  # fmt: skip
    for i in df["Images"]:
        repo, tag = "<none>", "<none>"
        if i["RepoTags"]:
            name, t = split_name(i["RepoTags"][0])
            repo, tag = familiar(name), t or "<none>"
        rows.append((repo, tag, i["Id"].split(":", 1)[1][:12],
                     age(i["Created"]) if i["Created"] else "N/A", size(i["Size"]),
                     size(i["SharedSize"]), size(i["Size"] - i["SharedSize"]),
                     str(i["Containers"])))  # fmt: skip
    table(rows)
    out.write("\nContainers space usage:\n\n")
    rows = [("CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED", "STATUS",
             "NAMES")]  # fmt: skip
    for c in df["Containers"]:
        cmd = c.get("Command", "")
        cmd = f'"{cmd[:19]}…"' if len(cmd) > 20 else f'"{cmd}"'
        names = ",".join(n.lstrip("/") for n in c.get("Names") or [])
        rows.append((c["Id"][:12], c.get("Image", ""), cmd, str(c.get("LocalVolumes", 0)),
                     size(c.get("SizeRw", 0)), age(c.get("Created", 0)), c.get("Status", ""),
                     names))  # fmt: skip
    table(rows)
    out.write("\nLocal Volumes space usage:\n\n")
    rows = [("VOLUME NAME", "LINKS", "SIZE")]
    for v in df["Volumes"]:
        rows.append((v["Name"], str(v["UsageData"]["RefCount"]), size(v["UsageData"]["Size"])))
    table(rows)


# ---- info / version -------------------------------------------------------------------------


def system_info(opts, pos, g):
    from sangja.engine import sysinfo

    need(pos, "info", 0, 0)
    cs = _cs(g)
    i = sysinfo.info(cs.store, cs.counts(), systemd_cgroup=bool(g.get("systemd_cgroup")))
    if opts.get("format"):
        return print_template(opts["format"], [i])
    w = []
    w.append(f"Containers: {i['Containers']}")
    for k in ("Running", "Paused", "Stopped"):
        w.append(f" {k}: {i['Containers' + k]}")
    w.append(f"Images: {i['Images']}")
    w.append(f"Server Version: {i['ServerVersion']}")
    w.append(f"Storage Driver: {i['Driver']}")
    w += [f" {k}: {v}" for k, v in i["DriverStatus"]]
    w.append(f"Logging Driver: {i['LoggingDriver']}")
    w.append(f"Cgroup Driver: {i['CgroupDriver']}")
    w.append(f"Cgroup Version: {i['CgroupVersion']}")
    w.append("Plugins:")
    for k in ("Volume", "Network", "Log"):
        w.append(f" {k}: {' '.join(i['Plugins'][k])}")
    w.append(f"Swarm: {i['Swarm']['LocalNodeState']}")
    w.append(f"Runtimes: {' '.join(i['Runtimes'])}")
    w.append(f"Default Runtime: {i['DefaultRuntime']}")
    w.append(f"Init Binary: {i['InitBinary']}")
    w.append("Security Options:")
    for opt in i["SecurityOptions"]:
        parts = dict(p.split("=", 1) for p in opt.split(","))
        w.append(f" {parts.get('name', opt)}")
        if "profile" in parts:
            w.append(f"  Profile: {parts['profile']}")
    w.append(f"Kernel Version: {i['KernelVersion']}")
    w.append(f"Operating System: {i['OperatingSystem']}")
    w.append(f"OSType: {i['OSType']}")
    w.append(f"Architecture: {i['Architecture']}")
    w.append(f"CPUs: {i['NCPU']}")
    w.append(f"Total Memory: {_gib(i['MemTotal'])}")
    w.append(f"Name: {i['Name']}")
    w.append(f"ID: {i['ID']}")
    w.append(f"Root Dir: {i['DockerRootDir']}")
    w.append(f"Config File: {i['ConfigFile']}")
    w.append("Debug Mode: false")
    w.append(f"Default Registry: {i['IndexServerAddress']}")
    if i["InsecureRegistries"]:
        w.append("Insecure Registries:")
        w += [f" {r}" for r in i["InsecureRegistries"]]
    w.append(f"Live Restore Enabled: {str(i['LiveRestoreEnabled']).lower()}")
    sys.stdout.write("".join(line + "\n" for line in w))
    if i["Warnings"]:
        sys.stderr.write("".join(f"WARNING: {x}\n" for x in i["Warnings"]))
    return 0


def _gib(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.4g}{unit}"
        n /= 1024
    return f"{n}B"


def system_version(opts, pos, g):
    import platform

    from sangja.engine import sysinfo

    need(pos, "version", 0, 0)
    srv = sysinfo.version()
    client = {"Platform": {"Name": "sangja"}, "Version": srv["Version"],
              "ApiVersion": srv["ApiVersion"], "PythonVersion": platform.python_version(),
              "Os": srv["Os"], "Arch": srv["Arch"], "Context": "default"}  # fmt: skip
    if opts.get("format"):
        return print_template(opts["format"], [{"Client": client, "Server": srv}])
    w = ["Client: sangja", f" Version:           {client['Version']}",
         f" API version:       {client['ApiVersion']}",
         f" Python version:    {client['PythonVersion']}",
         f" OS/Arch:           {client['Os']}/{client['Arch']}", "", "Server: sangja"]  # fmt: skip
    for c in srv["Components"]:
        w.append(f" {c['Name']}:")
        w.append(f"  Version:          {c['Version']}")
        d = c.get("Details") or {}
        if c["Name"] == "Engine":
            w.append(f"  API version:      {d['ApiVersion']} (minimum version"
                     f" {d['MinAPIVersion']})")  # fmt: skip
            w.append(f"  Python version:   {d['PythonVersion']}")
            w.append(f"  OS/Arch:          {d['Os']}/{d['Arch']}")
            w.append(f"  Kernel version:   {d['KernelVersion']}")
            w.append("  Experimental:     false")
        elif "OCIRuntimeSpec" in d:
            w.append(f"  OCI runtime spec: {d['OCIRuntimeSpec']}")
    sys.stdout.write("".join(line + "\n" for line in w))
    return 0


# ---- events ---------------------------------------------------------------------------------


def system_events(opts, pos, g):
    from sangja.engine import events
    from sangja.engine.units import parse_timestamp
    from sangja.image import config

    need(pos, "system events", 0, 0)
    try:
        since = parse_timestamp(opts["since"]) if opts.get("since") else None
        until = parse_timestamp(opts["until"]) if opts.get("until") else None
        filters = events.parse_filters(opts.get("filter"))
    except ValueError as e:
        raise UsageError(str(e))
    fmt = opts.get("format")
    if fmt:
        from sangja.cli.gotemplate import Template, TemplateError

        try:
            template = None if fmt == "json" else Template(fmt)
        except TemplateError as e:
            raise UsageError(str(e))
    for ev in events.follow(config.root(), since, until, filters):
        if not fmt:
            line = events.text(ev)
        elif template is None:
            from sangja import jsonio

            line = jsonio.dumps(ev)
        else:
            line = template.render(ev)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    return 0


# ---- prune ----------------------------------------------------------------------------------


def system_prune(opts, pos, g):
    from sangja.cli.output import confirm
    from sangja.engine import prune

    need(pos, "system prune", 0, 0)
    filters: dict[str, list[str]] = {}
    for item in opts.get("filter") or ():
        k, eq, v = item.partition("=")
        if not eq:
            raise UsageError(f"bad format of filter (expected name=value): {item!r}")
        filters.setdefault(k.strip().lower(), []).append(v)
    what = ["all stopped containers", "all networks not used by at least one container"]
    if opts.get("volumes"):
        what.append("all anonymous volumes not used by at least one container")
    what.append("all images without at least one container associated to them"
                if opts.get("all") else "all dangling images")  # fmt: skip
    what.append("all build cache" if opts.get("all") else "unused build cache")
    if not opts.get("force") and not confirm(
        "WARNING! This will remove:\n" + "".join(f"  - {w}\n" for w in what)
    ):
        return 0
    res = prune.system_prune(_cs(g), all=bool(opts.get("all")), volumes=bool(opts.get("volumes")),
                             filters=filters)  # fmt: skip
    out = sys.stdout
    if res["ContainersDeleted"]:
        out.write("Deleted Containers:\n" + "".join(i + "\n" for i in res["ContainersDeleted"]))
        out.write("\n")
    if res["NetworksDeleted"]:
        out.write("Deleted Networks:\n" + "".join(n + "\n" for n in res["NetworksDeleted"]))
        out.write("\n")
    if res["VolumesDeleted"]:
        out.write("Deleted Volumes:\n" + "".join(n + "\n" for n in res["VolumesDeleted"]))
        out.write("\n")
    if res["ImagesDeleted"]:
        lines = [f"untagged: {d['Untagged']}" if "Untagged" in d else f"deleted: {d['Deleted']}"
                 for d in res["ImagesDeleted"]]  # fmt: skip
        out.write("Deleted Images:\n" + "".join(line + "\n" for line in lines) + "\n")
    if res["CachesDeleted"]:
        out.write(
            "Deleted build cache objects:\n" + "".join(k + "\n" for k in res["CachesDeleted"])
        )
        out.write("\n")
    out.write(f"Total reclaimed space: {size(res['SpaceReclaimed'])}\n")
    return 0


SYSTEM = {
    "df": Sub(flags(("-v", "--verbose", "verbose", B), ("--format", "format", V)),
              "[OPTIONS]", "disk usage of images, containers and volumes", system_df),
    "info": Sub(flags(("-f", "--format", "format", V)), "[OPTIONS]",
                "the engine: storage driver, cgroups, kernel, counts, settings", system_info),
    "events": Sub(flags(("--since", "since", V), ("--until", "until", V),
                        ("-f", "--filter", "filter", M), ("--format", "format", V)),
                  "[OPTIONS]", "the engine's events, then each new one as it happens",
                  system_events),
    "prune": Sub(flags(("-a", "--all", "all", B), ("--volumes", "volumes", B),
                       ("-f", "--force", "force", B), ("--filter", "filter", M)),
                 "[OPTIONS]", "remove stopped containers, unused networks, images, build cache",
                 system_prune),
    "version": Sub(flags(("-f", "--format", "format", V)), "[OPTIONS]",
                   "the engine's, the runtime's and conmon's versions", system_version),
}  # fmt: skip
