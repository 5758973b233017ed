"""`sangja features`: the runtime spec's features document (features.md, features-linux.md), as
runc prints it. Engines (containerd, podman) read it to decide what they may ask for, so it
lists what sangja recognises and implements, from the same tables the code uses."""

from sangja import OCI_VERSION, __version__
from sangja.runtime import constants as K
from sangja.runtime import seccomp

HOOKS = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]
# Options that are not flags, propagation or recursive attributes (plan.compile_mount).
EXTRA_MOUNT_OPTIONS = ("bind", "rbind", "tmpcopyup", "idmap", "ridmap")


def features():
    from sangja._native import seccomp as native

    mount_options = {*K.MOUNT_FLAGS, *K.PROPAGATION, *K.RECURSIVE_ATTRS, *EXTRA_MOUNT_OPTIONS}
    known_flags = sorted(seccomp.FLAGS)
    # what this kernel has (the rest are skipped with a warning)
    supported = [f for f in known_flags if seccomp.flag_supported(native, seccomp.FLAGS[f])]
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": HOOKS,
        "mountOptions": sorted(mount_options),
        "linux": {
            "namespaces": sorted(K.NAMESPACES),
            "capabilities": list(K.CAPABILITIES),
            "cgroup": {
                "v1": True,
                "v2": True,
                "systemd": True,
                "systemdUser": False,
                "rdma": True,
            },  # fmt: skip
            "seccomp": {
                "enabled": True,
                "actions": sorted(seccomp.ACTIONS),
                "operators": sorted(seccomp.OPERATORS),
                "archs": sorted(f"SCMP_ARCH_{a}" for a in seccomp.ARCHES),
                "knownFlags": known_flags,
                "supportedFlags": supported,
            },
            "apparmor": {"enabled": True},
            "selinux": {"enabled": True},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": True}},
        },
        "annotations": {
            "io.github.seccomp.libseccomp.version": native.version(),
            "org.opencontainers.sangja.version": __version__,
        },
    }


def features_json():
    import json

    return json.dumps(features(), indent=4)
