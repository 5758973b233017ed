"""`sangja image search`: the repositories of a registry whose name holds a term.

`sangja image search HOST[:PORT]/TERM` lists the registry's catalog (`GET /v2/_catalog`,
every page) and keeps the names that contain TERM (any case; an empty TERM keeps them
all), each with its tags (`GET /v2/<name>/tags/list`).  Docker's columns: NAME (the full
name, pullable as it is), DESCRIPTION (a registry has none: the tags go there), STARS,
OFFICIAL, AUTOMATED (0 and empty: a registry has neither).  Docker Hub's search is a
service of its own (its /v1/search), not the distribution API: a term without a registry
when the default registry is docker.io is refused with a clear error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sangja.errors import SangjaError
from sangja.image import auth, registry
from sangja.image import config as cfg

DEFAULT_LIMIT = 25
MAX_LIMIT = 100
DESCRIPTION_WIDTH = 45  # docker's truncation of the column
FILTERS = ("stars", "is-official", "is-automated")
HEADERS = {"Name": "NAME", "Description": "DESCRIPTION", "StarCount": "STARS",
           "IsOfficial": "OFFICIAL", "IsAutomated": "AUTOMATED", "Tags": "TAGS"}  # fmt: skip


class SearchError(SangjaError):
    pass


@dataclass(frozen=True)
class Result:
    name: str  # host/repo
    tags: tuple = ()
    star_count: int = 0
    is_official: bool = False
    is_automated: bool = False
    description: str = field(default="")

    def fields(self) -> dict:
        """The names docker's --format knows, as it renders them (and Tags, sangja's);
        the CLI renders the template (cli/output.py)."""
        return {"Name": self.name, "Description": self.description,
                "StarCount": str(self.star_count), "IsOfficial": str(self.is_official).lower(),
                "IsAutomated": str(self.is_automated).lower(),
                "Tags": ", ".join(self.tags)}  # fmt: skip


def _split(term: str) -> tuple[str, str]:
    """'host:5000/debian' -> ('host:5000', 'debian'); 'debian' -> (default registry, ...)."""
    first, sep, rest = term.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        return first, rest
    return cfg.default_registry(), term


def parse_filters(filters: list[str]) -> dict:
    out = {}
    for f in filters:
        k, eq, v = f.partition("=")
        if not eq or k not in FILTERS:
            raise SearchError(
                f"invalid filter {f!r} (want {', '.join(k + '=...' for k in FILTERS)})"
            )
        if k == "stars":
            if not v.isdigit():
                raise SearchError(f"invalid filter 'stars={v}': want a number")
            out[k] = int(v)
        else:
            if v.lower() not in ("true", "false", "1", "0"):
                raise SearchError(f"invalid filter '{k}={v}': want true or false")
            out[k] = v.lower() in ("true", "1")
    return out


def search(term: str, *, limit: int = DEFAULT_LIMIT, filters: list[str] = ()) -> list[Result]:
    if not 1 <= limit <= MAX_LIMIT:
        raise SearchError(f"limit {limit} is outside the range of [1, {MAX_LIMIT}]")
    want = parse_filters(list(filters))
    domain, query = _split(term)
    if domain == "docker.io":
        raise SearchError(
            "search: Docker Hub's search service is not supported; name a registry:"
            " sangja image search HOST[:PORT]/TERM"
        )
    client = registry.Client(domain, credentials=auth.lookup(domain))
    try:
        names = [n for n in client.catalog() if query.lower() in n.lower()]
        out = []
        for n in sorted(names):
            r = Result(f"{domain}/{n}")
            if want.get("stars", 0) > r.star_count:
                continue
            if "is-official" in want and want["is-official"] != r.is_official:
                continue
            if "is-automated" in want and want["is-automated"] != r.is_automated:
                continue
            try:
                tags = tuple(sorted(client.tags(n)))
            except registry.RegistryError:
                tags = ()  # listed but not readable with these credentials
            desc = "tags: " + ", ".join(tags) if tags else ""
            out.append(Result(r.name, tags, description=desc))
            if len(out) >= limit:
                break
        return out
    finally:
        client.close()


def table(results: list[Result], no_trunc: bool = False) -> list[tuple]:
    """Docker's columns: a header row, then a row per result."""
    rows = [("NAME", "DESCRIPTION", "STARS", "OFFICIAL", "AUTOMATED")]
    for r in results:
        d = r.description.replace("\n", " ")
        if not no_trunc and len(d) > DESCRIPTION_WIDTH:
            d = d[: DESCRIPTION_WIDTH - 1] + "…"
        rows.append((r.name, d, str(r.star_count), "[OK]" if r.is_official else "",
                     "[OK]" if r.is_automated else ""))  # fmt: skip
    return rows
