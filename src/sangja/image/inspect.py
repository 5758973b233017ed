"""`image inspect` (Docker's JSON shape, the fields that apply) and `image history`."""

from __future__ import annotations

import os

from sangja.image import reference
from sangja.image.store import Store


def inspect(store: Store, image_id: str) -> dict:
    rec = store.image(image_id)
    conf = store.config_of(image_id)
    layers = store.layers_of(image_id)
    lowers = [store.layer_path(ly.chain_id) for ly in reversed(layers)]
    hist = conf.get("history") or []
    out = {
        "Id": rec.id,
        "RepoTags": [reference.familiar(t) for t in rec.tags],
        "RepoDigests": [reference.familiar(d) for d in rec.digests],
        "Parent": "",
        "Comment": (hist[-1].get("comment", "") if hist and isinstance(hist[-1], dict) else ""),
        "Created": conf.get("created", ""),
        "Author": conf.get("author", ""),
        "Config": conf.get("config") or {},
        "Architecture": conf.get("architecture", ""),
        "Os": conf.get("os", ""),
        "Size": rec.size,
        "GraphDriver": {
            "Name": "overlay",
            "Data": {"LowerDir": ":".join(lowers)} if lowers else {},
        },
        "RootFS": {"Type": "layers", "Layers": [ly.diff_id for ly in layers]},
        "Metadata": {"Manifest": rec.manifest, "Platform": rec.platform},
    }
    if conf.get("variant"):
        out["Variant"] = conf["variant"]
    return out


def history(store: Store, image_id: str) -> list[dict]:
    """Newest first: {id, created, created_by, size, comment}."""
    conf = store.config_of(image_id)
    layers = store.layers_of(image_id)
    sizes = [ly.size for ly in layers]
    entries = [h for h in conf.get("history") or [] if isinstance(h, dict)]
    if not entries:  # no history: one row per layer
        entries = [{} for _ in layers]
    rows = []
    li = 0
    for h in entries:
        size = 0
        if not h.get("empty_layer") and li < len(sizes):
            size = sizes[li]
            li += 1
        rows.append({"created": h.get("created"), "created_by": h.get("created_by", ""),
                     "size": size, "comment": h.get("comment", "")})  # fmt: skip
    rows.reverse()
    for i, r in enumerate(rows):
        r["id"] = image_id if i == 0 else "<missing>"
    return rows


def layer_dirs(store: Store, image_id: str) -> list[str]:
    return [os.path.join(store.layers_dir, ly.chain_id) for ly in store.layers_of(image_id)]
