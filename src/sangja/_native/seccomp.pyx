# cython: language_level=3
"""The binding to csrc/seccomp_compile.h: rules in, a BPF program (bytes) out.

Loaded only when a container has a seccomp filter: libseccomp stays out of every other
runtime call.
"""

import os

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memset

from sangja.errors import SangjaError


cdef extern from "launch.h" nogil:
    struct sj_error:
        int err
        char msg[512]


cdef extern from "seccomp_compile.h" nogil:
    struct sj_scmp_arg:
        unsigned int index
        uint64_t value
        uint64_t value_two
        int op

    struct sj_scmp_rule:
        int nr
        uint32_t action
        const sj_scmp_arg *args
        size_t nargs

    struct sj_scmp_filter:
        uint32_t default_action
        const uint32_t *arches
        size_t narches
        const sj_scmp_rule *rules
        size_t nrules
        const char *const *names
        size_t nnames

    int sj_scmp_resolve_syscall(const char *name)
    int sj_scmp_flag_supported(unsigned int flag)
    uint32_t sj_scmp_resolve_arch(const char *name)
    int sj_scmp_compile(const sj_scmp_filter *f, int fd, sj_error *err)


cdef extern from "<seccomp.h>" nogil:
    struct scmp_version:
        unsigned int major
        unsigned int minor
        unsigned int micro

    const scmp_version *seccomp_version()


def resolve_syscall(str name):
    """The native syscall number, or -1 if this libseccomp does not know the name. A call
    that this architecture lacks but another of the filter's has (mmap2 on x86_64) is one
    of libseccomp's negative pseudo numbers, below -1: rules for it are valid."""
    return sj_scmp_resolve_syscall(name.encode())


def flag_supported(unsigned int flag):
    """Does this kernel know SECCOMP_FILTER_FLAG_* `flag`?"""
    return bool(sj_scmp_flag_supported(flag))


def resolve_arch(str name):
    """libseccomp's token for an arch name ('x86_64', 'aarch64', ...), or 0."""
    return sj_scmp_resolve_arch(name.encode())


def version():
    """libseccomp's version, 'major.minor.micro'."""
    cdef const scmp_version *v = seccomp_version()
    return f"{v.major}.{v.minor}.{v.micro}"


def compile(uint32_t default_action, arches, rules, stub_names=None):
    """rules: [(nr, action, [(index, value, value_two, op), ...]), ...] -> BPF bytes.
    stub_names: every syscall name of the profile, for the ENOSYS stub (None: no stub)."""
    cdef sj_scmp_filter f
    cdef const char **name_v = NULL
    cdef list keep = []
    cdef bytes bname
    cdef sj_error err
    cdef size_t nargs_total = sum(len(r[2]) for r in rules)
    cdef uint32_t *arch_v = <uint32_t *>PyMem_Malloc((len(arches) + 1) * sizeof(uint32_t))
    cdef sj_scmp_rule *rule_v = <sj_scmp_rule *>PyMem_Malloc((len(rules) + 1) * sizeof(sj_scmp_rule))
    cdef sj_scmp_arg *arg_v = <sj_scmp_arg *>PyMem_Malloc((nargs_total + 1) * sizeof(sj_scmp_arg))
    cdef size_t i, k = 0
    cdef int rc, fd = -1
    if stub_names is not None:
        name_v = <const char **>PyMem_Malloc((len(stub_names) + 1) * sizeof(char *))
    if arch_v == NULL or rule_v == NULL or arg_v == NULL or (
            stub_names is not None and name_v == NULL):
        PyMem_Free(arch_v)
        PyMem_Free(rule_v)
        PyMem_Free(arg_v)
        PyMem_Free(name_v)
        raise MemoryError()
    try:
        memset(&f, 0, sizeof(f))
        memset(&err, 0, sizeof(err))
        for i, a in enumerate(arches):
            arch_v[i] = a
        for i, (nr, action, args) in enumerate(rules):
            rule_v[i].nr = nr
            rule_v[i].action = action
            rule_v[i].args = &arg_v[k]
            rule_v[i].nargs = len(args)
            for index, value, value_two, op in args:
                arg_v[k].index = index
                arg_v[k].value = value
                arg_v[k].value_two = value_two
                arg_v[k].op = op
                k += 1
        f.default_action = default_action
        f.arches = arch_v
        f.narches = len(arches)
        f.rules = rule_v
        f.nrules = len(rules)
        if stub_names is not None:
            for i, name in enumerate(stub_names):
                bname = name.encode()
                keep.append(bname)
                name_v[i] = bname
            f.names = name_v
            f.nnames = len(stub_names)
        fd = os.memfd_create("sangja-seccomp", os.MFD_CLOEXEC)
        with nogil:
            rc = sj_scmp_compile(&f, fd, &err)
        if rc < 0:
            raise SangjaError(err.msg.decode(errors="replace"), errno=err.err)
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while True:
            b = os.read(fd, 65536)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)
    finally:
        if fd >= 0:
            os.close(fd)
        PyMem_Free(arch_v)
        PyMem_Free(rule_v)
        PyMem_Free(arg_v)
        PyMem_Free(name_v)
