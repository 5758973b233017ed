"""containers-policy.json, the trust policy podman and skopeo read (containers-policy.json(5)):

    {"default": [{"type": "reject"}],
     "transports": {"docker": {
         "registry.example:5000/team/app": [{"type": "sigstoreSigned",
                                             "keyPath": "/etc/sangja/keys/team.pub",
                                             "signedIdentity": {"type": "matchRepository"}}],
         "registry.example:5000": [{"type": "insecureAcceptAnything"}],
         "*.example.com": [{"type": "reject"}]}}}

An image `host/path:tag` takes the requirements of the most specific scope of the `docker`
transport that names it: `host/path:tag` (or `host/path@digest`), `host/path`, each parent
namespace, `host`, then `*.` wildcards of the host's parent domains, then the transport's ""
scope, then `default`.  Every requirement of the list must be met.  Other transports are
read (so a podman policy file works unchanged) but never consulted: sangja only pulls from
registries.

Requirements: `insecureAcceptAnything`, `reject`, `sigstoreSigned` with `keyPath`, `keyPaths`,
`keyData` or `keyDatas` (base64 PEM) and an optional `signedIdentity`.  What sangja does not
verify -- `signedBy` (GPG), `signedBaseLayer`, sigstoreSigned's `fulcio`, `pki` and
`rekorPublicKey*` -- is read and refuses the images it applies to (never ignored: that would
let in what the policy's author meant to keep out).  Parsing is strict, as c/image's: an
unknown field or type, a duplicated key, an empty list is an error naming the file.
A relative keyPath is taken from the policy file's directory.

signedIdentity (what the signature's `docker-reference` must be, for an image ref):
matchRepoDigestOrExact (the default: the same repository when the image is pulled by digest,
else exactly the same name:tag), matchExact, matchRepository, exactReference
{dockerReference}, exactRepository {dockerRepository}, remapIdentity {prefix, signedPrefix}.
"""

from __future__ import annotations

import _json
import base64
import os
from dataclasses import dataclass, field

from sangja.image import reference
from sangja.image.trust import TrustError

IDENTITY_TYPES = ("matchExact", "matchRepoDigestOrExact", "matchRepository", "exactReference",
                  "exactRepository", "remapIdentity")  # fmt: skip
_KEY_FIELDS = ("keyPath", "keyPaths", "keyData", "keyDatas")
_UNVERIFIED_FIELDS = ("fulcio", "pki", "rekorPublicKeyPath", "rekorPublicKeyPaths",
                      "rekorPublicKeyData", "rekorPublicKeyDatas")  # fmt: skip


class PolicyError(TrustError):
    pass


@dataclass(frozen=True)
class Identity:
    kind: str = "matchRepoDigestOrExact"
    value: str = ""  # exactReference's dockerReference, exactRepository's dockerRepository
    prefix: str = ""  # remapIdentity
    signed_prefix: str = ""


@dataclass(frozen=True)
class Requirement:
    kind: str  # insecureAcceptAnything | reject | sigstoreSigned | unsupported
    keys: tuple = ()  # sigstoreSigned: ("path", absolute path) or ("data", PEM bytes)
    identity: Identity = field(default_factory=Identity)
    why: str = ""  # unsupported: what it asks for

    def key_names(self) -> str:
        return ", ".join(v if k == "path" else "keyData" for k, v in self.keys)


@dataclass
class Policy:
    path: str
    default: list
    docker: dict  # scope -> [Requirement]

    def requirements(self, ref: reference.Reference) -> tuple[str, list]:
        """-> (the scope that applies, "" for the transport's default and "default" for the
        policy's, its requirements)."""
        for scope in scopes(ref):
            reqs = self.docker.get(scope)
            if reqs is not None:
                return scope, reqs
        return "default", self.default


def scopes(ref: reference.Reference) -> list[str]:
    """The docker transport's scopes for a reference, most specific first."""
    name = ref.name
    out = [name + ("@" + ref.digest if ref.digest else ":" + (ref.tag or "latest"))]
    n = name
    while True:
        out.append(n)
        if "/" not in n:
            break
        n = n.rsplit("/", 1)[0]
    host = ref.domain  # wildcards from the host without its port, as c/image
    host = host.rsplit(":", 1)[0] if ":" in host and not host.endswith("]") else host
    while "." in host:
        host = host.split(".", 1)[1]
        out.append("*." + host)
    out.append("")
    return out


# ---- parsing ---------------------------------------------------------------------------------


class _Strict:
    """_json's scanner with a hook that refuses duplicated keys (as c/image's parser)."""

    strict = True
    object_hook = None
    parse_float = float
    parse_int = int

    @staticmethod
    def object_pairs_hook(pairs):
        d = {}
        for k, v in pairs:
            if k in d:
                raise ValueError(f"duplicate key {k!r}")
            d[k] = v
        return d

    @staticmethod
    def parse_constant(name):
        raise ValueError(f"invalid JSON constant {name}")


_scan = _json.make_scanner(_Strict())


