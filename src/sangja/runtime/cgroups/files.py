"""Reading and writing cgroup files, removing cgroup directories."""

import errno
import os


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
