# cython: language_level=3
"""The binding to csrc/extract/extract.h: a layer blob fd and a directory fd in, stats out.

Conversion only; the GIL is released for the whole extraction.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.errno cimport errno
from libc.stdint cimport uint64_t
from libc.string cimport strerror as c_strerror

from sangja.errors import UnpackError


cdef extern from "extract/extract.h" nogil:
    enum:
        SJ_COMP_AUTO
        SJ_COMP_NONE
        SJ_COMP_GZIP
        SJ_COMP_ZSTD
        SJ_GZIP_ISAL
        SJ_GZIP_ZLIB
        SJ_EXTRACT_ENTRY_MAX
        SJ_EXTRACT_MSG_MAX

    struct sj_extract_opts:
        int in_fd
        int root_fd
        const int *lower_fds
        int n_lowers
        uint64_t max_bytes
        uint64_t max_entries
        int workers
        int compression
        int gzip_impl
        int hash_thread

    struct sj_extract_stats:
        uint64_t entries
        uint64_t compressed_bytes
        uint64_t tar_bytes
        uint64_t file_bytes
        uint64_t whiteouts
        uint64_t opaques
        uint64_t xattrs_skipped
        int compression
        char digest[72]
        char diff_id[72]

    struct sj_extract_error:
        int err
        char entry[SJ_EXTRACT_ENTRY_MAX]
        char msg[SJ_EXTRACT_MSG_MAX]

    int sj_extract(const sj_extract_opts *opts, sj_extract_stats *stats,
                   sj_extract_error *err)


cdef extern from "extract/sha256.h" nogil:
    int sjx_sha256_accelerated()


cdef extern from "unistd.h" nogil:
    int c_syncfs "syncfs"(int fd)


_COMPRESSION = {"auto": SJ_COMP_AUTO, "none": SJ_COMP_NONE, "gzip": SJ_COMP_GZIP,
                "zstd": SJ_COMP_ZSTD}
_COMPRESSION_NAME = {SJ_COMP_NONE: "none", SJ_COMP_GZIP: "gzip", SJ_COMP_ZSTD: "zstd"}
_GZIP = {"isal": SJ_GZIP_ISAL, "zlib": SJ_GZIP_ZLIB}


cdef str strerror(int e):
    return c_strerror(e).decode()


def sha256_accelerated():
    """True if the digests use the CPU's SHA instructions."""
    return bool(sjx_sha256_accelerated())


def syncfs(int fd):
    """syncfs(2): flush the file system holding fd (the new layer) to disk."""
    cdef int rc, e = 0
    with nogil:
        rc = c_syncfs(fd)
        if rc < 0:
            e = errno
    if rc < 0:
        raise OSError(e, strerror(e))


def extract(int in_fd, int root_fd, lower_fds=(), *, max_bytes=0, max_entries=0,
            int workers=-1, compression="auto", gzip="isal", hash_thread=None):
    """Unpack the layer blob read from in_fd into the directory root_fd.

    lower_fds: directory fds of the parent layers, nearest first (see extract.h).
    max_bytes, max_entries: 0 for the C defaults (32 GiB, 4 Mi entries).
    workers: writer threads, -1 for the default.
    hash_thread: hash on a thread of its own (True) or on the extracting thread (False);
    None: by the number of CPUs.
    Returns a dict of stats with the "sha256:..." digest and diff_id; raises
    UnpackError (errno, path = the tar entry or None) and leaves the directory
    as it is (the caller removes it).
    """
    cdef sj_extract_opts o
    cdef sj_extract_stats st
    cdef sj_extract_error err
    cdef int rc
    cdef Py_ssize_t i, n = len(lower_fds)
    cdef int *lowers = NULL

    if compression not in _COMPRESSION:
        raise ValueError(f"compression must be one of {sorted(_COMPRESSION)}")
    if gzip not in _GZIP:
        raise ValueError(f"gzip must be one of {sorted(_GZIP)}")
    if max_bytes < 0 or max_entries < 0:
        raise ValueError("limits must be positive (0 means the default)")
    o.in_fd = in_fd
    o.root_fd = root_fd
    o.n_lowers = <int>n
    o.max_bytes = max_bytes
    o.max_entries = max_entries
    o.workers = workers
    o.compression = _COMPRESSION[compression]
    o.gzip_impl = _GZIP[gzip]
    o.hash_thread = -1 if hash_thread is None else (1 if hash_thread else 0)
    if n:
        lowers = <int *>PyMem_Malloc(n * sizeof(int))
        if lowers == NULL:
            raise MemoryError()
        for i in range(n):
            lowers[i] = lower_fds[i]
    o.lower_fds = lowers
    try:
        with nogil:
            rc = sj_extract(&o, &st, &err)
    finally:
        PyMem_Free(lowers)
    if rc < 0:
        entry = err.entry.decode("utf-8", "surrogateescape") if err.entry[0] else None
        raise UnpackError(err.msg.decode("utf-8", "replace"), errno=err.err, path=entry)
    return {
        "entries": st.entries,
        "compressed_bytes": st.compressed_bytes,
        "tar_bytes": st.tar_bytes,
        "file_bytes": st.file_bytes,
        "whiteouts": st.whiteouts,
        "opaques": st.opaques,
        "xattrs_skipped": st.xattrs_skipped,
        "compression": _COMPRESSION_NAME.get(st.compression, "none"),
        "digest": st.digest.decode(),
        "diff_id": st.diff_id.decode(),
    }
