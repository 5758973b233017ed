"""The layer cache of `build`: one row per step that was built, in the store's database.

    build_cache(key, parent, config, layers, layer, created_by, size, created, last_used)

key is the sha256 of (the key of the state below -- the base image's id for the first
step --, the instruction after substitution with the build args it sees, and for
COPY/ADD the digest of every source's content and metadata).  A step whose key has a row
is not run again: its state (the image config after it, and the layers of the image so
far) is taken from the row ("---> Using cache").  A row holds a reference on the layer
its step made (layers.refs and blobs.refs, as an image does), so `image rm` of the
images built from it leaves the layer to the cache; `builder prune` drops rows and
whatever only they kept.  A row whose layers are gone (its base image removed meanwhile)
is never served: it is dropped when found.

`usage(store)` is what `system df` shows as "Build Cache" (`df_records(store)` its items,
as Docker's /system/df has them); `prune(store, ...)` is what `builder prune` and
`system prune` call.
"""

from __future__ import annotations

import contextlib
import json
import os
import time

SCHEMA = """
CREATE TABLE IF NOT EXISTS build_cache (
    key        TEXT PRIMARY KEY,   -- sha256 hex of (parent, instruction, inputs)
    parent     TEXT NOT NULL,      -- the key of the state below, or the base image id
    config     TEXT NOT NULL,      -- the image config after the step (JSON)
    layers     TEXT NOT NULL,      -- JSON [[chain id, diff id, blob digest, size, media type]]
    layer      TEXT,               -- chain id of the layer this step made (NULL: none)
    created_by TEXT NOT NULL,
    size       INTEGER NOT NULL,   -- bytes of that layer's files
    created    REAL NOT NULL,
    last_used  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS build_cache_layer ON build_cache(layer);
"""


class Entry:
    __slots__ = ("key", "parent", "config", "layers", "layer", "created_by", "size", "created",
                 "last_used")  # fmt: skip

    def __init__(self, key, parent, config, layers, layer, created_by, size, created, last_used):
        self.key, self.parent, self.layer = key, parent, layer
        self.config = json.loads(config) if isinstance(config, str) else config
        self.layers = json.loads(layers) if isinstance(layers, str) else layers
        self.created_by, self.size = created_by, size
        self.created, self.last_used = created, last_used


_ready: set[int] = set()


def _db(store):
    db = store.db
    if id(db) not in _ready:
        db.executescript(SCHEMA)
        _ready.add(id(db))
    return db


