"""Content trust: images signed in the registry beside them, in sigstore/cosign's layout,
and a containers-policy.json policy (podman's and skopeo's format) that pull, run, create
and build's FROM obey before they use an image.

    keys.py      key pairs in cosign's formats (generate, load, sign, verify)
    policy.py    containers-policy.json: requirements per registry/repository scope,
                 signedIdentity rules
    sigstore.py  the registry side: `sha256-<digest>.sig` tags, simple-signing payloads
    verify.py    a policy applied to an image's signatures: accepted, or Refused(why)
    sign.py      sign, inspect, revoke

When trust is on (`verifier()` says): `--signature-policy PATH` was given; or the engine
config names one (`signature-policy` in daemon.json); or sangja's own policy file exists
(`policy.json` beside the engine config: /etc/sangja/policy.json); or content trust is
switched on (`SANGJA_CONTENT_TRUST=1`, or `"content-trust": true` in daemon.json), which
also reads podman's /etc/containers/policy.json when sangja has no policy of its own and --
as Docker's DOCKER_CONTENT_TRUST -- refuses an image the policy would let in unsigned.
Otherwise nothing here is read: pull, run and create behave as they would without it.
"""

from __future__ import annotations

import os

from sangja.errors import SangjaError

CONTAINERS_POLICY = "/etc/containers/policy.json"
CONTENT_TRUST_ENV = "SANGJA_CONTENT_TRUST"


class TrustError(SangjaError):
    """A key, a policy or a signature that cannot be read or used."""


class Refused(TrustError):
    """The policy does not let this image in: one line naming the image and why."""

    def __init__(self, ref, reason: str):
        super().__init__(f"image {ref} refused: {reason}")
        self.ref, self.reason = str(ref), reason


def content_trust() -> bool:
    v = os.environ.get(CONTENT_TRUST_ENV)
    if v is not None and v.strip():
        return v.strip().lower() in ("1", "true", "yes", "on")
    from sangja.image import config as cfg

    return cfg.setting("content-trust") is True


def sangja_policy() -> str:
    """sangja's own policy file: policy.json beside the engine config (daemon.json)."""
    from sangja.image import config as cfg

    return os.path.join(os.path.dirname(cfg.config_path()), "policy.json")


def policy_path(signature_policy: str | None = None, *, any_default: bool = False) -> str | None:
    """The policy to obey: the flag's, else daemon.json's `signature-policy`, else sangja's
    own file if it exists; with `any_default` (content trust on, or `trust inspect`) podman's
    /etc/containers/policy.json too.  None: no policy."""
    if signature_policy:
        return signature_policy
    from sangja.image import config as cfg

    configured = cfg.setting("signature-policy")
    if configured:
        if not isinstance(configured, str):
            raise TrustError(f"invalid signature-policy {configured!r} in the engine config")
        return configured
    own = sangja_policy()
    if os.path.exists(own):
        return own
    if any_default and os.path.exists(CONTAINERS_POLICY):
        return CONTAINERS_POLICY
    return None


def verifier(signature_policy: str | None = None, store=None):
    """None when trust is off (a few stat()s and an environment read, nothing more); else
    a verify.Verifier of the policy in force (remembering what it verified in `store`)."""
    ct = content_trust()
    path = policy_path(signature_policy, any_default=ct)
    if path is None and not ct:
        return None
    from sangja.image.trust.verify import Verifier

    cache = os.path.join(store.root, "trust") if store is not None else None
    return Verifier(path, content_trust=ct, cache_dir=cache)


def check_local(store, ref_str: str, image_id: str, signature_policy: str | None = None) -> bool:
    """For run, create and build's FROM, about an image the store already has under
    `ref_str`: may it be used?  True at once when trust is off.  With trust on, the registry
    is asked what the name is now and for its signatures (as Docker's content trust asks its
    notary): True when they verify and the store's image is the signed one; False when the
    signed image under that name is another one (the caller pulls it; pull verifies);
    Refused when the policy refuses the name."""
    v = verifier(signature_policy)
    if v is None:
        return True
    return v.check_local(store, ref_str, image_id)
