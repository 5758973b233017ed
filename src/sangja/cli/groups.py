"""The engine's management commands (`sangja image ...`, `sangja container ...`): each word
has a table of subcommands, subcommand -> Sub(flags, usage, doc, handler).  This module
parses the flags, calls the handler and turns errors into one line and Docker's exit
code: 125 for the engine's own errors in `run`/`create` (126/127 when the container's
command cannot run), 1 elsewhere."""

from __future__ import annotations

import sys

from sangja.cli.parse import B, UsageError, parse


class Sub:
    """A subcommand: its flags, usage line, one-line doc and handler(opts, positionals, g)
    -> exit code.  `stop_at_positional`: what follows the first positional is the
    command's (run IMAGE CMD..., exec CONTAINER CMD...).  (A plain class: `typing` costs
    ~10 ms to import.)"""

    __slots__ = ("flags", "usage", "doc", "handler", "stop_at_positional", "error_code")

    def __init__(self, flags, usage, doc, handler, stop_at_positional=False, error_code=1):
        self.flags, self.usage, self.doc, self.handler = flags, usage, doc, handler
        self.stop_at_positional, self.error_code = stop_at_positional, error_code


def help_text(word: str, table: dict) -> str:
    lines = [f"usage: sangja {word} COMMAND [options]", ""]
    for name, sub in table.items():
        if sub.doc:
            lines.append(f"  {name:9} {sub.usage:42} {sub.doc}")
    return "\n".join(lines) + "\n"


def sub_help(word: str, name: str, sub: Sub) -> str:
    by_key: dict[str, list[str]] = {}
    for flag, (key, _) in sub.flags.items():
        by_key.setdefault(key, []).append(flag)
    flags = "".join(f"  {', '.join(sorted(f, key=len))}\n" for f in by_key.values())
    return f"usage: sangja {word} {name} {sub.usage}\n{sub.doc}\n{flags}"


def fail(msg: str, code: int) -> int:
    sys.stderr.write(f"sangja: {msg}\n")
    return code


def dispatch(word: str, table: dict, aliases: dict, args: list[str], g: dict) -> int:
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(help_text(word, table))
        return 0 if args else 1
    name = aliases.get(args[0], args[0])
    sub = table.get(name)
    if sub is None:
        return fail(f"unknown command {word} {args[0]!r} (see `sangja {word} --help`)", 1)
    try:
        opts, pos = parse(args[1:], dict(sub.flags, **{"--help": ("help", B)}),
                          stop_at_positional=sub.stop_at_positional)  # fmt: skip
        if opts.get("help"):
            sys.stdout.write(sub_help(word, name, sub))
            return 0
        return sub.handler(opts, pos, g)
    except UsageError as e:
        return fail(str(e), sub.error_code if sub.error_code != 1 else 1)
    except KeyboardInterrupt as e:
        return 128 + getattr(e, "signum", 2)  # Ctrl-C, or cli/stopsignals.py's Stopped
    except BrokenPipeError:
        return 0
    except Exception as e:
        from sangja.errors import SangjaError

        if isinstance(e, SangjaError):
            code = e.exit_code
            if code not in (126, 127):
                code = sub.error_code if sub.error_code != 1 else 1
            return fail(str(e), code)
        if isinstance(e, OSError):
            where = f" {e.filename}" if e.filename else ""
            return fail(f"{e.strerror or e}{where}", sub.error_code)
        raise


def need(pos: list[str], cmd: str, lo: int, hi: int | None = None) -> None:
    if len(pos) < lo:
        raise UsageError(f'"{cmd}" requires at least {lo} argument{"s" if lo > 1 else ""}')
    if hi is not None and len(pos) > hi:
        raise UsageError(f'"{cmd}" requires at most {hi} argument{"s" if hi > 1 else ""}')


def containers(g):
    """The engine's Containers for this command's global flags (--root, --log, --debug)."""
    from sangja.engine.containers import Containers

    log = None
    if g.get("log") or g.get("debug"):
        from sangja.log import Log

        log = Log(g.get("log"), g.get("log_format", "text"), g.get("debug", False))
    return Containers(runtime_root=g.get("root") or "/run/sangja", log=log)
