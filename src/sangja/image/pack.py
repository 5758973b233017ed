"""Writing a directory tree as an image layer blob: the mirror of `unpack`.

The work is done in C (csrc/pack/, without the GIL): one streaming pass walks the tree
(an overlay upper dir or a whole root; nothing is followed through a symlink), writes the
tar stream registries and Docker expect (PAX records for long names, big values and
xattrs; hardlinks as links; overlayfs whiteouts and opaque directories turned into OCI
`.wh.` entries; names sorted; mtimes clamped to SOURCE_DATE_EPOCH when asked), compresses
it (gzip through ISA-L or zlib, zstd, or none) and hashes both the tar stream (the
diff_id) and the bytes written (the blob digest).  The same tree gives the same bytes.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import os
from dataclasses import dataclass, field

from sangja.errors import PackError
from sangja.image.manifest import LAYER_MEDIA_TYPES

COMPRESSIONS = ("gzip", "zstd", "none")


@dataclass(frozen=True)
class Layer:
    diff_id: str  # "sha256:..." of the tar stream
    digest: str  # "sha256:..." of the blob (the compressed stream)
    size: int  # bytes of the blob
    compression: str  # "gzip" | "zstd" | "none"
    tar_size: int = 0  # bytes of the tar stream
    stats: dict = field(default_factory=dict)  # entries, files, whiteouts, ... (from C)

    @property
    def media_type(self) -> str:
        """The OCI layer media type of the blob."""
        return LAYER_MEDIA_TYPES[self.compression]


def source_date_epoch(env=None) -> int | None:
    """$SOURCE_DATE_EPOCH (reproducible-builds.org) as an int, or None if unset or empty."""
    v = (os.environ if env is None else env).get("SOURCE_DATE_EPOCH", "")
    if not v:
        return None
    try:
        return int(v)
    except ValueError:
        raise PackError(f"SOURCE_DATE_EPOCH={v!r}: want a number of seconds", errno=_errno.EINVAL)


def write_layer(
    root: str | os.PathLike,
    out: str | os.PathLike | int,
    *,
    compression: str = "gzip",
    level: int | None = None,
    source_date_epoch: int | None = None,
    one_file_system: bool = False,
    gzip: str = "isal",
) -> Layer:
    """Write the tree at `root` (not its own entry) as a layer blob to `out`.

    out: a path (created, or truncated; removed again if the write fails) or an open file
    descriptor (written from where it is; left to the caller on failure).
    compression: "gzip", "zstd" or "none".  level: None for the default (gzip: ISA-L
    level 1 of 0-3, or zlib 6 of 1-9 with gzip="zlib"; zstd: 3).
    source_date_epoch: later mtimes are written as this one (see `source_date_epoch()`).
    one_file_system: directories on another file system than root's (mounts in a live
    root) are written, their contents are not.
    Raises PackError (errno, path = the path in the tree when there is one).
    """
    if compression not in COMPRESSIONS:
        raise PackError(
            f"unknown compression {compression!r} (want {', '.join(COMPRESSIONS)})",
            errno=_errno.EINVAL,
        )
    from sangja._native import pack as _native  # the C extension: only when needed

    root = os.fspath(root)
    try:
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise PackError(f"layer source {root}: {e.strerror}", errno=e.errno or 0, path=root)
    own = not isinstance(out, int)
    try:
        if own:
            path = os.fspath(out)
            try:
                out_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                                 0o644)  # fmt: skip
            except OSError as e:
                raise PackError(f"layer output {path}: {e.strerror}", errno=e.errno or 0,
                                path=path)  # fmt: skip
        else:
            out_fd = out
        try:
            stats = _native.pack(
                root_fd, out_fd, compression=compression, gzip=gzip, level=level,
                source_date_epoch=source_date_epoch, one_file_system=one_file_system,
            )  # fmt: skip
        except BaseException as e:
            if own:
                os.close(out_fd)
                with contextlib.suppress(OSError):
                    os.unlink(path)
            if isinstance(e, PackError):
                raise PackError(f"layer of {root}: {e}", errno=e.errno, path=e.path)
            if isinstance(e, ValueError):
                raise PackError(f"layer of {root}: {e}", errno=_errno.EINVAL)
            raise
        if own:
            os.close(out_fd)
    finally:
        os.close(root_fd)
    return Layer(stats["diff_id"], stats["digest"], stats["compressed_bytes"], compression,
                 stats["tar_bytes"], stats)  # fmt: skip
