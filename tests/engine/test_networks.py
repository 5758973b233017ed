"""Container networks end to end: real containers from the fixtures' registry images, real
traffic, in the registries' network namespace (the `sj` fixture: never the host's own
interfaces or firewall; it also checks that no bridge, namespace or aardvark-dns stays).

Shown: the default bridge's address, MAC and default route inside the container; names
and aliases on a user network (aardvark-dns: wget, nslookup, ping), none on the default bridge;
container -> host, host -> published ports (TCP and UDP, through 127.0.0.1 and the bridge's
address), -P, the outside seen through masquerade, --internal with no way out, networks
isolated, a container on two networks, IPv6, connect/disconnect of a running container
(its etc files rewritten),
container:NAME, host, none, the etc files (--add-host with host-gateway, --dns*, -h,
--domainname), --ip/--ip6/--mac-address, `container port`, `ps`'s PORTS, stop and rm
releasing what the container held (no veth, no firewall rule, no lease in the store),
`network rm` leaving no rule or cursor, a restart getting its address back, `network rm` of a
network in use, and a kill -9 of `run` at three points of its network's set-up."""

import contextlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import tarfile
import urllib.request

import pytest
from enginekit import BUSYBOX, DEBIAN, inspect, wait_for
from registrykit import sangja_binary

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "net"))  # fmt: skip

import netkit  # noqa: E402

pytestmark = pytest.mark.skipif(bool(netkit.missing_tools()), reason=netkit.missing_tools())


def run(sj, *args):
    return sj.ok("container", "run", *args).out.strip()


def pull(sj, *refs):
    for ref in refs:
        sj.ok("image", "pull", "-q", ref)


def nets(sj, name):
    return inspect(sj, name)["NetworkSettings"]["Networks"]


def ip(sj, name, net="bridge"):
    return nets(sj, name)[net]["IPAddress"]


def http_get(url, guard=30):
    """GET url from the test's namespace (the host here), retried until the server listens
    (a hang guard, not a measure)."""

    def get():
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read().decode()
        except OSError:
            return None

    return wait_for(get, f"GET {url}", guard=guard)


def serve(sj, name, *args, image=BUSYBOX):
    """A busybox httpd serving the container's hostname as /hostname (its /etc)."""
    return run(sj, "-d", "--name", name, *args, image, "httpd", "-f", "-p", "80", "-h", "/etc")


def sh(sj, *args, script):
    """`run --rm ... busybox sh -c SCRIPT` -> its output (it must succeed)."""
    return run(sj, "--rm", *args, BUSYBOX, "sh", "-c", script)


def wget(url):
    """A busybox shell loop: wget until the server answers (bounded)."""
    # (busybox 1.35's wget crashes with -T: `timeout` bounds each try instead)
    return (f"for i in $(seq 100); do timeout 3 wget -q -O - {url} && break; sleep 0.1;"
            " done")  # fmt: skip


def veths():
    r = subprocess.run(["ip", "-o", "link", "show", "type", "veth"], capture_output=True,
                       text=True, check=True)  # fmt: skip
    return [ln.split(":")[1].strip().split("@")[0] for ln in r.stdout.splitlines()]


# a rule naming an address, an interface, a port or a network's own chain (netavark keeps
# only its empty base chains, and the jumps to them, once no network is set up)
_NET_RULE = re.compile(r"\d+\.\d+\.\d+\.\d+/|[0-9a-f]*:[0-9a-f:]+/\d+|--dport|--to-destination"
                       r"| -[io] |NETAVARK-(DN-)?[0-9A-F]{8,}")  # fmt: skip


def network_rules():
    """The test namespace's firewall rules (every table, IPv4 and IPv6) that belong to a
    network, a container or a published port."""
    out = []
    for cmd in ("iptables-save", "ip6tables-save"):
        r = subprocess.run([cmd], capture_output=True, text=True, check=True)
        out += [ln for ln in r.stdout.splitlines() if ln[:1] in "-:" and _NET_RULE.search(ln)]
    return out


def held(sj):
    """What the engine's store holds for containers' networks: endpoints, published ports,
    set-ups, and the user networks' rows and address cursors."""
    db = sqlite3.connect(os.path.join(sj.root, "sangja.db"))
    try:
        q = {"endpoints": "SELECT container, network, ipv4 FROM net_endpoints",
             "ports": "SELECT container, host_port FROM net_ports",
             "sandboxes": "SELECT container, mode FROM net_sandboxes",
             "networks": "SELECT name FROM networks WHERE name NOT IN ('bridge', 'host', 'none')",
             "cursors": "SELECT network, last FROM ipam_cursors WHERE network IN"
                        " (SELECT id FROM networks WHERE name != 'bridge')"}  # fmt: skip
        return {k: db.execute(v).fetchall() for k, v in q.items()}
    finally:
        db.close()


@pytest.fixture(params=["sangja", "netavark"])
def firewall(request, sj):
    """Who writes the firewall rules: the engine in one batch (the default) or netavark's
    own iptables driver (`firewall = "netavark"`; SANGJA_FIREWALL here)."""
    sj.env["SANGJA_FIREWALL"] = request.param
    return request.param


