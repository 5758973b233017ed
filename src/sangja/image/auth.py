"""Registry credentials: what `sangja login` stores, and Docker's ~/.docker/config.json.

Both files have Docker's shape: {"auths": {"<registry>": {"auth": base64("user:pass")}}}.
sangja's own is `$SANGJA_AUTH_FILE`, else `${XDG_CONFIG_HOME:-~/.config}/sangja/auth.json`
(mode 0600); it is read first, then `$DOCKER_CONFIG/config.json` (default ~/.docker).
Credential helpers (`credsStore`, `credHelpers`) are not run: such entries are skipped.
"""

from __future__ import annotations

import base64
import binascii
import os

from sangja.errors import SangjaError
from sangja.image.config import load_json

DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io",
                   "registry-1.docker.io")  # fmt: skip


def sangja_auth_file() -> str:
    p = os.environ.get("SANGJA_AUTH_FILE")
    if p:
        return p
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "sangja", "auth.json")


def docker_config_file() -> str:
    d = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(d, "config.json")


def normalize_key(server: str) -> str:
    """'https://host:5000/v1/' -> 'host:5000'; Docker Hub's names -> 'docker.io'."""
    s = server.strip()
    if s in DOCKER_HUB_KEYS:
        return "docker.io"
    for scheme in ("https://", "http://"):
        if s.startswith(scheme):
            s = s[len(scheme) :]
    s = s.split("/", 1)[0]
    return "docker.io" if s in DOCKER_HUB_KEYS else s


def _decode(entry: dict) -> tuple[str, str] | None:
    if not isinstance(entry, dict):
        return None
    if entry.get("auth"):
        try:
            user, sep, pw = base64.b64decode(entry["auth"]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        return (user, pw) if sep else None
    if entry.get("username") and entry.get("password") is not None:
        return entry["username"], entry["password"]
    return None


def lookup(domain: str) -> tuple[str, str] | None:
    """(user, password) for a registry, or None (anonymous)."""
    want = normalize_key(domain)
    for path in (sangja_auth_file(), docker_config_file()):
        auths = load_json(path).get("auths") or {}
        if not isinstance(auths, dict):
            continue
        for key, entry in auths.items():
            if normalize_key(key) == want:
                creds = _decode(entry)
                if creds:
                    return creds
    return None


def store(domain: str, user: str, password: str) -> str:
    """Save credentials in sangja's auth file (atomically, 0600); returns its path."""
    path = sangja_auth_file()
    doc = load_json(path)
    auths = doc.setdefault("auths", {})
    if not isinstance(auths, dict):
        auths = doc["auths"] = {}
    key = normalize_key(domain)
    for k in [k for k in auths if normalize_key(k) == key]:
        del auths[k]
    auths[key] = {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
    _write(path, doc)
    return path


def remove(domain: str) -> bool:
    path = sangja_auth_file()
    doc = load_json(path)
    auths = doc.get("auths") or {}
    key = normalize_key(domain)
    gone = [k for k in auths if normalize_key(k) == key]
    for k in gone:
        del auths[k]
    if gone:
        _write(path, doc)
    return bool(gone)


def _write(path: str, doc: dict) -> None:
    import json

    d = os.path.dirname(path)
    try:
        os.makedirs(d, mode=0o700, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent="\t")
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except OSError as e:
        raise SangjaError(f"write {path}: {e.strerror}")
