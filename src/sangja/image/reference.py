"""Image references: parsing and Docker's normalization.

`busybox` -> `<default registry>/library/busybox:latest`, `user/app` -> `<default>/user/app`,
`host:5000/x/y@sha256:...` stays as it is.  The grammar is distribution/reference's: the
first component is a registry when it holds a `.` or a `:`, or is `localhost`.

The default registry is `docker.io` unless `$SANGJA_DEFAULT_REGISTRY` or the engine config
(`default-registry`, see `sangja.image.config`) names another one.
"""

from __future__ import annotations

from sangja.errors import SangjaError

DOCKER_HUB = "docker.io"
DEFAULT_TAG = "latest"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATTERNS = {
    "path": rf"{_COMPONENT}(?:/{_COMPONENT})*",
    "domain": r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?",
    "tag": r"[\w][\w.-]{0,127}",
}
_HEX = frozenset("0123456789abcdef")
_LOWER_DIGITS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_ALNUM = _LOWER_DIGITS | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_TAG_CHARS = _ALNUM | frozenset("_.-")
_compiled: dict = {}


def _fullmatch(kind: str, s: str) -> bool:
    """`s` is all of the grammar's `kind`.  The plain forms nearly every reference has
    are recognized by hand (they surely match); anything else goes to the regular
    expression, which decides.  (`re` with `enum` costs ~4 ms of import to every engine
    command that names an image.)"""
    if kind == "path":
        sure = all(c and set(c) <= _LOWER_DIGITS for c in s.split("/"))
    elif kind == "tag":
        sure = 0 < len(s) <= 128 and s[0] not in ".-" and set(s) <= _TAG_CHARS
    else:  # domain: host[:port], labels of letters, digits and inner dashes
        host, colon, port = s.partition(":")
        sure = (not colon or (port.isascii() and port.isdigit())) and all(
            label and set(label) <= _ALNUM | {"-"} and label[0] != "-" and label[-1] != "-"
            for label in host.split(".")
        )  # fmt: skip
    if sure:
        return True
    pat = _compiled.get(kind)
    if pat is None:
        import re

        pat = _compiled[kind] = re.compile(_PATTERNS[kind])
    return pat.fullmatch(s) is not None


def _is_hex(s: str, lo: int, hi: int) -> bool:
    return lo <= len(s) <= hi and set(s) <= _HEX


def _is_digest(s: str) -> bool:
    """sha256:[a-f0-9]{64}"""
    return s.startswith("sha256:") and _is_hex(s[7:], 64, 64)


class ReferenceError(SangjaError):
    """Not a valid image reference."""


class Reference:
    """An image reference, normalized (immutable; a plain class: dataclasses cost ~9 ms of
    import to every engine command)."""

    __slots__ = ("domain", "path", "tag", "digest")

    def __init__(self, domain: str, path: str, tag: str | None = None,
                 digest: str | None = None):  # fmt: skip
        object.__setattr__(self, "domain", domain)  # "127.0.0.1:5000", "docker.io"
        object.__setattr__(self, "path", path)  # "library/busybox"
        object.__setattr__(self, "tag", tag)
        object.__setattr__(self, "digest", digest)  # "sha256:..."

    def __setattr__(self, name, value):
        raise AttributeError("Reference is immutable")

    def _key(self):
        return (self.domain, self.path, self.tag, self.digest)

    def __eq__(self, other):
        return isinstance(other, Reference) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        return (f"Reference(domain={self.domain!r}, path={self.path!r}, tag={self.tag!r}, "
                f"digest={self.digest!r})")  # fmt: skip

    @property
    def name(self) -> str:
        """domain/path: the repository's full name."""
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        s = self.name
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s

    @property
    def tagged(self) -> str:
        """name:tag (latest if none was given)."""
        return f"{self.name}:{self.tag or DEFAULT_TAG}"

    def with_digest(self, digest: str) -> str:
        return f"{self.name}@{digest}"

    @property
    def api_domain(self) -> str:
        """The host to talk to: Docker Hub's API is not at docker.io."""
        return "registry-1.docker.io" if self.domain == DOCKER_HUB else self.domain


def parse(ref: str, default_registry: str | None = None) -> Reference:
    """Parse and normalize; `latest` is filled in unless a digest is given."""
    if default_registry is None:
        from sangja.image.config import default_registry as _default

        default_registry = _default()
    s = ref.strip()
    if not s or s != ref or len(s) > 4096:
        raise ReferenceError(f"invalid reference format: {ref!r}")
    rest, at, digest = s.partition("@")
    if at and not _is_digest(digest):
        raise ReferenceError(f"invalid reference format: {ref!r}: bad digest {digest!r}")
    # a tag is after the last ':' that follows the last '/'
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    tag = None
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _fullmatch("tag", tag):
            raise ReferenceError(f"invalid reference format: {ref!r}: bad tag {tag!r}")
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        domain, path = first, remainder
        if not _fullmatch("domain", domain):
            raise ReferenceError(f"invalid reference format: {ref!r}: bad registry {domain!r}")
    else:
        domain, path = default_registry, rest
    if domain in ("index.docker.io", "registry-1.docker.io"):
        domain = DOCKER_HUB
    if domain == default_registry and "/" not in path:
        path = "library/" + path
    if not _fullmatch("path", path):
        if path.lower() != path and _fullmatch("path", path.lower()):
            raise ReferenceError(
                f"invalid reference format: repository name ({path}) must be lowercase"
            )
        raise ReferenceError(f"invalid reference format: {ref!r}")
    if len(path) > 255:
        raise ReferenceError(f"invalid reference format: {ref!r}: repository name too long")
    if tag is None and not at:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest or None)


def familiar(name: str, default_registry: str | None = None) -> str:
    """The short form people type: `<default>/library/busybox` -> `busybox`."""
    if default_registry is None:
        from sangja.image.config import default_registry as _default

        default_registry = _default()
    prefix = default_registry + "/"
    if name.startswith(prefix):
        name = name[len(prefix) :]
        if name.startswith("library/") and name.count("/") == 1:
            name = name[len("library/") :]
    return name


def looks_like_id(s: str) -> bool:
    """An image id or a prefix of one (hex, optionally `sha256:`)."""
    return _is_hex(s[7:] if s.startswith("sha256:") else s, 1, 64)


def split_name(full: str) -> tuple[str, str]:
    """`host/path:tag` -> (`host/path`, `tag`); `host/path@sha256:..` -> (name, digest)."""
    name, at, digest = full.partition("@")
    if at:
        return name, digest
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :]
    return name, ""
