"""Container records: one row per container in the store's SQLite database (sangja.db, WAL),
beside the images they hold.

A row is what the engine knows; what runs is what the runtime and the monitor say.  The
lifecycle code (engine/containers.py) writes rows in one transaction per step and checks
them against the runtime before showing them (a record never claims a state the runtime
does not confirm).  Ids and names resolve as Docker resolves them: the full id, the name
(with or without a leading '/'), or a unique prefix of the id.

States: creating (a command is making it: `owner` names that process), created, running,
paused, restarting (its monitor's exit command waits out the restart back-off: `owner`),
exited, dead (could not be removed), removing.
"""

from __future__ import annotations

import os
import time

from sangja.engine.errors import Conflict, EngineError, NoSuchContainer

SCHEMA = """
CREATE TABLE IF NOT EXISTS containers (
    id          TEXT PRIMARY KEY,          -- 64 hex
    name        TEXT UNIQUE NOT NULL,
    image       TEXT NOT NULL,             -- image id (the image is held: holds table)
    image_ref   TEXT NOT NULL,             -- as the user named it
    created     REAL NOT NULL,
    body        TEXT NOT NULL,             -- JSON: {"Config", "HostConfig", "NetworkingConfig"}
    state       TEXT NOT NULL,
    pid         INTEGER NOT NULL DEFAULT 0,
    exit_code   INTEGER NOT NULL DEFAULT 0,
    started     REAL,
    finished    REAL,
    restart_count INTEGER NOT NULL DEFAULT 0,
    restart_delay REAL NOT NULL DEFAULT 0,  -- the next restart's back-off (seconds)
    oom_killed  INTEGER NOT NULL DEFAULT 0,
    error       TEXT NOT NULL DEFAULT '',
    manually_stopped INTEGER NOT NULL DEFAULT 0,
    run         INTEGER NOT NULL DEFAULT 0,  -- starts so far (the exit command names its run)
    monitor     TEXT NOT NULL DEFAULT '',    -- conmon: "pid:start time"
    owner       TEXT NOT NULL DEFAULT '',    -- who creates/waits/restarts: "pid:start time"
    health      TEXT NOT NULL DEFAULT ''     -- JSON: Docker's State.Health
);
"""

COLUMNS = (
    "id", "name", "image", "image_ref", "created", "body", "state", "pid", "exit_code",
    "started", "finished", "restart_count", "restart_delay", "oom_killed", "error",
    "manually_stopped", "run", "monitor", "owner", "health",
)  # fmt: skip
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM containers"

ACTIVE = ("running", "paused", "restarting")


class Record:
    """One row (plain class: dataclasses cost ~9 ms of import per CLI call)."""

    __slots__ = COLUMNS + ("_parsed",)

    def __init__(self, *values, **kw):
        defaults = _DEFAULTS
        for k, v in zip(COLUMNS, values, strict=False):
            setattr(self, k, v)
        for k in COLUMNS[len(values) :]:
            setattr(self, k, kw.pop(k, defaults.get(k)))
        if kw:
            raise TypeError(f"unknown fields {sorted(kw)}")
        self._parsed = None

    def __repr__(self):
        return f"Record({self.id[:12]} {self.name} {self.state})"

    @property
    def spec(self) -> dict:
        """The create body: {"Config": ..., "HostConfig": ..., "NetworkingConfig": ...}."""
        if self._parsed is None:
            from sangja import jsonio

            self._parsed = jsonio.loads(self.body)
        return self._parsed

    @property
    def config(self) -> dict:
        return self.spec["Config"]

    @property
    def host_config(self) -> dict:
        return self.spec["HostConfig"]


_DEFAULTS = {"pid": 0, "exit_code": 0, "started": None, "finished": None, "restart_count": 0,
             "restart_delay": 0.0, "oom_killed": 0, "error": "", "manually_stopped": 0,
             "run": 0, "monitor": "", "owner": "", "health": ""}  # fmt: skip


def proc_id(pid: int | None = None) -> str:
    """ "pid:start time" of a process (ours by default): names it even after pid reuse."""
    from sangja.runtime.state import proc_start_time

    pid = pid or os.getpid()
    return f"{pid}:{proc_start_time(pid)}"


def alive(pid_id: str) -> bool:
    """Is the process a "pid:start time" names still there (and not a zombie)?"""
    from sangja.runtime.state import proc_start_time

    if not pid_id:
        return False
    pid, _, start = pid_id.partition(":")
    try:
        return str(proc_start_time(int(pid))) == start
    except ValueError:
        return False


