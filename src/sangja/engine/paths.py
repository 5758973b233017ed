"""Where the engine keeps things.

Engine root (`SANGJA_ROOT`, default /var/lib/sangja; the image store's root):
    containers/<id>/          one directory per container, also its OCI bundle
        config.json           the runtime spec, written at each start
        init/                 the container's own lowest-but-one layer: mount targets
                              (/etc/hosts, /etc/hostname, /etc/resolv.conf, /proc, /sys,
                              /dev), so they never show in `diff` or a commit
        upper/ work/          the overlay's writable layer and its work dir
        rootfs/               the overlay mount, while the container runs
        hostname hosts resolv.conf   bind-mounted over the container's /etc files
        ctr.log               the log conmon writes (k8s-file: "TIME STREAM P|F TEXT");
        ctr.log.1 ...         with --log-opt max-file=N > 1, the older files (newest first),
                              written by sangja-logwriter from conmon's FIFO (logfiles.py)
        attach ctl winsz      conmon's attach socket and control fifos (while it runs)
        monitor/              conmon's own: `exit` (the exit code), `oom`, pid files, and
                              what conmon says on its stderr before it detaches; the log
                              writer's `log.fifo`, `log.fifo.lock`, `logwriter.pid|err`
        exec/<exec id>/       a detached exec's conmon (its bundle path)
        storage-driver        the driver that made rootfs/ (overlay, or vfs: rootfs/ is a
                              full copy and upper/ work/ do not exist)
Runtime state lives under the runtime's root (`--root`, default /run/sangja), as for any
container of the runtime; the engine hands that root to the runtime conmon runs.
"""

from __future__ import annotations

import os
import sys


class ContainerPaths:
    def __init__(self, engine_root: str, cid: str):
        self.id = cid
        self.dir = os.path.join(engine_root, "containers", cid)

    def __getattr__(self, name):
        # the files above, by name: paths.upper, paths.log, paths.exit_file, ...
        rel = _FILES.get(name)
        if rel is None:
            raise AttributeError(name)
        return os.path.join(self.dir, rel)


_FILES = {
    "bundle": "",
    "config": "config.json",
    "init": "init",
    "upper": "upper",
    "work": "work",
    "rootfs": "rootfs",
    "hostname": "hostname",
    "hosts": "hosts",
    "resolv": "resolv.conf",
    "log": "ctr.log",
    "attach": "attach",
    "ctl": "ctl",
    "winsz": "winsz",
    "monitor": "monitor",
    "exit_file": "monitor/exit",
    "oom_file": "monitor/oom",
    "pid_file": "monitor/pid",
    "conmon_pid_file": "monitor/conmon.pid",
    "conmon_err": "monitor/conmon.err",
    "log_fifo": "monitor/log.fifo",
    "logwriter_pid": "monitor/logwriter.pid",
    "logwriter_err": "monitor/logwriter.err",
    "execs": "exec",
    "storage_driver": "storage-driver",
}


def containers_dir(engine_root: str) -> str:
    return os.path.join(engine_root, "containers")


def sangja_binary() -> str:
    """The `sangja` of this installation, by absolute path: what conmon runs (the runtime,
    and the engine's exit command).  The entry script beside our own interpreter (a venv's
    bin/), never a name looked up on PATH (other installations may be linked there).
    $SANGJA_BINARY, else the config file's `runtime`, win."""
    env = os.environ.get("SANGJA_BINARY")
    if env:
        return env
    from sangja import settings

    configured = settings.get("runtime")
    if configured:
        if not os.access(configured, os.X_OK):
            from sangja.engine.errors import EngineError

            raise EngineError(f"the config file's runtime {configured!r} is not an executable")
        return configured
    here = os.path.join(os.path.dirname(sys.executable), "sangja")
    if os.access(here, os.X_OK):
        return here
    argv0 = os.path.realpath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if os.path.basename(argv0) == "sangja" and os.access(argv0, os.X_OK):
        return argv0
    from sangja.engine.errors import EngineError

    raise EngineError(f"cannot find the sangja program beside {sys.executable}")
