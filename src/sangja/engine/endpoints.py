"""A container's networks: its endpoints on networks (made when it is created or connected),
the network namespace and netavark set-up of each run, and Docker's views of them.

The container's network mode is Docker's HostConfig.NetworkMode:
  bridge (default)    endpoints on networks (the default `bridge`, user networks; several);
  none                a network namespace of its own with lo only;
  host                the host's namespace: nothing to set up;
  container:<id>      the namespace of another container, which must be running.

A run, in this order (so that a `kill -9` anywhere leaves what `teardown` removes):
  1. one transaction: the addresses leased (net_endpoints.ipv4/ipv6, ipam.py), the host
     ports chosen (net_ports, ports.py), a `net_sandboxes` row naming the namespace;
  2. the namespace made and bind-mounted (netns.py);
  3. netavark setup (bridge, veth, routes, DNS names) and, beside it, the container's
     firewall rules in one iptables-restore (firewall.py; with `firewall = "netavark"`
     netavark's own driver writes them, and a marker file says so until the teardown).
`teardown` undoes whatever is there: netavark teardown from the rows (the same options as
the setup: networks are immutable and their rows outlive the run), the rules tagged with
the container's id, the namespace unmounted, then the leases and ports released and the
sandbox row removed in one transaction.  It is idempotent, and the engine calls it before
each start and when a container stops or is removed.

Ports are published on the container's first non-internal network (sangja's rules); with
netavark's driver on every network it is on (Docker's first network wins a host port:
netavark's DNAT rules are in the order the networks were set up).
"""

from __future__ import annotations

import os
import time

from sangja import jsonio
from sangja.engine import netns as nsmod
from sangja.engine.failpoints import failpoint
from sangja.engine.neterrors import (
    NetworkConflict,
    NetworkError,
    NetworkInvalid,
    NetworkNotFound,
)
from sangja.engine.netns import RunDirs
from sangja.engine.networks import Network, Networks

MAX_NAMESERVERS = 3


def network_mode(hc: dict) -> str:
    mode = (hc or {}).get("NetworkMode") or "default"
    return "bridge" if mode == "default" else mode


def dns_defaults(hc: dict) -> tuple[list, list, list]:
    """(servers, search domains, options) for the container's resolv.conf: each of its own
    --dns/--dns-search/--dns-option, else the config file's dns/dns-search/dns-opts (as
    dockerd's daemon.json: read at each start, not kept in the container's HostConfig)."""
    from sangja import settings

    return (hc.get("Dns") or settings.get("dns") or [],
            hc.get("DnsSearch") or settings.get("dns-search") or [],
            hc.get("DnsOptions") or settings.get("dns-opts") or [])  # fmt: skip


def _container_mode(mode: str) -> str | None:
    return mode.split(":", 1)[1] if mode.startswith("container:") else None


class Endpoint:
    """One row of net_endpoints with its network."""

    __slots__ = ("container", "net", "ifindex", "id", "config", "ipv4", "ipv6", "mac",
                 "last_ipv4", "last_ipv6")  # fmt: skip

    def __init__(self, row, net: Network):
        (self.container, _, self.ifindex, self.id, config, self.ipv4, self.ipv6, self.mac,
         self.last_ipv4, self.last_ipv6) = row  # fmt: skip
        self.config = jsonio.loads(config) or {}
        self.net = net

    @property
    def active(self) -> bool:
        return bool(self.ipv4 or self.ipv6 or self.mac)

    @property
    def aliases(self) -> list[str]:
        return list(self.config.get("Aliases") or [])

    @property
    def addresses(self) -> list[str]:
        return [a for a in (self.ipv4, self.ipv6) if a]

    def static(self, version: int) -> str:
        cfg = self.config.get("IPAMConfig") or {}
        return cfg.get("IPv4Address" if version == 4 else "IPv6Address") or ""


_EP_COLS = "container, network, ifindex, id, config, ipv4, ipv6, mac, last_ipv4, last_ipv6"


class Sandbox:
    """What a run's network set-up gives the engine: the namespace for config.json (None:
    the host's), the etc files' contents (None for `container:X`, which shares X's:
    `share`), and what was published."""

    __slots__ = ("mode", "netns", "hostname", "hosts", "resolv", "share", "ports", "pending",
                 "eps", "extra")  # fmt: skip

    def __init__(self, mode, netns, hostname=None, hosts=None, resolv=None, share=None,
                 ports=()):  # fmt: skip
        self.mode, self.netns = mode, netns
        self.hostname, self.hosts, self.resolv = hostname, hosts, resolv
        self.share, self.ports = share, list(ports)
        self.pending = None  # (netavark call, rules, endpoints, name): see Endpoints.finish
        self.eps, self.extra = [], []  # for the etc files (Endpoints.files)