def test_default_bridge_gives_an_address_and_a_default_route(sj):
    pull(sj, BUSYBOX)
    run(sj, "-d", "--name", "a", BUSYBOX, "sleep", "1000")
    n = nets(sj, "a")["bridge"]
    assert n["IPAddress"].startswith("172.17.0.") and n["IPPrefixLen"] == 16
    assert n["Gateway"] == "172.17.0.1" and n["MacAddress"]
    out = sj.ok("container", "exec", "a", "sh", "-c",
                "ip -o -4 addr show eth0; ip -o link show eth0; ip route;"
                " ping -c1 -W5 172.17.0.1").out  # fmt: skip
    assert f"inet {n['IPAddress']}/16 " in out
    assert f"link/ether {n['MacAddress']} " in out
    assert re.search(r"^default via 172\.17\.0\.1 dev eth0", out, re.M), out
    assert "1 packets received" in out  # the host's end of the bridge answers
    sj.ok("container", "rm", "-f", "a")


def test_rm_and_network_rm_leave_no_veth_rule_or_reservation(sj):
    """Two containers with published ports, one on two networks: while they run there is a
    veth per endpoint and rules for each port; `rm -f` takes all of it and the store's
    leases; `network rm` takes the network's bridge, rules and address cursor (the fixture
    also checks namespaces, bridges and aardvark-dns)."""
    pull(sj, BUSYBOX)
    assert veths() == [] and network_rules() == []
    sj.ok("network", "create", "app")
    serve(sj, "a", "--network", "app", "-p", "8090:80")
    serve(sj, "b", "-p", "8091:80")
    sj.ok("network", "connect", "app", "b")
    out = sh(sj, "--network", "app", script="ping -c1 -W5 a; ping -c1 -W5 b")  # by name
    assert out.count("1 packets received") == 2
    assert len(veths()) == 3
    rules = "\n".join(network_rules())
    for s in ("--dport 8090", "--dport 8091", ip(sj, "a", "app"), ip(sj, "b")):
        assert s in rules, s
    h = held(sj)
    assert len(h["endpoints"]) == 3 and len(h["ports"]) == 2 and len(h["sandboxes"]) == 2
    sj.ok("container", "rm", "-f", "a", "b")
    assert veths() == [] and network_rules() == []
    h = held(sj)
    assert h["endpoints"] == h["ports"] == h["sandboxes"] == [] and h["networks"] == [("app",)]
    sj.ok("network", "rm", "app")
    assert held(sj)["networks"] == held(sj)["cursors"] == []
    assert network_rules() == []
    # the ports are free again, and a network of the same name starts afresh
    sj.ok("network", "create", "app")
    serve(sj, "c", "--network", "app", "-p", "8090:80", "-p", "8091:80")
    assert http_get("http://127.0.0.1:8091/hostname").strip() == inspect(sj, "c")["Id"][:12]
    sj.ok("container", "rm", "-f", "c")
    sj.ok("network", "rm", "app")
    assert veths() == [] and network_rules() == []


def test_names_on_a_user_network_not_on_the_default_bridge(sj):
    pull(sj, BUSYBOX)
    sj.ok("network", "create", "app")
    serve(sj, "web", "--network", "app", "--network-alias", "www")
    web = ip(sj, "web", "app")
    out = sh(sj, "--network", "app", script="cat /etc/resolv.conf; " + wget("http://www/hostname")
             + "; nslookup web | tail -n +3")  # fmt: skip
    gw = json.loads(sj.ok("network", "inspect", "app").out)[0]["IPAM"]["Config"][0]["Gateway"]
    assert out.startswith(f"nameserver {gw}\n")  # aardvark-dns, on the network's gateway
    assert inspect(sj, "web")["Id"][:12] in out  # /hostname: the container's id
    assert f"Address: {web}" in out
    by_id = sh(sj, "--network", "app", script=f"nslookup {inspect(sj, 'web')['Id'][:12]}")
    assert f"Address: {web}" in by_id
    # on the default bridge there are no names (as Docker's), but addresses work
    serve(sj, "plain")
    r = sj("container", "run", "--rm", BUSYBOX, "sh", "-c", "nslookup plain 2>&1")
    assert "plain" not in "".join(ln for ln in r.out.splitlines() if ln.startswith("Address"))
    assert "172.17.0.1" not in r.out.split("Address")[0]
    out = sh(sj, script=wget(f"http://{ip(sj, 'plain')}/hostname"))
    assert inspect(sj, "plain")["Id"][:12] in out
    sj.ok("container", "rm", "-f", "web", "plain")
    sj.ok("network", "rm", "app")


