"""Fixtures of the network library's tests: every test runs in a network namespace of its own
(made here, entered by the pytest thread, so netavark's bridges, firewall rules and
aardvark-dns live there and never on the host), with a private engine root and run dir.
A test fails if it leaves a network namespace mount, an aardvark-dns or a bridge behind."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import netkit  # noqa: E402


@pytest.fixture
def netns():
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, netavark)")
    why = netkit.missing_tools()
    if why:
        pytest.skip(why)
    ns = netkit.NetNS()
    try:
        with ns.entered():
            yield ns
    finally:
        ns.close()


@pytest.fixture
def eng(netns, tmp_path):
    """The network part of an engine (engine/endpoints.py) over a private store and run dir,
    inside the test's namespace."""
    from sangja.engine import netavark
    from sangja.engine.endpoints import Endpoints
    from sangja.image.store import Store

    store = Store(str(tmp_path / "root"))
    e = Endpoints(store, str(tmp_path / "run"))
    yield e
    left = [c for (c,) in e.db.execute("SELECT container FROM net_sandboxes")]
    for cid in left:
        e.teardown(cid)
    pid = netavark.aardvark_pid(e.dirs)
    bridges = [ln for ln in netkit.links() if ln.startswith(("br-", "sangja0"))]
    store.close()
    with open("/proc/self/mountinfo") as f:
        mounts = [ln.split()[4] for ln in f if str(tmp_path) in ln.split()[4]]
    assert not left, f"network set up and never torn down: {left}"
    assert pid is None, f"aardvark-dns {pid} still runs"
    assert not bridges, f"bridges left: {bridges}"
    assert not mounts, f"mounts left: {mounts}"


@pytest.fixture(params=["sangja", "netavark"])
def firewall(request, monkeypatch):
    """Who writes the firewall rules (engine/firewall.py): the engine in one batch, or
    netavark's own iptables driver (`firewall = "netavark"`)."""
    monkeypatch.setenv("SANGJA_FIREWALL", request.param)
    return request.param
