"""`sangja network ls|inspect|create|connect|disconnect|rm|prune`: Docker's flags in, Docker's
output out.  What a network is and what removing one means is the engine's
(engine/networks.py, engine/endpoints.py)."""

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


NETWORK = {
    "ls": (_flags(("-q", "--quiet", "quiet", _B), ("--no-trunc", "no_trunc", _B),
                  ("-f", "--filter", "filter", _M), ("--format", "format", _V)),
           "[OPTIONS]", "list networks"),
    "inspect": (_flags(("-f", "--format", "format", _V), ("-v", "--verbose", "verbose", _B)),
                "[OPTIONS] NETWORK...", "networks' details as JSON"),
    "create": (_flags(("-d", "--driver", "driver", _V), ("--subnet", "subnet", _M),
                      ("--gateway", "gateway", _M), ("--ip-range", "ip_range", _M),
                      ("--aux-address", "aux_address", _M), ("--internal", "internal", _B),
                      ("--ipv6", "ipv6", _B), ("--label", "label", _M),
                      ("-o", "--opt", "opt", _M), ("--attachable", "attachable", _B),
                      ("--ingress", "ingress", _B), ("--scope", "scope", _V),
                      ("--ipam-driver", "ipam_driver", _V), ("--ipam-opt", "ipam_opt", _M),
                      ("--config-only", "config_only", _B),
                      ("--config-from", "config_from", _V)),
               "[OPTIONS] NETWORK", "create a network (bridge)"),
    "connect": (_flags(("--alias", "alias", _M), ("--ip", "ip", _V), ("--ip6", "ip6", _V),
                       ("--link", "link", _M), ("--link-local-ip", "link_local_ip", _M),
                       ("--driver-opt", "driver_opt", _M)),
                "[OPTIONS] NETWORK CONTAINER", "connect a container to a network"),
    "disconnect": (_flags(("-f", "--force", "force", _B)), "[OPTIONS] NETWORK CONTAINER",
                   "disconnect a container from a network"),
    "rm": (_flags(("-f", "--force", "force", _B)), "NETWORK...", "remove networks"),
    "prune": (_flags(("-f", "--force", "force", _B), ("--filter", "filter", _M)), "[OPTIONS]",
              "remove the user networks no container is on"),
}  # fmt: skip
ALIASES = {"list": "ls", "remove": "rm"}


def main(word: str, args: list[str], g: dict) -> int:
    if not args or args[0] in ("-h", "--help", "help"):
        lines = [f"usage: sangja {word} COMMAND [options]", ""]
        for name, (_, usage, doc) in NETWORK.items():
            lines.append(f"  {name:10} {usage:30} {doc}")
        sys.stdout.write("\n".join(lines) + "\n")
        return 0 if args else 1
    sub = ALIASES.get(args[0], args[0])
    if sub not in NETWORK:
        raise UsageError(f"unknown command network {args[0]!r} (see `sangja network --help`)")
    flags, usage, doc = NETWORK[sub]
    opts, pos = parse(args[1:], dict(flags, **{"--help": ("help", _B)}))
    if opts.get("help"):
        by_key: dict[str, list[str]] = {}
        for name, (key, _) in flags.items():
            by_key.setdefault(key, []).append(name)
        text = "".join(f"  {', '.join(sorted(n, key=len))}\n" for n in by_key.values())
        sys.stdout.write(f"usage: sangja network {sub} {usage}\n{doc}\n{text}")
        return 0
    from sangja.errors import SangjaError

    try:
        return HANDLERS[sub](opts, pos, g)
    except SangjaError as e:  # the daemon's errors: docker's CLI exits 1 for them
        sys.stderr.write(f"sangja: {e}\n")
        return 1


def _need(pos, cmd, lo, hi=None):
    if len(pos) < lo:
        raise UsageError(f'"sangja network {cmd}" requires at least {lo} argument'
                         f"{'s' if lo > 1 else ''}")  # fmt: skip
    if hi is not None and len(pos) > hi:
        raise UsageError(f'"sangja network {cmd}" requires at most {hi} argument'
                         f"{'s' if hi > 1 else ''}")  # fmt: skip


def _networks():
    from sangja.engine.networks import Networks
    from sangja.image.store import Store

    return Networks(Store())


def _kv(items, what) -> dict:
    out = {}
    for it in items or ():
        k, eq, v = it.partition("=")
        if not k or not eq:
            raise UsageError(f"invalid {what} {it!r}: want KEY=VALUE")
        out[k] = v
    return out


def _table(rows) -> None:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [str(c).ljust(w + 3) for c, w in zip(r[:-1], widths, strict=False)]
        out.append(("".join(cells) + str(r[-1])).rstrip())
    sys.stdout.write("".join(line + "\n" for line in out))


def _template(fmt: str, items: list) -> None:
    """--format: `json` (one object per line), else a Go template (the CLI's own)."""
    if fmt == "json":
        import json

        sys.stdout.write("".join(json.dumps(i, separators=(",", ":")) + "\n" for i in items))
        return
    try:
        from sangja.cli.gotemplate import Template, TemplateError
    except ImportError:
        raise UsageError(f"--format {fmt!r}: only json is understood by this build")
    try:
        t = Template(fmt)
        out = [t.render(i) for i in items]
    except TemplateError as e:
        raise UsageError(str(e))
    sys.stdout.write("".join(o + "\n" for o in out))


