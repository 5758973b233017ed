"""The network part's errors: each has the CLI's exit code (125, Docker's for the engine's
own errors) and the HTTP status the Docker Engine API answers with (`status`)."""

from sangja.errors import SangjaError


class NetworkError(SangjaError):
    """netavark failed, a namespace could not be made, ... (500)."""

    exit_code = 125
    status = 500


class NetworkInvalid(NetworkError):
    """A bad value: a subnet, an address, a port spec, an option (400)."""

    status = 400


class NetworkNotFound(NetworkError):
    """No such network (404)."""

    status = 404


class NetworkConflict(NetworkError):
    """A name or an address or a host port is taken; a network still in use (409)."""

    status = 409


class NetworkForbidden(NetworkError):
    """What Docker forbids outright: removing a predefined network, overlapping pools (403)."""

    status = 403
