"""/_ping, /version, /info, /system/df, /auth, /events."""

from __future__ import annotations

from aiohttp import web

from sangja.api.server import BadParameter


def setup(routes) -> None:
    routes.add("GET", "/_ping", ping)
    routes.add("HEAD", "/_ping", ping)
    routes.add("GET", "/version", version)
    routes.add("GET", "/info", info)
    routes.add("GET", "/system/df", df)
    routes.add("POST", "/auth", auth)
    routes.add("GET", "/events", events)


async def ping(request):
    # Builder-Version 1: the classic builder's /build (the docker CLI then sends a tar)
    return web.Response(text="OK" if request.method == "GET" else None,
                        headers={"Builder-Version": "1", "Cache-Control": "no-cache, no-store,"
                                 " must-revalidate", "Pragma": "no-cache"})  # fmt: skip


async def version(request):
    from sangja.engine import sysinfo

    return web.json_response(sysinfo.version())


async def info(request):
    eng = request.app["engine"]

    def work():
        from sangja.engine import sysinfo

        cs = eng.cs()
        return sysinfo.info(cs.store, containers=cs.counts())

    return web.json_response(await eng.run(work))


async def df(request):
    eng = request.app["engine"]

    def work():
        from sangja.engine import diskusage

        cs = eng.cs()
        df = diskusage.disk_usage(cs.store, cs.mounts.volumes, diskusage.containers(cs))
        return {k: v for k, v in df.items() if not k.startswith("_")}

    return web.json_response(await eng.run(work))


async def auth(request):
    """A login check (dockerd keeps no credentials either: the client stores them)."""
    eng = request.app["engine"]
    body = await json_body(request)
    server = body.get("serveraddress") or ""
    user, password = body.get("username") or "", body.get("password") or ""

    def work():
        from sangja.engine.images import Images

        Images.check_login(server, user, password)

    await eng.run(work)
    return web.json_response({"Status": "Login Succeeded", "IdentityToken": ""})


async def events(request):
    """The engine's event log (engine/events.py) as dockerd streams it: one JSON object a
    line, the logged ones from `since`, then each new one until `until` (without it, until
    the client closes)."""
    import asyncio
    import contextlib

    from sangja.api.streams import Gone, ThreadWriter, client_gone
    from sangja.engine import events as ev
    from sangja.jsonio import dumps

    eng = request.app["engine"]
    since, until = q_time(request, "since"), q_time(request, "until")
    try:
        filters = ev.parse_filters(q_filters(request))
    except ValueError as e:
        raise BadParameter(str(e))
    root = await eng.run(lambda: eng.cs().store.root)
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)  # at once, as dockerd: the client waits for the headers
    out = ThreadWriter(asyncio.get_running_loop())

    def job():
        try:
            for e in ev.follow(root, since, until, filters,
                               cancelled=lambda: out.gone or client_gone(request)):  # fmt: skip
                out.write((dumps(e) + "\n").encode())
        except Gone:
            pass
        finally:
            out.close()

    task = eng.run(job)
    await out.pump(resp.write)
    await task
    with contextlib.suppress(ConnectionError, RuntimeError):
        await resp.write_eof()
    return resp


# ---- request helpers (query and body), shared by the other modules --------------------------


async def json_body(request, required: bool = False) -> dict:
    """The request's JSON object body ({} when there is none)."""
    if not request.can_read_body:
        if required:
            raise BadParameter("a JSON body is required")
        return {}
    import json

    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as e:
        raise BadParameter(f"invalid JSON body: {e}")
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise BadParameter("the JSON body must be an object")
    return body


def q_bool(request, name: str, default: bool = False) -> bool:
    v = request.query.get(name)
    if v is None:
        return default
    v = v.strip().lower()
    return v not in ("", "0", "false", "no")


def q_int(request, name: str, default: int | None = None) -> int | None:
    v = request.query.get(name)
    if v is None or v == "":
        return default
    try:
        return int(v)
    except ValueError:
        try:
            return int(float(v))
        except ValueError:
            raise BadParameter(f"invalid value for {name}: {v!r}")


def q_filters(request):
    """The `filters` parameter: Docker's JSON ({"k": ["v"]} or the old {"k": {"v": true}})."""
    raw = request.query.get("filters")
    if not raw:
        return {}
    import json

    try:
        f = json.loads(raw)
    except ValueError as e:
        raise BadParameter(f"invalid filters: {e}")
    if not isinstance(f, dict):
        raise BadParameter("invalid filters: want a JSON object")
    out = {}
    for k, v in f.items():
        if isinstance(v, dict):
            out[k] = [x for x, on in v.items() if on]
        elif isinstance(v, list):
            out[k] = [str(x) for x in v]
        else:
            out[k] = [str(v)]
    return out


def q_time(request, name: str) -> float | None:
    """A time parameter (since, until): Unix seconds (what the docker CLI sends), or
    anything engine/units.py reads (RFC 3339, a duration ago)."""
    v = request.query.get(name)
    if not v or v == "0":
        return None
    try:
        return float(v)
    except ValueError:
        from sangja.engine.units import parse_timestamp

        try:
            return parse_timestamp(v)
        except ValueError as e:
            raise BadParameter(str(e))


def registry_auth(request):
    """X-Registry-Auth: base64url JSON {username, password, serveraddress} -> (user,
    password), or None (anonymous / the stored credentials)."""
    raw = request.headers.get("X-Registry-Auth")
    if not raw:
        return None
    import base64
    import json

    try:
        pad = "=" * (-len(raw) % 4)
        doc = json.loads(base64.urlsafe_b64decode(raw + pad))
    except (ValueError, TypeError):
        return None  # dockerd ignores a header it cannot read too
    if not isinstance(doc, dict):
        return None
    user, pw = doc.get("username"), doc.get("password")
    if doc.get("identitytoken"):
        return None
    return (user, pw) if user and pw else None
