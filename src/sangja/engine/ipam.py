"""IP address management: which subnet a network gets, which address a container gets.

Subnets.  A network's subnets are the user's (`--subnet`, checked: a valid CIDR without
host bits, not overlapping another network's) or picked from the pools: the config file's
`default-address-pools` when it has them, else Docker's defaults (172.17.0.0/16 ...
172.31.0.0/16, then 192.168.0.0/20 ... 192.168.240.0/20), skipping
every pool that overlaps another network or a route of the host (the engine's network
namespace: `/proc/thread-self/net/route`), as Docker does; so the default `bridge` network
is 172.17.0.0/16 unless that collides (or the config file's `bip` says otherwise).  An
IPv6 network without `--subnet` gets the IPv6 pools' first free subnet, else a unique
local /64 (fdXX:XXXX:XXXX::/64) derived from its id.

Addresses.  A container's address on a network is leased when it starts and released when
it stops (the leases are the `ipv4`/`ipv6` columns of `net_endpoints`, unique per network;
the tables live in the store's database: see engine/networks.py).  What sangja does about
reuse: a container that starts again gets back the address it had (`last_ipv4`), when that
is still free; otherwise, and for a new container, addresses are handed out round-robin
after the last one handed out on that subnet (`ipam_cursors`), so an address a stopped
container gave up goes to another container only once the rest of the range has been used.
A static address (`--ip`, `--ip6`) is given or refused ("Address already in use").
"""

from __future__ import annotations

import ipaddress

from sangja.engine.neterrors import NetworkConflict, NetworkInvalid

IPv4, IPv6 = 4, 6

# Docker's default pools: 172.17-31.0.0/16, then 192.168.N.0/20
DEFAULT_POOLS = [
    {"base": "172.17.0.0/16", "size": 16}, {"base": "172.18.0.0/15", "size": 16},
    {"base": "172.20.0.0/14", "size": 16}, {"base": "172.24.0.0/14", "size": 16},
    {"base": "172.28.0.0/14", "size": 16}, {"base": "192.168.0.0/16", "size": 20},
]  # fmt: skip


def _pools(pools: list[dict] | None = None):
    """The candidate subnets, in order: each pool's base cut in subnets of its size
    (daemon.json's default-address-pools, which replace Docker's own when given)."""
    if pools is None:
        pools = DEFAULT_POOLS
    for p in pools:
        base = ipaddress.ip_network(p["base"], strict=False)
        if base.version == 4:
            yield from base.subnets(new_prefix=p["size"])


def configured_pools() -> list[dict] | None:
    """default-address-pools from the engine's config file (None: Docker's defaults)."""
    from sangja import settings

    return settings.get("default-address-pools")


def host_routes() -> list:
    """The destinations of the routes in this thread's network namespace (not the default
    route, loopback, link-local or multicast)."""
    out = []
    try:
        with open("/proc/thread-self/net/route") as f:
            next(f, None)
            for line in f:
                w = line.split()
                if len(w) < 8:
                    continue
                dest = int(w[1], 16).to_bytes(4, "little")
                mask = int(w[7], 16).to_bytes(4, "little")
                plen = bin(int.from_bytes(mask, "big")).count("1")
                if plen == 0:
                    continue
                out.append(ipaddress.ip_network((dest, plen), strict=False))
    except OSError:
        pass
    try:
        with open("/proc/thread-self/net/ipv6_route") as f:
            for line in f:
                w = line.split()
                if len(w) < 10 or w[9] == "lo":
                    continue
                plen = int(w[1], 16)
                net = ipaddress.ip_network((bytes.fromhex(w[0]), plen), strict=False)
                if plen == 0 or net.is_link_local or net.is_multicast:
                    continue
                out.append(net)
    except OSError:
        pass
    return out


def pick_subnet(taken: list, routes: list | None = None, pools: list[dict] | None = None):
    """The first subnet of the pools (`pools`: default-address-pools' entries, None for
    Docker's defaults) that overlaps nothing in `taken` (other networks' subnets) nor a host
    route."""
    routes = host_routes() if routes is None else routes
    avoid = [n for n in list(taken) + list(routes) if n.version == 4]
    for pool in _pools(pools):
        if not any(pool.overlaps(n) for n in avoid):
            return pool
    raise NetworkConflict(
        "could not find an available, non-overlapping IPv4 address pool among the"
        f" {'default-address-pools' if pools is not None else 'defaults'} to assign to the"
        " network"
    )