class Endpoints:
    def __init__(self, store, runtime_root: str = "/run/sangja"):
        self.store = store
        self.nets = Networks(store)
        self.dirs = RunDirs(runtime_root)
        self._pending: dict = {}  # container -> (its netavark setup, its rules) still running

    @property
    def db(self):
        return self.nets.db

    # ---- reading ------------------------------------------------------------------------
    def endpoints(self, cid: str) -> list[Endpoint]:
        rows = self.db.execute(f"SELECT {_EP_COLS} FROM net_endpoints WHERE container=?"
                               " ORDER BY ifindex", (cid,)).fetchall()  # fmt: skip
        out = []
        for r in rows:
            net = self.nets.by_id(r[1])
            if net is not None:
                out.append(Endpoint(r, net))
        return out

    def sandbox(self, cid: str) -> tuple[str, str] | None:
        """(mode, netns path) of the container's current run, if its network is set up."""
        r = self.db.execute("SELECT mode, netns FROM net_sandboxes WHERE container=?",
                            (cid,)).fetchone()  # fmt: skip
        return (r[0], r[1]) if r else None

    def mappings(self, cid: str):
        from sangja.engine.ports import Mapping

        rows = self.db.execute("SELECT proto, host_ip, host_port, container_port FROM net_ports"
                               " WHERE container=? ORDER BY rowid", (cid,))  # fmt: skip
        return [Mapping(*r) for r in rows]

    # ---- create -------------------------------------------------------------------------
    def validate(self, body: dict, resolve_container=None) -> None:
        """Everything about networks in a ContainerCreate body, checked before anything is
        made (InvalidArgument-like errors naming the problem, Docker's texts)."""
        from sangja.engine import dns, ports

        cfg = body.get("Config") or {}
        hc = body.get("HostConfig") or {}
        eps = ((body.get("NetworkingConfig") or {}).get("EndpointsConfig")) or {}
        mode = network_mode(hc)
        ports.check_bindings(hc.get("PortBindings"))
        for p in cfg.get("ExposedPorts") or {}:
            ports.parse_expose(p)
        for h in hc.get("ExtraHosts") or ():
            dns.parse_extra_host(h)
        dns.check_dns(hc.get("Dns"))
        dns.check_search(hc.get("DnsSearch"))
        mac = cfg.get("MacAddress") or ""
        if mac:
            from sangja.engine import ipam

            ipam.check_mac(mac)
        other = _container_mode(mode)
        if other is not None:
            if not other:
                raise NetworkInvalid("--network container: needs a container name or id")
            for key, what in (("PortBindings", "port publishing"), ("Dns", "dns"),
                              ("DnsSearch", "dns"), ("DnsOptions", "dns"),
                              ("ExtraHosts", "custom host-to-IP mapping")):  # fmt: skip
                if hc.get(key):
                    raise NetworkInvalid(f"conflicting options: {what} and the container type"
                                         " network mode")  # fmt: skip
            if hc.get("PublishAllPorts"):
                raise NetworkInvalid("conflicting options: port publishing and the container"
                                     " type network mode")  # fmt: skip
            if cfg.get("Hostname"):
                raise NetworkInvalid("conflicting options: hostname and the network mode")
            if mac:
                raise NetworkInvalid("conflicting options: mac-address and the network mode")
            if eps:
                raise NetworkInvalid(
                    "container sharing network namespace with another container cannot be"
                    " connected to any other network"
                )
            if resolve_container is not None:
                resolve_container(other)
            return
        if mode in ("host", "none"):
            if mac:
                raise NetworkInvalid("conflicting options: mac-address and the network mode")
            for name, ep in eps.items():
                if name != mode:
                    raise NetworkInvalid(f"container cannot be disconnected from {mode} network"
                                         " or connected to another network")  # fmt: skip
                if (ep or {}).get("Aliases"):
                    raise NetworkInvalid("network-scoped alias is supported only for containers"
                                         " in user defined networks")  # fmt: skip
                if (ep or {}).get("MacAddress"):
                    raise NetworkInvalid("conflicting options: mac-address and the network mode")
                if (ep or {}).get("IPAMConfig"):
                    raise NetworkInvalid("user specified IP address is supported on user"
                                         " defined networks only")  # fmt: skip
            return
        seen = set()
        for i, (ref, ep) in enumerate(self._requested(hc, eps)):
            net = self.nets.get(ref)
            if net.driver != "bridge":
                raise NetworkInvalid(f"network {net.name} cannot be combined with other networks")
            if net.id in seen:
                raise NetworkInvalid(f"network {net.name} is given twice")
            seen.add(net.id)
            self._check_endpoint(net, ep or {}, mac if i == 0 else "")

    def _check_endpoint(self, net: Network, ep: dict, mac: str = "") -> None:
        import ipaddress

        from sangja.engine import ipam

        ipc = ep.get("IPAMConfig") or {}
        v4, v6 = ipc.get("IPv4Address") or "", ipc.get("IPv6Address") or ""
        if (v4 or v6) and not net.user_defined:
            raise NetworkInvalid("user specified IP address is supported on user defined"
                                 " networks only")  # fmt: skip
        if ep.get("Aliases") and not net.user_defined:
            raise NetworkInvalid("network-scoped alias is supported only for containers in"
                                 " user defined networks")  # fmt: skip
        for a, ver in ((v4, 4), (v6, 6)):
            if not a:
                continue
            ip = ipam.address(a, f"IPv{ver} address")
            if ip.version != ver:
                raise NetworkInvalid(f"invalid IPv{ver} address: {a}")
            sub = net.subnet_of(ver)
            if sub is None or (ver == 6 and not net.ipv6):
                raise NetworkInvalid(f"network {net.name} has no IPv{ver} subnet for {a}")
            if ip not in ipaddress.ip_network(sub["Subnet"]):
                raise NetworkInvalid(f"no configured subnet or ip-range contain the IP address"
                                     f" {a}")  # fmt: skip
        m = ep.get("MacAddress") or mac
        if m:
            ipam.check_mac(m)

    @staticmethod
    def _requested(hc: dict, eps: dict) -> list[tuple[str, dict]]:
        """(network ref, EndpointSettings) in interface order: NetworkMode's first."""
        mode = network_mode(hc)
        first = eps.get(mode)
        if first is None and mode == "bridge":
            first = eps.get("default")
        out = [(mode, first or {})]
        for ref, ep in eps.items():
            if ref not in (mode, "default" if mode == "bridge" else mode):
                out.append((ref, ep or {}))
        return out

    def attach(self, cid: str, body: dict) -> None:
        """The endpoints the body asks for, as rows (container create).  Checked already
        (validate); a network removed meanwhile is NetworkNotFound and nothing is made."""
        cfg = body.get("Config") or {}
        hc = body.get("HostConfig") or {}
        eps = ((body.get("NetworkingConfig") or {}).get("EndpointsConfig")) or {}
        mode = network_mode(hc)
        if mode in ("host", "none") or _container_mode(mode) is not None:
            return
        wanted = []
        for i, (ref, ep) in enumerate(self._requested(hc, eps)):
            ep = dict(ep or {})
            if i == 0 and cfg.get("MacAddress") and not ep.get("MacAddress"):
                ep["MacAddress"] = cfg["MacAddress"]
            wanted.append((self.nets.get(ref), ep))
        with self._transaction() as tx:
            for i, (net, ep) in enumerate(wanted):
                if tx.execute("SELECT 1 FROM networks WHERE id=?", (net.id,)).fetchone() is None:
                    raise NetworkNotFound(f"network {net.name} not found")
                self._insert(tx, cid, net, i, ep)

    @staticmethod
    def _insert(tx, cid: str, net: Network, ifindex: int, ep: dict) -> None:
        keep = {k: ep[k] for k in ("IPAMConfig", "Aliases", "MacAddress", "DriverOpts", "Links")
                if ep.get(k)}  # fmt: skip
        tx.execute(
            f"INSERT INTO net_endpoints ({_EP_COLS}) VALUES (?,?,?,?,?,NULL,NULL,NULL,NULL,NULL)",
            (cid, net.id, ifindex, os.urandom(32).hex(), jsonio.dumps(keep)),
        )

    def forget(self, cid: str) -> list[str]:
        """The container is removed: its run torn down, its endpoints gone. -> warnings."""
        return self.teardown(cid, forget=True)

    def _transaction(self):
        """The endpoints' rows (leases, ports, sandboxes) are a container's run-time state:
        committed as its record is, without waiting for the disk (Store.transaction)."""
        return self.nets.transaction(durable=False)

    # ---- a run --------------------------------------------------------------------------
    def setup(self, cid: str, name: str, body: dict, *, hostname: str | None,
              image_exposed=(), resolve_container=None,
              defer: bool = False) -> Sandbox:  # fmt: skip
        """Set the container's network up for a run (see the module's doc).  Whatever a
        previous run left is torn down first.  `resolve_container(ref)` -> the id of a
        `container:` mode's container (the engine's resolution).  `defer`: netavark still
        runs when this returns (the namespace exists, the etc files are known): the caller
        creates the container meanwhile and calls `finish` before starting it.  Without a
        `hostname` the etc files are left to `files` (the caller knows it later)."""
        hc = body.get("HostConfig") or {}
        mode = network_mode(hc)
        if self.sandbox(cid) is not None or cid in self._pending:
            self.teardown(cid)
        other = _container_mode(mode)
        if other is not None:
            oid = resolve_container(other) if resolve_container else other
            sb = self.sandbox(oid)
            if sb is None or (sb[1] and not nsmod.is_netns(sb[1])):
                raise NetworkConflict(f"cannot join network of a non running container: {other}")
            with self._transaction() as tx:
                tx.execute("INSERT INTO net_sandboxes VALUES (?,?,?,?)",
                           (cid, f"container:{oid}", sb[1], time.time()))  # fmt: skip
            return Sandbox(mode, sb[1] or None, share=oid)
        extra = [self._extra_host(h, cid) for h in hc.get("ExtraHosts") or ()]
        if mode == "host":
            with self._transaction() as tx:
                tx.execute("INSERT INTO net_sandboxes VALUES (?,?,?,?)",
                           (cid, "host", "", time.time()))  # fmt: skip
            sb = Sandbox(mode, None)
            sb.extra = extra
            return self.files(sb, body, hostname) if hostname is not None else sb
        path = self.dirs.netns(cid)
        try:
            if mode == "none":
                with self._transaction() as tx:
                    tx.execute("INSERT INTO net_sandboxes VALUES (?,?,?,?)",
                               (cid, "none", path, time.time()))  # fmt: skip
                nsmod.create(path)
                sb = Sandbox(mode, path)
                sb.extra = extra
                return self.files(sb, body, hostname) if hostname is not None else sb
            eps, mappings = self._lease(cid, body, path, image_exposed)
            failpoint("net:leased")
            nsmod.create(path)
            failpoint("net:netns")
            sb = Sandbox(mode, path, ports=mappings)
            sb.eps, sb.extra = eps, extra
            if hostname is not None:
                self.files(sb, body, hostname)
            if eps:
                from sangja.engine import firewall, netavark, ports

                own = self._mark_firewall(cid, firewall.driver() == "netavark")
                opts = self._options(cid, name, eps, mappings, dns_defaults(hc)[0])
                call = netavark.Call(self.dirs, "setup", path, opts, own)
                fw = None
                try:  # the rules are written while netavark works
                    if not own:
                        fw = firewall.Setup(cid, [ep for ep in eps if ep.active],
                                            ports.netavark_mappings(mappings))  # fmt: skip
                finally:
                    self._pending[cid] = (call, fw)
                    self._note_pending(cid, [call.p.pid] + (fw.pids() if fw else []))
                sb.pending = (call, fw, eps, name)
                failpoint("net:started")
            if not defer:
                self.finish(cid, sb)
            return sb
        except BaseException:
            try:
                self.teardown(cid)
            except Exception:  # the first error is the one to report
                pass
            raise

    def finish(self, cid: str, sb: Sandbox) -> None:
        """Wait for the set-up `setup(defer=True)` left running: netavark's answer (MACs it
        chose), aardvark-dns answering the container's name.  An error tears it all down."""
        if sb.pending is None:
            return
        from sangja.engine import netavark

        call, fw, eps, name = sb.pending
        sb.pending = None
        try:
            try:
                out = call.wait()
            finally:
                if fw is not None and call.p.returncode:
                    fw.abandon()
            if fw is not None:
                fw.wait()
            self._note_pending(cid, [])
            status = netavark.status(out)
            self._pending.pop(cid, None)
            failpoint("net:setup")
            self._record_macs(cid, eps, status)
            self._wait_dns(sb.netns, eps, name)
        except BaseException:
            try:
                self.teardown(cid)
            except Exception:
                pass
            raise

    def _note_pending(self, cid: str, pids: list[int]) -> None:
        """Note the set-up processes a run started (none: forget them).  A run killed
        before it waited for them leaves them working; the teardown that follows waits
        for them first (`_await_orphans`), or it could undo the set-up before they make
        it, and their bridge port and rules would stay."""
        path = self.dirs.pending(cid)
        if not pids:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            return
        from sangja.runtime.state import proc_start_time

        procs = [(p, proc_start_time(p)) for p in pids]
        lines = "".join(f"{p}:{t}\n" for p, t in procs if t)  # a zombie already ended
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with open(path, "w") as f:
            f.write(lines)

    def _await_orphans(self, cid: str) -> None:
        """Wait until the set-up processes a killed run left (`_note_pending`) end."""
        from sangja.engine.netavark import TIMEOUT
        from sangja.runtime.state import pidfd_for, wait_pidfd

        try:
            with open(self.dirs.pending(cid)) as f:
                procs = [ln.split(":") for ln in f.read().split()]
        except FileNotFoundError:
            return
        deadline = time.monotonic() + TIMEOUT
        for pid, start in procs:
            fd = pidfd_for({"pid": int(pid), "pid_start": int(start)})  # None: gone
            if fd is not None:
                try:
                    wait_pidfd(fd, max(deadline - time.monotonic(), 0))
                finally:
                    os.close(fd)
        self._note_pending(cid, [])

    def _lease(self, cid: str, body: dict, path: str, image_exposed) -> tuple:
        """Step 1: addresses, ports and the sandbox row, in one transaction."""
        from sangja.engine import ports

        cfg = body.get("Config") or {}
        hc = body.get("HostConfig") or {}
        eps = self.endpoints(cid)
        with self._transaction() as tx:
            for ep in eps:
                self._lease_one(tx, ep)
            mappings = []
            if eps:
                exposed = sorted(set(cfg.get("ExposedPorts") or {}) | set(image_exposed or ()))
                used = tx.execute("SELECT proto, host_ip, host_port FROM net_ports"
                                  " WHERE container != ?", (cid,)).fetchall()  # fmt: skip
                from sangja.engine.networks import default_host_ip

                mappings = ports.resolve(hc.get("PortBindings"), exposed,
                                         bool(hc.get("PublishAllPorts")), used,
                                         default_host_ip(eps[0].net))  # fmt: skip
                for m in mappings:
                    tx.execute("INSERT INTO net_ports VALUES (?,?,?,?,?)", (cid, *m.key()))
            tx.execute("INSERT INTO net_sandboxes VALUES (?,?,?,?)",
                       (cid, "bridge", path, time.time()))  # fmt: skip
        return eps, mappings

    def _lease_one(self, tx, ep: Endpoint) -> None:
        """Addresses (and the MAC) for one endpoint, inside the caller's transaction."""
        from sangja.engine import ipam

        net = ep.net
        got = {}
        for ver, col, last in ((4, "ipv4", ep.last_ipv4), (6, "ipv6", ep.last_ipv6)):
            sub = net.subnet_of(ver)
            if sub is None or (ver == 6 and not net.ipv6):
                got[col] = None
                continue
            used = {r[0] for r in tx.execute(
                f"SELECT {col} FROM net_endpoints WHERE network=? AND {col} IS NOT NULL"
                " AND container != ?", (net.id, ep.container))}  # fmt: skip
            cur = tx.execute("SELECT last FROM ipam_cursors WHERE network=? AND subnet=?",
                             (net.id, sub["Subnet"])).fetchone()  # fmt: skip
            addr = ipam.allocate(sub, used, cur[0] if cur else None, static=ep.static(ver),
                                 prefer=last, what=f" (network {net.name})")  # fmt: skip
            got[col] = addr
            if not ep.static(ver) and addr != last:
                tx.execute("INSERT OR REPLACE INTO ipam_cursors VALUES (?,?,?)",
                           (net.id, sub["Subnet"], addr))  # fmt: skip
        mac = ep.config.get("MacAddress") or ipam.mac_for(got.get("ipv4")) or ""
        tx.execute("UPDATE net_endpoints SET ipv4=?, ipv6=?, mac=? WHERE container=? AND"
                   " network=?", (got["ipv4"], got["ipv6"], mac or None, ep.container,
                                  net.id))  # fmt: skip
        ep.ipv4, ep.ipv6, ep.mac = got["ipv4"], got["ipv6"], mac or None

    def _options(self, cid: str, name: str, eps: list[Endpoint], mappings, dns_servers) -> dict:
        from sangja.engine import netavark, ports

        items = [(ep.net, ep.ifindex, ep.addresses, ep.mac, ep.aliases + [cid[:12]])
                 for ep in eps]  # fmt: skip
        return netavark.options(cid, name, items, ports.netavark_mappings(mappings),
                                list(dns_servers or ()))  # fmt: skip

    def _record_macs(self, cid: str, eps: list[Endpoint], status: dict) -> None:
        """MACs netavark chose (IPv6-only networks: no IPv4 to derive one from)."""
        todo = []
        for ep in eps:
            if ep.mac:
                continue
            ifs = (status.get(ep.net.name) or {}).get("interfaces") or {}
            mac = (ifs.get(f"eth{ep.ifindex}") or {}).get("mac_address")
            if mac:
                ep.mac = mac
                todo.append((mac, cid, ep.net.id))
        if todo:
            with self._transaction() as tx:
                tx.executemany("UPDATE net_endpoints SET mac=? WHERE container=? AND network=?",
                               todo)  # fmt: skip

    @staticmethod
    def _wait_dns(path: str, eps: list[Endpoint], name: str) -> None:
        from sangja.engine import dns

        servers = [ep.net.gateway(4) if ep.ipv4 else ep.net.gateway(6)
                   for ep in eps if ep.active and ep.net.dns]  # fmt: skip
        if servers and name:
            dns.wait_for_names(path, servers, name)

    def _extra_host(self, item: str, cid: str) -> tuple[str, str]:
        from sangja.engine import dns

        name, ip = dns.parse_extra_host(item)
        if ip == dns.HOST_GATEWAY:
            ip = self.host_gateway(cid)
        return name, ip

    def host_gateway(self, cid: str) -> str:
        """What `host-gateway` means for the container: the gateway of its first network
        (the host's address on that bridge); without one, the default bridge's."""
        for ep in self.endpoints(cid):
            gw = ep.net.gateway(4) or ep.net.gateway(6)
            if gw:
                return gw
        return self.nets.get("bridge").gateway(4)

    def files(self, sb: Sandbox, body: dict, hostname: str) -> Sandbox:
        """The etc files' contents for the container whose hostname is `hostname`."""
        from sangja.engine import dns

        cfg = body.get("Config") or {}
        hc = body.get("HostConfig") or {}
        extra = sb.extra
        if sb.mode == "host":
            sb.hostname = dns.hostname_file(hostname)
            sb.hosts = dns.hosts_file(hostname, cfg.get("Domainname") or "", [], extra,
                                      host_mode=True)  # fmt: skip
            servers, search, options = dns_defaults(hc)
            sb.resolv = dns.resolv_conf(dns=servers, search=search, options=options,
                                        host_mode=True)  # fmt: skip
            return sb
        active = [ep for ep in sb.eps if ep.active]
        addrs = active[0].addresses if active else []
        servers = []
        for ep in active:
            if ep.net.dns:
                gw = ep.net.gateway(4) if ep.ipv4 else ep.net.gateway(6)
                if gw and gw not in servers:
                    servers.append(gw)
        sb.hostname = dns.hostname_file(hostname)
        sb.hosts = dns.hosts_file(hostname, cfg.get("Domainname") or "", addrs, extra)
        dns_servers, search, options = dns_defaults(hc)
        sb.resolv = dns.resolv_conf(dns=dns_servers, search=search, options=options,
                                    name_servers=servers[:MAX_NAMESERVERS],
                                    ipv6=any(ep.ipv6 for ep in active))  # fmt: skip
        return sb

    def current_files(self, cid: str, body: dict, hostname: str) -> Sandbox | None:
        """The etc files for the networks a running container is on now (after a connect
        or a disconnect); None unless its own bridge-mode network is set up."""
        sb = self.sandbox(cid)
        if sb is None or sb[0] != "bridge":
            return None
        box = Sandbox("bridge", sb[1])
        box.eps = self.endpoints(cid)
        hc = body.get("HostConfig") or {}
        box.extra = [self._extra_host(h, cid) for h in hc.get("ExtraHosts") or ()]
        return self.files(box, body, hostname)

    def teardown(self, cid: str, forget: bool = False) -> list[str]:
        """Undo the run's network set-up, whatever of it there is (idempotent).  ->
        warnings (netavark's errors: what it could not undo is removed with the namespace
        and, for a bridge no other container uses, by deleting the device).  `forget`:
        the endpoints' rows go too, in the same transaction (the container is removed)."""
        warnings = []
        pending = self._pending.pop(cid, None)
        if pending is not None:  # a deferred setup this process started: let it end first
            pending[0].abandon()
            if pending[1] is not None:
                pending[1].abandon()
        self._await_orphans(cid)
        sb = self.sandbox(cid)
        own = self.dirs.netns(cid)
        if sb is not None and sb[0] == "bridge":
            eps = [ep for ep in self.endpoints(cid) if ep.active]
            own_fw = os.path.exists(self.dirs.firewall_mark(cid))
            # nothing but lo: netavark never ran (killed before it), nothing to undo
            if eps and nsmod.is_netns(sb[1]) and nsmod.links(sb[1]) != ["lo"]:
                from sangja.engine import netavark

                try:
                    netavark.teardown(self.dirs, sb[1], self._options(
                        cid, "", eps, self.mappings(cid), ()), own_fw)  # fmt: skip
                except NetworkError as e:
                    warnings.append(str(e))
                    self._drop_unused_bridges(cid, eps)
            if eps and not own_fw:  # also what a set-up killed half-way wrote
                from sangja.engine import firewall

                try:
                    firewall.teardown(cid, _families(eps))
                except NetworkError as e:
                    warnings.append(str(e))
        self._mark_firewall(cid, False)
        nsmod.remove(own)  # never another container's (container:X shares X's)
        # held: leases (any endpoint row at all when it is to be forgotten) or ports
        held = "" if forget else " AND (ipv4 IS NOT NULL OR ipv6 IS NOT NULL OR mac IS NOT NULL)"
        if sb is None and self.db.execute(
            f"SELECT 1 FROM net_endpoints WHERE container=?{held}"
            " UNION ALL SELECT 1 FROM net_ports WHERE container=?", (cid, cid),
        ).fetchone() is None:  # fmt: skip
            return warnings  # nothing held: no write (every start tears down first)
        with self._transaction() as tx:
            if forget:
                tx.execute("DELETE FROM net_endpoints WHERE container=?", (cid,))
            else:
                tx.execute(
                    "UPDATE net_endpoints SET last_ipv4=COALESCE(ipv4, last_ipv4),"
                    " last_ipv6=COALESCE(ipv6, last_ipv6), ipv4=NULL, ipv6=NULL, mac=NULL"
                    " WHERE container=?", (cid,))  # fmt: skip
            tx.execute("DELETE FROM net_ports WHERE container=?", (cid,))
            tx.execute("DELETE FROM net_sandboxes WHERE container=?", (cid,))
        return warnings

    def _mark_firewall(self, cid: str, own: bool) -> bool:
        """Record (or clear) that netavark writes this container's firewall rules, so its
        teardown runs the same way whatever the config file says by then. -> `own`."""
        mark = self.dirs.firewall_mark(cid)
        if own:
            os.makedirs(os.path.dirname(mark), mode=0o700, exist_ok=True)
            with open(mark, "w"):
                pass
        else:
            try:
                os.unlink(mark)
            except FileNotFoundError:
                pass
        return own

    def _drop_unused_bridges(self, cid: str, eps: list[Endpoint]) -> None:
        from sangja.engine.networks import remove_device

        for ep in eps:
            others = self.db.execute(
                "SELECT 1 FROM net_endpoints WHERE network=? AND container != ? AND"
                " (ipv4 IS NOT NULL OR ipv6 IS NOT NULL OR mac IS NOT NULL)",
                (ep.net.id, cid),
            ).fetchone()
            if others is None:
                remove_device(ep.net.interface)

    def sweep(self) -> list[str]:
        """Endpoints and set-ups of containers the store no longer has (a removal killed
        between its steps): torn down and forgotten.  -> their ids.  A build step's
        (`build-<id>`, no record) is left to the build sweep (engine/build/workspace.py)."""
        db = self.db
        if db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='containers'"
                      ).fetchone() is None:  # fmt: skip
            return []
        gone = [r[0] for r in db.execute(
            "SELECT container FROM net_endpoints UNION SELECT container FROM net_sandboxes"
            " EXCEPT SELECT id FROM containers") if not r[0].startswith("build-")]  # fmt: skip
        for cid in gone:
            self.forget(cid)
        return gone

    # ---- connect / disconnect ------------------------------------------------------------
    def connect(self, cid: str, name: str, ref: str, ep: dict | None = None,
                mode: str = "bridge", host_config: dict | None = None) -> Endpoint:  # fmt: skip
        """NetworkConnect: a new endpoint; set up at once if the container's network is
        (it runs).  `mode`: the container's NetworkMode; `host_config`: its HostConfig
        (the DNS servers aardvark-dns forwards to: --dns, else the config file's)."""
        net = self.nets.get(ref)
        mode = network_mode({"NetworkMode": mode})
        if net.driver != "bridge":
            raise NetworkInvalid(f"container cannot be disconnected from host network or"
                                 f" connected to {net.name} network")  # fmt: skip
        if mode in ("host", "none") or _container_mode(mode) is not None:
            raise NetworkInvalid("container sharing network namespace with another container or"
                                 " host cannot be connected to any other network")  # fmt: skip
        ep = dict(ep or {})
        self._check_endpoint(net, ep)
        with self._transaction() as tx:
            if tx.execute("SELECT 1 FROM net_endpoints WHERE container=? AND network=?",
                          (cid, net.id)).fetchone():  # fmt: skip
                raise NetworkConflict(f"endpoint with name {name} already exists in network"
                                      f" {net.name}")  # fmt: skip
            taken = {r[0] for r in tx.execute(
                "SELECT ifindex FROM net_endpoints WHERE container=?", (cid,))}  # fmt: skip
            idx = next(i for i in range(len(taken) + 1) if i not in taken)
            self._insert(tx, cid, net, idx, ep)
        sb = self.sandbox(cid)
        if sb is None or sb[0] != "bridge" or not nsmod.is_netns(sb[1]):
            return self._endpoint(cid, net.id)
        new = self._endpoint(cid, net.id)
        try:
            with self._transaction() as tx:
                self._lease_one(tx, new)
            from sangja.engine import firewall, netavark

            servers = dns_defaults(host_config or {})[0]
            own = os.path.exists(self.dirs.firewall_mark(cid))
            opts = self._options(cid, name, [new], self.mappings(cid), servers)
            status = netavark.setup(self.dirs, sb[1], opts, own)
            if not own:  # the ports stay on the network they were published on
                firewall.Setup(cid, [new], []).wait()
            self._record_macs(cid, [new], status)
            self._wait_dns(sb[1], [new], name)
        except BaseException:
            try:
                self._release(cid, new, sb[1], name)
            finally:
                with self._transaction() as tx:
                    tx.execute("DELETE FROM net_endpoints WHERE container=? AND network=?",
                               (cid, net.id))  # fmt: skip
            raise
        return self._endpoint(cid, net.id)

    def _endpoint(self, cid: str, nid: str) -> Endpoint:
        r = self.db.execute(f"SELECT {_EP_COLS} FROM net_endpoints WHERE container=? AND"
                            " network=?", (cid, nid)).fetchone()  # fmt: skip
        return Endpoint(r, self.nets.by_id(nid))

    def _release(self, cid: str, ep: Endpoint, path: str, name: str) -> None:
        from sangja.engine import firewall, netavark

        own = os.path.exists(self.dirs.firewall_mark(cid))
        if ep.active and nsmod.is_netns(path):
            try:
                opts = self._options(cid, name, [ep], self.mappings(cid), ())
                netavark.teardown(self.dirs, path, opts, own)
            except NetworkError:
                self._drop_unused_bridges(cid, [ep])
        if ep.active and not own:
            try:
                firewall.teardown(cid, _families([ep]), ep.net.id)
            except NetworkError:
                pass  # gone with the container's teardown, which reports it
        with self._transaction() as tx:
            tx.execute("UPDATE net_endpoints SET ipv4=NULL, ipv6=NULL, mac=NULL WHERE"
                       " container=? AND network=?", (cid, ep.net.id))  # fmt: skip

    def disconnect(self, cid: str, name: str, ref: str) -> None:
        """NetworkDisconnect: the endpoint torn down (if set up) and removed."""
        net = self.nets.get(ref)
        row = self.db.execute("SELECT 1 FROM net_endpoints WHERE container=? AND network=?",
                              (cid, net.id)).fetchone()  # fmt: skip
        if row is None:
            if net.driver != "bridge":
                raise NetworkInvalid(f"container cannot be disconnected from {net.name}"
                                     " network")  # fmt: skip
            raise NetworkConflict(f"container {name or cid} is not connected to network"
                                  f" {net.name}")  # fmt: skip
        ep = self._endpoint(cid, net.id)
        sb = self.sandbox(cid)
        if sb is not None and sb[0] == "bridge":
            self._release(cid, ep, sb[1], name)
        with self._transaction() as tx:
            tx.execute("DELETE FROM net_endpoints WHERE container=? AND network=?",
                       (cid, net.id))  # fmt: skip

    # ---- Docker's views -----------------------------------------------------------------
    def settings(self, cid: str, name: str, body: dict, image_exposed=()) -> dict:
        """Docker's NetworkSettings of the container (inspect)."""
        import hashlib

        from sangja.engine import ports

        hc = body.get("HostConfig") or {}
        cfg = body.get("Config") or {}
        mode = network_mode(hc)
        sb = self.sandbox(cid)
        eps = self.endpoints(cid)
        exposed = sorted(set(cfg.get("ExposedPorts") or {}) | set(image_exposed or ()),
                         key=lambda p: (int(p.split("/")[0]), p))  # fmt: skip
        maps = self.mappings(cid)
        key = sb[1] if sb else ""
        out = {
            "Bridge": "", "SandboxID": hashlib.sha256(key.encode()).hexdigest() if key else "",
            "SandboxKey": key, "HairpinMode": False, "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "Ports": ports.docker_ports(maps, exposed, any(ep.ipv6 for ep in eps)),
            "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
            "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "",
            "Networks": {},
        }  # fmt: skip
        if mode in ("host", "none"):
            net = self.nets.get(mode)
            out["Networks"][mode] = _docker_endpoint(net, None, name, cid)
            return out
        for ep in eps:
            d = _docker_endpoint(ep.net, ep, name, cid)
            out["Networks"][ep.net.name] = d
            if ep.net.name == "bridge":  # the top-level fields: the default bridge's
                for k in ("EndpointID", "Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen",
                          "IPAddress", "IPPrefixLen", "IPv6Gateway", "MacAddress"):  # fmt: skip
                    out[k] = d[k]
        return out