def key(parent: str, *parts: str) -> str:
    import hashlib

    h = hashlib.sha256(parent.encode())
    for p in parts:
        h.update(b"\0" + p.encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def lookup(store, k: str) -> Entry | None:
    """The entry for key k if everything it names is still in the store."""
    row = (
        _db(store)
        .execute(
            "SELECT key, parent, config, layers, layer, created_by, size, created, last_used"
            " FROM build_cache WHERE key=?",
            (k,),
        )
        .fetchone()
    )
    if row is None:
        return None
    e = Entry(*row)
    for chain, _diff, digest, _size, _mt in e.layers:
        if store.layer(chain) is None or not os.path.exists(store.blob_path(digest)):
            with store.lock():
                _drop(store, [k])
            return None
    with contextlib.suppress(Exception), store.transaction() as db:
        db.execute("UPDATE build_cache SET last_used=? WHERE key=?", (time.time(), k))
    return e


def put(db, k: str, parent: str, config: dict, layers: list, layer: str | None,
        created_by: str, size: int, blob: tuple | None = None,
        tar_size: int | None = None) -> None:  # fmt: skip
    """Record a step, inside the caller's transaction (under the store's lock).
    layers: [[chain id, diff id, blob digest, blob size, media type]] of the state;
    layer: the chain id of the one this step made (the last), size its files' bytes;
    blob: (digest, size, media type) of its blob.  Their rows are made, or their refs
    counted up.  The table exists (ready(store) ran before the transaction)."""
    now = time.time()
    if db.execute("SELECT 1 FROM build_cache WHERE key=?", (k,)).fetchone():
        # built again (--no-cache, or two builds at once): ours answers the key from now
        # on; the old entry keeps its layer (a build may still use it) under a key no
        # lookup makes, until `builder prune`
        db.execute("UPDATE build_cache SET key=? WHERE key=?", (f"{k}~{now!r}", k))
    db.execute(
        "INSERT INTO build_cache (key, parent, config, layers, layer, created_by, size,"
        " created, last_used) VALUES (?,?,?,?,?,?,?,?,?)",
        (k, parent, json.dumps(config, separators=(",", ":")), json.dumps(layers), layer,
         created_by, size, now, now),
    )  # fmt: skip
    if layer is not None and blob is not None:
        chain, diff_id = layers[-1][0], layers[-1][1]
        parent_chain = layers[-2][0] if len(layers) > 1 else None
        db.execute(
            "INSERT INTO layers (chain_id, diff_id, parent, blob, size, tar_size, refs)"
            " VALUES (?,?,?,?,?,?,1) ON CONFLICT(chain_id) DO UPDATE SET refs=refs+1",
            (chain, diff_id, parent_chain, blob[0], size, tar_size),
        )
        db.execute(
            "INSERT INTO blobs (digest, size, media_type, refs) VALUES (?,?,?,1)"
            " ON CONFLICT(digest) DO UPDATE SET refs=refs+1",
            blob,
        )


def ready(store) -> None:
    """Make the table (outside any transaction: executescript commits)."""
    _db(store)


def _drop(store, keys: list[str]) -> int:
    """Remove rows and release their layers; layers and blobs no one holds any more are
    deleted.  Callers hold store.lock().  -> bytes freed."""

    if not keys:
        return 0
    _db(store)
    with store.transaction() as db:
        for k in keys:
            row = db.execute("SELECT layers, layer FROM build_cache WHERE key=?", (k,)).fetchone()
            if row is None:
                continue
            layers, layer = json.loads(row[0]), row[1]
            if layer is not None and layers:
                digest = layers[-1][2]
                db.execute("UPDATE layers SET refs=refs-1 WHERE chain_id=?", (layer,))
                db.execute("UPDATE blobs SET refs=refs-1 WHERE digest=?", (digest,))
            db.execute("DELETE FROM build_cache WHERE key=?", (k,))
        dead = store.take_unheld(db)
    return store.remove_unheld(dead)


def entries(store) -> list[Entry]:
    rows = (
        _db(store)
        .execute(
            "SELECT key, parent, config, layers, layer, created_by, size, created, last_used"
            " FROM build_cache ORDER BY last_used DESC"
        )
        .fetchall()
    )
    return [Entry(*r) for r in rows]


def _shared_layers(db) -> set[str]:
    """Chain ids some image uses."""
    return {r[0] for r in db.execute("SELECT DISTINCT chain_id FROM image_layers")}


def usage(store) -> dict:
    """For `system df`: {"count": entries, "size": bytes of the layers the cache holds,
    "reclaimable": bytes of those no image uses (what `builder prune` frees),
    "active": entries a running build uses (0: builds hold nothing between steps)}."""
    db = _db(store)
    shared = _shared_layers(db)
    count = size = reclaimable = 0
    for layer, sz in db.execute("SELECT layer, size FROM build_cache"):
        count += 1
        if layer is None:
            continue
        size += sz or 0
        if layer not in shared:
            reclaimable += sz or 0
    return {"count": count, "size": size, "reclaimable": reclaimable, "active": 0}


def df_records(store) -> list[dict]:
    """The BuildCache items of Docker's /system/df (and `system df -v`), one per entry:
    ID, Parent, Type ("regular"), Description (the step), InUse (False: a build holds
    nothing between its steps), Shared (its layer is an image's too), Size (bytes of the
    layer it made; 0 for a config-only step), CreatedAt, LastUsedAt (RFC 3339),
    UsageCount (None: not counted)."""
    from datetime import UTC, datetime

    def when(t):
        return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")

    db = _db(store)
    shared = _shared_layers(db)
    keys = {r[0] for r in db.execute("SELECT key FROM build_cache")}
    out = []
    for e in entries(store):
        out.append({
            "ID": e.key[:25], "Parent": e.parent[:25] if e.parent in keys else "",
            "Type": "regular", "Description": e.created_by, "InUse": False,
            "Shared": e.layer is not None and e.layer in shared,
            "Size": e.size if e.layer is not None else 0,
            "CreatedAt": when(e.created), "LastUsedAt": when(e.last_used), "UsageCount": None,
        })  # fmt: skip
    return out


def prune(store, all: bool = False, until: float | None = None) -> tuple[list[str], int]:
    """Remove cache entries: without `all` only those whose layer no image uses (with
    the metadata steps on them); `until`: only those last used before that time (epoch
    seconds).  -> (keys removed, bytes freed)."""
    with store.lock():
        db = _db(store)
        shared = _shared_layers(db)
        rows = db.execute("SELECT key, parent, layer, last_used FROM build_cache").fetchall()
        children: dict[str, list] = {}
        for k, parent, _layer, _lu in rows:
            children.setdefault(parent, []).append(k)
        doomed: set[str] = set()
        for k, _parent, layer, last_used in rows:
            if until is not None and last_used >= until:
                continue
            if all or (layer is not None and layer not in shared):
                doomed.add(k)
        if not all:
            # what was built on a removed step cannot be reached any more: it goes too
            stack = list(doomed)
            while stack:
                for c in children.get(stack.pop(), ()):
                    if c not in doomed:
                        doomed.add(c)
                        stack.append(c)
        keys = sorted(doomed)
        freed = _drop(store, keys)
    prune_mounts(store, all=all)
    return keys, freed


def mounts_dir(store) -> str:
    return os.path.join(store.root, "build", "cache-mounts")


def prune_mounts(store, all: bool = True) -> int:
    """RUN --mount=type=cache directories go with the cache (Docker's builder prune
    removes them too)."""
    from sangja.image.store import remove_tree

    d = mounts_dir(store)
    n = 0
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(d):
            remove_tree(os.path.join(d, name))
            n += 1
    return n