def test_published_ports_tcp_udp_and_the_host(sj, firewall):
    pull(sj, BUSYBOX, DEBIAN)
    serve(sj, "web", "-p", "8080:80", "-p", "127.0.0.1::80", "--expose", "81", "-P")
    cid = inspect(sj, "web")["Id"]
    rules = netkit.nat_rules()  # the engine's (tagged with the container's id) or netavark's
    assert (f"sangja:{cid}:" in rules) == (firewall == "sangja")
    assert (f"dnat name: bridge id: {cid}" in rules) == (firewall == "netavark")
    ports = inspect(sj, "web")["NetworkSettings"]["Ports"]
    assert ports["80/tcp"][0] == {"HostIp": "0.0.0.0", "HostPort": "8080"}
    local = int(ports["80/tcp"][1]["HostPort"])
    assert ports["80/tcp"][1]["HostIp"] == "127.0.0.1" and local > 1024
    rnd = int(ports["81/tcp"][0]["HostPort"])  # -P: the --expose'd port, a random host port
    assert rnd > 1024
    out = sj.ok("container", "port", "web").out.splitlines()
    assert out == ["80/tcp -> 0.0.0.0:8080", f"80/tcp -> 127.0.0.1:{local}",
                   f"81/tcp -> 0.0.0.0:{rnd}"]  # fmt: skip
    assert sj.ok("container", "port", "web", "80/tcp").out.splitlines()[0] == "0.0.0.0:8080"
    r = sj("container", "port", "web", "99")
    assert r.rc == 1 and "No public port '99/tcp' published for web" in r.err
    for f in ("publish=80", "publish=80/tcp", "expose=81", "expose=75-85", "network=bridge"):
        assert sj.ok("container", "ps", "-q", "--filter", f).out.split() == [cid[:12]], f
    for f in ("publish=81/udp", "publish=90", "network=none"):
        assert sj.ok("container", "ps", "-q", "--filter", f).out.split() == [], f
    row = sj.ok("container", "ps").out.splitlines()[1]
    assert f"0.0.0.0:8080->80/tcp, 127.0.0.1:{local}->80/tcp, 0.0.0.0:{rnd}->81/tcp" in row
    # the host reaches it through 127.0.0.1 and the bridge's address
    assert http_get("http://127.0.0.1:8080/hostname").strip() == cid[:12]
    assert http_get("http://172.17.0.1:8080/hostname").strip() == cid[:12]
    assert http_get(f"http://127.0.0.1:{local}/hostname").strip() == cid[:12]
    # UDP (perl in the debian image: busybox's nc has no UDP)
    udp = ('perl -MIO::Socket::INET -e \'$s=IO::Socket::INET->new(LocalPort=>53,Proto=>"udp")'
           ' or die; $p=$s->recv($m,100); $s->send("got $m", 0, $p)\'')  # fmt: skip
    for host in ("127.0.0.1", "172.17.0.1"):  # one answer per server: one each
        sj("container", "rm", "-f", "udp")
        run(sj, "-d", "--name", "udp", "-p", "5353:53/udp", DEBIAN, "sh", "-c", udp)

        def answer(h=host):
            a = netkit.talk(None, h, 5353, "udp", "hi", wait=0.5)
            return a if a.startswith("got") else None

        assert wait_for(answer, f"udp via {host}").startswith("got hi")
    # a held host port is refused, nothing of the new container stays
    r = sj("container", "run", "-d", "--name", "dup", "-p", "8080:80", BUSYBOX, "sleep", "9")
    assert r.rc == 125 and "0.0.0.0:8080 failed: port is already allocated" in r.err
    assert inspect(sj, "dup")["State"]["Status"] == "created"
    assert inspect(sj, "dup")["NetworkSettings"]["Ports"] == {"80/tcp": None}  # exposed only
    # container -> host: a server on the host's address on the bridge
    with netkit.Server(None, "172.17.0.1", 7070) as srv:
        out = sh(sj, "--add-host", "host.local:host-gateway",
                 script="grep host.local /etc/hosts; echo ping | nc host.local 7070")  # fmt: skip
        srv.p.wait(timeout=30)
    assert out.splitlines()[0] == "172.17.0.1\thost.local"
    assert out.splitlines()[1] == "ping"
    # stop releases the ports and the address; start takes them again
    sj.ok("container", "stop", "-t", "0", "web")
    st = inspect(sj, "web")["NetworkSettings"]
    assert st["Ports"]["80/tcp"] is None and st["Networks"]["bridge"]["IPAddress"] == ""
    assert "8080" not in netkit.nat_rules()
    sj.ok("container", "start", "web")
    assert http_get("http://127.0.0.1:8080/hostname").strip() == cid[:12]
    sj.ok("container", "rm", "-f", "web", "udp", "dup")
    assert "8080" not in netkit.nat_rules() and "5353" not in netkit.nat_rules()


