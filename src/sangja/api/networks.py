"""/networks/...: the engine's networks (engine/networks.py) and a container's endpoints
(Containers.network_connect/disconnect), the calls `sangja network` makes."""

from __future__ import annotations

from aiohttp import web

from sangja.api.request import BadParameter, json_body, q_filters


def setup(routes) -> None:
    add = routes.add
    add("GET", "/networks", list_)
    add("POST", "/networks/create", create)
    add("POST", "/networks/prune", prune)
    add("GET", "/networks/{id}", inspect)
    add("DELETE", "/networks/{id}", remove)
    add("POST", "/networks/{id}/connect", connect)
    add("POST", "/networks/{id}/disconnect", disconnect)


def _eng(request):
    return request.app["engine"]


def _nets(eng):
    """The thread's Networks (through its Containers' endpoints: one SQLite connection)."""
    from sangja.engine import containernet

    return containernet.endpoints(eng.cs()).nets


def _filters(request, allowed) -> dict:
    from sangja.engine.neterrors import NetworkInvalid

    f = q_filters(request)
    for k in f:
        if k not in allowed:
            raise NetworkInvalid(f"invalid filter '{k}'")
    return f


async def list_(request):
    from sangja.engine.networks import LS_FILTERS

    eng = _eng(request)
    filters = _filters(request, LS_FILTERS)

    def work():
        nets = _nets(eng)
        return [nets.inspect(n) for n in nets.list(filters)]

    return web.json_response(await eng.run(work))


async def inspect(request):
    eng = _eng(request)
    ref = request.match_info["id"]

    def work():
        nets = _nets(eng)
        return nets.inspect(nets.get(ref))

    return web.json_response(await eng.run(work))


def _str_map(v, what: str) -> dict:
    if v is None:
        return {}
    if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
        raise BadParameter(f"{what} must be an object of strings")
    return dict(v)


async def create(request):
    """NetworkCreate: its body's fields are create's keywords (CheckDuplicate is what
    the engine always does)."""
    eng = _eng(request)
    body = await json_body(request, required=True)
    ipam = body.get("IPAM") or {}
    if not isinstance(ipam, dict):
        raise BadParameter("IPAM must be an object")
    config = ipam.get("Config") or []
    if not isinstance(config, list) or not all(isinstance(e, dict) and e.get("Subnet")
                                               for e in config):  # fmt: skip
        raise BadParameter("IPAM.Config must be a list of {Subnet, IPRange, Gateway,"
                           " AuxiliaryAddresses}")  # fmt: skip
    config_from = body.get("ConfigFrom") or {}
    kw = dict(
        driver=body.get("Driver") or "bridge", subnets=config,
        ipv6=bool(body.get("EnableIPv6")), internal=bool(body.get("Internal")),
        attachable=bool(body.get("Attachable")), labels=_str_map(body.get("Labels"), "Labels"),
        options=_str_map(body.get("Options"), "Options"),
        ipam_driver=ipam.get("Driver") or "default",
        ipam_options=_str_map(ipam.get("Options"), "IPAM.Options"),
        ingress=bool(body.get("Ingress")), scope=body.get("Scope") or "",
        config_only=bool(body.get("ConfigOnly")),
        config_from=(config_from.get("Network") or "") if isinstance(config_from, dict) else "",
    )  # fmt: skip
    name = body.get("Name") or ""
    net = await eng.run(lambda: _nets(eng).create(name, **kw))
    return web.json_response({"Id": net.id, "Warning": ""}, status=201)


async def remove(request):
    eng = _eng(request)
    ref = request.match_info["id"]

    def work():
        from sangja.engine import containernet

        e = containernet.endpoints(eng.cs())
        e.sweep()  # what a killed `container rm` left must not keep a network in use
        e.nets.remove(ref)

    await eng.run(work)
    return web.Response(status=204)


async def prune(request):
    from sangja.engine.networks import PRUNE_FILTERS

    eng = _eng(request)
    filters = _filters(request, PRUNE_FILTERS)

    def work():
        from sangja.engine import containernet

        e = containernet.endpoints(eng.cs())
        e.sweep()
        return e.nets.prune(filters)

    gone = await eng.run(work)
    return web.json_response({"NetworksDeleted": gone or None})


async def connect(request):
    eng = _eng(request)
    net = request.match_info["id"]
    body = await json_body(request, required=True)
    container = body.get("Container")
    if not container or not isinstance(container, str):
        raise BadParameter("a container is required (Container)")
    ep = body.get("EndpointConfig") or {}
    if not isinstance(ep, dict):
        raise BadParameter("EndpointConfig must be an object")
    if ep.get("Links"):
        raise BadParameter("links are not supported (containers on a user network find each"
                           " other by name)")  # fmt: skip
    await eng.run(lambda: eng.cs().network_connect(net, container, ep or None))
    return web.Response(status=200)


async def disconnect(request):
    eng = _eng(request)
    net = request.match_info["id"]
    body = await json_body(request, required=True)
    container = body.get("Container")
    if not container or not isinstance(container, str):
        raise BadParameter("a container is required (Container)")
    # Force: dockerd's is for a cluster's stale endpoint; ours are always removable
    await eng.run(lambda: eng.cs().network_disconnect(net, container))
    return web.Response(status=200)
