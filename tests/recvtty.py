"""A console-socket receiver for the tests, after runc's contrib/cmd/recvtty.

A runtime given `--console-socket PATH` connects to PATH and sends the pty master of the
container's terminal as one SCM_RIGHTS message, the pty's name (/dev/pts/N, inside the
container) as the payload. `ConsoleReceiver` listens there and hands the master to a test
as a `Pty` it can type into, read from and resize. As a program it serves one terminal:

    python3 tests/recvtty.py [--mode single|null] [--pid-file F] PATH

`single` (the default) copies our stdin to the pty and the pty to our stdout until the pty
closes; `null` keeps the master open and throws the output away (as runc's recvtty does).
"""

import array
import fcntl
import os
import re
import select
import socket
import struct
import sys
import termios
import time

TIMEOUT = 60  # a hang guard, never an assertion about speed


class Pty:
    """The master side of a container's terminal."""

    def __init__(self, fd, name):
        self.fd = fd
        self.name = name
        self.output = b""  # everything read so far
        self._pos = 0  # where the next read_until looks from

    def write(self, text):
        data = text.encode() if isinstance(text, str) else text
        while data:
            n = os.write(self.fd, data)
            data = data[n:]

    def read_until(self, pattern, guard=TIMEOUT):
        """Read until `pattern` (a regex, bytes or str) matches the output after the last
        match; returns the match. A closed pty or the guard running out is an AssertionError."""
        if isinstance(pattern, str):
            pattern = pattern.encode()
        rx = re.compile(pattern) if isinstance(pattern, bytes) else pattern
        start = self._pos
        end = time.monotonic() + guard
        while True:
            m = rx.search(self.output, start)
            if m:
                self._pos = m.end()
                return m
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"never saw {rx.pattern!r} in {self.output[start:]!r}")
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                continue
            try:
                data = os.read(self.fd, 65536)
            except OSError:  # EIO: every slave is closed
                data = b""
            if not data:
                raise AssertionError(
                    f"the pty closed before {rx.pattern!r} in {self.output[start:]!r}"
                )
            self.output += data

    def read_all(self, guard=TIMEOUT):
        """Read until every slave is closed (the process and its children exited)."""
        end = time.monotonic() + guard
        while time.monotonic() < end:
            r, _, _ = select.select([self.fd], [], [], end - time.monotonic())
            if not r:
                continue
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                return self.output
            if not data:
                return self.output
            self.output += data
        raise AssertionError(f"the pty never closed; read {self.output!r}")

    def resize(self, rows, cols):
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def size(self):
        rows, cols, _, _ = struct.unpack(
            "HHHH", fcntl.ioctl(self.fd, termios.TIOCGWINSZ, b"\0" * 8)
        )
        return rows, cols

    def peer(self):
        """An fd of the slave, opened from the master (TIOCGPTPEER), wherever it lives."""
        return fcntl.ioctl(self.fd, 0x5441, os.O_RDWR | os.O_NOCTTY)  # TIOCGPTPEER

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class ConsoleReceiver:
    """Listen on `path` for one console: `accept()` -> Pty."""

    def __init__(self, path):
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(path)
        self._sock.listen(1)

    def accept(self, guard=TIMEOUT):
        r, _, _ = select.select([self._sock], [], [], guard)
        if not r:
            raise AssertionError(f"nothing connected to the console socket {self.path}")
        conn, _ = self._sock.accept()
        with conn:
            fds = array.array("i")
            msg, anc, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(4 * fds.itemsize))
            for level, typ, data in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                    fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            raise AssertionError(f"expected one fd over the console socket, got {len(fds)}")
        return Pty(fds[0], msg.decode(errors="replace"))

    def close(self):
        self._sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _serve(pty, mode):
    readers = [pty.fd] + ([0] if mode == "single" else [])
    while True:
        r, _, _ = select.select(readers, [], [])
        if pty.fd in r:
            try:
                data = os.read(pty.fd, 65536)
            except OSError:
                data = b""
            if not data:
                return
            if mode == "single":
                os.write(1, data)
        if 0 in r:
            data = os.read(0, 65536)
            if data:
                pty.write(data)
            else:
                readers.remove(0)


def main(argv=None):
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("path")
    ap.add_argument("--mode", choices=("single", "null"), default="single")
    ap.add_argument("--pid-file")
    args = ap.parse_args(argv)
    if args.pid_file:
        with open(args.pid_file, "w") as f:
            f.write(str(os.getpid()))
    with ConsoleReceiver(args.path) as rx:
        pty = rx.accept(guard=None)
    sys.stderr.write(f"recvtty: got {pty.name}\n")
    try:
        _serve(pty, args.mode)
    finally:
        pty.close()


if __name__ == "__main__":
    main()