def test_outside_internal_and_isolation(sj, fixtures, firewall):
    pull(sj, BUSYBOX)
    out_ns, cleanup = netkit.outside(fixtures.netns)
    try:
        with netkit.Server(out_ns, "0.0.0.0", 9000) as srv:
            out = sh(sj, script="echo out | nc 192.0.2.2 9000")
            srv.p.wait(timeout=30)
        assert out.split() == ["out", "from", "192.0.2.1"]  # masqueraded: the host's address
        # another host reaches a published port through the host's address
        serve(sj, "pub", "-p", "8086:80")
        got = wait_for(lambda: (lambda a: a if a.startswith("HTTP") else None)(
            netkit.talk(out_ns, "192.0.2.1", 8086, msg="GET /hostname HTTP/1.0\r\n\r\n")),
            "the published port from outside")  # fmt: skip
        assert got.splitlines()[0].endswith("200 OK")
        assert got.split()[-1] == inspect(sj, "pub")["Id"][:12]
        sj.ok("container", "rm", "-f", "pub")
        sj.ok("network", "create", "--internal", "inner")
        r = sj("container", "run", "--rm", "--network", "inner", BUSYBOX, "sh", "-c",
               "ip route; echo x | nc -w 2 192.0.2.2 9001")  # fmt: skip
        assert r.rc != 0 and "default" not in r.out
        assert "unreachable" in r.err.lower()
        sj.ok("network", "create", "red")
        sj.ok("network", "create", "blue")
        serve(sj, "r", "--network", "red")
        serve(sj, "b", "--network", "blue")
        rip, bip = ip(sj, "r", "red"), ip(sj, "b", "blue")
        # (busybox's timeout execs its command: it must not be PID 1, which ignores SIGTERM;
        # the `exit` keeps sh from exec'ing the last command itself)
        r = sj("container", "run", "--rm", "--network", "red", BUSYBOX, "sh", "-c",
               f"timeout 3 wget -q -O - http://{bip}/hostname; exit $?")  # fmt: skip
        assert r.rc != 0  # networks do not reach each other
        both = sh(sj, "--network", "red", "--network", "blue",
                  script=wget(f"http://{rip}/hostname") + "; " + wget(f"http://{bip}/hostname")
                  + "; ip -o -4 addr show | awk '{print $2}'")  # fmt: skip
        words = both.split()
        assert words[:2] == [inspect(sj, "r")["Id"][:12], inspect(sj, "b")["Id"][:12]]
        assert sorted(words[2:]) == ["eth0", "eth1", "lo"]
        sj.ok("container", "rm", "-f", "r", "b")
        for n in ("inner", "red", "blue"):
            sj.ok("network", "rm", n)
    finally:
        cleanup()


def test_ipv6_and_static_addresses(sj):
    pull(sj, BUSYBOX)
    sj.ok("network", "create", "--ipv6", "--subnet", "10.77.0.0/24", "--subnet", "fd00:77::/64",
          "six")  # fmt: skip
    serve(sj, "web", "--network", "six", "--ip", "10.77.0.10", "--ip6", "fd00:77::10",
          "--mac-address", "02:42:0a:4d:00:99")  # fmt: skip
    n = nets(sj, "web")["six"]
    assert (n["IPAddress"], n["GlobalIPv6Address"], n["MacAddress"]) == (
        "10.77.0.10", "fd00:77::10", "02:42:0a:4d:00:99")  # fmt: skip
    out = sh(sj, "--network", "six", script="ip -o addr show eth0; "
             + wget("http://[fd00:77::10]/hostname"))  # fmt: skip
    assert inspect(sj, "web")["Id"][:12] in out and "fd00:77::" in out
    r = sj("container", "run", "--rm", "--network", "six", "--ip", "10.77.0.10", BUSYBOX, "true")
    assert r.rc == 125 and "Address already in use" in r.err
    r = sj("container", "run", "--rm", "--network", "six", "--ip", "10.78.0.1", BUSYBOX, "true")
    assert r.rc == 125 and "no configured subnet or ip-range contain" in r.err
    sj.ok("container", "rm", "-f", "web")
    sj.ok("network", "rm", "six")


def test_connect_disconnect_a_running_container(sj):
    pull(sj, BUSYBOX)
    sj.ok("network", "create", "one")
    sj.ok("network", "create", "two")
    serve(sj, "a", "--network", "one")
    serve(sj, "b", "--network", "two")
    probe = ["container", "exec", "a", "timeout", "3", "wget", "-q", "-O", "-", "http://b/hostname"]
    assert sj(*probe).rc != 0
    assert len(veths()) == 2
    sj.ok("network", "connect", "--alias", "late", "two", "a")
    assert set(nets(sj, "a")) == {"one", "two"} and len(veths()) == 3
    assert sj.ok("container", "exec", "a", "ip", "-o", "-4", "addr", "show", "eth1").out
    assert sj.ok(*probe).out.strip() == inspect(sj, "b")["Id"][:12]
    out = sh(sj, "--network", "two", script="nslookup late | tail -n +3")
    assert ip(sj, "a", "two") in out
    r = sj("network", "connect", "two", "a")
    assert r.rc == 1 and "already exists in network two" in r.err
    r = sj("network", "rm", "two")
    assert r.rc == 1 and "has active endpoints" in r.err
    sj.ok("network", "disconnect", "two", "a")
    assert set(nets(sj, "a")) == {"one"} and sj(*probe).rc != 0
    assert len(veths()) == 2  # its veth on two is gone, and eth1 in the container with it
    assert sj("container", "exec", "a", "ip", "link", "show", "eth1").rc != 0
    assert [e for e in held(sj)["endpoints"] if e[0] == inspect(sj, "a")["Id"]] == [
        (inspect(sj, "a")["Id"], json.loads(sj.ok("network", "inspect", "one").out)[0]["Id"],
         ip(sj, "a", "one"))]  # fmt: skip
    r = sj("network", "disconnect", "two", "a")
    assert r.rc == 1 and "is not connected to network two" in r.err
    # a stopped container: recorded now, set up at its start
    sj.ok("container", "stop", "-t", "0", "a")
    sj.ok("network", "connect", "two", "a")
    sj.ok("container", "start", "a")
    assert sj.ok(*probe).out.strip() == inspect(sj, "b")["Id"][:12]
    sj.ok("container", "rm", "-f", "a", "b")
    sj.ok("network", "rm", "one", "two")


