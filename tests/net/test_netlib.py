"""The engine's network library driven for real, without the container engine: namespaces it
makes, netavark setting them up, real traffic between them through the bridges, NAT and
DNAT, aardvark-dns answering names, teardown leaving nothing; all inside a network
namespace each test makes (netkit, conftest)."""

import os
import signal
import subprocess
import sys
import time

import netkit
import pytest
from netkit import exchange, in_ns, lookup, nat_rules, talk

from sangja.engine import ipam, netavark
from sangja.engine import netns as nsmod
from sangja.engine.neterrors import NetworkConflict, NetworkError, NetworkInvalid

A, B, C = "a" * 64, "b" * 64, "c" * 64


def body(mode="default", ports=None, eps=None, **hc):
    return {"Config": {"Image": "x", "ExposedPorts": hc.pop("exposed", None)},
            "HostConfig": {"NetworkMode": mode, "PortBindings": ports, **hc},
            "NetworkingConfig": {"EndpointsConfig": eps or {}}}  # fmt: skip


def start(eng, cid, b, name=None, **kw):
    eng.validate(b)
    if not eng.endpoints(cid):
        eng.attach(cid, b)
    return eng.setup(cid, name or cid[:4], b, hostname=cid[:12], **kw)


def ip_of(eng, cid, net):
    for ep in eng.endpoints(cid):
        if ep.net.name == net:
            return ep.ipv4, ep.ipv6
    raise AssertionError(f"{cid[:4]} is not on {net}")


# ---- namespaces -------------------------------------------------------------------------


def test_netns_made_mounted_removed(netns, tmp_path):
    path = str(tmp_path / "run" / "netns" / "x")
    nsmod.create(path)
    try:
        assert nsmod.is_netns(path)
        assert nsmod.ino(path) != os.stat("/proc/thread-self/ns/net").st_ino
        assert "UP" in in_ns(path, "ip", "-o", "link", "show", "lo").stdout.split("<")[1]
        assert in_ns(path, "ip", "-o", "link").stdout.count("\n") == 1  # lo only
        with pytest.raises(NetworkError, match="exists already"):
            nsmod.create(path)
        # this thread never left its namespace
        assert os.stat("/proc/thread-self/ns/net").st_ino == os.fstat(netns.fd).st_ino
    finally:
        nsmod.remove(path)
    assert not os.path.exists(path)
    with open("/proc/self/mountinfo") as f:
        assert path not in f.read()
    nsmod.remove(path)  # idempotent
    open(path, "w").close()  # what a kill between the file and the mount leaves
    assert not nsmod.is_netns(path)
    nsmod.create(path)
    nsmod.remove(path)
    assert not os.path.exists(path)


# ---- predefined networks and subnets -----------------------------------------------------


def test_default_bridge_is_dockers_subnet(eng):
    nets = {n.name: n for n in eng.nets.all()}
    assert sorted(nets) == ["bridge", "host", "none"]
    assert nets["bridge"].subnets == [{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}]
    assert nets["bridge"].interface == "sangja0" and not nets["bridge"].dns
    assert nets["host"].driver == "host" and nets["none"].driver == "null"
    d = eng.nets.inspect(nets["bridge"])
    assert d["IPAM"]["Config"] == [{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}]
    assert d["Options"]["com.docker.network.bridge.default_bridge"] == "true"
    # a user network gets the next pool
    n = eng.nets.create("u1")
    assert n.subnets[0]["Subnet"] == "172.18.0.0/16" and n.dns and n.interface == "br-" + n.id[:12]


def test_default_bridge_avoids_a_host_route(netns, tmp_path):
    from sangja.engine.networks import Networks
    from sangja.image.store import Store

    netkit.run("ip", "link", "add", "sjroute0", "type", "bridge")
    try:
        netkit.run("ip", "link", "set", "sjroute0", "up")
        netkit.run("ip", "route", "add", "172.17.0.0/16", "dev", "sjroute0")
        netkit.run("ip", "route", "add", "172.18.5.0/24", "dev", "sjroute0")
        store = Store(str(tmp_path / "root"))
        nets = Networks(store)
        assert nets.get("bridge").subnets[0]["Subnet"] == "172.19.0.0/16"
        assert nets.create("u").subnets[0]["Subnet"] == "172.20.0.0/16"
        store.close()
    finally:
        netkit.run("ip", "link", "delete", "sjroute0")