def _ls_item(n, trunc: bool) -> dict:
    from sangja.engine.networks import _rfc3339

    created = _rfc3339(n.created)
    return {
        "CreatedAt": created[:10] + " " + created[11:-1] + " +0000 UTC",
        "Driver": n.driver, "ID": n.id[:12] if trunc else n.id,
        "IPv4": "true" if n.subnet_of(4) else "false", "IPv6": str(n.ipv6).lower(),
        "Internal": str(n.internal).lower(),
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(n.labels.items())),
        "Name": n.name, "Scope": "local",
    }  # fmt: skip


def network_ls(opts, pos, g):
    from sangja.engine.networks import LS_FILTERS, parse_filters

    _need(pos, "ls", 0, 0)
    nets = _networks()
    found = nets.list(parse_filters(opts.get("filter"), LS_FILTERS))
    trunc = not opts.get("no_trunc")
    if opts.get("quiet"):
        sys.stdout.write("".join((n.id[:12] if trunc else n.id) + "\n" for n in found))
        return 0
    if opts.get("format") and opts["format"] != "table":
        _template(opts["format"], [_ls_item(n, trunc) for n in found])
        return 0
    rows = [["NETWORK ID", "NAME", "DRIVER", "SCOPE"]]
    rows += [[n.id[:12] if trunc else n.id, n.name, n.driver, "local"] for n in found]
    _table(rows)
    return 0


def network_inspect(opts, pos, g):
    from sangja.engine.neterrors import NetworkNotFound
    from sangja.jsonio import dumps_indent

    _need(pos, "inspect", 1)
    nets = _networks()
    out, missing = [], []
    for ref in pos:
        try:
            out.append(nets.inspect(nets.get(ref)))
        except NetworkNotFound as e:
            missing.append(str(e))
    if opts.get("format"):
        _template(opts["format"], out)
    else:
        sys.stdout.write(dumps_indent(out, indent="    ") + "\n")  # docker: 4 spaces
    for m in missing:
        sys.stderr.write(f"sangja: {m}\n")
    return 1 if missing else 0


def network_create(opts, pos, g):
    from sangja.engine import ipam

    _need(pos, "create", 1, 1)
    subnets = ipam.subnet_config(opts.get("subnet") or [], opts.get("gateway") or [],
                                 opts.get("ip_range") or [],
                                 _kv(opts.get("aux_address"), "--aux-address"))  # fmt: skip
    labels = {}
    for it in opts.get("label") or ():
        k, _, v = it.partition("=")
        labels[k] = v
    net = _networks().create(
        pos[0], driver=opts.get("driver") or "bridge", subnets=subnets,
        ipv6=opts.get("ipv6", False), internal=opts.get("internal", False),
        attachable=opts.get("attachable", False), labels=labels,
        options=_kv(opts.get("opt"), "--opt"), ipam_driver=opts.get("ipam_driver") or "default",
        ipam_options=_kv(opts.get("ipam_opt"), "--ipam-opt"), ingress=opts.get("ingress", False),
        scope=opts.get("scope") or "", config_only=opts.get("config_only", False),
        config_from=opts.get("config_from") or "",
    )  # fmt: skip
    sys.stdout.write(net.id + "\n")
    return 0


def network_rm(opts, pos, g):
    from sangja.engine.neterrors import NetworkError, NetworkNotFound

    _need(pos, "rm", 1)
    nets = _networks()
    failed = False
    for ref in pos:
        try:
            nets.remove(ref)
            sys.stdout.write(ref + "\n")
        except NetworkNotFound as e:
            if not opts.get("force"):
                sys.stderr.write(f"sangja: {e}\n")
                failed = True
        except NetworkError as e:
            sys.stderr.write(f"sangja: {e}\n")
            failed = True
    return 1 if failed else 0


def network_prune(opts, pos, g):
    from sangja.engine.networks import PRUNE_FILTERS, parse_filters

    _need(pos, "prune", 0, 0)
    filters = parse_filters(opts.get("filter"), PRUNE_FILTERS)
    if not opts.get("force"):
        sys.stdout.write("WARNING! This will remove all custom networks not used by at least one"
                         " container.\nAre you sure you want to continue? [y/N] ")  # fmt: skip
        sys.stdout.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            return 0
    gone = _networks().prune(filters)
    if gone:
        sys.stdout.write("Deleted Networks:\n" + "".join(n + "\n" for n in gone))
    return 0


def network_connect(opts, pos, g):
    raise UsageError("network connect: needs the container engine (not in this build yet)")


def network_disconnect(opts, pos, g):
    raise UsageError("network disconnect: needs the container engine (not in this build yet)")


HANDLERS = {
    "ls": network_ls,
    "inspect": network_inspect,
    "create": network_create,
    "connect": network_connect,
    "disconnect": network_disconnect,
    "rm": network_rm,
    "prune": network_prune,
}
