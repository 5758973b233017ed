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

By default the engine writes the firewall rules itself, in one batch (engine/firewall.py):
netavark then runs with a no-op `iptables` first on its PATH and writes none; with
`firewall = "netavark"` it runs the real one and writes its own.
"""

from __future__ import annotations

import fcntl
import os

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


class Call:
    """One netavark run, started now and waited for later (`wait`): the engine lets it set
    the namespace up while the runtime creates the container (the container's process
    does not run before `start`).  Holds the lock until it is waited for."""

    def __init__(self, dirs, verb: str, netns: str, opts: dict, own_firewall: bool = False):
        from sangja import jsonio
        from sangja.engine import children, firewall

        self.verb = verb
        argv = [binary(), "--config", dirs.base, "--aardvark-binary", aardvark_binary(),
                verb, netns]  # fmt: skip
        os.makedirs(dirs.base, mode=0o700, exist_ok=True)
        self._lock = os.open(dirs.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX)
            # its own PATH: netavark runs iptables by name, dozens of times per call (the
            # no-op one unless it writes the firewall itself); its options are in its stdin
            # before it starts, so it works while the engine goes on
            env = dict(os.environ, PATH=firewall.netavark_path(own_firewall))
            self.p = children.Child(argv, jsonio.dumps(opts).encode(), env)
        except OSError as e:
            os.close(self._lock)
            raise NetworkError(f"netavark {verb}: {e.strerror}: {argv[0]}", errno=e.errno or 0)
        except BaseException:
            os.close(self._lock)
            raise
        self._done = None  # (output, error) once waited for

    def wait(self) -> str:
        """-> netavark's output, or NetworkError with its message (the same again when
        called again: a teardown after a failed set-up abandons the call it waited for)."""
        if self._done is None:
            try:
                self._done = (self._wait(), None)
            except NetworkError as e:
                self._done = (None, e)
        out, err = self._done
        if err is not None:
            raise err
        return out

    def _wait(self) -> str:
        from sangja import jsonio
        from sangja.engine import children

        try:
            try:
                code, out, err = self.p.wait(TIMEOUT)
            except children.Timeout:
                raise NetworkError(f"netavark {self.verb}: no answer in {TIMEOUT}s")
        finally:
            os.close(self._lock)
        out, err = out.decode(errors="replace"), err.decode(errors="replace")
        if code != 0:
            msg = ""
            try:
                msg = (jsonio.loads(out) or {}).get("error") or ""
            except ValueError:
                pass
            if not msg:
                lines = [ln for ln in (err or "").splitlines()
                         if ln.strip() and "connect to syslog" not in ln]  # fmt: skip
                msg = lines[-1] if lines else f"exit status {code}"
            raise NetworkError(f"netavark {self.verb}: {msg}")
        return out

    def abandon(self) -> None:
        """The caller gave up (an error elsewhere): let it finish, ignore what it says."""
        try:
            self.wait()
        except NetworkError:
            pass


def status(out: str) -> dict:
    """netavark setup's answer: {network name: {"interfaces": {ifname: {"mac_address",
    "subnets": [{"ipnet", "gateway"}]}}, "dns_server_ips": [...], ...}}."""
    from sangja import jsonio

    try:
        return jsonio.loads(out) or {}
    except ValueError:
        raise NetworkError(f"netavark setup: unreadable answer: {out[:200]!r}")


def setup(dirs, netns: str, opts: dict, own_firewall: bool = False) -> dict:
    if not opts["networks"]:
        return {}
    return status(Call(dirs, "setup", netns, opts, own_firewall).wait())


def teardown(dirs, netns: str, opts: dict, own_firewall: bool = False) -> None:
    if opts["networks"]:
        Call(dirs, "teardown", netns, opts, own_firewall).wait()


def aardvark_pid(dirs) -> int | None:
    """The aardvark-dns serving this engine's networks, if it runs."""
    from sangja.runtime.state import proc_start_time

    try:
        with open(os.path.join(dirs.aardvark, "aardvark.pid")) as f:
            pid = int(f.read().strip() or 0)
    except (OSError, ValueError):
        return None
    return pid if pid and proc_start_time(pid) else None  # not a zombie either