def test_create_checks(eng):
    nets = eng.nets
    conf = ipam.subnet_config(["10.7.0.0/24"], ["10.7.0.254"], ["10.7.0.128/25"],
                              {"r": "10.7.0.200"})  # fmt: skip
    n = nets.create("n1", subnets=conf)
    assert n.subnets == [{"Subnet": "10.7.0.0/24", "Gateway": "10.7.0.254",
                          "IPRange": "10.7.0.128/25",
                          "AuxiliaryAddresses": {"r": "10.7.0.200"}}]  # fmt: skip
    with pytest.raises(NetworkConflict, match="network with name n1 already exists"):
        nets.create("n1")
    with pytest.raises(NetworkError, match="Pool overlaps"):
        nets.create("n2", subnets=[{"Subnet": "10.7.0.0/16"}])
    with pytest.raises(NetworkInvalid, match="invalid network name"):
        nets.create("-bad")
    with pytest.raises(NetworkError, match='only one instance of "host"'):
        nets.create("h", driver="host")
    with pytest.raises(NetworkError, match="pre-defined network"):
        nets.remove("bridge")
    with pytest.raises(NetworkError, match="network nope not found"):
        nets.get("nope")
    assert nets.get(n.id[:6]).name == "n1" and nets.get(n.id).name == "n1"
    assert [x.name for x in nets.all()] == ["bridge", "host", "n1", "none"]


# ---- traffic through a user network: names, ports, NAT ---------------------------------


def test_two_containers_talk_by_name(eng):
    eng.nets.create("app", subnets=[{"Subnet": "10.89.0.0/24"}])
    s1 = start(eng, A, body("app", eps={"app": {"Aliases": ["db"]}}), name="one")
    s2 = start(eng, B, body("app"), name="two")
    a4, _ = ip_of(eng, A, "app")
    b4, _ = ip_of(eng, B, "app")
    assert (a4, b4) == ("10.89.0.2", "10.89.0.3")
    assert "nameserver 10.89.0.1\n" in s2.resolv and f"{b4}\t{B[:12]}\n" in s2.hosts
    # aardvark-dns answers the container's name, its alias and its short id
    assert lookup(s2.netns, "one", "10.89.0.1") == [a4]
    assert lookup(s2.netns, "db", "10.89.0.1") == [a4]
    assert lookup(s1.netns, A[:12], "10.89.0.1") == [a4]
    assert lookup(s1.netns, "two", "10.89.0.1") == [b4]
    assert netavark.aardvark_pid(eng.dirs)
    out = exchange(s1.netns, "0.0.0.0", 7000, s2.netns, a4)
    assert out == f"hello from {b4}"  # straight over the bridge: no NAT between them
    d = eng.nets.inspect(eng.nets.get("app"))
    assert {c["IPv4Address"] for c in d["Containers"].values()} == {a4 + "/24", b4 + "/24"}
    eng.teardown(A)
    eng.teardown(B)
    assert netavark.aardvark_pid(eng.dirs) is None  # gone with the last name
    assert "br-" not in " ".join(netkit.links())  # the bridge went with its last container
    assert not eng.nets.inspect(eng.nets.get("app"))["Containers"]


