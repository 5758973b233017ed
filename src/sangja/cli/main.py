"""sangja's command line: runc's verbs and flags, and the engine's management commands.

Parsing is a small table (argparse alone costs more to import than a warm `runc state`).
Every flag takes `--flag v` and `--flag=v`; Go-style `-flag` works too, as in runc.
"""

import os
import sys

from sangja.cli.parse import UsageError, parse

# name -> (canonical, kind): kind "v" takes a value, "b" is a boolean, "m" repeats
GLOBAL_FLAGS = {
    "--root": ("root", "v"),
    "--log": ("log", "v"),
    "--log-format": ("log_format", "v"),
    "--debug": ("debug", "b"),
    "--systemd-cgroup": ("systemd_cgroup", "b"),
    "--rootless": ("rootless", "v"),
    "--criu": ("criu", "v"),
    "--storage-driver": ("storage_driver", "v"),
    "--version": ("version", "b"),
    "-v": ("version", "b"),
    "--help": ("help", "b"),
    "-h": ("help", "b"),
}

_CREATE = {
    "--bundle": ("bundle", "v"),
    "-b": ("bundle", "v"),
    "--console-socket": ("console_socket", "v"),
    "--pid-file": ("pid_file", "v"),
    "--no-pivot": ("no_pivot", "b"),
    "--no-new-keyring": ("no_new_keyring", "b"),
    "--preserve-fds": ("preserve_fds", "v"),
}

_EXEC = {
    "--process": ("process", "v"),
    "-p": ("process", "v"),
    "--tty": ("tty", "b"),
    "-t": ("tty", "b"),
    "--detach": ("detach", "b"),
    "-d": ("detach", "b"),
    "--pid-file": ("pid_file", "v"),
    "--console-socket": ("console_socket", "v"),
    "--cwd": ("cwd", "v"),
    "--env": ("env", "m"),
    "-e": ("env", "m"),
    "--user": ("user", "v"),
    "-u": ("user", "v"),
    "--additional-gids": ("additional_gids", "m"),
    "-g": ("additional_gids", "m"),
    "--cap": ("cap", "m"),
    "-c": ("cap", "m"),
    "--no-new-privs": ("no_new_privs", "b"),
    "--preserve-fds": ("preserve_fds", "v"),
    "--ignore-paused": ("ignore_paused", "b"),
    "--cgroup": ("cgroup", "m"),
    "--process-label": ("process_label", "v"),
    "--apparmor": ("apparmor", "v"),
}

# runc update's flags (cli/runcflags.py turns them into LinuxResources)
_UPDATE = {
    "--resources": ("resources", "v"),
    "-r": ("resources", "v"),
    "--blkio-weight": ("blkio_weight", "v"),
    "--cpu-period": ("cpu_period", "v"),
    "--cpu-quota": ("cpu_quota", "v"),
    "--cpu-share": ("cpu_share", "v"),
    "--cpu-shares": ("cpu_share", "v"),
    "--cpu-rt-period": ("cpu_rt_period", "v"),
    "--cpu-rt-runtime": ("cpu_rt_runtime", "v"),
    "--cpuset-cpus": ("cpuset_cpus", "v"),
    "--cpuset-mems": ("cpuset_mems", "v"),
    "--memory": ("memory", "v"),
    "--memory-reservation": ("memory_reservation", "v"),
    "--memory-swap": ("memory_swap", "v"),
    "--kernel-memory": ("kernel_memory", "v"),
    "--kernel-memory-tcp": ("kernel_memory_tcp", "v"),
    "--pids-limit": ("pids_limit", "v"),
    "--l3-cache-schema": ("l3_cache_schema", "v"),
    "--mem-bw-schema": ("mem_bw_schema", "v"),
}

