"""`exec`: a process in a running container, as Docker runs it (the Engine API's ExecConfig:
Cmd, Env, WorkingDir, User, Privileged, Tty, AttachStdin...).

The process is the container's own (its config.json process: env, user, capabilities,
no_new_privs, rlimits) with the exec's changes: Env added, WorkingDir and User replaced
(a user name resolved through the container's /etc/passwd), every capability with
Privileged.  In the foreground the runtime's Python API runs it in-process, on the
caller's stdio (or terminal), and its exit code is the command's; detached (`-d`), a
conmon of its own runs the runtime's `exec --detach` and reaps it (podman's way), and
its output is not kept (as Docker keeps none).

Exec instances (`Execs`: create, start attached or detached, inspect, resize) are what
both faces use: the CLI creates one and runs it in-process on its stdio (or detached); the
HTTP API starts one attached to a hijacked connection through its own conmon, which holds
its stdio on an attach socket (podman's way), or detached.
"""

from __future__ import annotations

import contextlib
import os

from sangja import jsonio
from sangja.engine import monitor
from sangja.engine.errors import (
    EngineError,
    InvalidArgument,
    NoSuchExec,
    NotRunning,
    command_error,
)
from sangja.errors import SangjaError

EXEC_DEFAULTS = {
    "AttachStdin": False, "AttachStdout": True, "AttachStderr": True, "DetachKeys": "",
    "Tty": False, "Env": None, "Cmd": None, "Privileged": False, "User": "",
    "WorkingDir": "",
}  # fmt: skip


def process_spec(containers, rec, body: dict) -> dict:
    """The process.json of an exec into `rec` (running: its rootfs is mounted)."""
    from sangja.engine.ocispec import host_capabilities
    from sangja.image import runspec

    paths = containers.paths(rec.id)
    try:
        with open(paths.config) as f:
            base = jsonio.loads(f.read())["process"]
    except (OSError, ValueError, KeyError) as e:
        raise EngineError(f"exec: the container's config.json: {e}")
    cmd = body.get("Cmd")
    if not cmd or not isinstance(cmd, list):
        raise EngineError("No exec command specified")
    proc = dict(base)
    proc["args"] = list(cmd)
    proc["terminal"] = bool(body.get("Tty"))
    proc["env"] = runspec.merge_env(base.get("env") or [], body.get("Env") or [])
    if body.get("Tty") and not any(e.startswith("TERM=") for e in proc["env"]):
        proc["env"].append("TERM=xterm")
    if body.get("WorkingDir"):
        if not body["WorkingDir"].startswith("/"):
            raise EngineError(f"the working directory {body['WorkingDir']!r} is not absolute")
        proc["cwd"] = body["WorkingDir"]
    if body.get("User"):
        try:
            u = runspec.resolve_user(paths.rootfs, body["User"])
        except runspec.UserError as e:
            raise EngineError(str(e))
        proc["user"] = {"uid": u.uid, "gid": u.gid}
        if u.additional_gids:
            proc["user"]["additionalGids"] = u.additional_gids
        proc["env"] = [e for e in proc["env"] if not e.startswith("HOME=")] + [f"HOME={u.home}"]
    if body.get("Privileged"):
        caps = host_capabilities()
        proc["capabilities"] = {k: list(caps) for k in ("bounding", "effective", "permitted")}
    proc.pop("consoleSize", None)
    if body.get("Tty"):
        from sangja.engine.ocispec import console_size

        size = console_size(body.get("ConsoleSize"))
        if size:
            proc["consoleSize"] = size
    return proc


def _check_running(containers, ref: str):
    rec = containers.get(ref)
    if rec.state == "paused":
        from sangja.engine.errors import Conflict

        raise Conflict(f"Container {rec.id} is paused, unpause the container before exec")
    if rec.state != "running":
        raise NotRunning(f"Container {rec.id} is not running")
    return rec


