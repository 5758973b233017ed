"""What the conformance tests share: the runtime under test (sangja, runc, crun or a path),
a busybox root filesystem shared by the whole session, runc's default spec as the base
config, probes that run shell snippets inside one container and hand back each snippet's
output, and readers for what the kernel shows (/proc/PID/status, mountinfo, cgroup files).

The suite checks a runtime only through its command line (runc's: create/start/state/kill/
delete/run with --root and --bundle) and from inside its containers; it never imports the
runtime's code, so it judges runc and crun as it judges sangja.
"""

import json
import os
import re
import shutil
import subprocess

import rtkit
from rtkit import Runtime, read, wait_for  # noqa: F401 (wait_for: for the tests)

BUSYBOX = "/bin/busybox"
RUNC = "/usr/sbin/runc"
CRUN = "/usr/bin/crun"

# crun 1.8 refuses this hybrid host (v1 controllers plus an empty cgroup2 mount): it runs with
# the cgroup2 mount unmounted, in a mount namespace of its own. `--propagation slave` (not
# unshare's default, private) so that host mounts still propagate to it as they do to runc and
# sangja, while the umount stays inside.
CRUN_WRAPPER = (
    "#!/bin/sh\n"
    "exec unshare -m --propagation slave "
    """sh -c 'umount /sys/fs/cgroup/unified; exec {crun} "$@"' crun "$@"\n"""
)

# -- the runtime under test -----------------------------------------------------------------


def sangja_binary():
    for b in (
        os.environ.get("SANGJA"),
        shutil.which("sangja"),
        os.path.join(os.path.dirname(__file__), "..", "..", "build", "venv", "bin", "sangja"),
    ):
        if b and os.path.exists(b):
            return os.path.abspath(b)
    return None


def resolve_runtime(spec, workdir):
    """RUNTIME -> (name, binary). `sangja` (default), `runc`, `crun` (through the wrapper this
    host needs, written into `workdir`) or the path of any runc-compatible binary."""
    spec = spec or "sangja"
    if spec == "sangja":
        return "sangja", sangja_binary()
    if spec == "runc":
        return "runc", RUNC if os.path.exists(RUNC) else shutil.which("runc")
    if spec == "crun":
        crun = CRUN if os.path.exists(CRUN) else shutil.which("crun")
        if not crun:
            return "crun", None
        path = os.path.join(workdir, "crun-wrapper")
        with open(path, "w") as f:
            f.write(CRUN_WRAPPER.format(crun=crun))
        os.chmod(path, 0o755)
        return "crun", path
    path = shutil.which(spec) or spec
    return os.path.basename(path), os.path.abspath(path)


# -- the shared root filesystem -------------------------------------------------------------

# A script that exists only in the container's root filesystem, never on the host: a hook
# whose path is this resolves in the container's mount namespace or not at all.
CONTAINER_ONLY_HOOK = "/conformance-hook"


def make_rootfs(rootfs):
    """busybox with every applet, passwd/group, and what some tests expect to find."""
    for d in ("bin", "proc", "sys", "dev", "etc", "tmp", "root", "run", "mnt", "cwd", "hooks",
              "home/user", "var/tmp", "opt/ro", "opt/bin2"):  # fmt: skip
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    os.chmod(os.path.join(rootfs, "tmp"), 0o1777)
    shutil.copy2(BUSYBOX, os.path.join(rootfs, "bin/busybox"))
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True).stdout.split()
    for a in applets:
        if a != "busybox" and not os.path.lexists(os.path.join(rootfs, "bin", a)):
            os.symlink("busybox", os.path.join(rootfs, "bin", a))
    files = {
        "etc/passwd": "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/:/bin/false\n",
        "etc/group": "root:x:0:\ntty:x:5:\nuser:x:1000:\nnogroup:x:65534:\n",
        "etc/conformance-secret": "secret\n",
        "etc/not-a-device": "a regular file\n",
        "opt/ro/file": "data\n",
        "opt/bin2/c-hello": "#!/bin/sh\necho hello-from-path\n",
        CONTAINER_ONLY_HOOK.lstrip("/"): "#!/bin/sh\n"
        'D=/hooks; S=${1:-startContainer}; cat > "$D/$S.state"\n'
        '{ for n in mnt pid uts net ipc; do echo "ns_$n=$(readlink /proc/self/ns/$n)"; done\n'
        '  echo "uid=$(id -u)"; echo "root_entries=$(ls / | tr "\\n" " ")"; } > "$D/$S.info"\n'
        'cat /proc/self/mountinfo > "$D/$S.mountinfo"\n'
        'echo "$S" >> "$D/order"\n',
    }
    for rel, text in files.items():
        with open(os.path.join(rootfs, rel), "w") as f:
            f.write(text)
    os.chmod(os.path.join(rootfs, CONTAINER_ONLY_HOOK.lstrip("/")), 0o755)
    os.chmod(os.path.join(rootfs, "opt/bin2/c-hello"), 0o755)
    os.chmod(os.path.join(rootfs, "home/user"), 0o777)


