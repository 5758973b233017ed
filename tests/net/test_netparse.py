"""What the network library decides without touching the system: `-p`/`--expose` parsing,
the host-port mappings netavark gets, Docker's port views, /etc/hosts and /etc/resolv.conf,
subnet pairing and address allocation."""

import ipaddress

import pytest

from sangja.engine import dns, ipam, ports
from sangja.engine.neterrors import NetworkConflict, NetworkInvalid


@pytest.mark.parametrize(
    "spec, want",
    [
        ("80", [("80/tcp", "", "")]),
        ("8080:80", [("80/tcp", "", "8080")]),
        ("8080:80/udp", [("80/udp", "", "8080")]),
        ("127.0.0.1:8080:80", [("80/tcp", "127.0.0.1", "8080")]),
        ("127.0.0.1::80", [("80/tcp", "127.0.0.1", "")]),
        ("[::1]:8080:80/sctp", [("80/sctp", "::1", "8080")]),
        ("::1:8080:80", [("80/tcp", "::1", "8080")]),
        ("8000-8002:80-82", [("80/tcp", "", "8000"), ("81/tcp", "", "8001"),
                             ("82/tcp", "", "8002")]),
        ("8000-8010:80", [("80/tcp", "", "8000-8010")]),
        ("80-81", [("80/tcp", "", ""), ("81/tcp", "", "")]),
        ("0.0.0.0:53:53/UDP", [("53/udp", "0.0.0.0", "53")]),
    ],
)  # fmt: skip
def test_publish_forms(spec, want):
    got = [(p, b["HostIp"], b["HostPort"]) for p, b in ports.parse_publish(spec)]
    assert got == want


@pytest.mark.parametrize(
    "spec, msg",
    [
        ("8000-8002:80-81", "invalid ranges specified"),
        ("80/icmp", "invalid proto: icmp"),
        ("1.2.3:80:80", "invalid IP address: 1.2.3"),
        ("x:80", "invalid hostPort: x"),
        ("8080:70000", "invalid containerPort: 70000"),
        ("8080:", "no port specified"),
        ("90-80", "invalid containerPort"),
    ],
)
def test_publish_errors(spec, msg):
    with pytest.raises(NetworkInvalid, match=msg):
        ports.parse_publish(spec)


def test_bindings_expose_and_mappings():
    b, e = ports.bindings_from_flags(["8080:80", "127.0.0.1:8081:80", "53:53/udp"])
    assert b == {"80/tcp": [{"HostIp": "", "HostPort": "8080"},
                            {"HostIp": "127.0.0.1", "HostPort": "8081"}],
                 "53/udp": [{"HostIp": "", "HostPort": "53"}]}  # fmt: skip
    assert e == {"80/tcp": {}, "53/udp": {}}
    assert ports.parse_expose("8000-8002/udp") == ["8000/udp", "8001/udp", "8002/udp"]
    ms = [ports.Mapping("tcp", "", 8000 + i, 80 + i) for i in range(3)]
    ms += [ports.Mapping("udp", "", 53, 53), ports.Mapping("tcp", "127.0.0.1", 9000, 90)]
    assert ports.netavark_mappings(ms) == [
        {"host_ip": "", "container_port": 80, "host_port": 8000, "range": 3, "protocol": "tcp"},
        {"host_ip": "127.0.0.1", "container_port": 90, "host_port": 9000, "range": 1,
         "protocol": "tcp"},
        {"host_ip": "", "container_port": 53, "host_port": 53, "range": 1, "protocol": "udp"},
    ]  # fmt: skip
    view = ports.docker_ports(ms[:1] + ms[3:4], ["443/tcp", "80/tcp"], ipv6=True)
    assert view == {"53/udp": [{"HostIp": "0.0.0.0", "HostPort": "53"},
                               {"HostIp": "::", "HostPort": "53"}],
                    "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8000"},
                               {"HostIp": "::", "HostPort": "8000"}],
                    "443/tcp": None}  # fmt: skip
    assert ports.port_lines(view) == ["53/udp -> 0.0.0.0:53", "53/udp -> [::]:53",
                                      "80/tcp -> 0.0.0.0:8000", "80/tcp -> [::]:8000"]  # fmt: skip
    assert ports.port_lines(view, "80") == ["0.0.0.0:8000", "[::]:8000"]
    assert ports.port_lines(view, "443/tcp") == []


