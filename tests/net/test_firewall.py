"""The firewall the engine writes itself (engine/firewall.py) while netavark runs with the
no-op iptables (csrc/iptables-stub/): netavark writes no rule and still does the rest; the
container's rules, tagged with its id, reach it (every form of published port, IPv4 and
IPv6); teardown removes exactly them; 20 containers set up and torn down at once in a fresh
namespace each get their own.  All in the test's network namespace (conftest)."""

import os
import subprocess
import sys

import netkit
import pytest
from netkit import exchange, in_ns, run, talk

from sangja.engine import firewall, netavark
from sangja.engine.neterrors import NetworkError

pytestmark = pytest.mark.usefixtures("sangja_firewall")

A, B = "a" * 64, "b" * 64


@pytest.fixture
def sangja_firewall(monkeypatch):
    monkeypatch.setenv("SANGJA_FIREWALL", "sangja")


def body(mode="default", ports=None, eps=None):
    return {"Config": {"Image": "x"},
            "HostConfig": {"NetworkMode": mode, "PortBindings": ports},
            "NetworkingConfig": {"EndpointsConfig": eps or {}}}  # fmt: skip


def start(eng, cid, b):
    eng.validate(b)
    if not eng.endpoints(cid):
        eng.attach(cid, b)
    return eng.setup(cid, cid[:4], b, hostname=cid[:12])


def saved() -> list[str]:
    """Every rule of the namespace, IPv4 and IPv6 (iptables-save's -A lines)."""
    out = []
    for cmd in ("iptables-save", "ip6tables-save"):
        out += [ln for ln in run(cmd).stdout.splitlines() if ln.startswith("-A ")]
    return out


def tagged(cid: str) -> list[str]:
    return [ln for ln in saved() if f"sangja:{cid}:" in ln]


def test_netavark_writes_no_rule_and_does_the_rest(eng):
    """With the stub first on its PATH netavark execs only it (no rule, no chain of its own),
    says nothing on stderr, and still makes the bridge with its address, the veth, the
    container's address and route, ip_forward and route_localnet, and aardvark-dns."""
    n = eng.nets.create("app", subnets=[{"Subnet": "10.70.0.0/24"}])
    b = body("app", ports={"80/tcp": [{"HostIp": "", "HostPort": "8070"}]})
    s = start(eng, A, b)
    rules = saved()
    assert not [ln for ln in rules if "NETAVARK" in ln]
    assert len(tagged(A)) == len(rules) - 6  # the rest: the 6 jumps to sangja's chains
    addr = in_ns(s.netns, "ip", "-o", "-4", "addr", "show", "eth0").stdout
    assert "10.70.0.2/24" in addr
    assert "default via 10.70.0.1" in in_ns(s.netns, "ip", "route").stdout
    assert "10.70.0.1/24" in run("ip", "-o", "-4", "addr", "show", n.interface).stdout
    with open(f"/proc/sys/net/ipv4/conf/{n.interface}/route_localnet") as f:
        assert f.read().strip() == "1"
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        assert f.read().strip() == "1"
    assert netavark.aardvark_pid(eng.dirs)
    eng.teardown(A)
    assert saved() == [ln for ln in rules if "sangja:" not in ln]  # the jumps stay


def test_netavark_is_silent_with_the_stub(eng, tmp_path):
    """netavark setup and teardown with the stub first on PATH: exit 0, nothing on stderr,
    and `strace` shows it exec only the stub (never the real iptables)."""
    from sangja.engine import netns as nsmod

    path = str(tmp_path / "ns")
    os.makedirs(tmp_path / "cfg")
    nsmod.create(path)
    try:
        net = eng.nets.get("bridge")  # no names: no aardvark-dns (strace -f would wait for it)
        opts = netavark.options(B, "b", [(net, 0, ["172.17.0.9"], "", [])],
                                [{"host_ip": "", "container_port": 80, "host_port": 8071,
                                  "range": 1, "protocol": "tcp"}], [])  # fmt: skip
        env = dict(os.environ, PATH=firewall.netavark_path(False))
        argv = [netavark.binary(), "--config", str(tmp_path / "cfg"), "--aardvark-binary",
                netavark.aardvark_binary()]  # fmt: skip
        from sangja import jsonio

        trace = str(tmp_path / "trace")
        for verb in ("setup", "teardown"):
            r = subprocess.run(["strace", "-f", "-qq", "-e", "trace=execve", "-o", trace,
                                *argv, verb, path], input=jsonio.dumps(opts), env=env,
                               capture_output=True, text=True)  # fmt: skip
            assert r.returncode == 0 and r.stderr == "", r
            with open(trace) as f:
                execs = [ln for ln in f if "execve(" in ln and "ENOENT" not in ln]
            progs = {ln.split('execve("')[1].split('"')[0] for ln in execs}
            stub = firewall.stub_dir()
            assert progs - {netavark.binary()} <= {f"{stub}/iptables", f"{stub}/ip6tables"}
            assert f"{stub}/iptables" in progs
        assert not [ln for ln in saved() if "NETAVARK" in ln]
    finally:
        nsmod.remove(path)


