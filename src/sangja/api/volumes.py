"""/volumes/...: the engine's volumes (engine/volumes.py), the calls `sangja volume` makes."""

from __future__ import annotations

from aiohttp import web

from sangja.api.request import BadParameter, json_body, q_bool, q_filters


def setup(routes) -> None:
    add = routes.add
    add("GET", "/volumes", list_)
    add("POST", "/volumes/create", create)
    add("POST", "/volumes/prune", prune)
    add("GET", "/volumes/{name}", inspect)
    add("DELETE", "/volumes/{name}", remove)


def _eng(request):
    return request.app["engine"]


def _vols(eng):
    """The thread's Volumes (on its Containers' store: one SQLite connection)."""
    return eng.cs().mounts.volumes


async def list_(request):
    eng = _eng(request)
    filters = q_filters(request)
    vols = await eng.run(lambda: _vols(eng).list(filters))
    return web.json_response({"Volumes": vols, "Warnings": None})


async def inspect(request):
    eng = _eng(request)
    name = request.match_info["name"]
    return web.json_response(await eng.run(lambda: _vols(eng).inspect(name)))


def _str_map(v, what: str) -> dict:
    if v is None:
        return {}
    if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
        raise BadParameter(f"{what} must be an object of strings")
    return dict(v)


async def create(request):
    eng = _eng(request)
    body = await json_body(request)
    name = body.get("Name") or None
    if name is not None and not isinstance(name, str):
        raise BadParameter("Name must be a string")
    driver = body.get("Driver") or ""
    labels = _str_map(body.get("Labels"), "Labels")
    opts = _str_map(body.get("DriverOpts"), "DriverOpts")
    out = await eng.run(lambda: _vols(eng).create(name, driver, labels, opts))
    return web.json_response(out, status=201)


async def remove(request):
    eng = _eng(request)
    name = request.match_info["name"]
    force = q_bool(request, "force")
    await eng.run(lambda: _vols(eng).remove(name, force=force))
    return web.Response(status=204)


async def prune(request):
    eng = _eng(request)
    filters = q_filters(request)
    # API 1.41 (dockerd 20.10): every unused local volume, not only the anonymous ones
    # (dockerd 23 does the same for a client below 1.42)
    filters.setdefault("all", ["true"])
    gone, freed = await eng.run(lambda: _vols(eng).prune(filters))
    return web.json_response({"VolumesDeleted": gone or None, "SpaceReclaimed": freed})
