"""Helpers for the build tests: contexts written from a dict, the root file system of an
image (sangja's: an overlay of its layers; podman's: `podman image mount`) as a
comparable snapshot, and podman build with a private storage.

    ctx = write_context(tmp, {"Dockerfile": "FROM …", "a.txt": "hi", "d/": None})
    tree = sangja_tree(sj, "app:1")           # {path: {type, mode, owner, sha256, …}}
"""

import contextlib
import json
import os
import shutil
import subprocess
import tempfile

import layertools
import registrykit

BUSYBOX = f"{registrykit.PLAIN}/test/busybox:latest"
DEBIAN = f"{registrykit.PLAIN}/test/debian:bookworm"


def write_context(base, files: dict) -> str:
    """files: {relpath: text | bytes | None (a directory) | ("link", target) |
    (content, mode)}."""
    base = str(base)
    os.makedirs(base, exist_ok=True)
    for rel, v in files.items():
        p = os.path.join(base, rel)
        if v is None or rel.endswith("/"):
            os.makedirs(p, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if isinstance(v, tuple) and v[0] == "link":
            os.symlink(v[1], p)
            continue
        mode = None
        if isinstance(v, tuple):
            v, mode = v
        with open(p, "wb") as f:
            f.write(v.encode() if isinstance(v, str) else v)
        if mode is not None:
            os.chmod(p, mode)
    return base


def _mount(lowers, tmp):
    upper, work, merged = (os.path.join(tmp, n) for n in ("u", "w", "m"))
    for d in (upper, work, merged):
        os.makedirs(d)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}", merged],
                   check=True)  # fmt: skip
    return merged


# what a container's runtime or the build tools add for a RUN: no part of the content
NOT_CONTENT = {"etc/hosts", "etc/hostname", "etc/resolv.conf"}


def snapshot(root, skip=NOT_CONTENT):
    snap = layertools.snapshot(root, skip=lambda rel: rel == "." or rel in skip)
    for v in snap.values():
        v.pop("mtime", None)
        v.pop("inode_of", None)
    return snap


@contextlib.contextmanager
def sangja_root(sj, ref):
    """The image's root file system, mounted read-only-ish (an overlay with a throw-away
    upper) for as long as the block runs."""
    lowers = sj.inspect(ref)["GraphDriver"]["Data"]["LowerDir"].split(":")
    tmp = tempfile.mkdtemp(prefix="sjbtree-")
    merged = _mount(lowers, tmp)
    try:
        yield merged
    finally:
        subprocess.run(["umount", merged], check=False)
        shutil.rmtree(tmp, ignore_errors=True)


def sangja_tree(sj, ref):
    with sangja_root(sj, ref) as root:
        return snapshot(root)


def podman_tree(pm, ref):
    path = pm("image", "mount", ref).strip()
    try:
        return snapshot(path)
    finally:
        pm("image", "unmount", ref)


def podman_build(pm, ctx, tag, *args):
    return pm("build", "--network", "none", "--layers", "-t", tag, *args, ctx)


def config_fields(cfg):
    keys = ("Cmd", "Entrypoint", "Env", "WorkingDir", "User", "ExposedPorts", "Volumes",
            "Labels", "StopSignal", "Healthcheck")  # fmt: skip
    return {k: (cfg or {}).get(k) or None for k in keys}


def runtime_state(sj):
    """What the runtime's --root holds: RUN containers' state, and what the engine's
    network run dir (@net: the default bridge's namespaces) keeps though no RUN runs."""
    import enginekit

    if not os.path.isdir(sj.run_root):
        return []
    return sorted(n for n in os.listdir(sj.run_root) if n != "@net") + enginekit.net_leftovers(
        os.path.join(sj.run_root, "@net"))  # fmt: skip


def cgroups_under(parent):
    """The cgroups below `parent` in every hierarchy (what RUN's containers may leave)."""
    import enginekit

    out = []
    for mnt in enginekit.cgroup_mounts():
        d = mnt + parent
        if os.path.isdir(d):
            out += [f"{d}/{n}" for n in os.listdir(d) if os.path.isdir(f"{d}/{n}")]
    return out


def dump(d) -> str:
    return json.dumps(d, indent=1, sort_keys=True, default=str)
