"""Streams between the engine's threads and the service's connections.

- `hijack(request)`: what attach and exec start do with their connection (Docker's
  "hijacking"): answer `101 UPGRADED` (`Upgrade: tcp`; `200 OK` to a client that asked for
  no upgrade), then the connection is a raw byte stream both ways, taken away from aiohttp
  (the transport gets a protocol of ours): the client's half-close (its stdin ended) is
  kept apart from its going away.
- `frame(stream, data)`: Docker's multiplexing of stdout and stderr on one stream (no tty):
  a header [stream, 0, 0, 0, size (big-endian uint32)], then the bytes.
- `ThreadWriter` / `ThreadReader`: file objects for engine code on a worker thread,
  writing into a streamed response or reading a request body (with back-pressure).
- `json_stream(...)`: a chunked response of JSON messages produced on a worker thread
  (pull, push, load progress).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct

from aiohttp import web

RAW_STREAM = "application/vnd.docker.raw-stream"
STDIN, STDOUT, STDERR = 0, 1, 2
_HEADER = struct.Struct(">BxxxL")


def frame(stream: int, data: bytes) -> bytes:
    return _HEADER.pack(stream, len(data)) + data


class Hijacked(asyncio.Protocol):
    """The connection after the upgrade."""

    def __init__(self, transport):
        self.transport = transport
        self.incoming: asyncio.Queue = asyncio.Queue()  # bytes; b"": half-closed; None: gone
        self.gone = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()

    # asyncio.Protocol
    def data_received(self, data: bytes) -> None:
        self.incoming.put_nowait(data)

    def eof_received(self) -> bool:
        self.incoming.put_nowait(b"")
        return True  # keep the connection: the client still reads what we send

    def connection_lost(self, exc) -> None:
        self.incoming.put_nowait(None)
        self.gone.set()
        self._writable.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # ours
    async def write(self, data: bytes) -> None:
        if self.gone.is_set() or self.transport.is_closing():
            raise ConnectionResetError("the client went away")
        self.transport.write(data)
        await self._writable.wait()

    def close(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()


async def hijack(request: web.Request) -> Hijacked:
    """Answer the upgrade and take the connection (see the module's doc)."""
    from sangja.engine.sysinfo import API_VERSION

    transport = request.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("the client went away")
    proto = request.protocol
    tail = getattr(proto, "_message_tail", b"") or b""
    if tail:
        proto._message_tail = b""
    upgrade = request.headers.get("Upgrade", "").lower() == "tcp"
    h = Hijacked(transport)
    transport.set_protocol(h)
    # aiohttp: nothing more on this connection once we return (not force_close(): that
    # closes the transport at once)
    proto.keep_alive(False)
    lines = ["HTTP/1.1 101 UPGRADED" if upgrade else "HTTP/1.1 200 OK",
             f"Content-Type: {RAW_STREAM}"]  # fmt: skip
    if upgrade:
        lines += ["Connection: Upgrade", "Upgrade: tcp"]
    lines += [f"Api-Version: {API_VERSION}", "Docker-Experimental: false", "Ostype: linux"]
    transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    if tail:
        h.data_received(tail)
    return h


class Done(web.StreamResponse):
    """What a hijacking handler returns: the answer was written by hand on a connection
    that is closed by now; aiohttp has nothing more to send."""

    def __init__(self):
        super().__init__(status=101)

    async def prepare(self, request):
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None


# ---- worker threads <-> connections ---------------------------------------------------------


class Gone(Exception):
    """The client went away: the engine call on the worker thread stops."""


class ThreadWriter:
    """A binary file for a worker thread; what it writes goes out on an async stream
    (`pump`), a few chunks in flight at most (back-pressure)."""

    def __init__(self, loop, depth: int = 8):
        self.loop = loop
        self.queue: asyncio.Queue = asyncio.Queue(depth)
        self.gone = False

    def write(self, data: bytes) -> int:
        if self.gone:
            raise Gone()
        if data:
            fut = asyncio.run_coroutine_threadsafe(self.queue.put(bytes(data)), self.loop)
            fut.result()
            if self.gone:
                raise Gone()
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.queue.put(None), self.loop).result()

    async def pump(self, send) -> None:
        """`await send(bytes)` for each chunk until the writer closes; once a send fails
        the writer is told (its next write raises Gone) and the rest is dropped."""
        while True:
            data = await self.queue.get()
            if data is None:
                return
            if self.gone:
                continue
            try:
                await send(data)
            except (ConnectionError, RuntimeError):
                self.gone = True