def test_connect_and_disconnect_rewrite_the_etc_files_of_a_running_container(sj):
    """A container started on the default bridge (no names, the host's nameservers) resolves
    names once connected to a user network: its /etc/resolv.conf names that network's
    aardvark-dns, and is the host's again after the disconnect (the files are bind-mounted:
    rewritten in place)."""
    pull(sj, BUSYBOX)
    sj.ok("network", "create", "app")
    serve(sj, "web", "--network", "app")
    run(sj, "-d", "--name", "c", "-h", "cbox", "--add-host", "gw:host-gateway", BUSYBOX,
        "sleep", "1000")  # fmt: skip

    def etc():
        return sj.ok("container", "exec", "c", "cat", "/etc/resolv.conf", "/etc/hosts").out

    before = etc()
    gw = json.loads(sj.ok("network", "inspect", "app").out)[0]["IPAM"]["Config"][0]["Gateway"]
    assert f"nameserver {gw}" not in before and f"{ip(sj, 'c')}\tcbox" in before
    probe = ["container", "exec", "c", "sh", "-c",
             "timeout 3 wget -q -O - http://web/hostname; exit $?"]  # fmt: skip
    assert sj(*probe).rc != 0
    sj.ok("network", "connect", "app", "c")
    after = etc()
    assert after.startswith(f"nameserver {gw}\n"), after
    assert f"{ip(sj, 'c')}\tcbox" in after and "172.17.0.1\tgw" in after
    assert sj.ok(*probe).out.strip() == inspect(sj, "web")["Id"][:12]
    sj.ok("network", "disconnect", "app", "c")
    assert etc() == before and sj(*probe).rc != 0
    # disconnected from its first network: the hosts line follows the one it is left on
    sj.ok("network", "connect", "app", "c")
    sj.ok("network", "disconnect", "bridge", "c")
    last = etc()
    assert last.startswith(f"nameserver {gw}\n") and f"{ip(sj, 'c', 'app')}\tcbox" in last
    sj.ok("container", "rm", "-f", "web", "c")
    sj.ok("network", "rm", "app")


def test_container_host_none_modes_and_etc_files(sj):
    pull(sj, BUSYBOX)
    serve(sj, "web", "-h", "webhost", "--domainname", "example.test")
    out = sh(sj, "--network", "container:web", script="hostname; " + wget(
        "http://127.0.0.1/hostname"))  # fmt: skip
    assert out.splitlines() == ["webhost", "webhost"]
    assert inspect(sj, "web")["Config"]["Hostname"] == "webhost"
    r = sj("container", "run", "--rm", "--network", "container:web", "-p", "80:80", BUSYBOX, "true")
    assert r.rc == 125 and "conflicting options: port publishing" in r.err
    r = sj("container", "run", "--rm", "--network", "container:ghost", BUSYBOX, "true")
    assert r.rc == 125 and "No such container: ghost" in r.err
    out = sh(sj, "--network", "none", script="ip -o link | awk -F': ' '{print $2}'")
    assert out.split() == ["lo"]
    out = sh(sj, "--network", "host", script="ip -o link | awk -F': ' '{print $2}'")
    assert "sangja0" in out  # the host's interfaces, the bridge among them
    web = ip(sj, "web")
    out = sh(sj, "-h", "box", "--domainname", "corp.test", "--add-host", "db:10.1.2.3",
             "--add-host", "gw=host-gateway", "--dns", "10.9.9.9", "--dns-search", "a.test",
             "--dns-option", "ndots:2",
             script="hostname; cat /etc/hosts /etc/resolv.conf")  # fmt: skip
    lines = out.splitlines()
    assert lines[0] == "box"
    assert "10.1.2.3\tdb" in lines and "172.17.0.1\tgw" in lines
    mine = [ln for ln in lines if ln.endswith("box.corp.test box")]
    assert len(mine) == 1 and mine[0].startswith("172.17.0.") and not mine[0].startswith(web)
    assert lines[-3:] == ["nameserver 10.9.9.9", "search a.test", "options ndots:2"]
    sj.ok("container", "rm", "-f", "web")


def test_restart_gets_its_address_back_and_a_newcomer_does_not_take_it(sj):
    pull(sj, BUSYBOX)
    run(sj, "-d", "--name", "a", BUSYBOX, "sleep", "1000")
    a = ip(sj, "a")
    sj.ok("container", "stop", "-t", "0", "a")
    run(sj, "-d", "--name", "b", BUSYBOX, "sleep", "1000")
    assert ip(sj, "b") != a
    sj.ok("container", "start", "a")
    assert ip(sj, "a") == a
    sj.ok("container", "restart", "-t", "0", "a")
    assert ip(sj, "a") == a
    sj.ok("container", "rm", "-f", "a", "b")


