"""`sangja volume create|ls|inspect|rm|prune`: Docker's volume commands, their flags and
output shapes.  The work is engine/volumes.py's; this module parses and prints."""

from __future__ import annotations

import sys

from sangja.cli.groups import Sub, dispatch, need
from sangja.cli.output import Struct, print_formatted, print_template
from sangja.cli.parse import B, M, UsageError, V, flags


def main(word: str, args: list[str], g: dict) -> int:
    return dispatch("volume", VOLUME, ALIASES, args, g)


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


def volume_create(opts, pos, g):
    need(pos, "volume create", 0, 1)
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


TITLES = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
          "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE", "Group": "GROUP",
          "Availability": "AVAILABILITY", "Status": "STATUS"}  # fmt: skip


def volume_ls(opts, pos, g):
    from sangja.engine.volumes import parse_filters

    need(pos, "volume ls", 0, 0)
    vols = _volumes().list(parse_filters(opts.get("filter")))
    if opts.get("quiet"):
        sys.stdout.write("".join(v["Name"] + "\n" for v in vols))
        return 0
    items = [Struct(cli_entry(v)) for v in vols]
    sample = Struct(cli_entry({"Driver": "", "Mountpoint": "", "Name": "", "Scope": ""}))
    return print_formatted(opts.get("format") or "table", items, TITLES,
                           "{{.Driver}}\t{{.Name}}", sample)  # fmt: skip


def volume_inspect(opts, pos, g):
    from sangja import jsonio
    from sangja.engine.volumes import NoSuchVolume

    need(pos, "volume inspect", 1)
    vs = _volumes()
    out, failed = [], 0
    for name in pos:
        try:
            out.append(vs.inspect(name))
        except NoSuchVolume:
            sys.stderr.write(f"sangja: no such volume: {name}\n")
            failed = 1
    if opts.get("format"):
        print_template(opts["format"], out)
    else:
        sys.stdout.write(jsonio.dumps_indent(out, "    ") + "\n")
    return failed


def volume_rm(opts, pos, g):
    from sangja.errors import SangjaError

    need(pos, "volume rm", 1)
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


def volume_prune(opts, pos, g):
    from sangja.cli.output import confirm, size
    from sangja.engine.volumes import parse_filters

    need(pos, "volume prune", 0, 0)
    filters = parse_filters(opts.get("filter"))
    if opts.get("all"):
        filters["all"] = ["true"]
    every = any(v.lower() in ("true", "1") for v in filters.get("all", ()))
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


VOLUME = {
    "create": Sub(flags(("-d", "--driver", "driver", V), ("--label", "label", M),
                        ("--name", "name", V), ("-o", "--opt", "opt", M)),
                  "[OPTIONS] [VOLUME]", "create a volume (no name: an anonymous one)",
                  volume_create),
    "ls": Sub(flags(("-f", "--filter", "filter", M), ("--format", "format", V),
                    ("-q", "--quiet", "quiet", B)),
              "[OPTIONS]", "list volumes (filters: dangling, driver, label, name)", volume_ls),
    "inspect": Sub(flags(("-f", "--format", "format", V)), "[OPTIONS] VOLUME...",
                   "a volume's details as JSON", volume_inspect),
    "rm": Sub(flags(("-f", "--force", "force", B)), "[OPTIONS] VOLUME...",
              "remove volumes (never one a container uses)", volume_rm),
    "prune": Sub(flags(("-a", "--all", "all", B), ("--filter", "filter", M),
                       ("-f", "--force", "force", B)),
                 "[OPTIONS]", "remove unused anonymous volumes (-a: all unused ones)",
                 volume_prune),
}  # fmt: skip
ALIASES = {"list": "ls", "remove": "rm"}
