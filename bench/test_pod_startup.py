"""Pod start-up through Kubernetes' node interface: RunPodSandbox + CreateContainer +
StartContainer until the container runs, on containerd 1.6's CRI plugin with the runtime
handler `sangja` against the handler `runc` (Debian's runc under the same shim), in the
same run and the same containerd (tests/cri/crikit.py: private dirs, a private netns, CNI
bridge).  Each round makes a new pod on each handler; the previous round's pods are removed
first, outside the clock.  The summary prints the medians and the ratio (goal: sangja
<= 0.8x runc) and the two halves: the sandbox (pause container + its network), the container.
Run as root: `make bench`, or `pytest bench/test_pod_startup.py`.
"""

import os
import shutil
import statistics
import sys
import tempfile
import time

import pytest
from conftest import record

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "cri"))

import crikit  # noqa: E402
import registrykit  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "30"))
GOAL = 0.8


@pytest.fixture(scope="module")
def node():
    why = crikit.missing()
    if why:
        pytest.skip(why)
    gen = registrykit.session_fixtures()  # builds the fixtures if needed
    fixtures = next(gen)
    netns = registrykit.NetNS()
    serve = registrykit.serving_dir(fixtures.base)
    fx = registrykit.Fixtures(fixtures.base, netns, serve)
    tmp = tempfile.mkdtemp(prefix="sjcri-bench-")
    c = crikit.Containerd(netns, registry=fx.registry("plain"))
    cri = None
    try:
        c.start(crikit.build_pause_image(os.path.join(tmp, "pause.tar")))
        cri = crikit.CRI(c.sock, crikit.load_api(tmp), netns)
        image = f"{fx.registry('plain')}/test/busybox:latest"
        cri.call("PullImage", image=cri.pb.ImageSpec(image=image))
        yield c, cri, image
    finally:
        if cri is not None:
            cri.close()
        c.stop()
        fx.stop()
        netns.close()
        shutil.rmtree(serve, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
        with pytest.raises(StopIteration):
            next(gen)


def test_pod_startup(benchmark, node):
    """One round starts a pod on each handler, in turns (sangja first in even rounds, runc
    first in odd ones), so that a change in the machine's load hits both alike; pytest-
    benchmark's own figure is the pair's, the summary gives each handler's median."""
    c, cri, image = node
    pb = cri.pb
    made = []
    times = {h: {"total": [], "sandbox": [], "container": []} for h in crikit.HANDLERS}
    n = iter(range(10**6))

    def remove_previous():  # outside the clock
        while made:
            pod = made.pop()
            cri.call("StopPodSandbox", pod_sandbox_id=pod)
            cri.call("RemovePodSandbox", pod_sandbox_id=pod)
        return (), {}

    def start_pod(handler, i):
        cfg = cri.pod_config(f"b{i}-{handler}", f"{c.cgroup}/bench", c.logs)
        t0 = time.perf_counter()
        pod = cri.call("RunPodSandbox", config=cfg, runtime_handler=handler).pod_sandbox_id
        t1 = time.perf_counter()
        made.append(pod)
        cc = cri.container_config("app", image, ["sleep", "1000"], log_path=f"b{i}-{handler}.log")
        cid = cri.call("CreateContainer", pod_sandbox_id=pod, config=cc,
                       sandbox_config=cfg).container_id  # fmt: skip
        cri.call("StartContainer", container_id=cid)
        while cri.call("ContainerStatus", container_id=cid).status.state != pb.CONTAINER_RUNNING:
            pass
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1

    def one_round():
        i = next(n)
        order = crikit.HANDLERS if i % 2 == 0 else crikit.HANDLERS[::-1]
        for h in order:
            sandbox, container = start_pod(h, i)
            if i >= 2:  # the two warm-up rounds are not counted
                times[h]["sandbox"].append(sandbox)
                times[h]["container"].append(container)
                times[h]["total"].append(sandbox + container)

    benchmark.pedantic(one_round, setup=remove_previous, rounds=ROUNDS + 2)
    remove_previous()
    crikit.remove_cgroup_tree(f"{c.cgroup}/bench")
    for h in crikit.HANDLERS:
        record("pod start-up (CRI)", h, statistics.median(times[h]["total"]))
        record("  RunPodSandbox", h, statistics.median(times[h]["sandbox"]))
        record("  Create+StartContainer", h, statistics.median(times[h]["container"]))