@pytest.mark.parametrize("point", ["net:leased", "net:netns", "net:started", "net:setup"])
def test_kill_9_of_run_while_the_network_is_set_up(sj, point, tmp_path):
    """`run` killed after its addresses and ports were leased, after its namespace was
    made, while netavark and the firewall's restore work beside it (they go on without
    it: `rm -f` at once must wait for them, or their bridge port and rules would stay),
    and after netavark set the network up (failpoints): `rm -f` removes the container
    and all of its network (the fixture checks no namespace, bridge or aardvark-dns stays);
    no veth or rule stays, the host port is free again."""
    pull(sj, BUSYBOX)
    sj.ok("network", "create", "app")
    env = dict(sj.env, SANGJA_FAILPOINT=point)
    if point == "net:started":
        # a netavark slow after it made the links: each no-op iptables takes 50 ms, then
        # it still has the DNS names to give aardvark-dns when `rm -f` comes
        stub = tmp_path / "slow-stub"
        stub.mkdir()
        for name in ("iptables", "ip6tables"):
            (stub / name).write_text(f'#!/bin/sh\n[ "$1" = --version ] && echo "{name} v1.8.9'
                                     ' (nf_tables)" && exit 0\nsleep 0.05\n')  # fmt: skip
            (stub / name).chmod(0o755)
        env["SANGJA_IPTABLES_STUB"] = str(stub)
    argv = [sangja_binary(), "--root", sj.run_root, "container", "run", "-d", "--name", "k",
            "--network", "app", "-p", "8085:80", BUSYBOX, "sleep", "1000"]  # fmt: skip
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        os.waitid(os.P_PID, p.pid, os.WSTOPPED)
        if point != "net:started":  # there: written or not yet, by the orphaned restore
            assert ("8085" in netkit.nat_rules()) == (point == "net:setup")
        p.kill()
    finally:
        p.wait()
    r = sj("network", "rm", "app")
    assert r.rc == 1 and "has active endpoints" in r.err
    sj.ok("container", "rm", "-f", "k")
    if point == "net:started":  # the orphaned netavark's end: nothing of k's after it
        wait_for(lambda: not _netavark_running(sj.run_root), "the orphaned netavark to end")
        dns = os.path.join(sj.run_root, "@net", "aardvark-dns", "app")
        assert not os.path.exists(dns) or " k" not in open(dns).read(), open(dns).read()
    assert veths() == [] and network_rules() == []
    h = held(sj)
    assert h["endpoints"] == h["ports"] == h["sandboxes"] == []
    sj.ok("network", "rm", "app")
    serve(sj, "again", "-p", "8085:80")
    sj.ok("container", "rm", "-f", "again")


def _netavark_running(run_root):
    for p in os.listdir("/proc"):
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if b"netavark" in cmd and run_root.encode() in cmd:
            return True
    return False


