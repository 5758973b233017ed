"""dockerd (Debian's docker.io 20.10) with sangja as its default runtime, for tests/swarm:
private data-root, exec-root, socket and cgroup parent, inside a network namespace of the
test's own (a registrykit.NetNS), where Swarm's ingress network, docker_gwbridge and the
containers' bridge are made and where the fixtures registry serves the images.
"""

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import rtkit  # noqa: E402
from daemonkit import (  # noqa: E402
    HostPaths,
    cgroup_procs,
    cgroup_tree,
    descendants,
    kill_pids,
    mounts_under,
    procs_with,
    remove_cgroup_tree,
    remove_files,
    shim_sockets,
    unmount_under,
)

TIMEOUT = 120  # a hang guard for each command and wait, never an assertion about speed


def sangja_binary():
    return os.environ.get("SANGJA") or shutil.which("sangja")


def docker_cli():
    """The docker client whose version is dockerd's (a newer one may shadow it on PATH)."""
    out = subprocess.run(["dockerd", "--version"], capture_output=True, text=True).stdout
    m = re.match(r"Docker version ([^,]+),", out)
    seen = set()
    for d in os.environ.get("PATH", "").split(os.pathsep) + ["/usr/bin"]:
        c = os.path.realpath(os.path.join(d, "docker"))
        if c in seen or not os.access(c, os.X_OK):
            continue
        seen.add(c)
        v = subprocess.run([c, "--version"], capture_output=True, text=True).stdout
        if m and f"version {m[1]}," in v:
            return c
    return None


def missing():
    if os.geteuid() != 0:
        return "needs root (dockerd, mounts, cgroups, network namespaces)"
    for tool in ("dockerd", "containerd", "containerd-shim-runc-v2"):
        if not shutil.which(tool):
            return f"{tool} is not installed (Debian's docker.io; make test installs it)"
    if not docker_cli():
        return "no docker client of dockerd's version"
    return None


class Result:
    def __init__(self, argv, p):
        self.argv, self.rc, self.out, self.err = argv, p.returncode, p.stdout, p.stderr

    def __repr__(self):
        out, err = self.out[-1500:], self.err[-1500:]
        return f"<{' '.join(self.argv)}: rc={self.rc} out={out!r} err={err!r}>"


RUNTIMES = {"sangja": sangja_binary, "runc": lambda: "/usr/sbin/runc"}


