"""What a container sees of names: its /etc/hostname, /etc/hosts and /etc/resolv.conf, as
Docker writes them, and `--add-host`/`--dns*` checked.

- /etc/hosts: the loopback names, then `--add-host` entries (`host-gateway` is the gateway of
  the container's first network: the host, seen from the container), then the container's
  own address with its hostname (`name.domain name` with `--domainname`).  With
  `--network host`: the host's file plus the `--add-host` entries.
- /etc/resolv.conf: on networks with names (user networks) the nameservers are the
  networks' gateways, where aardvark-dns answers container names and forwards the rest (to
  `--dns` servers when given, else to the host's); elsewhere `--dns` or the host's
  nameservers without loopback ones (those mean nothing in another namespace: systemd-
  resolved's upstream file is used instead, else Google's, as Docker does).  `--dns-search`
  and `--dns-option` replace the host's search and options.  (The callers give the config
  file's dns/dns-search/dns-opts where the container has no flag: endpoints.dns_defaults.)
"""

from __future__ import annotations

import os

from sangja.engine.neterrors import NetworkInvalid

LOCALHOST = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)
GOOGLE_V4 = ("8.8.8.8", "8.8.4.4")
GOOGLE_V6 = ("2001:4860:4860::8888", "2001:4860:4860::8844")
HOST_GATEWAY = "host-gateway"
RESOLVED_UPSTREAM = "/run/systemd/resolve/resolv.conf"


def parse_extra_host(item: str) -> tuple[str, str]:
    """`--add-host NAME:IP` (or NAME=IP; IP may be `host-gateway`) -> (name, ip)."""
    name, sep, ip = item.partition("=")
    if not sep:
        name, sep, ip = item.partition(":")
    ip = ip.strip()
    if ip.startswith("[") and ip.endswith("]"):
        ip = ip[1:-1]
    if not sep or not name or not ip:
        raise NetworkInvalid(f"bad format for add-host: {item!r}")
    if ip != HOST_GATEWAY:
        import ipaddress

        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise NetworkInvalid(f"invalid IP address in add-host: {ip!r}")
    return name, ip


def check_dns(servers: list[str] | None) -> list[str]:
    out = []
    for s in servers or ():
        import ipaddress

        try:
            out.append(str(ipaddress.ip_address(s)))
        except ValueError:
            raise NetworkInvalid(f"{s} is not an ip address")
    return out


def check_search(domains: list[str] | None) -> None:
    for d in domains or ():
        if d == ".":
            continue
        if not d or len(d) > 255 or d.startswith(("-", ".")) or " " in d:
            raise NetworkInvalid(f"{d} is not a valid domain")


def hostname_file(hostname: str) -> str:
    return hostname + "\n"


def hosts_file(hostname: str, domainname: str, addresses: list[str],
               extra: list[tuple[str, str]], host_mode: bool = False,
               host_hosts: str | None = None) -> str:  # fmt: skip
    """/etc/hosts.  `addresses`: the container's own (its first network's, v4 then v6);
    `extra`: --add-host pairs with host-gateway resolved."""
    names = f"{hostname}.{domainname} {hostname}" if domainname else hostname
    if host_mode:
        text = host_hosts if host_hosts is not None else _read("/etc/hosts") or LOCALHOST
        if text and not text.endswith("\n"):
            text += "\n"
    else:
        text = LOCALHOST
    for name, ip in extra:
        text += f"{ip}\t{name}\n"
    if not host_mode:
        if addresses:
            for a in addresses:
                text += f"{a}\t{names}\n"
        else:
            text += f"127.0.1.1\t{names}\n"  # no network: the name still resolves
    return text


def _read(p: str) -> str | None:
    try:
        with open(p) as f:
            return f.read()
    except OSError:
        return None


