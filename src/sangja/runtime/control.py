"""Resource control of a live container through its cgroups: pause, resume, update, events,
ps. The Runtime methods of the same names (container.py) call these with themselves: a
container is reached through Runtime.open (its record and status) and its cgroup manager.

Texts, exit codes and JSON shapes are runc's, since engines read them. The command-line
forms of these verbs (update's flags, events' --interval, ps's table) are the CLI's
(cli/runcflags.py).
"""

import time

from sangja.errors import SangjaError, StateError
from sangja.runtime import cgroups


def pause(rt, cid):
    with rt.open(cid) as c:
        if c.status not in ("running", "created"):
            raise StateError("container not running")
        cgroups.load(c.record["cgroups"]).freeze()


def resume(rt, cid):
    with rt.open(cid) as c:
        if c.status != "paused":
            raise StateError("container not paused")
        cgroups.load(c.record["cgroups"]).thaw()


def update(rt, cid, resources):
    """Change the limits of a created, running or paused container (not the device rules:
    as runc, update leaves those)."""
    if not isinstance(resources, dict):
        raise SangjaError("update: the resources must be a JSON object")
    from sangja.runtime.spec import check_strings

    check_strings(resources, "resources", prefix="update: ")  # no NUL, no lone surrogate
    with rt.open(cid) as c:
        if c.status == "stopped":
            raise StateError("container not running")
        cg = cgroups.load(c.record["cgroups"])
        cg.update({k: v for k, v in resources.items() if k != "devices"}, warn=rt.warn)


def ps(rt, cid):
    """The host pids of every process in the container's cgroup (none once stopped)."""
    with rt.open(cid, shared=True) as c:
        return [] if c.status == "stopped" else cgroups.load(c.record["cgroups"]).pids()


def events(rt, cid, interval, stats_only, emit):
    """`events`: one stats event (--stats), or stats every `interval` seconds and an oom
    event whenever the kernel OOM-kills in the container, until its cgroup is removed (v1)
    or left empty (v2). `emit(dict)` writes one event."""
    from sangja.runtime.cgroups import stats

    with rt.open(cid, shared=True) as c:  # not held while we watch: delete must not wait
        if c.status == "stopped":
            raise StateError(f"container with id {cid} is not running")
        cg = cgroups.load(c.record["cgroups"])
    if stats_only:
        emit({"type": "stats", "id": cid, "data": cg.stats()})
        return
    import select

    watch = stats.OomWatch(cg)
    try:
        p = select.poll()
        for fd, ev in watch.poll_events():
            p.register(fd, ev)
        if not watch.fds:  # no memory cgroup to watch: end when the cgroup goes
            watch.check = lambda: None if cg.exists() else "gone"
        due = time.monotonic() + interval
        while True:
            left = due - time.monotonic()
            ready = p.poll(max(left, 0) * 1000) if left > 0 else []
            what = watch.check() if ready or left <= 0 else None
            if what == "oom":
                emit({"type": "oom", "id": cid})
            elif what == "gone":
                return
            if time.monotonic() >= due:
                try:
                    data = cg.stats()
                except OSError:
                    return
                emit({"type": "stats", "id": cid, "data": data})
                due += interval
    finally:
        watch.close()
