"""`sangja container commit` and `sangja container export` (cli/containers.py's table takes
them from here): flags in, Docker's output out; the work is engine/commit.py's."""

from __future__ import annotations

import os
import sys

from sangja.cli.groups import Sub, need
from sangja.cli.groups import containers as _cs
from sangja.cli.parse import B, M, UsageError, V, flags


def container_commit(opts, pos, g):
    need(pos, "container commit", 1, 2)
    from sangja.engine.commit import commit

    pause = opts.get("pause", True)
    from sangja.cli.stopsignals import stop_on_signals

    stop_on_signals()  # SIGTERM/SIGHUP: a paused container is resumed, as on Ctrl-C
    image_id = commit(_cs(g), pos[0], pos[1] if len(pos) > 1 else None,
                      changes=opts.get("change", ()), message=opts.get("message") or "",
                      author=opts.get("author") or "", pause=pause)  # fmt: skip
    sys.stdout.write(image_id + "\n")
    return 0


def container_export(opts, pos, g):
    need(pos, "container export", 1, 1)
    from sangja.engine.commit import export

    out = opts.get("output")
    if out in (None, "-"):
        if sys.stdout.isatty():
            raise UsageError("cowardly refusing to save to a terminal. Use the -o flag or"
                             " redirect")  # fmt: skip
        sys.stdout.flush()
        export(_cs(g), pos[0], sys.stdout.fileno())
        return 0
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        export(_cs(g), pos[0], fd)
    except BaseException:
        os.close(fd)
        fd = -1
        os.unlink(out)  # no half archive left under the name
        raise
    finally:
        if fd >= 0:
            os.close(fd)
    return 0


SUBS = {
    "commit": Sub(flags(("-c", "--change", "change", M), ("-m", "--message", "message", V),
                        ("-a", "--author", "author", V), ("-p", "--pause", "pause", B)),
                  "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
                  "a new image from a container's changes (-c: Dockerfile instructions)",
                  container_commit),
    "export": Sub(flags(("-o", "--output", "output", V)), "[-o FILE] CONTAINER",
                  "a container's root file system as a tar (stdout by default)",
                  container_export),
}  # fmt: skip
