"""Exceptions. Each carries what a user needs to act: the errno and the path or field."""


class SangjaError(Exception):
    """An error that ends a command with a one-line message and `exit_code`."""

    exit_code = 1

    def __init__(self, msg, *, errno=0, path=None):
        super().__init__(msg)
        self.errno = errno
        self.path = path


class ConfigError(SangjaError):
    """config.json (or a process.json) is malformed or asks for something invalid."""


class NotFound(SangjaError):
    """No container with that id."""


class StateError(SangjaError):
    """The container is in the wrong state for the operation."""


class LaunchError(SangjaError):
    """The init failed before it was ready; the text names the step (from C)."""

    def __init__(self, errno, msg):
        super().__init__(msg, errno=errno)


class ExecError(SangjaError):
    """`exec` could not start its process; the container is untouched. Exit 255, as runc."""

    exit_code = 255


class UnpackError(SangjaError):
    """An image layer could not be unpacked: a corrupt or hostile blob, a digest mismatch,
    a limit hit.  `path` is the tar entry concerned, when there is one (from C)."""


class PackError(SangjaError):
    """A directory tree could not be written as a layer: it changed meanwhile, holds what
    a layer cannot carry, or the output failed.  `path` is the path in the tree (from C)."""


def os_error(e: OSError, what: str) -> SangjaError:
    """Turn an OSError into a one-line SangjaError naming the operation and the path."""
    where = f" {e.filename}" if e.filename else ""
    return SangjaError(f"{what}{where}: {e.strerror}", errno=e.errno or 0, path=e.filename)


def errno_text(e: OSError) -> str:
    """An OSError's text as Go (runc) prints it, which engines match: 'no such file or
    directory'. One helper for C and Python: the launch library's (csrc/launch/error.c)."""
    if not e.errno:
        return str(e.strerror or e)
    from sangja._native import launch

    return launch.strerror(e.errno)
