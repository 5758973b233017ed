"""New images in the store: a base image (or none), plus layers written from directory
trees (the C layer writer, sangja.image.pack), plus a config -- what `container commit`
and each step of `build` make.

    res = commit(store, [Step("COPY app /app", root=upper_dir)], base="debian:bookworm",
                 config={"Cmd": ["/app/run"]}, refs=["app:1"])

Under the store's lock, each tree is written as a blob into tmp/, moved into blobs/ once
its digest is known, and unpacked into layers/<chain id>/ with the extractor (so the new
image runs at once, as a pulled one does); then the config and an OCI manifest are stored
and the image is committed in one transaction.  A failure leaves the store as it was.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass

from sangja.errors import SangjaError, UnpackError
from sangja.image import manifest as mf
from sangja.image import pack, reference
from sangja.image.store import Staging, Store, chain_ids, layer_record


class CommitError(SangjaError):
    pass


@dataclass(frozen=True)
class Step:
    """One history entry of the new image: a layer made from the tree at `root`, or (root
    None) an entry without a layer (`empty_layer`, as ENV or CMD make)."""

    created_by: str = ""
    root: str | None = None
    comment: str = ""


@dataclass(frozen=True)
class CommitResult:
    image_id: str
    manifest_digest: str
    layers: tuple  # pack.Layer of each new layer, in order
    chain_id: str | None  # hex of the top layer (None: no layers at all)


def commit(
    store: Store,
    steps: list[Step],
    *,
    base: str | None = None,
    config: dict | None = None,
    refs: list[str] = (),
    author: str | None = None,
    created: str | None = None,
    platform: str | None = None,
    compression: str = "gzip",
    level: int | None = None,
    source_date_epoch: int | None = None,
) -> CommitResult:
    """Make an image: `base` (an image id or name in the store; None: from scratch) with
    `steps` on top, its config's "config" replaced by `config` (None: the base's), tagged
    `refs`.  created: RFC 3339 (default: source_date_epoch if given, else now): the
    config's and the new history entries' time.  platform: for an image from scratch
    (default: this host's).  With the same trees, steps and times, the image id is the
    same (pack.write_layer writes the same bytes for the same tree)."""
    if created is None and source_date_epoch is not None:
        import time

        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(source_date_epoch))
    elif created is None:
        from sangja.log import now_rfc3339

        created = now_rfc3339()
    names = []
    for r in refs:
        ref = reference.parse(r)
        if ref.digest:
            raise CommitError(f"{r}: the name of a new image must be a tag, not a digest")
        names.append(ref.tagged)
    with store.lock():
        staging = Staging(store)
        try:
            return _commit(store, staging, steps, base, config, names, author, created,
                           platform, compression, level, source_date_epoch)  # fmt: skip
        except BaseException:
            staging.cleanup()
            raise


def _base(store: Store, base: str | None, platform: str | None):
    """-> (config, [LayerRec], [(digest, size, media type)]) of the base, or fresh ones."""
    if base is None:
        plat = mf.parse_platform(platform)
        conf = {"architecture": plat.architecture, "os": plat.os}
        if plat.variant:
            conf["variant"] = plat.variant
        conf["config"] = {}
        return conf, [], []
    image_id = store.resolve(base)
    conf = store.config_of(image_id)
    mdigest, mbytes = store.manifest_of(image_id)
    mt, doc = mf.parse(mbytes, store.media_type_of(mdigest) or "")
    layers = mf.Manifest.from_doc(mt, doc).layers
    recs = store.layers_of(image_id)
    if len(recs) != len(layers):
        raise CommitError(f"image {base}: {len(recs)} layers in the store, {len(layers)} in"
                          " its manifest")  # fmt: skip
    return conf, recs, [(d.digest, d.size, d.media_type) for d in layers]


def _commit(store, staging, steps, base, config, names, author, created, platform,
            compression, level, sde) -> CommitResult:  # fmt: skip
    conf, layers, descs = _base(store, base, platform)
    diff_ids = [ly.diff_id for ly in layers]
    history = [h for h in conf.get("history") or [] if isinstance(h, dict)]
    # a base without (enough) history: an entry for each of its layers, so that each
    # entry still lines up with its layer (image history)
    missing = len(layers) - sum(1 for h in history if not h.get("empty_layer"))
    history = [{} for _ in range(max(0, missing))] + history
    parents = [store.layer_path(ly.chain_id) for ly in reversed(layers)]  # nearest first
    new = []
    for step in steps:
        entry = {"created": created, "created_by": step.created_by}
        if author:
            entry["author"] = author
        if step.comment:
            entry["comment"] = step.comment
        if step.root is None:
            entry["empty_layer"] = True
            history.append(entry)
            continue
        layer = _write(store, staging, step.root, compression, level, sde)
        diff_ids.append(layer.diff_id)
        chain = chain_ids(diff_ids)[-1]
        parent = layers[-1].chain_id if layers else None
        blob = store.blob_path(layer.digest)
        known = store.layer(chain)
        if known is not None:
            rec = layer_record(None, chain, layer.diff_id, parent, layer.digest, known)
        else:
            store.drop_untrusted_layer(chain)
            try:
                res = staging.unpack(blob, chain, layer.digest, layer.diff_id, parents)
            except UnpackError as e:
                raise CommitError(f"layer of {step.root}: {e}", errno=e.errno)
            rec = layer_record(res, chain, layer.diff_id, parent, layer.digest)
        layers.append(rec)
        parents.insert(0, store.layer_path(chain))
        descs.append((layer.digest, layer.size, layer.media_type))
        history.append(entry)
        new.append(layer)

    conf = dict(conf)
    conf["created"] = created
    if author:
        conf["author"] = author
    if config is not None:
        conf["config"] = config
    conf["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
    conf["history"] = history
    conf_bytes = mf.json_bytes(conf)
    manifest = mf.new_oci(conf_bytes, descs)
    image_id = staging.commit(conf_bytes, conf, manifest, mf.OCI_MANIFEST, layers, descs, names)
    return CommitResult(image_id, "sha256:" + _sha256(manifest), tuple(new),
                        layers[-1].chain_id if layers else None)  # fmt: skip


def _write(store: Store, staging: Staging, root: str, compression, level, sde) -> pack.Layer:
    """The tree as a blob in the store (not yet named by the database)."""
    store._dirs()
    fd, tmp = tempfile.mkstemp(prefix="layer-", dir=store.tmp_dir)
    try:
        try:
            layer = pack.write_layer(root, fd, compression=compression, level=level,
                                     source_date_epoch=sde)  # fmt: skip
        finally:
            os.close(fd)
        if store.blob_usable(layer.digest, layer.size):
            os.unlink(tmp)
        else:
            staging.add_file(tmp, layer.digest)
        return layer
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()