class Records:
    def __init__(self, store):
        self.store = store
        self._ready = False

    def _transaction(self):
        """The store's transaction, committed without waiting for the disk (see
        Store.transaction): a container row is checked against the runtime and the monitor
        whenever it is read, and a power cut ends every container anyway."""
        self.db  # noqa: B018 (the table exists before the transaction)
        return self.store.transaction(durable=False)

    @property
    def db(self):
        db = self.store.db
        if not self._ready:
            cols = [r[1] for r in db.execute("PRAGMA table_info(containers)")]
            if not cols or "body" not in cols:
                with self.store.transaction() as tx:
                    _migrate(tx, cols)
            self._ready = True
        return db

    # ---- reading ------------------------------------------------------------------------
    def all(self) -> list[Record]:
        return [Record(*r) for r in self.db.execute(_SELECT + " ORDER BY created DESC")]

    def get(self, cid: str) -> Record | None:
        row = self.db.execute(_SELECT + " WHERE id=?", (cid,)).fetchone()
        return Record(*row) if row else None

    def resolve(self, ref: str) -> Record:
        """A full id, a name ('/name' too) or a unique id prefix -> the record."""
        db = self.db
        if not ref:
            raise NoSuchContainer("No such container: (empty name)")
        name = ref[1:] if ref.startswith("/") else ref
        row = db.execute(_SELECT + " WHERE id=? OR name=?", (ref, name)).fetchone()
        if row:
            return Record(*row)
        if all(c in "0123456789abcdef" for c in ref):
            rows = db.execute(_SELECT + " WHERE id LIKE ?", (ref + "%",)).fetchall()
            if len(rows) == 1:
                return Record(*rows[0])
            if len(rows) > 1:
                raise EngineError(f"multiple containers match the id prefix {ref!r}: be"
                                  " more precise")  # fmt: skip
        raise NoSuchContainer(f"No such container: {ref}")

    # ---- writing ------------------------------------------------------------------------
    def insert(self, rec: Record) -> None:
        """A new container, and its hold on its image, in one transaction."""
        import sqlite3

        self.db  # noqa: B018 (the table exists before the transaction)
        values = [getattr(rec, c) for c in COLUMNS]
        try:
            with self._transaction() as db:
                if db.execute("SELECT 1 FROM images WHERE id=?", (rec.image,)).fetchone() is None:
                    from sangja.engine.errors import NoSuchImage

                    raise NoSuchImage(f"no such image: {rec.image_ref} (removed meanwhile)")
                db.execute(
                    f"INSERT INTO containers ({', '.join(COLUMNS)})"
                    f" VALUES ({', '.join('?' * len(COLUMNS))})",
                    values,
                )
                db.execute("INSERT OR REPLACE INTO holds VALUES (?,?)", (rec.id, rec.image))
        except sqlite3.IntegrityError:
            other = self.db.execute("SELECT id FROM containers WHERE name=?",
                                    (rec.name,)).fetchone()  # fmt: skip
            raise name_conflict(rec.name, other[0] if other else "")

    def update(self, cid: str, expect: tuple[str, ...] | None = None, **values) -> bool:
        """Set fields; with `expect`, only if the state is one of those (compare and set,
        for the commands that fix a record without the container's lock).  -> changed?"""
        for k in values:
            if k not in COLUMNS or k == "id":
                raise ValueError(k)
        sets = ", ".join(f"{k}=?" for k in values)
        args = list(values.values()) + [cid]
        sql = f"UPDATE containers SET {sets} WHERE id=?"
        if expect:
            sql += f" AND state IN ({', '.join('?' * len(expect))})"
            args += list(expect)
        self.db  # noqa: B018
        with self._transaction() as db:
            return db.execute(sql, args).rowcount > 0

    def rename(self, cid: str, new: str) -> None:
        import sqlite3

        self.db  # noqa: B018
        try:
            with self._transaction() as db:
                db.execute("UPDATE containers SET name=? WHERE id=?", (new, cid))
        except sqlite3.IntegrityError:
            other = self.db.execute("SELECT id FROM containers WHERE name=?",
                                    (new,)).fetchone()  # fmt: skip
            raise name_conflict(new, other[0] if other else "")

    def delete(self, cid: str, also=None):
        """The row and its hold on the image; `also(db, cid)`: what else goes with them in
        the same transaction (the container's volume references).  -> what `also` gave."""
        self.db  # noqa: B018
        with self._transaction() as db:
            db.execute("DELETE FROM holds WHERE holder=?", (cid,))
            db.execute("DELETE FROM containers WHERE id=?", (cid,))
            return also(db, cid) if also is not None else None


def name_conflict(name: str, other: str) -> Conflict:
    return Conflict(
        f'Conflict. The container name "/{name}" is already in use by container "{other}".'
        " You have to remove (or rename) that container to be able to reuse that name."
    )


def _migrate(db, cols) -> None:
    """Create the table; rows of the first engine (foreground `run` only) become exited
    containers with their image and command."""
    if cols:
        db.execute("ALTER TABLE containers RENAME TO containers_v0")
    db.execute(SCHEMA)  # one statement: executescript would commit the transaction
    if not cols:
        return
    for cid, name, image, ref, command, created, status, code in db.execute(
        "SELECT id, name, image, ref, command, created, status, exit_code FROM containers_v0"
    ).fetchall():
        from sangja import jsonio

        body = {"Config": {"Image": ref, "Cmd": jsonio.loads(command) or None},
                "HostConfig": {}, "NetworkingConfig": {}}  # fmt: skip
        db.execute(
            "INSERT INTO containers (id, name, image, image_ref, created, body, state,"
            " exit_code, finished) VALUES (?,?,?,?,?,?,?,?,?)",
            (cid, name, image, ref, created, jsonio.dumps(body),
             "exited" if status != "created" else "created",
             code if code is not None else (255 if status == "running" else 0), time.time()),
        )  # fmt: skip
    db.execute("DROP TABLE containers_v0")
