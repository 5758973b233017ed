"""Writing a tree as a gzip layer: sangja's C layer writer against `tar -cz` (GNU tar piped
into gzip), and the whole commit (a new image in the store) against `podman commit` and
`buildah commit` of the same tree, in the same run.

The tree is test/debian:bookworm's root (make-fixtures.sh; umoci unpack: ~117 MB, ~4900
entries), else this machine's /usr/bin and /usr/lib/python3 copied.  Everything lives on
tmpfs (/dev/shm), so no tool waits for a disk:
  - `write`: sangja.image.pack.write_layer(tree, out, gzip) -- tar + gzip (ISA-L level 1)
    + the diff_id and digest -- against `tar -czf out -C tree .`;
  - `commit`: sangja.image.commit.commit(store, [Step(root=tree)]) into a fresh store --
    the layer written, moved into the store, unpacked for running, config + manifest,
    one database commit -- against `podman commit` / `buildah commit` of a container
    (from scratch) whose upper dir holds the tree (copied in outside the clock); they
    write the diff and apply it as a new layer of their storage (not compressed: c/storage
    keeps layers unpacked).
The summary prints the medians and the ratios (targets: write <= 0.5x tar -cz; commit <=
0.5x podman commit and buildah commit).  Run as root: `make bench`, or
`pytest bench/test_pack.py`.
"""

import os
import shutil
import subprocess
import sys
import tempfile

import pytest
from conftest import print_at_end

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "image"))

import layertools  # noqa: E402

from sangja.image.commit import Step, commit  # noqa: E402
from sangja.image.pack import write_layer  # noqa: E402
from sangja.image.store import Store  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="run as root: owners and devices")

ROUNDS = 5
TARGET = 0.5
RESULTS = {}  # (bench, tool) -> median seconds
GROUPS = {"write": ["sangja", "tar -cz"], "commit": ["sangja", "podman", "buildah"]}
REFERENCE = {"write": ["tar -cz"], "commit": ["podman", "buildah"]}


def run(argv, **kw):
    return subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, **kw)  # fmt: skip


@pytest.fixture(scope="module")
def base():
    d = tempfile.mkdtemp(prefix="sangja-bench-pack-", dir="/dev/shm")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def tree(base):
    root = os.path.join(base, "tree")
    fx = layertools.load_fixtures()
    if fx is None:
        fx, _ = layertools.build_fixtures()
    if fx is not None and shutil.which("umoci"):
        bundle = os.path.join(base, "bundle")
        run(["umoci", "unpack", "--image", f"{fx.oci}:debian-bookworm", bundle])
        os.rename(os.path.join(bundle, "rootfs"), root)
        shutil.rmtree(bundle)
    else:
        os.makedirs(os.path.join(root, "usr", "lib"))
        run(["cp", "-a", "/usr/bin", os.path.join(root, "usr")])
        run(["cp", "-a", "/usr/lib/python3", os.path.join(root, "usr", "lib")])
    return root


@pytest.fixture(scope="module", autouse=True)
def summary(request):
    yield
    print_at_end(request, RESULTS, print_summary)


def print_summary(tr):
    tr.write_line("")
    tr.write_line("a tree as a gzip layer, median seconds (ratios in the same run):")
    for group, tools in GROUPS.items():
        cells = []
        for tool in tools:
            t = RESULTS.get((group, tool))
            if t is not None:
                ratios = [f"{t / RESULTS[(group, r)]:.2f}x {r}" for r in REFERENCE[group]
                          if tool == "sangja" and (group, r) in RESULTS]  # fmt: skip
                cells.append(f"{tool} {t:.3f}s" + (f" ({', '.join(ratios)})" if ratios else ""))
        if cells:
            tr.write_line(f"  {group:6}: " + "; ".join(cells))
            s = RESULTS.get((group, "sangja"))
            for r in REFERENCE[group]:
                if s and (group, r) in RESULTS:
                    ok = s / RESULTS[(group, r)] <= TARGET
                    tr.write_line(f"          target sangja <= {TARGET}x {r}: "
                                  f"{'met' if ok else 'NOT met'}")  # fmt: skip