COMMANDS = {
    "create": (_CREATE, "ID", "create a container from a bundle; its init waits for start"),
    "run": (
        {**_CREATE, "--detach": ("detach", "b"), "-d": ("detach", "b"), "--keep": ("keep", "b"),
         "--no-subreaper": ("no_subreaper", "b")},
        "ID",
        "create and start a container; in the foreground, exit with its exit code",
    ),  # fmt: skip
    "start": ({}, "ID", "run the user process of a created container"),
    "exec": (_EXEC, "ID CMD...", "run a process in a container (or --process FILE)"),
    "state": ({}, "ID", "print the container's state as JSON"),
    "kill": ({"--all": ("all", "b"), "-a": ("all", "b")}, "ID [SIGNAL]",
             "send a signal (default SIGTERM) to the init, or with --all to every process"),
    "delete": ({"--force": ("force", "b"), "-f": ("force", "b")}, "ID",
               "delete a stopped container (--force: kill it first)"),
    "list": ({"--format": ("format", "v"), "-f": ("format", "v"), "--quiet": ("quiet", "b"),
              "-q": ("quiet", "b")}, "", "list the containers under --root"),
    "pause": ({}, "ID", "suspend every process of the container (cgroup freezer)"),
    "resume": ({}, "ID", "resume a paused container"),
    "update": (_UPDATE, "ID", "change resource limits: -r FILE|- (LinuxResources JSON) or flags"),
    "events": ({"--stats": ("stats", "b"), "--interval": ("interval", "v")}, "ID",
               "stats every --interval (default 5s) and OOM kills as JSON; --stats: once"),
    "ps": ({"--format": ("format", "v"), "-f": ("format", "v")}, "ID [PS ARGS]",
           "the container's processes (ps -ef, or a JSON array of host pids)"),
    "spec": ({"--bundle": ("bundle", "v"), "-b": ("bundle", "v"), "--rootless": ("rootless", "b"),
              "--seccomp-default": ("seccomp_default", "b")},
             "", "write a default config.json"),
    "features": ({}, "", "print what this runtime implements (runc's features JSON)"),
}  # fmt: skip


# Docker's management commands: word -> the module that handles it (imported only for it)
ENGINE_WORDS = {
    "image": "sangja.cli.images",
    "login": "sangja.cli.images",
    "logout": "sangja.cli.images",
    "container": "sangja.cli.containers",
    "trust": "sangja.cli.trust_cli",
    "volume": "sangja.cli.volumes",
    "system": "sangja.cli.system",
    "info": "sangja.cli.system",
    "version": "sangja.cli.system",
    "network": "sangja.cli.networks",
    "build": "sangja.cli.build",
    "builder": "sangja.cli.build",
}


def usage():
    lines = [
        "usage: sangja [global options] COMMAND [options] [args]",
        "",
        "global options: --root DIR (default /run/sangja), --log FILE, --log-format text|json,",
        "                --debug, --systemd-cgroup, --version, --storage-driver overlay|vfs",
        "",
        "runtime commands (runc's):",
    ]
    for name, (_, args, doc) in COMMANDS.items():
        lines.append(f"  {name:8} {args:13} {doc}")
    lines += [
        "",
        "engine commands (Docker's): image, container, volume, network, system, info, version,"
        " build, builder, login, logout, trust (`sangja image --help`);",
        "                 system service (the Docker Engine API on a unix socket)",
    ]
    return "\n".join(lines) + "\n"


def version_text():
    from sangja import OCI_VERSION, __version__

    return f"sangja version {__version__}\ncommit: {__version__}\nspec: {OCI_VERSION}\n"


def _need_id(pos, cmd, nmax=1):
    if not pos:
        raise UsageError(f"{cmd}: requires a container id")
    if len(pos) > nmax:
        raise UsageError(f"{cmd}: too many arguments: {' '.join(pos[nmax:])}")
    return pos[0]


def _preserve_fds(opts):
    """--preserve-fds N, with the gaps in 3..N+2 filled before we open any fd of our own."""
    n = _int_opt(opts, "preserve_fds", "preserve-fds")
    if n:
        from sangja.runtime.container import reserve_preserved_fds

        reserve_preserved_fds(n)
    return n


def _int_opt(opts, key, flag):
    v = opts.get(key, 0)
    try:
        n = int(v)
    except ValueError:
        raise UsageError(f"invalid value {v!r} for --{flag}")
    if n < 0:
        raise UsageError(f"invalid value {v!r} for --{flag}")
    return n


def _runtime(g, log):
    from sangja.runtime.container import Runtime

    return Runtime(root=g.get("root") or "/run/sangja", log=log,
                   systemd_cgroup=g.get("systemd_cgroup", False))  # fmt: skip


def _create(rt, opts, pos):
    rt.create(
        _need_id(pos, "create"), opts.get("bundle", "."), pid_file=opts.get("pid_file"),
        console_socket=opts.get("console_socket"), no_pivot=opts.get("no_pivot", False),
        no_new_keyring=opts.get("no_new_keyring", False), preserve_fds=_preserve_fds(opts),
    )  # fmt: skip
    return 0


