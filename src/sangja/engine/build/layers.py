"""A stage's state between steps, and the store's side of a step: its layer written with
the C layer writer, unpacked for the next steps, and recorded in the build cache -- all
under the store's lock, synced before the row that names them is committed.

A State is what an image is: its config (with `history` and `rootfs.diff_ids`) and its
layers ([chain id, diff id, blob digest, blob size, media type], bottom first), plus the
cache key that names it.  The final state of the target becomes an image with
`to_image()`.
"""

from __future__ import annotations

import contextlib
import copy as _copy
import os
import tempfile

from sangja.engine.build import cache
from sangja.errors import SangjaError, UnpackError


class LayerError(SangjaError):
    pass


class State:
    __slots__ = ("key", "config", "layers", "base", "platform")

    def __init__(self, key: str, config: dict, layers: list, base: str | None = None,
                 platform: str | None = None):  # fmt: skip
        self.key = key
        self.config = config
        self.layers = layers
        self.base = base  # the image id the stage started from (None: scratch)
        self.platform = platform

    @property
    def run_config(self) -> dict:
        c = self.config.get("config")
        if not isinstance(c, dict):
            c = self.config["config"] = {}
        return c

    def lowers(self, store) -> list[str]:
        """The layer directories, topmost first (overlay's lowerdir order)."""
        return [store.layer_path(ly[0]) for ly in reversed(self.layers)]

    def derive(self, key: str, created_by: str, created: str, changes: dict | None = None,
               empty: bool = True) -> State:  # fmt: skip
        """The state after a step that makes no layer: config changed, history entry."""
        conf = _copy.deepcopy(self.config)
        rc = conf.setdefault("config", {})
        for k, v in (changes or {}).items():
            if v is None:
                rc.pop(k, None)
            else:
                rc[k] = v
        entry = {"created": created, "created_by": created_by}
        if empty:
            entry["empty_layer"] = True
        conf.setdefault("history", []).append(entry)
        conf["created"] = created
        return State(key, conf, list(self.layers), self.base, self.platform)


def from_image(store, image_id: str, key: str) -> State:
    from sangja.image import manifest as mf

    conf = store.config_of(image_id)
    mdigest, mbytes = store.manifest_of(image_id)
    mt, doc = mf.parse(mbytes, store.media_type_of(mdigest) or "")
    descs = mf.Manifest.from_doc(mt, doc).layers
    recs = store.layers_of(image_id)
    if len(recs) != len(descs):
        raise LayerError(f"image {image_id}: {len(recs)} layers in the store, {len(descs)}"
                         " in its manifest")  # fmt: skip
    layers = [[r.chain_id, r.diff_id, d.digest, d.size, d.media_type]
              for r, d in zip(recs, descs, strict=True)]  # fmt: skip
    conf = _copy.deepcopy(conf)
    # a base without (enough) history: an entry for each of its layers
    history = [h for h in conf.get("history") or [] if isinstance(h, dict)]
    missing = len(layers) - sum(1 for h in history if not h.get("empty_layer"))
    conf["history"] = [{} for _ in range(max(0, missing))] + history
    conf.setdefault("config", {})
    return State(key, conf, layers, image_id, _platform(conf))


def scratch(platform: str | None) -> State:
    from sangja.image import manifest as mf

    plat = mf.parse_platform(platform)
    conf = {"architecture": plat.architecture, "os": plat.os, "config": {},
            "rootfs": {"type": "layers", "diff_ids": []}, "history": []}  # fmt: skip
    if plat.variant:
        conf["variant"] = plat.variant
    return State(cache.key("scratch", f"{plat.os}/{plat.architecture}/{plat.variant or ''}"),
                 conf, [], None, _platform(conf))  # fmt: skip


def _platform(conf: dict) -> str:
    p = f"{conf.get('os', 'linux')}/{conf.get('architecture', '')}"
    return p + (f"/{conf['variant']}" if conf.get("variant") else "")


def from_entry(e: cache.Entry, base: State) -> State:
    return State(e.key, e.config, e.layers, base.base, base.platform)


def _created_by(state: State) -> str:
    h = state.config.get("history") or [{}]
    return h[-1].get("created_by", "")


