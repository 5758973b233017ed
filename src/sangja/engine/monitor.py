"""The per-container monitor: conmon (Debian's, as podman runs it).

conmon outlives the command that starts it (it double-forks and becomes a subreaper), runs
the runtime's CLI (`sangja --root R create --bundle B --pid-file P ID`, as podman's conmon
runs runc), holds the container's stdio (pipes, or the pty the runtime sends it), writes
the log (k8s-file lines: `TIME stdout|stderr F|P TEXT`, stdout and stderr kept apart),
serves the attach socket, takes terminal resizes on its `ctl` fifo, and when the
container ends writes the exit code (`monitor/exit`) and `monitor/oom` if the kernel
OOM-killed in it, then runs the engine's exit command (`sangja container cleanup`).
What conmon cannot do is said where it matters (logs.py, logfiles.py: conmon keeps one log
file; with max-file > 1 it writes to a FIFO that sangja-logwriter turns into rotated files).

Its protocol, as podman uses it:
  - fd 3 (`_OCI_SYNCPIPE=3`): one JSON line, {"data": PID} once the runtime's create
    succeeded, or {"data": -1, "message": "<the runtime's stderr>"};
  - `--full-attach`: the attach socket is `<bundle>/attach`, SOCK_SEQPACKET: each message
    from conmon is one byte (2 stdout, 3 stderr) and the data; what a client sends is the
    container's stdin; a client that disconnects closes that stdin unless conmon runs with
    `--leave-stdin-open`;
  - `<bundle>/ctl`: "1 HEIGHT WIDTH\\n" resizes the pty, "2 0 0\\n" reopens the log.
"""

from __future__ import annotations

import contextlib
import os
import time

from sangja.engine.errors import EngineError, command_error
from sangja.engine.records import alive, proc_id

CONMON_CANDIDATES = ("/usr/bin/conmon", "/usr/libexec/podman/conmon", "/usr/local/bin/conmon")
WIN_RESIZE, REOPEN_LOGS = 1, 2
STDOUT, STDERR = 2, 3  # conmon's stdpipe_t: 1 is stdin


def conmon_path() -> str:
    env = os.environ.get("SANGJA_CONMON")
    for p in (env,) if env else CONMON_CANDIDATES:
        if p and os.access(p, os.X_OK):
            return p
    raise EngineError("conmon is not installed (apt-get install conmon): the engine needs it"
                      " to run containers")  # fmt: skip


def _env(extra: dict) -> dict:
    drop = ("_OCI_", "LISTEN_", "NOTIFY_SOCKET", "SANGJA_FAILPOINT")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(extra)
    return env


def _spawn(argv: list[str], env: dict, err_path: str, cwd: str, extra=(), released=None) -> int:
    """Run conmon with /dev/null as stdin/stdout, stderr to `err_path`, the sync pipe as
    fd 3 (and `extra` fds as fds 4, 5, ...); wait for its first process (it double-forks;
    `released()` is called before that wait: what conmon needs to get there); -> the read
    end of the sync pipe."""
    r, w = os.pipe()
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        actions = [
            (os.POSIX_SPAWN_DUP2, null, 0),
            (os.POSIX_SPAWN_DUP2, null, 1),
            (os.POSIX_SPAWN_DUP2, err, 2),
            (os.POSIX_SPAWN_DUP2, w, 3),
        ] + [(os.POSIX_SPAWN_DUP2, fd, 4 + i) for i, fd in enumerate(extra)]
        # conmon writes an `oom` file into its cwd too (besides --persist-dir): start it in
        # `cwd`; posix_spawn has no chdir action, so we step there and back.
        prev = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.chdir(cwd)
            pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
        finally:
            os.fchdir(prev)
            os.close(prev)
    except BaseException:
        os.close(r)
        raise
    finally:
        os.close(w)
        os.close(null)
        os.close(err)
    if released is not None:
        try:
            released()
        except BaseException:
            os.close(r)
            os.waitpid(pid, 0)
            raise
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        os.close(r)
        raise EngineError(f"conmon failed: {_read_tail(err_path)}")
    return r


def _read_sync(fd: int) -> dict | None:
    """conmon's one JSON line on the sync pipe (None if it closed the pipe first)."""
    buf = b""
    while b"\n" not in buf:
        try:
            b = os.read(fd, 65536)
        except InterruptedError:
            continue
        if not b:
            break
        buf += b
    line = buf.split(b"\n", 1)[0].strip()
    if not line:
        return None
    from sangja import jsonio

    try:
        msg = jsonio.loads(line)
    except ValueError:
        # conmon 2.1's escaping is partial: keep the number and whatever text there is
        import re

        m = re.match(rb'\{"data": *(-?\d+)(?:, *"message": *"(.*)")?', line, re.S)
        if not m:
            raise EngineError(f"conmon: unreadable message {line[:200]!r}")
        msg = {"data": int(m.group(1)), "message": (m.group(2) or b"").decode(errors="replace")}
    return msg


