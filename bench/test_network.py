"""Container networks beside podman 4.3 (with Debian's runc: crun 1.8 refuses this host's
hybrid cgroups), both on netavark 1.4 (podman forced to netavark by a containers.conf of the
bench's own), in the same run, in a network namespace of the bench's
own (registrykit: the fixtures' registry serves the busybox image there):

- `run -d IMAGE sleep` on the default bridge: the command's time, until it returns with the
  container running (sangja's `bridge` / podman's `podman` network);
- `run --rm -p 8080:80 IMAGE true`: create, network with a published port, run, tear down;
- TCP throughput container -> container over the bridge, and host -> a published port
  (DNAT), with iperf3 (Debian's, copied with its libraries into an image both engines
  import: `iperf3 -s -1` in one container, `iperf3 -c` in another or on the host).

Each round runs sangja then podman or podman then sangja, alternately, so that a change in
the machine's load hits both alike; the summary prints the medians and sangja/podman.
Goals (issue 15): start-up <= 0.5x podman's, throughput within 5 % of podman's.  sangja runs
with its default firewall (the engine's rules in one iptables-restore, netavark with the
no-op iptables: engine/firewall.py); SANGJA_FIREWALL=netavark measures netavark's driver.
Run as root: `make bench`, or `pytest bench/test_network.py`.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

import pytest
from conftest import record

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

import registrykit  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "20"))
TPUT_ROUNDS = int(os.environ.get("BENCH_TPUT_ROUNDS", "3"))
TPUT_SECONDS = int(os.environ.get("BENCH_TPUT_SECONDS", "5"))
ENGINES = ("sangja", "podman")


def _containers_conf():
    """podman on netavark; rlimits the calling process may set (no CAP_SYS_RESOURCE in some
    sandboxes: podman's default 1048576 would make the runtime's setrlimit fail)."""
    import resource

    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    with open("/proc/sys/kernel/pid_max") as f:
        pidmax = int(f.read())
    nofile = 1048576 if nofile == resource.RLIM_INFINITY else nofile
    nproc = pidmax if nproc == resource.RLIM_INFINITY or nproc > pidmax else nproc
    return (f'[containers]\nlog_driver = "k8s-file"\n'
            f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
            f'[engine]\nlock_type = "file"\n[network]\nnetwork_backend = "netavark"\n')  # fmt: skip


def _iperf_rootfs_tar(path):
    """A rootfs with iperf3, the libraries it loads and busybox: an image tarball."""
    libs = subprocess.run(["ldd", "/usr/bin/iperf3"], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip
    files = ["/usr/bin/iperf3", "/bin/busybox"]
    for line in libs.splitlines():
        for w in line.split():
            if w.startswith("/"):
                files.append(w)
    with tarfile.open(path, "w") as t:
        for f in files:
            t.add(os.path.realpath(f), arcname=f.lstrip("/"))
        for a in ("sh", "sleep", "true", "cat"):
            info = tarfile.TarInfo(f"bin/{a}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            t.addfile(info)
        for d in ("tmp", "etc", "proc", "sys", "dev"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            t.addfile(info)


class Engine:
    """One engine's command line, run in the bench's network namespace."""

    def __init__(self, name, argv, env):
        self.name, self.argv, self.env = name, argv, env

    def __call__(self, *args, check=True):
        r = subprocess.run(self.argv + list(args), capture_output=True, text=True,
                           env=self.env, timeout=300)  # fmt: skip
        if check and r.returncode:
            raise AssertionError(f"{self.name} {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def run(self, *args):
        return self("container", "run", *args) if self.name == "sangja" else self("run", *args)

    def rm(self, *names):
        if names:
            if self.name == "sangja":
                self("container", "rm", "-f", *names, check=False)
            else:
                self("rm", "-f", "-t", "0", *names, check=False)

    def settings(self, name):
        out = self("container", "inspect", name) if self.name == "sangja" else self(
            "inspect", name)  # fmt: skip
        return json.loads(out)[0]["NetworkSettings"]

    def ip(self, name):
        return next(iter(self.settings(name)["Networks"].values()))["IPAddress"]

    def wait_listen(self, name, port, guard=30):
        """Until something listens on `port` in the container's namespace (iperf3 -s starts
        after `run -d` returns; a probe connection would end a one-off server)."""
        key = self.settings(name)["SandboxKey"]
        end = time.monotonic() + guard
        while time.monotonic() < end:
            r = subprocess.run(["nsenter", f"--net={key}", "cat", "/proc/net/tcp",
                                "/proc/net/tcp6"], capture_output=True, text=True)  # fmt: skip
            for line in r.stdout.splitlines()[1:]:
                w = line.split()
                if len(w) > 3 and w[1].endswith(f":{port:04X}") and w[3] == "0A":
                    return
            time.sleep(0.02)
        raise AssertionError(f"{self.name}: nothing listens on {port} in {name}")


@pytest.fixture(scope="module")
def world():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    for tool in ("podman", "runc", "iperf3", "/usr/lib/podman/netavark"):
        if not shutil.which(tool) and not os.access(tool, os.X_OK):
            pytest.skip(f"{tool} is not installed")
    gen = registrykit.session_fixtures()
    fixtures = next(gen)
    netns = registrykit.NetNS()
    serve = registrykit.serving_dir(fixtures.base)
    fx = registrykit.Fixtures(fixtures.base, netns, serve)
    tmp = tempfile.mkdtemp(prefix="sjnet-bench-")
    os.chmod(tmp, 0o755)
    pod = registrykit.Podman(tmp)
    conf = os.path.join(tmp, "containers.conf")
    with open(conf, "w") as f:
        f.write(_containers_conf())
    penv = dict(os.environ, CONTAINERS_CONF=conf)
    podman = Engine("podman", pod.base + ["--network-config-dir", os.path.join(tmp, "pnet"),
                                          "--tmpdir", os.path.join(pod.runroot, "tmp"),
                                          "--cgroup-manager", "cgroupfs",
                                          "--runtime", shutil.which("runc") or "runc"],
                    penv)  # fmt: skip
    sj = registrykit.Sangja(tmp + "/sj")
    if os.environ.get("SANGJA_FIREWALL"):  # (the CLI's environment is the bench's own)
        sj.env["SANGJA_FIREWALL"] = os.environ["SANGJA_FIREWALL"]
    sangja = Engine("sangja", [registrykit.sangja_binary(), "--root", sj.run_root], sj.env)
    engines = {"sangja": sangja, "podman": podman}
    try:
        with netns.entered():
            reg = fx.registry("plain")
            image = f"{reg}/test/busybox:latest"
            sangja("image", "pull", image)
            podman("pull", "--tls-verify=false", image)
            tar = os.path.join(tmp, "iperf.tar")
            _iperf_rootfs_tar(tar)
            sangja("image", "import", tar, "sjbench/iperf3:latest")
            podman("import", tar, "localhost/sjbench/iperf3:latest")
            yield engines, image, netns
    finally:
        with netns.entered():
            for e in engines.values():
                if e.name == "sangja":
                    ids = e("container", "ls", "-a", "-q", check=False).split()
                else:
                    ids = e("ps", "-a", "-q", check=False).split()
                e.rm(*ids)
            pod.close()
            fx.stop()
        netns.close()
        shutil.rmtree(serve, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
        with pytest.raises(StopIteration):
            next(gen)


def _rounds(benchmark, engines, one, rounds, cleanup=None):
    """`one(engine, i)` -> seconds, for each engine in turns; -> {engine: [seconds]}."""
    times = {e: [] for e in ENGINES}
    n = iter(range(10**6))

    def setup():
        if cleanup:
            cleanup()
        return (), {}

    def one_round():
        i = next(n)
        for name in ENGINES if i % 2 == 0 else ENGINES[::-1]:
            t = one(engines[name], i)
            if i >= 2:  # two warm-up rounds
                times[name].append(t)

    benchmark.pedantic(one_round, setup=setup, rounds=rounds + 2)
    if cleanup:
        cleanup()
    return times


def test_run_detached_default_bridge(benchmark, world):
    engines, image, netns = world
    made = {e: [] for e in ENGINES}

    def one(e, i):
        name = f"bd{i}-{e.name}"
        t0 = time.perf_counter()
        e.run("-d", "--name", name, image, "sleep", "1000")
        t = time.perf_counter() - t0
        made[e.name].append(name)
        return t

    def cleanup():
        for name, lst in made.items():
            engines[name].rm(*lst)
            lst.clear()

    with netns.entered():
        times = _rounds(benchmark, engines, one, ROUNDS, cleanup)
    for e in ENGINES:
        record("run -d (default bridge)", e, statistics.median(times[e]))


def test_run_rm_publish(benchmark, world):
    engines, image, netns = world

    def one(e, i):
        t0 = time.perf_counter()
        e.run("--rm", "-p", "8080:80", image, "true")
        return time.perf_counter() - t0

    with netns.entered():
        times = _rounds(benchmark, engines, one, ROUNDS)
    for e in ENGINES:
        record("run --rm -p 8080:80 true", e, statistics.median(times[e]))


def _iperf_json(out):
    d = json.loads(out)
    return d["end"]["sum_received"]["bits_per_second"]


def test_throughput(benchmark, world):
    """iperf3 TCP, container -> container and host -> published port (bits/s, higher is
    better: the summary shows Gbit/s)."""
    engines, _, netns = world
    img = "sjbench/iperf3:latest"
    got = {(k, e): [] for k in ("c2c", "host") for e in ENGINES}
    n = iter(range(10**6))

    def one_round():
        i = next(n)
        for name in ENGINES if i % 2 == 0 else ENGINES[::-1]:
            e = engines[name]
            ref = img if name == "sangja" else "localhost/" + img
            srv = f"ip{i}-{name}"
            e.run("-d", "--name", srv, ref, "iperf3", "-s", "-1")
            try:
                ip = e.ip(srv)
                e.wait_listen(srv, 5201)
                out = e.run("--rm", ref, "iperf3", "-c", ip, "-t", str(TPUT_SECONDS), "-J")
                got[("c2c", name)].append(_iperf_json(out))
            finally:
                e.rm(srv)
            srv = f"ih{i}-{name}"
            e.run("-d", "--name", srv, "-p", "15201:5201", ref, "iperf3", "-s", "-1")
            try:
                e.wait_listen(srv, 5201)
                out = _host_iperf(["-c", "127.0.0.1", "-p", "15201", "-t", str(TPUT_SECONDS)])
                got[("host", name)].append(_iperf_json(out))
            finally:
                e.rm(srv)

    with netns.entered():
        benchmark.pedantic(one_round, rounds=TPUT_ROUNDS)
    for e in ENGINES:
        record("tput c->c (Gbit/s)", e, statistics.median(got[("c2c", e)]) / 1e9)
        record("tput host->-p (Gbit/s)", e, statistics.median(got[("host", e)]) / 1e9)


def _host_iperf(args):
    r = subprocess.run(["iperf3", *args, "-J"], capture_output=True, text=True, timeout=120)
    if r.returncode:
        raise AssertionError(f"iperf3 {' '.join(args)}: {r.stdout[-500:]} {r.stderr}")
    return r.stdout
