"""`sangja volume create|ls|inspect|rm|prune`: Docker's volume commands, their flags and
output shapes.  The work is engine/volumes.py's; this module parses and prints."""

from __future__ import annotations

import sys

from sangja.cli.main import UsageError, parse

_V, _B, _M = "v", "b", "m"


def _flags(*specs):
    table = {}
    for *names, key, kind in specs:
        for n in names:
            table[n] = (key, kind)
    return table


VOLUME = {
    "create": (_flags(("-d", "--driver", "driver", _V), ("--label", "label", _M),
                      ("--name", "name", _V), ("-o", "--opt", "opt", _M)),
               "[OPTIONS] [VOLUME]", "create a volume (no name: an anonymous one)"),
    "ls": (_flags(("-f", "--filter", "filter", _M), ("--format", "format", _V),
                  ("-q", "--quiet", "quiet", _B)),
           "[OPTIONS]", "list volumes (filters: dangling, driver, label, name)"),
    "inspect": (_flags(("-f", "--format", "format", _V)), "VOLUME...", "a volume's details"),
    "rm": (_flags(("-f", "--force", "force", _B)), "[OPTIONS] VOLUME...",
           "remove volumes (never one a container uses)"),
    "prune": (_flags(("-a", "--all", "all", _B), ("--filter", "filter", _M),
                     ("-f", "--force", "force", _B)),
              "[OPTIONS]", "remove unused anonymous volumes (-a: all unused ones)"),
}  # fmt: skip
ALIASES = {"list": "ls", "remove": "rm"}


def main(word, args, g):
    if not args or args[0] in ("-h", "--help", "help"):
        lines = ["usage: sangja volume COMMAND [options]", ""]
        lines += [f"  {n:8} {u:22} {d}" for n, (_, u, d) in VOLUME.items()]
        sys.stdout.write("\n".join(lines) + "\n")
        return 0 if args else 1
    sub = ALIASES.get(args[0], args[0])
    if sub not in VOLUME:
        return _fail(f"unknown command volume {args[0]!r} (see `sangja volume --help`)")
    try:
        opts, pos = parse(args[1:], dict(VOLUME[sub][0], **{"--help": ("help", _B)}))
        if opts.get("help"):
            flags = sorted({k for k in VOLUME[sub][0]})
            sys.stdout.write(f"usage: sangja volume {sub} {VOLUME[sub][1]}\n{VOLUME[sub][2]}\n"
                             f"  {' '.join(flags)}\n")  # fmt: skip
            return 0
        return globals()[f"_{sub}"](opts, pos)
    except UsageError as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        return 130
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


def _volumes():
    from sangja.engine.volumes import Volumes

    return Volumes()


def _pairs(items, what) -> dict:
    out = {}
    for it in items or ():
        k, _, v = it.partition("=")
        if not k:
            raise UsageError(f"invalid {what} {it!r} (want KEY=VALUE)")
        out[k] = v
    return out


def table(rows) -> None:
    """Docker's tabwriter: columns at least 10 wide, 3 spaces between them."""
    widths = [max(max(len(str(r[i])) for r in rows) + 3, 10) for i in range(len(rows[0]))]
    for r in rows:
        cells = [str(c).ljust(w) for c, w in zip(r[:-1], widths, strict=False)]
        sys.stdout.write(("".join(cells) + str(r[-1])).rstrip() + "\n")


def _create(opts, pos):
    if len(pos) > 1:
        raise UsageError('"volume create" requires at most 1 argument')
    name = pos[0] if pos else opts.get("name")
    if pos and opts.get("name") and opts["name"] != pos[0]:
        raise UsageError("conflicting options: either specify --name or provide positional"
                         " arg, not both")  # fmt: skip
    v = _volumes().create(name, opts.get("driver") or "local", _pairs(opts.get("label"), "label"),
                          _pairs(opts.get("opt"), "option"))  # fmt: skip
    sys.stdout.write(v["Name"] + "\n")
    return 0


def cli_entry(v: dict) -> dict:
    """The fields `volume ls --format` sees (docker's volume context)."""
    labels = v.get("Labels") or {}
    usage = v.get("UsageData")
    return {"Availability": "N/A", "Driver": v["Driver"], "Group": "N/A",
            "Labels": ",".join(f"{k}={x}" for k, x in labels.items()),
            "Links": str(usage["RefCount"]) if usage else "N/A",
            "Mountpoint": v["Mountpoint"], "Name": v["Name"], "Scope": v["Scope"],
            "Size": "N/A", "Status": "N/A"}  # fmt: skip


def _format(fmt: str, items: list[dict]) -> None:
    from sangja import jsonio

    if fmt in ("json", "{{json .}}"):
        sys.stdout.write("".join(jsonio.dumps(i) + "\n" for i in items))
        return
    raise UsageError(f"--format {fmt!r}: only json is supported ('{{{{json .}}}}' too)")


def _ls(opts, pos):
    from sangja.engine.volumes import parse_filters

    if pos:
        raise UsageError('"volume ls" accepts no arguments')
    vols = _volumes().list(parse_filters(opts.get("filter")))
    if opts.get("quiet"):
        sys.stdout.write("".join(v["Name"] + "\n" for v in vols))
        return 0
    fmt = opts.get("format") or "table"
    if fmt != "table":
        _format(fmt, [cli_entry(v) for v in vols])
        return 0
    table([("DRIVER", "VOLUME NAME")] + [(v["Driver"], v["Name"]) for v in vols])
    return 0


def _inspect(opts, pos):
    from sangja import jsonio
    from sangja.engine.volumes import NoSuchVolume

    if not pos:
        raise UsageError('"volume inspect" requires at least 1 argument')
    vs = _volumes()
    out, failed = [], 0
    for name in pos:
        try:
            out.append(vs.inspect(name))
        except NoSuchVolume:
            sys.stderr.write(f"sangja: no such volume: {name}\n")
            failed = 1
    fmt = opts.get("format")
    if fmt:
        _format(fmt, out)
    else:
        sys.stdout.write(jsonio.dumps_indent(out, "    ") + "\n")
    return failed


def _rm(opts, pos):
    from sangja.errors import SangjaError

    if not pos:
        raise UsageError('"volume rm" requires at least 1 argument')
    vs = _volumes()
    failed = 0
    for name in pos:
        try:
            vs.remove(name, force=bool(opts.get("force")))
            sys.stdout.write(name + "\n")
        except SangjaError as e:
            sys.stderr.write(f"sangja: {e}\n")
            failed = 1
    return failed


def confirm(warning: str) -> bool:
    sys.stdout.write(f"{warning}\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def _prune(opts, pos):
    from sangja.cli.system import size
    from sangja.engine.volumes import parse_filters

    if pos:
        raise UsageError('"volume prune" accepts no arguments')
    filters = parse_filters(opts.get("filter"))
    every = opts.get("all") or any(v.lower() in ("true", "1") for v in filters.get("all", ()))
    if opts.get("all"):
        filters["all"] = ["true"]
    what = "all local volumes" if every else "anonymous local volumes"
    if not opts.get("force") and not confirm(
        f"WARNING! This will remove {what} not used by at least one container."
    ):
        return 0
    gone, freed = _volumes().prune(filters)
    if gone:
        sys.stdout.write("Deleted Volumes:\n" + "".join(n + "\n" for n in gone) + "\n")
    sys.stdout.write(f"Total reclaimed space: {size(freed)}\n")
    return 0
