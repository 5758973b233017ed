"""Shared fixtures for the benchmarks: the runtimes side by side, and a ratio table."""

import contextlib
import itertools
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from bundles import make_bundle  # noqa: E402

# crun 1.8 refuses this host's hybrid cgroup layout unless the cgroup2 mount is hidden.
CRUN_WRAP = ["unshare", "-m", "sh", "-c", 'umount /sys/fs/cgroup/unified; exec crun "$@"', "crun"]


def runtimes():
    out = {"sangja": [os.environ.get("SANGJA") or shutil.which("sangja") or "sangja"]}
    if shutil.which("runc"):
        out["runc"] = [shutil.which("runc")]
    if shutil.which("crun"):
        out["crun"] = CRUN_WRAP
    return out


RESULTS = {}  # (bench, runtime) -> median seconds or bytes
_ids = itertools.count()


def new_id(prefix):
    return f"{prefix}-{os.getpid()}-{next(_ids)}"


@pytest.fixture(scope="session")
def bundle(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench") / "bundle"
    return str(make_bundle(str(d), ["/bin/true"]))


@pytest.fixture(scope="session")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("roots")
    return {name: str(base / name) for name in runtimes()}


@contextlib.contextmanager
def fresh_ext4(prefix, size="8G"):
    """A fresh ext4 (journaled, mkfs's defaults) on a loop device; yields its mountpoint,
    removed afterwards.  Not the VM's root file system: that one has no journal, and there
    ext4 skips inodes freed in the last 30 s when it allocates, so whatever any process
    deleted lately (other tests, the last round) would be timed as well."""
    top = tempfile.mkdtemp(prefix=prefix, dir="/var/tmp")
    img, mnt = os.path.join(top, "fs.img"), os.path.join(top, "mnt")
    os.mkdir(mnt)
    try:
        subprocess.run(["truncate", "-s", size, img], check=True)
        subprocess.run(["mkfs.ext4", "-q", "-F", img], check=True)
        subprocess.run(["mount", "-o", "loop", img, mnt], check=True)
        try:
            yield mnt
        finally:
            subprocess.run(["umount", mnt], check=False)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def print_at_end(request, results, write):
    """At a module's end: `write(terminalreporter)` prints its summary on the terminal,
    past pytest's capture; nothing when the module measured nothing."""
    tr = request.config.pluginmanager.get_plugin("terminalreporter")
    if not results or tr is None:
        return
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        write(tr)


def call(argv):
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


def record(group, runtime, value):
    RESULTS[(group, runtime)] = value


def pytest_terminal_summary(terminalreporter):
    if not RESULTS:
        return
    tr = terminalreporter
    tr.section("sangja vs runc / podman (same run): medians and ratios")
    groups = sorted({g for g, _ in RESULTS})
    for g in groups:
        ref = "runc" if (g, "runc") in RESULTS else "podman"
        base = RESULTS.get((g, ref))
        unit = "MiB" if g.endswith("rss") else "Gbit/s" if "Gbit/s" in g else "ms"
        parts = []
        for rt in ("sangja", "runc", "crun", "podman"):
            v = RESULTS.get((g, rt))
            if v is None:
                continue
            shown = v / 1024 if unit == "MiB" else v if unit == "Gbit/s" else v * 1000
            ratio = f" ({v / base:.2f}x {ref})" if base and rt != ref else ""
            parts.append(f"{rt} {shown:.{2 if unit == 'Gbit/s' else 1}f} {unit}{ratio}")
        tr.write_line(f"{g:28} " + " | ".join(parts))


@pytest.fixture(scope="module")
def fixtures():
    """The fixtures' registries (the plain one started), in their network namespace."""
    import registrykit

    gen = registrykit.session_fixtures()
    fx = next(gen)
    fx.registry("plain")
    with fx.netns.entered():
        yield fx
    with pytest.raises(StopIteration):
        next(gen)
