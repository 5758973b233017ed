"""Unpacking one image layer blob into `layers/<chain_id>/`, ready to be an overlayfs lower dir.

The work is done in C (csrc/extract*.c, without the GIL): one streaming pass decompresses
(gzip or zstd, detected by magic bytes), unpacks the tar with every write confined to the
layer directory, turns OCI whiteouts into overlayfs ones, and hashes both the compressed
bytes (the layer digest) and the tar stream (the diff_id).  Here: the temp directory, the
digest checks, and the atomic rename that makes the layer visible.
"""

from __future__ import annotations

import errno as _errno
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field

from sangja.errors import UnpackError

DEFAULT_MAX_BYTES = 32 << 30  # uncompressed tar stream
DEFAULT_MAX_ENTRIES = 4 << 20
TMP_PREFIX = ".tmp-"

# a layer directory name: one path component, never one of our temp names
_CHAIN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:+-]*")


@dataclass(frozen=True)
class UnpackResult:
    path: str  # layers_dir/<chain_id>
    created: bool  # False: it was already there, nothing was read
    digest: str | None = None  # "sha256:..." of the blob as read
    diff_id: str | None = None  # "sha256:..." of the uncompressed tar stream
    stats: dict = field(default_factory=dict)  # entries, bytes, whiteouts, ... (from C)


def unpack_layer(
    blob_path: str,
    layers_dir: str,
    chain_id: str,
    expected_digest: str | None = None,
    expected_diff_id: str | None = None,
    *,
    parents: tuple[str, ...] | list[str] = (),
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    workers: int | None = None,
    sync: bool = True,
) -> UnpackResult:
    """Unpack `blob_path` into `layers_dir/<chain_id>` unless it is already there.

    parents: the unpacked parent layers, nearest first; only read, to resolve directories
    this layer writes under without containing them (see csrc/extract/extract.h).
    sync: flush the new layer to disk before it is renamed into place, so that a crash
    never leaves a layer that looks whole but is not.
    Raises UnpackError; on any failure nothing is left behind in layers_dir.
    """
    if not _CHAIN_ID.fullmatch(chain_id):
        raise UnpackError(f"invalid chain id {chain_id!r}", errno=_errno.EINVAL, path=chain_id)
    final = os.path.join(layers_dir, chain_id)
    if os.path.isdir(final):
        return UnpackResult(final, created=False)

    from sangja._native import extract as _native  # the C extension: only when needed

    try:
        os.makedirs(layers_dir, mode=0o700, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=TMP_PREFIX, dir=layers_dir)
    except OSError as e:
        raise _os_error(e, "cannot create the layer directory")
    fds: list[int] = []
    try:
        os.chmod(tmp, 0o755)  # the layer root; a "./" entry in the tar may set it
        try:
            fds.append(os.open(blob_path, os.O_RDONLY | os.O_CLOEXEC))
            fds.append(os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
            for p in parents:
                fds.append(os.open(p, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
        except OSError as e:
            raise _os_error(e, "cannot open")
        stats = _native.extract(
            fds[0],
            fds[1],
            fds[2:],
            max_bytes=max_bytes,
            max_entries=max_entries,
            workers=-1 if workers is None else workers,
        )
        _check("digest", blob_path, expected_digest, stats["digest"])
        _check("diff_id", blob_path, expected_diff_id, stats["diff_id"])
        if sync:
            _native.syncfs(fds[1])
        try:
            os.rename(tmp, final)
        except OSError as e:
            if e.errno in (_errno.EEXIST, _errno.ENOTEMPTY) and os.path.isdir(final):
                _remove_tree(tmp)  # unpacked concurrently by someone else: theirs stays
                return UnpackResult(final, created=False)
            raise _os_error(e, "cannot rename the layer into place")
        if sync:
            _fsync_dir(layers_dir)
    except BaseException:
        _remove_tree(tmp)
        raise
    finally:
        for fd in fds:
            os.close(fd)
    return UnpackResult(final, True, stats["digest"], stats["diff_id"], stats)


def _check(what: str, blob_path: str, expected: str | None, got: str) -> None:
    if expected is not None and expected != got:
        raise UnpackError(
            f"layer {blob_path}: {what} mismatch: expected {expected}, got {got}",
            errno=_errno.EBADMSG,
            path=blob_path,
        )


def _os_error(e: OSError, what: str) -> UnpackError:
    where = f" {e.filename}" if e.filename else ""
    return UnpackError(f"{what}{where}: {e.strerror}", errno=e.errno or 0, path=e.filename)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_tree(path: str) -> None:
    """Remove a half-written layer (its directories may be mode 0555 or 0000)."""
    if not os.path.lexists(path):
        return
    try:
        shutil.rmtree(path)
    except OSError:
        # not root (no CAP_DAC_OVERRIDE): open the directories up, then retry.  Never
        # through a symlink: the layer's symlinks point anywhere on the host.
        for top, dirs, _ in os.walk(path):
            for d in [top, *(os.path.join(top, d) for d in dirs)]:
                if not os.path.islink(d):
                    try:
                        os.chmod(d, 0o700)
                    except OSError:
                        pass
        shutil.rmtree(path, ignore_errors=True)
