"""The API service under test and its real clients: `sangja system service` on a private
socket (private engine root, runtime root, HOME, cgroup parent; in the fixtures' network
namespace, where the registries serve), driven by Debian's docker CLI 20.10
(/usr/bin/docker: /usr/local/bin/docker may be another, newer client), docker-compose
1.29 and docker-py 5 (python3-docker, for /usr/bin/python3)."""

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from enginekit import PtyIO
from registrykit import sangja_binary

DOCKER = "/usr/bin/docker"
COMPOSE = "/usr/bin/docker-compose"
SYSTEM_PYTHON = "/usr/bin/python3"
TIMEOUT = 300  # a hang guard per command, never an assertion about speed
GUARD = 60


def docker_cli_missing():
    """None if Debian's docker client 20.10 is there, else why not."""
    if not os.access(DOCKER, os.X_OK):
        return f"{DOCKER} is not installed (Debian's docker.io; make test installs it)"
    out = subprocess.run([DOCKER, "--version"], capture_output=True, text=True).stdout
    if not re.match(r"Docker version 20\.10\.", out):
        return f"{DOCKER} is not Debian's docker 20.10 client: {out.strip()}"
    return None


def compose_missing():
    if not os.access(COMPOSE, os.X_OK):
        return f"{COMPOSE} is not installed (Debian's docker-compose; make test installs it)"
    return None


def dockerpy_missing():
    r = subprocess.run([SYSTEM_PYTHON, "-c", "import docker; print(docker.__version__)"],
                       capture_output=True, text=True)  # fmt: skip
    if r.returncode:
        return "docker-py is not installed for /usr/bin/python3 (Debian's python3-docker)"
    return None


class Result:
    def __init__(self, argv, p):
        self.argv, self.rc, self.out, self.err = argv, p.returncode, p.stdout, p.stderr

    def __repr__(self):
        return (f"<{' '.join(map(str, self.argv))}: rc={self.rc} out={self.out[-1500:]!r}"
                f" err={self.err[-1500:]!r}>")  # fmt: skip


class Api:
    """The service on a socket of its own, and the clients pointed at it."""

    def __init__(self, sj, netns, tmp):
        self.sj, self.netns = sj, netns
        self.tmp = str(tmp)
        # short: unix socket paths must stay under 108 bytes
        self.w = tempfile.mkdtemp(prefix="sjapi-", dir="/tmp")
        self.sock = os.path.join(self.w, "docker.sock")
        self.log = os.path.join(self.tmp, "service.log")
        self.proc = None
        self.env = {k: v for k, v in sj.env.items() if not k.startswith("DOCKER_")}
        self.env.update(DOCKER_HOST=f"unix://{self.sock}",
                        DOCKER_CONFIG=os.path.join(self.tmp, "docker-config"))  # fmt: skip

    # ---- the service -------------------------------------------------------------------
    def argv(self, *extra):
        return [sangja_binary(), "--root", self.sj.run_root, "system", "service", "--socket",
                self.sock, *extra]  # fmt: skip

    def start(self, *extra):
        log = open(self.log, "ab")
        with self.netns.entered():
            self.proc = subprocess.Popen(self.argv(*extra), env=self.sj.env,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)  # fmt: skip
        log.close()
        end = time.monotonic() + GUARD
        while not self.listening():
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"the service did not start: {self.log_tail()}")
            time.sleep(0.02)

    def listening(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(self.sock)
            return True
        except OSError:
            return False
        finally:
            s.close()

    def stop(self):
        """SIGTERM; -> its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(GUARD)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code, self.proc = self.proc.returncode, None
        return code

    def log_tail(self, n=20):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.w, ignore_errors=True)

    # ---- the docker CLI ----------------------------------------------------------------
    def docker(self, *args, input=None, timeout=TIMEOUT, env=None, cwd=None):
        argv = [DOCKER, *args]
        p = subprocess.run(argv, input=input, capture_output=True, text=True,
                           env=dict(self.env, **(env or {})), timeout=timeout,
                           cwd=cwd)  # fmt: skip
        return Result(["docker", *args], p)

    def ok(self, *args, **kw):
        r = self.docker(*args, **kw)
        assert r.rc == 0, r
        return r.out

    def fail(self, *args, **kw):
        r = self.docker(*args, **kw)
        assert r.rc != 0, r
        return r

    def json(self, *args):
        return json.loads(self.ok(*args))

    def raw(self, *args, input=None, timeout=TIMEOUT):
        """The CLI with bytes in and out."""
        p = subprocess.run([DOCKER, *args], input=input, capture_output=True, env=self.env,
                           timeout=timeout)  # fmt: skip
        return Result(["docker", *args], p)

    # ---- docker-compose, docker-py ------------------------------------------------------
    def compose(self, project_dir, *args, timeout=TIMEOUT):
        p = subprocess.run([COMPOSE, *args], capture_output=True, text=True, env=self.env,
                           timeout=timeout, cwd=project_dir)  # fmt: skip
        return Result(["docker-compose", *args], p)

    def python(self, script, *args, timeout=TIMEOUT):
        """A script run by the system's python3 (its docker-py)."""
        p = subprocess.run([SYSTEM_PYTHON, "-c", script, *args], capture_output=True,
                           text=True, env=self.env, timeout=timeout)  # fmt: skip
        return Result(["python3", "-c", "..."], p)


def wait_for(cond, what, guard=GUARD, step=0.05):
    """Poll until cond() is true (a hang guard, never an assertion about speed)."""
    end = time.monotonic() + guard
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(step)


@contextlib.contextmanager
def pty_run(env, argv, rows=24, cols=80):
    """A client on a pty of our own (tests/engine's Terminal for any program)."""
    import fcntl
    import pty
    import struct
    import termios

    pid, fd = pty.fork()
    if pid == 0:
        os.execve(argv[0], argv, env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    t = PtyClient(pid, fd)
    try:
        yield t
    finally:
        t.close()


class PtyClient(PtyIO):
    def __init__(self, pid, fd):
        self.pid, self.fd = pid, fd
        self.out = b""
        self.code = None

    def resize(self, rows, cols):
        import fcntl
        import struct
        import termios

        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        os.kill(self.pid, signal.SIGWINCH)

    def wait(self, guard=GUARD):
        """The client's exit code (reading what is left meanwhile)."""
        import select

        end = time.monotonic() + guard
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.code = os.waitstatus_to_exitcode(status)
                with contextlib.suppress(OSError):
                    while True:
                        r, _, _ = select.select([self.fd], [], [], 0.05)
                        if not r:
                            break
                        b = os.read(self.fd, 4096)
                        if not b:
                            break
                        self.out += b
                return self.code
            if time.monotonic() > end:
                raise AssertionError(f"the client did not exit: {self.out[-800:]!r}")
            r, _, _ = select.select([self.fd], [], [], 0.1)
            if r:
                with contextlib.suppress(OSError):
                    self.out += os.read(self.fd, 4096)

    def close(self):
        if self.code is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
        with contextlib.suppress(OSError):
            os.close(self.fd)
