"""The network part's errors, as the engine's (engine/errors.py): each has the CLI's exit
code (125, Docker's for the engine's own errors) and the HTTP status the Docker Engine API
answers with (`status`)."""

from sangja.engine.errors import Conflict, EngineError, InvalidArgument, NotFoundError


class NetworkError(EngineError):
    """netavark failed, a namespace could not be made, ... (500)."""


class NetworkInvalid(NetworkError, InvalidArgument):
    """A bad value: a subnet, an address, a port spec, an option (400)."""

    status = 400


class NetworkNotFound(NetworkError, NotFoundError):
    """No such network (404)."""

    status = 404


class NetworkConflict(NetworkError, Conflict):
    """A name or an address or a host port is taken; a network still in use (409)."""

    status = 409


class NetworkForbidden(NetworkError):
    """What Docker forbids outright: removing a predefined network, overlapping pools (403)."""

    status = 403