def parse_resolv(text: str) -> tuple[list[str], list[str], list[str]]:
    """-> (nameservers, search domains, options) of a resolv.conf."""
    ns, search, opts = [], [], []
    for line in text.splitlines():
        w = line.split()
        if not w or w[0].startswith(("#", ";")):
            continue
        if w[0] == "nameserver" and len(w) > 1:
            ns.append(w[1])
        elif w[0] in ("search", "domain"):
            search = w[1:]
        elif w[0] == "options":
            opts.extend(w[1:])
    return ns, search, opts


def _loopback(ip: str) -> bool:
    if ":" not in ip and not ip.startswith("127."):
        return False  # not in 127/8 (ipaddress, ~2 ms to import, would say the same)
    import ipaddress

    try:
        return ipaddress.ip_address(ip.split("%")[0]).is_loopback
    except ValueError:
        return False


def resolv_conf(*, dns: list[str] | None, search: list[str] | None,
                options: list[str] | None, name_servers: list[str] | None = None,
                host_mode: bool = False, ipv6: bool = False,
                host_text: str | None = None) -> str:  # fmt: skip
    """/etc/resolv.conf.  `name_servers`: the aardvark-dns addresses of the container's
    networks with names (they forward the rest); `host_text`: the host's resolv.conf."""
    host = host_text if host_text is not None else _read("/etc/resolv.conf") or ""
    h_ns, h_search, h_opts = parse_resolv(host)
    if name_servers:
        servers = list(name_servers)
    elif dns:
        servers = list(dns)
    elif host_mode:
        servers = h_ns
    else:
        servers = [s for s in h_ns if not _loopback(s)]
        if not servers and any(_loopback(s) for s in h_ns):
            up = _read(RESOLVED_UPSTREAM)
            if up is not None:
                servers = [s for s in parse_resolv(up)[0] if not _loopback(s)]
        if not servers:
            servers = list(GOOGLE_V4) + (list(GOOGLE_V6) if ipv6 else [])
    srch = [d for d in (search if search else h_search) if d != "."]
    opts = list(options) if options else h_opts
    out = "".join(f"nameserver {s}\n" for s in servers)
    if srch:
        out += "search " + " ".join(srch) + "\n"
    if opts:
        out += "options " + " ".join(opts) + "\n"
    return out


def write(path: str, text: str) -> None:
    """Replace a file atomically (a reader sees the old or the new one), mode 0644."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.rename(tmp, path)


def rewrite(path: str, text: str) -> None:
    """Rewrite a file in place: a running container has it bind-mounted, and a rename would
    leave it the old inode.  (A reader may see it half-written, as with Docker's updates.)"""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW)
    with open(fd, "w", closefd=True) as f:
        f.write(text)


def _query(name: str, qid: int) -> bytes:
    import struct

    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack("!HH", 1, 1)


def answers(server: str, name: str, timeout: float = 0.2) -> bool | None:
    """Does the DNS server at `server`:53 answer `name` (type A) with at least one record?
    None when nothing listens there (yet) or no answer came in `timeout`."""
    import random
    import socket
    import struct

    qid = random.randrange(1 << 16)
    fam = socket.AF_INET6 if ":" in server else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.connect((server, 53))
            s.send(_query(name, qid))
            while True:
                data = s.recv(1500)
                if len(data) >= 12 and struct.unpack("!H", data[:2])[0] == qid:
                    return struct.unpack("!H", data[6:8])[0] > 0
        except OSError:  # refused (not listening yet), timed out
            return None


def wait_for_names(netns_path: str, servers: list[str], name: str, guard: float = 5.0) -> bool:
    """After netavark set a container up on networks with names: wait until aardvark-dns
    answers the container's name, asked from inside the container's namespace (netavark
    starts aardvark-dns, or makes it reload its config, and returns before it is ready: a
    container asking at once would get "connection refused" or no such name).  -> ready?
    (False after `guard` seconds: the container starts anyway.)"""
    import time

    from sangja.engine import netns

    def probe():
        end = time.monotonic() + guard
        while True:
            if all(answers(s, name) for s in servers):
                return True
            if time.monotonic() > end:
                return False
            time.sleep(0.01)

    return netns.run_in(netns_path, probe)
