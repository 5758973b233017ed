"""/images/...: pull (create), list, inspect, history, tag, remove, push, search, get,
load, prune (engine/images.py)."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from sangja.api.request import BadParameter, error_response, q_bool, q_filters, q_int, registry_auth
from sangja.api.streams import Gone, ThreadReader, ThreadWriter, json_stream


def setup(routes) -> None:
    add = routes.add
    add("POST", "/images/create", create)
    add("GET", "/images/json", list_)
    add("GET", "/images/search", search)
    add("GET", "/images/get", get_many)
    add("POST", "/images/load", load)
    add("POST", "/images/prune", prune)
    add("GET", "/images/{name:.+}/json", inspect)
    add("GET", "/images/{name:.+}/history", history)
    add("POST", "/images/{name:.+}/tag", tag)
    add("POST", "/images/{name:.+}/push", push)
    add("GET", "/images/{name:.+}/get", get_one)
    add("DELETE", "/images/{name:.+}", remove)


def _eng(request):
    return request.app["engine"]


def _name(request) -> str:
    return request.match_info["name"]


def _with_tag(name: str, tag: str | None) -> str:
    if not tag:
        return name
    return f"{name}@{tag}" if ":" in tag else f"{name}:{tag}"


async def create(request):
    """fromImage: a pull, its progress as Docker's JSON messages; fromSrc=-: an import of
    the body (a root file system tarball)."""
    from sangja.image.progress import JSONProgress

    eng = _eng(request)
    q = request.query
    platform = q.get("platform") or None
    if q.get("fromSrc"):
        if q["fromSrc"] != "-":
            raise BadParameter("fromSrc: only '-' (the request body) is supported, not a URL")
        repo = q.get("repo") or None
        name = _with_tag(repo, q.get("tag")) if repo else None
        changes, message = q.getall("changes", []), q.get("message") or ""
        reader = ThreadReader(asyncio.get_running_loop(), request.content)

        def do_import(emit):
            image_id = eng.images().import_rootfs(reader, name, changes=changes,
                                                  message=message, platform=platform)  # fmt: skip
            emit({"status": image_id})

        return await json_stream(request, eng, do_import)
    image = q.get("fromImage")
    if not image:
        raise BadParameter("fromImage or fromSrc is required")
    ref = _with_tag(image, q.get("tag"))
    creds = registry_auth(request)

    def do_pull(emit):
        eng.images().pull(ref, platform, JSONProgress(emit), credentials=creds)

    return await json_stream(request, eng, do_pull)


async def push(request):
    from sangja.image.progress import JSONProgress

    eng = _eng(request)
    ref = _with_tag(_name(request), request.query.get("tag"))
    creds = registry_auth(request)

    def do_push(emit):
        for res in eng.images().push(ref, JSONProgress(emit), credentials=creds):
            # dockerd's last message of each tag: what docker-py and compose read
            tag = res.reference.rsplit(":", 1)[-1]
            emit({"progressDetail": {},
                  "aux": {"Tag": tag, "Digest": res.digest, "Size": res.size}})  # fmt: skip

    return await json_stream(request, eng, do_push)


async def list_(request):
    eng = _eng(request)
    filters = q_filters(request)
    if request.query.get("filter"):  # the API's old form: a reference
        filters.setdefault("reference", []).append(request.query["filter"])
    all_ = q_bool(request, "all")
    return web.json_response(await eng.run(lambda: eng.images().list(filters, all=all_)))


async def inspect(request):
    from sangja.engine.errors import NoSuchImage
    from sangja.image.store import ImageNotFound

    eng = _eng(request)
    try:
        return web.json_response(await eng.run(lambda: eng.images().inspect(_name(request))))
    except (ImageNotFound, NoSuchImage):
        # dockerd's words: docker-compose builds a service's image only on a 404 that says
        # "No such image" (and pulls on any other answer)
        return error_response(404, f"No such image: {_name(request)}")


async def history(request):
    eng = _eng(request)
    return web.json_response(await eng.run(lambda: eng.images().history(_name(request))))


async def tag(request):
    eng = _eng(request)
    repo = request.query.get("repo")
    if not repo:
        raise BadParameter("repo is required")
    await eng.run(lambda: eng.images().tag(_name(request), repo, request.query.get("tag")))
    return web.Response(status=201)


async def remove(request):
    eng = _eng(request)
    force = q_bool(request, "force")
    return web.json_response(await eng.run(lambda: eng.images().remove(_name(request),
                                                                       force=force)))  # fmt: skip


async def prune(request):
    eng = _eng(request)
    f = q_filters(request)
    dangling = (f.pop("dangling", None) or ["true"])[0].lower() in ("1", "true")
    if f:
        raise BadParameter(f"invalid filter '{sorted(f)[0]}' (image prune takes dangling)")
    return web.json_response(await eng.run(lambda: eng.images().prune(all=not dangling)))


async def search(request):
    eng = _eng(request)
    term = request.query.get("term")
    if not term:
        raise BadParameter("term is required")
    limit = q_int(request, "limit", 25)
    filters = [f"{k}={v}" for k, vs in q_filters(request).items() for v in vs]
    found = await eng.run(lambda: eng.images().search(term, limit=limit, filters=filters))
    return web.json_response([{"name": r.name, "description": r.description,
                               "star_count": r.star_count, "is_official": r.is_official,
                               "is_automated": r.is_automated} for r in found])  # fmt: skip


async def get_one(request):
    return await _save(request, [_name(request)])


async def get_many(request):
    names = request.query.getall("names", [])
    if not names:
        raise BadParameter("names is required")
    return await _save(request, names)


async def _save(request, refs: list[str]):
    """A docker-archive of the images (ImageGet)."""
    eng = _eng(request)
    await eng.run(lambda: [eng.images().resolve(r) for r in refs])  # 404 first
    loop = asyncio.get_running_loop()
    out = ThreadWriter(loop)

    def job():
        try:
            eng.images().save(refs, out)
        except Gone:
            pass
        finally:
            out.close()

    resp = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    task = eng.run(job)
    await out.pump(resp.write)
    with contextlib.suppress(Exception):
        await task
    with contextlib.suppress(ConnectionError, RuntimeError):
        await resp.write_eof()
    return resp


async def load(request):
    """ImageLoad: the body is an archive; the answer Docker's {"stream": "Loaded image:
    ...\\n"} messages."""
    eng = _eng(request)
    reader = ThreadReader(asyncio.get_running_loop(), request.content)

    def do_load(emit):
        for line in eng.images().load(reader):
            emit({"stream": line + "\n"})

    return await json_stream(request, eng, do_load)
