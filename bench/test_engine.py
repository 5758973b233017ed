"""The engine's container commands beside podman 4.3 (with runc, conmon, the same busybox
image from the fixtures' registry), in the same run:

  run_rm        `container run --rm busybox true`           target <= 0.25x podman
  run_stop_rm   `run -d busybox sleep 100`, `stop -t 0`, `rm`
  ps_200        `ps -a` with 200 containers (created)
  logs_100mb    `logs` of a container that wrote 100 MB
  exec          `exec C true` into a running container      target <= 0.5x podman
  run_rm_floor  the CLI's interpreter started and the modules `run --rm` imports
                imported, nothing run: what any Python CLI of this engine spends first

Both engines have private roots; podman runs with cgroupfs, no events, both with
`--network none` (networks are bench/test_network.py's), and the rlimits this host lets a
container raise to (see ../shared/engines).  Run as root: `make bench`, or
`pytest bench/test_engine.py`.
"""

import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile

import pytest
from conftest import print_at_end

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

import registrykit  # noqa: E402

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="run as root: overlay mounts, cgroups"),
    pytest.mark.skipif(
        not shutil.which("podman") or not shutil.which("runc"),
        reason="podman and runc are needed to compare with",
    ),  # fmt: skip
]

IMAGE = f"{registrykit.PLAIN}/test/busybox"
TARGETS = {"run_rm": 0.25, "exec": 0.5}
RESULTS: dict = {}  # (bench, engine) -> median seconds
LOG_BYTES = 100 * 1000 * 1000


def _quiet(argv, env=None, check=True):
    return subprocess.run(argv, check=check, stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)  # fmt: skip


class Engine:
    def __init__(self, name, base):
        self.name = name
        self.dir = os.path.join(base, name)
        os.makedirs(self.dir)
        if name == "sangja":
            env = {k: v for k, v in os.environ.items() if not k.startswith("SANGJA_")}
            self.env = dict(env, SANGJA_ROOT=os.path.join(self.dir, "root"),
                            SANGJA_CONFIG="/nonexistent",
                            SANGJA_CGROUP_PARENT=f"/sangja-bench-{os.getpid()}")  # fmt: skip
            self.argv = [registrykit.sangja_binary(), "--root", os.path.join(self.dir, "run"),
                         "container"]  # fmt: skip
        else:
            self.runroot = tempfile.mkdtemp(prefix="sjbp-", dir="/tmp")  # podman: <= 50 bytes
            conf = os.path.join(self.dir, "containers.conf")
            nofile = _hard("RLIMIT_NOFILE", 1048576)
            nproc = min(_hard("RLIMIT_NPROC", 1 << 20), _pid_max())
            with open(conf, "w") as f:
                f.write(f'[containers]\nlog_driver = "k8s-file"\nnetns = "none"\n'
                        f'default_ulimits = ["nofile={nofile}:{nofile}", '
                        f'"nproc={nproc}:{nproc}"]\n[engine]\ncgroup_manager = "cgroupfs"\n'
                        f'events_logger = "none"\ntmp_dir = "{self.runroot}/tmp"\n'
                        f'lock_type = "file"\n')  # fmt: skip
            self.env = dict(os.environ, CONTAINERS_CONF=conf)
            self.env.pop("CONTAINER_HOST", None)
            self.argv = ["podman", "--root", os.path.join(self.dir, "root"), "--runroot",
                         self.runroot, "--tmpdir", f"{self.runroot}/tmp", "--storage-driver",
                         "overlay", "--cgroup-manager", "cgroupfs", "--events-backend", "none",
                         "--runtime", shutil.which("runc")]  # fmt: skip

    def __call__(self, *args, check=True):
        return _quiet(self.argv + list(args), env=self.env, check=check)

    def out(self, *args):
        return subprocess.run(self.argv + list(args), check=True, capture_output=True,
                              text=True, env=self.env).stdout  # fmt: skip

    def pull(self):
        if self.name == "sangja":
            _quiet([registrykit.sangja_binary(), "image", "pull", "-q", IMAGE], env=self.env)
        else:
            self("pull", "-q", "--tls-verify=false", IMAGE)

    def run_args(self):
        return ["--network", "none"]  # networks: bench/test_network.py

    def close(self):
        if self.name == "podman":
            self("rm", "-a", "-f", "-t", "0", check=False)
            _quiet(self.argv + ["system", "reset", "-f"], env=self.env, check=False)
            for m in reversed(_mounts_under(self.dir)):
                _quiet(["umount", "-l", m], check=False)
            shutil.rmtree(self.runroot, ignore_errors=True)
        else:
            ids = self.out("ps", "-aq", "--no-trunc").split()
            for i in range(0, len(ids), 50):
                self("rm", "-f", *ids[i : i + 50], check=False)
            for mnt in _cgroup_mounts():
                with _suppress():
                    os.rmdir(mnt + self.env["SANGJA_CGROUP_PARENT"])


def _hard(name, default):
    import resource

    h = resource.getrlimit(getattr(resource, name))[1]
    return default if h == resource.RLIM_INFINITY else h


def _pid_max():
    with open("/proc/sys/kernel/pid_max") as f:
        return int(f.read())


def _mounts_under(d):
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(d)]


def _cgroup_mounts():
    with open("/proc/self/mountinfo") as f:
        return [line.split(" - ")[0].split()[4] for line in f
                if line.split(" - ")[1].split()[0] in ("cgroup", "cgroup2")]  # fmt: skip


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], OSError)


@pytest.fixture(scope="module")
def engines(tmp_path_factory, fixtures):
    base = str(tmp_path_factory.mktemp("engines"))
    out = {}
    for name in ("sangja", "podman"):
        out[name] = Engine(name, base)
        out[name].pull()
    yield out
    for e in out.values():
        e.close()