def test_published_ports_tcp_udp_and_random(eng, firewall):
    b = body(ports={"80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                    "53/udp": [{"HostIp": "", "HostPort": "5353"}],
                    "81/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]},
             exposed={"82/tcp": {}, "80/tcp": {}, "53/udp": {}, "81/tcp": {}},
             PublishAllPorts=True)  # fmt: skip
    sb = start(eng, A, b)
    ip, _ = ip_of(eng, A, "bridge")
    assert ip == "172.17.0.2"
    maps = {(m.container_port, m.proto): m for m in sb.ports}
    assert maps[(80, "tcp")].host_port == 8080 and maps[(53, "udp")].host_port == 5353
    r81, r82 = maps[(81, "tcp")], maps[(82, "tcp")]
    assert r81.host_ip == "127.0.0.1" and r81.host_port > 1024 and r82.host_port > 1024
    rules = nat_rules()
    assert f"--to-destination {ip}:80" in rules and "--dport 8080" in rules
    # written by the engine (tagged with the container's id) or by netavark
    assert (f"sangja:{A}:" in rules) == (firewall == "sangja")
    assert ("NETAVARK-DN-" in rules) == (firewall == "netavark")
    # the host (this namespace) reaches them through 127.0.0.1 and the bridge's address
    assert exchange(sb.netns, "0.0.0.0", 80, None, "127.0.0.1", 8080).startswith("hello from")
    assert exchange(sb.netns, "0.0.0.0", 80, None, "172.17.0.1", 8080).startswith("hello from")
    assert exchange(sb.netns, "0.0.0.0", 53, None, "127.0.0.1", 5353, "udp").startswith("hello")
    assert exchange(sb.netns, "0.0.0.0", 53, None, "172.17.0.1", 5353, "udp").startswith("hello")
    assert exchange(sb.netns, "0.0.0.0", 81, None, "127.0.0.1", r81.host_port).startswith("hello")
    assert exchange(sb.netns, "0.0.0.0", 82, None, "172.17.0.1", r82.host_port).startswith("hello")
    st = eng.settings(A, "a", b)
    assert st["Ports"]["80/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": "8080"}]
    assert st["Ports"]["81/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(r81.host_port)}]
    assert st["IPAddress"] == ip and st["Gateway"] == "172.17.0.1"
    assert st["MacAddress"] == "02:42:ac:11:00:02"  # Docker's: from the address
    # a second container asking for a held host port is refused, and nothing is left of it
    b2 = body(ports={"80/tcp": [{"HostIp": "", "HostPort": "8080"}]})
    with pytest.raises(NetworkConflict, match="0.0.0.0:8080 failed: port is already allocated"):
        start(eng, B, b2)
    assert eng.sandbox(B) is None and not eng.mappings(B)
    assert ip_of(eng, B, "bridge") == (None, None)
    assert not os.path.exists(eng.dirs.netns(B))
    eng.teardown(A)
    rules = nat_rules()
    assert "8080" not in rules and f"{ip}:80" not in rules
    assert not eng.mappings(A)
    # the port is free again
    sb = start(eng, B, b2)
    assert sb.ports[0].host_port == 8080
    eng.teardown(B)


def test_masquerade_to_the_outside_and_internal_has_no_way_out(eng, netns, firewall):
    out_ns, cleanup = netkit.outside(netns)
    try:
        eng.nets.create("inner", internal=True, subnets=[{"Subnet": "10.66.0.0/24"}])
        s1 = start(eng, A, body())
        s2 = start(eng, B, body("inner"))
        # the container's packets leave with the host's address (masquerade)
        assert exchange(out_ns, "0.0.0.0", 9000, s1.netns, "192.0.2.2") == "hello from 192.0.2.1"
        # an internal network has no route out at all
        with netkit.Server(out_ns, "0.0.0.0", 9001):
            got = talk(s2.netns, "192.0.2.2", 9001)
        assert got.startswith("ERROR") and "unreachable" in got.lower()
        assert "default" not in in_ns(s2.netns, "ip", "route").stdout
        # but it reaches its own gateway (the host), as Docker's internal networks do
        assert exchange(None, "10.66.0.1", 9002, s2.netns, "10.66.0.1").startswith("hello")
    finally:
        eng.teardown(A)
        eng.teardown(B)
        cleanup()


def test_networks_are_isolated(eng, firewall):
    eng.nets.create("red", subnets=[{"Subnet": "10.10.0.0/24"}])
    eng.nets.create("blue", subnets=[{"Subnet": "10.20.0.0/24"}])
    s1 = start(eng, A, body("red"))
    s2 = start(eng, B, body("blue"))
    s3 = start(eng, C, body("red", eps={"blue": {}}))  # on both
    a, b = ip_of(eng, A, "red")[0], ip_of(eng, B, "blue")[0]
    with netkit.Server(s2.netns, "0.0.0.0", 7001):
        assert talk(s1.netns, b, 7001, wait=1.5).startswith("ERROR")
    with netkit.Server(s1.netns, "0.0.0.0", 7002):
        assert talk(s2.netns, a, 7002, wait=1.5).startswith("ERROR")
    # names do not cross networks either
    assert lookup(s1.netns, B[:4], "10.10.0.1") == []
    # the container on both reaches each (eth0 on red, eth1 on blue)
    c_red, c_blue = ip_of(eng, C, "red")[0], ip_of(eng, C, "blue")[0]
    assert exchange(s1.netns, "0.0.0.0", 7003, s3.netns, a) == f"hello from {c_red}"
    assert exchange(s2.netns, "0.0.0.0", 7004, s3.netns, b) == f"hello from {c_blue}"
    assert "eth1" in in_ns(s3.netns, "ip", "-o", "link").stdout
    assert s3.resolv.count("nameserver") == 2
    for cid in (A, B, C):
        eng.teardown(cid)


def test_ipv6_between_containers(eng):
    eng.nets.create("six", ipv6=True, subnets=[{"Subnet": "10.60.0.0/24"},
                                               {"Subnet": "fd00:60::/64"}])  # fmt: skip
    s1 = start(eng, A, body("six"))
    s2 = start(eng, B, body("six", eps={"six": {"IPAMConfig": {"IPv6Address": "fd00:60::99"}}}))
    a6, b6 = ip_of(eng, A, "six")[1], ip_of(eng, B, "six")[1]
    assert (a6, b6) == ("fd00:60::2", "fd00:60::99")
    # (duplicate address detection may hold a new address back for a moment)
    for _ in range(50):
        if "tentative" not in in_ns(s1.netns, "ip", "-6", "addr").stdout:
            break
        time.sleep(0.1)
    assert exchange(s1.netns, "::", 7006, s2.netns, a6) == f"hello from {b6}"
    assert set(lookup(s2.netns, A[:4], "10.60.0.1")) == {ip_of(eng, A, "six")[0], a6}
    st = eng.settings(B, "b", body("six"))["Networks"]["six"]
    assert st["GlobalIPv6Address"] == b6 and st["GlobalIPv6PrefixLen"] == 64
    eng.teardown(A)
    eng.teardown(B)


def test_connect_disconnect_while_set_up(eng):
    eng.nets.create("one", subnets=[{"Subnet": "10.31.0.0/24"}])
    eng.nets.create("two", subnets=[{"Subnet": "10.32.0.0/24"}])
    s1 = start(eng, A, body("one"))
    s2 = start(eng, B, body("two"))
    b = ip_of(eng, B, "two")[0]
    with netkit.Server(s2.netns, "0.0.0.0", 7010):
        assert talk(s1.netns, b, 7010, wait=1.5).startswith("ERROR")
    want = {"Aliases": ["late"], "IPAMConfig": {"IPv4Address": "10.32.0.50"}}
    ep = eng.connect(A, "a", "two", want)
    assert ep.ifindex == 1 and ep.ipv4 == "10.32.0.50"
    assert exchange(s2.netns, "0.0.0.0", 7011, s1.netns, b) == "hello from 10.32.0.50"
    assert lookup(s2.netns, "late", "10.32.0.1") == ["10.32.0.50"]
    with pytest.raises(NetworkConflict, match="already exists in network two"):
        eng.connect(A, "a", "two")
    eng.disconnect(A, "a", "two")
    assert "eth1" not in in_ns(s1.netns, "ip", "-o", "link").stdout
    assert lookup(s2.netns, "late", "10.32.0.1") == []
    with pytest.raises(NetworkConflict, match="is not connected to network two"):
        eng.disconnect(A, "a", "two")
    # a stopped container: only the record; it is set up at the next start
    eng.teardown(A)
    eng.connect(A, "a", "two")
    s1 = start(eng, A, body("one"))
    assert [ep.net.name for ep in eng.endpoints(A)] == ["one", "two"]
    assert "eth1" in in_ns(s1.netns, "ip", "-o", "link").stdout
    eng.teardown(A)
    eng.teardown(B)


def test_address_reuse_after_restart(eng):
    """What sangja does about an address freed by a stopped container: it is kept for that
    container when it starts again; other containers get the next addresses first."""
    eng.nets.create("r", subnets=[{"Subnet": "10.40.0.0/29"}])  # .2 .. .6 (gateway .1)
    start(eng, A, body("r"))
    assert ip_of(eng, A, "r")[0] == "10.40.0.2"
    eng.teardown(A)
    assert ip_of(eng, A, "r")[0] is None
    start(eng, B, body("r"))
    assert ip_of(eng, B, "r")[0] == "10.40.0.3"  # not A's
    start(eng, A, body("r"))
    assert ip_of(eng, A, "r")[0] == "10.40.0.2"  # its own again
    # once the range is used up round-robin, a freed address is reused
    eng.teardown(A)
    cs = [c * 64 for c in "defg"]
    for c in cs[:3]:
        start(eng, c, body("r"))
    assert [ip_of(eng, c, "r")[0] for c in cs[:3]] == ["10.40.0.4", "10.40.0.5", "10.40.0.6"]
    start(eng, cs[3], body("r"))
    assert ip_of(eng, cs[3], "r")[0] == "10.40.0.2"  # A's, the only one left
    with pytest.raises(NetworkConflict, match="no available IPv4 addresses"):
        start(eng, A, body("r"))
    assert eng.sandbox(A) is None
    # a static address taken by another container is refused
    eng.teardown(B)
    bad = body("r", eps={"r": {"IPAMConfig": {"IPv4Address": "10.40.0.4"}}})
    with pytest.raises(NetworkConflict, match="Address already in use"):
        start(eng, "9" * 64, bad)
    for c in [B, *cs]:
        eng.teardown(c)


def test_none_host_and_container_modes(eng):
    s = start(eng, A, body("none", ExtraHosts=["gw:host-gateway"]))
    assert nsmod.is_netns(s.netns)
    assert in_ns(s.netns, "ip", "-o", "link").stdout.count("\n") == 1
    assert "172.17.0.1\tgw\n" in s.hosts
    h = start(eng, B, body("host"))
    assert h.netns is None and eng.settings(B, "b", body("host"))["Networks"]["host"]
    s1 = start(eng, C, body())
    shared = eng.setup("d" * 64, "d", body(f"container:{C}"), hostname="x",
                       resolve_container=lambda ref: ref)  # fmt: skip
    assert shared.netns == s1.netns and shared.share == C
    eng.teardown("d" * 64)
    assert nsmod.is_netns(s1.netns)  # never another container's namespace
    eng.teardown(C)
    with pytest.raises(NetworkConflict, match="non running container"):
        eng.setup("d" * 64, "d", body(f"container:{C}"), hostname="x")
    eng.teardown(A)
    eng.teardown(B)
    for bad, msg in ((body("bridge", eps={"bridge": {"Aliases": ["x"]}}), "alias is supported"),
                     (body("bridge", eps={"bridge": {"IPAMConfig": {"IPv4Address": "172.17.0.9"}}}),
                      "user defined networks only"),
                     (body(f"container:{C}", ports={"80/tcp": []}), "port publishing"),
                     (body("nope"), "network nope not found"),
                     (body(ExtraHosts=["bad"]), "bad format for add-host"),
                     (body(Dns=["x.y"]), "is not an ip address"),
                     (body(ports={"80/tcp": [{"HostIp": "1.2.3", "HostPort": "1"}]}),
                      "invalid IP address")):  # fmt: skip
        with pytest.raises(NetworkError, match=msg):
            eng.validate(bad)


_CRASHER = r"""
import sys
from sangja.engine.endpoints import Endpoints
from sangja.image.store import Store
e = Endpoints(Store(sys.argv[1]), sys.argv[2])
b = {"Config": {"Image": "x"}, "HostConfig": {"NetworkMode": "app",
     "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8088"}]}}, "NetworkingConfig": {}}
e.attach(sys.argv[3], b)
e.setup(sys.argv[3], "crash", b, hostname="x")
"""


@pytest.mark.parametrize("point", ["net:leased", "net:netns", "net:setup"])
def test_kill_during_setup_leaves_what_teardown_removes(eng, tmp_path, point):
    eng.nets.create("app", subnets=[{"Subnet": "10.50.0.0/24"}])
    p = subprocess.Popen([sys.executable, "-c", _CRASHER, str(tmp_path / "root"),
                          str(tmp_path / "run"), A], env=dict(os.environ, SANGJA_FAILPOINT=point),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        # it stops itself at the failpoint: wait for that, then kill -9 it there
        os.waitid(os.P_PID, p.pid, os.WSTOPPED)
        os.kill(p.pid, signal.SIGKILL)
    finally:
        p.wait()
    assert eng.sandbox(A) is not None and ip_of(eng, A, "app")[0] == "10.50.0.2"
    if point == "net:setup":
        assert "8088" in nat_rules() and netavark.aardvark_pid(eng.dirs)
    warnings = eng.teardown(A)
    assert not warnings
    assert eng.sandbox(A) is None and ip_of(eng, A, "app")[0] is None and not eng.mappings(A)
    assert not os.path.exists(eng.dirs.netns(A)) and "8088" not in nat_rules()
    # and the container starts again afterwards
    s = start(eng, A, body("app"))
    assert nsmod.is_netns(s.netns)
    eng.forget(A)
    assert not eng.endpoints(A)
    eng.nets.remove("app")


def test_teardown_when_the_namespace_was_lost(eng):
    """The namespace gone under netavark's feet (unmounted by someone): the leases are still
    released, and `network rm` removes a bridge the teardown could not."""
    eng.nets.create("app", subnets=[{"Subnet": "10.51.0.0/24"}])
    s = start(eng, A, body("app"))
    nsmod.remove(s.netns)
    assert eng.teardown(A) == []  # nothing to ask netavark: no namespace
    assert eng.sandbox(A) is None and ip_of(eng, A, "app")[0] is None
    eng.forget(A)
    eng.nets.remove("app")
    assert not [ln for ln in netkit.links() if ln.startswith("br-")]
    # what netavark left in aardvark-dns's config goes with the next teardown of the network:
    # the running aardvark-dns serves nothing of ours now
    pid = netavark.aardvark_pid(eng.dirs)
    if pid:
        os.kill(pid, signal.SIGTERM)
        netkit.wait_gone(pid)


def test_runtime_container_joins_the_namespace_by_path(eng, tmp_path):
    """A real container of the runtime (a busybox bundle) in a namespace the engine made:
    config.json names it by path; the container talks to another over the bridge."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import bundles

    eng.nets.create("app", subnets=[{"Subnet": "10.52.0.0/24"}])
    s1 = start(eng, A, body("app"))
    s2 = start(eng, B, body("app"), name="peer")
    bundle = str(tmp_path / "bundle")
    cfg = bundles.default_config(["sh", "-c", "cat /proc/net/dev | grep -c eth0; "
                                  "echo hi | nc 10.52.0.3 7020"])  # fmt: skip
    cfg["linux"]["namespaces"] = [ns if ns["type"] != "network" else
                                  {"type": "network", "path": s1.netns}
                                  for ns in cfg["linux"]["namespaces"]]  # fmt: skip
    bundles.make_bundle(bundle, config=cfg)
    rootfs = os.path.join(bundle, "rootfs", "bin")
    os.symlink("busybox", os.path.join(rootfs, "nc"))
    sangja = os.environ.get("SANGJA") or "sangja"
    with netkit.Server(s2.netns, "0.0.0.0", 7020):
        r = netkit.run(sangja, "--root", str(tmp_path / "rt"), "run", "--bundle", bundle,
                       "netjoin-" + A[:6])  # fmt: skip
    # eth0 is there, and the peer saw the container's address on the bridge
    assert r.stdout.splitlines() == ["1", "hi", " from 10.52.0.2"], r
    eng.teardown(A)
    eng.teardown(B)


def test_aardvark_forwards_other_names_to_the_containers_dns(eng, netns):
    """--dns on a user network: the container asks aardvark-dns (its gateway), which
    answers container names itself and forwards the rest to the container's --dns."""
    out_ns, cleanup = netkit.outside(netns)
    try:
        eng.nets.create("app", subnets=[{"Subnet": "10.53.0.0/24"}])
        with netkit.DNSServer(out_ns, "192.0.2.2"):
            s = start(eng, A, body("app", Dns=["192.0.2.2"]))
            assert s.resolv.startswith("nameserver 10.53.0.1\n")
            assert lookup(s.netns, "far.example", "10.53.0.1") == ["203.0.113.7"]
            assert lookup(s.netns, A[:4], "10.53.0.1") == ["10.53.0.2"]
        # the default bridge has no names: --dns goes straight into resolv.conf
        s2 = start(eng, B, body(Dns=["192.0.2.2"], DnsSearch=["corp"], DnsOptions=["ndots:1"]))
        assert s2.resolv == "nameserver 192.0.2.2\nsearch corp\noptions ndots:1\n"
    finally:
        eng.teardown(A)
        eng.teardown(B)
        cleanup()


def test_deferred_setup_finishes_or_is_torn_down(eng):
    """setup(defer=True): netavark works while the caller creates the container; finish()
    waits for it.  A teardown before finish (the caller failed meanwhile) waits for netavark
    and undoes it all."""
    eng.nets.create("app", subnets=[{"Subnet": "10.54.0.0/24"}])
    b = body("app", ports={"80/tcp": [{"HostIp": "", "HostPort": "8090"}]})
    eng.validate(b)
    eng.attach(A, b)
    sb = eng.setup(A, "a", b, hostname="a", defer=True)
    assert sb.pending is not None and nsmod.is_netns(sb.netns)
    eng.finish(A, sb)
    assert sb.pending is None and lookup(sb.netns, "a", "10.54.0.1") == ["10.54.0.2"]
    assert exchange(sb.netns, "0.0.0.0", 80, None, "127.0.0.1", 8090).startswith("hello")
    eng.teardown(A)
    sb = eng.setup(A, "a", b, hostname="a", defer=True)
    eng.teardown(A)
    assert "8090" not in nat_rules() and eng.sandbox(A) is None
    assert not os.path.exists(sb.netns) and netavark.aardvark_pid(eng.dirs) is None
