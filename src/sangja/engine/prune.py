"""`system prune`: what Docker's removes, in its order: stopped containers, user networks no
container is on, with `volumes` the unused anonymous volumes, dangling images (`all`: every
image no container uses), the build cache no image uses (`all`: all of it)."""

from __future__ import annotations


def system_prune(cs, all: bool = False, volumes: bool = False, filters=None) -> dict:
    """-> {"ContainersDeleted", "NetworksDeleted", "VolumesDeleted", "ImagesDeleted",
    "CachesDeleted", "SpaceReclaimed"}.
    `filters`: {"until": [...], "label": [...], "label!": [...]} (until: containers and
    images; label, label!: containers, images and volumes), as Docker's."""
    from sangja.engine.filters import parse_prune
    from sangja.engine.images import Images

    f = {k: list(v) for k, v in (filters or {}).items()}
    until, labels, not_labels = parse_prune(f)
    out = {"ContainersDeleted": [], "NetworksDeleted": [], "VolumesDeleted": [],
           "ImagesDeleted": [], "CachesDeleted": [], "SpaceReclaimed": 0}  # fmt: skip
    c = cs.prune({k: v for k, v in f.items() if k in ("until", "label", "label!")})
    out["ContainersDeleted"] = c["ContainersDeleted"] or []
    out["SpaceReclaimed"] += c["SpaceReclaimed"]
    from sangja.engine.networks import Networks

    out["NetworksDeleted"] = Networks(cs.store).prune(f)
    if volumes:
        vf = {k: v for k, v in f.items() if k in ("label", "label!")}
        gone, freed = cs.mounts.volumes.prune(vf)
        out["VolumesDeleted"] = gone
        out["SpaceReclaimed"] += freed
    i = Images(cs.store).prune(all=all, until=until, labels=labels, not_labels=not_labels)
    out["ImagesDeleted"] = i["ImagesDeleted"] or []
    out["SpaceReclaimed"] += i["SpaceReclaimed"]
    if not labels and not not_labels:  # the cache has no labels: a label filter keeps it
        from sangja.engine.build import cache
        from sangja.engine.build.workspace import exclusive

        with exclusive(cs.store):  # waits for running builds, as builder prune does
            keys, freed = cache.prune(cs.store, all=all, until=until)
        out["CachesDeleted"] = [k[:25] for k in keys]
        out["SpaceReclaimed"] += freed
    return out
