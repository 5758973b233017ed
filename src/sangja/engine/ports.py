"""Published ports: Docker's `-p`/`--expose` forms, the host ports chosen when a container
starts, netavark's port mappings, and Docker's views of them (NetworkSettings.Ports,
`container port`).

`-p` forms (the docker CLI's): `8080:80`, `127.0.0.1:8080:80`, `[::1]:8080:80`,
`127.0.0.1::80` (a random host port on that address), `80` (a random host port),
`8080:80/udp` (tcp, udp, sctp), ranges `8000-8010:80-90` (host and container ranges of the
same length) and `8000-8010:80` (one free host port of the range).  They become Docker's
HostConfig.PortBindings ({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}) and
Config.ExposedPorts; `-P` publishes every exposed port (the image's EXPOSE, `--expose`) on a
random host port.  Random ports come from the kernel (a bind to port 0: its ephemeral
range), never one another container holds; an explicit port another container holds, or a
host process listens on, is refused with Docker's "port is already allocated".
"""

from __future__ import annotations

import errno

from sangja.engine.neterrors import NetworkConflict, NetworkInvalid

PROTOS = ("tcp", "udp", "sctp")


class Mapping:
    """One published port while the container runs."""

    __slots__ = ("proto", "host_ip", "host_port", "container_port")

    def __init__(self, proto: str, host_ip: str, host_port: int, container_port: int):
        self.proto, self.host_ip = proto, host_ip
        self.host_port, self.container_port = host_port, container_port

    def __repr__(self):
        return f"{self.container_port}/{self.proto} -> {self.host_ip or '*'}:{self.host_port}"

    def key(self):
        return (self.proto, self.host_ip, self.host_port, self.container_port)


def _port_range(text: str, what: str) -> tuple[int, int]:
    a, dash, b = text.partition("-")
    try:
        lo = int(a)
        hi = int(b) if dash else lo
    except ValueError:
        raise NetworkInvalid(f"invalid {what}: {text}")
    if not (0 < lo <= 65535 and 0 < hi <= 65535) or hi < lo or (what == "hostPort" and not lo):
        raise NetworkInvalid(f"invalid {what}: {text}")
    return lo, hi


def _split_proto(spec: str) -> tuple[str, str]:
    body, slash, proto = spec.rpartition("/")
    if not slash:
        return spec, "tcp"
    proto = proto.lower()
    if proto not in PROTOS:
        raise NetworkInvalid(f"invalid proto: {proto}")
    return body, proto


def parse_publish(spec: str) -> list[tuple[str, dict]]:
    """One `-p` value -> [("80/tcp", {"HostIp": ..., "HostPort": ...}), ...]."""
    import ipaddress

    rest, proto = _split_proto(spec)
    ip = ""
    if rest.startswith("["):  # [v6]:host:container
        end = rest.find("]")
        if end < 0 or rest[end + 1 : end + 2] != ":":
            raise NetworkInvalid(f"invalid IP address in {spec!r}")
        ip, rest = rest[1:end], rest[end + 2 :]
        parts = rest.split(":")
        if len(parts) != 2:
            raise NetworkInvalid(f"invalid port specification: {spec!r}")
        host, cont = parts
    else:
        parts = rest.split(":")
        if len(parts) == 1:
            host, cont = "", parts[0]
        elif len(parts) == 2:
            host, cont = parts
        elif len(parts) == 3:
            ip, host, cont = parts
        else:
            # a bare IPv6 address: everything before the last two fields
            ip, host, cont = ":".join(parts[:-2]), parts[-2], parts[-1]
    if ip:
        try:
            ip = str(ipaddress.ip_address(ip))
        except ValueError:
            raise NetworkInvalid(f"invalid IP address: {ip}")
    if not cont:
        raise NetworkInvalid(f"no port specified: {spec}<empty>")
    clo, chi = _port_range(cont, "containerPort")
    if host:
        hlo, hhi = _port_range(host, "hostPort")
    else:
        hlo = hhi = 0
    n = chi - clo + 1
    if host and hhi - hlo + 1 != n and n != 1:
        raise NetworkInvalid(f"invalid ranges specified for container and host Ports: {cont}"
                             f" and {host}")  # fmt: skip
    out = []
    for i in range(n):
        if not host:
            hp = ""
        elif n == 1 and hhi != hlo:
            hp = f"{hlo}-{hhi}"  # one free port of the range, chosen at start
        else:
            hp = str(hlo + i)
        out.append((f"{clo + i}/{proto}", {"HostIp": ip, "HostPort": hp}))
    return out