def _loads(text: str):
    i = len(text) - len(text.lstrip())
    try:
        obj, end = _scan(text, i)
        if not text[end:].strip():
            return obj
    except (StopIteration, SystemError):
        pass
    # the bare C scanner cannot always say what is wrong: json's parser says where
    import json

    return json.loads(text, object_pairs_hook=_Strict.object_pairs_hook)


def load(path: str) -> Policy:
    try:
        with open(path, "rb") as f:
            data = f.read(4 << 20)
    except OSError as e:
        raise PolicyError(f"signature policy {path}: {e.strerror}", errno=e.errno, path=path)
    try:
        doc = _loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise PolicyError(f"signature policy {path}: invalid JSON: {e}", path=path)
    return parse(doc, path)


def parse(doc, path: str) -> Policy:
    def bad(msg):
        return PolicyError(f"signature policy {path}: {msg}", path=path)

    if not isinstance(doc, dict):
        raise bad("not a JSON object")
    extra = set(doc) - {"default", "transports"}
    if extra:
        raise bad(f"unknown field {sorted(extra)[0]!r}")
    if "default" not in doc:
        raise bad('no "default" requirements')
    base = os.path.dirname(os.path.abspath(path))
    default = _requirements(doc["default"], "default", base, bad)
    docker = {}
    transports = doc.get("transports") or {}
    if not isinstance(transports, dict):
        raise bad('"transports" is not an object')
    for tname, tscopes in transports.items():
        if not isinstance(tscopes, dict):
            raise bad(f"transport {tname!r}: not an object")
        for scope, reqs in tscopes.items():
            parsed = _requirements(reqs, f"{tname} scope {scope!r}", base, bad)
            if tname == "docker":
                _check_scope(scope, bad)
                docker[scope] = parsed
    return Policy(path, default, docker)


def _check_scope(scope, bad):
    if scope == "":
        return
    if scope.startswith("*."):
        host = scope[2:]
        if not host or "/" in host or "*" in host:
            raise bad(f"invalid wildcard scope {scope!r} (want *.domain)")
        return
    if any(c.isspace() for c in scope) or "*" in scope or scope.endswith("/"):
        raise bad(f"invalid docker scope {scope!r}")


def _requirements(reqs, where, base, bad) -> list:
    if not isinstance(reqs, list) or not reqs:
        raise bad(f"{where}: want a non-empty list of requirements")
    return [_requirement(r, where, base, bad) for r in reqs]


def _only(r, allowed, where, bad):
    extra = set(r) - set(allowed)
    if extra:
        raise bad(f"{where}: unknown field {sorted(extra)[0]!r} in {r.get('type')!r}")


def _requirement(r, where, base, bad) -> Requirement:
    if not isinstance(r, dict) or not isinstance(r.get("type"), str):
        raise bad(f'{where}: a requirement is not an object with a "type"')
    t = r["type"]
    if t in ("insecureAcceptAnything", "reject"):
        _only(r, ("type",), where, bad)
        return Requirement(t)
    if t == "signedBy":
        _only(r, ("type", "keyType", "keyPath", "keyPaths", "keyData", "signedIdentity"),
              where, bad)  # fmt: skip
        _identity(r.get("signedIdentity"), where, bad)
        return Requirement("unsupported", why="a GPG signature (signedBy)")
    if t == "signedBaseLayer":
        _only(r, ("type", "baseLayerIdentity"), where, bad)
        return Requirement("unsupported", why="a signed base layer (signedBaseLayer)")
    if t != "sigstoreSigned":
        raise bad(f"{where}: unknown requirement type {t!r}")
    _only(r, ("type", "signedIdentity", *_KEY_FIELDS, *_UNVERIFIED_FIELDS), where, bad)
    ident = _identity(r.get("signedIdentity"), where, bad)
    given = [k for k in _KEY_FIELDS + ("fulcio", "pki") if k in r]
    if len(given) != 1:
        raise bad(f"{where}: sigstoreSigned wants exactly one of keyPath, keyPaths, keyData,"
                  f" keyDatas, fulcio, pki (it has {', '.join(given) or 'none'})")  # fmt: skip
    src = given[0]
    if src in ("fulcio", "pki"):
        return Requirement("unsupported", why=f"sigstore {src} certificates")
    unverified = [k for k in _UNVERIFIED_FIELDS if k in r]
    if unverified:
        return Requirement("unsupported", why=f"a Rekor inclusion proof ({unverified[0]})")
    vals = r[src] if src.endswith("s") else [r[src]]
    if not isinstance(vals, list) or not vals or not all(isinstance(v, str) and v for v in vals):
        want = "a non-empty list of strings" if src.endswith("s") else "a string"
        raise bad(f"{where}: {src}: want {want}")
    keys = []
    for v in vals:
        if src.startswith("keyPath"):
            keys.append(("path", os.path.join(base, v)))
        else:
            try:
                keys.append(("data", base64.b64decode(v, validate=True)))
            except ValueError:
                raise bad(f"{where}: {src}: not base64")
    return Requirement("sigstoreSigned", tuple(keys), ident)


