"""`trust sign`, `image push --sign-by`, `trust inspect`, `trust revoke`: signatures made,
shown and removed in the registry (sigstore.py's layout).

A signature binds the manifest digest and the name it was signed under: `host/repo:tag`
when a tag is given (what c/image writes, and what podman's default signedIdentity,
matchRepoDigestOrExact, wants for a pull by tag), the repository alone for `host/repo@digest`.
The digest is what the registry holds for the name at the time of signing -- the index's
for a multi-platform name -- as cosign signs it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sangja.image import auth, reference, registry
from sangja.image.trust import TrustError, policy, sigstore
from sangja.image.trust import keys as keymod


@dataclass(frozen=True)
class Signed:
    reference: str  # the name signed (the payload's docker-reference)
    digest: str
    tag: str  # the signature tag
    repository: str  # where it is stored: repository:tag


def _client(ref):
    return registry.Client(ref.domain, credentials=auth.lookup(ref.domain))


def identity(ref: reference.Reference) -> str:
    return ref.name if ref.digest else ref.tagged


def resolve(client, ref: reference.Reference) -> str:
    """The digest `ref` names in the registry now."""
    if ref.digest:
        return ref.digest
    return client.get_manifest(ref.path, ref.tag)[2]


def sign_with(client, ref: reference.Reference, digest: str, key: keymod.PrivateKey) -> Signed:
    """Sign `digest` as `ref` and store the signature beside it (the registry of `client`)."""
    ident = identity(ref)
    payload = sigstore.make_payload(ident, digest)
    tag = sigstore.attach(client, ref.path, digest, payload, key.sign(payload))
    return Signed(ident, digest, tag, ref.name)


def sign(ref_str: str, key: keymod.PrivateKey) -> Signed:
    ref = reference.parse(ref_str)
    client = _client(ref)
    try:
        return sign_with(client, ref, resolve(client, ref), key)
    finally:
        client.close()


# ---- inspect ---------------------------------------------------------------------------------


def _known_keys(ref, key_files, signature_policy) -> list:
    """The keys that may have made a signature: those given, and the policy's for `ref`."""
    out = [keymod.load_public(p) for p in key_files]
    from sangja.image import trust

    path = trust.policy_path(signature_policy, any_default=True)
    if path:
        for r in policy.load(path).requirements(ref)[1]:
            for kind, v in r.keys:
                try:
                    out.append(keymod.load_public(v) if kind == "path"
                               else keymod.public_key_from_pem(v, "keyData (policy)"))  # fmt: skip
                except TrustError:
                    continue  # inspect shows what it can; verify names the broken key
    return out


def inspect(ref_str: str, key_files=(), signature_policy: str | None = None) -> dict:
    """What `trust inspect` shows: the digest the name resolves to, and each signature
    stored for it: what it names, when and by what it was made, which known key (given,
    or the policy's) verifies it, and what is wrong with it for this name, if anything."""
    ref = reference.parse(ref_str)
    keys = _known_keys(ref, key_files, signature_policy)
    client = _client(ref)
    try:
        digest = resolve(client, ref)
        attached = sigstore.fetch(client, ref.path, digest)
    finally:
        client.close()
    image = policy.Named.of(ref)
    sigs = []
    for s in attached.signatures:
        entry = {"MediaType": s.media_type, "PayloadDigest": s.digest, "SignedReference": None,
                 "ManifestDigest": None, "Creator": None, "Timestamp": None, "Signer": None,
                 "Problem": None}  # fmt: skip
        sigs.append(entry)
        if s.media_type != sigstore.SIMPLE_SIGNING:
            entry["Problem"] = "not a simple-signing signature"
            continue
        if s.payload is None:
            entry["Problem"] = s.problem
            continue
        try:
            p = sigstore.parse_payload(s.payload)
        except sigstore.InvalidPayload as e:
            entry["Problem"] = f"invalid payload: {e}"
            continue
        entry.update(SignedReference=p.reference, ManifestDigest=p.digest, Creator=p.creator,
                     Timestamp=p.timestamp)  # fmt: skip
        raw = s.raw_signature()
        signer = next((k for k in keys if raw is not None and k.verify(raw, s.payload)), None)
        entry["Signer"] = signer.label if signer else None
        problems = []
        if signer is None:
            problems.append("made by an unknown key" if raw is not None else "no signature value")
        if p.digest != digest:
            problems.append(f"for another digest ({p.digest})")
        else:
            why = policy.mismatch(policy.Identity(), image, p.reference)
            if why:
                problems.append(why)
        entry["Problem"] = "; ".join(problems) or None
    return {"Name": str(ref), "Digest": digest, "SignatureTag": sigstore.tag_for(digest),
            "Signatures": sigs}  # fmt: skip


# ---- revoke ----------------------------------------------------------------------------------


def revoke(ref_str: str, key_files=()) -> tuple[int, int, str]:
    """Remove the signatures stored for what `ref_str` names: all of them, or with
    `key_files` only those that one of these keys verifies -> (removed, left, how:
    'deleted' | 'emptied' | 'rewritten' | 'none')."""
    ref = reference.parse(ref_str)
    keys = [keymod.load_public(p) for p in key_files]
    client = _client(ref)
    try:
        digest = resolve(client, ref)
        attached = sigstore.fetch(client, ref.path, digest, payloads=bool(keys))
        if attached.digest is None or not attached.signatures:
            raise TrustError(
                f"{ref}: no signature to revoke ({sigstore.tag_for(digest)} holds none)"
            )
        if keys:
            drop = []
            for s in attached.signatures:
                raw = s.raw_signature()
                if (
                    s.payload is not None
                    and raw is not None
                    and any(k.verify(raw, s.payload) for k in keys)
                ):
                    drop.append(s)
            if not drop:
                names = ", ".join(k.label for k in keys)
                raise TrustError(f"{ref}: no signature by {names} to revoke")
        else:
            drop = list(attached.signatures)
        how = sigstore.detach(client, attached, ref.path, digest, drop)
        return len(drop), len(attached.signatures) - len(drop), how
    finally:
        client.close()
