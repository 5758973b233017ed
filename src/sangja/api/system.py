"""/_ping, /version, /info, /system/df, /auth, /events."""

from __future__ import annotations

from aiohttp import web

from sangja.api.request import BadParameter, json_body, q_filters, q_time


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
