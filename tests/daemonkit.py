"""Daemons under test (containerd, dockerd) and what they leave on the host: processes,
cgroups, mounts, paths outside their private dirs.  For tests/cri, tests/swarm and bench/.
"""

import contextlib
import hashlib
import os
import signal
import subprocess


def read(path):
    """A file's text, or "" when it (or the process it describes) is gone by now."""
    try:
        with open(path) as f:
            return f.read()
    except OSError:  # ENOENT, and ESRCH/ENODEV for a process or cgroup going away
        return ""


def cgroup_mounts():
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            if post.split()[0] in ("cgroup", "cgroup2"):
                out.append(pre.split()[4])
    return out


def cgroup_tree(top):
    """Every cgroup directory below /top (relative paths), in every hierarchy."""
    out = set()
    for m in cgroup_mounts():
        base = os.path.join(m, top.lstrip("/"))
        for d, _, _ in os.walk(base):
            if d != base:
                out.add(os.path.relpath(d, base))
    return out


def cgroup_procs(top):
    pids = set()
    for m in cgroup_mounts():
        for d, _, files in os.walk(os.path.join(m, top.lstrip("/"))):
            if "cgroup.procs" in files:
                pids |= {int(p) for p in read(os.path.join(d, "cgroup.procs")).split()}
    return pids


def remove_cgroup_tree(top):
    for m in cgroup_mounts():
        base = os.path.join(m, top.lstrip("/"))
        for d, _, _ in sorted(os.walk(base), key=lambda w: -len(w[0])):
            with contextlib.suppress(OSError):
                os.rmdir(d)


def unmounted_v1_controllers():
    """v1 hierarchies this process is in (/proc/self/cgroup) that are mounted nowhere."""
    mounted = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fields = post.split()
            if fields[0] == "cgroup":
                mounted |= set(fields[2].split(","))
    out = []
    for line in read("/proc/self/cgroup").splitlines():
        _, ctrls, _ = line.split(":", 2)
        if ctrls and not ctrls.startswith("name=") and not set(ctrls.split(",")) <= mounted:
            out.append(ctrls)
    return out


def mounts_under(path, pid="self"):
    """Mount points below path, as process pid (default: this one) sees them."""
    with open(f"/proc/{pid}/mountinfo") as f:
        points = [line.split()[4].replace("\\040", " ") for line in f]
    return [m for m in points if m.startswith(path.rstrip("/") + "/")]


def unmount_under(path):
    for m in sorted(mounts_under(path), key=len, reverse=True):
        if subprocess.run(["umount", m], capture_output=True).returncode:
            subprocess.run(["umount", "-l", m], capture_output=True)


def procs_with(needle):
    """Pids whose command line contains needle."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == os.getpid():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmd:
            out.append((int(p), cmd))
    return out


def descendants(roots):
    """roots and every process below them."""
    parent = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            st = read(f"/proc/{p}/stat")
            if st:
                parent[int(p)] = int(st[st.rindex(")") + 2 :].split()[1])
    want, more = set(roots), True
    while more:
        more = False
        for p, pp in parent.items():
            if pp in want and p not in want:
                want.add(p)
                more = True
    return want


def kill_pids(pids):
    for p in pids:
        if p != os.getpid():
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)


class HostPaths:
    """Paths a daemon makes outside its private dirs whatever its config says: those that
    did not exist before are removed at the end, and only if empty (never others' data)."""

    def __init__(self, *paths):
        self.paths = paths  # deepest first
        self.preexisting = {p for p in paths if os.path.exists(p)}

    def cleanup(self):
        for p in self.paths:
            if p not in self.preexisting and os.path.isdir(p):
                with contextlib.suppress(OSError):
                    os.rmdir(p)


def shim_sockets(address):
    """The sockets of the runc shims serving the containerd at `address`: containerd 1.6
    puts them at /run/containerd/s/<sha256(address/namespace/id)> whatever its config says,
    and a killed shim leaves its socket there."""
    out = []
    for _, cmd in procs_with(f"-address {address} "):
        a = cmd.split()
        if "-id" in a and "-namespace" in a:
            key = f"{address}/{a[a.index('-namespace') + 1]}/{a[a.index('-id') + 1]}"
            out.append("/run/containerd/s/" + hashlib.sha256(key.encode()).hexdigest())
    return out


def remove_files(paths):
    for p in paths:
        with contextlib.suppress(OSError):
            os.unlink(p)
