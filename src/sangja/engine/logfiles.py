"""A container's log files when they rotate (`--log-opt max-size=S --log-opt max-file=N`,
N > 1): the writer between conmon and the files, and the files' order.

conmon 2.1.6 keeps one file (at --log-size-max it starts it again: the old records are
lost), so for N > 1 conmon's log path is a FIFO (`monitor/log.fifo`) that
`sangja-logwriter` (csrc/logwriter/) reads: it appends the records to `ctr.log` and
rotates it into `ctr.log.1` ... `ctr.log.(N-1)` (the oldest dropped), as Docker's
json-file driver does.  It is started before conmon, outlives the CLI as conmon does, and
ends when conmon closes the FIFO (the container ended, or conmon was killed).  Its pid
("pid:start time") is in `monitor/logwriter.pid`, what it says in `monitor/logwriter.err`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time

from sangja.engine.errors import EngineError

MAX_FILES = 1000  # the writer's own bound: a larger max-file is refused at create


def writer_path() -> str:
    """`sangja-logwriter` of this installation: beside our interpreter (a venv's bin/), or
    beside the `sangja` program."""
    import sys

    from sangja.engine.paths import sangja_binary

    for d in (os.path.dirname(sys.executable), os.path.dirname(os.path.realpath(sangja_binary()))):
        p = os.path.join(d, "sangja-logwriter")
        if os.access(p, os.X_OK):
            return p
    raise EngineError(f"cannot find sangja-logwriter beside {sys.executable}: reinstall sangja")


def start(paths, max_size: int, max_file: int) -> str:
    """Start the writer for the next run; -> its "pid:start time".  It then waits for
    conmon to open the FIFO (give conmon `k8s-file:<paths.log_fifo>`)."""
    os.makedirs(paths.monitor, mode=0o700, exist_ok=True)
    release(paths)  # a writer a killed start left waiting for a conmon that never came
    a = os.path.abspath  # it works from / (it holds no directory of the caller's)
    argv = [writer_path(), a(paths.log_fifo), a(paths.log), str(max_size), str(max_file),
            a(paths.logwriter_pid)]  # fmt: skip
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    err = os.open(paths.logwriter_err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        pid = os.posix_spawn(argv[0], argv, {}, file_actions=[
            (os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, null, 1),
            (os.POSIX_SPAWN_DUP2, err, 2)])  # fmt: skip
    finally:
        os.close(null)
        os.close(err)
    _, status = os.waitpid(pid, 0)  # the first process: it returns once the second runs
    ident = writer(paths)
    if os.waitstatus_to_exitcode(status) != 0 or not ident:
        raise EngineError(f"the log writer failed: {_last_line(paths.logwriter_err)}")
    return ident


def writer(paths) -> str:
    """The writer's "pid:start time" ("" if it never started)."""
    try:
        with open(paths.logwriter_pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def release(paths) -> None:
    """A writer still waiting for its conmon (the start that made it failed or was
    killed before conmon opened the FIFO) sees the FIFO opened and closed: it ends.  A
    writer already copying is not disturbed (it ends when its conmon closes the FIFO).
    Never while a start of the container may be under way (the caller holds its lock)."""
    try:
        fd = os.open(paths.log_fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # no FIFO, or no reader on it (ENXIO)
        return
    os.close(fd)


def kill(paths) -> None:
    """The container is being removed: its writer goes now (whatever it had not written
    goes with the files)."""
    from sangja.engine import monitor

    ident = writer(paths)
    if ident:
        monitor.kill(ident)


def wait_done(paths, timeout: float = 10.0) -> None:
    """Wait (bounded) until a writer that copies has written all that conmon gave it:
    after the container ended, conmon has closed the FIFO and the writer drains it.  The
    writer holds `log.fifo.lock` while it copies; one still waiting for a conmon does not."""
    try:
        fd = os.open(paths.log_fifo + ".lock", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        end = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > end:
                    return
                time.sleep(0.005)
    finally:
        os.close(fd)


def _last_line(path: str) -> str:
    with contextlib.suppress(OSError):
        with open(path, errors="replace") as f:
            lines = [ln for ln in f.read().splitlines() if ln.strip()]
        if lines:
            return lines[-1]
    return "(no output)"