def _read_tail(path: str, n: int = 4000) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read()[-n:]
    except OSError:
        return "(no output)"
    lines = [ln for ln in data.decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "(no output)"


def _runtime_error(text: str) -> EngineError:
    """The runtime's stderr ("sangja: <what>") as the engine's error, with docker run's exit
    code (127: no such program, 126: cannot run it)."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    msg = lines[-1] if lines else "the runtime failed to create the container"
    if msg.startswith("sangja: "):
        msg = msg[len("sangja: ") :]
    return command_error(msg)


class Started:
    def __init__(self, pid: int, monitor: str):
        self.pid = pid  # the container's init
        self.monitor = monitor  # conmon, "pid:start time"


def create(paths, cid: str, name: str, *, runtime_root: str, tty: bool, stdin: bool,
           stdin_once: bool, log_size_max: int, exit_command: list[str], env: dict,
           log_driver: str = "k8s-file", log_path: str | None = None,
           meanwhile=None) -> Started:  # fmt: skip
    """Start conmon for the container whose bundle is `paths.dir`: it runs the runtime's
    `create` (the init then waits for `start`) and stays to monitor.  `log_path`: where it
    writes the log instead of `paths.log` (the log writer's FIFO, logfiles.py).  -> Started
    once the runtime's create succeeded; on failure the runtime's error (126/127 for the
    command).  `meanwhile()`: called while conmon and the runtime work (the caller loads
    what it needs next instead of waiting idle; its errors are ignored: the later use meets
    them)."""
    from sangja.engine.paths import sangja_binary

    os.makedirs(paths.monitor, mode=0o700, exist_ok=True)
    for f in (paths.exit_file, paths.oom_file, paths.pid_file, paths.conmon_pid_file):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f)
    sangja = sangja_binary()
    argv = [
        conmon_path(), "--api-version", "1", "-c", cid, "-u", cid, "-n", name,
        "-r", sangja, "--runtime-arg", "--root", "--runtime-arg", runtime_root,
        "-b", paths.dir, "-p", paths.pid_file, "-P", paths.conmon_pid_file,
        "--persist-dir", paths.monitor, "--full-attach",
        "-l", "none" if log_driver == "none" else f"k8s-file:{log_path or paths.log}",
        "--log-level", "error", "--exit-command", exit_command[0],
    ]  # fmt: skip
    for a in exit_command[1:]:
        argv += ["--exit-command-arg", a]
    if log_size_max > 0:
        argv += ["--log-size-max", str(log_size_max)]
    if tty:
        argv.append("-t")
    elif stdin:
        if not stdin_once:
            argv.append("--leave-stdin-open")
        argv.append("-i")

    def during():  # as soon as conmon is started, before its first process is waited for
        if meanwhile is not None:
            with contextlib.suppress(Exception):
                meanwhile()

    r = _spawn(argv, _env(dict(env, _OCI_SYNCPIPE="3")), paths.conmon_err, paths.monitor,
               released=during)  # fmt: skip
    try:
        msg = _read_sync(r)
    finally:
        os.close(r)
    if msg is None or msg.get("data", -1) < 0:
        text = (msg or {}).get("message") or _read_tail(paths.conmon_err)
        raise _runtime_error(text)
    try:
        with open(paths.conmon_pid_file) as f:
            mpid = int(f.read().strip())
    except (OSError, ValueError):
        raise EngineError(f"conmon wrote no pid file ({paths.conmon_pid_file})")
    return Started(int(msg["data"]), proc_id(mpid))


class ExecFiles:
    """The files of one exec's conmon (its bundle: `containers/<id>/exec/<exec id>/`), named
    as a container's (exit_file, ctl, ...) so the same helpers read them."""

    def __init__(self, edir: str):
        self.dir = edir
        self.process = os.path.join(edir, "process.json")
        self.exit_file = os.path.join(edir, "exit")
        self.pid_file = os.path.join(edir, "pid")
        self.conmon_pid_file = os.path.join(edir, "conmon.pid")
        self.ctl = os.path.join(edir, "ctl")
        self.err = os.path.join(edir, "conmon.err")


def _exec_argv(cid: str, exec_id: str, files: ExecFiles, runtime_root: str, tty: bool,
               stdin: bool) -> list[str]:  # fmt: skip
    from sangja.engine.paths import sangja_binary

    argv = [
        conmon_path(), "--api-version", "1", "-c", cid, "-u", exec_id, "-e",
        "--exec-process-spec", files.process, "-r", sangja_binary(),
        "--runtime-arg", "--root", "--runtime-arg", runtime_root,
        "-b", files.dir, "-p", files.pid_file, "-P", files.conmon_pid_file,
        "--persist-dir", files.dir, "--full-attach", "-l", "none", "--log-level", "error",
    ]  # fmt: skip
    if tty:
        argv.append("-t")
    elif stdin:
        argv.append("-i")
    return argv


def _conmon_of(files: ExecFiles) -> str:
    try:
        with open(files.conmon_pid_file) as f:
            return proc_id(int(f.read().strip()))
    except (OSError, ValueError):
        return ""


def exec_detached(paths, cid: str, exec_id: str, process_file: str, *, runtime_root: str,
                  tty: bool, env: dict) -> int:  # fmt: skip
    """`exec -d`: conmon runs the runtime's `exec --detach --process FILE` and stays as the
    process's parent (it reaps it, and writes its exit code), as podman does; output is not
    kept (Docker keeps none).  -> the process's host pid."""
    files = ExecFiles(os.path.join(paths.execs, exec_id))
    os.makedirs(files.dir, mode=0o700, exist_ok=True)
    argv = _exec_argv(cid, exec_id, files, runtime_root, tty, False)
    r = _spawn(argv, _env(dict(env, _OCI_SYNCPIPE="3")), files.err, files.dir)
    try:
        msg = _read_sync(r)
    finally:
        os.close(r)
    if msg is None or msg.get("data", -1) < 0:
        raise _runtime_error((msg or {}).get("message") or _read_tail(files.err))
    return int(msg["data"])


class ExecSession:
    """An exec whose conmon waits for us: its attach socket is connected before the
    process runs (nothing it writes is lost), as podman's `--exec-attach`."""

    def __init__(self, files: ExecFiles, sock, pid: int, monitor: str):
        self.files, self.sock, self.pid, self.monitor = files, sock, pid, monitor

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code once conmon wrote it (None: timeout, or conmon gone without)."""
        got = wait_exit(self.files, self.monitor, timeout)
        return None if got is None else got[0]

    def close(self) -> None:
        self.sock.close()


def exec_attached(paths, cid: str, exec_id: str, process_file: str, *, runtime_root: str,
                  tty: bool, stdin: bool, env: dict) -> ExecSession:  # fmt: skip
    """conmon for an exec with its stdio on the attach socket: conmon's protocol
    (`_OCI_STARTPIPE`: a first write lets it go on and fork, a second one lets it run the
    runtime's exec; `_OCI_ATTACHPIPE`: it says there when its attach socket listens),
    the socket connected in between.  -> the session once the process runs."""
    files = ExecFiles(os.path.join(paths.execs, exec_id))
    os.makedirs(files.dir, mode=0o700, exist_ok=True)
    if process_file != files.process:
        os.replace(process_file, files.process)
    argv = _exec_argv(cid, exec_id, files, runtime_root, tty, stdin) + ["--exec-attach"]
    start_r, start_w = os.pipe()
    attach_r, attach_w = os.pipe()
    env = _env(dict(env, _OCI_SYNCPIPE="3", _OCI_STARTPIPE="4", _OCI_ATTACHPIPE="5"))
    sock = None
    try:
        try:
            r = _spawn(argv, env, files.err, files.dir, extra=(start_r, attach_w),
                       released=lambda: os.write(start_w, b"0"))  # fmt: skip
        finally:
            os.close(start_r)
            os.close(attach_w)
        try:
            ready = _read_sync(attach_r)
            if ready is None or ready.get("data", -1) < 0:
                raise EngineError(f"exec: conmon failed: {_read_tail(files.err)}")
            sock = AttachSocket(files)
            os.write(start_w, b"1")  # attached: now the runtime's exec
            msg = _read_sync(r)
        finally:
            os.close(r)
        if msg is None or msg.get("data", -1) < 0:
            raise _runtime_error((msg or {}).get("message") or _read_tail(files.err))
        return ExecSession(files, sock, int(msg["data"]), _conmon_of(files))
    except BaseException:
        if sock is not None:
            sock.close()
        kill(_conmon_of(files))
        raise
    finally:
        os.close(start_w)
        os.close(attach_r)


# ---- after the start ---------------------------------------------------------------------


def exit_status(paths) -> tuple[int, float] | None:
    """(exit code, when) from conmon's exit file, or None if it has not written one."""
    try:
        with open(paths.exit_file) as f:
            text = f.read().strip()
        when = os.stat(paths.exit_file).st_mtime
    except OSError:
        return None
    try:
        return int(text), when
    except ValueError:
        return None


def oom_killed(paths) -> bool:
    return os.path.exists(paths.oom_file)


def init_pidfd(runtime_root: str, cid: str) -> int | None:
    """A pidfd of the container's init (from the runtime's state, checked against pid
    reuse), or None if it is gone."""
    from sangja.runtime import state as st

    try:
        got = st.peek(runtime_root, cid)
    except (OSError, ValueError):
        return None
    return st.pidfd_for(got[0]) if got else None


def wait_exit(paths, monitor: str, timeout: float | None = None,
              init_fd: int | None = None) -> tuple[int, float] | None:  # fmt: skip
    """Wait until conmon wrote the exit file (the container ended and all its output is in
    the log and sent to attached clients).  None if `timeout` passed first, or conmon is
    gone without writing one.  `init_fd`: a pidfd of the container's init (see init_pidfd),
    the fastest word that it ended; conmon writes the file right after it reaps it.
    (pidfds, not inotify: closing an inotify instance costs an RCU grace period, ~10 ms.)"""
    import select

    end = None if timeout is None else time.monotonic() + timeout
    mon = _pidfd(monitor)
    try:
        p = select.poll()
        if init_fd is not None:
            p.register(init_fd, select.POLLIN)
        if mon is not None:
            p.register(mon, select.POLLIN)
        init_gone = init_fd is None
        while True:
            got = exit_status(paths)
            if got is not None:
                return got
            if mon is None:
                return None  # no monitor, no exit file: it will never come
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                return None
            if init_gone:  # the init is gone: the file follows within moments
                wait = 1 if left is None else max(0, min(1, int(left * 1000)))
            else:
                wait = None if left is None else max(1, int(left * 1000))
            events = dict(p.poll(wait))
            if mon in events:
                return exit_status(paths)  # conmon is gone: its file, or nothing
            if init_fd is not None and init_fd in events:
                init_gone = True
                p.unregister(init_fd)
    finally:
        if mon is not None:
            os.close(mon)


def _pidfd(pid_id: str) -> int | None:
    if not pid_id:
        return None
    pid = int(pid_id.split(":", 1)[0])
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return None
    if not alive(pid_id):  # reused between our read and the open
        os.close(fd)
        return None
    return fd


def kill(monitor: str, sig: int = 9) -> None:
    """Signal conmon (only if the process is still the one we started)."""
    fd = _pidfd(monitor)
    if fd is None:
        return
    try:
        import _signal

        _signal.pidfd_send_signal(fd, sig)
    except ProcessLookupError:
        pass
    finally:
        os.close(fd)


def wait_gone(monitor: str, timeout: float) -> bool:
    """Wait (bounded) for conmon to exit: after the container, it runs the exit command."""
    import select

    fd = _pidfd(monitor)
    if fd is None:
        return True
    try:
        p = select.poll()
        p.register(fd, select.POLLIN)
        return bool(p.poll(int(timeout * 1000)))
    finally:
        os.close(fd)


def control(paths, kind: int, height: int = 0, width: int = 0) -> bool:
    """A message on conmon's ctl fifo (resize the pty, reopen the log).  False if no conmon
    reads it."""
    try:
        fd = os.open(paths.ctl, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        os.write(fd, f"{kind} {height} {width}\n".encode())
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


class AttachSocket:
    """A client of conmon's attach socket."""

    BUF = 8192

    def __init__(self, paths):
        import _socket  # the C module: `socket` pulls in enum and selectors

        # the bundle path may be longer than a socket address allows: go through our fd
        dirfd = os.open(paths.dir, os.O_PATH | os.O_CLOEXEC)
        self.sock = _socket.socket(_socket.AF_UNIX,
                                   _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)  # fmt: skip
        try:
            self.sock.connect(f"/proc/self/fd/{dirfd}/attach")
        except OSError as e:
            self.sock.close()
            raise EngineError(f"attach: cannot reach the container's monitor: {e.strerror}",
                              errno=e.errno)  # fmt: skip
        finally:
            os.close(dirfd)

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv(self, wait: bool = True) -> tuple[int, bytes] | None:
        """(1 stdout | 2 stderr, data), or None once conmon closed the connection (or, with
        `wait` false, when nothing is there to read)."""
        import _socket

        try:
            msg = self.sock.recv(self.BUF + 1, 0 if wait else _socket.MSG_DONTWAIT)
        except (ConnectionResetError, BlockingIOError):
            return None
        if not msg:
            return None
        return (2 if msg[0] == STDERR else 1), msg[1:]

    def send(self, data: bytes) -> None:
        for i in range(0, len(data), self.BUF):
            self.sock.send(data[i : i + self.BUF])

    def close_stdin(self) -> None:
        """The container's stdin ends (conmon closes it unless told to leave it open)."""
        import _socket

        with contextlib.suppress(OSError):
            self.sock.shutdown(_socket.SHUT_WR)

    def close(self) -> None:
        self.sock.close()
