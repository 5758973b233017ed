"""This host's cgroup filesystem: its mounts (the v1 hierarchies, the cgroup2 mount), the
cgroups of a process, the driver the host calls for (v1, or v2 on a unified host;
`SANGJA_CGROUP_DRIVER=v2` picks v2 on a hybrid one, rooted at its cgroup2 mount), and reading,
writing and removing its files and directories."""

import errno
import os

from sangja.errors import SangjaError

CGROUP_ROOT = "/sys/fs/cgroup"
DRIVER_ENV = "SANGJA_CGROUP_DRIVER"

KNOWN_V1 = {
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
}


def read_proc_cgroup(pid="self"):
    """/proc/PID/cgroup -> {controller-list: path}; '' is the unified hierarchy."""
    out = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            out[ctrls] = path
    return out


def unified_only(v1, v2):
    """Is the unified hierarchy the host's layout (mounted at /sys/fs/cgroup, or alone)?"""
    return v2 == CGROUP_ROOT or (not v1 and v2 is not None)


def cgroup_mounts():
    """-> ([(name, mountpoint, controller-list)] of the v1 hierarchies, cgroup2 mountpoint
    or None). A hierarchy seen at several mountpoints (a container's /sys/fs/cgroup that
    another runtime left visible here) counts once: at /sys/fs/cgroup, else where it was
    mounted first."""
    v1, v2 = {}, None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fields = post.split()
            if not fields or fields[0] not in ("cgroup", "cgroup2"):
                continue
            mnt = pre.split()[4]
            if fields[0] == "cgroup2":
                if v2 is None or mnt == CGROUP_ROOT:
                    v2 = mnt
                continue
            opts = [o for o in fields[2].split(",") if o not in ("rw", "ro")]
            ctrls = ",".join(o for o in opts if o in KNOWN_V1 or o.startswith("name="))
            if ctrls and (ctrls not in v1 or os.path.dirname(mnt) == CGROUP_ROOT):
                v1[ctrls] = (os.path.basename(mnt), mnt, ctrls)
    return list(v1.values()), v2


def mount_of(path):
    """The mountpoint of the hierarchy `path` is in: the cgroup2 mount, or the v1 root."""
    v2 = cgroup_mounts()[1]
    if v2 and (path + "/").startswith(v2 + "/"):
        return v2
    return CGROUP_ROOT


def driver():
    """-> ('v1' | 'v2', cgroup2 mountpoint or None, v1 hierarchies)."""
    v1, v2 = cgroup_mounts()
    want = os.environ.get(DRIVER_ENV, "")
    if want not in ("", "v1", "v2"):
        raise SangjaError(f"{DRIVER_ENV}={want}: want v1 or v2")
    if unified_only(v1, v2):
        if want == "v1":
            raise SangjaError(f"{DRIVER_ENV}=v1: this host has no cgroup v1 hierarchies")
        return "v2", v2, v1
    if want == "v2":
        if not v2:
            raise SangjaError(f"{DRIVER_ENV}=v2: this host has no cgroup2 mount")
        return "v2", v2, v1
    if not v1:
        raise SangjaError("cgroup: neither a cgroup v1 hierarchy nor cgroup2 is mounted")
    return "v1", v2, v1


# -- files ----------------------------------------------------------------------------------


def read_value(path):
    """A cgroup file's content without the trailing newline, or None if it cannot be read."""
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def write_value(path, value):
    """One write(2) of `value`: the kernel takes a cgroup file's value per write."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def rmdir_tree(path):
    """rmdir `path`; when it has child cgroups (a container may make its own), those first."""
    try:
        os.rmdir(path)
        return
    except OSError as e:
        if e.errno not in (errno.EBUSY, errno.ENOTEMPTY):
            raise
        with os.scandir(path) as it:
            subs = [x.path for x in it if x.is_dir(follow_symlinks=False)]
        if not subs:
            raise
    for s in subs:
        rmdir_tree(s)
    os.rmdir(path)


def fill_cpuset(path):
    """A new v1 cpuset cgroup starts empty, which refuses tasks: inherit cpus and mems."""
    for f in ("cpuset.cpus", "cpuset.mems"):
        chain = []
        p = path
        while True:
            try:
                with open(f"{p}/{f}") as fh:
                    val = fh.read().strip()
            except FileNotFoundError:
                break
            if val:
                break
            chain.append(p)
            p = os.path.dirname(p)
        for q in reversed(chain):  # fill from the top down
            with open(f"{q}/{f}", "w") as fh:
                fh.write(val)
