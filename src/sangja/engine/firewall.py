"""The containers' firewall rules, written by the engine in one batch: one
`iptables-restore --noflush -w` per set-up and one per teardown (and the same with
`ip6tables-restore` when a network has IPv6), in place of netavark 1.4's iptables driver,
which execs `iptables` once per rule it checks, adds or deletes (43 execs to set up one
container with one published port, 31 to tear it down; Debian 12's netavark has no
one-batch nftables driver and no `none` driver).  netavark still does everything else
(bridge, veth pair, addresses, routes, the sysctls `ip_forward` and `route_localnet`,
aardvark-dns): it is run with a PATH whose `iptables`/`ip6tables` is a no-op
(csrc/iptables-stub/), so it believes its rules are there and writes none.

Measured in a private network namespace (netavark 1.4, iptables-nft 1.8.9, 2 loaded cores),
one container with one published port, setup / teardown: real iptables 72 / 300 ms, the
no-op as a sh script 40 / 83 ms, as the C program 26 / 70 ms; one iptables-restore of a
container's rules 1.5-2 ms, one iptables-save 1.3 ms.

`firewall = "netavark"` in the config file (or SANGJA_FIREWALL=netavark) keeps netavark's
own driver; a container keeps the driver it was set up with until its teardown (a marker
file under the run dir, `@net/netavark-fw/<id>`).

The rules (iptables-save's form), each tagged `-m comment --comment sangja:<container
id>:<network id (12)>` so a teardown, or the repair of a set-up killed half-way, finds
exactly a container's (or, at a disconnect, its rules for one network):

    nat     PREROUTING, OUTPUT  -m addrtype --dst-type LOCAL -j SANGJA-DNAT
            SANGJA-DNAT         [-d HOSTIP] -p P --dport H[:H2] -j DNAT --to-destination C:c[-c2/H]
            POSTROUTING         -j SANGJA-HAIRPIN, then -j SANGJA-POSTROUTING
            SANGJA-HAIRPIN      -s SUBNET|127.0.0.0/8 -d C -p P --dport c[:c2]
                                -m conntrack --ctstate DNAT -j MASQUERADE
            SANGJA-POSTROUTING  -s C -d SUBNET -j RETURN;  -s C ! -d 224.0.0.0/4 -j MASQUERADE
    filter  FORWARD             -j SANGJA-ISOLATION-1, then -j SANGJA-FORWARD (at its top)
            SANGJA-ISOLATION-1  -i BR ! -o BR -j SANGJA-ISOLATION-2   (internal: -j DROP,
                                and -o BR ! -i BR -j DROP)
            SANGJA-ISOLATION-2  -o BR -j DROP
            SANGJA-FORWARD      -d C -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT;
                                -s C -j ACCEPT;  -d C -m conntrack --ctstate DNAT -j ACCEPT

as netavark 1.4 writes them, per container instead of per network (so no rule is shared
and none needs counting) and with conntrack's DNAT state where netavark marks packets
(0x2000).  The last FORWARD rule is not netavark's: published ports keep working on a host
whose FORWARD policy is DROP.  Internal networks get no NAT and no DNAT (as netavark's: it
writes nothing for them and gives them no default route) and the DROP rules Docker writes.
The chains and the jumps to them are made once per network namespace (a `-N` can fail when
another engine makes them at the same moment: then read again); a `:CHAIN` line is never
written for a chain that exists: `iptables-restore --noflush` flushes it.
"""

from __future__ import annotations

import os

from sangja.engine import children
from sangja.engine.neterrors import NetworkError

DRIVERS = ("sangja", "netavark")
TIMEOUT = 60  # a hang guard for one iptables call
_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
_MULTICAST = {4: "224.0.0.0/4", 6: "ff00::/8"}
_LOOPBACK = {4: "127.0.0.0/8", 6: "::1/128"}
_CMD = {4: ("iptables-save", "iptables-restore"), 6: ("ip6tables-save", "ip6tables-restore")}

