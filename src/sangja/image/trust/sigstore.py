"""Signatures in the registry beside the image, in sigstore's layout (what cosign writes and
c/image reads with `use-sigstore-attachments`):

- The signatures of the manifest `sha256:<hex>` are the layers of an OCI image manifest
  tagged `sha256-<hex>.sig` in the same repository.
- Each layer is a simple-signing payload, media type
  `application/vnd.dev.cosign.simplesigning.v1+json`:
      {"critical": {"identity": {"docker-reference": "host/repo:tag"},
                    "image": {"docker-manifest-digest": "sha256:<hex>"},
                    "type": "cosign container image signature"},
       "optional": {"creator": "sangja 0.1.0", "timestamp": 1700000000}}
  with the signature of those exact bytes, base64, in the layer's annotation
  `dev.cosignproject.cosign/signature`.
- The manifest's config is an OCI image config whose rootfs.diff_ids list the payloads.
A registry needs nothing special: any registry that takes OCI manifests works.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from dataclasses import dataclass, field

from sangja.image import manifest as mf
from sangja.image import registry
from sangja.image.trust import TrustError

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
PAYLOAD_TYPE = "cosign container image signature"
MAX_PAYLOAD = 4 << 20  # c/image's limit for one signature
MAX_SIGNATURES = 64  # layers looked at per image
MAX_CONFIG = 4 << 20


class InvalidPayload(ValueError):
    pass


def tag_for(digest: str) -> str:
    algo, _, hexd = digest.partition(":")
    return f"{algo}-{hexd}.sig"


def make_payload(docker_reference: str, digest: str) -> bytes:
    from sangja import __version__
    from sangja.jsonio import dumps

    return dumps({
        "critical": {"identity": {"docker-reference": docker_reference},
                     "image": {"docker-manifest-digest": digest},
                     "type": PAYLOAD_TYPE},
        "optional": {"creator": f"sangja {__version__}", "timestamp": int(time.time())},
    }).encode()  # fmt: skip


def _exact(obj, keys, what):
    if not isinstance(obj, dict):
        raise InvalidPayload(f"{what} is not an object")
    if set(obj) != set(keys):
        extra = sorted(set(obj) ^ set(keys))
        how = "unexpected" if extra[0] in obj else "missing"
        raise InvalidPayload(f"{what}: {how} field {extra[0]!r}")


@dataclass(frozen=True)
class Payload:
    digest: str  # docker-manifest-digest
    reference: str  # docker-reference
    creator: str | None = None
    timestamp: int | None = None


def parse_payload(data: bytes) -> Payload:
    """A simple-signing payload, checked as strictly as c/image checks it: exactly the
    fields `critical` (type, image, identity) and `optional` (an object or null)."""
    from sangja.jsonio import loads

    try:
        doc = loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidPayload(f"not JSON: {e}")
    _exact(doc, ("critical", "optional"), "payload")
    crit = doc["critical"]
    _exact(crit, ("type", "image", "identity"), "critical")
    if crit["type"] != PAYLOAD_TYPE:
        raise InvalidPayload(f"unknown signature type {crit['type']!r}")
    _exact(crit["image"], ("docker-manifest-digest",), "critical.image")
    _exact(crit["identity"], ("docker-reference",), "critical.identity")
    digest, ref = crit["image"]["docker-manifest-digest"], crit["identity"]["docker-reference"]
    if not isinstance(digest, str) or not isinstance(ref, str):
        raise InvalidPayload("digest and reference must be strings")
    opt = doc["optional"]
    creator = timestamp = None
    if opt is not None:
        if not isinstance(opt, dict):
            raise InvalidPayload("optional is not an object")
        creator = opt.get("creator") if isinstance(opt.get("creator"), str) else None
        ts = opt.get("timestamp")
        if ts is not None:
            if isinstance(ts, bool) or not isinstance(ts, (int, float)) or int(ts) != ts:
                raise InvalidPayload("optional.timestamp is not an integer")
            timestamp = int(ts)
    return Payload(digest, ref, creator, timestamp)


@dataclass
class Signature:
    """One layer of the signature manifest."""

    layer: dict  # its descriptor as the manifest has it
    payload: bytes | None = None  # None: not fetched (not simple-signing, or it failed)
    problem: str = ""  # why the payload could not be had

    @property
    def media_type(self) -> str:
        return self.layer.get("mediaType", "")

    @property
    def digest(self) -> str:
        return self.layer.get("digest", "")

    @property
    def annotations(self) -> dict:
        a = self.layer.get("annotations")
        return a if isinstance(a, dict) else {}

    def raw_signature(self) -> bytes | None:
        b64 = self.annotations.get(SIGNATURE_ANNOTATION)
        if not isinstance(b64, str):
            return None
        try:
            return base64.b64decode(b64, validate=True)
        except ValueError:
            return None


@dataclass
class Attached:
    """The signature manifest of an image as the registry holds it (or none)."""

    digest: str | None  # the manifest's own digest; None: there is no signature tag
    manifest: dict = field(default_factory=dict)
    signatures: list = field(default_factory=list)


def remember(path: str, data: bytes) -> None:
    """A file of the trust cache, written whole (temporary name, rename) or not at all:
    the cache is an optimization, a failure to write it is not an error."""
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, path)
    except OSError:
        pass


def _cached_payload(cache, desc) -> bytes | None:
    try:
        with open(os.path.join(cache, "payloads", desc.digest[7:]), "rb") as f:
            data = f.read(MAX_PAYLOAD + 1)
    except OSError:
        return None
    ok = len(data) == desc.size and "sha256:" + hashlib.sha256(data).hexdigest() == desc.digest
    return data if ok else None


def fetch(client: registry.Client, repo: str, digest: str, *, payloads: bool = True,
          cache: str | None = None, fetched: list | None = None) -> Attached:  # fmt: skip
    """The signatures stored for `digest` in `repo`; a missing tag is no signatures.  Each
    simple-signing payload is fetched (size-limited, digest-checked) unless `payloads` is
    False -- or read from `cache` (a directory) when it has it, else added to `fetched` as
    (cache path, bytes) for the caller to remember; one that cannot be had is kept with its
    `problem`."""
    found = client.find_manifest(repo, tag_for(digest), mf.OCI_MANIFEST)
    if found is None:
        return Attached(None)
    body, ctype, mdigest = found
    what = f"signature manifest {client.domain}/{repo}:{tag_for(digest)}"
    if ctype.split(";")[0].strip() != mf.OCI_MANIFEST:
        raise TrustError(f"{what}: unexpected media type {ctype!r}")
    from sangja.jsonio import loads

    try:
        doc = loads(body)
        layers = doc.get("layers") or []
        if not isinstance(layers, list):
            raise ValueError
    except (ValueError, AttributeError):
        raise TrustError(f"{what}: not an OCI manifest")
    sigs = []
    for layer in layers[:MAX_SIGNATURES]:
        s = Signature(layer if isinstance(layer, dict) else {})
        sigs.append(s)
        if not payloads or s.media_type != SIMPLE_SIGNING:
            continue
        try:
            desc = mf.Descriptor.from_json(layer, "signature layer")
            s.payload = _cached_payload(cache, desc) if cache else None
            if s.payload is None:
                s.payload = client.get_blob_bytes(repo, desc, MAX_PAYLOAD)
                if cache and fetched is not None:
                    fetched.append((os.path.join(cache, "payloads", desc.digest[7:]), s.payload))
        except (mf.ManifestError, registry.BlobError) as e:
            s.problem = str(e)
    return Attached(mdigest, doc, sigs)


def _config(client, repo, doc) -> dict:
    cd = doc.get("config") or {}
    try:
        desc = mf.Descriptor.from_json(cd, "signature config")
        from sangja.jsonio import loads

        conf = loads(client.get_blob_bytes(repo, desc, MAX_CONFIG))
        if isinstance(conf, dict):
            return conf
    except (mf.ManifestError, registry.BlobError, ValueError):
        pass
    return {}


def _put(client, repo, digest, doc, layers, conf) -> str:
    """The manifest with `layers` (config updated to list them) under the signature tag."""
    from sangja.jsonio import dumps

    conf = dict(conf) if conf else {"architecture": "", "os": "", "config": {}}
    rootfs = dict(conf.get("rootfs") or {})
    rootfs["type"] = "layers"
    rootfs["diff_ids"] = [ly["digest"] for ly in layers]
    conf["rootfs"] = rootfs
    cbytes = dumps(conf).encode()
    cdigest = client.put_blob_bytes(repo, cbytes)
    out = {k: v for k, v in doc.items() if k not in ("config", "layers")}
    out.update(schemaVersion=2, mediaType=mf.OCI_MANIFEST,
               config={"mediaType": mf.OCI_CONFIG, "digest": cdigest, "size": len(cbytes)},
               layers=layers)  # fmt: skip
    return client.put_manifest(repo, tag_for(digest), dumps(out).encode(), mf.OCI_MANIFEST)


def attach(client: registry.Client, repo: str, digest: str, payload: bytes,
           signature: bytes) -> str:  # fmt: skip
    """Add one signature to the image's signature manifest (made if there is none; the
    same signature again is not added twice) -> the signature tag."""
    current = fetch(client, repo, digest, payloads=False)
    doc = current.manifest if current.digest else {}
    layers = [s.layer for s in current.signatures]
    pdigest = client.put_blob_bytes(repo, payload)
    notes = {SIGNATURE_ANNOTATION: base64.b64encode(signature).decode()}
    layer = {"mediaType": SIMPLE_SIGNING, "digest": pdigest, "size": len(payload),
             "annotations": notes}  # fmt: skip
    if any(ly.get("digest") == pdigest and ly.get("annotations") == layer["annotations"]
           for ly in layers):  # fmt: skip
        return tag_for(digest)
    conf = _config(client, repo, doc) if current.digest else {}
    _put(client, repo, digest, doc, layers + [layer], conf)
    return tag_for(digest)


def detach(client: registry.Client, current: Attached, repo: str, digest: str,
           drop: list) -> str:  # fmt: skip
    """Remove the signatures `drop` (of current.signatures) -> "deleted" when none is left
    and the manifest was deleted, "emptied" when the registry does not delete manifests and
    the tag now holds none, "rewritten" when others remain."""
    keep = [s.layer for s in current.signatures if not any(s is d for d in drop)]
    if keep:
        _put(client, repo, digest, current.manifest, keep, _config(client, repo, current.manifest))
        return "rewritten"
    try:
        client.delete_manifest(repo, current.digest)
        return "deleted"
    except registry.RegistryError as e:
        text = str(e).lower()
        if "unsupported" not in text and "405" not in text and "not allowed" not in text:
            raise
    _put(client, repo, digest, current.manifest, [], {})
    return "emptied"
