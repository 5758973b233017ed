"""Storage and housekeeping, sangja beside podman 4.3 (runc, conmon, the same images from
the fixtures' registry) in the same run:

  df_200_50        `system df` with 200 containers and 50 volumes      target <= 0.3 s
  run_debian_*     `container run --rm debian true` on the overlay driver and on vfs
                   (a full copy of the image per container): how much slower vfs is,
                   for sangja and for podman (its own overlay and vfs storage)

Run as root: `make bench`, or `pytest bench/test_storage.py`.
"""

import os
import shutil

import pytest
import registrykit  # tests/, on the path by conftest.py
from conftest import print_at_end
from test_engine import Engine, _quiet

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="run as root: overlay mounts, cgroups"),
    pytest.mark.skipif(
        not shutil.which("podman") or not shutil.which("runc"),
        reason="podman and runc are needed to compare with",
    ),  # fmt: skip
]

BUSYBOX = f"{registrykit.PLAIN}/test/busybox"
DEBIAN = f"{registrykit.PLAIN}/test/debian:bookworm"
RESULTS: dict = {}  # (bench, engine) -> median seconds
DF_TARGET = 0.3


class Storage(Engine):
    """An engine of bench/test_engine.py with a storage driver of its own."""

    def __init__(self, name, base, driver):
        super().__init__(name, os.path.join(base, driver))
        self.driver = driver
        if name == "sangja":
            self.env["SANGJA_STORAGE_DRIVER"] = driver
            self.system = self.argv[:-1] + ["system"]
            self.volume = self.argv[:-1] + ["volume"]
        else:
            i = self.argv.index("--storage-driver")
            self.argv[i + 1] = driver
            self.system = self.argv + ["system"]
            self.volume = self.argv + ["volume"]

    def pull_image(self, image):
        if self.name == "sangja":
            self.sys_(["image", "pull", "-q", image], base=self.argv[:-1])
        else:
            self("pull", "-q", "--tls-verify=false", image)

    def sys_(self, args, base=None):
        return _quiet((base or self.system) + list(args), env=self.env)


@pytest.fixture(scope="module")
def stores(tmp_path_factory, fixtures):
    base = str(tmp_path_factory.mktemp("storage"))
    out = {}
    for name in ("sangja", "podman"):
        for driver in ("overlay", "vfs"):
            e = out[(name, driver)] = Storage(name, os.path.join(base, name), driver)
            e.pull_image(BUSYBOX)
            e.pull_image(DEBIAN)
    yield out
    for e in out.values():
        e.close()


def _bench(benchmark, bench, engine, fn, rounds):
    benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)
    if benchmark.stats:
        RESULTS[(bench, engine)] = benchmark.stats.stats.median


@pytest.fixture(scope="module", autouse=True)
def summary(request):
    yield
    print_at_end(request, RESULTS, print_summary)


def print_summary(tr):
    tr.write_line("")
    tr.write_line("storage, medians (same run):")
    s, p = RESULTS.get(("df_200_50", "sangja")), RESULTS.get(("df_200_50", "podman"))
    if s is not None and p is not None:
        goal = "met" if s <= DF_TARGET else "NOT met"
        tr.write_line(f"  system df, 200 containers + 50 volumes: sangja {s * 1000:.1f} ms,"
                      f" podman {p * 1000:.1f} ms ({s / p:.2f}x); target <= {DF_TARGET} s:"
                      f" {goal}")  # fmt: skip
    for name in ("sangja", "podman"):
        o, v = RESULTS.get(("run_debian_overlay", name)), RESULTS.get(("run_debian_vfs", name))
        if o is not None and v is not None:
            tr.write_line(f"  run --rm debian true, {name}: overlay {o * 1000:.1f} ms,"
                          f" vfs {v * 1000:.1f} ms: vfs is {v / o:.1f}x overlay")  # fmt: skip
    so, po = RESULTS.get(("run_debian_overlay", "sangja")), RESULTS.get(
        ("run_debian_overlay", "podman"))  # fmt: skip
    sv, pv = RESULTS.get(("run_debian_vfs", "sangja")), RESULTS.get(("run_debian_vfs", "podman"))
    if so and po and sv and pv:
        tr.write_line(f"  sangja / podman: overlay {so / po:.2f}x, vfs {sv / pv:.2f}x")


@pytest.mark.parametrize("name", ["sangja", "podman"])
def test_df_200_containers_50_volumes(benchmark, stores, name):
    e = stores[(name, "overlay")]

    def make(i):
        vol = ["-v", f"vol{i}:/data"] if i < 50 else []
        e("create", "--name", f"df{i}", *e.run_args(), *vol, BUSYBOX, "true")

    for i in range(200):  # one at a time: what is measured is df, not concurrent creates
        make(i)
    try:
        assert len(e.out("ps", "-aq").split()) == 200
        _bench(benchmark, "df_200_50", name, lambda: e.sys_(["df"]), rounds=10)
    finally:
        names = [f"df{i}" for i in range(200)]
        for i in range(0, 200, 50):
            e("rm", "-f", *names[i : i + 50])
        e.sys_([f"vol{i}" for i in range(50)], base=e.volume + ["rm", "-f"])


@pytest.mark.parametrize("driver", ["overlay", "vfs"])
@pytest.mark.parametrize("name", ["sangja", "podman"])
def test_run_debian(benchmark, stores, name, driver):
    e = stores[(name, driver)]
    _bench(benchmark, f"run_debian_{driver}", name,
           lambda: e("run", "--rm", *e.run_args(), DEBIAN, "true"), rounds=5)  # fmt: skip