def ula_subnet(seed: str, taken: list, pools: list[dict] | None = None):
    """An IPv6 subnet for a network given no --subnet: the first free one of the IPv6
    bases of default-address-pools when it has some, else a unique local /64: fd + 40 bits
    of the network id's hash (+1 while it overlaps another network)."""
    import hashlib

    v6 = [p for p in pools or () if ipaddress.ip_network(p["base"], strict=False).version == 6]
    if v6:
        for p in v6:
            base = ipaddress.ip_network(p["base"], strict=False)
            for net in base.subnets(new_prefix=p["size"]):
                if not any(net.overlaps(n) for n in taken if n.version == 6):
                    return net
        raise NetworkConflict(
            "could not find an available, non-overlapping IPv6 address pool among the"
            " default-address-pools to assign to the network"
        )

    h = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:5], "big")
    for i in range(256):
        gid = (h + i) % (1 << 40)
        net = ipaddress.ip_network(((0xFD << 120) | (gid << 80), 64))
        if not any(net.overlaps(n) for n in taken if n.version == 6):
            return net
    raise NetworkConflict("could not find a free IPv6 unique local subnet")


def network(text: str):
    """A CIDR given by the user -> ip_network; host bits set is an error (as Docker's)."""
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise NetworkInvalid(f"invalid CIDR address: {text}")
    if "/" not in text:
        raise NetworkInvalid(f"invalid CIDR address: {text}")
    if str(net) != text and ipaddress.ip_interface(text).ip != net.network_address:
        raise NetworkInvalid(f"invalid subnet {text}: it should be {net}")
    return net


def address(text: str, what: str = "IP address"):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise NetworkInvalid(f"invalid {what}: {text!r}")


def subnet_config(subnets: list[str], gateways: list[str], ranges: list[str],
                  aux: dict[str, str]) -> list[dict]:  # fmt: skip
    """`network create`'s --subnet/--gateway/--ip-range/--aux-address -> Docker's
    IPAM.Config entries: each gateway, range and aux address goes to the subnet that holds
    it (the docker CLI's pairing, with its messages)."""
    if (gateways or ranges or aux) and not subnets:
        raise NetworkInvalid("every ip-range or gateway must have a corresponding subnet")
    nets = [network(s) for s in subnets]
    for i, a in enumerate(nets):
        for b in nets[i + 1 :]:
            if a.overlaps(b):
                raise NetworkInvalid("multiple overlapping subnet configuration is not supported")
    out = [{"Subnet": str(n)} for n in nets]

    def home(addr_or_net, what):
        for n, entry in zip(nets, out, strict=True):
            if addr_or_net.version == n.version and (
                addr_or_net in n if not hasattr(addr_or_net, "prefixlen")
                else addr_or_net.subnet_of(n)
            ):  # fmt: skip
                return entry
        raise NetworkInvalid(f"no matching subnet for {what}")

    for g in gateways:
        e = home(address(g, "gateway"), f"gateway {g}")
        if "Gateway" in e:
            raise NetworkInvalid(f"cannot configure multiple gateways ({e['Gateway']}, {g})"
                                 f" for the same subnet {e['Subnet']}")  # fmt: skip
        e["Gateway"] = g
    for r in ranges:
        e = home(network(r), f"range {r}")
        if "IPRange" in e:
            raise NetworkInvalid(f"cannot configure multiple ranges ({e['IPRange']}, {r}) on"
                                 f" the same subnet ({e['Subnet']})")  # fmt: skip
        e["IPRange"] = r
    for name, a in aux.items():
        e = home(address(a, "aux-address"), f"aux-address {a}")
        e.setdefault("AuxiliaryAddresses", {})[name] = a
    return out