# ---- write: the layer alone ---------------------------------------------------------------


@pytest.mark.parametrize("tool", GROUPS["write"])
def test_write(benchmark, base, tree, tool):
    out = os.path.join(base, "out.tar.gz")

    def setup():
        if os.path.exists(out):
            os.unlink(out)
        return (), {}

    def go():
        if tool == "sangja":
            write_layer(tree, out, compression="gzip")
        else:
            run(["tar", "-czf", out, "-C", tree, "."])

    benchmark.pedantic(go, setup=setup, rounds=ROUNDS, iterations=1)
    if benchmark.stats:
        RESULTS[("write", tool)] = benchmark.stats.stats.median
    os.unlink(out)


# ---- commit: a new image in the store ------------------------------------------------------


class Engine:
    """podman or buildah with a private storage on tmpfs, a working container from scratch
    whose upper dir holds the tree; each round commits it to a new image (the last
    round's image removed first, outside the clock, so no layer is reused)."""

    def __init__(self, name, base, tree):
        self.name = name
        self.root = os.path.join(base, name + "-root")
        self.runroot = tempfile.mkdtemp(prefix="sjb-", dir="/tmp")  # podman wants it short
        self.cmd = [shutil.which(name), "--root", self.root, "--runroot", self.runroot,
                    "--storage-driver", "overlay"]  # fmt: skip
        if name == "podman":
            self.cmd += ["--events-backend", "none"]
            empty = os.path.join(base, "empty.tar")
            run(["tar", "-cf", empty, "-T", "/dev/null"])
            run(self.cmd + ["import", "-q", empty, "localhost/empty"])
            self.ctr = run(self.cmd + ["create", "localhost/empty", "true"]).stdout.strip()
        else:
            self.ctr = run(self.cmd + ["from", "scratch"]).stdout.strip()
        merged = run(self.cmd + ["mount", self.ctr]).stdout.strip()
        run(["cp", "-a", tree + "/.", merged])
        self.round = 0

    def setup(self):
        if self.round:
            run(self.cmd + ["rmi", f"localhost/committed:{self.round}"])
        self.round += 1
        return (), {}

    def __call__(self):
        extra = ["-q"] if self.name == "buildah" else []
        run(self.cmd + ["commit", *extra, self.ctr, f"localhost/committed:{self.round}"])

    def close(self):
        subprocess.run(self.cmd + ["system", "reset", "-f"] if self.name == "podman" else
                       self.cmd + ["rm", "--all"], capture_output=True)  # fmt: skip
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split()[4] for line in f]
        for m in reversed(mounts):
            if m == self.root or m.startswith(self.root + "/"):
                subprocess.run(["umount", "-l", m], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.runroot, ignore_errors=True)


class SangjaCommit:
    def __init__(self, base, tree):
        self.base, self.tree, self.round = base, tree, 0

    def setup(self):
        shutil.rmtree(os.path.join(self.base, f"store-{self.round}"), ignore_errors=True)
        self.round += 1
        self.store = Store(os.path.join(self.base, f"store-{self.round}"))
        self.store._dirs()
        return (), {}

    def __call__(self):
        commit(self.store, [Step("copy of the tree", root=self.tree)], config={"Cmd": ["sh"]},
               refs=["localhost/committed:1"])  # fmt: skip
        self.store.close()

    def close(self):
        shutil.rmtree(os.path.join(self.base, f"store-{self.round}"), ignore_errors=True)


@pytest.mark.parametrize("tool", GROUPS["commit"])
def test_commit(benchmark, base, tree, tool):
    if tool != "sangja" and not shutil.which(tool):
        pytest.skip(f"{tool} is not installed")
    t = SangjaCommit(base, tree) if tool == "sangja" else Engine(tool, base, tree)
    try:
        benchmark.pedantic(t, setup=t.setup, rounds=ROUNDS, iterations=1)
    finally:
        t.close()
    if benchmark.stats:
        RESULTS[("commit", tool)] = benchmark.stats.stats.median
