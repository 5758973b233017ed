"""The short-lived helper programs the engine runs on a container's way to running
(netavark, iptables-restore, iptables-save): started with `os.posix_spawn`, their input
already written, their output read when the engine waits for them.

Why not `subprocess`: importing it costs `run` about 5 ms (it brings `locale`, `selectors`,
`threading`, `signal`'s enums), on every container with a network.  Why the input is
written first: netavark and iptables-restore read all of it before they do anything, so
fed when the engine waits they would sit idle until then; fed here, they work while the
engine goes on (netavark beside the runtime's `create`)."""

from __future__ import annotations

import _signal
import fcntl
import os
import select
import time

_PIPE_MAX = 1 << 20  # what a pipe may grow to (/proc/sys/fs/pipe-max-size's default)


class Timeout(Exception):
    pass


def which(name: str, path: str) -> str:
    """`name` as execve finds it on `path` (a name with a slash is taken as it is)."""
    if "/" in name:
        return name
    for d in path.split(":"):
        p = os.path.join(d or ".", name)
        if os.access(p, os.X_OK) and not os.path.isdir(p):
            return p
    raise FileNotFoundError(2, "No such file or directory", name)


def _filled(data: bytes) -> int | None:
    """-> the read end of a pipe that holds all of `data`, its write end closed; None when
    it does not fit in one pipe."""
    if len(data) > _PIPE_MAX:
        return None
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        if len(data) > 65536:
            fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, len(data))
        view = memoryview(data)
        while view:  # never blocks: the pipe holds it all
            view = view[os.write(w, view) :]
    except OSError:
        os.close(r)
        return None
    finally:
        os.close(w)
    return r


def _cloexec_inherited() -> None:
    """Mark close-on-exec every fd above 2 this process inherited without the flag (what
    its caller leaked): posix_spawn, unlike subprocess, has no close-them-all action, and
    netavark would hand them on to aardvark-dns, which stays.  Python's own fds have it."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2:
            try:
                flags = fcntl.fcntl(fd, fcntl.F_GETFD)
                if not flags & fcntl.FD_CLOEXEC:
                    fcntl.fcntl(fd, fcntl.F_SETFD, flags | fcntl.FD_CLOEXEC)
            except OSError:  # the listing's own fd, closed by now
                pass


class Child:
    """One program run with `input` on its stdin and its stdout and stderr captured.
    OSError when it cannot be started (the program's name in `filename`)."""

    def __init__(self, argv: list[str], input: bytes = b"", env: dict | None = None):
        env = os.environ if env is None else env
        exe = which(argv[0], env.get("PATH") or os.defpath)
        self.returncode: int | None = None
        self._input = b""
        stdin = _filled(input)
        if stdin is None:  # too big for one pipe: written while waiting
            stdin, self._w = os.pipe2(os.O_CLOEXEC)
            self._input = input
        else:
            self._w = -1
        _cloexec_inherited()
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        try:
            acts = [(os.POSIX_SPAWN_DUP2, stdin, 0), (os.POSIX_SPAWN_DUP2, out_w, 1),
                    (os.POSIX_SPAWN_DUP2, err_w, 2)]  # fmt: skip
            # the signals Python ignores go back to their defaults, as subprocess does
            self.pid = os.posix_spawn(exe, argv, env, file_actions=acts,
                                      setsigdef=(_signal.SIGPIPE, _signal.SIGXFSZ))  # fmt: skip
        except BaseException:
            for fd in (out_r, err_r, self._w):
                if fd >= 0:
                    os.close(fd)
            raise
        finally:
            for fd in (stdin, out_w, err_w):
                os.close(fd)
        self._out, self._err = out_r, err_r

    def wait(self, timeout: float) -> tuple[int, bytes, bytes]:
        """-> (exit code, stdout, stderr); Timeout (the child killed and reaped) when it
        has not ended after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        out, err = self._out, self._err
        bufs: dict[int, list] = {out: [], err: []}
        poll = select.poll()
        for fd in bufs:
            poll.register(fd, select.POLLIN)
        if self._w >= 0:
            os.set_blocking(self._w, False)
            poll.register(self._w, select.POLLOUT)
        open_fds = set(bufs) | ({self._w} if self._w >= 0 else set())
        view = memoryview(self._input)
        try:
            while open_fds:
                left = deadline - time.monotonic()
                if left <= 0:
                    os.kill(self.pid, _signal.SIGKILL)
                    os.waitpid(self.pid, 0)
                    self.returncode = -9
                    raise Timeout(timeout)
                for fd, _ in poll.poll(left * 1000):
                    if fd == self._w:
                        try:
                            view = view[os.write(fd, view[:65536]) :]
                        except BlockingIOError:
                            continue
                        except BrokenPipeError:
                            view = view[:0]
                        if not view:
                            poll.unregister(fd)
                            os.close(fd)
                            open_fds.discard(fd)
                            self._w = -1
                        continue
                    chunk = os.read(fd, 65536)
                    if chunk:
                        bufs[fd].append(chunk)
                    else:
                        poll.unregister(fd)
                        open_fds.discard(fd)
        finally:
            for fd in (self._out, self._err, self._w):
                if fd >= 0:
                    os.close(fd)
            self._out = self._err = self._w = -1
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode, b"".join(bufs[out]), b"".join(bufs[err])
