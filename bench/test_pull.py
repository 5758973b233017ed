"""Pull + unpack of test/debian:bookworm (3 layers, 51 MB gzip, 6700 entries) from the
fixtures' plain registry on loopback: sangja against `skopeo copy` + `umoci unpack` and
against `podman pull` (a private --root), in the same run.

Every round starts from an empty store of its own (`sync` first, outside the clock), on a
file system made for the benchmark (see `workdir`).  Each
tool does its whole job: sangja checks every blob and diff_id and syncs the store before
it commits; podman writes its overlay storage; skopeo writes an OCI layout and umoci
unpacks it into a bundle.  The summary prints the medians and the ratios (target: sangja
<= 0.5x podman).  Run as root: `make bench`, or `pytest bench/test_pull.py`.
"""

import os
import shutil
import subprocess
import sys

import pytest
from conftest import fresh_ext4, print_at_end

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

import registrykit  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="run as root: registries, overlay")

REF = f"{registrykit.PLAIN}/test/debian:bookworm"
ROUNDS = 5
TOOLS = ["sangja", "skopeo+umoci", "podman"]
TARGET = 0.5  # sangja / podman
RESULTS = {}


@pytest.fixture(scope="module", autouse=True)
def summary(request):
    yield
    print_at_end(request, RESULTS, print_summary)


def print_summary(tr):
    tr.write_line("")
    tr.write_line(f"pull + unpack of {REF}, median seconds (ratios in the same run):")
    pod, sk = RESULTS.get("podman"), RESULTS.get("skopeo+umoci")
    for tool in TOOLS:
        t = RESULTS.get(tool)
        if t is None:
            continue
        ratios = []
        if pod and tool != "podman":
            ratios.append(f"{t / pod:.2f}x podman")
        if sk and tool != "skopeo+umoci":
            ratios.append(f"{t / sk:.2f}x skopeo+umoci")
        tr.write_line(f"  {tool:13} {t:6.3f}s  " + ", ".join(ratios))
    if pod and "sangja" in RESULTS:
        r = RESULTS["sangja"] / pod
        tr.write_line(f"  target sangja <= {TARGET}x podman: {'met' if r <= TARGET else 'NOT met'}")


def run(argv, env=None):
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   env=env)  # fmt: skip


class Tool:
    """One tool; every round writes a store of its own, all of them removed only after the
    last tool's last round (a removal is work the file system goes on doing)."""

    def __init__(self, name, base):
        self.name = name
        self.base = os.path.join(base, name.replace("+", "-"))
        self.round = -1
        self.podmen = []

    def setup(self):
        self.round += 1
        self.dir = os.path.join(self.base, str(self.round))
        os.makedirs(self.dir)
        if self.name == "podman":
            self.podmen.append(registrykit.Podman(self.dir))
        os.sync()  # the last round's writeback must not run into this one
        return (), {}

    def __call__(self):
        if self.name == "sangja":
            env = {k: v for k, v in os.environ.items() if not k.startswith("SANGJA_")}
            run([registrykit.sangja_binary(), "image", "pull", "-q", REF],
                env=dict(env, SANGJA_ROOT=self.dir, SANGJA_CONFIG="/nonexistent"))  # fmt: skip
        elif self.name == "podman":
            run(self.podmen[-1].base + ["pull", "-q", "--tls-verify=false", REF])
        else:
            layout = os.path.join(self.dir, "oci")
            run(["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{REF}",
                 f"oci:{layout}:bookworm"])  # fmt: skip
            run(["umoci", "unpack", "--image", f"{layout}:bookworm",
                 os.path.join(self.dir, "bundle")])  # fmt: skip

    def close(self):
        for p in self.podmen:
            p.close()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="module")
def workdir():
    """Every round of every tool writes on a fresh ext4 (conftest.fresh_ext4)."""
    tools = []
    with fresh_ext4("sangja-bench-pull-") as mnt:
        try:
            yield mnt, tools
        finally:
            for tool in tools:
                tool.close()


@pytest.mark.parametrize("name", TOOLS)
def test_pull(benchmark, fixtures, workdir, name):
    if name == "podman" and not shutil.which("podman"):
        pytest.skip("podman is not installed")
    base, tools = workdir
    tool = Tool(name, base)
    tools.append(tool)
    benchmark.extra_info.update(ref=REF)
    benchmark.pedantic(tool, setup=tool.setup, rounds=ROUNDS, iterations=1)
    if benchmark.stats:
        RESULTS[name] = benchmark.stats.stats.median