def test_every_port_form_ipv4_and_ipv6(eng):
    """tcp and udp, a host address or any, a range, on an IPv6 network: reached from the
    host through 127.0.0.1 (then masqueraded: the container sees the bridge's address) and
    through the bridge's IPv4 and IPv6 addresses; teardown leaves no rule of it."""
    eng.nets.create("six", ipv6=True, subnets=[{"Subnet": "10.72.0.0/24"},
                                               {"Subnet": "fd00:72::/64"}])  # fmt: skip
    b = body("six", ports={"80/tcp": [{"HostIp": "", "HostPort": "8072"}],
                           "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5372"}],
                           "90/tcp": [{"HostIp": "", "HostPort": "9090"}],
                           "91/tcp": [{"HostIp": "", "HostPort": "9091"}],
                           "92/tcp": [{"HostIp": "", "HostPort": "9092"}]})  # fmt: skip
    s = start(eng, A, b)
    ip4, ip6 = eng.endpoints(A)[0].ipv4, eng.endpoints(A)[0].ipv6
    rules = "\n".join(tagged(A))
    assert f"--to-destination {ip4}:90-92/9090" in rules  # the range: one rule
    assert f"--to-destination [{ip6}]:80" in rules
    assert "-d 127.0.0.1/32 -p udp -m udp --dport 5372" in rules
    for host in ("127.0.0.1", "10.72.0.1"):
        assert exchange(s.netns, "0.0.0.0", 80, None, host, 8072) == "hello from 10.72.0.1"
    assert exchange(s.netns, "0.0.0.0", 53, None, "127.0.0.1", 5372, "udp").startswith("hello")
    assert exchange(s.netns, "0.0.0.0", 92, None, "127.0.0.1", 9092).startswith("hello")
    assert exchange(s.netns, "0.0.0.0", 90, None, "10.72.0.1", 9090).startswith("hello")
    # (duplicate address detection may hold a new address back for a moment)
    for _ in range(50):
        if "tentative" not in in_ns(s.netns, "ip", "-6", "addr").stdout:
            break
        import time

        time.sleep(0.1)
    assert exchange(s.netns, "::", 80, None, "fd00:72::1", 8072).startswith("hello from")
    # a udp port bound to 127.0.0.1 is not published on the bridge's address
    with netkit.Server(s.netns, "0.0.0.0", 53, "udp"):
        assert talk(None, "10.72.0.1", 5372, "udp", wait=1).startswith("ERROR")
    eng.teardown(A)
    assert tagged(A) == []
    assert not [ln for ln in saved() if "8072" in ln or ip4 in ln or ip6 in ln]


def test_a_second_container_keeps_its_rules_when_the_first_goes(eng):
    """Rules are the container's own (none shared per network): tearing one down leaves the
    other's masquerade and ports working."""
    out_ns, cleanup = netkit.outside(None)
    try:
        s1 = start(eng, A, body(ports={"80/tcp": [{"HostIp": "", "HostPort": "8073"}]}))
        s2 = start(eng, B, body(ports={"80/tcp": [{"HostIp": "", "HostPort": "8074"}]}))
        n_b = len(tagged(B))
        eng.teardown(A)
        assert tagged(A) == [] and len(tagged(B)) == n_b
        assert exchange(out_ns, "0.0.0.0", 9003, s2.netns, "192.0.2.2") == "hello from 192.0.2.1"
        assert exchange(s2.netns, "0.0.0.0", 80, None, "127.0.0.1", 8074).startswith("hello")
        del s1
    finally:
        eng.teardown(B)
        cleanup()


_PARALLEL = r"""
import sys
from sangja.engine.endpoints import Endpoints
from sangja.image.store import Store
root, run, verb, cid = sys.argv[1:5]
e = Endpoints(Store(root), run)
if verb == "up":
    port = sys.argv[5]
    b = {"Config": {"Image": "x"}, "HostConfig": {"NetworkMode": "app", "PortBindings":
         {"80/tcp": [{"HostIp": "", "HostPort": port}]}}, "NetworkingConfig": {}}
    e.attach(cid, b)
    e.setup(cid, "p" + port, b, hostname="x")
else:
    assert not e.teardown(cid)
"""


