"""Push of test/debian:bookworm (3 layers, 51 MB gzip) to a registry on loopback: `sangja
image push` against `podman push`, in the same run.

Both tools hold the image already (pulled from the fixtures' registry before the clock
starts); every round pushes to a registry started for it with an empty storage (Debian's
docker-registry, as the fixtures run it, in the fixtures' network namespace), so each
round uploads every blob.  sangja pushes the blobs its store kept from the pull (the
manifest's digest stays the same); podman has only the unpacked layers in its storage and
compresses them again, as it always must when pushing from its storage.  Everything is on
tmpfs.  The summary prints the medians and the ratio (target: sangja <= 0.5x podman).
Run as root: `make bench`, or `pytest bench/test_push.py`.
"""

import os
import shutil
import subprocess
import sys
import tempfile

import pytest
from conftest import print_at_end

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "image"))

import pushkit  # noqa: E402
import registrykit  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="run as root: registries, overlay")

SRC = f"{registrykit.PLAIN}/test/debian:bookworm"
ROUNDS = 5
TOOLS = ["sangja", "podman"]
TARGET = 0.5
RESULTS = {}


@pytest.fixture(scope="module")
def base():
    d = tempfile.mkdtemp(prefix="sangja-bench-push-", dir="/dev/shm")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module", autouse=True)
def summary(request):
    yield
    print_at_end(request, RESULTS, print_summary)


def print_summary(tr):
    tr.write_line("")
    tr.write_line(f"push of {SRC} to an empty registry, median seconds (same run):")
    pod = RESULTS.get("podman")
    for tool in TOOLS:
        t = RESULTS.get(tool)
        if t is not None:
            ratio = f"  {t / pod:.2f}x podman" if pod and tool != "podman" else ""
            tr.write_line(f"  {tool:7} {t:6.3f}s{ratio}")
    if pod and "sangja" in RESULTS:
        r = RESULTS["sangja"] / pod
        tr.write_line(f"  target sangja <= {TARGET}x podman: {'met' if r <= TARGET else 'NOT met'}")


def run(argv, env=None):
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, capture_output=True, env=env)


class Tool:
    def __init__(self, name, fixtures, base):
        self.name, self.fixtures, self.base = name, fixtures, base
        self.dst = f"127.0.0.1:{pushkit.PORTS['plain']}/bench/{name}:bookworm"
        self.reg = None
        self.round = 0
        if name == "sangja":
            env = {k: v for k, v in os.environ.items() if not k.startswith("SANGJA_")}
            self.env = dict(env, SANGJA_ROOT=os.path.join(base, "sangja-store"),
                            SANGJA_CONFIG="/nonexistent")  # fmt: skip
            sj = registrykit.sangja_binary()
            run([sj, "image", "pull", "-q", SRC], env=self.env)
            run([sj, "image", "tag", SRC, self.dst], env=self.env)
            self.argv = [sj, "image", "push", "-q", self.dst]
        else:
            self.pm = registrykit.Podman(base)
            self.pm("pull", "-q", "--tls-verify=false", SRC)
            self.env = None
            self.argv = self.pm.base + ["push", "-q", "--tls-verify=false", SRC, self.dst]

    def setup(self):
        self.stop()
        self.round += 1
        storage = os.path.join(self.base, f"registry-{self.name}-{self.round}")
        self.reg = pushkit.PushRegistry(self.fixtures, "plain", storage)
        return (), {}

    def __call__(self):
        run(self.argv, env=self.env)

    def stop(self):
        if self.reg is not None:
            self.reg.stop()
            shutil.rmtree(self.reg.storage, ignore_errors=True)
            self.reg = None

    def close(self):
        self.stop()
        if self.name == "podman":
            self.pm.close()


@pytest.mark.parametrize("name", TOOLS)
def test_push(benchmark, fixtures, base, name):
    if name == "podman" and not shutil.which("podman"):
        pytest.skip("podman is not installed")
    tool = Tool(name, fixtures, base)
    try:
        benchmark.extra_info.update(ref=SRC)
        benchmark.pedantic(tool, setup=tool.setup, rounds=ROUNDS, iterations=1)
    finally:
        tool.close()
    if benchmark.stats:
        RESULTS[name] = benchmark.stats.stats.median