def _run(rt, opts, pos):
    return rt.run(
        _need_id(pos, "run"), opts.get("bundle", "."), pid_file=opts.get("pid_file"),
        console_socket=opts.get("console_socket"), detach=opts.get("detach", False),
        keep=opts.get("keep", False), no_pivot=opts.get("no_pivot", False),
        no_new_keyring=opts.get("no_new_keyring", False),
        preserve_fds=_preserve_fds(opts),
    )  # fmt: skip


def _start(rt, opts, pos):
    rt.start(_need_id(pos, "start"))
    return 0


def _state(rt, opts, pos):
    from sangja.jsonio import dumps_indent

    sys.stdout.write(dumps_indent(rt.state(_need_id(pos, "state"))) + "\n")
    return 0


def _kill(rt, opts, pos):
    cid = _need_id(pos, "kill", nmax=2)
    rt.kill(cid, pos[1] if len(pos) > 1 else "SIGTERM", all=opts.get("all", False))
    return 0


def _delete(rt, opts, pos):
    rt.delete(_need_id(pos, "delete"), force=opts.get("force", False))
    return 0


def _pause(rt, opts, pos):
    rt.pause(_need_id(pos, "pause"))
    return 0


def _resume(rt, opts, pos):
    rt.resume(_need_id(pos, "resume"))
    return 0


def _update(rt, opts, pos):
    from sangja.cli import runcflags

    cid = _need_id(pos, "update")
    src = opts.get("resources")
    if src is None:
        resources = runcflags.resources_from_flags(opts)
    else:  # a file, or '-' for stdin (docker); the flags are then ignored, as by runc
        from sangja import jsonio

        try:
            if src == "-":
                data = sys.stdin.buffer.read()
            else:
                with open(src, "rb") as f:
                    data = f.read()
        except OSError as e:
            raise UsageError(f"open {src}: {e.strerror.lower()}")
        try:
            resources = jsonio.loads(data)
        except ValueError as e:
            raise UsageError(f"{'stdin' if src == '-' else src}: invalid JSON: {e}")
    rt.update(cid, resources)
    return 0


def _events(rt, opts, pos):
    from sangja.gounits import parse_duration
    from sangja.jsonio import dumps

    cid = _need_id(pos, "events")
    text = opts.get("interval", "5s")
    try:
        interval = parse_duration(text)
    except ValueError:
        raise UsageError(f'invalid value "{text}" for flag -interval: parse error')
    if interval <= 0:
        raise UsageError("duration interval must be greater than 0")

    def emit(event):
        sys.stdout.write(dumps(event) + "\n")
        sys.stdout.flush()

    rt.events(cid, interval, opts.get("stats", False), emit)
    return 0


def _ps(rt, opts, pos):
    fmt = opts.get("format", "table")
    if fmt not in ("table", "json"):
        raise UsageError(f"invalid format option {fmt!r} (want table or json)")
    if not pos:
        raise UsageError("ps: requires a container id")
    cid, ps_args = pos[0], pos[1:]
    if ps_args[:1] == ["--"]:
        ps_args = ps_args[1:]
    pids = rt.ps(cid)
    if fmt == "json":
        from sangja.jsonio import dumps

        sys.stdout.write((dumps(pids) if pids else "null") + "\n")  # Go's nil slice, as runc
        return 0
    from sangja.cli.runcflags import ps_table

    sys.stdout.write(ps_table(pids, ps_args))
    return 0


def _exec(rt, opts, pos):
    if not pos:
        raise UsageError("exec: requires a container id")
    if opts.get("process") and len(pos) > 1:
        raise UsageError("exec: --process and a command cannot both be given")
    return rt.exec(
        pos[0], pos[1:], process=opts.get("process"), tty=opts.get("tty", False),
        detach=opts.get("detach", False), pid_file=opts.get("pid_file"),
        console_socket=opts.get("console_socket"), cwd=opts.get("cwd"),
        env=opts.get("env", ()), user=opts.get("user"),
        additional_gids=opts.get("additional_gids", ()), caps=opts.get("cap", ()),
        no_new_privs=opts.get("no_new_privs"),
        preserve_fds=_preserve_fds(opts),
        ignore_paused=opts.get("ignore_paused", False), cgroup=opts.get("cgroup", ()),
        process_label=opts.get("process_label"), apparmor=opts.get("apparmor"),
    )  # fmt: skip