class Dockerd:
    """dockerd whose default runtime is `name` (sangja, or Debian's runc for reference:
    registered as `runc-debian`, dockerd keeps the name `runc` for its own)."""

    def __init__(self, netns, name="sangja"):
        self.netns = netns
        self.name = name if name != "runc" else "runc-debian"
        self.runtime = RUNTIMES[name]()
        # short: unix socket paths must stay under 108 bytes
        self.w = tempfile.mkdtemp(prefix="sjsw-", dir="/tmp")
        os.chmod(self.w, 0o711)
        self.cgroup = "/sjsw-" + secrets.token_hex(4)
        self.sock = os.path.join(self.w, "docker.sock")
        self.exec_root = os.path.join(self.w, "exec")
        self.cli = docker_cli()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        self.env["DOCKER_CONFIG"] = os.path.join(self.w, "cli")
        self.proc = None
        # dockerd and its containerd make these whatever the config says
        self.host_paths = HostPaths(
            "/run/containerd/s", "/run/containerd", "/run/docker/plugins", "/run/docker",
            "/opt/containerd/bin", "/opt/containerd/lib", "/opt/containerd",
        )  # fmt: skip

    def config(self):
        return {
            "data-root": os.path.join(self.w, "data"),
            "exec-root": self.exec_root,
            "pidfile": os.path.join(self.w, "docker.pid"),
            "hosts": [f"unix://{self.sock}"],
            "runtimes": {self.name: {"path": self.runtime}},
            "default-runtime": self.name,
            # the bridges (docker0, docker_gwbridge, ingress) live in the private netns;
            # no firewall rules at all
            "iptables": False,
            "ip6tables": False,
            "ip-forward": False,
            "ip-masq": False,
            "userland-proxy": False,
            "exec-opts": ["native.cgroupdriver=cgroupfs"],
            "cgroup-parent": self.cgroup,
            "storage-driver": "overlay2",
            "deprecated-key-path": os.path.join(self.w, "key.json"),
            "log-level": "info",
        }

    def start(self):
        path = os.path.join(self.w, "daemon.json")
        with open(path, "w") as f:
            json.dump(self.config(), f)
        log = open(os.path.join(self.w, "dockerd.log"), "wb")
        with self.netns.entered():
            self.proc = subprocess.Popen(
                ["dockerd", "--config-file", path], stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        log.close()
        end = time.monotonic() + TIMEOUT
        while self("version", timeout=10).rc != 0:
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"dockerd did not start: {self.log_tail()}")
            time.sleep(0.2)
        self.mounts0 = set(mounts_under(self.w))

    def __call__(self, *args, timeout=TIMEOUT):
        argv = [self.cli, "-H", f"unix://{self.sock}", *args]
        p = subprocess.run(argv, capture_output=True, text=True, env=self.env,
                           timeout=timeout, stdin=subprocess.DEVNULL)  # fmt: skip
        return Result(["docker", *args], p)

    def ok(self, *args, **kw):
        r = self(*args, **kw)
        assert r.rc == 0, r
        return r.out

    def json(self, *args):
        return [json.loads(line) for line in self.ok(*args).splitlines() if line.strip()]

    def log_tail(self, n=15):
        try:
            with open(os.path.join(self.w, "dockerd.log"), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def runtime_roots(self):
        """The runtimes' --root dirs dockerd uses (<exec-root>/runtime-<name>/moby)."""
        base = self.exec_root
        names = (
            [d for d in os.listdir(base) if d.startswith("runtime-")] if os.path.isdir(base) else []
        )
        return [os.path.join(base, d, "moby") for d in names]

    def runtime_state(self):
        """Container ids the runtimes hold state for."""
        return sorted(c for r in self.runtime_roots() if os.path.isdir(r) for c in os.listdir(r))

    # -- what is left ---------------------------------------------------------------------

    def our_processes(self):
        mine = [p for p, _ in procs_with(self.w + "/")]
        return (descendants(mine) | cgroup_procs(self.cgroup)) - {os.getpid()}

    def leftovers(self):
        """After dockerd stopped: a list of problems."""
        probs = []
        procs = self.our_processes()
        if procs:
            probs.append(f"processes: {sorted(procs)}")
        if self.runtime_state():
            probs.append(f"runtime state: {self.runtime_state()}")
        cgroups = cgroup_tree(self.cgroup)
        if cgroups:
            probs.append(f"cgroups: {sorted(cgroups)[:6]}")
        mounts = mounts_under(self.w)
        if mounts:
            probs.append(f"mounts: {mounts[:6]}")
        return probs

    def stop(self):
        """Stop dockerd (its containerd and shims stop with it); whatever is still there
        after that is the caller's to report; here it is killed and removed."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(60)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None

    def cleanup(self):
        sockets = shim_sockets(os.path.join(self.exec_root, "containerd", "containerd.sock"))
        self.stop()
        kill_pids(self.our_processes())
        remove_files(sockets)  # of shims killed here
        time.sleep(0.2)
        for root in self.runtime_roots():
            for cid in os.listdir(root) if os.path.isdir(root) else ():
                subprocess.run([self.runtime, "--root", root, "delete", "--force", cid],
                               capture_output=True, timeout=TIMEOUT)  # fmt: skip
        unmount_under(self.w)
        remove_cgroup_tree(self.cgroup)
        self.host_paths.cleanup()
        shutil.rmtree(self.w, ignore_errors=True)


def wait_for(pred, what, guard=TIMEOUT):
    """Poll until pred() is true (a hang guard, never a timing assertion)."""
    return rtkit.wait_for(pred, what, guard, 0.2)
