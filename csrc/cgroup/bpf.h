/* cgroup v2 device control: load a BPF_PROG_TYPE_CGROUP_DEVICE program and
 * attach it to a cgroup directory.  Python builds the instructions
 * (runtime/cgroups/devices.py); this only makes the bpf() calls. */
#ifndef SANGJA_CGROUP_BPF_H
#define SANGJA_CGROUP_BPF_H

#include <stddef.h>

#include "../launch/launch.h"

/* Load the program (insns: struct bpf_insn[ninsns]) and attach it to the
 * cgroup open at cgroup_fd with BPF_F_ALLOW_MULTI, then detach the device
 * programs attached there before (a re-applied set of rules replaces the old
 * one; there is never a moment with none).  0, or -1 with err filled (a
 * verifier refusal carries the start of the verifier's log). */
int sj_cgroup_attach_device_program(int cgroup_fd, const void *insns, size_t ninsns,
                                    struct sj_error *err);

#endif
