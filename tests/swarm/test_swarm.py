"""Docker Swarm over sangja: dockerd 20.10 whose default runtime is sangja runs a swarm of
one node (`swarm init --advertise-addr 127.0.0.1`) in a network namespace of the test's own,
with images from the fixtures registry served in that namespace.

The scenario, in order: a replicated service (2 tasks), `exec` into a task, scale to 3, a
rolling `service update` of image and env (one task at a time), a task killed from outside
(SIGKILL to its process on the host) that Swarm replaces, `service rm`, `swarm leave
--force`; then dockerd stops and nothing may be left: no process, runtime state, mount
or cgroup.
"""

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import registrykit  # noqa: E402
import swarmkit  # noqa: E402
from swarmkit import wait_for  # noqa: E402

SERVICE = "sjweb"
# a task that ends at once on the stop signal (a bare `sleep` as PID 1 ignores SIGTERM, and
# every replaced task would cost the 10 s stop grace period)
TASK = "trap 'exit 0' TERM; sleep 100000 & wait"


@pytest.fixture(scope="module", params=["sangja", "runc"])
def docker(fixtures, request):
    """dockerd with sangja as its default runtime; and, for reference, the same with
    Debian's runc (the scenario must pass on both: a failure on sangja alone is sangja's)."""
    why = swarmkit.missing()
    if why:
        pytest.skip(why)
    netns = registrykit.NetNS()
    serve = registrykit.serving_dir(fixtures.base)
    fx = registrykit.Fixtures(fixtures.base, netns, serve)
    d = swarmkit.Dockerd(netns, request.param)
    try:
        d.registry = fx.registry("plain")
        d.start()
        yield d
    finally:
        d.stop()
        problems = d.leftovers()
        d.cleanup()
        fx.stop()
        netns.close()
        shutil.rmtree(serve, ignore_errors=True)
    assert not problems, "left behind once dockerd stopped:\n  " + "\n  ".join(problems)


def tasks(docker, all_=False):
    """The service's tasks as `docker service ps` lists them (newest first per slot)."""
    args = ["service", "ps", "--no-trunc", "--format", "{{json .}}", SERVICE]
    if not all_:
        args[2:2] = ["--filter", "desired-state=running"]
    return docker.json(*args)


def containers(docker):
    """{container id: inspect} of the service's running task containers."""
    ids = docker.ok("ps", "-q", "--no-trunc", "--filter",
                    f"label=com.docker.swarm.service.name={SERVICE}").split()  # fmt: skip
    out = {}
    for cid in ids:
        r = docker("inspect", "--format", "{{json .}}", cid)
        if r.rc == 0:  # (else it went away since `ps`)
            out[cid] = json.loads(r.out)
    return out


def update_state(docker):
    return docker.json("service", "inspect", "--format", "{{json .UpdateStatus}}", SERVICE)[0]


def converged(docker, n, image, env=()):
    """n running tasks, each with a running container of image with env; returns them."""
    run = [t for t in tasks(docker) if t["CurrentState"].startswith("Running")]
    got = containers(docker)
    if len(run) != n or len(got) != n:
        return None
    for c in got.values():
        if not c["State"]["Running"] or c["Config"]["Image"].split("@")[0] != image:
            return None
        if not set(env) <= set(c["Config"]["Env"]):
            return None
    return got


def assert_on_runtime(docker, ctrs):
    """Each task container was made by the default runtime: dockerd says so, and the
    runtime holds its state (running, the same init pid) under the root dockerd gives it
    (dockerd 20.10 names it runtime-runc whatever the runtime)."""
    for cid, c in ctrs.items():
        assert c["HostConfig"]["Runtime"] == docker.name, c["HostConfig"]["Runtime"]
        roots = [r for r in docker.runtime_roots() if os.path.isdir(os.path.join(r, cid))]
        assert len(roots) == 1, (docker.runtime_roots(), cid)
        root = roots[0]
        r = subprocess.run([docker.runtime, "--root", root, "state", cid],
                           capture_output=True, text=True, timeout=swarmkit.TIMEOUT)  # fmt: skip
        assert r.returncode == 0, r.stderr
        st = json.loads(r.stdout)
        assert (st["status"], st["pid"]) == ("running", c["State"]["Pid"]), st