# the chains and the jumps to them from the built-in chains: (table, chain, jumps); each
# jump is inserted at the top, so the last one listed comes first
_CHAINS = (
    ("nat", "SANGJA-DNAT", (("PREROUTING", "-m addrtype --dst-type LOCAL -j SANGJA-DNAT"),
                            ("OUTPUT", "-m addrtype --dst-type LOCAL -j SANGJA-DNAT"))),
    ("nat", "SANGJA-POSTROUTING", (("POSTROUTING", "-j SANGJA-POSTROUTING"),)),
    ("nat", "SANGJA-HAIRPIN", (("POSTROUTING", "-j SANGJA-HAIRPIN"),)),
    ("filter", "SANGJA-ISOLATION-2", ()),
    ("filter", "SANGJA-FORWARD", (("FORWARD", "-j SANGJA-FORWARD"),)),
    ("filter", "SANGJA-ISOLATION-1", (("FORWARD", "-j SANGJA-ISOLATION-1"),)),
)  # fmt: skip


def driver() -> str:
    """Who writes the firewall: $SANGJA_FIREWALL, else the config file's `firewall`, else
    "sangja"."""
    v = os.environ.get("SANGJA_FIREWALL")
    if v:
        if v not in DRIVERS:
            raise NetworkError(f"SANGJA_FIREWALL={v!r}: want one of {', '.join(DRIVERS)}")
        return v
    from sangja import settings

    return settings.get("firewall") or "sangja"


def stub_dir() -> str:
    """The directory of the no-op iptables (installed with sangja, beside its bin/;
    $SANGJA_IPTABLES_STUB names another)."""
    import sys

    # the installation's prefix: the venv the interpreter is in (sys.prefix is not it
    # under `python -S`, as the sangja program runs it)
    prefix = os.path.dirname(os.path.dirname(sys.executable))
    d = os.environ.get("SANGJA_IPTABLES_STUB") or os.path.join(
        prefix, "libexec", "sangja", "iptables-stub")  # fmt: skip
    if not os.access(os.path.join(d, "iptables"), os.X_OK):
        raise NetworkError(f"the no-op iptables for netavark is not installed ({d}/iptables;"
                           " reinstall sangja, or set firewall = \"netavark\")")  # fmt: skip
    return d


def netavark_path(own: bool) -> str:
    """netavark's PATH: with the stub first unless netavark writes the rules (`own`)."""
    return _PATH if own else f"{stub_dir()}:{_PATH}"


def tag(cid: str, nid: str = "") -> str:
    """The comment of a container's rules for one network (`nid`), or the prefix every
    rule of the container's starts with."""
    return f"sangja:{cid}:{nid[:12]}"


def _addr(ep, ver: int) -> str:
    a = ep.ipv4 if ver == 4 else ep.ipv6
    return (a or "").split("/")[0]


