"""Layer extraction: sangja's C extractor against GNU tar, bsdtar and Python's tarfile.

The layer is the biggest one of test/debian:bookworm (make-fixtures.sh: ~51 MB gzip, 6659
entries), else one made here from /usr of about the same size.  Every tool unpacks it into a
fresh directory on tmpfs (/dev/shm) and on disk: a fresh journaled ext4 on a loop device
(conftest.fresh_ext4: the VM's root ext4 has no journal and slows down after deletions), or
$SANGJA_BENCH_DISK if set; the previous round's tree is removed and synced before the clock
starts.  sangja does more than
the others (sha256 of the blob and of the tar stream, whiteout conversion, confinement) and
is called as the engine calls it, minus the final syncfs (`sync=False`: no tool syncs).

The summary at the end prints the medians and the ratios to GNU tar (targets: tmpfs <= 0.35x,
disk <= 0.8x).  Run as root: `make bench`, or `pytest bench/test_extract.py`.
"""

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

import pytest
from conftest import fresh_ext4, print_at_end

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "image"))

import layertools  # noqa: E402

from sangja.image.unpack import unpack_layer  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="run as root: owners and devices")

TARGETS = {"tmpfs": 0.35, "disk": 0.8}  # wanted ratio to GNU tar
ROUNDS = {"tmpfs": 7, "disk": 5}
TOOLS = ["gnutar", "sangja", "bsdtar", "tarfile"]
RESULTS = {}  # (fs, tool) -> median seconds


def fs_type(path):
    r = subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True)
    return r.stdout.strip()


def build_usr_layer(path):
    """A stand-in layer from this machine's /usr: ~120 MB of files, several thousand entries."""
    dirs = [
        d
        for d in (
            "usr/bin",
            "usr/sbin",
            "usr/lib/x86_64-linux-gnu",
            "usr/share/perl5",
            "usr/lib/python3",
        )
        if os.path.isdir("/" + d)
    ]
    subprocess.run(
        ["tar", "-czf", path, "-C", "/", "--ignore-failed-read", "--exclude=*.a", *dirs],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def layer(tmp_path_factory):
    fx = layertools.load_fixtures()
    if fx is None:
        fx, _ = layertools.build_fixtures()
    if fx is not None:
        blobs = [
            (os.path.getsize(b), b)
            for b, _, _, comp in fx.image("debian-bookworm")
            if comp == "gzip"
        ]
        return max(blobs)[1]
    path = str(tmp_path_factory.mktemp("layer") / "usr-layer.tar.gz")
    build_usr_layer(path)
    return path


@pytest.fixture(scope="module", params=["tmpfs", "disk"])
def where(request):
    fs = request.param
    if fs == "disk" and not os.environ.get("SANGJA_BENCH_DISK"):
        with fresh_ext4("sangja-bench-extract-") as mnt:
            yield fs, mnt
        return
    base = "/dev/shm" if fs == "tmpfs" else os.environ["SANGJA_BENCH_DISK"]
    kind = fs_type(base)
    if (fs == "tmpfs") != (kind == "tmpfs"):
        pytest.skip(f"{base} is {kind}, not {'tmpfs' if fs == 'tmpfs' else 'a disk'}")
    d = tempfile.mkdtemp(prefix="sangja-bench-", dir=base)
    yield fs, d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module", autouse=True)
def summary(request):
    yield
    print_at_end(request, RESULTS, print_summary)


def print_summary(tr):
    tr.write_line("")
    tr.write_line("layer extraction, median seconds (ratio to GNU tar):")
    for fs, target in TARGETS.items():
        base = RESULTS.get((fs, "gnutar"))
        cells = []
        for tool in TOOLS:
            t = RESULTS.get((fs, tool))
            if t is not None:
                cells.append(f"{tool} {t:.3f}s" + (f" ({t / base:.2f}x)" if base else ""))
        if cells:
            line = f"  {fs:5}: " + ", ".join(cells)
            if base and (fs, "sangja") in RESULTS:
                ratio = RESULTS[(fs, "sangja")] / base
                line += f"  [target <= {target}x: {'met' if ratio <= target else 'NOT met'}]"
            tr.write_line(line)


def run_gnutar(blob, dest):
    subprocess.run(["tar", "-xzf", blob, "-C", dest], check=True)


def run_bsdtar(blob, dest):
    subprocess.run(["bsdtar", "-xpf", blob, "-C", dest], check=True)


# extraction filters came with Python 3.11.4 (Debian 12 has 3.11.2)
_TARFILE_KW = {"filter": "fully_trusted"} if hasattr(tarfile, "data_filter") else {}


def run_tarfile(blob, dest):
    with tarfile.open(blob, "r:gz") as t:
        t.extractall(dest, numeric_owner=True, **_TARFILE_KW)


def run_sangja(blob, dest):
    unpack_layer(blob, dest, "layer", sync=False)


RUNNERS = {"gnutar": run_gnutar, "sangja": run_sangja, "bsdtar": run_bsdtar, "tarfile": run_tarfile}


@pytest.mark.parametrize("tool", TOOLS)
def test_extract(benchmark, layer, where, tool):
    fs, base = where
    if tool == "bsdtar" and not shutil.which("bsdtar"):
        pytest.skip("bsdtar is not installed (Debian package libarchive-tools)")
    rounds = 3 if tool == "tarfile" else ROUNDS[fs]
    dests = [os.path.join(base, f"{tool}-{i}") for i in range(rounds)]

    def setup():
        dest = dests.pop(0)
        if fs == "tmpfs":  # no inode-reuse effect on tmpfs: keep the memory use down
            for old in os.listdir(base):
                shutil.rmtree(os.path.join(base, old))
        os.mkdir(dest)
        os.sync()  # the last round's writeback must not run into this one
        return (layer, dest), {}

    benchmark.extra_info.update(fs=fs, layer=os.path.basename(layer))
    benchmark.pedantic(RUNNERS[tool], setup=setup, rounds=rounds, iterations=1)
    if benchmark.stats:  # None with --benchmark-disable
        RESULTS[(fs, tool)] = benchmark.stats.stats.median
