"""/containers/...: each handler is the engine call the CLI makes (engine/containers.py),
its arguments from the query and body, its result as Docker's JSON or stream."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from sangja.api.request import BadParameter, json_body, q_bool, q_filters, q_int, q_time
from sangja.api.streams import (
    RAW_STREAM,
    Done,
    Gone,
    ThreadReader,
    ThreadWriter,
    client_gone,
    finish,
    frame,
    hijack,
    relay,
)


def setup(routes) -> None:
    add = routes.add
    add("POST", "/containers/create", create)
    add("GET", "/containers/json", list_)
    add("POST", "/containers/prune", prune)
    add("GET", "/containers/{id}/json", inspect)
    add("POST", "/containers/{id}/start", start)
    add("POST", "/containers/{id}/stop", stop)
    add("POST", "/containers/{id}/restart", restart)
    add("POST", "/containers/{id}/kill", kill)
    add("POST", "/containers/{id}/pause", pause)
    add("POST", "/containers/{id}/unpause", unpause)
    add("POST", "/containers/{id}/wait", wait)
    add("DELETE", "/containers/{id}", remove)
    add("GET", "/containers/{id}/logs", logs)
    add("POST", "/containers/{id}/attach", attach)
    add("POST", "/containers/{id}/resize", resize)
    add("GET", "/containers/{id}/top", top)
    add("GET", "/containers/{id}/stats", stats)
    add("GET", "/containers/{id}/changes", changes)
    add("HEAD", "/containers/{id}/archive", archive_head)
    add("GET", "/containers/{id}/archive", archive_get)
    add("PUT", "/containers/{id}/archive", archive_put)
    add("POST", "/containers/{id}/rename", rename)
    add("POST", "/containers/{id}/update", update)
    add("GET", "/containers/{id}/export", export)
    add("POST", "/commit", commit)


def _eng(request):
    return request.app["engine"]


def _id(request) -> str:
    return request.match_info["id"]


def _no_content(status: int = 204) -> web.Response:
    return web.Response(status=status)


# ---- lifecycle ---------------------------------------------------------------------------------


async def create(request):
    eng = _eng(request)
    body = await json_body(request, required=True)
    name = request.query.get("name") or None
    platform = request.query.get("platform") or None
    # as dockerd: no pull here (a missing image is 404; the client pulls and asks again)
    cid, warnings = await eng.run(
        lambda: eng.cs().create(body, name, pull="never", platform=platform))  # fmt: skip
    return web.json_response({"Id": cid, "Warnings": warnings}, status=201)


async def list_(request):
    eng = _eng(request)
    all_ = q_bool(request, "all")
    limit = q_int(request, "limit", -1)
    size = q_bool(request, "size")
    filters = q_filters(request)
    out = await eng.run(lambda: eng.cs().summaries(all=all_, filters=filters, limit=limit,
                                                  size=size))  # fmt: skip
    return web.json_response(out)


async def inspect(request):
    eng = _eng(request)
    size = q_bool(request, "size")
    ref = _id(request)
    return web.json_response(
        await eng.run(lambda: eng.cs().inspect(ref, size=size, docker_names=True)))  # fmt: skip


async def start(request):
    eng = _eng(request)
    ref = _id(request)

    def work():
        cs = eng.cs()
        if cs.get(ref).state == "running":
            return False
        cs.start(ref)
        return True

    return _no_content(204 if await eng.run(work) else 304)


async def stop(request):
    eng = _eng(request)
    t = q_int(request, "t")
    stopped = await eng.run(lambda: eng.cs().stop(_id(request), t))
    return _no_content(204 if stopped else 304)


async def restart(request):
    eng = _eng(request)
    t = q_int(request, "t")
    await eng.run(lambda: eng.cs().restart(_id(request), t))
    return _no_content()


async def kill(request):
    eng = _eng(request)
    sig = request.query.get("signal") or "KILL"
    await eng.run(lambda: eng.cs().kill(_id(request), sig))
    return _no_content()


async def pause(request):
    eng = _eng(request)
    await eng.run(lambda: eng.cs().pause(_id(request)))
    return _no_content()


async def unpause(request):
    eng = _eng(request)
    await eng.run(lambda: eng.cs().unpause(_id(request)))
    return _no_content()


async def wait(request):
    """The answer's headers go out once the wait is in place (the docker CLI starts the
    container only then), its body when the container has exited (or is gone)."""
    eng = _eng(request)
    condition = request.query.get("condition") or "not-running"
    loop = asyncio.get_running_loop()
    armed = asyncio.Event()

    def ready():
        loop.call_soon_threadsafe(armed.set)

    task = eng.run(lambda: eng.cs().wait(_id(request), condition, ready=ready,
                                         cancelled=lambda: client_gone(request)))  # fmt: skip
    waiter = asyncio.ensure_future(armed.wait())
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if task.done():  # an error before anything was awaited (404, 400), or already over
        code = task.result()
        return web.json_response({"StatusCode": code, "Error": None})
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    from sangja.errors import SangjaError
    from sangja.jsonio import dumps

    try:
        out = {"StatusCode": await task, "Error": None}
    except SangjaError as e:
        out = {"StatusCode": 0, "Error": {"Message": str(e)}}
    with contextlib.suppress(ConnectionError, RuntimeError):
        await resp.write((dumps(out) + "\n").encode())
        await resp.write_eof()
    return resp


async def remove(request):
    eng = _eng(request)
    if q_bool(request, "link"):
        raise BadParameter("links are not supported")
    force, volumes = q_bool(request, "force"), q_bool(request, "v")
    await eng.run(lambda: eng.cs().remove(_id(request), force=force, volumes=volumes))
    return _no_content()


async def rename(request):
    eng = _eng(request)
    name = request.query.get("name")
    if not name:
        raise BadParameter("a new name is required (?name=)")
    await eng.run(lambda: eng.cs().rename(_id(request), name))
    return _no_content()


async def update(request):
    eng = _eng(request)
    body = await json_body(request)
    # the ContainerUpdate body: resources and RestartPolicy; zero values change nothing
    changes = {k: v for k, v in body.items() if v not in (None, 0, "", [], {})}
    warnings = await eng.run(lambda: eng.cs().update(_id(request), changes))
    return web.json_response({"Warnings": warnings or []})


async def prune(request):
    eng = _eng(request)
    filters = q_filters(request)
    return web.json_response(await eng.run(lambda: eng.cs().prune(filters)))


# ---- output, input ------------------------------------------------------------------------------


async def logs(request):
    eng = _eng(request)
    want_out, want_err = q_bool(request, "stdout"), q_bool(request, "stderr")
    if not (want_out or want_err):
        raise BadParameter("Bad parameters: you must choose at least one stream")
    follow = q_bool(request, "follow")
    stamps = q_bool(request, "timestamps")
    since = q_time(request, "since")
    until = q_time(request, "until")
    tail = request.query.get("tail")
    tail = None if tail in (None, "", "all") else _int_param(tail, "tail")
    if tail is not None and tail < 0:
        tail = None
    ref = _id(request)
    rec = await eng.run(lambda: eng.cs().get(ref))
    tty = bool(rec.config.get("Tty"))
    loop = asyncio.get_running_loop()
    out = ThreadWriter(loop)

    def job():
        try:
            for stream, data in eng.cs().logs(ref, stdout=want_out, stderr=want_err,
                                              timestamps=stamps, since=since, until=until,
                                              tail=tail, follow=follow,
                                              cancelled=lambda: out.gone or client_gone(
                                                  request)):  # fmt: skip
                out.write(data if tty else frame(stream, data))
        except Gone:
            pass
        finally:
            out.close()

    # an error before any output (no log driver, ...) is an ordinary error response
    task = eng.run(job)
    resp = web.StreamResponse(headers={"Content-Type": RAW_STREAM})
    resp.enable_chunked_encoding()
    first = await out.queue.get()
    if first is None:
        await task  # raises the engine's error, if that is why nothing came
    await resp.prepare(request)
    await finish(resp, out, first, task)
    return resp


def _int_param(v: str, name: str) -> int:
    try:
        return int(v)
    except ValueError:
        raise BadParameter(f"invalid value for {name}: {v!r}")


async def attach(request):
    """Hijacked: the container's stdio, now or from its next start on (the docker CLI
    attaches before it starts a container)."""
    from sangja.engine.attach import parse_detach_keys

    eng = _eng(request)
    ref = _id(request)
    want_in, want_out, want_err = (q_bool(request, "stdin"), q_bool(request, "stdout"),
                                   q_bool(request, "stderr"))  # fmt: skip
    stream, with_logs = q_bool(request, "stream"), q_bool(request, "logs")
    keys = parse_detach_keys(request.query.get("detachKeys"))
    loop = asyncio.get_running_loop()
    got = loop.create_future()

    def connected(sock_or_error):
        def put():
            if got.done():
                if not isinstance(sock_or_error, Exception):
                    sock_or_error.close()
            else:
                got.set_result(sock_or_error)

        loop.call_soon_threadsafe(put)

    if stream:
        rec, token = await eng.run(lambda: eng.cs().attach_at_start(ref, connected))
    else:
        rec, token = await eng.run(lambda: eng.cs().get(ref)), None
    cfg = rec.config
    tty = bool(cfg.get("Tty"))
    h = await hijack(request)
    sock = None
    try:
        if with_logs:
            await _send_logs(eng, h, ref, tty, want_out, want_err)
        if not stream:
            return Done()
        gone = asyncio.ensure_future(h.gone.wait())
        await asyncio.wait([got, gone], return_when=asyncio.FIRST_COMPLETED)
        gone.cancel()
        if not got.done():
            eng.watch.cancel(token)
            return Done()
        sock = got.result()
        if isinstance(sock, Exception):
            sock = None
            return Done()
        await relay(h, sock, tty=tty, stdin=want_in and bool(cfg.get("OpenStdin")),
                    stdout=want_out, stderr=want_err, keys=keys)  # fmt: skip
        return Done()
    finally:
        if not got.done():
            eng.watch.cancel(token)
            got.cancel()
        if sock is not None:
            sock.close()
        h.close()


async def _send_logs(eng, h, ref, tty, want_out, want_err) -> None:
    loop = asyncio.get_running_loop()
    out = ThreadWriter(loop)

    def job():
        try:
            for stream, data in eng.cs().logs(ref, stdout=want_out, stderr=want_err):
                out.write(data if tty else frame(stream, data))
        except Gone:
            pass
        finally:
            out.close()

    task = eng.run(job)
    await out.pump(h.write)
    with contextlib.suppress(Exception):
        await task


async def resize(request):
    eng = _eng(request)
    h, w = q_int(request, "h", 0), q_int(request, "w", 0)
    await eng.run(lambda: eng.cs().resize(_id(request), h, w))
    return web.Response(status=200)


# ---- looking at it -------------------------------------------------------------------------------


async def top(request):
    eng = _eng(request)
    ps_args = request.query.get("ps_args") or "-ef"
    return web.json_response(await eng.run(lambda: eng.cs().top(_id(request), ps_args)))


async def changes(request):
    eng = _eng(request)
    return web.json_response(await eng.run(lambda: eng.cs().changes(_id(request))) or None)


async def stats(request):
    """One sample (stream=false: with CPU use over half a second; one-shot: alone), or one
    a second until the client goes or the container stops."""
    from sangja.engine.errors import NotRunning
    from sangja.jsonio import dumps

    eng = _eng(request)
    ref = _id(request)
    stream = q_bool(request, "stream", True)
    one_shot = q_bool(request, "one-shot")

    def sample(prev=None):
        return eng.cs().stats(ref, prev)

    first = await eng.run(sample)
    if not stream:
        if not one_shot:
            await asyncio.sleep(0.5)
            first = await eng.run(sample, first)
        return web.json_response(first)
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    cur = first
    try:
        while True:
            await resp.write((dumps(cur) + "\n").encode())
            await asyncio.sleep(1.0)
            if client_gone(request):
                break
            try:
                cur = await eng.run(sample, cur)
            except NotRunning:
                break
        await resp.write_eof()
    except (ConnectionError, RuntimeError):
        pass
    return resp


# ---- files -----------------------------------------------------------------------------------


def _path(request) -> str:
    p = request.query.get("path")
    if not p:
        raise BadParameter("a path is required (?path=)")
    return p


def _stat_header(stat: dict) -> str:
    import base64
    import json

    return base64.b64encode(json.dumps(stat).encode()).decode()


async def archive_head(request):
    eng = _eng(request)
    path = _path(request)
    stat = await eng.run(lambda: eng.cs().archive_stat(_id(request), path))
    return web.Response(status=200, headers={"X-Docker-Container-Path-Stat": _stat_header(stat)})


async def archive_get(request):
    eng = _eng(request)
    ref, path = _id(request), _path(request)
    stat = await eng.run(lambda: eng.cs().archive_stat(ref, path))
    loop = asyncio.get_running_loop()
    out = ThreadWriter(loop)

    def job():
        try:
            eng.cs().archive_get(ref, path, out)
        except Gone:
            pass
        finally:
            out.close()

    headers = {
        "Content-Type": "application/x-tar",
        "X-Docker-Container-Path-Stat": _stat_header(stat),
    }
    resp = web.StreamResponse(headers=headers)
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    task = eng.run(job)
    await out.pump(resp.write)
    with contextlib.suppress(Exception):
        await task
    with contextlib.suppress(ConnectionError, RuntimeError):
        await resp.write_eof()
    return resp


async def archive_put(request):
    eng = _eng(request)
    ref, path = _id(request), _path(request)
    copy_uidgid = q_bool(request, "copyUIDGID")
    reader = ThreadReader(asyncio.get_running_loop(), request.content)
    await eng.run(lambda: eng.cs().archive_put(ref, path, reader, copy_uidgid))
    return web.Response(status=200)


# ---- commit, export (engine/commit.py) ---------------------------------------------------------


async def commit(request):
    """POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=... (changes:
    one Dockerfile instruction per value, as the docker CLI sends each --change)."""
    from sangja.engine.commit import commit as commit_container

    eng = _eng(request)
    ref = request.query.get("container")
    if not ref:
        raise BadParameter("a container is required (?container=)")
    repo, tag = request.query.get("repo") or "", request.query.get("tag") or ""
    if tag and not repo:
        raise BadParameter("a tag needs a repository (?repo=)")
    repo_tag = f"{repo}:{tag}" if repo and tag else repo or None
    changes = [c for v in request.query.getall("changes", []) for c in v.split("\n") if c]
    body = await json_body(request)
    if body:
        # the body is a Config to merge into the image's; the engine takes changes only
        raise BadParameter("a container config in the commit body is not supported: use"
                           " changes (docker commit -c)")  # fmt: skip
    kw = dict(changes=changes, message=request.query.get("comment") or "",
              author=request.query.get("author") or "",
              pause=q_bool(request, "pause", True))  # fmt: skip
    image_id = await eng.run(lambda: commit_container(eng.cs(), ref, repo_tag, **kw))
    return web.json_response({"Id": image_id}, status=201)


async def export(request):
    """The container's root file system as a tar: the engine writes it into a pipe, a
    second worker reads the pipe into the response."""
    import os

    from sangja.engine.commit import export as export_container

    eng = _eng(request)
    ref = _id(request)
    await eng.run(lambda: eng.cs().get(ref))  # 404 before any output
    r, w = os.pipe2(os.O_CLOEXEC)
    out = ThreadWriter(asyncio.get_running_loop())

    def write():
        try:
            export_container(eng.cs(), ref, w)
        finally:
            os.close(w)

    def read():
        try:
            while chunk := os.read(r, 1 << 16):
                out.write(chunk)
        except Gone:
            pass
        finally:
            os.close(r)  # a writer still writing gets EPIPE and stops
            out.close()

    resp = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    writer, reader = eng.run(write), eng.run(read)
    await out.pump(resp.write)
    await reader
    try:
        await writer
    except Exception:
        # the headers are out: the connection is dropped without the chunked stream's end,
        # so the client sees a cut stream, never a tar that looks whole
        if request.transport is not None:
            request.transport.abort()
        return resp
    with contextlib.suppress(ConnectionError, RuntimeError):
        await resp.write_eof()
    return resp