def complete(entry: dict) -> dict:
    """A subnet entry with its gateway (the first address, unless given), checked."""
    net = network(entry["Subnet"])
    out = {"Subnet": str(net)}
    gw = entry.get("Gateway") or ""
    if gw:
        g = address(gw, "gateway")
        if g not in net:
            raise NetworkInvalid(f"no matching subnet for gateway {gw}")
    else:
        if net.num_addresses < 4:
            raise NetworkInvalid(f"subnet {net} is too small")
        gw = str(net.network_address + 1)
    out["Gateway"] = gw
    if entry.get("IPRange"):
        r = network(entry["IPRange"])
        if r.version != net.version or not r.subnet_of(net):
            raise NetworkInvalid(f"no matching subnet for range {entry['IPRange']}")
        out["IPRange"] = str(r)
    if entry.get("AuxiliaryAddresses"):
        for a in entry["AuxiliaryAddresses"].values():
            if address(a, "aux-address") not in net:
                raise NetworkInvalid(f"no matching subnet for aux-address {a}")
        out["AuxiliaryAddresses"] = dict(entry["AuxiliaryAddresses"])
    return out


def _bounds(entry: dict) -> tuple[int, int]:
    net = ipaddress.ip_network(entry["Subnet"])
    rng = ipaddress.ip_network(entry.get("IPRange") or entry["Subnet"])
    lo, hi = int(rng.network_address), int(rng.broadcast_address)
    if net.version == 4 and net.prefixlen < 31:  # no network or broadcast address
        lo = max(lo, int(net.network_address) + 1)
        hi = min(hi, int(net.broadcast_address) - 1)
    elif net.version == 6:
        lo = max(lo, int(net.network_address) + 1)  # the subnet-router anycast address
    return lo, hi


def allocate(entry: dict, used: set[str], cursor: str | None, *, static: str | None = None,
             prefer: str | None = None, what: str = "") -> str:  # fmt: skip
    """An address of the subnet `entry` that is not in `used`, the gateway or the aux
    addresses: `static` (or an error), else `prefer` if free and in range, else the next
    free one after `cursor` (round-robin)."""
    net = ipaddress.ip_network(entry["Subnet"])
    reserved = {ipaddress.ip_address(entry["Gateway"])} if entry.get("Gateway") else set()
    reserved |= {ipaddress.ip_address(a) for a in (entry.get("AuxiliaryAddresses") or {}).values()}
    used_ips = {ipaddress.ip_address(u) for u in used}
    if static:
        a = address(static)
        if a not in net:
            raise NetworkInvalid(f"no configured subnet or ip-range contain the IP address {a}")
        lo, hi = _bounds({"Subnet": entry["Subnet"]})
        if a in reserved or a in used_ips or not lo <= int(a) <= hi:
            raise NetworkConflict(f"Address already in use: {a}{what}")
        return str(a)
    lo, hi = _bounds(entry)
    if prefer:
        try:
            p = ipaddress.ip_address(prefer)
        except ValueError:
            p = None
        free = p is not None and p not in used_ips and p not in reserved
        if free and p.version == net.version and lo <= int(p) <= hi:
            return str(p)
    n = hi - lo + 1
    start = lo
    if cursor:
        c = int(ipaddress.ip_address(cursor))
        if lo <= c <= hi:
            start = c + 1
    taken = {int(a) for a in used_ips | reserved}
    for i in range(min(n, len(taken) + 1)):
        cand = lo + (start - lo + i) % n
        if cand not in taken:
            return str(ipaddress.ip_address(cand))
    kind = "IPv4" if net.version == 4 else "IPv6"
    raise NetworkConflict(f"no available {kind} addresses on this network's address pools{what}")


def mac_for(ip: str | None) -> str | None:
    """Docker's MAC for an IPv4 address: 02:42 and the address's four bytes, so that a
    reused address keeps its MAC (neighbours' ARP caches stay right)."""
    if not ip:
        return None
    a = ipaddress.ip_address(ip)
    if a.version != 4:
        return None
    return "02:42:" + ":".join(f"{b:02x}" for b in a.packed)


def check_mac(mac: str) -> str:
    parts = mac.split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise NetworkInvalid(f"{mac} is not a valid mac address")
    try:
        first = int(parts[0], 16)
        for p in parts[1:]:
            int(p, 16)
    except ValueError:
        raise NetworkInvalid(f"{mac} is not a valid mac address")
    if first & 1:
        raise NetworkInvalid(f"{mac} is a multicast address, not a valid mac for an interface")
    return mac.lower()
