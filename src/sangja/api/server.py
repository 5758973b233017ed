"""The service: where it listens, how requests reach the engine, and how it ends.

- The socket: `--socket PATH` (default /run/sangja/docker.sock), mode 0660, group `docker`
  when that group exists (as dockerd makes /run/docker.sock: its members may use the API,
  which is root's power); or the one systemd passes (socket activation: LISTEN_PID is ours,
  LISTEN_FDS=1, the socket is fd 3).
- Routes answer with and without the version prefix (`/v1.41/containers/json` and
  `/containers/json`); a version above 1.41 or below 1.24 is refused as dockerd refuses it.
- Engine calls block (locks, waits, subprocesses): each runs on a worker thread, with a
  Containers/Images of that thread's own (their SQLite connection belongs to it), all
  sharing one StartWatch (an attach made before `start` connects at the start).
- Errors are Docker's: {"message": "..."} with the engine error's status (400, 404, 409,
  500); an unknown path is 404 "page not found".
- `--timeout N`: exit after N seconds without a request in progress (0: never), for
  socket activation; SIGTERM/SIGINT end it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import threading
import time

from aiohttp import web

from sangja.api.request import _status_of, error_response
from sangja.engine.errors import EngineError
from sangja.engine.sysinfo import API_VERSION, MIN_API_VERSION
from sangja.errors import SangjaError

DEFAULT_SOCKET = "/run/sangja/docker.sock"
WORKERS = 256  # engine calls at once (waits, follows and attaches hold one each)
_VERSION_PREFIX = r"{version:v[0-9]+(?:\.[0-9]+)?}"


class Engine:
    """The engine for the service's handlers: `await eng.run(fn)` calls fn on a worker
    thread, where `eng.cs()` and `eng.images()` are that thread's own engine objects."""

    def __init__(self, runtime_root: str, workers: int = WORKERS):
        from concurrent.futures import ThreadPoolExecutor

        from sangja.engine.attach import StartWatch

        self.runtime_root = runtime_root
        self.watch = StartWatch()
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="engine")
        self._local = threading.local()

    def _store(self):
        store = getattr(self._local, "store", None)
        if store is None:
            from sangja.image.store import Store

            store = self._local.store = Store()
        return store

    def cs(self):
        cs = getattr(self._local, "cs", None)
        if cs is None:
            from sangja.engine.containers import Containers

            cs = self._local.cs = Containers(self._store(), self.runtime_root, watch=self.watch)
        return cs

    def images(self):
        im = getattr(self._local, "images", None)
        if im is None:
            from sangja.engine.images import Images

            im = self._local.images = Images(self._store())
        return im

    def run(self, fn, *args, **kw) -> asyncio.Future:
        """fn(*args, **kw) on a worker thread: a future, running from now on."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self.pool, functools.partial(fn, *args, **kw))


class Routes:
    """Each route under its path and under `/v1.xx` + its path."""

    def __init__(self, app: web.Application):
        self.app = app

    def add(self, method: str, path: str, handler) -> None:
        for p in (path, "/" + _VERSION_PREFIX + path):
            self.app.router.add_route(method, p, handler)


class Service:
    def __init__(self, runtime_root: str, timeout: float = 0, engine: Engine | None = None):
        self.engine = engine or Engine(runtime_root)
        self.timeout = timeout
        self.active = 0
        self.last = time.monotonic()
        self.stopping: asyncio.Event | None = None
        self.early: list[int] = []  # SIGTERM/SIGINT caught before the loop ran (main())

    # ---- the application -------------------------------------------------------------
    def app(self) -> web.Application:
        from sangja.api import containers, execs, images, system

        app = web.Application(middlewares=[self._activity, self._version, self._errors],
                              client_max_size=64 << 20)  # fmt: skip
        app["engine"] = self.engine
        app["service"] = self
        app.on_response_prepare.append(_headers)
        routes = Routes(app)
        for mod in (system, containers, execs, images):
            mod.setup(routes)
        for mod in _later_modules():
            mod.setup(routes)
        return app

    @web.middleware
    async def _activity(self, request, handler):
        self.active += 1
        self.last = time.monotonic()
        try:
            return await handler(request)
        finally:
            self.active -= 1
            self.last = time.monotonic()

    @web.middleware
    async def _version(self, request, handler):
        v = request.match_info.get("version")
        if v:
            want = _vtuple(v[1:])
            if want > _vtuple(API_VERSION):
                return error_response(400, f"client version {v[1:]} is too new. Maximum"
                                           f" supported API version is {API_VERSION}")  # fmt: skip
            if want < _vtuple(MIN_API_VERSION):
                return error_response(400, f"client version {v[1:]} is too old. Minimum"
                                      f" supported API version is {MIN_API_VERSION}, please"
                                      " upgrade your client to a newer version")  # fmt: skip
        return await handler(request)

    @web.middleware
    async def _errors(self, request, handler):
        try:
            return await handler(request)
        except web.HTTPException as e:
            if e.status >= 400:
                text = "page not found" if e.status == 404 else e.reason
                return error_response(e.status, text)
            raise
        except SangjaError as e:
            return error_response(_status_of(e), str(e))
        except OSError as e:
            where = f" {e.filename}" if e.filename else ""
            return error_response(500, f"{e.strerror or e}{where}")

    # ---- serving -----------------------------------------------------------------------
    async def serve(self, sock: socket.socket) -> None:
        import signal

        loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        for s in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(s, self.stopping.set)
        if self.early:
            self.stopping.set()
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False,
                               shutdown_timeout=2.0)  # fmt: skip
        await runner.setup()
        site = web.SockSite(runner, sock)
        await site.start()
        watchdog = asyncio.ensure_future(self._idle()) if self.timeout > 0 else None
        try:
            await self.stopping.wait()
        finally:
            if watchdog is not None:
                watchdog.cancel()
            await runner.cleanup()
            self.engine.pool.shutdown(wait=False, cancel_futures=True)

    async def _idle(self) -> None:
        while True:
            left = self.timeout - (time.monotonic() - self.last)
            if self.active == 0 and left <= 0:
                self.stopping.set()
                return
            await asyncio.sleep(max(0.2, min(left, 1.0)) if self.active == 0 else 1.0)


def _later_modules():
    """The endpoints of engine parts that may not be there yet (networks, volumes, build)."""
    import importlib

    out = []
    for name in ("networks", "volumes", "build"):
        try:
            out.append(importlib.import_module(f"sangja.api.{name}"))
        except ModuleNotFoundError as e:
            if e.name != f"sangja.api.{name}":
                raise
    return out


def _vtuple(v: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in v.split("."))
    except ValueError:
        return (0,)


async def _headers(request, response) -> None:
    from sangja import __version__

    h = response.headers
    h.setdefault("Api-Version", API_VERSION)
    h.setdefault("Docker-Experimental", "false")
    h.setdefault("Ostype", "linux")
    h["Server"] = f"sangja/{__version__} (linux)"


# ---- the socket ------------------------------------------------------------------------------


def activation_socket() -> socket.socket | None:
    """The socket systemd passed (LISTEN_PID ours, LISTEN_FDS=1: fd 3), or None.  The
    variables are cleared so that nothing we start sees them."""
    pid, fds = os.environ.get("LISTEN_PID"), os.environ.get("LISTEN_FDS")
    if not pid or not fds:
        return None
    for k in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(k, None)
    if pid != str(os.getpid()):
        return None
    try:
        n = int(fds)
    except ValueError:
        raise EngineError(f"LISTEN_FDS={fds!r} is not a number")
    if n != 1:
        raise EngineError(f"socket activation passed {n} sockets; the service takes one")
    sock = socket.socket(fileno=3)
    os.set_inheritable(3, False)
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        raise EngineError("the socket systemd passed is not a unix stream socket")
    return sock


def listen_socket(path: str) -> socket.socket:
    """A unix socket bound at `path` (a stale socket file replaced; a live one refused)."""
    path = os.path.abspath(path)
    d = os.path.dirname(path)
    os.makedirs(d, mode=0o711, exist_ok=True)
    if os.path.exists(path) or os.path.islink(path):
        import stat

        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise EngineError(f"{path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)  # nobody listens: left by a service that was killed
        else:
            raise EngineError(f"another service listens on {path}")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(_bindable(path))
    except OSError as e:
        sock.close()
        raise EngineError(f"listen on {path}: {e.strerror}", errno=e.errno)
    finally:
        os.umask(old)
    gid = _docker_gid()
    if gid is not None:
        with contextlib.suppress(OSError):
            os.chown(path, 0, gid)
            os.chmod(path, 0o660)
    sock.listen(128)
    return sock


def _bindable(path: str) -> str:
    if len(path.encode()) < 108:
        return path
    raise EngineError(f"socket path too long (max 107 bytes): {path}")


def _docker_gid() -> int | None:
    import grp

    try:
        return grp.getgrnam("docker").gr_gid
    except KeyError:
        return None


def main(socket_path: str | None, timeout: float, runtime_root: str) -> int:
    """`sangja system service`: serve until stopped, or idle for `timeout` seconds."""
    import signal

    service = Service(os.path.abspath(runtime_root), timeout)
    # from the moment the socket exists a client may connect and a SIGTERM come: caught
    # (an orderly end) rather than the default death, until the loop's handlers take over
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda n, _f: service.early.append(n))
    sock = activation_socket()
    made = None
    if sock is None:
        made = os.path.abspath(socket_path or DEFAULT_SOCKET)
        sock = listen_socket(made)
    sock.setblocking(False)
    try:
        asyncio.run(service.serve(sock))
    finally:
        sock.close()
        if made is not None:
            with contextlib.suppress(OSError):
                os.unlink(made)
    return 0