def commit_layer(store, parent: State, key: str, upper: str, created_by: str, created: str,
                 source_date_epoch: int | None = None) -> State:  # fmt: skip
    """The tree at `upper` as the next layer on `parent`: blob into the store, unpacked
    into layers/<chain id>, the cache row that holds them -- or nothing at all."""
    from sangja.image import pack
    from sangja.image.store import chain_ids, remove_tree
    from sangja.image.unpack import unpack_layer

    cache.ready(store)
    with store.lock():
        store._dirs()
        fd, tmp = tempfile.mkstemp(prefix="layer-", dir=store.tmp_dir)
        blob_new = layer_new = False
        chain = None
        try:
            try:
                layer = pack.write_layer(upper, fd, source_date_epoch=source_date_epoch)
            finally:
                os.close(fd)
            if store.blob_usable(layer.digest, layer.size):
                os.unlink(tmp)
            else:
                store.commit_file(tmp, layer.digest)
                blob_new = True
            diff_ids = [ly[1] for ly in parent.layers] + [layer.diff_id]
            chain = chain_ids(diff_ids)[-1]
            known = store.layer(chain)
            if known is None:
                store.drop_untrusted_layer(chain)
                try:
                    res = unpack_layer(store.blob_path(layer.digest), store.layers_dir, chain,
                                       layer.digest, layer.diff_id, parents=parent.lowers(store),
                                       sync=False)  # fmt: skip
                except UnpackError as e:
                    raise LayerError(f"layer of {created_by}: {e}", errno=e.errno)
                layer_new = res.created
                size = int((res.stats or {}).get("file_bytes", 0)) if res.created else \
                    _size_of(store, chain)  # fmt: skip
            else:
                size = known.size
            store.sync()
            conf = _copy.deepcopy(parent.config)
            conf["created"] = created
            conf.setdefault("rootfs", {"type": "layers"})["diff_ids"] = diff_ids
            conf["rootfs"]["type"] = "layers"
            conf.setdefault("history", []).append({"created": created, "created_by": created_by})
            layers = parent.layers + [[chain, layer.diff_id, layer.digest, layer.size,
                                       layer.media_type]]  # fmt: skip
            with store.transaction() as db:
                cache.put(db, key, parent.key, conf, layers, chain, created_by, size,
                          blob=(layer.digest, layer.size, layer.media_type),
                          tar_size=layer.tar_size)  # fmt: skip
            return State(key, conf, layers, parent.base, parent.platform)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            with contextlib.suppress(Exception):
                if layer_new and chain and not store.layer_known(chain):
                    remove_tree(store.layer_path(chain))
                if blob_new and not store.blob_known(layer.digest):
                    os.unlink(store.blob_path(layer.digest))
            raise


def _size_of(store, chain: str) -> int:
    rec = store.layer(chain)
    return rec.size if rec else 0


def record_meta(store, parent: State, state: State) -> None:
    """Record a metadata step (no layer) under its key."""
    cache.ready(store)
    with store.lock(), store.transaction() as db:
        cache.put(db, state.key, parent.key, state.config, state.layers, None,
                  _created_by(state), 0)  # fmt: skip


def to_image(store, state: State, refs: list[str]) -> str:
    """The state as an image in the store, tagged `refs`.  -> the image id."""
    from sangja.image import manifest as mf
    from sangja.image import reference
    from sangja.image.store import LayerRec, Staging

    names = []
    for r in refs:
        ref = reference.parse(r)
        if ref.digest:
            raise SangjaError(f"{r}: the name of a new image must be a tag, not a digest")
        names.append(ref.tagged)
    conf = _copy.deepcopy(state.config)
    conf.setdefault("rootfs", {"type": "layers"})["diff_ids"] = [ly[1] for ly in state.layers]
    conf["rootfs"]["type"] = "layers"
    conf_bytes = mf.json_bytes(conf)
    descs = [(ly[2], ly[3], ly[4]) for ly in state.layers]
    manifest = mf.new_oci(conf_bytes, descs)
    with store.lock():
        recs = []
        for i, ly in enumerate(state.layers):
            rec = store.layer(ly[0])
            if rec is None:
                raise LayerError(f"layer {ly[0][:12]} of the build is gone from the store"
                                 " (pruned meanwhile?): build again")  # fmt: skip
            parent = state.layers[i - 1][0] if i else None
            recs.append(LayerRec(rec.chain_id, rec.diff_id, parent, ly[2], rec.size,
                                 rec.tar_size))  # fmt: skip
        staging = Staging(store)
        try:
            return staging.commit(conf_bytes, conf, manifest, mf.OCI_MANIFEST, recs, descs, names)
        except BaseException:
            staging.cleanup()
            raise
