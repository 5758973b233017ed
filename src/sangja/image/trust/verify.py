"""A policy applied to an image: accepted, or Refused with one line saying why.

For a `sigstoreSigned` requirement at least one of the image's signatures must verify with
one of its keys, be a well-formed payload, name the very digest the reference resolved to
(the top-level one: an index's when the name is multi-platform, as cosign and c/image sign
it) and name the image as signedIdentity wants.  When no signature passes, the refusal
says how far the best one got: none at all < by no trusted key < for another digest <
for another tag ("the tag moved") or repository.
"""

from __future__ import annotations

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
    def __init__(self, path: str | None, *, content_trust: bool = False):
        self.path = path
        self.content_trust = content_trust
        self.policy = policy.load(path) if path else None
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
                    k = keymod.load_public(v) if kind == "path" else keymod.public_key_from_pem(
                        v, "keyData")  # fmt: skip
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
        try:
            attached = sigstore.fetch(client, ref.path, digest)
        except (registry.RegistryError, TrustError) as e:
            raise Refused(ref, f"cannot read its signatures: {e}")
        return [self._satisfy(ref, digest, r, attached.signatures) for r in reqs]

    def _satisfy(self, ref, digest, req, sigs) -> keymod.PublicKey:
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
                signer = next((k for k in keys if k.verify(raw, s.payload)), None)
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

    def check_local(self, store, ref_str: str, image_id: str) -> bool:
        """trust.check_local's work (trust is on)."""
        bare = ref_str.removeprefix("sha256:")
        if reference.looks_like_id(ref_str) and image_id.removeprefix("sha256:").startswith(bare):
            return True  # an image id names content, not a publisher's name (as Docker)
        ref = reference.parse(ref_str)
        if self.requirements(ref) is None:
            return True
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
