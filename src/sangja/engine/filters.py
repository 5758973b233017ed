"""`ps --filter` (and /containers/json?filters=) as Docker reads them: values of one key are
alternatives, different keys must all match.  Keys: id (prefix), name (a regular
expression, searched), label (KEY or KEY=VALUE), status, ancestor (an image by name or
id), exited (an exit code), before and since (another container), health, network,
publish and expose."""

from __future__ import annotations

import re

from sangja.engine.errors import InvalidArgument

KEYS = ("id", "name", "label", "status", "ancestor", "exited", "before", "since", "health",
        "network", "volume", "publish", "expose", "is-task")  # fmt: skip
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def _collect(items) -> dict[str, list[str]]:
    """Filters as the API gives them ({key: [values]}) or the CLI (["key=value", ...]) ->
    {key: [values]}, keys not checked."""
    if isinstance(items, dict):
        return {k: list(v) if isinstance(v, (list, tuple)) else list(v or ()) for k, v in
                items.items()}  # fmt: skip
    out: dict[str, list[str]] = {}
    for it in items or ():
        k, eq, v = it.partition("=")
        if not eq:
            raise InvalidArgument(f"bad format of filter (expected name=value): {it!r}")
        out.setdefault(k.strip().lower(), []).append(v)
    return out


def parse(items) -> dict[str, list[str]]:
    """['status=exited', 'label=a=b'] (CLI) or {"status": ["exited"]} (API) -> dict."""
    out = _collect(items)
    for k, vs in out.items():
        if k not in KEYS:
            raise InvalidArgument(f"invalid filter '{k}'")
        if k == "status":
            for v in vs:
                if v not in STATUSES:
                    raise InvalidArgument(
                        f"invalid filter 'status={v}' (want one of {', '.join(STATUSES)})"
                    )
        if k == "exited":
            for v in vs:
                if not v.lstrip("-").isdigit():
                    raise InvalidArgument(f"invalid filter 'exited={v}'")
    return out


def label_match(labels: dict, want: str) -> bool:
    k, eq, v = want.partition("=")
    if k not in labels:
        return False
    return not eq or labels[k] == v


class Matcher:
    """Built once per listing: references (ancestor, before, since) resolved up front."""

    def __init__(self, filters: dict[str, list[str]], resolve_image, resolve_container):
        self.f = filters
        self.ancestors: set[str] = set()
        for ref in filters.get("ancestor", ()):
            try:
                self.ancestors.add(resolve_image(ref))
            except Exception:  # an unknown image matches no container (as Docker)
                continue
        self.before = [resolve_container(r).created for r in filters.get("before", ())]
        self.since = [resolve_container(r).created for r in filters.get("since", ())]
        self.mounts_of = lambda rec: []  # the container's mount points (set by the caller)
        try:
            self.names = [re.compile(v) for v in filters.get("name", ())]
        except re.error as e:
            raise InvalidArgument(f"invalid filter 'name': {e}")

    def __call__(self, rec, status: str, labels: dict, health: str) -> bool:
        f = self.f
        if "id" in f and not any(rec.id.startswith(v) for v in f["id"]):
            return False
        if self.names and not any(p.search(rec.name) for p in self.names):
            return False
        if "status" in f and status not in f["status"]:
            return False
        if "label" in f and not all(label_match(labels, v) for v in f["label"]):
            return False
        if "ancestor" in f and rec.image not in self.ancestors:
            return False
        if "exited" in f and (status != "exited" or str(rec.exit_code) not in f["exited"]):
            return False
        if self.before and not all(rec.created < t for t in self.before):
            return False
        if self.since and not all(rec.created > t for t in self.since):
            return False
        if "health" in f and (health or "none") not in f["health"]:
            return False
        if f.get("volume"):  # a volume's name or a mount's destination (Docker's rule)
            points = self.mounts_of(rec)
            if not any(p.name in f["volume"] or p.destination in f["volume"] for p in points):
                return False
        return not any(f.get(k) for k in ("network", "publish", "expose")) or self._net(rec)

    net_view = None  # rec -> Docker's NetworkSettings (set by the listing)

    def _net(self, rec) -> bool:
        """network=NAME|ID, publish=PORT[/PROTO] (a bound container port), expose=PORT[/PROTO]
        (an exposed one; ranges `8000-8010` too), as Docker's."""
        ns = self.net_view(rec) if self.net_view else {"Networks": {}, "Ports": {}}
        f = self.f
        if "network" in f:
            have = set(ns["Networks"]) | {n.get("NetworkID", "") for n in ns["Networks"].values()}
            if not any(v in have or any(h.startswith(v) for h in have if h) for v in f["network"]):
                return False
        for key, bound in (("publish", True), ("expose", False)):
            if key not in f:
                continue
            ports = {p for p, b in ns["Ports"].items() if b or not bound}
            if not any(_port_in(v, ports) for v in f[key]):
                return False
        return True


def _port_in(want: str, ports: set[str]) -> bool:
    num, _, proto = want.partition("/")
    proto = proto or "tcp"
    lo, _, hi = num.partition("-")
    try:
        lo_n, hi_n = int(lo), int(hi or lo)
    except ValueError:
        raise InvalidArgument(f"invalid filter port {want!r}")
    for p in ports:
        n, _, pr = p.partition("/")
        if pr == proto and lo_n <= int(n) <= hi_n:
            return True
    return False


def parse_prune(items) -> tuple[float | None, list[str], list[str]]:
    """Prune filters (containers, images, networks, volumes) as Docker reads them: until
    (a time: Unix, RFC 3339 or a duration before now), label=K[=V], label!=K[=V].
    -> (until, labels, not_labels)."""
    from sangja.engine.units import parse_timestamp

    f = _collect(items)
    for k in f:
        if k not in ("until", "label", "label!"):
            raise InvalidArgument(f"invalid filter '{k}'")
    until = None
    if f.get("until"):
        try:
            until = parse_timestamp(f["until"][0])
        except ValueError as e:
            raise InvalidArgument(str(e))
    return until, f.get("label", []), f.get("label!", [])


IMAGE_KEYS = ("dangling", "label", "reference", "before", "since")


def parse_image_filters(items) -> dict[str, list[str]]:
    """/images/json filters (a dict, or the CLI's ["k=v", ...]) -> {key: [values]}."""
    out = _collect(items)
    for k, vs in out.items():
        if k not in IMAGE_KEYS:
            raise InvalidArgument(f"invalid filter '{k}'")
        if k == "dangling" and any(v.lower() not in ("true", "false", "1", "0") for v in vs):
            raise InvalidArgument(f"invalid filter 'dangling={vs[0]}'")
    return out
