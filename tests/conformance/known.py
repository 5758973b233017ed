# ruff: noqa: E501  (the requirement labels of the report, kept whole)
"""Requirements sangja does not meet yet, each with why (the README's "Conformance" section
lists the same). A failure of one of these is reported as FAIL but does not fail the run (it
counts as xfail), so `make test` stays green until something else breaks; the report notes
any that pass again: remove them from here and from the README then.
CONFORMANCE_STRICT=1 makes them count as failures again."""

_RUNC_TOO = "runc 1.1.5 and crun 1.8 fail it too"

KNOWN = {
    # sangja fails, and so do runc and crun
    "config.md#linux-mount-options: the option ratime SHOULD be supported":
        "sangja leaves noatime on the submounts; " + _RUNC_TOO + " (EINVAL)",
    "config.md#linux-mount-options: the option rnostrictatime SHOULD be supported":
        "sangja leaves strictatime on the submounts; " + _RUNC_TOO + " (EINVAL)",
    "config.md#linux-process: an ungrantable capability SHOULD NOT fail the container":
        "sangja fails the container (CAP_SYS_RESOURCE is not in this host's bounding set); "
        + _RUNC_TOO,
    "config.md#linux-process: scheduler MUST set the policy and nice value of the process":
        "process.scheduler (spec 1.2) is not implemented (ignored); " + _RUNC_TOO,
    "config.md#linux-process: ioPriority MUST set the I/O class and priority of the process":
        "process.ioPriority (spec 1.2) is not implemented (ignored); " + _RUNC_TOO,
    "config.md#linux-process: execCPUAffinity.final MUST be the CPU affinity of an exec'd process":
        "process.execCPUAffinity (spec 1.2) is not implemented (ignored); " + _RUNC_TOO,
    "config.md#valid-values: an invalid ioPriority class MUST fail create":
        "ioPriority is not read at all; " + _RUNC_TOO,
    "config.md#valid-values: an invalid scheduler policy MUST fail create":
        "scheduler is not read at all; " + _RUNC_TOO,
    "config-linux.md#devices: a file at the path that is not the device MUST fail create":
        "a regular file at a device's path is replaced without an error; " + _RUNC_TOO,
    "runtime.md#delete: delete of a created (not stopped) container MUST fail and change nothing":
        "sangja deletes a created container, as runc and crun do (and engines expect)",
    "runtime.md#delete: a cgroup that existed before create (cgroupsPath) MUST NOT be removed":
        "delete removes the cgroupsPath cgroups even when they existed before; " + _RUNC_TOO,
}  # fmt: skip