class ThreadReader:
    """A binary file for a worker thread, reading the request's body."""

    def __init__(self, loop, content):
        self.loop = loop
        self.content = content

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            coro = self.content.read()
        else:
            coro = self.content.read(n)
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True


async def json_stream(request: web.Request, eng, work, status: int = 200) -> web.StreamResponse:
    """A chunked response of JSON messages: `work(emit)` runs on a worker thread and calls
    `emit(dict)` for each.  As dockerd, the answer starts with the first message: an error
    raised before any is an ordinary error response (404, 500, ...); one raised later is
    Docker's last message {"errorDetail": {"message": ...}, "error": ...}."""
    from sangja.api.request import _status_of, error_response
    from sangja.errors import SangjaError
    from sangja.jsonio import dumps

    loop = asyncio.get_running_loop()
    out = ThreadWriter(loop, depth=64)
    failed: list = []
    sent = [False]

    def emit(msg: dict) -> None:
        sent[0] = True
        out.write((dumps(msg) + "\r\n").encode())

    def job():
        try:
            work(emit)
        except Gone:
            pass
        except (SangjaError, OSError) as e:
            if isinstance(e, OSError) and not isinstance(e, SangjaError):
                msg, code = f"{e.strerror or e}", 500
            else:
                msg, code = str(e), _status_of(e)
            if not sent[0]:
                failed.append((code, msg))
            else:
                with contextlib.suppress(Gone):
                    emit({"errorDetail": {"message": msg}, "error": msg})
        finally:
            out.close()

    task = eng.run(job)
    first = await out.queue.get()
    if first is None:
        await task
        if failed:
            return error_response(*failed[0])
    resp = web.StreamResponse(status=status, headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    await finish(resp, out, first, task)
    return resp


async def finish(resp, out, first, task) -> None:
    """The rest of a streamed answer whose first chunk was awaited before the headers
    (None: the job wrote nothing): that chunk, the job's writes after it, the job's end
    (its error raised), the stream's end.  A client gone stops the writes, not the job."""
    if first is not None:
        try:
            await resp.write(first)
        except (ConnectionError, RuntimeError):
            out.gone = True
        await out.pump(resp.write)
    await task
    with contextlib.suppress(ConnectionError, RuntimeError):
        await resp.write_eof()


def client_gone(request: web.Request) -> bool:
    t = request.transport
    return t is None or t.is_closing()


async def relay(h: Hijacked, sock, *, tty: bool, stdin: bool, stdout: bool = True,
                stderr: bool = True, keys: bytes = b"",
                close_stdin: bool = True) -> str:  # fmt: skip
    """Between a hijacked connection and a monitor's attach socket (engine/monitor.py
    AttachSocket: conmon's messages, a byte 2 = stdout, 3 = stderr, then the data):
    output to the client (framed without a tty), the client's input to the container
    (when `stdin`; its half-close closes the container's stdin; `keys`, the detach
    sequence, ends the relay with the container left running).
    -> "ended" (the monitor closed the socket), "detached" or "gone" (the client)."""
    from sangja.engine.attach import DetachKeys

    loop = asyncio.get_running_loop()
    s = sock.sock
    s.setblocking(False)

    async def outbound():
        while True:
            try:
                msg = await loop.sock_recv(s, 8193)
            except OSError:
                msg = b""
            if not msg:
                return "ended"
            err = msg[0] == 3
            data = msg[1:]
            if tty:
                if stdout:
                    await h.write(data)
            elif err and stderr:
                await h.write(frame(STDERR, data))
            elif not err and stdout:
                await h.write(frame(STDOUT, data))

    async def inbound():
        watch = DetachKeys(keys if stdin else b"")
        while True:
            data = await h.incoming.get()
            if data is None:
                return "gone"
            if data == b"":
                if stdin and close_stdin:
                    sock.close_stdin()
                continue
            if not stdin:
                continue
            data, detached = watch.feed(data)
            try:  # one message per piece: conmon reads a message into an 8 KiB buffer
                for i in range(0, len(data), sock.BUF):
                    await loop.sock_sendall(s, data[i : i + sock.BUF])
            except OSError:
                pass  # its stdin is closed: the input goes nowhere, as with docker
            if detached:
                return "detached"

    tasks = [asyncio.ensure_future(outbound()), asyncio.ensure_future(inbound())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            try:
                return t.result()
            except ConnectionError:
                return "gone"
        return "gone"
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