def test_swarm_service_lifecycle(docker):
    busybox = f"{docker.registry}/test/busybox:latest"
    multi = f"{docker.registry}/test/multi:latest"  # an index: a new image for the update
    docker.ok("swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", "127.0.0.1:2377")
    info = docker.json("info", "--format", "{{json .}}")[0]
    assert info["Swarm"]["LocalNodeState"] == "active" and info["Swarm"]["ControlAvailable"]
    assert info["DefaultRuntime"] == docker.name

    # a replicated service: 2 tasks
    docker.ok(
        "service", "create", "--detach", "--name", SERVICE, "--replicas", "2", "--env", "A=1",
        "--restart-delay", "1s", "--update-parallelism", "1", "--update-delay", "0s",
        "--update-monitor", "1s", busybox, "sh", "-c", TASK,
    )  # fmt: skip
    ctrs = wait_for(lambda: converged(docker, 2, busybox, ["A=1"]), "2 tasks running")
    assert_on_runtime(docker, ctrs)
    cid = next(iter(ctrs))
    assert docker.ok("exec", cid, "sh", "-c", "echo $A; hostname") == f"1\n{cid[:12]}\n"

    # scale to 3
    docker.ok("service", "scale", "--detach", f"{SERVICE}=3")
    ctrs = wait_for(lambda: converged(docker, 3, busybox, ["A=1"]), "3 tasks running")
    assert_on_runtime(docker, ctrs)
    # what the check at the end looks for is all there while tasks run
    running = " | ".join(docker.leftovers())
    for what in ("processes", "runtime state", "cgroups", "mounts"):
        assert what in running, running

    # a rolling update of image and env: every task replaced by one with both
    old = set(ctrs)
    docker.ok("service", "update", "--detach", "--image", multi, "--env-add", "B=2", SERVICE)
    ctrs = wait_for(lambda: converged(docker, 3, multi, ["A=1", "B=2"]), "3 updated tasks")
    assert not set(ctrs) & old
    wait_for(lambda: update_state(docker)["State"] == "completed", "the update completed")
    assert_on_runtime(docker, ctrs)
    for cid in ctrs:
        assert docker.ok("exec", cid, "sh", "-c", "echo $A$B") == "12\n"
    shut = [t for t in tasks(docker, all_=True) if t["DesiredState"] == "Shutdown"]
    assert len(shut) == 3 and all(t["Image"].split("@")[0] == busybox for t in shut), shut
    wait_for(lambda: not set(docker.runtime_state()) & old, "the old tasks' runtime state gone")

    # a task killed from outside: Swarm sees it fail and starts a new one in its place
    victim, c = next(iter(ctrs.items()))
    os.kill(c["State"]["Pid"], signal.SIGKILL)
    wait_for(lambda: victim not in containers(docker), "the killed task's container stopped")
    ctrs = wait_for(lambda: converged(docker, 3, multi, ["A=1", "B=2"]), "3 tasks again")
    assert victim not in ctrs
    failed = [t for t in tasks(docker, all_=True) if t["CurrentState"].startswith("Failed")]
    assert len(failed) == 1 and "non-zero exit (137)" in failed[0]["Error"], failed
    exited = docker.json("inspect", "--format", "{{json .State}}", victim)[0]
    assert (exited["Status"], exited["ExitCode"]) == ("exited", 137), exited
    assert_on_runtime(docker, ctrs)

    # service rm: every task container and its runtime state goes
    docker.ok("service", "rm", SERVICE)
    wait_for(lambda: not docker.ok("ps", "-aq"), "no container left")
    wait_for(lambda: not docker.runtime_state(), "no runtime state left")

    # leave: no swarm, no ingress network, no network namespace of it left mounted
    docker.ok("swarm", "leave", "--force")
    info = docker.json("info", "--format", "{{json .Swarm}}")[0]
    assert info["LocalNodeState"] == "inactive", info
    assert "ingress" not in docker.ok("network", "ls", "--format", "{{.Name}}").split()
    netns_dir = os.path.join(docker.exec_root, "netns")
    wait_for(lambda: not swarmkit.mounts_under(netns_dir), "the ingress netns unmounted")
