"""Layer blobs as uncompressed tar streams (for docker-archive save and diff_id checks).

The extractor (C) decompresses on its own when it unpacks; this is for the few places that
need the tar bytes themselves.  gzip through zlib; zstd through Debian's `zstd` command
(Python 3.11 has no zstd module, and the stream is only ever read front to back).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import zlib

from sangja.errors import SangjaError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
CHUNK = 1 << 20


def detect(head: bytes) -> str:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "none"


def detect_file(path: str) -> str:
    with open(path, "rb") as f:
        return detect(f.read(4))


def stream(path: str):
    """Yield the uncompressed bytes of a blob, chunk by chunk."""
    kind = detect_file(path)
    if kind == "none":
        with open(path, "rb") as f:
            while b := f.read(CHUNK):
                yield b
    elif kind == "gzip":
        yield from _gunzip(path)
    else:
        yield from _unzstd(path)


def _gunzip(path: str):
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    fed = False  # the current member has had input
    pending = b""
    with open(path, "rb") as f:
        while True:
            if not pending:
                pending = f.read(CHUNK)
                if not pending:
                    if fed and (out := d.flush()):
                        yield out
                    break
            try:
                out = d.decompress(pending, CHUNK * 4)
            except zlib.error as e:
                raise SangjaError(f"{path}: corrupt gzip stream: {e}")
            fed = True
            pending = d.unconsumed_tail
            if out:
                yield out
            if d.eof:  # concatenated members (pigz and some builders write them)
                pending = d.unused_data + pending
                d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                fed = False
    if fed and not d.eof:
        raise SangjaError(f"{path}: corrupt gzip stream: unexpected end of data")


def _unzstd(path: str):
    exe = shutil.which("zstd")
    if exe is None:
        raise SangjaError("zstd layers need the zstd command (Debian package zstd)")
    p = subprocess.Popen([exe, "-q", "-d", "-c", path], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)  # fmt: skip
    try:
        while b := p.stdout.read(CHUNK):
            yield b
    finally:
        p.stdout.close()
        err = p.stderr.read().decode(errors="replace").strip()
        p.stderr.close()
        if p.wait() != 0:
            raise SangjaError(f"{path}: corrupt zstd stream: {err.splitlines()[-1] if err else ''}")


def diff_id(path: str) -> str:
    """sha256 of the uncompressed stream."""
    h = hashlib.sha256()
    for b in stream(path):
        h.update(b)
    return "sha256:" + h.hexdigest()
