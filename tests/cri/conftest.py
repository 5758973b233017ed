"""Fixtures for tests/cri: one containerd (CRI plugin, handlers `sangja` and `runc`) per
module in a network namespace of its own with its own fixtures registry, and per test a
`pods` helper that removes every pod it made and fails the test if anything is left."""

import os
import secrets
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import crikit  # noqa: E402
import daemonkit  # noqa: E402
import registrykit  # noqa: E402
import rtkit  # noqa: E402

BUSYBOX = "test/busybox:latest"


class Node:
    """What a test talks to: the CRI client, containerd, the image references."""

    def __init__(self, containerd, cri, registry, fixtures):
        self.c = containerd
        self.cri = cri
        self.pb = cri.pb
        self.registry = registry
        self.fixtures = fixtures
        self.busybox = f"{registry}/{BUSYBOX}"


def _node(fixtures, **kw):
    why = crikit.missing()
    if why:
        pytest.skip(why)
    gen = tempfile.mkdtemp(prefix="sjcri-api-")
    api = crikit.load_api(gen)
    netns = registrykit.NetNS()
    serve = registrykit.serving_dir(fixtures.base)
    fx = registrykit.Fixtures(fixtures.base, netns, serve)
    c = crikit.Containerd(netns, registry=fx.registry("plain"), **kw)
    cri = None
    try:
        c.start(crikit.build_pause_image(os.path.join(gen, "pause.tar")))
        cri = crikit.CRI(c.sock, api, netns)
        n = Node(c, cri, fx.registry("plain"), fixtures)
        cri.call("PullImage", image=cri.pb.ImageSpec(image=n.busybox))
        yield n
        # every pod was removed by its test: containerd itself must now stop cleanly and
        # leave no shim, container process, mount or cgroup behind
        problems = c.leftovers()
        assert not problems, "left behind:\n  " + "\n  ".join(problems)
    finally:
        if cri is not None:
            cri.close()
        c.stop()
        fx.stop()
        netns.close()
        shutil.rmtree(serve, ignore_errors=True)
        shutil.rmtree(gen, ignore_errors=True)


@pytest.fixture(scope="module")
def node(fixtures):
    """containerd as a node runs it: in the host's mount namespace."""
    yield from _node(fixtures)


@pytest.fixture(scope="module")
def stats_node(fixtures):
    """containerd in a mount namespace of its own where every v1 hierarchy is mounted
    (crikit.Containerd mount_cgroups): for the stats, which need them all."""
    yield from _node(fixtures, mount_cgroups=True)


class Pods:
    """Pods of one test, on one handler; all of them are removed at the end."""

    def __init__(self, node, handler, tag):
        self.node = node
        self.handler = handler
        self.tag = tag
        self.ids = []
        self.pids = set()  # every pause and container pid seen: all must be gone at the end
        self.parents = []

    def run(self, name, pid="CONTAINER", labels=None, hostname=None, handler=None):
        """RunPodSandbox; returns (pod id, its config)."""
        n = self.node
        parent = f"{n.c.cgroup}/{self.tag}-{name}"
        logs = os.path.join(n.c.logs, f"{self.tag}-{name}")  # as kubelet: one dir per pod
        cfg = n.cri.pod_config(
            name,
            parent,
            logs,
            pid=pid,
            hostname=hostname,
            labels=dict(labels or {}, **{"sangja.test/run": self.tag}),
        )
        pod = n.cri.call(
            "RunPodSandbox", config=cfg, runtime_handler=handler or self.handler
        ).pod_sandbox_id
        self.ids.append(pod)
        self.parents.append(parent)
        pid = self.node.cri.sandbox_info(pod)[1]["pid"]
        self.pids.add(pid)
        self.wait_exec(pid, "/catatonit")
        return pod, cfg

    def container(self, pod, cfg, name, command, start=True, **kw):
        """CreateContainer (+ StartContainer); returns the container id."""
        cri = self.node.cri
        kw.setdefault("pid", cfg.linux.security_context.namespace_options.pid)
        if not isinstance(kw["pid"], str):
            kw["pid"] = cri.pb.NamespaceMode.Name(kw["pid"])
        cc = cri.container_config(name, self.node.busybox, command, **kw)
        cid = cri.call(
            "CreateContainer", pod_sandbox_id=pod, config=cc, sandbox_config=cfg
        ).container_id
        if start:
            cri.call("StartContainer", container_id=cid)
            pid = self.pid(cid)
            self.pids.add(pid)
            self.wait_exec(pid, command[0])
        return cid

    @staticmethod
    def wait_exec(pid, argv0):
        """Until the runtime's init has exec'd the process (or it ended already): the
        runtime's start returns before that, runc's as sangja's.  (busybox sh execs the
        last command of a script: scripts here end with something else.)"""
        crikit.wait_for(
            lambda: (
                daemonkit.read(f"/proc/{pid}/cmdline").split("\0")[0] == argv0
                or not rtkit.alive(pid)
            ),
            f"pid {pid} runs {argv0}",
        )

    def pid(self, cid):
        return self.node.cri.container_info(cid)[1]["pid"]

    def exec(self, cid, *cmd, timeout=0):
        return self.node.cri.call("ExecSync", container_id=cid, cmd=list(cmd), timeout=timeout)

    def remove_all(self):
        import grpc  # (not at the top: without grpcio the module skips, see node)

        cri = self.node.cri
        for pod in self.ids:
            for rpc in ("StopPodSandbox", "RemovePodSandbox"):
                try:
                    cri.call(rpc, pod_sandbox_id=pod)
                except grpc.RpcError as e:  # the test removed it already
                    if e.code() != grpc.StatusCode.NOT_FOUND:
                        raise


@pytest.fixture(params=crikit.HANDLERS)
def handler(request):
    return request.param


def _pods(node, handler):
    p = Pods(node, handler, "t" + secrets.token_hex(3))
    problems = []
    try:
        yield p
    finally:
        p.remove_all()

        def clean():  # the shims reap and exit on their own: a hang guard, no timing
            problems[:] = node.c.leftovers(p.pids)
            return not problems

        try:
            crikit.wait_for(clean, "nothing left", guard=30)
        except AssertionError:
            pass
        for parent in p.parents:
            crikit.remove_cgroup_tree(parent)
    assert not problems, "left behind after the pods were removed:\n  " + "\n  ".join(problems)


@pytest.fixture
def pods(node, handler):
    """Pods on the test's handler (the test runs once per handler)."""
    yield from _pods(node, handler)


@pytest.fixture
def pods_both(node):
    """Pods on both handlers, named at each run() (tests that compare the two)."""
    yield from _pods(node, None)


@pytest.fixture
def stats_pods(stats_node):
    """Pods on both handlers on stats_node."""
    yield from _pods(stats_node, None)
