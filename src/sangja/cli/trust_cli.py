"""`sangja trust ...`: signing keys, and the signatures stored beside images in their
registry (the work is sangja.image.trust's; this is arguments and output)."""

from __future__ import annotations

import os
import sys

from sangja.cli.groups import Sub, dispatch
from sangja.cli.parse import UsageError

KEY_ENV = "SANGJA_TRUST_KEY"


def main(word: str, args: list[str], g: dict) -> int:
    return dispatch("trust", TRUST, {}, args, g)


def trust_key(opts, pos, g):
    from sangja.image.trust import keys

    if len(pos) != 2 or pos[0] != "generate":
        raise UsageError("usage: sangja trust key generate NAME")
    name = pos[1]
    for p in (name + ".key", name + ".pub"):  # before asking for a passphrase
        if os.path.lexists(p):
            raise UsageError(f"{p} exists already: remove it first, or choose another name")
    pw = keys.passphrase(confirm=True, what=f"{name}.key")
    priv, pub = keys.generate(name, pw)
    sys.stdout.write(f"Private key written to {priv}\nPublic key written to {pub}\n")
    return 0


def load_signing_key(path: str | None):
    """The private key to sign with (--key, else $SANGJA_TRUST_KEY), decrypted with the
    passphrase from $SANGJA_TRUST_PASSPHRASE or the terminal."""
    from sangja.image.trust import keys

    path = path or os.environ.get(KEY_ENV)
    if not path:
        raise UsageError(f"no signing key: give --key FILE or set {KEY_ENV}"
                         " (make one with: sangja trust key generate NAME)")  # fmt: skip
    if not os.path.exists(path):
        raise UsageError(f"signing key {path}: no such file")
    return keys.load_private(path, keys.passphrase(confirm=False, what=path))


def trust_sign(opts, pos, g):
    from sangja.image.trust import sign

    if not pos:
        raise UsageError("trust sign: requires at least 1 argument")
    key = load_signing_key(opts.get("key"))
    for s in pos:
        res = sign.sign(s, key)
        sys.stdout.write(f"Signed {res.reference} ({res.digest}) with {key.path}:"
                         f" {res.repository}:{res.tag}\n")  # fmt: skip
    return 0


def trust_inspect(opts, pos, g):
    from sangja.image.trust import sign

    if not pos:
        raise UsageError("trust inspect: requires at least 1 argument")
    out = [sign.inspect(s, opts.get("key", []), opts.get("signature_policy")) for s in pos]
    if not opts.get("pretty"):
        from sangja.jsonio import dumps_indent

        sys.stdout.write(dumps_indent(out) + "\n")
        return 0
    for i, info in enumerate(out):
        if i:
            sys.stdout.write("\n")
        sys.stdout.write(f"Signatures for {info['Name']} ({info['Digest']}, in"
                         f" {info['SignatureTag']})\n\n")  # fmt: skip
        if not info["Signatures"]:
            sys.stdout.write("No signatures.\n")
            continue
        rows = [("SIGNED REFERENCE", "DIGEST", "SIGNER", "CREATED", "PROBLEM")]
        for s in info["Signatures"]:
            rows.append((s["SignedReference"] or "-", (s["ManifestDigest"] or "-")[:19],
                         s["Signer"] or "(unknown key)", _when(s["Timestamp"]),
                         s["Problem"] or ""))  # fmt: skip
        widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        for r in rows:
            cells = (v.ljust(w) for v, w in zip(r, widths, strict=True))
            sys.stdout.write("   ".join(cells).rstrip() + "\n")
    return 0


def _when(ts) -> str:
    if ts is None:
        return "-"
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def trust_revoke(opts, pos, g):
    from sangja.image.trust import sign

    if len(pos) != 1:
        raise UsageError("trust revoke: requires exactly 1 argument")
    keys = opts.get("key", [])
    if not opts.get("yes"):
        if not sys.stdin.isatty():
            raise UsageError("trust revoke: confirm with -y (stdin is not a terminal)")
        what = "the signatures" + (f" by {', '.join(keys)}" if keys else "")
        answer = input(f"Remove {what} of {pos[0]} from its registry? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            sys.stdout.write("Nothing revoked.\n")
            return 1
    removed, left, how = sign.revoke(pos[0], keys)
    note = {"deleted": "the signature manifest is deleted",
            "emptied": "the registry does not delete manifests: the signature tag now holds none",
            "rewritten": f"{left} other signature{'s' * (left != 1)} kept"}[how]  # fmt: skip
    sys.stdout.write(f"Revoked {removed} signature{'s' * (removed != 1)} of {pos[0]} ({note})\n")
    return 0


TRUST = {
    "key": Sub({}, "generate NAME",
               "write NAME.key (ECDSA P-256, encrypted, cosign's format) and NAME.pub here",
               trust_key),
    "sign": Sub({"--key": ("key", "v")}, "[--key FILE] IMAGE[:TAG]...",
                "sign what the names are in their registry; the signatures go beside them",
                trust_sign),
    "inspect": Sub({"--key": ("key", "m"), "--pretty": ("pretty", "b"),
                    "--signature-policy": ("signature_policy", "v")},
                   "[--key PUB]... [--pretty] IMAGE[:TAG]...",
                   "the signatures stored for the images, and which known key made each",
                   trust_inspect),
    "revoke": Sub({"--key": ("key", "m"), "-y": ("yes", "b"), "--yes": ("yes", "b")},
                  "[--key PUB]... [-y] IMAGE[:TAG]",
                  "remove the image's signatures (with --key: only those that key made)",
                  trust_revoke),
}  # fmt: skip