def parse_expose(spec: str) -> list[str]:
    """One `--expose` value (80, 80/udp, 8000-8010) -> ["80/tcp", ...]."""
    rest, proto = _split_proto(spec)
    lo, hi = _port_range(rest, "port")
    return [f"{p}/{proto}" for p in range(lo, hi + 1)]


def bindings_from_flags(publish: list[str]) -> tuple[dict, dict]:
    """Every `-p` -> (PortBindings, ExposedPorts) as the docker CLI builds them."""
    bindings: dict[str, list] = {}
    exposed: dict[str, dict] = {}
    for spec in publish or ():
        for port, b in parse_publish(spec):
            bindings.setdefault(port, []).append(b)
            exposed[port] = {}
    return bindings, exposed


def _port_key(port: str) -> tuple[int, str]:
    num, _, proto = port.partition("/")
    try:
        n = int(num)
    except ValueError:
        raise NetworkInvalid(f"invalid port {port!r}")
    proto = (proto or "tcp").lower()
    if proto not in PROTOS or not 0 < n <= 65535:
        raise NetworkInvalid(f"invalid port {port!r}")
    return n, proto


def check_bindings(bindings: dict | None) -> None:
    """HostConfig.PortBindings as the API gives it: well formed, or NetworkInvalid."""
    for port, lst in (bindings or {}).items():
        _port_key(port)
        for b in lst or ():
            if not isinstance(b, dict):
                raise NetworkInvalid(f"PortBindings[{port!r}]: want [{{HostIp, HostPort}}]")
            if b.get("HostIp"):
                import ipaddress

                try:
                    ipaddress.ip_address(b["HostIp"])
                except ValueError:
                    raise NetworkInvalid(f"invalid IP address: {b['HostIp']}")
            hp = b.get("HostPort") or ""
            if hp and hp != "0":
                _port_range(hp, "hostPort")


def _overlap(ip1: str, ip2: str) -> bool:
    return ip1 == ip2 or not ip1 or not ip2


def _bindable(proto: str, ip: str, port: int) -> int:
    """Can a host process have this port?  -> 0 or the errno of a bind."""
    import socket

    if proto == "sctp":
        return 0
    fam = socket.AF_INET6 if ip and ":" in ip else socket.AF_INET
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    try:
        with socket.socket(fam, kind) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((ip or ("::" if fam == socket.AF_INET6 else "0.0.0.0"), port))
            return 0
    except OSError as e:
        return e.errno or errno.EADDRINUSE


def _random_port(proto: str, ip: str, taken) -> int:
    import socket

    fam = socket.AF_INET6 if ip and ":" in ip else socket.AF_INET
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    for _ in range(200):
        with socket.socket(fam, kind) as s:
            try:
                s.bind((ip or ("::" if fam == socket.AF_INET6 else "0.0.0.0"), 0))
            except OSError as e:
                raise NetworkInvalid(f"cannot publish a port on {ip or '*'}: {e.strerror}")
            port = s.getsockname()[1]
        if not taken(proto, ip, port):
            return port
    raise NetworkConflict("no free host port left for a random mapping")


def _display(ip: str) -> str:
    return ip or "0.0.0.0"


