"""Exec instances: /containers/{id}/exec, /exec/{id}/start|resize|json (engine/execs.py)."""

from __future__ import annotations

from aiohttp import web

from sangja.api.request import json_body, q_int
from sangja.api.streams import STDOUT, Done, frame, hijack, relay


def setup(routes) -> None:
    routes.add("POST", "/containers/{id}/exec", create)
    routes.add("POST", "/exec/{id}/start", start)
    routes.add("POST", "/exec/{id}/resize", resize)
    routes.add("GET", "/exec/{id}/json", inspect)


async def create(request):
    eng = request.app["engine"]
    body = await json_body(request, required=True)
    exec_id = await eng.run(lambda: eng.cs().execs.create(request.match_info["id"], body))
    return web.json_response({"Id": exec_id}, status=201)


async def inspect(request):
    eng = request.app["engine"]
    return web.json_response(
        await eng.run(lambda: eng.cs().execs.inspect(request.match_info["id"])))  # fmt: skip


async def resize(request):
    eng = request.app["engine"]
    h, w = q_int(request, "h", 0), q_int(request, "w", 0)
    await eng.run(lambda: eng.cs().execs.resize(request.match_info["id"], h, w))
    return web.Response(status=201)


async def start(request):
    """Detached: started, 200.  Else hijacked: the process runs once its monitor's attach
    socket is connected; the connection ends when it has exited (and its exit code is
    recorded: clients inspect it next).  A process that cannot start is reported on the
    stream, as dockerd does, and its exit code is 126 or 127."""
    from sangja.engine.attach import parse_detach_keys
    from sangja.engine.errors import EngineError

    eng = request.app["engine"]
    exec_id = request.match_info["id"]
    body = await json_body(request)

    def check():
        ex = eng.cs().execs
        rec, _files, conf = ex.find(exec_id)
        eng.cs().get(rec.id)
        return conf["Config"]

    conf = await eng.run(check)
    if body.get("Detach"):
        await eng.run(lambda: eng.cs().execs.start_detached(exec_id))
        return web.Response(status=200)
    tty = bool(conf.get("Tty"))
    keys = parse_detach_keys(conf.get("DetachKeys") or None)
    h = await hijack(request)
    session = None
    try:
        try:
            session = await eng.run(lambda: eng.cs().execs.start_attached(exec_id))
        except EngineError as e:
            text = (str(e) + "\r\n").encode()
            await h.write(text if tty else frame(STDOUT, text))
            return Done()
        how = await relay(h, session.sock, tty=tty, stdin=bool(conf.get("AttachStdin")),
                          stdout=bool(conf.get("AttachStdout", True)),
                          stderr=bool(conf.get("AttachStderr", True)), keys=keys)  # fmt: skip
        if how == "ended":
            await eng.run(session.wait, 30)  # the exit code is there before the client asks
        return Done()
    except ConnectionError:
        return Done()
    finally:
        if session is not None:
            session.close()
        h.close()
