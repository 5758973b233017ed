"""The engine's event log: Docker's events (container create/start/die/..., image pull/tag/
delete, network connect/disconnect, volume create/mount/destroy), written by whatever
process does the action (a CLI command, a container's monitor running its exit command,
the API service) and read by `sangja system events`.

Writing, from any engine module (the whole API):

    from sangja.engine import events
    events.emit("network", "connect", network_id,
                {"name": "mynet", "type": "bridge", "container": cid})

`emit(type, action, actor_id, attributes=None, root=None)`: `type` is Docker's event type
(container, image, volume, network, daemon), `action` its verb, `actor_id` the object's id
(a network's id, a volume's name, an image's id or reference), `attributes` flat string
pairs (Docker puts a container's labels there too).  `root`: the engine root (default: the
configured one).  It never raises: an event that cannot be written is reported on stderr
and the action it describes goes on.

Where: `<engine root>/events.log`, one JSON object per line (Docker's event message:
status/id/from, Type, Action, Actor{ID, Attributes}, scope, time, timeNano), and
`events.log.1`, the previous part.  Why a file of lines rather than a SQLite table:
every writer appends one line with one write(2) on an O_APPEND descriptor, under a
flock of that file held only for the write; the lock also orders the lines by their
time stamps (taken once the lock is held), so readers see them in the order they
happened even when commands and monitors write at once.  It costs no transaction or
fsync in the paths that emit (a container's start, a monitor's exit), readers follow it
by its size alone, and a reader never blocks a writer.  Events are a log, as Docker's
are, not records: a crash may lose the last one, never corrupt the others (a torn
line is skipped by readers).  Size bound: when the file passes MAX_BYTES the writer
that notices renames it to events.log.1 (the older part is dropped), under the same lock.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time

MAX_BYTES = 4 << 20
LOG = "events.log"
TYPES = ("container", "image", "volume", "network", "daemon", "plugin", "config", "node",
         "secret", "service")  # fmt: skip
FILTER_KEYS = ("container", "event", "image", "label", "network", "type", "volume", "daemon",
               "scope")  # fmt: skip


def _root(root: str | None) -> str:
    if root:
        return root
    from sangja.image import config

    return config.root()


def log_path(root: str | None = None) -> str:
    return os.path.join(_root(root), LOG)


def emit(type: str, action: str, actor_id: str, attributes: dict | None = None,
         root: str | None = None, scope: str = "local") -> dict | None:  # fmt: skip
    """Append one event; -> the event written (None if it could not be)."""
    path = log_path(root)
    try:
        return _append(path, type, action, actor_id, attributes, scope)
    except OSError as e:
        sys.stderr.write(f"sangja: warning: event {type} {action}: {path}: {e.strerror}\n")
        return None


def _append(path, type, action, actor_id, attributes, scope) -> dict:
    from sangja import jsonio

    attrs = {str(k): str(v) for k, v in (attributes or {}).items()}
    for _ in range(10):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            st = os.fstat(fd)
            if st.st_nlink == 0:  # rotated away while we waited: write to the new file
                continue
            now = time.time_ns()
            ev = {"status": action, "id": actor_id, "from": attrs.get("image", ""),
                  "Type": type, "Action": action,
                  "Actor": {"ID": actor_id, "Attributes": attrs},
                  "scope": scope, "time": now // 1_000_000_000, "timeNano": now}  # fmt: skip
            if type != "container":  # Docker's deprecated fields exist for containers only
                for k in ("status", "id", "from"):
                    del ev[k]
            elif not ev["from"]:
                del ev["from"]
            os.write(fd, (jsonio.dumps(ev) + "\n").encode())
            if st.st_size > MAX_BYTES:
                os.rename(path, path + ".1")
            return ev
        finally:
            os.close(fd)
    raise OSError(0, "the log kept being rotated", path)


# ---- reading ----------------------------------------------------------------------------


def parse_filters(items) -> dict[str, list[str]]:
    """['type=container', 'event=die'] (CLI) or {"type": [...]} (API) -> dict.  ValueError."""
    if isinstance(items, dict):
        out = {k: list(v) for k, v in items.items()}
    else:
        out: dict[str, list[str]] = {}
        for it in items or ():
            k, eq, v = it.partition("=")
            if not eq:
                raise ValueError(f"bad format of filter (expected name=value): {it!r}")
            out.setdefault(k.strip().lower(), []).append(v)
    for k in out:
        if k not in FILTER_KEYS:
            raise ValueError(f"invalid filter '{k}'")
    return out


def _fuzzy(values, *candidates) -> bool:
    """Docker's FuzzyMatch: a value equal to a candidate, or a prefix of one."""
    return any(c and (c == v or c.startswith(v)) for v in values for c in candidates)