def rules(cid: str, eps, mappings: list) -> dict[int, dict[str, list[str]]]:
    """The container's rules: {4|6: {"nat": [...], "filter": [...]}}, each an `-A` line
    without the `-A`.  `eps`: its active endpoints; `mappings`: netavark's port mappings
    (engine/ports.py: netavark_mappings)."""
    out: dict[int, dict[str, list[str]]] = {}
    for ver in (4, 6):
        nat: list[str] = []
        flt: list[str] = []
        target = None  # the endpoint published ports go to: the first that can have them
        for ep in eps:
            ip = _addr(ep, ver)
            sub = ep.net.subnet_of(ver)
            if not ip or sub is None:
                continue
            br = ep.net.interface
            c = f"-m comment --comment {tag(cid, ep.net.id)}"
            if ep.net.internal:
                flt.append(f"SANGJA-ISOLATION-1 -i {br} ! -o {br} {c} -j DROP")
                flt.append(f"SANGJA-ISOLATION-1 -o {br} ! -i {br} {c} -j DROP")
                continue
            if target is None:
                target = (ep, ip, sub["Subnet"])
            flt.append(f"SANGJA-ISOLATION-1 -i {br} ! -o {br} {c} -j SANGJA-ISOLATION-2")
            flt.append(f"SANGJA-ISOLATION-2 -o {br} {c} -j DROP")
            flt.append(f"SANGJA-FORWARD -d {ip} -m conntrack --ctstate RELATED,ESTABLISHED"
                       f" {c} -j ACCEPT")  # fmt: skip
            flt.append(f"SANGJA-FORWARD -s {ip} {c} -j ACCEPT")
            nat.append(f"SANGJA-POSTROUTING -s {ip} -d {sub['Subnet']} {c} -j RETURN")
            nat.append(f"SANGJA-POSTROUTING -s {ip} ! -d {_MULTICAST[ver]} {c} -j MASQUERADE")
        if target is not None and mappings:
            ep, ip, subnet = target
            c = f"-m comment --comment {tag(cid, ep.net.id)}"
            published = False
            for m in mappings:
                host_ip = m["host_ip"]
                if host_ip in ("0.0.0.0", "::"):
                    host_ip = ""
                if host_ip and (6 if ":" in host_ip else 4) != ver:  # checked at create
                    continue
                published = True
                n, proto = m["range"], m["protocol"]
                hp, cp = m["host_port"], m["container_port"]
                hports = f"{hp}:{hp + n - 1}" if n > 1 else str(hp)
                cports = f"{cp}:{cp + n - 1}" if n > 1 else str(cp)
                dest = ip if ver == 4 else f"[{ip}]"
                to = f"{dest}:{cp}-{cp + n - 1}/{hp}" if n > 1 else f"{dest}:{cp}"
                d = f"-d {host_ip} " if host_ip else ""
                nat.append(f"SANGJA-DNAT {d}-p {proto} -m {proto} --dport {hports} {c}"
                           f" -j DNAT --to-destination {to}")  # fmt: skip
                for src in (subnet, _LOOPBACK[ver]):
                    nat.append(f"SANGJA-HAIRPIN -s {src} -d {ip} -p {proto} -m {proto}"
                               f" --dport {cports} -m conntrack --ctstate DNAT {c}"
                               " -j MASQUERADE")  # fmt: skip
            if published:
                flt.append(f"SANGJA-FORWARD -d {ip} -m conntrack --ctstate DNAT {c} -j ACCEPT")
        if nat or flt:
            out[ver] = {"nat": nat, "filter": flt}
    return out


def _script(tables: dict[str, list[str]], verb: str) -> str:
    lines = []
    for table in ("nat", "filter"):
        if tables.get(table):
            lines.append(f"*{table}")
            lines += [f"{verb} {r}" for r in tables[table]]
            lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def _env() -> dict:
    return dict(os.environ, PATH=_PATH)


class Restore:
    """One iptables-restore, started now and waited for later (the engine lets it run
    beside netavark)."""

    def __init__(self, ver: int, script: str):
        self.ver, self.error = ver, None
        argv = [_CMD[ver][1], "--noflush", "-w"]
        try:  # its input is written now: it works while the engine goes on
            self.p = children.Child(argv, script.encode(), _env())
        except OSError as e:
            raise NetworkError(f"{argv[0]}: {e.strerror}", errno=e.errno or 0)

    def wait(self) -> str:
        """-> "" or the error iptables-restore printed."""
        if self.error is None:
            self.error = self._wait()
        return self.error

    def _wait(self) -> str:
        try:
            code, _, err = self.p.wait(TIMEOUT)
        except children.Timeout:
            return f"{_CMD[self.ver][1]}: no answer in {TIMEOUT}s"
        if code == 0:
            return ""
        lines = [ln for ln in err.decode(errors="replace").splitlines() if ln.strip()]
        return lines[-1] if lines else f"{_CMD[self.ver][1]}: exit status {code}"


def _restore(ver: int, script: str) -> str:
    return Restore(ver, script).wait()


