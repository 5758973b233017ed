"""Manifests and indexes (OCI and Docker schema 2): media types, parsing, platform choice."""

from __future__ import annotations

import platform as _platform
from dataclasses import dataclass

from sangja.errors import SangjaError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = OCI_LAYER + "+gzip"
OCI_LAYER_ZSTD = OCI_LAYER + "+zstd"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = DOCKER_LAYER + ".gzip"
DOCKER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)

MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEXES = (OCI_INDEX, DOCKER_LIST)
# Accept header for GET manifest: registry 2.8 answers 404 for OCI content unless asked
ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))

LAYER_TYPES = {
    OCI_LAYER: "none",
    OCI_LAYER_GZIP: "gzip",
    OCI_LAYER_ZSTD: "zstd",
    DOCKER_LAYER: "none",
    DOCKER_LAYER_GZIP: "gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar": "none",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
}
# the OCI layer media type for a compression
LAYER_MEDIA_TYPES = {"none": OCI_LAYER, "gzip": OCI_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD}
_TO_OCI = {DOCKER_LAYER: OCI_LAYER, DOCKER_LAYER_GZIP: OCI_LAYER_GZIP}
MAX_MANIFEST = 4 << 20  # as the distribution registry's limit
MAX_CONFIG = 16 << 20


class ManifestError(SangjaError):
    pass


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: dict | None = None
    urls: tuple = ()

    @classmethod
    def from_json(cls, d, what="descriptor") -> Descriptor:
        if not isinstance(d, dict):
            raise ManifestError(f"{what}: not an object")
        digest, size = d.get("digest"), d.get("size")
        if not isinstance(digest, str) or not digest.startswith("sha256:") or len(digest) != 71:
            raise ManifestError(f"{what}: unsupported or missing digest {digest!r}")
        try:
            int(digest[7:], 16)
        except ValueError:
            raise ManifestError(f"{what}: invalid digest {digest!r}")
        if not isinstance(size, int) or size < 0:
            raise ManifestError(f"{what} {digest}: invalid size {size!r}")
        return cls(str(d.get("mediaType") or ""), digest, size, d.get("platform"),
                   tuple(d.get("urls") or ()))  # fmt: skip

    def to_json(self) -> dict:
        d = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform:
            d["platform"] = self.platform
        return d


def json_bytes(obj) -> bytes:
    """Compact JSON, as manifests and configs are stored (their digest is of these bytes)."""
    import json

    return json.dumps(obj, separators=(",", ":")).encode()


def new_oci(conf_bytes: bytes, descs: list[tuple]) -> bytes:
    """An OCI manifest for a config and layer blobs [(digest, size, media type)]; Docker's
    layer media types become their OCI equivalents (the same bytes)."""
    import hashlib

    return json_bytes({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "size": len(conf_bytes),
                   "digest": "sha256:" + hashlib.sha256(conf_bytes).hexdigest()},
        "layers": [{"mediaType": _TO_OCI.get(mt, mt), "digest": d, "size": n}
                   for d, n, mt in descs],
    })  # fmt: skip


def parse(data: bytes, content_type: str = "") -> tuple[str, dict]:
    """-> (media type, parsed document); the media type from the body, else the header."""
    from sangja.jsonio import loads

    try:
        doc = loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ManifestError(f"invalid manifest JSON: {e}")
    if not isinstance(doc, dict):
        raise ManifestError("invalid manifest: not a JSON object")
    mt = doc.get("mediaType") or content_type.split(";")[0].strip()
    if mt in DOCKER_SCHEMA1 or doc.get("schemaVersion") == 1:
        raise ManifestError("unsupported manifest: Docker image manifest schema 1")
    if not mt:  # an OCI document may omit mediaType: tell them apart by shape
        mt = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    if mt not in MANIFESTS + INDEXES:
        raise ManifestError(f"unsupported manifest media type {mt!r}")
    return mt, doc


@dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]

    @classmethod
    def from_doc(cls, media_type: str, doc: dict) -> Manifest:
        if media_type not in MANIFESTS:
            raise ManifestError(f"not an image manifest: {media_type}")
        config = Descriptor.from_json(doc.get("config"), "manifest config")
        raw = doc.get("layers")
        if not isinstance(raw, list):
            raise ManifestError("manifest: no layers list")
        layers = tuple(Descriptor.from_json(x, f"layer {i + 1}") for i, x in enumerate(raw))
        for i, ly in enumerate(layers):
            if ly.media_type == DOCKER_FOREIGN or ly.urls:
                raise ManifestError(f"layer {i + 1} {ly.digest}: foreign layers are not supported")
            if ly.media_type not in LAYER_TYPES:
                raise ManifestError(
                    f"layer {i + 1} {ly.digest}: unsupported media type {ly.media_type!r}"
                )
        return cls(media_type, config, layers)


def index_entries(doc: dict) -> list[Descriptor]:
    raw = doc.get("manifests")
    if not isinstance(raw, list):
        raise ManifestError("index: no manifests list")
    return [Descriptor.from_json(x, f"index entry {i + 1}") for i, x in enumerate(raw)]


# ---- platforms ---------------------------------------------------------------------------

_MACHINE = {
    "x86_64": ("amd64", ""),
    "amd64": ("amd64", ""),
    "aarch64": ("arm64", "v8"),
    "arm64": ("arm64", "v8"),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i386": ("386", ""),
    "i686": ("386", ""),
    "ppc64le": ("ppc64le", ""),
    "s390x": ("s390x", ""),
    "riscv64": ("riscv64", ""),
}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def matches(self, p: dict | None) -> bool:
        if not isinstance(p, dict):
            return False
        if p.get("os") != self.os or p.get("architecture") != self.architecture:
            return False
        if not self.variant:
            return True
        return _norm_variant(self.architecture, p.get("variant") or "") == self.variant


def _norm_variant(arch: str, variant: str) -> str:
    if arch == "arm64" and variant in ("", "8"):
        return "v8"
    if arch == "arm" and variant in ("7", "6", "5"):
        return "v" + variant
    return variant


def host_platform() -> Platform:
    arch, variant = _MACHINE.get(_platform.machine(), (_platform.machine(), ""))
    return Platform("linux", arch, variant if arch == "arm" else "")


def parse_platform(s: str | None) -> Platform:
    """'linux/arm64/v8', 'linux/amd64', 'arm64' (os linux)."""
    if not s:
        return host_platform()
    parts = s.lower().split("/")
    if len(parts) == 1:
        parts = ["linux", parts[0]]
    if len(parts) > 3 or not all(parts):
        raise SangjaError(f"invalid platform {s!r} (want os/arch[/variant])")
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(parts[1], parts[1])
    variant = _norm_variant(arch, parts[2]) if len(parts) == 3 else ""
    return Platform(parts[0], arch, variant)


def platform_of(p: dict | None) -> str:
    if not isinstance(p, dict):
        return "unknown"
    return "/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x)


def select(entries: list[Descriptor], want: Platform) -> Descriptor:
    """The index entry for `want`: the first exact match (variant-less requests take the
    first of the architecture; an arm64 entry without a variant counts as v8)."""
    usable = [e for e in entries if e.media_type in MANIFESTS or not e.media_type]
    for e in usable:
        if want.matches(e.platform):
            return e
    have = ", ".join(platform_of(e.platform) for e in usable) or "none"
    raise ManifestError(
        f"no matching manifest for {want} in the manifest list entries (available: {have})"
    )


def config_platform(config: dict) -> str:
    return platform_of(
        {"os": config.get("os"), "architecture": config.get("architecture"),
         "variant": config.get("variant")}
    )  # fmt: skip