@pytest.fixture(scope="module", autouse=True)
def summary(request):
    yield
    print_at_end(request, RESULTS, print_summary)


def print_summary(tr):
    tr.write_line("")
    tr.write_line("engine commands, medians (ratios to podman+runc in the same run):")
    floor, p = RESULTS.get(("run_rm_floor", "sangja")), RESULTS.get(("run_rm", "podman"))
    if floor is not None and p is not None:
        tr.write_line(f"  {'run_rm floor':12} sangja {floor * 1000:8.1f} ms   (Python start + run's"
                      f" imports) = {floor / p:.2f}x podman's run --rm")  # fmt: skip
    for bench in ("run_rm", "run_stop_rm", "ps_200", "logs_100mb", "exec"):
        s, p = RESULTS.get((bench, "sangja")), RESULTS.get((bench, "podman"))
        if s is None or p is None:
            continue
        target = TARGETS.get(bench)
        goal = ""
        if target:
            goal = f"  target <= {target}x: {'met' if s / p <= target else 'NOT met'}"
        tr.write_line(f"  {bench:12} sangja {s * 1000:8.1f} ms   podman {p * 1000:8.1f} ms"
                      f"   {s / p:.2f}x{goal}")  # fmt: skip


def _bench(benchmark, bench, engine, fn, rounds, setup=None):
    if setup is None:
        benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)
    else:
        benchmark.pedantic(fn, setup=setup, rounds=rounds, iterations=1)
    if benchmark.stats:
        RESULTS[(bench, engine)] = benchmark.stats.stats.median


@pytest.mark.parametrize("name", ["sangja", "podman"])
def test_run_rm(benchmark, engines, name):
    e = engines[name]
    _bench(benchmark, "run_rm", name, lambda: e("run", "--rm", *e.run_args(), IMAGE, "true"),
           rounds=15)  # fmt: skip


def test_run_rm_floor(benchmark, engines):
    """The part of `run --rm` no engine work can shorten while the CLI is Python: the
    interpreter `sangja-py` runs, started, importing the modules `run --rm` imports (read
    from one run under `-X importtime`), doing nothing else."""
    e = engines["sangja"]
    script = os.path.join(os.path.dirname(os.path.realpath(e.argv[0])), "sangja-py")
    if not os.path.exists(script):
        pytest.skip(f"no {script}: the Python CLI is not installed beside the front end")
    with open(script) as f:
        python = f.readline()[2:].split()[0]  # the script's own interpreter (#!… -IS)
    args = ["--root", e.argv[2], "container", "run", "--rm", *e.run_args(), IMAGE, "true"]
    r = subprocess.run([python, "-IS", "-X", "importtime", script, *args], env=e.env,
                       capture_output=True, text=True, check=True)  # fmt: skip
    # the imports made at the top of a chain, in order (their own imports come with them:
    # importtime lists a chain's modules first, indented by depth)
    names = [ln.rsplit("|", 1)[1] for ln in r.stderr.splitlines() if ln.startswith("import time:")]
    mods = [n.strip() for n in names[1:] if n.startswith(" ") and not n.startswith("  ")]
    import sangja  # the same installation: its directory goes on the path, as the script puts it

    site = os.path.dirname(os.path.dirname(sangja.__file__))
    # as the CLI did: some are tried and missing (copy's `org.python.core`)
    code = (
        f"import sys\nsys.path.append({site!r})\nfor m in {mods!r}:\n"
        "    try:\n        __import__(m)\n    except ImportError:\n        pass\n"
    )
    assert len(mods) > 50, mods  # the run above did import the engine
    _bench(benchmark, "run_rm_floor", "sangja",
           lambda: _quiet([python, "-IS", "-c", code], env=e.env), rounds=15)  # fmt: skip


@pytest.mark.parametrize("name", ["sangja", "podman"])
def test_run_stop_rm(benchmark, engines, name):
    e = engines[name]

    def cycle():
        e("run", "-d", "--name", "cyc", *e.run_args(), IMAGE, "sleep", "100")
        e("stop", "-t", "0", "cyc")
        e("rm", "cyc")

    _bench(benchmark, "run_stop_rm", name, cycle, rounds=10)


@pytest.mark.parametrize("name", ["sangja", "podman"])
def test_exec(benchmark, engines, name):
    e = engines[name]
    e("run", "-d", "--name", "ex", *e.run_args(), IMAGE, "sleep", "1000")
    try:
        _bench(benchmark, "exec", name, lambda: e("exec", "ex", "true"), rounds=15)
    finally:
        e("rm", "-f", "ex")


@pytest.mark.parametrize("name", ["sangja", "podman"])
def test_ps_200(benchmark, engines, name):
    e = engines[name]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: e("create", "--name", f"many{i}", *e.run_args(), IMAGE,
                                  "true"), range(200)))  # fmt: skip
    try:
        assert len(e.out("ps", "-aq").split()) == 200
        _bench(benchmark, "ps_200", name, lambda: e("ps", "-a"), rounds=10)
    finally:
        names = [f"many{i}" for i in range(200)]
        for i in range(0, 200, 50):
            e("rm", "-f", *names[i : i + 50])


@pytest.mark.parametrize("name", ["sangja", "podman"])
def test_logs_100mb(benchmark, engines, name):
    e = engines[name]
    e("run", "--name", "chatty", *e.run_args(), IMAGE, "sh", "-c",
      f"yes 'a line of the log, 40 bytes long.......' | head -c {LOG_BYTES}")  # fmt: skip
    try:
        _bench(benchmark, "logs_100mb", name, lambda: e("logs", "chatty"), rounds=5)
    finally:
        e("rm", "-f", "chatty")
