"""/build and /build/prune: the classic builder's API (Builder-Version 1, which /_ping
announces) over sangja.engine.build.

POST /build: the body is a tar of the context (plain or compressed); the answer is
Docker's JSON stream as the steps run -- {"stream": "Step 1/3 : FROM ...\\n"}, the RUNs'
output, {"aux": {"ID": "sha256:..."}}, {"stream": "Successfully built ...\\n"} -- and a
failure's last message {"errorDetail": {"message": ..., "code": N}, "error": ...} (N: a
failing RUN's exit code, which the docker CLI exits with).  Query: dockerfile, t
(repeatable), buildargs, labels (JSON objects), target, nocache, pull, q, networkmode,
platform; rm/forcerm are accepted (intermediate containers are always removed);
cachefrom is accepted and ignored (a note says so: the cache is the local one);
X-Registry-Config carries the credentials for FROM's pulls.  remote (a URL context) and
version=2 (BuildKit) are refused.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from sangja.api.request import BadParameter, q_bool, q_filters
from sangja.api.streams import ThreadReader, client_gone, json_stream


def setup(routes) -> None:
    routes.add("POST", "/build", build)
    routes.add("POST", "/build/prune", prune)
    routes.app["builds"] = set()
    routes.app.on_shutdown.append(_cancel_all)


async def _cancel_all(app) -> None:
    """The service stops (SIGTERM): the builds in progress are cancelled, so that no RUN
    outlives it and the worker threads it waits for end."""
    for b in list(app["builds"]):
        b.cancel()


def _json_map(request, name: str, nulls: bool = False) -> dict:
    raw = request.query.get(name)
    if not raw:
        return {}
    try:
        v = json.loads(raw)
    except ValueError as e:
        raise BadParameter(f"invalid {name}: {e}")
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise BadParameter(f"invalid {name}: want a JSON object")
    out = {}
    for k, x in v.items():
        if x is None and nulls:
            continue  # `--build-arg K` with K unset on the client: the default holds
        if not isinstance(x, str):
            raise BadParameter(f"invalid {name}: the value of {k!r} is not a string")
        out[str(k)] = x
    return out


def registry_config(request) -> dict:
    """X-Registry-Config: base64url JSON {server: {username, password, ...}} -> {domain:
    (user, password)} (the docker CLI sends every login it knows)."""
    raw = request.headers.get("X-Registry-Config")
    if not raw:
        return {}
    import base64

    try:
        doc = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, TypeError):
        return {}  # dockerd goes on without what it cannot read
    out = {}
    if not isinstance(doc, dict):
        return out
    for server, a in doc.items():
        if not isinstance(a, dict) or not a.get("username") or not a.get("password"):
            continue
        host = server.split("://", 1)[-1].split("/", 1)[0]
        if host in ("index.docker.io", "registry-1.docker.io"):
            host = "docker.io"
        out[host] = (a["username"], a["password"])
    return out


async def build(request):
    from sangja.engine.build.builder import Builder, CallbackPrinter, Options

    eng = request.app["engine"]
    q = request.query
    if q.get("remote"):
        raise BadParameter("remote: sangja builds only a context sent as the request's body")
    if q.get("version", "1") not in ("", "1"):
        raise BadParameter(f"builder version {q['version']} is not supported (BuildKit); the"
                           " classic builder (version 1) is")  # fmt: skip
    notes = []
    if q.get("cachefrom", "").strip() not in ("", "[]", "null"):
        notes.append("[Note] --cache-from is ignored: sangja's build cache is the local one\n")
    quiet = q_bool(request, "q")
    o = Options(
        context="-", dockerfile=q.get("dockerfile") or None, tags=q.getall("t", []),
        build_args=_json_map(request, "buildargs", nulls=True),
        target=q.get("target") or None, no_cache=q_bool(request, "nocache"),
        pull=q_bool(request, "pull"), labels=_json_map(request, "labels"),
        platform=q.get("platform") or None, quiet=quiet,
        network=q.get("networkmode") or "default", runtime_root=eng.runtime_root,
        stdin=ThreadReader(asyncio.get_running_loop(), request.content),
        registry_auth=registry_config(request),
    )  # fmt: skip

    def work(emit):
        from sangja.errors import SangjaError

        sent = []

        def send(msg):
            sent.append(True)
            emit(msg)

        for n in notes:
            send({"stream": n})
        p = CallbackPrinter(quiet, lambda text: send({"stream": text}),
                            lambda image_id: send({"aux": {"ID": image_id}}))  # fmt: skip
        b = Builder(o, eng._store(), p)
        builders.append(b)
        if gone[0]:
            return
        request.app["builds"].add(b)
        try:
            b.build()
        except SangjaError as e:
            code = e.exit_code if e.exit_code != type(e).exit_code else 1
            if not sent and code == 1:
                raise  # before the first step: an ordinary error response
            # the docker CLI exits with the code (a failing RUN's own)
            msg = str(e)
            emit({"errorDetail": {"code": code, "message": msg}, "error": msg})
        finally:
            request.app["builds"].discard(b)

    builders: list = []
    gone = [False]

    async def watch():
        # the client going away (docker build's Ctrl-C) cancels the build, as with dockerd,
        # even while a RUN prints nothing (a write would notice it only then)
        while not client_gone(request):
            await asyncio.sleep(0.25)
        gone[0] = True
        for b in builders:
            b.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        return await json_stream(request, eng, work)
    finally:
        watcher.cancel()


async def prune(request):
    """BuildPrune: all (or only the steps whose layers no image uses), filters until=."""
    eng = request.app["engine"]
    all_ = q_bool(request, "all")
    until = None
    for k, vs in q_filters(request).items():
        if k != "until":
            raise BadParameter(f"invalid filter '{k}' (build prune takes until)")
        import time

        from sangja.gounits import parse_duration

        try:
            until = time.time() - parse_duration(vs[0])
        except ValueError:
            raise BadParameter(f"invalid filter 'until={vs[0]}': want a duration")

    def work():
        from sangja.engine.build import cache
        from sangja.engine.build.workspace import exclusive

        store = eng._store()
        with exclusive(store):
            return cache.prune(store, all=all_, until=until)

    keys, freed = await eng.run(work)
    return web.json_response({"CachesDeleted": keys, "SpaceReclaimed": freed})
