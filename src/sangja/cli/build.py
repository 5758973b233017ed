"""`sangja build` and `sangja builder prune`: arguments and output only (the work is
sangja.engine.build's).  Loaded by cli/main.py (ENGINE_WORDS) for these two words only.

`build` ends with Docker's (classic builder's) codes: a failing RUN's own exit code, 1
for anything else; `builder` is a group of subcommands like the others (cli/groups.py)."""

from __future__ import annotations

import os
import sys

from sangja.cli.parse import UsageError, parse

BUILD_FLAGS = {
    "-t": ("tag", "m"), "--tag": ("tag", "m"),
    "-f": ("file", "v"), "--file": ("file", "v"),
    "--build-arg": ("build_arg", "m"),
    "--target": ("target", "v"),
    "--no-cache": ("no_cache", "b"),
    "--pull": ("pull", "b"),
    "--label": ("label", "m"),
    "--platform": ("platform", "v"),
    "-q": ("quiet", "b"), "--quiet": ("quiet", "b"),
    "--iidfile": ("iidfile", "v"),
    "--network": ("network", "v"),
    "--secret": ("secret", "m"),
    "--signature-policy": ("signature_policy", "v"),
    "--rm": ("rm", "b"), "--force-rm": ("force_rm", "b"),
    "--progress": ("progress", "v"),
    "-h": ("help", "b"), "--help": ("help", "b"),
}  # fmt: skip

BUILD_USAGE = """usage: sangja build [OPTIONS] PATH | -
Build an image from a Dockerfile (PATH: the context directory; -: a tar, or a Dockerfile
alone, on stdin).

  -t, --tag NAME[:TAG]       name the image (repeatable)
  -f, --file FILE            the Dockerfile (default: PATH/Dockerfile; - for stdin)
      --build-arg K[=V]      set a build-time variable (K alone: from the environment)
      --target STAGE         build up to this stage
      --no-cache             do not use the layer cache
      --pull                 always pull the base images
      --label K=V            set a label on the image (repeatable)
      --platform P           only this host's platform (others are an error)
  -q, --quiet                print only the image id
      --iidfile FILE         write the image id to FILE
      --network MODE         RUN's network: default (the default bridge; also bridge), host, none
      --secret id=ID,src=F   a secret for RUN --mount=type=secret (or env=VAR)
      --signature-policy F   content trust policy for FROM's images
"""

PRUNE_FLAGS = {
    "-a": ("all", "b"), "--all": ("all", "b"),
    "-f": ("force", "b"), "--force": ("force", "b"),
    "--filter": ("filter", "m"),
}  # fmt: skip


def main(word: str, args: list[str], g: dict) -> int:
    if word == "builder":
        from sangja.cli.groups import Sub, dispatch

        table = {"prune": Sub(PRUNE_FLAGS, "[-a] [-f] [--filter until=DURATION]",
                              "remove build cache: without -a the steps whose layers no image"
                              " uses, with -a all of it (and RUN's cache mounts)",
                              builder_prune)}  # fmt: skip
        return dispatch("builder", table, {}, args, g)
    try:
        return build(args, g)
    except UsageError as e:
        sys.stderr.write(f"sangja: {e}\n")
        return 1
    except KeyboardInterrupt as e:
        return 128 + getattr(e, "signum", 2)
    except Exception as e:
        from sangja.errors import SangjaError

        if isinstance(e, SangjaError):
            if os.environ.get("SANGJA_TRACEBACK"):
                import traceback

                traceback.print_exc()
            sys.stderr.write(f"sangja: {e}\n")
            return e.exit_code
        if isinstance(e, OSError):
            where = f" {e.filename}" if e.filename else ""
            sys.stderr.write(f"sangja: {e.strerror or e}{where}\n")
            return 1
        raise


def _kv(items, what: str, env_ok: bool = False) -> dict:
    out = {}
    for it in items or ():
        k, eq, v = it.partition("=")
        if not k:
            raise UsageError(f"invalid {what} {it!r}: want KEY=VALUE")
        if not eq and not env_ok:
            raise UsageError(f"invalid {what} {it!r}: want KEY=VALUE")
        out[k] = v if eq else None
    return out


def build(args: list[str], g: dict) -> int:
    opts, pos = parse(args, BUILD_FLAGS)
    if opts.get("help"):
        sys.stdout.write(BUILD_USAGE)
        return 0
    if len(pos) != 1:
        raise UsageError('"build" requires exactly 1 argument (a context directory, or -)')
    progress = opts.get("progress")
    if progress not in (None, "auto", "plain", "tty"):
        raise UsageError(f"invalid --progress {progress!r} (want auto, plain or tty)")
    from sangja.engine.build.builder import Builder, Options
    from sangja.engine.build.mounts import parse_secret
    from sangja.image.store import Store
    from sangja.log import Log

    try:
        log = Log(g.get("log"), g.get("log_format", "text"), g.get("debug", False))
    except ValueError as e:
        raise UsageError(str(e))
    secrets = dict(parse_secret(s) for s in opts.get("secret", ()))
    o = Options(
        context=pos[0], dockerfile=opts.get("file"), tags=opts.get("tag", ()),
        build_args=_kv(opts.get("build_arg"), "--build-arg", env_ok=True),
        target=opts.get("target"), no_cache=opts.get("no_cache", False),
        pull=opts.get("pull", False), labels=_kv(opts.get("label"), "--label"),
        platform=opts.get("platform"), quiet=opts.get("quiet", False),
        iidfile=opts.get("iidfile"), network=opts.get("network") or "default",
        secrets=secrets, runtime_root=os.path.abspath(g.get("root", "/run/sangja")), log=log,
        signature_policy=opts.get("signature_policy"),
    )  # fmt: skip
    if o.context == "-" and o.dockerfile == "-":
        raise UsageError("the context and the Dockerfile cannot both be read from stdin")
    from sangja.cli.stopsignals import stop_on_signals

    stop_on_signals()  # SIGTERM/SIGHUP: the build cleans up as on Ctrl-C
    Builder(o, Store()).build()
    return 0


def builder_prune(opts: dict, pos: list[str], g: dict) -> int:
    if pos:
        raise UsageError('"builder prune" accepts no arguments')
    until = None
    for f in opts.get("filter", ()):
        k, _, v = f.partition("=")
        if k != "until":
            raise UsageError(f"invalid filter {f!r} (want until=DURATION)")
        import time

        from sangja.engine.build.instructions import InstructionError, duration

        try:
            until = time.time() - duration(v, "filter") / 1e9
        except InstructionError:
            raise UsageError(f"invalid filter {f!r}: want a duration such as 24h or 30m")
    if not opts.get("force"):
        what = "all build cache" if opts.get("all") else "all dangling build cache"
        sys.stdout.write(f"WARNING! This will remove {what}.\nAre you sure you want to"
                         " continue? [y/N] ")  # fmt: skip
        sys.stdout.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            return 0
    from sangja.engine.build import cache
    from sangja.engine.build.workspace import exclusive
    from sangja.image.progress import human
    from sangja.image.store import Store

    store = Store()
    with exclusive(store):
        keys, freed = cache.prune(store, all=opts.get("all", False), until=until)
    if keys:
        sys.stdout.write("Deleted build cache objects:\n")
        sys.stdout.write("".join(k[:25] + "\n" for k in keys))
        sys.stdout.write("\n")
    sys.stdout.write(f"Total reclaimed space: {human(freed)}\n")
    return 0
