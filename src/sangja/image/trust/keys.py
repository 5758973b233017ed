"""Signing keys in cosign's formats: an ECDSA P-256 key pair, the private half encrypted
with a passphrase as `cosign generate-key-pair` writes it, the public half as PEM.

NAME.key: a PEM block `ENCRYPTED COSIGN PRIVATE KEY` (the type skopeo and podman read;
cosign reads it too, and also writes `ENCRYPTED SIGSTORE PRIVATE KEY`, which is read here as
well) whose body is the JSON of go-tuf's `encrypted` package:
    {"kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1}, "salt": B64},
     "cipher": {"name": "nacl/secretbox", "nonce": B64}, "ciphertext": B64}
the ciphertext being the PKCS#8 DER of the private key sealed with NaCl's secretbox
(XSalsa20-Poly1305) under scrypt(passphrase).  NAME.pub: `PUBLIC KEY` (SubjectPublicKeyInfo).

The curve, hashes and ECDSA come from `cryptography`; scrypt from hashlib (OpenSSL's);
secretbox from PyNaCl (libsodium) because `cryptography` has no XSalsa20.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass

from sangja.image.trust import TrustError

PRIVATE_TYPES = ("ENCRYPTED COSIGN PRIVATE KEY", "ENCRYPTED SIGSTORE PRIVATE KEY")
WRITE_TYPE = PRIVATE_TYPES[0]  # what skopeo 1.9 / c/image 5.23 accept
SCRYPT_N, SCRYPT_R, SCRYPT_P = 32768, 8, 1
SCRYPT_READ_N = (1 << 15, 1 << 16, 1 << 17)  # the go-tuf/securesystemslib presets: no more
PASSPHRASE_ENV = "SANGJA_TRUST_PASSPHRASE"
# SubjectPublicKeyInfo of an uncompressed P-256 point: everything before the 65 point bytes
_P256_SPKI = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200")


def _pem_blocks(data: bytes) -> list[tuple[str, bytes]]:
    out = []
    for m in re.finditer(rb"-----BEGIN ([A-Z0-9 ]+)-----\s*(.*?)-----END \1-----", data, re.S):
        try:
            body = base64.b64decode(b"".join(m.group(2).split()), validate=True)
        except ValueError:
            continue
        out.append((m.group(1).decode(), body))
    return out


def pem(kind: str, der: bytes) -> bytes:
    b64 = base64.b64encode(der).decode()
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return ("\n".join([f"-----BEGIN {kind}-----", *lines, f"-----END {kind}-----"]) + "\n").encode()


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(1 << 20)
    except OSError as e:
        raise TrustError(f"{what} {path}: {e.strerror}", errno=e.errno, path=path)


# ---- public keys ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicKey:
    """A key that verifies signatures: `label` names it to people (its file, or `keyData`)."""

    label: str
    spki: bytes  # DER SubjectPublicKeyInfo

    @property
    def fingerprint(self) -> str:
        return "sha256:" + hashlib.sha256(self.spki).hexdigest()

    def verify(self, signature: bytes, payload: bytes) -> bool:
        """The signature (ASN.1 DER ECDSA, PKCS#1 v1.5 RSA or Ed25519, over SHA-256 as
        sigstore signs) is this key's over payload."""
        from cryptography.exceptions import InvalidSignature

        try:
            key = self._key()
        except (ValueError, TypeError) as e:  # not a key cryptography can use
            raise TrustError(f"public key {self.label}: {e}")
        try:
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import ec

            if isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
                return True
            from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

            if isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
            elif isinstance(key, ed25519.Ed25519PublicKey):
                key.verify(signature, payload)
            else:
                return False
            return True
        except (InvalidSignature, ValueError):
            return False

    def _key(self):
        key = _KEYS.get(self.spki)
        if key is None:
            from cryptography.hazmat.primitives.asymmetric import ec

            if self.spki.startswith(_P256_SPKI) and len(self.spki) == len(_P256_SPKI) + 65:
                # the common case, without `serialization` (its import costs ~15 ms)
                point = self.spki[len(_P256_SPKI) :]
                key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
            else:
                from cryptography.hazmat.primitives.serialization import load_der_public_key

                key = load_der_public_key(self.spki)
            _KEYS[self.spki] = key
        return key


_KEYS: dict = {}


def public_key_from_pem(data: bytes, label: str, *, check: bool = True) -> PublicKey:
    """check=False: the key is parsed by `cryptography` only when it first verifies
    something (a verification the store remembers needs no `cryptography` at all)."""
    for kind, der in _pem_blocks(data):
        if kind == "PUBLIC KEY":
            key = PublicKey(label, der)
            if check:
                try:
                    key._key()
                except (ValueError, TypeError) as e:  # not a key cryptography can use
                    raise TrustError(f"public key {label}: {e}")
            return key
    raise TrustError(f"public key {label}: no PEM block 'PUBLIC KEY' in it")


def load_public(path: str, *, check: bool = True) -> PublicKey:
    return public_key_from_pem(_read(path, "public key"), path, check=check)


# ---- private keys --------------------------------------------------------------------------