def resolve(bindings: dict | None, exposed: list[str], publish_all: bool,
            used: list[tuple], default_ip: str = "") -> list[Mapping]:  # fmt: skip
    """What the container publishes now: PortBindings (and, with `-P`, every exposed port)
    with host ports chosen.  `used`: (proto, host_ip, host_port) other containers publish."""
    held = list(used)

    def taken(proto, ip, port):
        return any(p == proto and hp == port and _overlap(ip, hip) for p, hip, hp in held)

    want: list[tuple[int, str, str, str]] = []  # (port, proto, ip, host port spec)
    for port, lst in sorted((bindings or {}).items(), key=lambda kv: _port_key(kv[0])):
        n, proto = _port_key(port)
        for b in lst or ():
            want.append((n, proto, b.get("HostIp") or default_ip, b.get("HostPort") or ""))
    if publish_all:
        bound = {_port_key(p) for p in (bindings or {}) if (bindings or {})[p]}
        for port in sorted(set(exposed), key=_port_key):
            if _port_key(port) not in bound:
                n, proto = _port_key(port)
                want.append((n, proto, default_ip, ""))
    out = []
    for cport, proto, ip, spec in want:
        if spec in ("", "0"):
            hport = _random_port(proto, ip, taken)
        else:
            lo, hi = _port_range(spec, "hostPort")
            hport = 0
            last_err = 0
            for p in range(lo, hi + 1):
                if taken(proto, ip, p):
                    last_err = errno.EADDRINUSE
                    continue
                last_err = _bindable(proto, ip, p)
                if not last_err:
                    hport = p
                    break
            if not hport:
                where = f"{_display(ip)}:{spec}"
                if last_err == errno.EADDRNOTAVAIL:
                    raise NetworkInvalid(f"listen {proto} {where}: bind: cannot assign"
                                         " requested address")  # fmt: skip
                raise NetworkConflict(f"Bind for {where} failed: port is already allocated")
        held.append((proto, ip, hport))
        out.append(Mapping(proto, ip, hport, cport))
    return out


def netavark_mappings(mappings: list[Mapping]) -> list[dict]:
    """netavark's port_mappings: consecutive host and container ports as one range."""
    out: list[dict] = []
    for m in sorted(mappings, key=lambda m: (m.proto, m.host_ip, m.host_port)):
        if out:
            last = out[-1]
            if (last["protocol"] == m.proto and last["host_ip"] == m.host_ip
                    and last["host_port"] + last["range"] == m.host_port
                    and last["container_port"] + last["range"] == m.container_port):  # fmt: skip
                last["range"] += 1
                continue
        out.append({"host_ip": m.host_ip, "container_port": m.container_port,
                    "host_port": m.host_port, "range": 1, "protocol": m.proto})  # fmt: skip
    return out


def docker_ports(mappings: list[Mapping], exposed: list[str], ipv6: bool = False) -> dict:
    """NetworkSettings.Ports: every exposed or published port; null when not published.
    A mapping on every address shows as 0.0.0.0 (and :: when the container has IPv6)."""
    out: dict[str, list | None] = {p: None for p in exposed}
    for m in sorted(mappings, key=lambda m: (m.container_port, m.proto, m.host_ip)):
        lst = out.get(f"{m.container_port}/{m.proto}") or []
        if m.host_ip:
            lst.append({"HostIp": m.host_ip, "HostPort": str(m.host_port)})
        else:
            lst.append({"HostIp": "0.0.0.0", "HostPort": str(m.host_port)})
            if ipv6:
                lst.append({"HostIp": "::", "HostPort": str(m.host_port)})
        out[f"{m.container_port}/{m.proto}"] = lst
    return dict(sorted(out.items(), key=lambda kv: _port_key(kv[0])))


def port_lines(ports: dict, want: str | None = None) -> list[str]:
    """`container port C [PORT[/PROTO]]`: "80/tcp -> 0.0.0.0:8080" per binding (without a
    port) or "0.0.0.0:8080" (with one)."""
    if want:
        n, proto = _port_key(want if "/" in want else want + "/tcp")
        key = f"{n}/{proto}"
        return [_hostport(b) for b in ports.get(key) or ()]
    lines = []
    for port, lst in ports.items():
        for b in lst or ():
            lines.append(f"{port} -> {_hostport(b)}")
    return lines


def _hostport(b: dict) -> str:
    ip = b["HostIp"]
    return f"[{ip}]:{b['HostPort']}" if ":" in ip else f"{ip}:{b['HostPort']}"