def _identity(d, where, bad) -> Identity:
    if d is None:
        return Identity()
    if not isinstance(d, dict) or d.get("type") not in IDENTITY_TYPES:
        t = d.get("type") if isinstance(d, dict) else d
        raise bad(f"{where}: unknown signedIdentity type {t!r}")
    t = d["type"]
    if t == "exactReference":
        _only(d, ("type", "dockerReference"), where, bad)
        v = _ref_value(d.get("dockerReference"), where, bad, name_only=False)
        return Identity(t, value=v)
    if t == "exactRepository":
        _only(d, ("type", "dockerRepository"), where, bad)
        v = _ref_value(d.get("dockerRepository"), where, bad, name_only=True)
        return Identity(t, value=v)
    if t == "remapIdentity":
        _only(d, ("type", "prefix", "signedPrefix"), where, bad)
        p, sp = d.get("prefix"), d.get("signedPrefix")
        if not isinstance(p, str) or not p or not isinstance(sp, str) or not sp:
            raise bad(f"{where}: remapIdentity wants a prefix and a signedPrefix")
        return Identity(t, prefix=p, signed_prefix=sp)
    _only(d, ("type",), where, bad)
    return Identity(t)


def _ref_value(v, where, bad, name_only: bool) -> str:
    if not isinstance(v, str) or not v:
        raise bad(f"{where}: signedIdentity wants a docker reference")
    try:
        r = Named.parse(v)
    except reference.ReferenceError as e:
        raise bad(f"{where}: {e}")
    if name_only != r.name_only:
        want = "a repository" if name_only else "a name:tag or name@digest"
        raise bad(f"{where}: {v!r}: want {want}")
    return v


# ---- identities ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Named:
    """A docker reference as c/image reads a signature's: normalized against docker.io,
    and a bare name stays bare (no `latest` is made up)."""

    name: str
    tag: str | None
    digest: str | None

    @property
    def name_only(self) -> bool:
        return not self.tag and not self.digest

    def __str__(self):
        tag = f":{self.tag}" if self.tag else ""
        return self.name + tag + (f"@{self.digest}" if self.digest else "")

    @classmethod
    def parse(cls, s: str) -> Named:
        r = reference.parse(s, default_registry=reference.DOCKER_HUB)
        last = s.partition("@")[0].rsplit("/", 1)[-1]
        bare = "@" not in s and ":" not in last
        return cls(r.name, None if bare or r.digest else r.tag, r.digest)

    @classmethod
    def of(cls, ref: reference.Reference) -> Named:
        return cls(ref.name, None if ref.digest else (ref.tag or reference.DEFAULT_TAG),
                   ref.digest)  # fmt: skip


def mismatch(ident: Identity, image: Named, signed_ref: str) -> str | None:
    """None when a signature whose docker-reference is `signed_ref` is acceptable for
    `image` under `ident`; else why not (one phrase)."""
    try:
        signed = Named.parse(signed_ref)
    except reference.ReferenceError:
        return f"the signature names an invalid reference {signed_ref!r}"
    kind = ident.kind
    if kind == "remapIdentity":
        image = _remap(image, ident.prefix, ident.signed_prefix)
        kind = "matchRepoDigestOrExact"
    if kind == "exactReference":
        want = Named.parse(ident.value)
        same = not signed.name_only and str(signed) == str(want)
        return None if same else _differs(want, signed, kind)
    if kind == "exactRepository":
        want = Named.parse(ident.value)
        return None if signed.name == want.name else _differs(want, signed, kind)
    if kind == "matchRepository" or (kind == "matchRepoDigestOrExact" and image.digest):
        return None if signed.name == image.name else _differs(image, signed, kind)
    # matchExact, or matchRepoDigestOrExact of a tagged image: exactly that name:tag
    if not signed.name_only and str(signed) == str(image):
        return None
    return _differs(image, signed, kind)


def _differs(want: Named, signed: Named, kind: str) -> str:
    if signed.name != want.name:
        return f"the signature is for another repository ({signed})"
    if signed.name_only:
        return (f"the signature names {signed} without a tag and signedIdentity {kind} wants"
                f" {want} (cosign's signatures need matchRepository)")  # fmt: skip
    if signed.digest and not want.digest:
        return f"the signature is for {signed}, a digest, and signedIdentity {kind} wants {want}"
    if want.tag and signed.tag and signed.tag != want.tag:
        return f"the tag moved: the signature is for {signed}, not {want}"
    return f"the signature is for {signed}, not {want}"


def _remap(image: Named, prefix: str, signed_prefix: str) -> Named:
    """remapIdentity: an image whose name starts with `prefix` (whole components) is taken
    as if it were named with `signed_prefix` instead."""
    n = image.name
    if n == prefix or n.startswith(prefix.rstrip("/") + "/"):
        return Named(signed_prefix + n[len(prefix) :], image.tag, image.digest)
    return image