def base_config(args, rootfs):
    """runc 1.1's `runc spec`, non-interactive, on the shared rootfs (an absolute root.path).
    Kept here, not taken from the runtime under test, so every runtime gets the same bundle."""
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": list(args),
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
            ],  # fmt: skip
            "cwd": "/",
            "capabilities": {
                k: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
                for k in ("bounding", "effective", "permitted", "ambient")
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": rootfs, "readonly": True},
        "hostname": "conformance",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": [
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                    "gid=5",
                ],
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            },
            {
                "destination": "/dev/mqueue",
                "type": "mqueue",
                "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"],
            },
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"],
            },
            {
                "destination": "/sys/fs/cgroup",
                "type": "cgroup",
                "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
            },
        ],  # fmt: skip
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": [
                "/proc/acpi",
                "/proc/asound",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/sys/firmware",
                "/proc/scsi",
            ],
            "readonlyPaths": [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger",
            ],
        },  # fmt: skip
    }


# -- probes: several checks from one container ----------------------------------------------


def probe_script(checks):
    """[(name, shell snippet)] -> one script printing each snippet's output and exit status
    between markers (`@@@ name` ... `@@@= rc`)."""
    parts = []
    for name, cmd in checks:
        parts.append(f"echo '@@@ {name}'; ( {cmd} ) 2>&1; echo \"@@@= $?\"")
    return "\n".join(parts)


class Probe:
    """The parsed output of probe_script: p[name] is a snippet's output, p.rc(name) its status."""

    def __init__(self, result):
        self.result = result
        self.out, self.rcs = {}, {}
        name, buf = None, []
        for line in result.out.splitlines():
            if line.startswith("@@@= ") and name is not None:
                self.out[name] = "\n".join(buf)
                self.rcs[name] = int(line[5:])
                name, buf = None, []
            elif line.startswith("@@@ "):
                name, buf = line[4:], []
            elif name is not None:
                buf.append(line)

    def __getitem__(self, name):
        if name not in self.out:
            raise AssertionError(f"the probe did not get to {name!r}: {self.result!r}")
        return self.out[name]

    def rc(self, name):
        self[name]
        return self.rcs[name]


# -- what the kernel shows ------------------------------------------------------------------

CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
        "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
        "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
        "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
        "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"]  # fmt: skip


def status_fields(text):
    """/proc/PID/status text -> {field: value}."""
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        out[k.strip()] = v.strip()
    return out


def capset(hexmask):
    """A Cap* mask from /proc/PID/status -> the set of capability names."""
    m = int(hexmask, 16)
    return {name for i, name in enumerate(CAPS) if m >> i & 1}


def host_has_cap(name):
    return name in capset(status_fields(read("/proc/self/status"))["CapBnd"])


class Mount:
    def __init__(self, line):
        pre, _, post = line.partition(" - ")
        f = pre.split()
        self.id, self.parent = int(f[0]), int(f[1])
        self.devno, self.root, self.point = f[2], unescape(f[3]), unescape(f[4])
        self.opts = set(f[5].split(","))
        self.optional = f[6:]
        p = post.split()
        self.fstype, self.source = p[0], p[1]
        self.super = set(p[2].split(",")) if len(p) > 2 else set()

    def propagation(self):
        tags = {t.split(":")[0] for t in self.optional}
        return tags  # subset of {"shared", "master", "propagate_from", "unbindable"}

    def __repr__(self):
        return f"<{self.point} {self.fstype} {','.join(sorted(self.opts))} {self.optional}>"