def test_resolve_picks_free_host_ports():
    used = [("tcp", "", 8000), ("tcp", "127.0.0.1", 8001)]
    b = {"80/tcp": [{"HostIp": "", "HostPort": "8000-8003"}]}
    (m,) = ports.resolve(b, [], False, used)
    assert (m.host_port, m.container_port) == (8002, 80)
    with pytest.raises(NetworkConflict, match="0.0.0.0:8000 failed: port is already allocated"):
        ports.resolve({"80/tcp": [{"HostIp": "", "HostPort": "8000"}]}, [], False, used)
    with pytest.raises(NetworkConflict, match="127.0.0.1:8000 failed"):
        ports.resolve({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8000"}]}, [], False, used)
    # -P: every exposed port not bound already gets a random one, never a held one
    got = ports.resolve({"80/tcp": [{"HostIp": "", "HostPort": "8005"}]}, ["80/tcp", "81/tcp"],
                        True, used)  # fmt: skip
    assert [(m.container_port, m.host_port == 8005) for m in got] == [(80, True), (81, False)]
    assert got[1].host_port not in (8000, 8001, 8005)


def test_hosts_and_resolv():
    h = dns.hosts_file("web", "example.com", ["10.0.0.2"], [("db", "10.0.0.9")])
    assert h.startswith(dns.LOCALHOST)
    assert h.endswith("10.0.0.9\tdb\n10.0.0.2\tweb.example.com web\n")
    assert dns.hosts_file("x", "", [], []).endswith("127.0.1.1\tx\n")
    host = "nameserver 127.0.0.53\nnameserver 9.9.9.9\nsearch lan corp\noptions edns0\n"
    assert dns.resolv_conf(dns=None, search=None, options=None, host_text=host) == (
        "nameserver 9.9.9.9\nsearch lan corp\noptions edns0\n")  # fmt: skip
    only_local = "nameserver 127.0.0.53\n"
    out = dns.resolv_conf(dns=None, search=None, options=None, host_text=only_local, ipv6=True)
    if not __import__("os").path.exists(dns.RESOLVED_UPSTREAM):
        assert out == "".join(f"nameserver {s}\n" for s in dns.GOOGLE_V4 + dns.GOOGLE_V6)
    got = dns.resolv_conf(dns=["1.1.1.1"], search=["a.b"], options=["ndots:2"], host_text=host)
    assert got == "nameserver 1.1.1.1\nsearch a.b\noptions ndots:2\n"
    # a network with names: its gateway answers (aardvark-dns), the rest is forwarded
    got = dns.resolv_conf(dns=["1.1.1.1"], search=["."], options=None, host_text=host,
                          name_servers=["10.0.0.1"])  # fmt: skip
    assert got == "nameserver 10.0.0.1\noptions edns0\n"
    assert dns.parse_extra_host("a:1.2.3.4") == ("a", "1.2.3.4")
    assert dns.parse_extra_host("a=::1") == ("a", "::1")
    assert dns.parse_extra_host("h:host-gateway") == ("h", "host-gateway")
    assert dns.parse_extra_host("v6:[fd00::1]") == ("v6", "fd00::1")
    for bad in ("a", "a:", ":1.2.3.4", "a:b"):
        with pytest.raises(NetworkInvalid):
            dns.parse_extra_host(bad)


def test_subnet_pairing_and_allocation():
    conf = ipam.subnet_config(["10.1.0.0/24", "fd00:1::/64"], ["fd00:1::fe", "10.1.0.254"],
                              ["10.1.0.64/26"], {"x": "10.1.0.65"})  # fmt: skip
    assert conf == [{"Subnet": "10.1.0.0/24", "Gateway": "10.1.0.254", "IPRange": "10.1.0.64/26",
                     "AuxiliaryAddresses": {"x": "10.1.0.65"}},
                    {"Subnet": "fd00:1::/64", "Gateway": "fd00:1::fe"}]  # fmt: skip
    for args, msg in (((["10.1.0.0/24"], ["10.2.0.1"], [], {}), "no matching subnet for gateway"),
                      (([], ["10.2.0.1"], [], {}), "corresponding subnet"),
                      ((["10.0.0.0/8", "10.1.0.0/16"], [], [], {}), "overlapping"),
                      ((["10.1.0.1/24"], [], [], {}), "it should be 10.1.0.0/24"),
                      ((["nonsense"], [], [], {}), "invalid CIDR")):  # fmt: skip
        with pytest.raises(NetworkInvalid, match=msg):
            ipam.subnet_config(*args)
    e = ipam.complete(conf[0])
    # the range's first address is the network's .64 (allowed: not the subnet's own
    # network address), .65 is reserved
    assert ipam.allocate(e, set(), None) == "10.1.0.64"
    assert ipam.allocate(e, {"10.1.0.64"}, None) == "10.1.0.66"
    assert ipam.allocate(e, set(), "10.1.0.70") == "10.1.0.71"  # round-robin
    assert ipam.allocate(e, set(), "10.1.0.127") == "10.1.0.64"  # wraps
    assert ipam.allocate(e, set(), "10.1.0.70", prefer="10.1.0.100") == "10.1.0.100"
    assert ipam.allocate(e, {"10.1.0.100"}, "10.1.0.70", prefer="10.1.0.100") == "10.1.0.71"
    assert ipam.allocate(e, set(), None, static="10.1.0.5") == "10.1.0.5"  # outside the range
    for static, exc in (("10.1.0.254", NetworkConflict), ("10.1.0.65", NetworkConflict),
                        ("10.1.0.255", NetworkConflict), ("10.9.0.1", NetworkInvalid)):  # fmt: skip
        with pytest.raises(exc):
            ipam.allocate(e, set(), None, static=static)
    small = ipam.complete({"Subnet": "10.2.0.0/30"})  # .1 gateway, .2 the only one
    assert ipam.allocate(small, set(), None) == "10.2.0.2"
    with pytest.raises(NetworkConflict, match="no available IPv4 addresses"):
        ipam.allocate(small, {"10.2.0.2"}, None)
    assert ipam.mac_for("172.17.0.2") == "02:42:ac:11:00:02"
    with pytest.raises(NetworkInvalid, match="not a valid mac"):
        ipam.check_mac("02:42:zz:00:00:01")
    with pytest.raises(NetworkInvalid, match="multicast"):
        ipam.check_mac("01:00:5e:00:00:01")


def test_pools_skip_routes_and_networks():
    net = ipaddress.ip_network
    assert str(ipam.pick_subnet([], [])) == "172.17.0.0/16"
    assert str(ipam.pick_subnet([net("172.17.0.0/16")], [net("172.18.3.0/24")])) == "172.19.0.0/16"
    taken = [net(f"172.{i}.0.0/16") for i in range(17, 32)]
    assert str(ipam.pick_subnet(taken, [net("192.168.0.0/24")])) == "192.168.16.0/20"
    six = ipam.ula_subnet("abc", [])
    assert six.prefixlen == 64 and str(six).startswith("fd") and six == ipam.ula_subnet("abc", [])
    assert ipam.ula_subnet("abc", [six]) != six
