"""The attaching side of a container's stdio, for a terminal or pipes: what `attach`,
`start -a` and a foreground `run` do with the monitor's attach socket (engine/monitor.py).

  - output: stdout and stderr from the socket to ours (with a tty, one stream);
  - input: ours to the socket; at its end the container's stdin is closed (a container
    started with `-i` alone: `docker run -i` closes it once the attached input ends);
  - a terminal: ours in raw mode, its size sent to conmon at once and on SIGWINCH;
  - the detach keys (default ctrl-p ctrl-q): stop relaying and leave the container
    running; `sig-proxy`: signals we get go to the container (without a tty).
The relay ends when the container has exited and its output is drained (conmon's exit
file, then the socket is read empty), or when conmon closes the socket.
"""

from __future__ import annotations

import contextlib
import os
import select

from sangja.engine.errors import InvalidArgument

DEFAULT_DETACH = b"\x10\x11"  # ctrl-p ctrl-q


def parse_detach_keys(spec: str | None) -> bytes:
    """Docker's --detach-keys: 'ctrl-p,ctrl-q', 'a', 'ctrl-@', '' (none)."""
    if spec is None:
        return DEFAULT_DETACH
    out = b""
    for key in [k for k in spec.split(",") if k]:
        k = key.strip().lower()
        if len(k) == 1:
            out += k.encode()
        elif k.startswith("ctrl-") and len(k) == 6:
            c = k[5]
            if "a" <= c <= "z":
                out += bytes([ord(c) - ord("a") + 1])
            elif c in "@[\\]^_":
                out += bytes([{"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}[c]])
            else:
                raise InvalidArgument(f"invalid detach key: {key!r}")
        else:
            raise InvalidArgument(f"invalid detach key: {key!r}")
    return out


class _Keys:
    """Spots the detach sequence in what the user types (held back until decided)."""

    def __init__(self, seq: bytes):
        self.seq = seq
        self.held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """-> (what to send on, detached?)."""
        if not self.seq:
            return data, False
        out = b""
        for b in data:
            cand = self.held + bytes([b])
            if self.seq.startswith(cand):
                self.held = cand
                if cand == self.seq:
                    return out, True
                continue
            out += cand
            self.held = b""
        return out, False


class Relay:
    def __init__(self, sock, *, tty: bool, stdin: bool, stdout: bool = True,
                 stderr: bool = True, detach_keys: bytes = DEFAULT_DETACH,
                 exited_fd: int | None = None, exited=None, resize=None,
                 close_stdin: bool = True):  # fmt: skip
        """`exited_fd`: a pidfd of the container's init; once it ends, `exited()` waits for
        the monitor's word that all output was sent.  `resize(h, w)`: to conmon."""
        self.sock = sock
        self.tty, self.stdin, self.stdout, self.stderr = tty, stdin, stdout, stderr
        self.keys = _Keys(detach_keys if stdin else b"")
        self.exited_fd, self.exited, self.resize = exited_fd, exited, resize
        self.close_stdin = close_stdin

    def run(self) -> str:
        """-> "exited" or "detached"."""
        import _signal

        saved_term = None
        old_winch = None
        wake_r = wake_w = None
        if self.tty and self.stdin and os.isatty(0):
            import termios
            import tty as ttymod

            saved_term = termios.tcgetattr(0)
            ttymod.setraw(0, termios.TCSANOW)  # not TCSAFLUSH: keep what was typed ahead
        if self.tty and self.resize is not None and os.isatty(1):
            wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            self._send_size()
            old_winch = _signal.signal(_signal.SIGWINCH, lambda *a: _nudge(wake_w))
        try:
            return self._loop(wake_r)
        finally:
            if saved_term is not None:
                import termios

                termios.tcsetattr(0, termios.TCSADRAIN, saved_term)
            if old_winch is not None:
                _signal.signal(_signal.SIGWINCH, old_winch)
            for fd in (wake_r, wake_w):
                if fd is not None:
                    os.close(fd)

    def _send_size(self):
        with contextlib.suppress(OSError):
            size = os.get_terminal_size(1)
            if size.lines and size.columns:  # a terminal nobody sized says 0x0
                self.resize(size.lines, size.columns)

    def _loop(self, wake_r) -> str:
        p = select.poll()
        sfd = self.sock.fileno()
        p.register(sfd, select.POLLIN)
        stdin_open = self.stdin
        if stdin_open:
            p.register(0, select.POLLIN)
        if self.exited_fd is not None:
            p.register(self.exited_fd, select.POLLIN)
        if wake_r is not None:
            p.register(wake_r, select.POLLIN)
        while True:
            try:
                events = p.poll(-1)
            except InterruptedError:
                continue
            for fd, _ev in events:
                if fd == sfd:
                    msg = self.sock.recv()
                    if msg is None:
                        return "exited"
                    self._out(*msg)
                elif fd == 0:
                    try:
                        data = os.read(0, 65536)
                    except OSError:
                        data = b""
                    if not data:
                        p.unregister(0)
                        stdin_open = False
                        if not self.tty and self.close_stdin:
                            self.sock.close_stdin()
                        continue
                    data, detached = self.keys.feed(data)
                    if data:
                        with contextlib.suppress(OSError):
                            self.sock.send(data)
                    if detached:
                        return "detached"
                elif fd == wake_r:
                    with contextlib.suppress(OSError):
                        os.read(wake_r, 64)
                    self._send_size()
                elif fd == self.exited_fd:
                    p.unregister(fd)
                    if self.exited is None or self.exited():
                        # conmon sends all output before it writes the exit file: what is
                        # left is in the socket already
                        while (msg := self.sock.recv(wait=False)) is not None:
                            self._out(*msg)
                        return "exited"

    def _out(self, stream: int, data: bytes) -> None:
        if stream == 2 and not self.tty:
            if self.stderr:
                _write_all(2, data)
        elif self.stdout:
            _write_all(1, data)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        try:
            n = os.write(fd, data)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        data = data[n:]


def _nudge(fd):
    with contextlib.suppress(OSError):
        os.write(fd, b"w")


class StartWatch:
    """Who waits for a container's start, in one process (the API service, whose attach
    requests come before their `start` request, as the docker CLI sends them): a
    container's start calls `fire(id, paths)` once its monitor runs and before its process
    is released, and each waiter connects then (engine/containers.py, attach_at_start).
    Thread-safe: the service runs engine calls on worker threads."""

    def __init__(self):
        import threading

        self._lock = threading.Lock()
        self._waiting: dict[str, dict[int, object]] = {}
        self._next = 0

    def add(self, cid: str, fn) -> tuple[str, int]:
        with self._lock:
            self._next += 1
            self._waiting.setdefault(cid, {})[self._next] = fn
            return cid, self._next

    def cancel(self, token) -> bool:
        """-> True if it was still waiting (and now is not)."""
        if token is None:
            return False
        cid, n = token
        with self._lock:
            fns = self._waiting.get(cid)
            if not fns or n not in fns:
                return False
            del fns[n]
            if not fns:
                del self._waiting[cid]
            return True

    def fire(self, cid: str, paths) -> None:
        with self._lock:
            fns = self._waiting.pop(cid, {})
        for fn in fns.values():
            fn(paths)


class DetachKeys(_Keys):
    """The detach sequence spotted in a stream of input (the API's hijacked attach)."""
