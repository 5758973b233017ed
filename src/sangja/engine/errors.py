"""The engine's errors, each with what both faces need: the CLI's exit code (Docker's: 125
for the engine's own errors, 126/127 for a command that cannot run) and the HTTP status the
Docker Engine API gives for it (`status`: 400 bad parameter, 404 no such object, 409
conflict, 500 anything else)."""

from sangja.errors import SangjaError


class EngineError(SangjaError):
    exit_code = 125
    status = 500


class InvalidArgument(EngineError):
    status = 400


class NotFoundError(EngineError):
    status = 404


class NoSuchContainer(NotFoundError):
    pass


class NoSuchImage(NotFoundError):
    pass


class NoSuchExec(NotFoundError):
    pass


class Conflict(EngineError):
    """The object is in the wrong state, or a name is taken."""

    status = 409


class NotRunning(Conflict):
    pass


class CommandNotFound(EngineError):
    """The container's command does not exist (docker run: 127)."""

    exit_code = 127


class CommandNotRunnable(EngineError):
    """The container's command exists but cannot be run (docker run: 126)."""

    exit_code = 126


def command_error(msg: str, errno: int = 0) -> EngineError:
    """An error from starting a container's process, with docker run's exit code: 127 when
    the program is not there, 126 when it cannot be run, 125 otherwise.  From the errno
    when the runtime ran in-process, else from the runtime's text (`exec: "PROG": ...`, the
    words Go prints, which podman and docker read the same way)."""
    import errno as e

    if not errno and 'exec: "' in msg:
        text = msg.lower()
        if "executable file not found" in text or "no such file or directory" in text:
            errno = e.ENOENT
        elif "permission denied" in text or "exec format error" in text:
            errno = e.EACCES
        else:
            errno = -1
    if errno == e.ENOENT:
        return CommandNotFound(msg, errno=errno)
    if errno in (e.EACCES, e.ENOEXEC, e.EPERM):
        return CommandNotRunnable(msg, errno=errno)
    return EngineError(msg, errno=max(errno, 0))
