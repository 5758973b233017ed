"""The image store: content-addressed blobs, unpacked layers, and their metadata in SQLite.

Under the engine root ($SANGJA_ROOT, default /var/lib/sangja):
    blobs/sha256/<hex>    manifests, indexes, configs, layer blobs (only checked bytes)
    layers/<chain hex>/   unpacked layers (sangja.image.unpack), overlayfs lower dirs
    tmp/                  partial downloads (kept for a Range resume), archives being read
    sangja.db             SQLite in WAL mode: images, refs (tags and digests), layers and
                          blobs with reference counts, holds (containers using an image)
    store.lock            flock: one writer (pull, load, import, rm, prune) at a time

The database is the commit point: a blob file or a layer directory that no row names is
not trusted (it may be left by a crash before the commit) and is checked again or
removed.  Everything is synced to disk before the rows that name it are committed.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import fcntl
import os
import sqlite3
import time

from sangja.errors import SangjaError
from sangja.image import config as cfg

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id        TEXT PRIMARY KEY,     -- sha256 of the config blob
    manifest  TEXT NOT NULL,        -- the manifest digest it was last pulled/loaded by
    created   TEXT,                 -- the config's "created"
    size      INTEGER NOT NULL,     -- bytes of the unpacked layers
    platform  TEXT,
    added     REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS refs (
    name   TEXT PRIMARY KEY,        -- 'host/repo:tag' or 'host/repo@sha256:...'
    image  TEXT NOT NULL,
    kind   TEXT NOT NULL            -- 'tag' | 'digest'
);
CREATE INDEX IF NOT EXISTS refs_image ON refs(image);
CREATE TABLE IF NOT EXISTS layers (
    chain_id TEXT PRIMARY KEY,      -- hex: the directory under layers/
    diff_id  TEXT NOT NULL,
    parent   TEXT,                  -- chain id of the layer below
    blob     TEXT,                  -- the blob it was unpacked from
    size     INTEGER NOT NULL,      -- bytes of its files
    tar_size INTEGER,               -- bytes of its uncompressed tar stream
    refs     INTEGER NOT NULL       -- images using it
);
CREATE TABLE IF NOT EXISTS image_layers (
    image    TEXT NOT NULL,
    idx      INTEGER NOT NULL,
    chain_id TEXT NOT NULL,
    PRIMARY KEY (image, idx)
);
CREATE TABLE IF NOT EXISTS blobs (
    digest     TEXT PRIMARY KEY,
    size       INTEGER NOT NULL,
    media_type TEXT,
    refs       INTEGER NOT NULL     -- images referring to it
);
CREATE TABLE IF NOT EXISTS image_blobs (
    image  TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (image, digest)
);
CREATE TABLE IF NOT EXISTS holds (
    holder TEXT PRIMARY KEY,        -- a container id
    image  TEXT NOT NULL
);
"""


class StoreError(SangjaError):
    pass


class ImageNotFound(StoreError):
    pass


class _Row:
    """A row as an object (plain: dataclasses cost ~9 ms to import, and the engine's
    container commands load this module)."""

    __slots__ = ()

    def __eq__(self, other):
        return type(other) is type(self) and self._values() == other._values()

    def __hash__(self):
        return hash(self._values())

    def __repr__(self):
        return f"{type(self).__name__}{self._values()!r}"

    def _values(self):
        return tuple(getattr(self, k) for k in self.__slots__)


class LayerRec(_Row):
    __slots__ = ("chain_id", "diff_id", "parent", "blob", "size", "tar_size")

    def __init__(self, chain_id: str, diff_id: str, parent: str | None, blob: str | None,
                 size: int, tar_size: int | None = None):  # fmt: skip
        self.chain_id = chain_id  # hex
        self.diff_id = diff_id
        self.parent = parent
        self.blob = blob
        self.size = size
        self.tar_size = tar_size


