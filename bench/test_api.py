"""The Docker Engine API path: Debian's docker CLI against `sangja system service` and
against Debian's dockerd (with its containerd and runc), in the same run:

  api_run_rm      `docker run --rm --network none busybox true`   goal <= 0.5x dockerd
  api_ps_100      GET /v1.41/containers/json?all=1 with 100 containers (one keep-alive
                  connection; the rate is 1 / the median)

Both on private roots and sockets, in the fixtures' network namespace (where the registry
that both pull busybox from serves); dockerd with no bridge, no iptables, cgroupfs.  Run as
root: `make bench`, or `pytest bench/test_api.py`.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest
from conftest import print_at_end

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

import registrykit  # noqa: E402

DOCKER, DOCKERD = "/usr/bin/docker", shutil.which("dockerd")
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="run as root: overlay mounts, cgroups"),
    pytest.mark.skipif(not DOCKERD or not os.path.exists(DOCKER),
                       reason="Debian's docker.io (dockerd and the docker CLI) is needed"),
]  # fmt: skip

IMAGE = f"{registrykit.PLAIN}/test/busybox"
TARGETS = {"api_run_rm": 0.5}
RESULTS: dict = {}  # (bench, engine) -> median seconds
GUARD = 120  # a hang guard while a daemon starts


class Unix(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("docker")
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


class Daemon:
    """One API server on a socket of its own; `docker(...)` is the CLI pointed at it."""

    def __init__(self, name, base):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix=f"sjb{name[0]}-", dir="/tmp")  # short: socket
        self.sock = os.path.join(self.dir, "api.sock")
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("DOCKER_", "SANGJA_"))}  # fmt: skip
        self.env.update(DOCKER_HOST=f"unix://{self.sock}",
                        DOCKER_CONFIG=os.path.join(self.dir, "cli"))  # fmt: skip
        log = open(os.path.join(self.dir, "daemon.log"), "w")
        if name == "sangja":
            self.sj_env = dict(self.env, SANGJA_ROOT=os.path.join(base, "sangja-root"),
                               SANGJA_CONFIG="/nonexistent", HOME=self.dir,
                               SANGJA_CGROUP_PARENT=f"/sangja-bench-api-{os.getpid()}")  # fmt: skip
            self.sj = [registrykit.sangja_binary(), "--root", os.path.join(self.dir, "run")]
            argv = self.sj + ["system", "service", "--socket", self.sock]
            env = self.sj_env
        else:
            conf = {"data-root": f"{self.dir}/data", "exec-root": f"{self.dir}/exec",
                    "pidfile": f"{self.dir}/docker.pid", "hosts": [f"unix://{self.sock}"],
                    "bridge": "none", "iptables": False, "ip6tables": False,
                    "ip-forward": False, "ip-masq": False, "storage-driver": "overlay2",
                    "exec-opts": ["native.cgroupdriver=cgroupfs"]}  # fmt: skip
            with open(f"{self.dir}/daemon.json", "w") as f:
                json.dump(conf, f)
            argv, env = [DOCKERD, "--config-file", f"{self.dir}/daemon.json"], self.env
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        log.close()
        end = time.monotonic() + GUARD
        while self.docker("version", check=False).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"{name} did not start: {self.log()}")
            time.sleep(0.1)

    def log(self):
        with open(os.path.join(self.dir, "daemon.log"), errors="replace") as f:
            return f.read()[-2000:]

    def docker(self, *args, check=True):
        return subprocess.run([DOCKER, *args], env=self.env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, check=check)  # fmt: skip

    def close(self):
        ids = self.docker("ps", "-aq", check=False).stdout.split()
        for i in range(0, len(ids), 50):
            self.docker("rm", "-f", *ids[i : i + 50], check=False)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.name == "sangja":  # what the service left (nothing, if all went well)
            subprocess.run(self.sj + ["container", "rm", "-f", "-a"], env=self.sj_env,
                           capture_output=True)  # fmt: skip
            for mnt in _cgroup_mounts():
                try:
                    os.rmdir(mnt + self.sj_env["SANGJA_CGROUP_PARENT"])
                except OSError:
                    pass
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split()[4] for line in f]
        for m in reversed(mounts):
            if m.startswith(self.dir + "/"):
                subprocess.run(["umount", "-l", m], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def _cgroup_mounts():
    with open("/proc/self/mountinfo") as f:
        return [line.split(" - ")[0].split()[4] for line in f
                if line.split(" - ")[1].split()[0] in ("cgroup", "cgroup2")]  # fmt: skip


@pytest.fixture(scope="module")
def daemons(tmp_path_factory, fixtures):
    base = str(tmp_path_factory.mktemp("api"))
    out = {}
    for name in ("sangja", "dockerd"):
        out[name] = Daemon(name, base)
        out[name].docker("pull", "-q", IMAGE)
    yield out
    for d in out.values():
        d.close()


@pytest.fixture(scope="module", autouse=True)
def summary(request):
    yield
    print_at_end(request, RESULTS, print_summary)


def print_summary(tr):
    tr.write_line("")
    tr.write_line("the Engine API path, medians (ratios to dockerd + runc in the same run):")
    for bench in ("api_run_rm", "api_ps_100"):
        s, d = RESULTS.get((bench, "sangja")), RESULTS.get((bench, "dockerd"))
        if s is None or d is None:
            continue
        target = TARGETS.get(bench)
        goal = ""
        if target:
            goal = f"  goal <= {target}x: {'met' if s / d <= target else 'NOT met'}"
        rate = f"   ({1 / s:.0f} vs {1 / d:.0f} requests/s)" if bench == "api_ps_100" else ""
        tr.write_line(f"  {bench:11} sangja {s * 1000:8.2f} ms   dockerd {d * 1000:8.2f} ms"
                      f"   {s / d:.2f}x{goal}{rate}")  # fmt: skip


def _bench(benchmark, bench, name, fn, rounds):
    benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)
    if benchmark.stats:
        RESULTS[(bench, name)] = benchmark.stats.stats.median


@pytest.mark.parametrize("name", ["sangja", "dockerd"])
def test_api_run_rm(benchmark, daemons, name):
    d = daemons[name]
    _bench(benchmark, "api_run_rm", name,
           lambda: d.docker("run", "--rm", "--network", "none", IMAGE, "true"),
           rounds=15)  # fmt: skip


@pytest.mark.parametrize("name", ["sangja", "dockerd"])
def test_api_ps_100(benchmark, daemons, name):
    d = daemons[name]
    have = len(d.docker("ps", "-aq").stdout.split())
    for _ in range(have, 100):
        d.docker("create", "--network", "none", IMAGE, "true")
    conn = Unix(d.sock)

    def ask():
        conn.request("GET", "/v1.41/containers/json?all=1")
        r = conn.getresponse()
        body = r.read()
        assert r.status == 200 and len(json.loads(body)) == 100

    try:
        _bench(benchmark, "api_ps_100", name, ask, rounds=50)
    finally:
        conn.close()
