"""A policy applied to an image: accepted, or Refused with one line saying why.

For a `sigstoreSigned` requirement at least one of the image's signatures must verify with
one of its keys, be a well-formed payload, name the very digest the reference resolved to
(the top-level one: an index's when the name is multi-platform, as cosign and c/image sign
it) and name the image as signedIdentity wants.  When no signature passes, the refusal
says how far the best one got: none at all < by no trusted key < for another digest <
for another tag ("the tag moved") or repository.

What the store remembers (`<engine root>/trust/`, when the caller gives it the store):
payloads by digest (checked again on every read), and that a key verified a signature over a
payload (a file named by the hash of the three).  A pull of an image already verified then
neither fetches the payload again nor loads `cryptography`; every other check -- the
signature tag read anew from the registry, the payload's digest and identity against the
policy -- is made every time.  Only successes are remembered, and the key is part of the
name: a key taken out of the policy never matches again.
"""

from __future__ import annotations

import hashlib
import os

from sangja.image import reference, registry
from sangja.image.trust import (
    CONTENT_TRUST_ENV,
    Refused,
    TrustError,
    policy,
    sangja_policy,
    sigstore,
)
from sangja.image.trust import keys as keymod


class Verifier:
    def __init__(self, path: str | None, *, content_trust: bool = False,
                 cache_dir: str | None = None):  # fmt: skip
        self.path = path
        self.content_trust = content_trust
        self.policy = policy.load(path) if path else None
        self.cache = cache_dir
        self._keys: dict = {}

    # ---- the policy ----------------------------------------------------------------------
    def requirements(self, ref: reference.Reference) -> list | None:
        """The sigstoreSigned requirements for `ref`, None when the policy lets it in
        without a signature; Refused when it keeps it out whatever it is signed with."""
        if self.policy is None:
            raise Refused(ref, f"content trust is on ({CONTENT_TRUST_ENV}=1) and there is no"
                               f" signature policy (write {sangja_policy()}, or give"
                               " --signature-policy)")  # fmt: skip
        scope, reqs = self.policy.requirements(ref)
        where = f"the policy {self.path}" + (f" (scope {scope!r})" if scope != "default" else "")
        for r in reqs:
            if r.kind == "reject":
                raise Refused(ref, f"{where} rejects it")
            if r.kind == "unsupported":
                raise Refused(ref, f"{where} wants {r.why}, which sangja does not verify")
        signed = [r for r in reqs if r.kind == "sigstoreSigned"]
        if signed:
            return signed
        if self.content_trust:
            raise Refused(ref, f"content trust is on ({CONTENT_TRUST_ENV}=1) and {where}"
                               f" names no trusted key for {ref.name}")  # fmt: skip
        return None

    def keys(self, ref, req) -> list:
        out = []
        for kind, v in req.keys:
            k = self._keys.get((kind, v))
            if k is None:
                try:
                    if kind == "path":
                        k = keymod.load_public(v, check=False)
                    else:
                        k = keymod.public_key_from_pem(v, "keyData", check=False)
                except TrustError as e:
                    raise Refused(ref, f"the policy's key cannot be used: {e}")
                self._keys[(kind, v)] = k
            out.append(k)
        return out

    # ---- an image ------------------------------------------------------------------------
    def check(self, client: registry.Client, ref: reference.Reference, digest: str) -> list:
        """`ref` resolved to `digest` in the registry `client` talks to: return the keys
        that vouch for it ([] when the policy needs none), or raise Refused."""
        reqs = self.requirements(ref)
        if reqs is None:
            return []
        learnt: list = []  # what the cache gets once the image is accepted (not before)
        try:
            attached = sigstore.fetch(client, ref.path, digest, cache=self.cache, fetched=learnt)
        except (registry.RegistryError, TrustError) as e:
            raise Refused(ref, f"cannot read its signatures: {e}")
        signers = [self._satisfy(ref, digest, r, attached.signatures, learnt) for r in reqs]
        for path, data in learnt:
            sigstore.remember(path, data)
        return signers

    def _satisfy(self, ref, digest, req, sigs, learnt) -> keymod.PublicKey:
        keys = self.keys(ref, req)
        names = req.key_names()
        signed = [s for s in sigs if s.media_type == sigstore.SIMPLE_SIGNING]
        if not signed:
            raise Refused(ref, f"no signature (the policy wants one by {names})")
        image = policy.Named.of(ref)
        best = (0, "")
        for s in signed:
            if s.payload is None:
                best = max(best, (1, f"its signature cannot be read: {s.problem}"))
                continue
            raw = s.raw_signature()
            signer = None
            if raw is not None:
                try:
                    signer = next((k for k in keys if self._verified(k, raw, s.payload, learnt)),
                                  None)  # fmt: skip
                except TrustError as e:
                    raise Refused(ref, f"the policy's key cannot be used: {e}")
            if signer is None:
                n = len(signed)
                best = max(best, (1, f"signed by an unknown key ({n} signature{'s' * (n > 1)},"
                                     f" none verifies with {names})"))  # fmt: skip
                continue
            try:
                p = sigstore.parse_payload(s.payload)
            except sigstore.InvalidPayload as e:
                best = max(best, (1, f"invalid signature payload: {e}"))
                continue
            if p.digest != digest:
                best = max(best, (2, f"the signature is for another digest ({p.digest}; the"
                                     f" image is {digest})"))  # fmt: skip
                continue
            why = policy.mismatch(req.identity, image, p.reference)
            if why:
                best = max(best, (3, why))
                continue
            return signer
        raise Refused(ref, best[1])

    def _verified(self, key, raw: bytes, payload: bytes, learnt: list) -> bool:
        """key.verify(raw, payload), or what the store remembers of it."""
        mark = None
        if self.cache:
            h = hashlib.sha256(key.spki)
            h.update(hashlib.sha256(payload).digest())
            h.update(raw)
            mark = os.path.join(self.cache, "verified", h.hexdigest())
            if os.path.exists(mark):
                return True
        if not key.verify(raw, payload):
            return False
        if mark:
            learnt.append((mark, b""))
        return True

    def check_local(self, store, ref_str: str, image_id: str) -> bool:
        """trust.check_local's work (trust is on)."""
        bare = ref_str.removeprefix("sha256:")
        if reference.looks_like_id(ref_str) and image_id.removeprefix("sha256:").startswith(bare):
            return True  # an image id names content, not a publisher's name (as Docker)
        ref = reference.parse(ref_str)
        if self.requirements(ref) is None:
            return True
        self.cache = self.cache or os.path.join(store.root, "trust")
        from sangja.image import auth

        client = registry.Client(ref.domain, credentials=auth.lookup(ref.domain))
        try:
            if ref.digest:
                digest = ref.digest
            else:
                try:
                    _, _, digest = client.get_manifest(ref.path, ref.tag)
                except registry.RegistryError as e:
                    raise Refused(ref, f"cannot ask the registry for it: {e}")
            self.check(client, ref, digest)
        finally:
            client.close()
        return ref.with_digest(digest) in (n for n, kind in store.refs_of(image_id)
                                           if kind == "digest")  # fmt: skip
