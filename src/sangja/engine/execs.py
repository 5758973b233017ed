"""`exec`: a process in a running container, as Docker runs it (the Engine API's ExecConfig:
Cmd, Env, WorkingDir, User, Privileged, Tty, AttachStdin...).

The process is the container's own (its config.json process: env, user, capabilities,
no_new_privs, rlimits) with the exec's changes: Env added, WorkingDir and User replaced
(a user name resolved through the container's /etc/passwd), every capability with
Privileged.  In the foreground the runtime's Python API runs it in-process, on the
caller's stdio (or terminal), and its exit code is the command's; detached (`-d`), a
conmon of its own runs the runtime's `exec --detach` and reaps it (podman's way), and
its output is not kept (as Docker keeps none).

The HTTP API (issue 18) needs exec instances (create, start with a hijacked stream,
inspect): they go here, on top of `process_spec` and the same runtime call.
"""

from __future__ import annotations

import json
import os
import secrets

from sangja.engine import monitor
from sangja.engine.errors import EngineError, NotRunning, command_error
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
            base = json.load(f)["process"]
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
    return proc


def _check_running(containers, ref: str):
    rec = containers.get(ref)
    if rec.state == "paused":
        from sangja.engine.errors import Conflict

        raise Conflict(f"Container {rec.id} is paused, unpause the container before exec")
    if rec.state != "running":
        raise NotRunning(f"Container {rec.id} is not running")
    return rec


def run(containers, ref: str, body: dict) -> int:
    """Exec in the foreground on our stdio: -> the command's exit code (126/127 when it
    cannot be started, as docker exec)."""
    body = {**EXEC_DEFAULTS, **body}
    rec = _check_running(containers, ref)
    proc = process_spec(containers, rec, body)
    paths = containers.paths(rec.id)
    os.makedirs(paths.execs, mode=0o700, exist_ok=True)
    path = os.path.join(paths.execs, f"{secrets.token_hex(8)}.json")
    with open(path, "w") as f:
        json.dump(proc, f)
    null = None
    try:
        if not body.get("AttachStdin"):
            null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            saved = os.dup(0)
            os.dup2(null, 0)
        try:
            return containers.rt.exec(rec.id, process=path, tty=bool(body.get("Tty")))
        except SangjaError as e:
            msg = str(e)
            if msg.startswith("exec failed: "):
                msg = msg[len("exec failed: ") :]
            err = command_error(msg)
            if type(err) is EngineError:
                err.exit_code = 126  # could not be started: docker exec's code
            raise err from None
    finally:
        if null is not None:
            os.dup2(saved, 0)
            os.close(saved)
            os.close(null)
        os.unlink(path)


def run_detached(containers, ref: str, body: dict) -> str:
    """`exec -d`: -> the exec id once the process runs (its conmon reaps it)."""
    body = {**EXEC_DEFAULTS, **body}
    rec = _check_running(containers, ref)
    proc = process_spec(containers, rec, body)
    paths = containers.paths(rec.id)
    exec_id = secrets.token_hex(32)
    edir = os.path.join(paths.execs, exec_id)
    os.makedirs(edir, mode=0o700)
    path = os.path.join(edir, "process.json")
    with open(path, "w") as f:
        json.dump(proc, f)
    monitor.exec_detached(
        paths, rec.id, exec_id, path, runtime_root=containers.runtime_root,
        tty=bool(body.get("Tty")), env={"SANGJA_ROOT": containers.root},
    )  # fmt: skip
    return exec_id
