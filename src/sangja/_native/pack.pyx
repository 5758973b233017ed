# cython: language_level=3
"""The binding to csrc/pack/pack.h: a tree's directory fd and an output fd in, stats out.

Conversion only; the GIL is released for the whole write.
"""

from libc.stdint cimport int64_t, uint64_t

from sangja.errors import PackError


cdef extern from "pack/pack.h" nogil:
    enum:
        SJP_COMP_NONE
        SJP_COMP_GZIP
        SJP_COMP_ZSTD
        SJP_GZIP_ISAL
        SJP_GZIP_ZLIB
        SJP_LEVEL_DEFAULT
        SJP_PATH_MAX
        SJP_MSG_MAX

    int64_t SJP_NO_EPOCH

    struct sj_pack_opts:
        int root_fd
        int out_fd
        int compression
        int gzip_impl
        int level
        int64_t source_date_epoch
        int one_file_system

    struct sj_pack_stats:
        uint64_t entries
        uint64_t files
        uint64_t file_bytes
        uint64_t hardlinks
        uint64_t whiteouts
        uint64_t opaques
        uint64_t sockets_skipped
        uint64_t mounts_skipped
        uint64_t tar_bytes
        uint64_t compressed_bytes
        char diff_id[72]
        char digest[72]

    struct sj_pack_error:
        int err
        char path[SJP_PATH_MAX]
        char msg[SJP_MSG_MAX]

    int sj_pack(const sj_pack_opts *opts, sj_pack_stats *stats, sj_pack_error *err)


_COMPRESSION = {"none": SJP_COMP_NONE, "gzip": SJP_COMP_GZIP, "zstd": SJP_COMP_ZSTD}
_GZIP = {"isal": SJP_GZIP_ISAL, "zlib": SJP_GZIP_ZLIB}


def pack(int root_fd, int out_fd, *, compression="gzip", gzip="isal", level=None,
         source_date_epoch=None, bint one_file_system=False):
    """Write the tree at root_fd as a layer blob to out_fd (see pack.h).

    level: None for the default (ISA-L 1, zlib 6, zstd 3).  source_date_epoch: None, or
    the latest mtime to write (later ones are clamped to it).
    Returns a dict of stats with the "sha256:..." digest and diff_id; raises PackError
    (errno, path = the path in the tree, or None) and leaves out_fd as it is (the caller
    removes the partial blob).
    """
    cdef sj_pack_opts o
    cdef sj_pack_stats st
    cdef sj_pack_error err
    cdef int rc

    if compression not in _COMPRESSION:
        raise ValueError(f"compression must be one of {sorted(_COMPRESSION)}")
    if gzip not in _GZIP:
        raise ValueError(f"gzip must be one of {sorted(_GZIP)}")
    o.root_fd = root_fd
    o.out_fd = out_fd
    o.compression = _COMPRESSION[compression]
    o.gzip_impl = _GZIP[gzip]
    o.level = SJP_LEVEL_DEFAULT if level is None else level
    o.source_date_epoch = SJP_NO_EPOCH if source_date_epoch is None else source_date_epoch
    o.one_file_system = one_file_system
    with nogil:
        rc = sj_pack(&o, &st, &err)
    if rc < 0:
        path = err.path.decode("utf-8", "surrogateescape") if err.path[0] else None
        raise PackError(err.msg.decode("utf-8", "replace"), errno=err.err, path=path)
    return {
        "entries": st.entries,
        "files": st.files,
        "file_bytes": st.file_bytes,
        "hardlinks": st.hardlinks,
        "whiteouts": st.whiteouts,
        "opaques": st.opaques,
        "sockets_skipped": st.sockets_skipped,
        "mounts_skipped": st.mounts_skipped,
        "tar_bytes": st.tar_bytes,
        "compressed_bytes": st.compressed_bytes,
        "digest": st.digest.decode(),
        "diff_id": st.diff_id.decode(),
    }