class ImageRec(_Row):
    __slots__ = ("id", "manifest", "created", "size", "platform", "added", "tags", "digests")

    def __init__(self, id: str, manifest: str, created: str | None, size: int,
                 platform: str | None, added: float, tags: list, digests: list):  # fmt: skip
        self.id = id
        self.manifest = manifest
        self.created = created
        self.size = size
        self.platform = platform
        self.added = added
        self.tags = tags
        self.digests = digests

    __hash__ = None  # mutable (as the dataclass it was)


def chain_ids(diff_ids: list[str]) -> list[str]:
    """OCI ChainIDs (hex): chain(L0) = diff(L0), chain(Ln) = sha256(chain(Ln-1) + ' ' + diff)."""
    import hashlib

    out, prev = [], None
    for d in diff_ids:
        prev = d if prev is None else "sha256:" + hashlib.sha256(f"{prev} {d}".encode()).hexdigest()
        out.append(prev.split(":", 1)[1])
    return out


def _hex(digest: str) -> str:
    algo, _, hx = digest.partition(":")
    if algo != "sha256" or len(hx) != 64 or not all(c in "0123456789abcdef" for c in hx):
        raise StoreError(f"unsupported digest {digest!r}")
    return hx


class Store:
    def __init__(self, root: str | None = None):
        self.root = os.path.abspath(root or cfg.root())
        self.blob_dir = os.path.join(self.root, "blobs", "sha256")
        self.layers_dir = os.path.join(self.root, "layers")
        self.tmp_dir = os.path.join(self.root, "tmp")
        self.db_path = os.path.join(self.root, "sangja.db")
        self._db: sqlite3.Connection | None = None

    # ---- set-up ---------------------------------------------------------------------
    def _dirs(self):
        try:
            for d in (self.blob_dir, self.layers_dir, self.tmp_dir):
                os.makedirs(d, mode=0o700, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create {e.filename}: {e.strerror}")

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            self._dirs()
            try:
                db = sqlite3.connect(self.db_path, timeout=60, isolation_level=None)
                if db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                    self._init_schema(db)
                db.execute("PRAGMA synchronous=FULL")
            except sqlite3.Error as e:
                raise StoreError(f"database {self.db_path}: {e}")
            self._db = db
        return self._db

    def _init_schema(self, db: sqlite3.Connection) -> None:
        """WAL mode and the tables, made by one process at a time: two processes that
        both read a new database and then both try to change it deadlock in SQLite's own
        locks, and it answers one of them "database is locked" at once, whatever the
        timeout (a `run` and a `ps` on a fresh root did)."""
        fd = os.open(self.db_path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            db.execute("PRAGMA journal_mode=WAL")
            if db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                db.executescript(SCHEMA)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        finally:
            os.close(fd)

    def close(self):
        if self._db is not None:
            self._db.close()
            self._db = None

    @contextlib.contextmanager
    def lock(self):
        """The store's writer lock (blocks while another pull/load/rm/prune runs)."""
        self._dirs()
        fd = os.open(os.path.join(self.root, "store.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                     0o600)  # fmt: skip
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._sweep()
            yield
        finally:
            os.close(fd)

    def _sweep(self) -> None:
        """What a writer killed half-way left: every writer holds lock() for all of its
        work, so once we hold it, a layer being unpacked (`layers/.tmp-*`), a layer
        unpacked but never committed (no row names it: it would have to be checked again
        anyway) or a temp file under tmp/ belongs to no one.  Partial downloads stay (a
        pull resumes them), and so do checked blobs no row names yet (a pull reuses them
        after checking their digest; `image prune` removes them)."""
        from sangja.image.unpack import TMP_PREFIX

        with contextlib.suppress(FileNotFoundError):
            names = os.listdir(self.layers_dir)
            known = None
            for name in names:
                if not name.startswith(TMP_PREFIX):
                    if known is None:
                        known = {r[0] for r in self.db.execute("SELECT chain_id FROM layers")}
                    if name in known:
                        continue
                remove_tree(os.path.join(self.layers_dir, name))
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(self.tmp_dir):
                if not name.endswith(".partial"):
                    remove_tree(os.path.join(self.tmp_dir, name))

    @contextlib.contextmanager
    def transaction(self, durable: bool = True):
        """BEGIN IMMEDIATE … COMMIT.  `durable=False` commits without waiting for the disk
        (synchronous=NORMAL in WAL mode: a power cut may lose the last commits, never
        corrupt the database, and what it keeps is a prefix of them): for the engine's
        run-time rows (containers, their endpoints and leases), which a power cut ends
        anyway.  Images, layers, networks and volumes keep the full sync."""
        db = self.db
        if not durable:
            db.execute("PRAGMA synchronous=NORMAL")
        try:
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise StoreError(f"database {self.db_path}: {e}")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            try:
                db.execute("COMMIT")
            except sqlite3.Error as e:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise StoreError(f"database {self.db_path}: commit: {e}")
        finally:
            if not durable:
                db.execute("PRAGMA synchronous=FULL")

    # ---- blobs ------------------------------------------------------------------------
    def blob_path(self, digest: str) -> str:
        return os.path.join(self.blob_dir, _hex(digest))

    def blob_known(self, digest: str) -> bool:
        """In the database: committed, checked, synced."""
        return (
            self.db.execute("SELECT 1 FROM blobs WHERE digest=?", (digest,)).fetchone() is not None
        )

    def blob_usable(self, digest: str, size: int) -> bool:
        """Known, or a file of the right size whose sha256 is right (else it is removed)."""
        if self.blob_known(digest) and os.path.exists(self.blob_path(digest)):
            return True
        path = self.blob_path(digest)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return False
        if st.st_size == size and file_digest(path) == digest:
            return True
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return False

    def partial_path(self, digest: str) -> str:
        self._dirs()
        return os.path.join(self.tmp_dir, _hex(digest) + ".partial")

    def commit_file(self, path: str, digest: str) -> str:
        """Move a checked file into blobs/sha256 (not yet named by the database)."""
        dst = self.blob_path(digest)
        try:
            os.chmod(path, 0o644)
            os.rename(path, dst)
        except OSError as e:
            raise StoreError(f"cannot store blob {digest}: {e.strerror}", errno=e.errno)
        return dst

    def put_bytes(self, data: bytes, digest: str | None = None) -> str:
        """Store small content (a manifest, a config); returns its digest."""
        import hashlib

        got = "sha256:" + hashlib.sha256(data).hexdigest()
        if digest is not None and digest != got:
            raise StoreError(f"content digest mismatch: want {digest}, got {got}")
        if self.blob_usable(got, len(data)):
            return got
        self._dirs()
        tmp = os.path.join(self.tmp_dir, f"{_hex(got)}.{os.getpid()}.new")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            self.commit_file(tmp, got)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise StoreError(f"cannot store blob {got}: {e.strerror}", errno=e.errno)
        return got

    def read_blob(self, digest: str) -> bytes:
        try:
            with open(self.blob_path(digest), "rb") as f:
                return f.read()
        except OSError as e:
            raise StoreError(f"blob {digest}: {e.strerror}")

    # ---- layers -----------------------------------------------------------------------
    def layer_path(self, chain_hex: str) -> str:
        return os.path.join(self.layers_dir, chain_hex)

    def layer(self, chain_hex: str) -> LayerRec | None:
        """The committed row of a layer whose directory is there, or None."""
        row = self.db.execute(
            "SELECT chain_id, diff_id, parent, blob, size, tar_size FROM layers WHERE chain_id=?",
            (chain_hex,),
        ).fetchone()
        if row is None or not os.path.isdir(self.layer_path(chain_hex)):
            return None
        return LayerRec(*row)

    def layer_known(self, chain_hex: str) -> bool:
        row = self.db.execute("SELECT 1 FROM layers WHERE chain_id=?", (chain_hex,)).fetchone()
        return row is not None and os.path.isdir(self.layer_path(chain_hex))

    def drop_untrusted_layer(self, chain_hex: str) -> None:
        """A layer directory no row names (a crash before the commit): remove it."""
        p = self.layer_path(chain_hex)
        if os.path.lexists(p) and not self.layer_known(chain_hex):
            remove_tree(p)

    def sync(self):
        """Everything written under the root reaches the disk (before a commit names it)."""
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            _syncfs(fd)
        finally:
            os.close(fd)

    # ---- images -----------------------------------------------------------------------
    def commit_image(self, *, image_id: str, manifest: str, created: str | None,
                     platform: str | None, layers: list[LayerRec], blobs: list[tuple],
                     refs: list[tuple[str, str]]) -> bool:  # fmt: skip
        """Name an image, its layers and blobs, and point refs at it, in one transaction.

        blobs: [(digest, size, media type)].  refs: [(name, 'tag'|'digest')].
        Returns True if the image is new."""
        self.sync()
        with self.transaction() as db:
            new = db.execute("SELECT 1 FROM images WHERE id=?", (image_id,)).fetchone() is None
            size = sum(ly.size for ly in layers)
            if new:
                db.execute(
                    "INSERT INTO images (id, manifest, created, size, platform, added)"
                    " VALUES (?,?,?,?,?,?)",
                    (image_id, manifest, created, size, platform, time.time()),
                )
                for i, ly in enumerate(layers):
                    db.execute(
                        "INSERT INTO layers (chain_id, diff_id, parent, blob, size, tar_size, refs)"
                        " VALUES (?,?,?,?,?,?,1) ON CONFLICT(chain_id) DO UPDATE SET refs=refs+1",
                        (ly.chain_id, ly.diff_id, ly.parent, ly.blob, ly.size, ly.tar_size),
                    )
                    db.execute(
                        "INSERT INTO image_layers VALUES (?,?,?)", (image_id, i, ly.chain_id)
                    )
            else:
                db.execute("UPDATE images SET manifest=? WHERE id=?", (manifest, image_id))
            for digest, bsize, mt in blobs:
                linked = db.execute(
                    "INSERT OR IGNORE INTO image_blobs VALUES (?,?)", (image_id, digest)
                ).rowcount
                db.execute(
                    "INSERT INTO blobs (digest, size, media_type, refs) VALUES (?,?,?,?)"
                    " ON CONFLICT(digest) DO UPDATE SET refs=refs+?",
                    (digest, bsize, mt, linked, linked),
                )
            for name, kind in refs:
                db.execute(
                    "INSERT INTO refs (name, image, kind) VALUES (?,?,?)"
                    " ON CONFLICT(name) DO UPDATE SET image=excluded.image, kind=excluded.kind",
                    (name, image_id, kind),
                )
        return new

    def images(self) -> list[ImageRec]:
        db = self.db
        refs: dict[str, tuple[list, list]] = {}
        for name, image, kind in db.execute("SELECT name, image, kind FROM refs ORDER BY name"):
            refs.setdefault(image, ([], []))[0 if kind == "tag" else 1].append(name)
        out = []
        for row in db.execute(
            "SELECT id, manifest, created, size, platform, added FROM images ORDER BY added DESC"
        ):
            tags, digests = refs.get(row[0], ([], []))
            out.append(ImageRec(*row, tags=tags, digests=digests))
        return out

    def image(self, image_id: str) -> ImageRec:
        for rec in self.images():
            if rec.id == image_id:
                return rec
        raise ImageNotFound(f"no such image: {image_id}")

    def resolve(self, s: str) -> str:
        """An image id (full or a unique prefix) or a reference -> the image id."""
        from sangja.image import reference

        db = self.db
        if reference.looks_like_id(s):
            hx = s.split(":", 1)[-1]
            rows = db.execute(
                "SELECT id FROM images WHERE id LIKE ?", (f"sha256:{hx}%",)
            ).fetchall()
            if len(rows) == 1 and (len(hx) >= 4 or s.startswith("sha256:")):
                return rows[0][0]
            if len(rows) > 1:
                raise StoreError(f"ambiguous image id prefix {s!r}")
        try:
            ref = reference.parse(s)
        except reference.ReferenceError:
            raise ImageNotFound(f"no such image: {s}")
        name = ref.with_digest(ref.digest) if ref.digest else ref.tagged
        row = db.execute("SELECT image FROM refs WHERE name=?", (name,)).fetchone()
        if row is None and ref.digest:  # a digest of the image's manifest, any tag
            row = db.execute(
                "SELECT id FROM images WHERE manifest=? OR id=?", (ref.digest, ref.digest)
            ).fetchone()
        if row is None:
            raise ImageNotFound(f"no such image: {s}")
        return row[0]

    def layers_of(self, image_id: str) -> list[LayerRec]:
        rows = self.db.execute(
            "SELECT l.chain_id, l.diff_id, l.parent, l.blob, l.size, l.tar_size"
            " FROM image_layers il JOIN layers l ON l.chain_id = il.chain_id"
            " WHERE il.image=? ORDER BY il.idx",
            (image_id,),
        ).fetchall()
        return [LayerRec(*r) for r in rows]

    def config_of(self, image_id: str) -> dict:
        from sangja.jsonio import loads

        return loads(self.read_blob(image_id))

    def manifest_of(self, image_id: str) -> tuple[str, bytes]:
        digest = self.db.execute("SELECT manifest FROM images WHERE id=?", (image_id,)).fetchone()
        if digest is None:
            raise ImageNotFound(f"no such image: {image_id}")
        return digest[0], self.read_blob(digest[0])

    def media_type_of(self, digest: str) -> str | None:
        row = self.db.execute("SELECT media_type FROM blobs WHERE digest=?", (digest,)).fetchone()
        return row[0] if row else None

    # ---- tags, holds, removal ----------------------------------------------------------
    def tag(self, image_id: str, name: str, kind: str = "tag") -> None:
        """Point `name` at the image: a tag ('host/repo:tag'), or (kind 'digest') the
        digest a registry knows it by ('host/repo@sha256:...', as push records it)."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO refs (name, image, kind) VALUES (?,?,?)"
                " ON CONFLICT(name) DO UPDATE SET image=excluded.image, kind=excluded.kind",
                (name, image_id, kind),
            )

    def names_with_blob(self, digest: str) -> list[str]:
        """The names (tags, digests) of the images that use a blob: where else a registry
        may have it (push mounts it from there instead of uploading it)."""
        rows = self.db.execute(
            "SELECT r.name FROM image_blobs b JOIN refs r ON r.image = b.image"
            " WHERE b.digest=? ORDER BY r.name",
            (digest,),
        ).fetchall()
        return [r[0] for r in rows]

    def hold(self, holder: str, image_id: str) -> None:
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM images WHERE id=?", (image_id,)).fetchone() is None:
                raise ImageNotFound(f"no such image: {image_id}")
            db.execute("INSERT OR REPLACE INTO holds VALUES (?,?)", (holder, image_id))

    def release(self, holder: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM holds WHERE holder=?", (holder,))

    def holders(self, image_id: str) -> list[str]:
        return [
            r[0] for r in self.db.execute("SELECT holder FROM holds WHERE image=?", (image_id,))
        ]

    def untag(self, name: str) -> str:
        """Remove one ref; -> the image id it named."""
        with self.transaction() as db:
            row = db.execute("SELECT image FROM refs WHERE name=?", (name,)).fetchone()
            if row is None:
                raise ImageNotFound(f"no such image: {name}")
            db.execute("DELETE FROM refs WHERE name=?", (name,))
        return row[0]

    def refs_of(self, image_id: str) -> list[tuple[str, str]]:
        return self.db.execute(
            "SELECT name, kind FROM refs WHERE image=? ORDER BY name", (image_id,)
        ).fetchall()

    def delete_image(self, image_id: str) -> tuple[list[str], int]:
        """Remove an image (its refs too) and whatever only it used.

        -> (deleted layer chain ids, bytes freed).  Callers hold lock()."""
        with self.transaction() as db:
            db.execute("DELETE FROM refs WHERE image=?", (image_id,))
            for (chain,) in db.execute(
                "SELECT chain_id FROM image_layers WHERE image=?", (image_id,)
            ).fetchall():
                db.execute("UPDATE layers SET refs=refs-1 WHERE chain_id=?", (chain,))
            for (digest,) in db.execute(
                "SELECT digest FROM image_blobs WHERE image=?", (image_id,)
            ).fetchall():
                db.execute("UPDATE blobs SET refs=refs-1 WHERE digest=?", (digest,))
            db.execute("DELETE FROM image_layers WHERE image=?", (image_id,))
            db.execute("DELETE FROM image_blobs WHERE image=?", (image_id,))
            db.execute("DELETE FROM images WHERE id=?", (image_id,))
            dead = self.take_unheld(db)
        return [c for c, _ in dead[0]], self.remove_unheld(dead)

    @staticmethod
    def take_unheld(db) -> tuple[list, list]:
        """In a transaction that released holds: the layers and blobs nothing holds any
        more, their rows deleted.  -> ([(chain id, size)], [(digest, size)]), for
        remove_unheld once the transaction is committed."""
        layers = db.execute("SELECT chain_id, size FROM layers WHERE refs<=0").fetchall()
        blobs = db.execute("SELECT digest, size FROM blobs WHERE refs<=0").fetchall()
        db.execute("DELETE FROM layers WHERE refs<=0")
        db.execute("DELETE FROM blobs WHERE refs<=0")
        return layers, blobs

    def remove_unheld(self, dead: tuple[list, list]) -> int:
        """The files of what take_unheld returned removed.  -> bytes freed."""
        freed = 0
        for chain, size in dead[0]:
            remove_tree(self.layer_path(chain))
            freed += size or 0
        for digest, size in dead[1]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.blob_path(digest))
            freed += size or 0
        return freed

    def collect_garbage(self) -> int:
        """Remove files no row names: blobs and layers left by a crash or a failed pull,
        partial downloads, temp files.  Callers hold lock().  -> bytes freed."""
        freed = 0
        db = self.db
        known_blobs = {r[0].split(":", 1)[1] for r in db.execute("SELECT digest FROM blobs")}
        known_layers = {r[0] for r in db.execute("SELECT chain_id FROM layers")}
        for d, known in ((self.blob_dir, known_blobs), (self.layers_dir, known_layers)):
            with contextlib.suppress(FileNotFoundError):
                for name in os.listdir(d):
                    if name not in known:
                        freed += _du(os.path.join(d, name))
                        remove_tree(os.path.join(d, name))
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(self.tmp_dir):
                freed += _du(os.path.join(self.tmp_dir, name))
                remove_tree(os.path.join(self.tmp_dir, name))
        return freed


class Staging:
    """What one pull/load/import writes before its commit, to undo it if that fails.

    Blobs go to blobs/sha256 and layers to layers/ as soon as they are checked (the
    database does not name them yet); cleanup() removes those no committed row names,
    and the partial downloads unless they are worth resuming."""

    def __init__(self, store: Store):
        self.store = store
        self.blobs: list[str] = []
        self.layers: list[str] = []
        self.partials: list[str] = []

    def add_file(self, path: str, digest: str) -> str:
        """Move a checked file in as the blob `digest`."""
        dst = self.store.commit_file(path, digest)
        self.blobs.append(digest)
        return dst

    def unpack(self, blob_path: str, chain: str, digest: str | None, diff_id: str,
               parents: list[str]):  # fmt: skip
        """Unpack a layer (if no committed row names it yet) -> UnpackResult."""
        from sangja.image.unpack import unpack_layer

        self.store.drop_untrusted_layer(chain)
        res = unpack_layer(blob_path, self.store.layers_dir, chain, digest, diff_id,
                           parents=list(parents), sync=False)  # fmt: skip
        if res.created:
            self.layers.append(chain)
        return res

    def commit(self, conf_bytes: bytes, conf: dict, manifest_bytes: bytes, manifest_type: str,
               layers: list[LayerRec], blobs: list[tuple], names: list[str]) -> str:  # fmt: skip
        """Store the config and manifest, then name the image, its layers and blobs (layer
        blobs: [(digest, size, media type)]) and tag it `names`, in one transaction.
        -> the image id."""
        import hashlib

        from sangja.image import manifest as mf

        st = self.store
        image_id = "sha256:" + hashlib.sha256(conf_bytes).hexdigest()
        mdigest = st.put_bytes(manifest_bytes)
        self.blobs.append(mdigest)
        st.put_bytes(conf_bytes, image_id)
        self.blobs.append(image_id)
        all_blobs = [(mdigest, len(manifest_bytes), manifest_type),
                     (image_id, len(conf_bytes), mf.OCI_CONFIG)] + list(blobs)  # fmt: skip
        st.commit_image(
            image_id=image_id, manifest=mdigest, created=conf.get("created"),
            platform=mf.config_platform(conf), layers=layers, blobs=all_blobs,
            refs=[(n, "tag") for n in names],
        )  # fmt: skip
        return image_id

    def cleanup(self, keep_partials: bool = False) -> None:
        st = self.store
        for chain in self.layers:
            if not self._named("SELECT 1 FROM layers WHERE chain_id=?", chain):
                remove_tree(st.layer_path(chain))
        for d in self.blobs:
            if not self._named("SELECT 1 FROM blobs WHERE digest=?", d):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(st.blob_path(d))
        if not keep_partials:
            for path in self.partials:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)

    def _named(self, sql: str, key: str) -> bool:
        try:
            return self.store.db.execute(sql, (key,)).fetchone() is not None
        except sqlite3.Error:
            return True  # when in doubt, keep


def layer_record(res, chain: str, diff_id: str, parent: str | None, blob: str | None,
                 known: LayerRec | None = None) -> LayerRec:  # fmt: skip
    """The row for a layer just unpacked (`res`), or one already committed (`known`)."""
    if known is not None:
        return LayerRec(chain, diff_id, parent, known.blob or blob, known.size, known.tar_size)
    stats = res.stats or {}
    return LayerRec(chain, diff_id, parent, blob, int(stats.get("file_bytes", 0)),
                    stats.get("tar_bytes"))  # fmt: skip


def file_digest(path: str) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(4 << 20):
            h.update(b)
    return "sha256:" + h.hexdigest()


def _du(path: str) -> int:
    try:
        st = os.lstat(path)
    except OSError:
        return 0
    if not os.path.isdir(path) or os.path.islink(path):
        return st.st_size
    total = 0
    for dirpath, _, files in os.walk(path):
        for n in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, n)).st_size
    return total


def remove_tree(path: str) -> None:
    """Remove a file or a tree whose directories may be read-only (mode 0555, 0000).

    Walked by directory fds, never through a symlink (what shutil.rmtree does too; it is
    not used because importing it costs ~10 ms, paid by every `run --rm`)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    import stat

    if not stat.S_ISDIR(st.st_mode):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    parent = os.open(os.path.dirname(os.path.abspath(path)),
                     os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # fmt: skip
    try:
        _remove_at(parent, os.path.basename(os.path.abspath(path)))
    finally:
        os.close(parent)


def _remove_at(dfd: int, name: str) -> None:
    """Remove the entry `name` of the directory `dfd` (a tree: depth first)."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, dir_fd=dfd)
    except FileNotFoundError:
        return
    except PermissionError:  # a directory of mode 0000 (not root): open it up
        os.chmod(name, 0o700, dir_fd=dfd)
        fd = os.open(name, flags, dir_fd=dfd)
    except OSError as e:
        if e.errno not in (_errno.ENOTDIR, _errno.ELOOP):
            raise
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dfd)
        return
    try:
        with os.scandir(fd) as it:
            entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
        for n, is_dir in entries:
            if is_dir:
                _remove_at(fd, n)
                continue
            try:
                os.unlink(n, dir_fd=fd)
            except FileNotFoundError:
                pass
            except PermissionError:  # a read-only directory (not root)
                os.fchmod(fd, 0o700)
                os.unlink(n, dir_fd=fd)
    finally:
        os.close(fd)
    try:
        os.rmdir(name, dir_fd=dfd)
    except FileNotFoundError:
        pass
    except PermissionError:
        os.fchmod(dfd, 0o700)
        os.rmdir(name, dir_fd=dfd)


def _syncfs(fd: int) -> None:
    try:
        from sangja._native import extract

        extract.syncfs(fd)
    except (ImportError, AttributeError):
        os.sync()
    except OSError as e:
        if e.errno != _errno.ENOSYS:
            raise StoreError(f"syncfs: {e.strerror}", errno=e.errno)
