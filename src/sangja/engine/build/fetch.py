"""ADD of an http(s) URL: the file is downloaded by the build (not in a container) into
its working directory, hashed on the way (the cache keys on its content, as Docker's
does: it is fetched on every build), and added with mode 0600 and the mtime of its
Last-Modified header.  `--checksum=sha256:…` is verified.  The proxy variables of the
environment apply (urllib's rules)."""

from __future__ import annotations

import hashlib
import os
import urllib.parse

from sangja.errors import SangjaError


class FetchError(SangjaError):
    pass


def is_url(s: str) -> bool:
    return s.startswith(("http://", "https://"))


def is_git(s: str) -> bool:
    return s.startswith("git@") or s.endswith(".git") and "://" in s or s.startswith("git://")


def filename(url: str) -> str:
    path = urllib.parse.urlparse(url).path
    name = path.rstrip("/").rsplit("/", 1)[-1] if path.strip("/") else ""
    return urllib.parse.unquote(name)


def download(url: str, dest_dir: str, checksum: str | None = None, timeout: float = 300):
    """-> (path, sha256 hex, mtime in ns or None, size)."""
    import email.utils
    import urllib.request

    path = os.path.join(dest_dir, "download")
    h = hashlib.sha256()
    size = 0
    try:
        req = urllib.request.Request(url, headers={"User-Agent": "sangja-build"})
        with urllib.request.urlopen(req, timeout=timeout) as resp, open(path, "wb") as out:
            if resp.status != 200:
                raise FetchError(f"ADD {url}: HTTP {resp.status}")
            lm = resp.headers.get("Last-Modified")
            while chunk := resp.read(1 << 20):
                h.update(chunk)
                out.write(chunk)
                size += len(chunk)
    except OSError as e:
        reason = getattr(e, "reason", None) or getattr(e, "strerror", None) or e
        code = getattr(e, "code", None)
        raise FetchError(f"ADD {url}: {f'HTTP {code}: ' if code else ''}{reason}")
    mtime = None
    if lm:
        try:
            mtime = int(email.utils.parsedate_to_datetime(lm).timestamp()) * 1_000_000_000
        except (TypeError, ValueError):
            mtime = None
    digest = h.hexdigest()
    if checksum:
        algo, _, want = checksum.partition(":")
        if algo != "sha256" or not want:
            raise FetchError(f"ADD --checksum={checksum}: want sha256:<hex>")
        if want.lower() != digest:
            raise FetchError(f"ADD {url}: checksum mismatch: expected sha256:{want}, got"
                             f" sha256:{digest}")  # fmt: skip
    return path, digest, mtime, size
