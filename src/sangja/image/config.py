"""The engine's settings for images, from the environment and an optional JSON file.

`$SANGJA_CONFIG` (default `/etc/sangja/daemon.json`), keys as in Docker's daemon.json:
    {"default-registry": "registry.example:5000", "cgroup-parent": "/sangja",
     "insecure-registries": ["10.0.0.5:5000", "10.1.0.0/16"],
     "certs-d": ["/etc/sangja/certs.d", "/etc/docker/certs.d"],
     "max-concurrent-downloads": 3, "max-concurrent-uploads": 5,
     "push-chunk-size": 33554432,
     "signature-policy": "/etc/sangja/policy.json", "content-trust": false}
The environment wins: SANGJA_DEFAULT_REGISTRY, SANGJA_INSECURE_REGISTRIES (comma list),
SANGJA_CERTS_D (colon list), SANGJA_ROOT (engine data, default /var/lib/sangja),
SANGJA_MAX_CONCURRENT_DOWNLOADS, SANGJA_MAX_CONCURRENT_UPLOADS, SANGJA_PUSH_CHUNK_SIZE,
SANGJA_CONTENT_TRUST (the trust settings: sangja.image.trust).
"""

from __future__ import annotations

import functools
import os

from sangja.errors import SangjaError

DEFAULT_CONFIG = "/etc/sangja/daemon.json"
DEFAULT_ROOT = "/var/lib/sangja"
DEFAULT_CERTS_D = ("/etc/sangja/certs.d", "/etc/docker/certs.d")


def load_json(path: str) -> dict:
    """A JSON object from a file; {} if there is no file (or it is empty)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise SangjaError(f"read {path}: {e.strerror}")
    if not data.strip():
        return {}
    from sangja.jsonio import loads

    try:
        doc = loads(data)
    except ValueError as e:
        raise SangjaError(f"{path}: invalid JSON: {e}")
    if not isinstance(doc, dict):
        raise SangjaError(f"{path}: want a JSON object")
    return doc


def config_path() -> str:
    return os.environ.get("SANGJA_CONFIG") or DEFAULT_CONFIG


@functools.cache
def _file() -> dict:
    return load_json(config_path())


def setting(key: str, default=None):
    """A key of the engine config file as it is (the caller checks its type)."""
    return _file().get(key, default)


def root() -> str:
    return os.environ.get("SANGJA_ROOT") or _file().get("data-root") or DEFAULT_ROOT


def cgroup_parent() -> str:
    """Where containers' cgroups go when --cgroup-parent does not say (Docker's
    default-cgroup-parent): SANGJA_CGROUP_PARENT, `cgroup-parent`, else /sangja."""
    return os.environ.get("SANGJA_CGROUP_PARENT") or _file().get("cgroup-parent") or "/sangja"


def default_registry() -> str:
    return (
        os.environ.get("SANGJA_DEFAULT_REGISTRY")
        or _file().get("default-registry")
        or ("docker.io")
    )


def certs_dirs() -> list[str]:
    env = os.environ.get("SANGJA_CERTS_D")
    if env is not None:
        return [d for d in env.split(":") if d]
    return list(_file().get("certs-d") or DEFAULT_CERTS_D)


def _positive(env: str, key: str, default: int) -> int:
    v = os.environ.get(env) or _file().get(key, default)
    try:
        n = int(v)
    except (TypeError, ValueError):
        n = 0
    if n < 1:
        raise SangjaError(f"invalid {key} {v!r} (want a positive number)")
    return n


def max_concurrent_downloads() -> int:
    return _positive("SANGJA_MAX_CONCURRENT_DOWNLOADS", "max-concurrent-downloads", 3)


def max_concurrent_uploads() -> int:
    """Docker's default: 5 blobs pushed at once."""
    return _positive("SANGJA_MAX_CONCURRENT_UPLOADS", "max-concurrent-uploads", 5)


def push_chunk_size() -> int:
    """A blob up to this size is pushed in one request (monolithic); a bigger one in
    chunks of this size (PATCH), which a dropped connection resumes."""
    return _positive("SANGJA_PUSH_CHUNK_SIZE", "push-chunk-size", 32 << 20)


def _insecure_list() -> list[str]:
    env = os.environ.get("SANGJA_INSECURE_REGISTRIES")
    if env is not None:
        return [s.strip() for s in env.split(",") if s.strip()]
    return list(_file().get("insecure-registries") or ())


def _host_of(domain: str) -> str:
    if domain.startswith("["):
        return domain[1 : domain.index("]")]
    return domain.rsplit(":", 1)[0] if domain.count(":") == 1 else domain


def is_loopback(domain: str) -> bool:
    host = _host_of(domain)
    if host == "localhost":
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_insecure(domain: str) -> bool:
    """Named insecure (by host:port, host, or a CIDR holding its address): plain HTTP is
    allowed and TLS certificates are not verified.  Loopback is not in this list: it may
    use plain HTTP, but a TLS certificate it presents is still verified."""
    import ipaddress

    host = _host_of(domain)
    for entry in _insecure_list():
        if entry in (domain, host):
            return True
        if "/" in entry:
            try:
                if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def plain_http_allowed(domain: str) -> bool:
    return is_loopback(domain) or is_insecure(domain)
