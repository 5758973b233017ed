"""Helpers of the engine's tests: what a test left behind, a terminal to run the CLI on,
hang guards (bounded waits, never assertions about speed)."""

import contextlib
import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import time

import rtkit
from registrykit import PLAIN, sangja_binary

BUSYBOX = f"{PLAIN}/test/busybox"
DEBIAN = f"{PLAIN}/test/debian:bookworm"
GUARD = 60  # seconds: a hang guard for waits, not a measure


def wait_for(cond, what, guard=GUARD, step=0.05):
    """Poll cond() until it is true (a hang guard: fails the test only after `guard`)."""
    return rtkit.wait_for(cond, what, guard, step)


def cgroup_mounts():
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fields = post.split()
            if fields and fields[0] in ("cgroup", "cgroup2"):
                out.append(pre.split()[4])
    return out


def remove_cgroup_parent(name):
    for mnt in cgroup_mounts():
        with contextlib.suppress(OSError):
            os.rmdir(mnt + name)


def monitor_processes(tmp):
    """conmon (its exit commands, log writers) of this test: their command line names its
    root."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{p}/stat") as f:
                st = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if (
            st != "Z"
            and str(tmp) in cmd
            and any(w in cmd for w in ("conmon", "cleanup", "healthcheck", "sangja-logwriter"))
        ):
            out.append(f"{p}: {cmd[:120]}")
    return out


def leftovers(s, cgroup_parent):
    """Remove what the test left (rm -f), then list anything still there."""
    problems = []
    r = s("container", "ps", "-aq", "--no-trunc")
    ids = r.out.split()
    if ids:
        rm = s("container", "rm", "-f", *ids)
        if rm.rc:
            problems.append(f"rm -f: {rm.err.strip()}")
    # the monitors' exit commands may still be finishing: a bounded wait for them
    end = time.monotonic() + 30
    while monitor_processes(s.tmp) and time.monotonic() < end:
        time.sleep(0.05)
    problems += monitor_processes(s.tmp)
    with open("/proc/self/mountinfo") as f:
        problems += [ln.split()[4] for ln in f if s.tmp in ln.split()[4]]
    problems += [f"runtime state {n}" for n in runtime_entries(s.run_root)]
    problems += [f"bridge {n}" for n in bridges()]
    cdir = os.path.join(s.root, "containers")
    if os.path.isdir(cdir):
        problems += [f"container dir {n}" for n in os.listdir(cdir)]
    for mnt in cgroup_mounts():
        d = mnt + cgroup_parent
        if os.path.isdir(d):
            problems += [f"cgroup {d}/{n}" for n in os.listdir(d) if os.path.isdir(f"{d}/{n}")]
    return problems


def runtime_entries(run_root):
    """What the runtime's --root holds: its containers' state, and whatever the engine's
    network run dir (@net) still holds that it should not once no container runs."""
    return rtkit.runtime_ids(run_root) + net_leftovers(
        os.path.join(run_root, "@net"))  # fmt: skip


def bridges():
    """The engine's bridges in this network namespace (the default one, user networks'):
    netavark removes each with its last container."""
    r = subprocess.run(["ip", "-o", "link", "show", "type", "bridge"], capture_output=True,
                       text=True)  # fmt: skip
    names = [ln.split(":")[1].strip().split("@")[0] for ln in r.stdout.splitlines() if ":" in ln]
    return [n for n in names if n == "sangja0" or n.startswith("br-")]


def net_leftovers(base):
    """The engine's network run dir (engine/netns.py RunDirs): no namespace file, no
    aardvark-dns config or process may stay once every container is gone."""
    out = []
    d = os.path.join(base, "netns")
    if os.path.isdir(d):
        out += [f"netns {n}" for n in os.listdir(d)]
    d = os.path.join(base, "aardvark-dns")
    if os.path.isdir(d):
        out += [f"aardvark-dns config {n}" for n in os.listdir(d) if n != "aardvark.pid"]
        try:
            with open(os.path.join(d, "aardvark.pid")) as f:
                pid = int(f.read().strip() or 0)
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    out.append(f"aardvark-dns {pid} runs")
        except (OSError, ValueError):
            pass
    return out


def run_bytes(s, *args, input=None) -> bytes:
    """The CLI with binary stdin/stdout; it must succeed."""
    p = subprocess.run([sangja_binary(), "--root", s.run_root, *args], input=input,
                       capture_output=True, env=s.env, timeout=300)  # fmt: skip
    assert p.returncode == 0, (args, p.stderr)
    return p.stdout


def ps(s, *args):
    """`container ps -a --format json` as a list of dicts (by name)."""
    r = s.ok("container", "ps", "-a", "--no-trunc", "--format", "json", *args)
    return {json.loads(line)["Names"]: json.loads(line) for line in r.out.splitlines()}


def inspect(s, ref):
    return json.loads(s.ok("container", "inspect", ref).out)[0]


def state(s, ref):
    return inspect(s, ref)["State"]


class PtyIO:
    """A pty's master side (`fd`): what came out of it so far (`out`), what we type."""

    fd: int
    out: bytes

    def read_until(self, want: bytes, guard=GUARD):
        end = time.monotonic() + guard
        while want not in self.out:
            if time.monotonic() > end:
                raise AssertionError(f"no {want!r} on the terminal: {self.out[-800:]!r}")
            r, _, _ = select.select([self.fd], [], [], 0.2)
            if r:
                try:
                    b = os.read(self.fd, 4096)
                except OSError:
                    b = b""
                if not b:
                    if want not in self.out:
                        raise AssertionError(f"terminal closed: {self.out[-800:]!r}")
                    break
                self.out += b
        return self.out

    def write(self, data: bytes):
        os.write(self.fd, data)


class Terminal(PtyIO):
    """The CLI on a pty of our own (80x24 unless `size` says rows, columns), sized before
    the CLI starts: what it prints, what we type."""

    def __init__(self, s, *args, size=(24, 80)):
        winsz = struct.pack("HHHH", size[0], size[1], 0, 0)
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            fcntl.ioctl(0, termios.TIOCSWINSZ, winsz)
            argv = [sangja_binary(), "--root", s.run_root, *args]
            os.execve(argv[0], argv, s.env)
        self.out = b""
        self.code = None

    def wait(self, guard=GUARD):
        end = time.monotonic() + guard
        while True:
            with contextlib.suppress(OSError):
                r, _, _ = select.select([self.fd], [], [], 0.1)
                if r:
                    self.out += os.read(self.fd, 4096)
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.code = os.waitstatus_to_exitcode(st)
                break
            if time.monotonic() > end:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                raise AssertionError(f"the CLI did not end: {self.out[-500:]!r}")
        os.close(self.fd)
        return self.code


def start_stopped(s, *args, failpoint):
    """Run the CLI with SANGJA_FAILPOINT set: it stops itself (SIGSTOP) at that step.
    -> the Popen, once it is stopped there."""
    p = subprocess.Popen([sangja_binary(), "--root", s.run_root, *args],
                         env=dict(s.env, SANGJA_FAILPOINT=failpoint),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    wait_for(lambda: rtkit.proc_state(p.pid) == "T" or p.poll() is not None,
             f"the CLI to reach {failpoint}")  # fmt: skip
    assert p.poll() is None, f"the CLI ended before {failpoint}: {p.communicate()}"
    return p


def kill9(p):
    p.kill()
    p.communicate()