def _docker_endpoint(net: Network, ep: Endpoint | None, name: str, cid: str) -> dict:
    import ipaddress

    def plen(ver):
        s = net.subnet_of(ver)
        return ipaddress.ip_network(s["Subnet"]).prefixlen if s else 0

    active = ep is not None and ep.active
    d = {
        "IPAMConfig": (ep.config.get("IPAMConfig") if ep else None) or None,
        "Links": (ep.config.get("Links") if ep else None) or None,
        "Aliases": (ep.aliases if ep else None) or None,
        "MacAddress": (ep.mac or "") if active else "",
        "DriverOpts": (ep.config.get("DriverOpts") if ep else None) or None,
        "NetworkID": net.id,
        "EndpointID": ep.id if active else "",
        "Gateway": net.gateway(4) if active and ep.ipv4 else "",
        "IPAddress": (ep.ipv4 or "") if active else "",
        "IPPrefixLen": plen(4) if active and ep.ipv4 else 0,
        "IPv6Gateway": net.gateway(6) if active and ep.ipv6 else "",
        "GlobalIPv6Address": (ep.ipv6 or "") if active else "",
        "GlobalIPv6PrefixLen": plen(6) if active and ep.ipv6 else 0,
        "DNSNames": None,
    }
    if ep is not None and net.dns:
        d["DNSNames"] = [name, *ep.aliases, cid[:12]]
    return d


def _families(eps: list[Endpoint]) -> list[int]:
    """The IP versions the endpoints' rules are written for."""
    out = [4] if any(ep.ipv4 for ep in eps) else []
    return out + ([6] if any(ep.ipv6 and ep.net.ipv6 for ep in eps) else [])


def etc_of(paths) -> dict[str, str]:
    """The etc files a container's directory holds (for `container:` sharing)."""
    out = {}
    for key, p in (("hostname", paths.hostname), ("hosts", paths.hosts),
                   ("resolv", paths.resolv)):  # fmt: skip
        try:
            with open(p) as f:
                out[key] = f.read()
        except OSError:
            pass
    return out