def unescape(s):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def mounts(text):
    return [Mount(line) for line in text.splitlines() if " - " in line]


def mount_at(text, point):
    """The top mount at `point` (the last one listed there), or None."""
    found = [m for m in mounts(text) if m.point == point]
    return found[-1] if found else None


CGROUP_MOUNTS = {
    os.path.realpath(m.split()[4])
    for m in read("/proc/self/mountinfo").splitlines()
    if " - cgroup" in m
}


def block_device():
    """(major, minor) of a real block device of this host (for blockIO rules), or None."""
    for name in sorted(os.listdir("/sys/block")):
        if name.startswith(("loop", "ram", "zram")):
            continue
        dev = read(f"/sys/block/{name}/dev").strip()
        if dev:
            major, minor = dev.split(":")
            return int(major), int(minor)
    return None


def v1_hierarchy(controller):
    """The mount point of a v1 hierarchy with `controller`, or None."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            m = Mount(line)
            if m.fstype == "cgroup" and controller in m.super:
                return m.point
    return None


# -- the runtime under test, with a test's own --root ---------------------------------------


class Target(Runtime):
    """rtkit's Runtime (a private --root, a test directory, every id remembered) with what the
    conformance tests need on top: configs on the shared rootfs, probes, helper processes."""

    def __init__(self, name, binary, workdir, rootfs):
        super().__init__(name, binary, workdir)
        self.rootfs = rootfs
        self.helpers = []

    # configs
    def config(self, args=("true",)):
        return base_config(args, self.rootfs)

    def sh_config(self, script, *argv):
        return self.config(["sh", "-c", script, "sh", *argv])

    def path(self, *parts):
        p = os.path.join(self.workdir, *parts)
        return p

    def mkdir(self, *parts, mode=0o755):
        p = self.path(*parts)
        os.makedirs(p, exist_ok=True)
        os.chmod(p, mode)
        return p

    # running
    def sh(self, script, cfg=None, *flags, argv=("sh",), **kw):
        """Run `sh -c script ARGV...` in the foreground (in `cfg`, else the base config)."""
        c = cfg if cfg is not None else self.config()
        args = ["sh", "-c", script, *argv]
        if isinstance(c, rtkit.Bundle):  # an existing bundle: its config.json rewritten
            c.config["process"]["args"] = args
            c.write()
        else:
            c["process"]["args"] = args
        return self.run(c, *flags, **kw)

    def probe(self, checks, cfg=None, *flags, argv=("sh",), expect_ok=True, **kw):
        """Run every check of `checks` ([(name, snippet)]) in one container -> Probe."""
        r = self.sh(probe_script(checks), cfg, *flags, argv=argv, **kw)
        if expect_ok:
            r.ok()
        return Probe(r)

    def terminal_output(self, cfg):
        """Run `cfg` with a terminal, its pty received over --console-socket -> all it wrote."""
        import recvtty

        sock = self.path("console.sock")
        cfg["process"]["terminal"] = True
        with recvtty.ConsoleReceiver(sock) as rx:
            cid, r = self.create(cfg, "--console-socket", sock)
            r.ok()
            pty = rx.accept()
            try:
                self("start", cid).ok()
                return pty.read_all().decode(errors="replace")
            finally:
                pty.close()

    def started(self, cfg, *flags):
        """create + start a container (its process should keep running) -> (id, host pid)."""
        cid, pid = self.created(cfg, *flags)
        self("start", cid).ok()
        return cid, pid

    def helper(self, argv, **kw):
        """A helper process of the test (killed at teardown)."""
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, **kw)  # fmt: skip
        self.helpers.append(p)
        return p

    def log_file(self):
        self._n += 1
        return self.path(f"runtime-{self._n}.log")

    def gone(self, cid):
        """`state` of `cid` fails: the runtime no longer knows it."""
        return self("state", cid).rc != 0

    def remove_leftovers(self):
        """After cleanup: the cgroups and state directories of this target's containers that
        are still there, described; their processes killed and the cgroups removed."""
        out = []
        for cid in self.ids:
            if "/" in cid or cid in (".", ".."):
                continue  # an invalid id a test tried: nothing can be named after it
            for d in rtkit.cgroup_dirs_for(cid, self.ids.get(cid)):
                if not os.path.isdir(d) or os.path.realpath(d) in CGROUP_MOUNTS:
                    continue
                out.append(f"cgroup {d}")
                for _ in range(50):
                    for pid in read(os.path.join(d, "cgroup.procs")).split():
                        try:
                            os.kill(int(pid), 9)
                        except OSError:
                            pass
                    try:
                        os.rmdir(d)
                        break
                    except OSError:
                        rtkit.time.sleep(0.02)
            if os.path.lexists(os.path.join(self.root, cid)):
                out.append(f"state {os.path.join(self.root, cid)}")
        return out

    def cleanup(self):
        problems = []
        for cid in self.ids:
            r = self("delete", "--force", cid)
            if r.rc != 0 and self("state", cid).rc == 0:
                problems.append(f"delete --force {cid}: {r.err.strip()}")
        for p in self.helpers:
            if p.poll() is None:
                p.kill()
            p.wait()
        return problems


# -- hooks ----------------------------------------------------------------------------------

HOOK_PATH = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
# The host's shell by a path the busybox rootfs does not have (it has no /usr): a hook found
# there was resolved in the runtime's mount namespace.
HOST_SH = "/usr/bin/sh" if os.path.exists("/usr/bin/sh") else "/bin/sh"

# What a hook on the host records: the state from its stdin, its namespaces, its env, its
# args, its own mountinfo and (for hooks in the runtime namespace) the container init's.
RECORDER = r"""
D=$1; S=$2
cat > "$D/$S.state"
pid=$(sed -n 's/.*"pid": *\([0-9][0-9]*\).*/\1/p' "$D/$S.state")
{
  for n in mnt pid uts net ipc; do echo "ns_$n=$(readlink /proc/self/ns/$n)"; done
  echo "args=$*"
  echo "host_marker=$(test -e "$D/../host-marker" && echo yes || echo no)"
  echo "init_cmdline=$(tr '\0' ' ' < /proc/$pid/cmdline 2>/dev/null)"
  echo "init_alive=$(kill -0 "$pid" 2>/dev/null && echo yes || echo no)"
} > "$D/$S.info"
env > "$D/$S.env"
cat /proc/self/mountinfo > "$D/$S.mountinfo"
cat "/proc/$pid/mountinfo" > "$D/$S.initmountinfo" 2>/dev/null
echo "$S" >> "$D/order"
"""


def hook(d, stage, extra="", **kw):
    """A host hook for `stage` recording into directory `d` (then running `extra`)."""
    h = {"path": HOST_SH, "args": ["sh", "-c", RECORDER + extra, "hook", d, stage],
         "env": HOOK_PATH + [f"HOOK_STAGE={stage}"]}  # fmt: skip
    h.update(kw)
    return h


def failing_hook(d, stage):
    return hook(d, stage, extra="echo failing on purpose >&2; exit 7")


def hook_dir(rt, tag="hooks"):
    d = rt.mkdir(f"{tag}-{rt._n}", mode=0o777)
    rt._n += 1
    with open(rt.path("host-marker"), "w") as f:
        f.write("on the host\n")
    return d


def hook_order(d):
    return read(os.path.join(d, "order")).split()


def hook_info(d, stage):
    info = {}
    for line in read(os.path.join(d, f"{stage}.info")).splitlines():
        k, _, v = line.partition("=")
        info[k] = v
    return info


def hook_state(d, stage):
    text = read(os.path.join(d, f"{stage}.state"))
    assert text, f"the {stage} hook got no state on stdin"
    return json.loads(text)


def ns_of(pid, kind):
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None
