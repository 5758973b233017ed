"""`sangja build` against `podman build` (buildah 1.28, Debian's), in the same run, on a
10-step Dockerfile over the fixtures' test/debian:bookworm (requirements before code: two
RUNs, three COPYs, a 20 MB dependency layer):

  - cold: every step run (`--no-cache` for both; the base image is in each store);
  - cached: nothing changed since the last build (every step from the cache);
  - last-copy: only the last COPY's source changed since the last build (a new
    content each round, outside the clock).

Both tools keep their storage on tmpfs (/dev/shm) and run RUN without a network.  The
summary prints the medians and ratios (goals: cold <= 0.7x, cached <= 0.2x podman's).
Run as root: `make bench`, or `pytest bench/test_build.py`.
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

import registrykit  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="run as root: containers, overlay")

BASE = f"{registrykit.PLAIN}/test/debian:bookworm"
ROUNDS = {"cold": 5, "cached": 10, "last-copy": 5}
GOALS = {"cold": 0.7, "cached": 0.2}
TOOLS = ["sangja", "podman"]
RESULTS = {}

# RUNs in the exec form through /usr/bin/sh: the fixture's /bin is a symlink that podman's
# unpacking replaces (see tests/build/test_podman_compare.py)
DOCKERFILE = f"""FROM {BASE}
ENV APP_HOME=/app
WORKDIR /app
COPY requirements.txt .
RUN ["/usr/bin/sh", "-c", "mkdir -p /opt/deps && while read r; do echo $r > /opt/deps/$r; done < requirements.txt && head -c 20000000 /dev/urandom > /opt/deps/blob"]
RUN ["/usr/bin/sh", "-c", "useradd --uid 10001 --no-create-home app"]
COPY src/ ./src/
RUN ["/usr/bin/sh", "-c", "chown -R app /app/src"]
COPY main.py .
CMD ["/usr/bin/sh", "-c", "cat main.py"]
"""  # noqa: E501


@pytest.fixture(scope="module")
def base():
    d = tempfile.mkdtemp(prefix="sangja-bench-build-", dir="/dev/shm")
    ctx = os.path.join(d, "ctx")
    os.makedirs(os.path.join(ctx, "src", "pkg"))
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write(DOCKERFILE)
    with open(os.path.join(ctx, "requirements.txt"), "w") as f:
        f.write("".join(f"dep{i}\n" for i in range(20)))
    for i in range(50):
        with open(os.path.join(ctx, "src", "pkg", f"mod{i}.py"), "w") as f:
            f.write(f"X = {i}\n" * 100)
    with open(os.path.join(ctx, "main.py"), "w") as f:
        f.write("print('v0')\n")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module", autouse=True)
def summary(request):
    yield
    print_at_end(request, RESULTS, print_summary)


def print_summary(tr):
    tr.write_line("")
    tr.write_line("build of a 10-step Dockerfile on test/debian, median seconds (same run):")
    for case in ROUNDS:
        pod = RESULTS.get((case, "podman"))
        sj = RESULTS.get((case, "sangja"))
        if sj is None:
            continue
        ratio = f"  {sj / pod:.2f}x podman ({pod:.3f}s)" if pod else ""
        goal = GOALS.get(case)
        met = ""
        if goal and pod:
            met = f"  goal <= {goal}x: {'met' if sj / pod <= goal else 'NOT met'}"
        tr.write_line(f"  {case:9} sangja {sj:6.3f}s{ratio}{met}")


class Tool:
    def __init__(self, name, base):
        self.name, self.base = name, base
        self.ctx = os.path.join(base, "ctx")
        self.n = 0
        if name == "sangja":
            env = {k: v for k, v in os.environ.items() if not k.startswith("SANGJA_")}
            self.env = dict(env, SANGJA_ROOT=os.path.join(base, "sangja-store"),
                            SANGJA_CONFIG="/nonexistent")  # fmt: skip
            sj = registrykit.sangja_binary()
            self.run([sj, "image", "pull", "-q", BASE])
            self.argv = [sj, "--root", os.path.join(base, "sangja-run"), "build", "-q",
                         "--network", "none", "-t", "bench:1", self.ctx]  # fmt: skip
        else:
            self.pm = registrykit.Podman(base)
            self.pm.base += ["--cgroup-manager", "cgroupfs"]
            self.pm("pull", "-q", "--tls-verify=false", BASE)
            self.env = None
            self.argv = self.pm.base + ["build", "-q", "--network", "none", "--layers",
                                        "-t", "bench:1", self.ctx]  # fmt: skip

    def run(self, argv):
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=self.env)
        if p.returncode:
            raise RuntimeError(f"{' '.join(argv[:1] + argv[-3:])}: exit {p.returncode}:"
                               f" {p.stderr.decode(errors='replace')[-800:]}")  # fmt: skip

    def build(self, *extra):
        self.run(self.argv[:-1] + list(extra) + [self.argv[-1]])

    def change_last_copy(self):
        self.n += 1
        with open(os.path.join(self.ctx, "main.py"), "w") as f:
            f.write(f"print('v{self.n}-{self.name}')\n")

    def close(self):
        if self.name == "podman":
            self.pm.close()


@pytest.mark.parametrize("case", list(ROUNDS))
@pytest.mark.parametrize("name", TOOLS)
def test_build(benchmark, fixtures, base, name, case):
    if name == "podman" and not shutil.which("podman"):
        pytest.skip("podman is not installed")
    tool = Tool(name, base)
    try:
        tool.build()  # warm: the base image unpacked, the cache filled
        if case == "cold":
            fn, setup = (lambda: tool.build("--no-cache")), None
        elif case == "cached":
            fn, setup = tool.build, None
        else:
            fn = tool.build

            def setup():
                tool.change_last_copy()
                return (), {}

        benchmark.extra_info.update(case=case)
        if setup is None:
            benchmark.pedantic(fn, rounds=ROUNDS[case], iterations=1)
        else:
            benchmark.pedantic(fn, setup=setup, rounds=ROUNDS[case], iterations=1)
    finally:
        tool.close()
    if benchmark.stats:
        RESULTS[(case, name)] = benchmark.stats.stats.median