def test_twenty_containers_in_parallel(eng, tmp_path):
    """20 set-ups at once in a namespace where sangja's chains do not exist yet (they race
    to make them), then 10 teardowns at once: each container has its rules, and a teardown
    removes exactly its own."""
    assert not [ln for ln in saved() if "SANGJA" in ln]
    eng.nets.create("app", subnets=[{"Subnet": "10.74.0.0/24"}])
    ids = [f"{i:02d}" * 32 for i in range(20)]

    def all_of(verb, cids):
        procs = [subprocess.Popen([sys.executable, "-c", _PARALLEL, str(tmp_path / "root"),
                                   str(tmp_path / "run"), verb, cid, str(8100 + i)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for i, cid in enumerate(cids)]  # fmt: skip
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err

    all_of("up", ids)
    counts = {cid: len(tagged(cid)) for cid in ids}
    assert set(counts.values()) == {counts[ids[0]]} and counts[ids[0]] >= 9, counts
    jumps = [ln for ln in saved() if "-j SANGJA-" in ln and "sangja:" not in ln]
    assert len(jumps) == 6, jumps  # made once, whoever made them
    all_of("down", ids[::2])
    for cid in ids:
        assert len(tagged(cid)) == (0 if cid in ids[::2] else counts[cid]), cid
    # a kept one still answers on its port
    s = eng.sandbox(ids[1])
    assert exchange(s[1], "0.0.0.0", 80, None, "127.0.0.1", 8101).startswith("hello")
    for cid in ids[1::2]:
        eng.teardown(cid)
    assert not [ln for ln in saved() if "sangja:" in ln]


def test_the_setting_and_a_container_keeping_its_driver(eng, tmp_path, monkeypatch):
    """`firewall` in the config file chooses (SANGJA_FIREWALL wins); a container set up by
    netavark's driver is torn down by it though the setting changed meanwhile: none of its
    rules stays, and nothing of sangja's was written for it."""
    from sangja import settings

    conf = tmp_path / "engine.toml"
    conf.write_text('firewall = "netavark"\n')
    monkeypatch.setenv("SANGJA_CONFIG", str(conf))
    monkeypatch.delenv("SANGJA_FIREWALL")
    settings.clear_cache()
    try:
        assert firewall.driver() == "netavark"
        monkeypatch.setenv("SANGJA_FIREWALL", "sangja")
        assert firewall.driver() == "sangja"
        monkeypatch.setenv("SANGJA_FIREWALL", "nft")
        with pytest.raises(NetworkError, match="SANGJA_FIREWALL='nft'"):
            firewall.driver()
        monkeypatch.delenv("SANGJA_FIREWALL")
        s = start(eng, A, body(ports={"80/tcp": [{"HostIp": "", "HostPort": "8075"}]}))
        assert os.path.exists(eng.dirs.firewall_mark(A)) and tagged(A) == []
        assert [ln for ln in saved() if "8075" in ln and "NETAVARK-" in ln]
        assert exchange(s.netns, "0.0.0.0", 80, None, "127.0.0.1", 8075).startswith("hello")
        conf.write_text('firewall = "sangja"\n')
        settings.clear_cache()
        assert eng.teardown(A) == []
        assert not [ln for ln in saved() if "8075" in ln or "NETAVARK-DN-" in ln]
        assert not os.path.exists(eng.dirs.firewall_mark(A))
    finally:
        settings.clear_cache()


def test_forward_policy_drop(eng):
    """On a host whose FORWARD policy is DROP (as Docker leaves it), a container still goes
    out (masquerade) and a published port is reached from another host: sangja accepts its
    own containers' traffic, DNAT'd connections included."""
    out_ns, cleanup = netkit.outside(None)
    run("iptables", "-P", "FORWARD", "DROP")
    try:
        s = start(eng, A, body(ports={"80/tcp": [{"HostIp": "", "HostPort": "8076"}]}))
        assert exchange(out_ns, "0.0.0.0", 9004, s.netns, "192.0.2.2") == "hello from 192.0.2.1"
        assert exchange(s.netns, "0.0.0.0", 80, out_ns, "192.0.2.1", 8076) == (
            "hello from 192.0.2.2")  # fmt: skip
    finally:
        eng.teardown(A)
        run("iptables", "-P", "FORWARD", "ACCEPT")
        cleanup()
