"""`sangja system df|info|events`, `sangja info`, `sangja version`: Docker's housekeeping
commands, their flags and output shapes.  The work is the engine's (engine/diskusage.py,
engine/sysinfo.py, engine/events.py); this module parses and prints."""

from __future__ import annotations

import sys

from sangja.cli.main import UsageError, parse
from sangja.cli.volumes import table

_V, _B, _M = "v", "b", "m"


def _flags(*specs):
    table = {}
    for *names, key, kind in specs:
        for n in names:
            table[n] = (key, kind)
    return table


SYSTEM = {
    "df": (_flags(("-v", "--verbose", "verbose", _B), ("--format", "format", _V)),
           "[OPTIONS]", "disk usage of images, containers and volumes"),
    "info": (_flags(("-f", "--format", "format", _V)), "[OPTIONS]",
             "the engine: storage driver, cgroups, kernel, counts, settings"),
    "events": (_flags(("--since", "since", _V), ("--until", "until", _V),
                      ("-f", "--filter", "filter", _M), ("--format", "format", _V)),
               "[OPTIONS]", "the engine's events, then each new one as it happens"),
}  # fmt: skip
VERSION = _flags(("-f", "--format", "format", _V))


def main(word, args, g):
    if word == "version":
        return _run(lambda: _version(*parse(args, dict(VERSION, **{"--help": ("help", _B)}))))
    if word == "info":
        args = ["info"] + args
    if not args or args[0] in ("-h", "--help", "help"):
        lines = ["usage: sangja system COMMAND [options]", ""]
        lines += [f"  {n:8} {u:12} {d}" for n, (_, u, d) in SYSTEM.items()]
        sys.stdout.write("\n".join(lines) + "\n")
        return 0 if args else 1
    sub = args[0]
    if sub not in SYSTEM:
        return _fail(f"unknown command system {sub!r} (see `sangja system --help`)")

    def go():
        opts, pos = parse(args[1:], dict(SYSTEM[sub][0], **{"--help": ("help", _B)}))
        if opts.get("help"):
            sys.stdout.write(f"usage: sangja system {sub} {SYSTEM[sub][1]}\n{SYSTEM[sub][2]}\n"
                             f"  {' '.join(sorted(SYSTEM[sub][0]))}\n")  # fmt: skip
            return 0
        if pos:
            raise UsageError(f'"system {sub}" accepts no arguments')
        return globals()[f"_{sub}"](opts, g)

    return _run(go)


def _run(fn):
    try:
        return fn()
    except UsageError as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        return 0  # docker events ends on ^C
    except BrokenPipeError:
        return 0
    except Exception as e:
        from sangja.errors import SangjaError

        if isinstance(e, SangjaError):
            return _fail(str(e))
        if isinstance(e, OSError):
            return _fail(f"{e.strerror or e}{' ' + e.filename if e.filename else ''}")
        raise


def _fail(msg):
    sys.stderr.write(f"sangja: {msg}\n")
    return 1


def size(n: float) -> str:
    """go-units HumanSize: 1000-based, 4 significant digits ('16.43MB', '0B')."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.4g}{unit}"
        n /= 1000
    return f"{n}B"


def _json_lines(items) -> None:
    from sangja import jsonio

    sys.stdout.write("".join(jsonio.dumps(i) + "\n" for i in items))


def _only_json(fmt: str) -> bool:
    if fmt in ("json", "{{json .}}"):
        return True
    raise UsageError(f"--format {fmt!r}: only json is supported ('{{{{json .}}}}' too)")


# ---- df -------------------------------------------------------------------------------------


def _store():
    from sangja.image.store import Store

    return Store()


def _df(opts, g):
    from sangja.engine import diskusage
    from sangja.engine.volumes import Volumes

    store = _store()
    df = diskusage.disk_usage(store, Volumes(store))
    fmt = opts.get("format")
    if fmt and _only_json(fmt):
        if opts.get("verbose"):
            df = {k: v for k, v in df.items() if not k.startswith("_")}
            _json_lines([df])
        else:
            rows = [_df_row(r) for r in diskusage.summary(df)]
            _json_lines([{k: str(v) for k, v in r.items()} for r in rows])
        return 0
    if opts.get("verbose"):
        _df_verbose(df)
        return 0
    rows = [("TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE")]
    for r in diskusage.summary(df):
        d = _df_row(r)
        rows.append((d["Type"], d["TotalCount"], d["Active"], d["Size"], d["Reclaimable"]))
    table(rows)
    return 0


def _df_row(r: dict) -> dict:
    rec = size(r["Reclaimable"])
    if r["Size"] > 0:
        rec += f" ({r['Reclaimable'] * 100 // r['Size']}%)"
    return {"Type": r["Type"], "TotalCount": r["TotalCount"], "Active": r["Active"],
            "Size": size(r["Size"]), "Reclaimable": rec}  # fmt: skip


def _age(ts) -> str:
    import time

    d = time.time() - ts
    for unit, secs in (("year", 365 * 86400), ("month", 30 * 86400), ("week", 7 * 86400),
                       ("day", 86400), ("hour", 3600), ("minute", 60)):  # fmt: skip
        if d >= secs * (2 if unit != "minute" else 1):
            n = int(d // secs)
            return f"{n} {unit}{'s' if n > 1 else ''} ago"
    return "Less than a minute ago" if d >= 0 else "in the future"


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
                     _age(i["Created"]) if i["Created"] else "N/A", size(i["Size"]),
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
                     size(c.get("SizeRw", 0)), _age(c.get("Created", 0)), c.get("Status", ""),
                     names))  # fmt: skip
    table(rows)
    out.write("\nLocal Volumes space usage:\n\n")
    rows = [("VOLUME NAME", "LINKS", "SIZE")]
    for v in df["Volumes"]:
        rows.append((v["Name"], str(v["UsageData"]["RefCount"]), size(v["UsageData"]["Size"])))
    table(rows)


# ---- info / version -------------------------------------------------------------------------


def _info(opts, g):
    from sangja.engine import sysinfo

    i = sysinfo.info(_store(), systemd_cgroup=bool(g.get("systemd_cgroup")))
    fmt = opts.get("format")
    if fmt and _only_json(fmt):
        _json_lines([i])
        return 0
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


def _version(opts, pos):
    import platform

    from sangja.engine import sysinfo

    if opts.get("help"):
        sys.stdout.write("usage: sangja version [--format json]\n")
        return 0
    if pos:
        raise UsageError('"version" accepts no arguments')
    srv = sysinfo.version()
    client = {"Platform": {"Name": "sangja"}, "Version": srv["Version"],
              "ApiVersion": srv["ApiVersion"], "PythonVersion": platform.python_version(),
              "Os": srv["Os"], "Arch": srv["Arch"], "Context": "default"}  # fmt: skip
    fmt = opts.get("format")
    if fmt and _only_json(fmt):
        _json_lines([{"Client": client, "Server": srv}])
        return 0
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


def _events(opts, g):
    from sangja.engine import events

    try:
        since = events.parse_time(opts["since"]) if opts.get("since") else None
        until = events.parse_time(opts["until"]) if opts.get("until") else None
        filters = events.parse_filters(opts.get("filter"))
    except ValueError as e:
        raise UsageError(str(e))
    fmt = opts.get("format")
    as_json = bool(fmt) and _only_json(fmt)
    root = _store().root
    for ev in events.follow(root, since, until, filters):
        if as_json:
            from sangja import jsonio

            sys.stdout.write(jsonio.dumps(ev) + "\n")
        else:
            sys.stdout.write(events.text(ev) + "\n")
        sys.stdout.flush()
    return 0
