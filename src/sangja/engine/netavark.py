"""netavark, podman's network backend (Debian's, /usr/lib/podman/netavark): what it is given
and how it is called.

`netavark --config DIR setup NETNS < options.json` makes the network's bridge (if it is not
there), a veth pair with one end in the container's namespace (addresses, routes), the
firewall rules (masquerade, the isolation between networks, DNAT for published ports) and,
on networks with DNS, adds the container's names to aardvark-dns's config and starts or
signals aardvark-dns (its config and pid file under DIR/aardvark-dns); it prints what it
made (interfaces, MACs, DNS servers).  `teardown` with the same options undoes it; the
bridge goes with its last container, aardvark-dns with the last container that has names.

sangja does the IPAM itself (netavark 1.4 takes static addresses only), so the options
carry each container's leased addresses.  Calls are serialized by a lock file: two
netavark processes making the same firewall chains at once race.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess

from sangja.engine.neterrors import NetworkError

_NETAVARK = ("/usr/lib/podman/netavark", "/usr/libexec/podman/netavark")
_AARDVARK = ("/usr/lib/podman/aardvark-dns", "/usr/libexec/podman/aardvark-dns")
TIMEOUT = 120  # a hang guard for one call


def _find(env: str, paths: tuple, what: str, package: str) -> str:
    p = os.environ.get(env)
    if p:
        return p
    for p in paths:
        if os.access(p, os.X_OK):
            return p
    raise NetworkError(f"{what} is not installed (looked for {', '.join(paths)}; Debian's"
                       f" package {package}; or set {env})")  # fmt: skip


def binary() -> str:
    return _find("SANGJA_NETAVARK", _NETAVARK, "netavark", "netavark")


def aardvark_binary() -> str:
    return _find("SANGJA_AARDVARK", _AARDVARK, "aardvark-dns", "aardvark-dns")


def network_info(net) -> dict:
    """A network's definition (engine/networks.py) as netavark's `Network`."""
    opts = {"isolate": "true"}  # Docker's: networks do not reach each other
    if net.mtu:
        opts["mtu"] = str(net.mtu)
    return {
        "name": net.name,
        "id": net.id,
        "driver": "bridge",
        "network_interface": net.interface,
        "subnets": [{"subnet": s["Subnet"], "gateway": s["Gateway"]} for s in net.subnets],
        "ipv6_enabled": net.ipv6,
        "internal": net.internal,
        "dns_enabled": net.dns,
        "options": opts,
    }


def options(cid: str, name: str, endpoints: list, ports: list, dns_servers: list) -> dict:
    """netavark's NetworkOptions.  `endpoints`: (network, ifindex, [addresses], mac,
    [aliases]); `ports`: netavark's port mappings (engine/ports.py)."""
    nets, info = {}, {}
    for net, ifindex, addrs, mac, aliases in endpoints:
        per = {"interface_name": f"eth{ifindex}", "static_ips": list(addrs),
               "aliases": list(aliases) if net.dns else []}  # fmt: skip
        if mac:
            per["static_mac"] = mac
        nets[net.name] = per
        info[net.name] = network_info(net)
    out = {"container_id": cid, "container_name": name, "networks": nets,
           "network_info": info, "port_mappings": list(ports)}  # fmt: skip
    if dns_servers:
        out["dns_servers"] = list(dns_servers)
    return out


@contextlib.contextmanager
def _locked(dirs):
    os.makedirs(dirs.base, mode=0o700, exist_ok=True)
    fd = os.open(dirs.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _call(dirs, verb: str, netns: str, opts: dict) -> str:
    from sangja import jsonio

    argv = [binary(), "--config", dirs.base, "--aardvark-binary", aardvark_binary(), verb, netns]
    with _locked(dirs):
        try:
            p = subprocess.run(argv, input=jsonio.dumps(opts), capture_output=True, text=True,
                               timeout=TIMEOUT)  # fmt: skip
        except subprocess.TimeoutExpired:
            raise NetworkError(f"netavark {verb}: no answer in {TIMEOUT}s")
        except OSError as e:
            raise NetworkError(f"netavark {verb}: {e.strerror}: {argv[0]}", errno=e.errno or 0)
    if p.returncode != 0:
        msg = ""
        try:
            msg = (jsonio.loads(p.stdout) or {}).get("error") or ""
        except ValueError:
            pass
        if not msg:
            lines = [ln for ln in (p.stderr or "").splitlines()
                     if ln.strip() and "connect to syslog" not in ln]  # fmt: skip
            msg = lines[-1] if lines else f"exit status {p.returncode}"
        raise NetworkError(f"netavark {verb}: {msg}")
    return p.stdout


def setup(dirs, netns: str, opts: dict) -> dict:
    """-> netavark's status: {network name: {"interfaces": {ifname: {"mac_address",
    "subnets": [{"ipnet", "gateway"}]}}, "dns_server_ips": [...], ...}}."""
    from sangja import jsonio

    if not opts["networks"]:
        return {}
    out = _call(dirs, "setup", netns, opts)
    try:
        return jsonio.loads(out) or {}
    except ValueError:
        raise NetworkError(f"netavark setup: unreadable answer: {out[:200]!r}")


def teardown(dirs, netns: str, opts: dict) -> None:
    if opts["networks"]:
        _call(dirs, "teardown", netns, opts)


def aardvark_pid(dirs) -> int | None:
    """The aardvark-dns serving this engine's networks, if it runs."""
    from sangja.runtime.state import proc_start_time

    try:
        with open(os.path.join(dirs.aardvark, "aardvark.pid")) as f:
            pid = int(f.read().strip() or 0)
    except (OSError, ValueError):
        return None
    return pid if pid and proc_start_time(pid) else None  # not a zombie either
