"""`system prune`: what Docker's removes, in its order: stopped containers, (networks: not
here yet), with `volumes` the unused anonymous volumes, dangling images (`all`: every image
no container uses).  There is no build cache to prune."""

from __future__ import annotations


def system_prune(cs, all: bool = False, volumes: bool = False, filters=None) -> dict:
    """-> {"ContainersDeleted", "VolumesDeleted", "ImagesDeleted", "SpaceReclaimed"}.
    `filters`: {"until": [...], "label": [...], "label!": [...]} (until: containers and
    images; label, label!: containers, images and volumes), as Docker's."""
    from sangja.engine.errors import InvalidArgument
    from sangja.engine.images import Images
    from sangja.engine.units import parse_timestamp

    f = {k: list(v) for k, v in (filters or {}).items()}
    for k in f:
        if k not in ("until", "label", "label!"):
            raise InvalidArgument(f"invalid filter '{k}'")
    until = None
    if f.get("until"):
        try:
            until = parse_timestamp(f["until"][0])
        except ValueError as e:
            raise InvalidArgument(str(e))
    out = {"ContainersDeleted": [], "VolumesDeleted": [], "ImagesDeleted": [],
           "SpaceReclaimed": 0}  # fmt: skip
    labels, not_labels = f.get("label", []), f.get("label!", [])
    c = cs.prune(until=until, labels=labels, not_labels=not_labels)
    out["ContainersDeleted"] = c["ContainersDeleted"] or []
    out["SpaceReclaimed"] += c["SpaceReclaimed"]
    if volumes:
        vf = {k: v for k, v in f.items() if k in ("label", "label!")}
        gone, freed = cs.mounts.volumes.prune(vf)
        out["VolumesDeleted"] = gone
        out["SpaceReclaimed"] += freed
    i = Images(cs.store).prune(all=all, until=until, labels=labels, not_labels=not_labels)
    out["ImagesDeleted"] = i["ImagesDeleted"] or []
    out["SpaceReclaimed"] += i["SpaceReclaimed"]
    return out
