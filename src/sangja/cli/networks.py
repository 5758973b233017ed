"""`sangja network ls|inspect|create|connect|disconnect|rm|prune`: Docker's flags in, Docker's
output out.  What a network is and what removing one means is the engine's
(engine/networks.py, engine/endpoints.py)."""

from __future__ import annotations

import sys

from sangja.cli.groups import Sub, dispatch, need
from sangja.cli.groups import containers as _cs
from sangja.cli.parse import B, M, UsageError, V, flags


def main(word: str, args: list[str], g: dict) -> int:
    return dispatch("network", NETWORK, ALIASES, args, g)


def _networks(g=None, sweep: bool = False):
    from sangja.engine.endpoints import Endpoints
    from sangja.image.store import Store

    e = Endpoints(Store(), (g or {}).get("root") or "/run/sangja")
    if sweep:
        e.sweep()  # what a killed `container rm` left must not keep a network in use
    return e.nets


def _kv(items, what) -> dict:
    out = {}
    for it in items or ():
        k, eq, v = it.partition("=")
        if not k or not eq:
            raise UsageError(f"invalid {what} {it!r}: want KEY=VALUE")
        out[k] = v
    return out


_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
            "IPv4": "IPV4", "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS",
            "CreatedAt": "CREATED AT"}  # fmt: skip


def _format(fmt: str, items: list[dict]) -> None:
    """--format: `json`, a Go template per item, or `table TEMPLATE` (with a header)."""
    from sangja.cli.gotemplate import Template, TemplateError, tabulate
    from sangja.cli.output import print_template

    if not fmt.startswith("table"):
        print_template(fmt, items)
        return
    body = fmt[5:].strip().replace("\\t", "\t") or "{{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
    try:
        t = Template(body)
        lines = [t.render(_HEADERS)] + [t.render(i) for i in items]
    except TemplateError as e:
        raise UsageError(str(e))
    sys.stdout.write(tabulate([ln.split("\t") for ln in lines]))


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

    need(pos, "network ls", 0, 0)
    nets = _networks()
    found = nets.list(parse_filters(opts.get("filter"), LS_FILTERS))
    trunc = not opts.get("no_trunc")
    if opts.get("quiet"):
        sys.stdout.write("".join((n.id[:12] if trunc else n.id) + "\n" for n in found))
        return 0
    _format(opts.get("format") or "table", [_ls_item(n, trunc) for n in found])
    return 0


def network_inspect(opts, pos, g):
    from sangja.engine.neterrors import NetworkNotFound
    from sangja.jsonio import dumps_indent

    need(pos, "network inspect", 1)
    nets = _networks()
    out, missing = [], []
    for ref in pos:
        try:
            out.append(nets.inspect(nets.get(ref)))
        except NetworkNotFound as e:
            missing.append(str(e))
    if opts.get("format"):
        from sangja.cli.output import print_template

        print_template(opts["format"], out)
    else:
        sys.stdout.write(dumps_indent(out, indent="    ") + "\n")  # docker: 4 spaces
    for m in missing:
        sys.stderr.write(f"sangja: {m}\n")
    return 1 if missing else 0


def network_create(opts, pos, g):
    from sangja.engine import ipam

    need(pos, "network create", 1, 1)
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

    need(pos, "network rm", 1)
    nets = _networks(g, sweep=True)
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

    need(pos, "network prune", 0, 0)
    filters = parse_filters(opts.get("filter"), PRUNE_FILTERS)
    if not opts.get("force"):
        sys.stdout.write("WARNING! This will remove all custom networks not used by at least one"
                         " container.\nAre you sure you want to continue? [y/N] ")  # fmt: skip
        sys.stdout.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            return 0
    gone = _networks(g, sweep=True).prune(filters)
    if gone:
        sys.stdout.write("Deleted Networks:\n" + "".join(n + "\n" for n in gone))
    return 0


def network_connect(opts, pos, g):
    need(pos, "network connect", 2, 2)
    if opts.get("link"):
        raise UsageError("--link: links are not supported (containers on a user network find"
                         " each other by name)")  # fmt: skip
    if opts.get("link_local_ip"):
        raise UsageError("--link-local-ip is not supported")
    ep = {}
    if opts.get("alias"):
        ep["Aliases"] = list(opts["alias"])
    ipam = {}
    if opts.get("ip"):
        ipam["IPv4Address"] = opts["ip"]
    if opts.get("ip6"):
        ipam["IPv6Address"] = opts["ip6"]
    if ipam:
        ep["IPAMConfig"] = ipam
    if opts.get("driver_opt"):
        ep["DriverOpts"] = _kv(opts["driver_opt"], "--driver-opt")
    _cs(g).network_connect(pos[0], pos[1], ep)
    return 0


def network_disconnect(opts, pos, g):
    need(pos, "network disconnect", 2, 2)
    _cs(g).network_disconnect(pos[0], pos[1])
    return 0


NETWORK = {
    "ls": Sub(flags(("-q", "--quiet", "quiet", B), ("--no-trunc", "no_trunc", B),
                    ("-f", "--filter", "filter", M), ("--format", "format", V)),
              "[OPTIONS]", "list networks", network_ls),
    "inspect": Sub(flags(("-f", "--format", "format", V), ("-v", "--verbose", "verbose", B)),
                   "[OPTIONS] NETWORK...", "networks' details as JSON", network_inspect),
    "create": Sub(flags(("-d", "--driver", "driver", V), ("--subnet", "subnet", M),
                        ("--gateway", "gateway", M), ("--ip-range", "ip_range", M),
                        ("--aux-address", "aux_address", M), ("--internal", "internal", B),
                        ("--ipv6", "ipv6", B), ("--label", "label", M),
                        ("-o", "--opt", "opt", M), ("--attachable", "attachable", B),
                        ("--ingress", "ingress", B), ("--scope", "scope", V),
                        ("--ipam-driver", "ipam_driver", V), ("--ipam-opt", "ipam_opt", M),
                        ("--config-only", "config_only", B),
                        ("--config-from", "config_from", V)),
                  "[OPTIONS] NETWORK", "create a network (bridge)", network_create),
    "connect": Sub(flags(("--alias", "alias", M), ("--ip", "ip", V), ("--ip6", "ip6", V),
                         ("--link", "link", M), ("--link-local-ip", "link_local_ip", M),
                         ("--driver-opt", "driver_opt", M)),
                   "[OPTIONS] NETWORK CONTAINER", "connect a container to a network",
                   network_connect),
    "disconnect": Sub(flags(("-f", "--force", "force", B)), "[OPTIONS] NETWORK CONTAINER",
                      "disconnect a container from a network", network_disconnect),
    "rm": Sub(flags(("-f", "--force", "force", B)), "NETWORK...", "remove networks",
              network_rm),
    "prune": Sub(flags(("-f", "--force", "force", B), ("--filter", "filter", M)), "[OPTIONS]",
                 "remove the user networks no container is on", network_prune),
}  # fmt: skip
ALIASES = {"list": "ls", "remove": "rm"}
