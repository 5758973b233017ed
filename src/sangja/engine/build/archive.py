"""Tar archives a build unpacks: a context on stdin, and ADD of a local archive.

Recognized by their content, as Docker does (never by the name): a tar, or a tar
compressed with gzip, bzip2, xz or zstd.  Unpacking is the layer extractor's (C,
sangja.image.unpack): every entry is written relative to the target directory and can
never land outside it (`..`, absolute names, symlink-then-write, hardlinks out), however
hostile the archive.  bzip2 and xz, which the extractor does not read, are decompressed
to a temporary file first.  One difference from Docker follows from the extractor:
entries named `.wh.*` are read as OCI whiteouts, not as files of that name.
"""

from __future__ import annotations

import os

from sangja.errors import SangjaError

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


class ArchiveError(SangjaError):
    pass


def _is_tar(block: bytes) -> bool:
    if len(block) < 512:
        return False
    if block[257:262] == b"ustar":
        return True
    # a v7 tar: a valid header checksum
    try:
        want = int(block[148:156].split(b"\0")[0].strip() or b"-1", 8)
    except ValueError:
        return False
    got = sum(block[:148]) + 8 * 32 + sum(block[156:512])
    return want == got


def kind(head: bytes) -> str | None:
    """'tar', or the compression of a compressed tar, from the first bytes (at least 512
    for a plain tar); None: not an archive we unpack."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name if _is_tar(_decompress_head(name, head)) else None
    return "tar" if _is_tar(head[:512]) else None


def _decompress_head(name: str, head: bytes) -> bytes:
    try:
        if name == "gzip":
            import zlib

            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 512)
        if name == "bzip2":
            import bz2

            return bz2.BZ2Decompressor().decompress(head, 512)
        if name == "xz":
            import lzma

            return lzma.LZMADecompressor().decompress(head, 512)
        if name == "zstd":
            return _zstd_head(head)
    except (OSError, EOFError, ValueError, ImportError):
        return b""
    except Exception:  # zlib.error, lzma.LZMAError: not a stream of that kind
        return b""
    return b""


def _zstd_head(head: bytes) -> bytes:
    """zstd has no decoder in Python's library: ask the zstd tool for a block, if any."""
    import shutil
    import subprocess

    tool = shutil.which("zstd")
    if not tool:
        return b""
    p = subprocess.run([tool, "-dc"], input=head, capture_output=True)
    return p.stdout[:512]


def file_kind(path: str) -> str | None:
    with open(path, "rb") as f:
        return kind(f.read(64 << 10))


def unpack(path: str, target: str) -> dict:
    """Unpack the archive at `path` into the directory `target` (confined)."""
    from sangja.errors import UnpackError

    k = file_kind(path)
    if k is None:
        raise ArchiveError(f"{path}: not a tar archive")
    src = path
    tmp = None
    try:
        if k in ("bzip2", "xz"):
            import bz2
            import lzma

            opener = bz2.open if k == "bzip2" else lzma.open
            tmp = path + ".tar"
            with opener(path, "rb") as fin, open(tmp, "wb") as fout:
                while chunk := fin.read(1 << 20):
                    fout.write(chunk)
            src = tmp
        from sangja._native import extract as _native

        fds = []
        try:
            fds.append(os.open(src, os.O_RDONLY | os.O_CLOEXEC))
            fds.append(os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
            try:
                return _native.extract(fds[0], fds[1], ())
            except UnpackError as e:
                raise ArchiveError(f"unpack {os.path.basename(path)}: {e}", errno=e.errno,
                                   path=e.path)  # fmt: skip
        finally:
            for fd in fds:
                os.close(fd)
    except (OSError, EOFError) as e:
        raise ArchiveError(f"unpack {os.path.basename(path)}: {e}")
    finally:
        if tmp:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
