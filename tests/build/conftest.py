"""Fixtures for the build tests: the fixtures' registries (tests/registrykit.py), a sangja
CLI with a private engine root and runtime --root for each test, and the checks that a
build left nothing behind (no mount, no runtime state, no build working dir)."""

import os
import sqlite3
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "image"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "engine"))

import buildkit  # noqa: E402
import registrykit  # noqa: E402


def leftovers(sj, tmp_path):
    """What a finished build must not leave: mounts, runtime state, working dirs, and of
    RUN's networks a namespace, a bridge, a veth, a firewall rule or a lease."""
    with open("/proc/self/mountinfo") as f:
        mounts = [ln.split()[4] for ln in f if str(tmp_path) in ln.split()[4]]
    state = buildkit.runtime_state(sj)
    work = os.path.join(sj.root, "build", "work")
    dirs = sorted(os.listdir(work)) if os.path.isdir(work) else []
    tmp = os.path.join(sj.root, "tmp")
    tmps = sorted(n for n in os.listdir(tmp) if not n.endswith(".partial")) \
        if os.path.isdir(tmp) else []  # fmt: skip
    import enginekit
    from test_networks import held, network_rules, veths

    try:
        db = held(sj)
    except sqlite3.Error:  # no store, or no network tables: nothing leased
        db = {}
    leases = {k: v for k, v in db.items() if k in ("endpoints", "ports", "sandboxes") and v}
    return {"mounts": mounts, "runtime state": state, "build dirs": dirs, "tmp": tmps,
            "bridges": enginekit.bridges(), "veths": veths(), "rules": network_rules(),
            "leases": leases}  # fmt: skip


@pytest.fixture(scope="session")
def cgroup_parent():
    """A cgroup parent of the session's own for RUN's containers (and the engine's)."""
    import enginekit

    name = f"/sangja-build-tests-{os.getpid()}"
    yield name
    enginekit.remove_cgroup_parent(name)


@pytest.fixture
def sj(tmp_path, fixtures, cgroup_parent):
    """The sangja CLI (private engine root, HOME, certs.d, runtime --root, cgroup parent),
    in the registries' network namespace, the plain registry started; the test fails if
    it leaves a mount, a runtime container, a build dir or a cgroup behind."""
    fixtures.registry("plain")
    with fixtures.netns.entered():
        s = registrykit.Sangja(tmp_path, fixtures)
        s.env["SANGJA_CGROUP_PARENT"] = cgroup_parent
        yield s
    left = leftovers(s, tmp_path)
    left["cgroups"] = buildkit.cgroups_under(cgroup_parent)
    assert not any(left.values()), f"left behind: {left}"


@pytest.fixture
def busybox(sj):
    import buildkit

    sj.ok("image", "pull", "-q", buildkit.BUSYBOX)
    return buildkit.BUSYBOX


@pytest.fixture
def push_registry(tmp_path, fixtures):
    """push_registry(variant="plain") -> a started pushkit.PushRegistry with an empty
    storage of the test's own (stopped at the end)."""
    import pushkit

    started = []

    def start(variant="plain"):
        reg = pushkit.PushRegistry(fixtures, variant, tmp_path / f"reg-{len(started)}")
        started.append(reg)
        return reg

    yield start
    for reg in started:
        reg.stop()