def test_image_exposed_ports_with_publish_all(sj, tmp_path):
    """-P publishes the image's EXPOSE ports (an image imported with EXPOSE here)."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import bundles

    rootfs = str(tmp_path / "rootfs")
    bundles.make_rootfs(rootfs)
    os.symlink("busybox", os.path.join(rootfs, "bin", "httpd"))
    tar = str(tmp_path / "img.tar")
    with tarfile.open(tar, "w") as t:
        t.add(rootfs, arcname=".")
    sj.ok("image", "import", "-c", "EXPOSE 80 8443/tcp", tar, "exposed:latest")
    run(sj, "-d", "--name", "e", "-P", "exposed:latest", "httpd", "-f", "-p", "80", "-h", "/etc")
    ports = inspect(sj, "e")["NetworkSettings"]["Ports"]
    assert set(ports) == {"80/tcp", "8443/tcp"} and all(v and v[0]["HostPort"] for v in
                                                         ports.values())  # fmt: skip
    port = ports["80/tcp"][0]["HostPort"]
    assert http_get(f"http://127.0.0.1:{port}/hostname").strip() == inspect(sj, "e")["Id"][:12]
    sj.ok("container", "rm", "-f", "e")


def test_restart_policy_sets_the_network_up_again(sj):
    """A container its monitor restarts (its process killed from the host) is on its network
    again, with its address and its name."""
    pull(sj, BUSYBOX)
    sj.ok("network", "create", "app")
    serve(sj, "web", "--network", "app", "--restart", "always", "-p", "8087:80")
    before = ip(sj, "web", "app")
    pid = inspect(sj, "web")["State"]["Pid"]
    os.kill(pid, 9)
    wait_for(lambda: inspect(sj, "web")["State"]["Pid"] not in (0, pid)
             and inspect(sj, "web")["State"]["Running"], "the restart")  # fmt: skip
    assert inspect(sj, "web")["RestartCount"] >= 1
    assert ip(sj, "web", "app") == before
    cid = inspect(sj, "web")["Id"][:12]
    assert http_get("http://127.0.0.1:8087/hostname").strip() == cid
    assert cid in sh(sj, "--network", "app", script=wget("http://web/hostname"))
    sj.ok("container", "rm", "-f", "web")
    sj.ok("network", "rm", "app")


# ---- the engine's config file: bip, mtu, default-address-pools, dns* -------------------


def configure(sj, tmp_path, text):
    """Write the engine's config file and point this sj's commands at it."""
    p = tmp_path / "engine.toml"
    p.write_text(text)
    sj.env["SANGJA_CONFIG"] = str(p)


def ipam_config(sj, name):
    net = json.loads(sj.ok("network", "inspect", name).out)[0]
    return net["IPAM"]["Config"], net["Options"]


def test_bip_and_mtu_shape_the_default_bridge(sj, tmp_path):
    """bip is the default bridge's subnet and gateway, mtu its MTU and its containers'
    (inside: eth0's address, route and MTU; on the host: sangja0's); a changed file is
    followed once no container is on the bridge (a running one keeps it, with a warning);
    without the keys the bridge is Docker's 172.17.0.0/16 again.  A user network keeps
    1500 (Docker's daemon mtu is the default bridge's only)."""
    pull(sj, BUSYBOX)
    configure(sj, tmp_path, 'bip = "10.55.0.1/24"\nmtu = 1400\n')
    conf, opts = ipam_config(sj, "bridge")
    assert conf == [{"Subnet": "10.55.0.0/24", "Gateway": "10.55.0.1"}]
    assert opts["com.docker.network.driver.mtu"] == "1400"
    run(sj, "-d", "--name", "a", BUSYBOX, "sleep", "1000")
    assert ip(sj, "a").startswith("10.55.0.") and nets(sj, "a")["bridge"]["IPPrefixLen"] == 24
    out = sj.ok("container", "exec", "a", "sh", "-c",
                "ip -o -4 addr show eth0; cat /sys/class/net/eth0/mtu; ip route;"
                " ping -c1 -W5 10.55.0.1").out  # fmt: skip
    assert f"inet {ip(sj, 'a')}/24 " in out and "\n1400\n" in out
    assert re.search(r"^default via 10\.55\.0\.1 dev eth0", out, re.M), out
    assert "1 packets received" in out
    link = subprocess.run(["ip", "-o", "link", "show", "sangja0"], capture_output=True,
                          text=True, check=True).stdout  # fmt: skip
    assert " mtu 1400 " in link  # the host's end: the bridge (in the test's namespace)
    # changed while a container is on the bridge: kept, with a warning naming what
    configure(sj, tmp_path, 'bip = "10.56.0.1/24"\n')
    r = sj.ok("network", "inspect", "bridge")
    assert json.loads(r.out)[0]["IPAM"]["Config"][0]["Subnet"] == "10.55.0.0/24"
    assert "default bridge keeps 10.55.0.0/24" in r.err and "engine.toml" in r.err
    sj.ok("container", "rm", "-f", "a")
    conf, opts = ipam_config(sj, "bridge")  # the last container left: the file is followed
    assert conf == [{"Subnet": "10.56.0.0/24", "Gateway": "10.56.0.1"}]
    assert opts["com.docker.network.driver.mtu"] == "1500"
    out = sh(sj, script="ip -o -4 addr show eth0; cat /sys/class/net/eth0/mtu")
    assert "inet 10.56.0.2/24 " in out and out.split()[-1] == "1500"
    # a user network without the mtu option: 1500 whatever mtu says (as Docker)
    configure(sj, tmp_path, "mtu = 1400\n")
    sj.ok("network", "create", "app")
    assert sh(sj, "--network", "app", script="cat /sys/class/net/eth0/mtu") == "1500"
    sj.ok("network", "rm", "app")
    # no bip: Docker's default subnet again
    conf, _ = ipam_config(sj, "bridge")
    assert conf == [{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}]
    # a bip overlapping a user network: the bridge keeps its subnet, with a warning
    sj.ok("network", "create", "--subnet", "10.57.0.0/16", "other")
    configure(sj, tmp_path, 'bip = "10.57.3.1/24"\n')
    r = sj.ok("network", "inspect", "bridge")
    assert json.loads(r.out)[0]["IPAM"]["Config"][0]["Subnet"] == "172.17.0.0/16"
    assert 'key "bip": 10.57.3.0/24 overlaps network other (10.57.0.0/16)' in r.err
    sj.ok("network", "rm", "other")
    assert ipam_config(sj, "bridge")[0][0]["Subnet"] == "10.57.3.0/24"


def test_default_address_pools_give_new_networks_their_subnets(sj, tmp_path):
    """The default bridge (no bip) and user networks without --subnet take their subnets
    from default-address-pools (IPv4, and IPv6 for --ipv6 networks), in order; --subnet
    still wins."""
    pull(sj, BUSYBOX)
    configure(sj, tmp_path, 'default-address-pools = [{ base = "10.90.0.0/16", size = 24 },'
                            ' { base = "fd90:1::/48", size = 64 }]\n')  # fmt: skip
    assert ipam_config(sj, "bridge")[0] == [{"Subnet": "10.90.0.0/24", "Gateway": "10.90.0.1"}]
    sj.ok("network", "create", "one")
    sj.ok("network", "create", "--ipv6", "two")
    sj.ok("network", "create", "--subnet", "10.91.0.0/24", "three")
    assert ipam_config(sj, "one")[0] == [{"Subnet": "10.90.1.0/24", "Gateway": "10.90.1.1"}]
    assert [c["Subnet"] for c in ipam_config(sj, "two")[0]] == ["10.90.2.0/24", "fd90:1::/64"]
    assert ipam_config(sj, "three")[0][0]["Subnet"] == "10.91.0.0/24"
    out = sh(sj, "--network", "two", script="ip -o addr show eth0")
    assert re.search(r"inet 10\.90\.2\.\d+/24 ", out) and re.search(r"inet6 fd90:1::\S+/64", out)
    assert "inet 10.90.0." in sh(sj, script="ip -o -4 addr show eth0")
    # other pools: the default bridge (no container on it) follows them; a full pool is
    # Docker's message, naming the pools
    configure(sj, tmp_path, 'default-address-pools = [{ base = "10.92.0.0/23", size = 24 }]\n')
    sj.ok("network", "create", "four")
    assert ipam_config(sj, "bridge")[0][0]["Subnet"] == "10.92.0.0/24"
    assert ipam_config(sj, "four")[0][0]["Subnet"] == "10.92.1.0/24"
    r = sj.fail("network", "create", "five")
    assert "non-overlapping IPv4 address pool among the default-address-pools" in r.err
    sj.ok("network", "rm", "one", "two", "three", "four")


@contextlib.contextmanager
def dns_server(address):
    """A DNS server on 127.0.0.1:53 (the test's namespace) answering every A question with
    `address` (others with no record) -> the names it was asked, while it runs."""
    import socket
    import struct
    import threading

    asked = []
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 53))
    s.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                q, peer = s.recvfrom(1500)
            except TimeoutError:
                continue
            i, labels = 12, []
            while q[i]:
                labels.append(q[i + 1 : i + 1 + q[i]].decode())
                i += 1 + q[i]
            qtype = struct.unpack("!H", q[i + 1 : i + 3])[0]
            asked.append(".".join(labels))
            question = q[12 : i + 5]
            an = 1 if qtype == 1 else 0
            r = q[:2] + struct.pack("!HHHHH", 0x8180, 1, an, 0, 0) + question
            if an:
                r += struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(address)
            s.sendto(r, peer)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield asked
    finally:
        stop.set()
        t.join()
        s.close()


def test_dns_keys_are_containers_default_resolv_conf(sj, tmp_path):
    """dns, dns-search and dns-opts are what a container's /etc/resolv.conf gets when run
    has no --dns/--dns-search/--dns-option (each replaced on its own by the flag), on the
    default bridge, with --network host and on a user network (there the nameserver is the
    network's aardvark-dns, the search and options the file's); they are read at start,
    not kept in the container's HostConfig (as dockerd)."""
    pull(sj, BUSYBOX)
    configure(sj, tmp_path, 'dns = ["10.0.0.53", "10.0.0.54"]\ndns-search = ["corp.example"]\n'
                            'dns-opts = ["ndots:3", "timeout:2"]\n')  # fmt: skip
    want = ("nameserver 10.0.0.53\nnameserver 10.0.0.54\nsearch corp.example\n"
            "options ndots:3 timeout:2")  # fmt: skip
    assert sh(sj, script="cat /etc/resolv.conf") == want
    assert sh(sj, "--network", "host", script="cat /etc/resolv.conf") == want
    out = sh(sj, "--dns", "10.0.0.99", "--dns-option", "attempts:1",
             script="cat /etc/resolv.conf")  # fmt: skip
    assert out == "nameserver 10.0.0.99\nsearch corp.example\noptions attempts:1"
    sj.ok("network", "create", "app")
    gw = ipam_config(sj, "app")[0][0]["Gateway"]
    out = sh(sj, "--network", "app", script="cat /etc/resolv.conf")
    assert out == f"nameserver {gw}\nsearch corp.example\noptions ndots:3 timeout:2"
    sj.ok("container", "create", "--name", "c", BUSYBOX)
    assert not inspect(sj, "c")["HostConfig"].get("Dns")
    # aardvark-dns forwards the names it does not know to the file's dns servers: here a
    # small server of the test's, on 127.0.0.1:53 of the test's namespace
    configure(sj, tmp_path, 'dns = ["127.0.0.1"]\n')
    run(sj, "-d", "--name", "d", BUSYBOX, "sleep", "1000")
    sj.ok("network", "connect", "app", "d")  # and for a network connected later
    with dns_server("10.1.2.3") as asked:
        out = sh(sj, "--network", "app", script="nslookup -type=a outside.example")
        later = sj.ok("container", "exec", "d", "nslookup", "-type=a", "later.example").out
    assert "Address: 10.1.2.3" in out and "outside.example" in asked
    assert "Address: 10.1.2.3" in later and "later.example" in asked
    sj.ok("container", "rm", "-f", "d")
    sj.ok("container", "rm", "c")
    sj.ok("network", "rm", "app")
