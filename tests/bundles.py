"""Build OCI bundles from Debian's busybox-static: no network, no image needed.

    python3 tests/bundles.py DIR [-- ARGS...]   # a bundle whose process runs ARGS

Used by `make demo`, the tests and the benchmarks.
"""

import json
import os
import shutil
import sys

BUSYBOX = "/bin/busybox"
APPLETS = [
    "sh",
    "cat",
    "echo",
    "ls",
    "id",
    "hostname",
    "true",
    "false",
    "sleep",
    "env",
    "pwd",
    "mount",
    "grep",
    "head",
    "tail",
    "wc",
    "stat",
    "readlink",
    "touch",
    "mkdir",
    "rm",
    "ps",
    "kill",
    "test",
    "ulimit",
    "dd",
    "printf",
    "cut",
    "tr",
    "sort",
    "uname",
    "awk",
    "find",
    "nproc",
]


def make_rootfs(rootfs):
    """A busybox rootfs: /bin/busybox, applet links, the usual empty directories."""
    if not os.path.exists(BUSYBOX):
        raise SystemExit(f"{BUSYBOX} is missing: apt-get install busybox-static")
    for d in ("bin", "proc", "sys", "dev", "etc", "tmp", "root", "run", "var/tmp"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    os.chmod(os.path.join(rootfs, "tmp"), 0o1777)
    shutil.copy2(BUSYBOX, os.path.join(rootfs, "bin/busybox"))
    for a in APPLETS:
        link = os.path.join(rootfs, "bin", a)
        if not os.path.lexists(link):
            os.symlink("busybox", link)
    with open(os.path.join(rootfs, "etc/passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    with open(os.path.join(rootfs, "etc/group"), "w") as f:
        f.write("root:x:0:\ntty:x:5:\nnogroup:x:65534:\n")


def default_config(args):
    """runc's `spec` default, made non-interactive."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
    from sangja.runtime.defaults import default_spec

    c = default_spec()
    c["process"]["terminal"] = False
    c["process"]["args"] = list(args)
    return c


def make_bundle(bundle, args=("sh",), config=None, rootfs=None):
    """Write bundle/config.json (config, or the default) and a busybox rootfs."""
    os.makedirs(bundle, exist_ok=True)
    if rootfs is None:
        rootfs = os.path.join(bundle, "rootfs")
        make_rootfs(rootfs)
    c = config if config is not None else default_config(args)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(c, f, indent=1)
    return bundle


if __name__ == "__main__":
    argv = sys.argv[1:]
    if not argv:
        raise SystemExit(__doc__)
    args = argv[argv.index("--") + 1 :] if "--" in argv else ["sh"]
    make_bundle(argv[0], args)
