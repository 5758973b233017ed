# cython: language_level=3
"""The binding to csrc/cgroup/bpf.h: cgroup v2 device control.

The program's instructions are built in Python (sangja.runtime.cgroups.devices); this only
hands them to the kernel.
"""

cdef extern from "launch/launch.h" nogil:
    struct sj_error:
        int err
        char msg[512]


cdef extern from "cgroup/bpf.h" nogil:
    int sj_cgroup_attach_device_program(int cgroup_fd, const void *insns, size_t ninsns,
                                        sj_error *err)


def attach_device_program(int cgroup_fd, bytes insns):
    """Load `insns` (struct bpf_insn[], 8 bytes each) as a BPF_PROG_TYPE_CGROUP_DEVICE
    program and attach it to the cgroup directory open at `cgroup_fd`, replacing the device
    programs attached there before. Raises OSError(errno, text)."""
    cdef sj_error err
    cdef const char *p = insns
    cdef size_t n = len(insns) // 8
    if len(insns) % 8 or n == 0:
        raise ValueError("insns must be a non-empty array of 8-byte instructions")
    with nogil:
        rc = sj_cgroup_attach_device_program(cgroup_fd, p, n, &err)
    if rc < 0:
        raise OSError(err.err, err.msg.decode(errors="replace"))