def _strip_tag(ref: str) -> str:
    name, _, tag = ref.rpartition(":")
    return name if name and "/" not in tag else ref


def matches(ev: dict, f: dict[str, list[str]]) -> bool:
    """Docker's event filters: values of one key are alternatives, keys must all match."""
    if not f:
        return True
    typ, actor = ev.get("Type", ""), ev.get("Actor") or {}
    aid, attrs = actor.get("ID", ""), actor.get("Attributes") or {}
    action = ev.get("Action", "")
    if "type" in f and typ not in f["type"]:
        return False
    if "event" in f and action not in f["event"] and action.split(":", 1)[0] not in f["event"]:
        return False
    if "scope" in f and ev.get("scope", "local") not in f["scope"]:
        return False
    if "daemon" in f and typ != "daemon":
        return False
    for key in ("container", "volume", "network"):
        if key in f and not (typ == key and _fuzzy(f[key], aid, attrs.get("name", ""))):
            return False
    if "image" in f:
        if typ == "image":
            names = (aid, attrs.get("name", ""))
        elif typ == "container":
            names = (attrs.get("image", ""),)
        else:
            return False
        wanted = set(f["image"]) | {_strip_tag(v) for v in f["image"]}
        if not any(n and (n in wanted or _strip_tag(n) in wanted) for n in names):
            return False
    if "label" in f:
        for want in f["label"]:
            k, eq, v = want.partition("=")
            if k not in attrs or (eq and attrs[k] != v):
                return False
    return True


def _lines(path: str, offset: int = 0):
    """(event, end offset) for each whole line from `offset`; a torn last line is left for
    the next read."""
    from sangja import jsonio

    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return
    pos = 0
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            return
        line = data[pos:nl]
        pos = nl + 1
        try:
            ev = jsonio.loads(line)
        except ValueError:
            continue  # a line torn by a crash
        if isinstance(ev, dict):
            yield ev, offset + pos


def read(root: str | None = None, since: float | None = None, until: float | None = None,
         filters: dict | None = None) -> list[dict]:  # fmt: skip
    """The events logged between since and until (Unix seconds, inclusive), oldest first."""
    path = log_path(root)
    out = []
    for p in (path + ".1", path):
        for ev, _ in _lines(p):
            t = ev.get("timeNano", 0) / 1e9
            if since is not None and t < since:
                continue
            if until is not None and t > until:
                continue
            if matches(ev, filters or {}):
                out.append(ev)
    return out


def follow(root: str | None = None, since: float | None = None, until: float | None = None,
           filters: dict | None = None, interval: float = 0.1,
           cancelled=None):  # fmt: skip
    """Docker's event stream: the logged events from `since` (none when it is None), then
    each new one as it is written, until `until` has passed (forever when it is None) or
    `cancelled()` is true (the API's client has gone: asked between reads)."""
    path = log_path(root)
    if since is not None:
        yield from read(root, since, until, filters)
    try:
        st = os.stat(path)
        inode, offset = st.st_ino, st.st_size
    except FileNotFoundError:
        inode, offset = None, 0
    while (until is None or time.time() <= until) and not (cancelled and cancelled()):
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        if st is not None and st.st_ino != inode:
            if inode is not None:  # rotated: finish the old part, then the new file
                yield from _tail(path + ".1", offset, since, until, filters)
            inode, offset = st.st_ino, 0
        if st is not None and st.st_size > offset:
            for ev, end in _lines(path, offset):
                offset = end
                if _keep(ev, since, until, filters):
                    yield ev
        time.sleep(interval)


def _tail(path, offset, since, until, filters):
    for ev, _ in _lines(path, offset):
        if _keep(ev, since, until, filters):
            yield ev


def _keep(ev, since, until, filters) -> bool:
    t = ev.get("timeNano", 0) / 1e9
    if until is not None and t > until:
        return False
    if since is not None and t < since:
        return False
    return matches(ev, filters or {})


def text(ev: dict) -> str:
    """Docker's default line: time (RFC 3339, nanoseconds, local zone), type, action, id,
    (attributes sorted by key)."""
    import datetime

    ns = ev.get("timeNano") or ev.get("time", 0) * 1_000_000_000
    d = datetime.datetime.fromtimestamp(ns // 1_000_000_000).astimezone()
    off = d.strftime("%z")
    zone = "Z" if off in ("+0000", "") else f"{off[:3]}:{off[3:]}"
    stamp = d.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 1_000_000_000:09d}{zone}"
    actor = ev.get("Actor") or {}
    attrs = actor.get("Attributes") or {}
    line = f"{stamp} {ev.get('Type', '')} {ev.get('Action', '')} {actor.get('ID', '')}"
    if attrs:
        line += " (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")"
    return line
