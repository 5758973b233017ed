"""`sangja container commit` against `podman commit`, in the same run: a stopped busybox
container that wrote 100 MB (100 files of 1 MB, random: they do not compress) becomes an
image.  sangja writes the upper dir as a gzip layer (the C layer writer), stores the blob
and unpacks it as a layer the image runs from; podman writes the diff and applies it as a
layer of its storage (uncompressed).  Between rounds the image made is removed (outside
the clock), so each round writes its layer anew.  Both storages on tmpfs (/dev/shm).
Run as root: `make bench`, or `pytest bench/test_commit.py`.
"""

import os
import resource
import shutil
import subprocess
import sys
import tempfile

import pytest
from conftest import print_at_end

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "image"))

import registrykit  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="run as root: containers, overlay")

BASE = f"{registrykit.PLAIN}/test/busybox:latest"
ROUNDS = 5
TOOLS = ["sangja", "podman"]
RESULTS = {}
WRITE = "mkdir /data && for i in $(seq 100); do head -c 1000000 /dev/urandom > /data/f$i; done"


@pytest.fixture(scope="module")
def base():
    d = tempfile.mkdtemp(prefix="sangja-bench-commit-", dir="/dev/shm")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module", autouse=True)
def summary(request):
    yield
    print_at_end(request, RESULTS, print_summary)


def print_summary(tr):
    tr.write_line("")
    tr.write_line("commit of a container with 100 MB of changes, median seconds (same run):")
    pod = RESULTS.get("podman")
    for tool in TOOLS:
        t = RESULTS.get(tool)
        if t is not None:
            ratio = f"  {t / pod:.2f}x podman" if pod and tool != "podman" else ""
            tr.write_line(f"  {tool:7} {t:6.3f}s{ratio}")


def run(argv, env=None):
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=env)
    if p.returncode:
        raise RuntimeError(f"{' '.join(argv[:2])}…: exit {p.returncode}:"
                           f" {p.stderr.decode(errors='replace')[-500:]}")  # fmt: skip


class Tool:
    def __init__(self, name, base):
        self.name, self.base, self.round = name, base, 0
        if name == "sangja":
            env = {k: v for k, v in os.environ.items() if not k.startswith("SANGJA_")}
            self.env = dict(env, SANGJA_ROOT=os.path.join(base, "sangja-store"),
                            SANGJA_CONFIG="/nonexistent")  # fmt: skip
            sj = registrykit.sangja_binary()
            self.cli = [sj, "--root", os.path.join(base, "sangja-run")]
            run(self.cli + ["image", "pull", "-q", BASE], self.env)
            run(self.cli + ["container", "run", "--name", "big", BASE, "sh", "-c", WRITE],
                self.env)  # fmt: skip
            self.commit = self.cli + ["container", "commit", "big"]
            self.rmi = self.cli + ["image", "rm"]
        else:
            self.pm = registrykit.Podman(base)
            self.pm.base += ["--cgroup-manager", "cgroupfs"]
            self.env = None
            # rlimits this process may give (podman's defaults need CAP_SYS_RESOURCE)
            nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            nofile = 1048576 if nofile == resource.RLIM_INFINITY else nofile
            nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
            with open("/proc/sys/kernel/pid_max") as f:
                pid_max = int(f.read())
            nproc = pid_max if nproc == resource.RLIM_INFINITY else min(nproc, pid_max)
            self.pm("pull", "-q", "--tls-verify=false", BASE)
            self.pm("run", "--name", "big", "--net", "none", "--ulimit",
                    f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}", BASE,
                    "sh", "-c", WRITE)  # fmt: skip
            self.commit = self.pm.base + ["commit", "-q", "big"]
            self.rmi = self.pm.base + ["rmi"]

    def setup(self):
        if self.round:
            run(self.rmi + [f"bench:{self.round}"], self.env)
        self.round += 1
        return (), {}

    def __call__(self):
        run(self.commit + [f"bench:{self.round}"], self.env)

    def close(self):
        if self.name == "podman":
            self.pm.close()
        else:
            subprocess.run(self.cli + ["container", "rm", "-f", "big"], env=self.env,
                           capture_output=True)  # fmt: skip


@pytest.mark.parametrize("name", TOOLS)
def test_commit(benchmark, fixtures, base, name):
    if name == "podman" and not shutil.which("podman"):
        pytest.skip("podman is not installed")
    tool = Tool(name, base)
    try:
        benchmark.pedantic(tool, setup=tool.setup, rounds=ROUNDS, iterations=1)
    finally:
        tool.close()
    if benchmark.stats:
        RESULTS[name] = benchmark.stats.stats.median