@dataclass
class PrivateKey:
    path: str
    key: object  # cryptography's EllipticCurvePrivateKey

    def sign(self, payload: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        return self.key.sign(payload, ec.ECDSA(hashes.SHA256()))

    def public(self) -> PublicKey:
        from cryptography.hazmat.primitives import serialization

        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return PublicKey(self.path, der)


def _scrypt(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(passphrase, salt=salt, n=n, r=r, p=p, dklen=32,
                          maxmem=256 * r * n + (1 << 20))  # fmt: skip


def encrypt(plaintext: bytes, passphrase: bytes) -> bytes:
    """go-tuf's `encrypted.Encrypt`: the JSON document (bytes)."""
    import nacl.secret

    salt, nonce = os.urandom(32), os.urandom(24)
    box = nacl.secret.SecretBox(_scrypt(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P))
    sealed = box.encrypt(plaintext, nonce).ciphertext
    from sangja.jsonio import dumps

    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return dumps({
        "kdf": {"name": "scrypt", "params": {"N": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P},
                "salt": b64(salt)},
        "cipher": {"name": "nacl/secretbox", "nonce": b64(nonce)},
        "ciphertext": b64(sealed),
    }).encode()  # fmt: skip


def decrypt(doc: bytes, passphrase: bytes, what: str) -> bytes:
    """go-tuf's `encrypted.Decrypt`, with its checks: scrypt + nacl/secretbox only, and the
    scrypt parameters of its presets (a file may not make us spend unbounded memory)."""
    from sangja.jsonio import loads

    try:
        d = loads(doc)
        kdf, cipher = d["kdf"], d["cipher"]
        params = kdf["params"]
        n, r, p = params["N"], params["r"], params["p"]
        salt = base64.b64decode(kdf["salt"], validate=True)
        nonce = base64.b64decode(cipher["nonce"], validate=True)
        sealed = base64.b64decode(d["ciphertext"], validate=True)
    except (ValueError, KeyError, TypeError):
        raise TrustError(f"{what}: not an encrypted key document (cosign's format)")
    if kdf.get("name") != "scrypt" or cipher.get("name") != "nacl/secretbox":
        raise TrustError(f"{what}: unsupported encryption {kdf.get('name')}/{cipher.get('name')}")
    if n not in SCRYPT_READ_N or r != 8 or p != 1:
        raise TrustError(f"{what}: unexpected scrypt parameters N={n} r={r} p={p}")
    if len(nonce) != 24:
        raise TrustError(f"{what}: bad nonce size {len(nonce)}")
    import nacl.exceptions
    import nacl.secret

    box = nacl.secret.SecretBox(_scrypt(passphrase, salt, n, r, p))
    try:
        return box.decrypt(sealed, nonce)
    except nacl.exceptions.CryptoError:
        raise TrustError(f"{what}: cannot decrypt it: wrong passphrase (or a damaged key)")


def load_private(path: str, passphrase: bytes) -> PrivateKey:
    data = _read(path, "private key")
    blocks = [(k, b) for k, b in _pem_blocks(data) if k in PRIVATE_TYPES]
    if not blocks:
        kinds = " or ".join(map(repr, PRIVATE_TYPES))
        raise TrustError(
            f"private key {path}: no PEM block {kinds} in it (a key of"
            " `sangja trust key generate` or `cosign generate-key-pair`)"
        )
    der = decrypt(blocks[0][1], passphrase, f"private key {path}")
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_private_key

    try:
        key = load_der_private_key(der, None)
    except (ValueError, TypeError) as e:
        raise TrustError(f"private key {path}: {e}")
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TrustError(f"private key {path}: not an ECDSA key (sangja signs with ECDSA only)")
    return PrivateKey(path, key)


def generate(name: str, passphrase: bytes, directory: str = ".") -> tuple[str, str]:
    """NAME.key and NAME.pub in `directory` -> their paths.  Neither may exist yet; the
    private key is written 0600, each file through a temporary name renamed into place, so
    nothing half-written is ever left under either name."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    if not name or "/" in name or name in (".", ".."):
        raise TrustError(f"invalid key name {name!r} (a file name, without .key/.pub)")
    priv_path, pub_path = (name + ext if directory == "." else os.path.join(directory, name + ext)
                           for ext in (".key", ".pub"))  # fmt: skip
    for p in (priv_path, pub_path):
        if os.path.lexists(p):
            raise TrustError(f"{p} exists already: remove it first, or choose another name")
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())  # fmt: skip
    priv = pem(WRITE_TYPE, encrypt(der, passphrase))
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    written = []
    try:
        for path, data, mode in ((priv_path, priv, 0o600), (pub_path, pub, 0o644)):
            _write_new(path, data, mode)
            written.append(path)
    except BaseException:
        for p in written:
            os.unlink(p)
        raise
    return priv_path, pub_path


def _write_new(path: str, data: bytes, mode: int) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    try:
        os.link(tmp, path)  # fails if the name appeared meanwhile: never overwrites
    except OSError as e:
        os.unlink(tmp)
        raise TrustError(f"write {path}: {e.strerror}", errno=e.errno, path=path)
    os.unlink(tmp)


def passphrase(*, confirm: bool, what: str) -> bytes:
    """$SANGJA_TRUST_PASSPHRASE if it is set (empty too, as COSIGN_PASSWORD), else asked on
    the terminal (twice when `confirm`)."""
    env = os.environ.get(PASSPHRASE_ENV)
    if env is not None:
        return env.encode()
    import sys

    if not sys.stdin.isatty():
        raise TrustError(
            f"no passphrase for {what}: set {PASSPHRASE_ENV} (stdin is not a terminal)"
        )
    import getpass

    pw = getpass.getpass(f"Enter passphrase for {what}: ")
    if confirm and getpass.getpass(f"Enter passphrase for {what} again: ") != pw:
        raise TrustError("the passphrases do not match")
    return pw.encode()