class Execs:
    """Exec instances (the Engine API's: create, then start, inspect, resize), kept as a
    directory each under the container's (`exec/<id>/`: `exec.json` the ExecConfig, then
    the process's files: process.json, its pid, its exit code, its conmon's attach socket
    and ctl fifo).  Both faces use them: the CLI's `exec` creates one and runs it on its
    own stdio (in-process) or detached; the API starts one attached to a hijacked
    connection (through conmon, as podman) or detached."""

    KEEP_FINISHED = 300.0  # seconds an ended instance stays inspectable (Docker: 5 minutes)

    def __init__(self, containers):
        self.cs = containers

    # ---- create / find -------------------------------------------------------------------
    def create(self, ref: str, body: dict) -> str:
        """ExecCreate: -> the exec id (the container must be running)."""
        body = {**EXEC_DEFAULTS, **(body or {})}
        cmd = body.get("Cmd")
        if not cmd or not isinstance(cmd, list) or not all(isinstance(c, str) for c in cmd):
            raise InvalidArgument("No exec command specified")
        if body.get("WorkingDir") and not body["WorkingDir"].startswith("/"):
            raise InvalidArgument(
                f"the working directory {body['WorkingDir']!r} is not absolute"
            )  # fmt: skip
        from sangja.engine.createconfig import check_console_size

        body["ConsoleSize"] = check_console_size(body.get("ConsoleSize"), "ConsoleSize")
        rec = _check_running(self.cs, ref)
        paths = self.cs.paths(rec.id)
        self._collect(paths)
        exec_id = os.urandom(32).hex()  # secrets.token_hex's bytes (secrets loads hashlib)
        edir = os.path.join(paths.execs, exec_id)
        os.makedirs(edir, mode=0o700)
        _write_json(os.path.join(edir, "exec.json"),
                    {"ID": exec_id, "ContainerID": rec.id, "Config": body})  # fmt: skip
        self.cs.event(rec, f"exec_create: {' '.join(cmd)}", execID=exec_id)
        return exec_id

    def _collect(self, paths) -> None:
        """Instances that ended long enough ago go (Docker forgets them too)."""
        import time

        try:
            names = os.listdir(paths.execs)
        except FileNotFoundError:
            return
        now = time.time()
        for n in names:
            try:
                ended = os.stat(os.path.join(paths.execs, n, "exit")).st_mtime
            except OSError:
                continue
            if now - ended > self.KEEP_FINISHED:
                _remove(os.path.join(paths.execs, n))

    def find(self, exec_id: str):
        """-> (container record, ExecFiles, exec.json) or NoSuchExec."""
        if not exec_id or not all(c in "0123456789abcdef" for c in exec_id) or len(exec_id) != 64:
            raise NoSuchExec(f"No such exec instance: {exec_id}")
        from sangja.engine.paths import containers_dir

        try:
            names = os.listdir(containers_dir(self.cs.root))
        except FileNotFoundError:
            names = []
        for cid in names:
            edir = os.path.join(containers_dir(self.cs.root), cid, "exec", exec_id)
            try:
                with open(os.path.join(edir, "exec.json")) as f:
                    conf = jsonio.loads(f.read())
            except (OSError, ValueError):
                continue
            rec = self.cs.records.get(cid)
            if rec is None:
                break
            return rec, monitor.ExecFiles(edir), conf
        raise NoSuchExec(f"No such exec instance: {exec_id}")

    def ids(self, cid: str) -> list[str]:
        try:
            return sorted(os.listdir(self.cs.paths(cid).execs))
        except FileNotFoundError:
            return []

    # ---- inspect ---------------------------------------------------------------------------
    def inspect(self, exec_id: str) -> dict:
        """ExecInspect."""
        rec, files, conf = self.find(exec_id)
        body = conf["Config"]
        pid = _read_int(files.pid_file)
        code = monitor.exit_status(files)
        running = bool(pid) and code is None and _pid_alive(pid)
        cmd = body.get("Cmd") or [""]
        return {
            "CanRemove": False, "ContainerID": rec.id, "DetachKeys": body.get("DetachKeys") or "",
            "ExitCode": code[0] if code else None, "ID": exec_id,
            "OpenStderr": bool(body.get("AttachStderr")),
            "OpenStdin": bool(body.get("AttachStdin")),
            "OpenStdout": bool(body.get("AttachStdout")),
            "ProcessConfig": {"arguments": list(cmd[1:]), "entrypoint": cmd[0],
                              "privileged": bool(body.get("Privileged")),
                              "tty": bool(body.get("Tty")), "user": body.get("User") or ""},
            "Running": running, "Pid": pid if running else 0,
        }  # fmt: skip

    # ---- start ---------------------------------------------------------------------------
    def _prepare(self, exec_id: str):
        """The instance checked (its container runs, it never ran) and its process.json
        written.  -> (record, files, body)."""
        rec, files, conf = self.find(exec_id)
        if os.path.exists(files.process):
            from sangja.engine.errors import Conflict

            raise Conflict(f"Error: Exec command {exec_id} has already run")
        rec = _check_running(self.cs, rec.id)
        body = conf["Config"]
        proc = process_spec(self.cs, rec, body)
        tmp = files.process + ".tmp"
        _write_json(tmp, proc)
        os.rename(tmp, files.process)
        self.cs.event(rec, f"exec_start: {' '.join(proc['args'])}", execID=exec_id)
        return rec, files, body

    def start_attached(self, exec_id: str, tty: bool | None = None) -> monitor.ExecSession:
        """Start it with its stdio on conmon's attach socket, connected before the process
        runs: -> the session (its socket, pid; `wait()` for the exit code)."""
        rec, files, body = self._prepare(exec_id)
        tty = bool(body.get("Tty")) if tty is None else tty
        try:
            return monitor.exec_attached(
                self.cs.paths(rec.id), rec.id, exec_id, files.process,
                runtime_root=self.cs.runtime_root, tty=tty,
                stdin=bool(body.get("AttachStdin")), env={"SANGJA_ROOT": self.cs.root},
            )  # fmt: skip
        except EngineError as e:
            _write_exit(files, _start_code(e))
            raise

    def start_detached(self, exec_id: str) -> int:
        """Start it in the background (its conmon reaps it and records its exit code)."""
        rec, files, body = self._prepare(exec_id)
        try:
            return monitor.exec_detached(
                self.cs.paths(rec.id), rec.id, exec_id, files.process,
                runtime_root=self.cs.runtime_root, tty=bool(body.get("Tty")),
                env={"SANGJA_ROOT": self.cs.root},
            )  # fmt: skip
        except EngineError as e:
            _write_exit(files, _start_code(e))
            raise

    def run_foreground(self, exec_id: str) -> int:
        """Run it in this process on our stdio (the CLI's `exec`): -> its exit code (126/127
        when it cannot be started, as docker exec)."""
        rec, files, body = self._prepare(exec_id)
        null = None
        try:
            if not body.get("AttachStdin"):
                null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
                saved = os.dup(0)
                os.dup2(null, 0)
            try:
                code = self.cs.rt.exec(rec.id, process=files.process, tty=bool(body.get("Tty")),
                                       pid_file=files.pid_file)  # fmt: skip
            except SangjaError as e:
                msg = str(e)
                if msg.startswith("exec failed: "):
                    msg = msg[len("exec failed: ") :]
                err = command_error(msg)
                if type(err) is EngineError:
                    err.exit_code = 126  # could not be started: docker exec's code
                _write_exit(files, err.exit_code)
                raise err from None
            _write_exit(files, code)
            self.cs.event(rec, "exec_die", execID=exec_id, exitCode=code)
            return code
        finally:
            if null is not None:
                os.dup2(saved, 0)
                os.close(saved)
                os.close(null)

    def resize(self, exec_id: str, height: int, width: int) -> None:
        _rec, files, conf = self.find(exec_id)
        if not conf["Config"].get("Tty"):
            return
        monitor.control(files, monitor.WIN_RESIZE, height, width)

    def remove(self, exec_id: str) -> None:
        _rec, files, _conf = self.find(exec_id)
        _remove(files.dir)


def _start_code(e: EngineError) -> int:
    return e.exit_code if e.exit_code in (126, 127) else 126


def _write_json(path: str, obj) -> None:
    with open(path, "w") as f:
        f.write(jsonio.dumps(obj))


def _write_exit(files, code: int) -> None:
    tmp = files.exit_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(code))
    os.rename(tmp, files.exit_file)


def _read_int(path: str) -> int:
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except (OSError, IndexError):
        return False


def _remove(path: str) -> None:
    from sangja.image.store import remove_tree

    with contextlib.suppress(OSError):
        remove_tree(path)


def run(containers, ref: str, body: dict) -> int:
    """Exec in the foreground on our stdio: -> the command's exit code (an instance made,
    run and forgotten)."""
    ex = Execs(containers)
    exec_id = ex.create(ref, body)
    try:
        return ex.run_foreground(exec_id)
    finally:
        with contextlib.suppress(SangjaError):
            ex.remove(exec_id)


def run_detached(containers, ref: str, body: dict) -> str:
    """`exec -d`: -> the exec id once the process runs (its conmon reaps it)."""
    ex = Execs(containers)
    exec_id = ex.create(ref, body)
    ex.start_detached(exec_id)
    return exec_id
