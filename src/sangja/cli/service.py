"""`sangja system service [--socket PATH] [--timeout SECONDS]`: the Docker Engine API on a
unix socket (sangja.api), for the docker CLI, docker-compose, docker-py and other clients.
aiohttp and the API load only here."""

from __future__ import annotations

import sys

from sangja.cli.groups import Sub, dispatch
from sangja.cli.parse import UsageError, V, flags


def main(word: str, args: list[str], g: dict) -> int:
    return dispatch("system", SYSTEM, {}, args, g)


def service(opts, pos, g):
    from sangja.gounits import parse_duration

    if pos:
        raise UsageError(f'"system service" accepts no arguments (got {pos[0]!r})')
    t = opts.get("timeout", "0")
    try:
        timeout = float(t)
    except ValueError:
        try:
            timeout = parse_duration(t)
        except ValueError:
            raise UsageError(f'invalid argument "{t}" for "--timeout": want seconds')
    if timeout < 0:
        raise UsageError(f'invalid argument "{t}" for "--timeout": negative')
    try:
        from sangja.api import server
    except ImportError as e:
        raise UsageError(f"the API service needs aiohttp ({e}); `make install` installs it")
    sys.stderr.flush()
    return server.main(opts.get("socket"), timeout, g.get("root") or "/run/sangja")


SYSTEM = {
    "service": Sub(flags(("--socket", "socket", V), ("-t", "--timeout", "--time", "timeout", V)),
                   "[--socket PATH] [--timeout SECONDS]",
                   "serve the Docker Engine API on a unix socket (default"
                   " /run/sangja/docker.sock); --timeout N: exit after N idle seconds (0:"
                   " never)", service, error_code=125),
}  # fmt: skip
