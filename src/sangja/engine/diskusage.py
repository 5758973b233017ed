"""`system df`: what images, containers and volumes take on disk, in Docker's /system/df
shape, every figure the `du -sb` of the directories concerned (apparent sizes of every
file, directory and symlink, each hard-linked inode once).

Images: each layer directory is measured once and remembered (`layer_usage` in sangja.db:
a layer never changes once unpacked), so a listing walks only what is new; an image's
Size is the sum of its layers, SharedSize the part in layers other images use too.
Containers: the writable layer (overlay: upper/; vfs: the whole copied root).  Volumes:
each local volume's _data (those with mount options are not local data and are left
out, as Docker leaves them out).
"""

from __future__ import annotations

import os
import stat as _stat

USAGE_SCHEMA = """
CREATE TABLE IF NOT EXISTS layer_usage (
    chain_id TEXT PRIMARY KEY,
    bytes    INTEGER NOT NULL       -- du -sb of layers/<chain_id>
);
"""


def du(path: str) -> int:
    """`du -sb path`: apparent sizes of everything below (the directory itself too), hard
    links counted once, symlinks not followed; 0 if it does not exist."""
    try:
        st = os.lstat(path)
    except OSError:
        return 0
    if not _stat.S_ISDIR(st.st_mode):
        return st.st_size
    total = st.st_size
    seen: set[tuple[int, int]] = set()
    stack = [path]
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(d)
        except OSError:
            continue
        with it:
            for e in it:
                try:
                    s = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                if s.st_nlink > 1 and not _stat.S_ISDIR(s.st_mode):
                    key = (s.st_dev, s.st_ino)
                    if key in seen:
                        continue
                    seen.add(key)
                total += s.st_size
                if _stat.S_ISDIR(s.st_mode):
                    stack.append(e.path)
    return total


def layer_sizes(store) -> dict[str, int]:
    """chain id -> du of its directory, for every layer the store names (measured once)."""
    db = store.db
    db.executescript(USAGE_SCHEMA)
    known = dict(db.execute(
        "SELECT u.chain_id, u.bytes FROM layer_usage u JOIN layers l ON l.chain_id = u.chain_id"
    ).fetchall())  # fmt: skip
    missing = [r[0] for r in db.execute("SELECT chain_id FROM layers") if r[0] not in known]
    if missing:
        new = [(c, du(store.layer_path(c))) for c in missing]
        with store.transaction() as tx:
            tx.execute("DELETE FROM layer_usage WHERE chain_id NOT IN"
                       " (SELECT chain_id FROM layers)")  # fmt: skip
            tx.executemany("INSERT OR REPLACE INTO layer_usage VALUES (?,?)", new)
        known.update(new)
    return known


def images(store) -> tuple[list[dict], int, int]:
    """-> (Docker's image summaries with Size, SharedSize and Containers, LayersSize,
    reclaimable bytes: those of layers no image a container uses needs)."""
    import datetime

    sizes = layer_sizes(store)
    db = store.db
    chains: dict[str, list[str]] = {}
    for image, chain in db.execute("SELECT image, chain_id FROM image_layers ORDER BY idx"):
        chains.setdefault(image, []).append(chain)
    users: dict[str, int] = {}
    for (image,) in db.execute("SELECT image FROM holds"):
        users[image] = users.get(image, 0) + 1
    count: dict[str, int] = {}
    for cs in chains.values():
        for c in set(cs):
            count[c] = count.get(c, 0) + 1
    out, active_layers = [], set()
    for rec in store.images():
        cs = chains.get(rec.id, [])
        size = sum(sizes.get(c, 0) for c in set(cs))
        shared = sum(sizes.get(c, 0) for c in set(cs) if count.get(c, 0) > 1)
        n = users.get(rec.id, 0)
        if n:
            active_layers.update(cs)
        created = 0
        if rec.created:
            try:
                created = int(datetime.datetime.fromisoformat(
                    rec.created.replace("Z", "+00:00")[:19] + "+00:00").timestamp())  # fmt: skip
            except ValueError:
                created = 0
        out.append({"Id": rec.id, "ParentId": "", "RepoTags": rec.tags,
                    "RepoDigests": rec.digests, "Created": created, "Size": size,
                    "SharedSize": shared, "VirtualSize": size, "Labels": None,
                    "Containers": n})  # fmt: skip
    total = sum(sizes.values())
    reclaimable = sum(b for c, b in sizes.items() if c not in active_layers)
    return out, total, reclaimable


def containers(cs) -> list[dict]:
    """Docker's container summaries with SizeRw: the du of each container's own files (its
    storage driver's: overlay's upper/, vfs's whole copy), and how many volumes it uses."""
    out = []
    for s in cs.summaries(all=True):
        cdir = cs.paths(s["Id"]).dir
        rw = du(cs.storage(s["Id"]).changes(cdir))
        s["SizeRw"] = rw
        s["SizeRootFs"] = rw + cs._image_size(s["ImageID"])
        s["LocalVolumes"] = sum(1 for m in s.get("Mounts") or () if m["Type"] == "volume")
        out.append(s)
    return out


def disk_usage(store, volumes=None, containers: list[dict] | None = None) -> dict:
    """Docker's /system/df body.  `containers`: summaries with SizeRw already measured
    (`containers(cs)`); volumes: an engine.volumes.Volumes."""
    from sangja.engine.build import cache

    items, layers, reclaimable = images(store)
    out = {
        "LayersSize": layers,
        "Images": items,
        "Containers": containers or [],
        "Volumes": volumes.usage() if volumes is not None else [],
        "BuildCache": cache.df_records(store),
    }
    out["_ImagesReclaimable"] = reclaimable  # sangja's: exact, for the summary table
    out["_BuildCache"] = cache.usage(store)  # the layers' bytes once, what prune frees
    return out


def summary(df: dict) -> list[dict]:
    """The table `system df` prints: Type, TotalCount, Active, Size, Reclaimable (bytes)."""
    imgs, ctrs, vols = df["Images"], df["Containers"], df["Volumes"]
    running = [c for c in ctrs if c.get("State") in ("running", "paused", "restarting")]
    rows = [
        {"Type": "Images", "TotalCount": len(imgs),
         "Active": sum(1 for i in imgs if i.get("Containers")), "Size": df["LayersSize"],
         "Reclaimable": df.get("_ImagesReclaimable", 0)},
        {"Type": "Containers", "TotalCount": len(ctrs), "Active": len(running),
         "Size": sum(c.get("SizeRw", 0) for c in ctrs),
         "Reclaimable": sum(c.get("SizeRw", 0) for c in ctrs if c not in running)},
        {"Type": "Local Volumes", "TotalCount": len(vols),
         "Active": sum(1 for v in vols if v["UsageData"]["RefCount"]),
         "Size": sum(max(v["UsageData"]["Size"], 0) for v in vols),
         "Reclaimable": sum(max(v["UsageData"]["Size"], 0) for v in vols
                            if not v["UsageData"]["RefCount"])},
    ]  # fmt: skip
    bc = df.get("_BuildCache") or {"count": 0, "active": 0, "size": 0, "reclaimable": 0}
    rows.append({"Type": "Build Cache", "TotalCount": bc["count"], "Active": bc["active"],
                 "Size": bc["size"], "Reclaimable": bc["reclaimable"]})  # fmt: skip
    return rows
