"""Mounts the runtime prepares itself before the init exists, and the mounts it made in its
own mount namespace (a container without one).

- Detached trees (plan.Mount.host_tree): a copy of a bind source made here, in the runtime's
  namespaces and with its credentials (open_tree, csrc/mount_trees.c), which the init only
  moves into place. For a container in a user namespace, whose root may not even reach a
  source under a directory only the host's root can enter; and for idmapped mounts, whose
  MOUNT_ATTR_IDMAP needs privileges over the source's filesystem and a user namespace
  holding the mapping (made here too, one per distinct mapping).
- Without a mount namespace of its own, the init binds the rootfs onto itself in the
  runtime's and mounts everything below it (csrc/launch.h): `release` detaches that bind,
  and everything below it, at delete or when create fails.
"""

import os


def open_trees(plan):
    """Make the detached tree of every plan mount that wants one (mount.tree_fd). -> the
    fds the caller closes once the init is spawned (it inherits them)."""
    wanted = [m for m in plan.mounts if m.host_tree]
    if not wanted:
        return []
    from sangja._native import launch

    fds, userns = [], {}
    try:
        for m in wanted:
            ns_fd = -1
            if m.idmap is not None:
                ns_fd = userns.get(m.idmap)
                if ns_fd is None:
                    if m.idmap[0] == "path":  # the container joins it: its mapping
                        ns_fd = os.open(m.idmap[1], os.O_RDONLY | os.O_CLOEXEC)
                    else:
                        ns_fd = launch.userns_fd(m.idmap[1], m.idmap[2])
                    userns[m.idmap] = ns_fd
                    fds.append(ns_fd)
            m.tree_fd = launch.source_tree(m.source, m.recursive, ns_fd, m.idmap_recursive)
            fds.append(m.tree_fd)
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return fds


def _unescape(field):
    """mountinfo's octal escapes (\\040 for a space) undone."""
    if "\\" not in field:
        return field
    return field.encode().decode("unicode_escape").encode("latin-1").decode(errors="replace")


def mounts_at(path):
    """[(mount id, parent id)] of the mounts at `path` in our mount namespace, in
    mountinfo's order."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split(" ", 5)
            if _unescape(fields[4]) == path:
                out.append((int(fields[0]), int(fields[1])))
    return out


def mount_ids_at(path):
    return [mid for mid, _ in mounts_at(path)]


def release(path, before):
    """Detach every mount at `path` that is not one of `before` (the ids that were there
    before create), topmost first: the rootfs bind of a container without a mount namespace
    of its own, and with it all it held. -> what could not be detached (a text), or None."""
    from sangja._native import launch

    for _ in range(64):  # a bound: only ever a few
        stack = mounts_at(path)
        ids = {mid for mid, _ in stack}
        top = [mid for mid, _ in stack if mid not in {p for _, p in stack if p in ids}]
        if not top or top[0] in before:
            return None
        try:
            launch.umount(path)
        except OSError as e:
            return f"unmount {path}: {e.strerror}"
    return f"unmount {path}: still mounted"