def _save(ver: int) -> str:
    try:
        code, out, err = children.Child([_CMD[ver][0]], b"", _env()).wait(TIMEOUT)
    except OSError as e:
        raise NetworkError(f"{_CMD[ver][0]}: {e.strerror}", errno=e.errno or 0)
    except children.Timeout:
        raise NetworkError(f"{_CMD[ver][0]}: no answer in {TIMEOUT}s")
    if code:
        raise NetworkError(f"{_CMD[ver][0]}: {err.decode(errors='replace').strip() or code}")
    return out.decode(errors="replace")


def _tables(saved: str) -> dict[str, tuple[set, list]]:
    """iptables-save's text -> {table: (its chains, its `-A` lines)}."""
    out: dict[str, tuple[set, list]] = {}
    cur = None
    for ln in saved.splitlines():
        if ln.startswith("*"):
            cur = out.setdefault(ln[1:].strip(), (set(), []))
        elif cur is None:
            continue
        elif ln.startswith(":"):
            cur[0].add(ln[1:].split()[0])
        elif ln.startswith("-A "):
            cur[1].append(ln[3:])
    return out


def ensure_chains(ver: int) -> None:
    """Make the chains and the jumps that are missing (once per network namespace)."""
    for _ in range(3):
        have = _tables(_save(ver))
        todo: dict[str, list[str]] = {}
        for table, chain, jumps in _CHAINS:
            chains, lines = have.get(table, (set(), []))
            if chain not in chains:
                todo.setdefault(table, []).append(f"-N {chain}")
            for builtin, rule in jumps:
                if f"{builtin} {rule}" not in lines:
                    todo.setdefault(table, []).append(f"-I {builtin} 1 {rule}")
        if not todo:
            return
        script = "".join(f"*{t}\n" + "\n".join(ls) + "\nCOMMIT\n" for t, ls in todo.items())
        err = _restore(ver, script)
        if not err:
            return
        # another engine made them meanwhile: read again
    raise NetworkError(f"{_CMD[ver][1]}: cannot make sangja's chains: {err}")


class Setup:
    """A container's rules being written (`start`), checked with `wait`."""

    def __init__(self, cid: str, eps, mappings: list):
        self.batches = {ver: _script(t, "-A") for ver, t in rules(cid, eps, mappings).items()}
        self.running = {ver: Restore(ver, s) for ver, s in self.batches.items()}

    def wait(self) -> None:
        errors = []
        running, self.running = self.running, {}
        for ver, call in running.items():
            err = call.wait()
            if err:  # the chains are not there yet (the first container in this namespace)
                ensure_chains(ver)
                err = _restore(ver, self.batches[ver])
            if err:
                errors.append(err)
        if errors:
            raise NetworkError(f"firewall: {'; '.join(errors)}")

    def abandon(self) -> None:
        for call in self.running.values():
            call.wait()
        self.running = {}

    def pids(self) -> list[int]:
        """The restores still running (Endpoints notes them: a killed run leaves them)."""
        return [call.p.pid for call in self.running.values()]


def teardown(cid: str, families=(4, 6), nid: str = "") -> None:
    """Delete every rule tagged with the container's id (and the network's, with `nid`):
    one iptables-save read, one iptables-restore of `-D` lines (none when it has no
    rule), per family."""
    mark = tag(cid, nid)
    errors = []
    for ver in families:
        try:
            tables = _tables(_save(ver))
        except NetworkError as e:
            errors.append(str(e))
            continue
        mine = {t: [ln for ln in lines if _tagged(ln, mark)] for t, (_, lines) in tables.items()}
        script = _script(mine, "-D")
        if script.strip():
            err = _restore(ver, script)
            if err:
                errors.append(err)
    if errors:
        raise NetworkError(f"firewall teardown: {'; '.join(errors)}")


def _tagged(line: str, mark: str) -> bool:
    """Is the rule's comment the container's (`mark` ends with ":": any of its networks)
    or the container's on that network?  (iptables-save quotes comments.)"""
    for pre in ("--comment ", '--comment "'):
        i = line.find(pre + mark)
        if i < 0:
            continue
        end = line[i + len(pre) + len(mark) : i + len(pre) + len(mark) + 1]
        return mark.endswith(":") or end in ("", " ", '"')
    return False