def _list(rt, opts, pos):
    fmt = opts.get("format", "table")
    if fmt not in ("table", "json"):
        raise UsageError(f"invalid format option {fmt!r} (want table or json)")
    states = rt.list()
    if opts.get("quiet"):
        sys.stdout.write("".join(s["id"] + "\n" for s in states))
    elif fmt == "json":
        from sangja.jsonio import dumps

        sys.stdout.write(dumps(states) + "\n")
    else:
        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        rows += [(s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"],
                  s.get("owner") or "root") for s in states]  # fmt: skip
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            sys.stdout.write(
                "   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n"
            )
    return 0


def cmd_spec(opts, pos):
    import json

    from sangja.runtime.defaults import default_spec

    bundle = opts.get("bundle", ".")
    path = os.path.join(bundle, "config.json")
    if os.path.exists(path):
        raise UsageError("File config.json exists. Remove it first")
    spec = default_spec(rootless=opts.get("rootless", False))
    if opts.get("seccomp_default"):  # Docker's default profile, for the spec's capabilities
        from sangja.runtime.seccomp import default_profile

        spec["linux"]["seccomp"] = default_profile(spec["process"]["capabilities"]["bounding"])
    with open(path, "w") as f:
        json.dump(spec, f, indent="\t")
        f.write("\n")
    return 0


def _features(opts, pos):
    if pos:
        raise UsageError(f"features: too many arguments: {' '.join(pos)}")
    from sangja.runtime.features import features_json

    sys.stdout.write(features_json() + "\n")
    return 0


# verb -> handler(rt, opts, positionals) -> exit code (spec needs no runtime)
HANDLERS = {
    "create": _create,
    "run": _run,
    "start": _start,
    "exec": _exec,
    "state": _state,
    "kill": _kill,
    "delete": _delete,
    "list": _list,
    "pause": _pause,
    "resume": _resume,
    "update": _update,
    "events": _events,
    "ps": _ps,
}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    log = None
    g = {}
    engine = False
    try:
        g, rest = parse(argv, GLOBAL_FLAGS, stop_at_positional=True)
        if g.get("version"):
            sys.stdout.write(version_text())
            return 0
        if not rest or g.get("help"):
            sys.stdout.write(usage())
            return 0 if g.get("help") else 1
        cmd, args = rest[0], rest[1:]
        if g.get("storage_driver"):  # the engine reads it (image/snapshot.requested_driver)
            os.environ["SANGJA_STORAGE_DRIVER"] = g["storage_driver"]
        if cmd == "system" and args[:1] == ["service"]:  # the Engine API service
            from sangja.cli import service

            return service.main(cmd, args, g)
        engine = cmd in ENGINE_WORDS
        if engine:  # imported only for these words
            import importlib

            return importlib.import_module(ENGINE_WORDS[cmd]).main(cmd, args, g)
        if cmd not in COMMANDS:
            raise UsageError(f"unknown command {cmd!r}")
        # exec ID CMD ARGS...: what follows the id is the command's, flags included
        # ps ID PS-ARGS...: the same (ps's own flags follow the id)
        opts, pos = parse(args, COMMANDS[cmd][0], stop_at_positional=cmd in ("exec", "ps"))
        from sangja.log import Log

        try:
            log = Log(g.get("log"), g.get("log_format", "text"), g.get("debug", False))
        except ValueError as e:
            raise UsageError(str(e))
        if g.get("log"):
            if opts.get("preserve_fds"):
                _preserve_fds(opts)  # its holes filled first: the log must not take one
            try:  # now, as runc: a log that cannot be written is an error at once
                log.fileno()
            except OSError as e:
                log = None
                raise UsageError(f"open {g['log']}: {(e.strerror or str(e)).lower()}")
        if cmd == "spec":
            return cmd_spec(opts, pos)
        if cmd == "features":
            return _features(opts, pos)
        return HANDLERS[cmd](_runtime(g, log), opts, pos)
    except UsageError as e:
        return _fail(log, str(e), 1)
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        from sangja.errors import SangjaError

        if isinstance(e, SangjaError):
            return _fail(log, str(e), e.exit_code)
        if isinstance(e, OSError):
            where = f" {e.filename}" if e.filename else ""
            return _fail(log, f"{e.strerror or e}{where}", 1)
        # Anything else is a bug of ours: still one line (the trace with --debug).
        if g.get("debug"):
            import traceback

            traceback.print_exc()
        text = " ".join(str(e).split())[:300]
        # exit 125 for the engine's commands: Docker's code for an error of its own
        return _fail(log, f"internal error: {type(e).__name__}: {text}", 125 if engine else 1)


def _fail(log, msg, code):
    if log is not None:
        try:
            log.error(msg)
        except OSError:
            pass
    sys.stderr.write(f"sangja: {msg}\n")
    return code
