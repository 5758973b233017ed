"""Networks as engine objects: their records in the store's SQLite database, the predefined
`bridge`, `host` and `none`, create/remove/prune with Docker's rules and messages, and
Docker's JSON (`network inspect`, `network ls`).

A network is a row (id, name, driver, created) and its definition as JSON: subnets (with
gateway, ip-range, aux addresses), IPv6, internal, attachable, labels, options, the bridge
device's name.  netavark builds what a definition describes when the first container
joins it and removes the bridge when the last one leaves (engine/netavark.py); the record
stays until `network rm`.  Containers' endpoints on networks, their address leases and
published ports are in the tables below too (engine/endpoints.py, engine/ipam.py).

The predefined networks are made on first use of the tables: `bridge` (device `sangja0`,
the config file's `bip`, else Docker's 172.17.0.0/16 unless that overlaps a route of the
host: the next free subnet of the pools, `default-address-pools` when set; MTU `mtu` or
1500), `host` and `none`.  dockerd makes its bridge anew at each start; sangja, without a
daemon, compares the bridge with those keys at each command's first use of the tables and
makes its definition anew when they changed and no container is on it (_follow_settings).
The default `bridge` has no name resolution between containers (as Docker's); user
networks do (aardvark-dns) and are isolated from each other.
"""

from __future__ import annotations

import time

from sangja.engine.neterrors import (
    NetworkConflict,
    NetworkForbidden,
    NetworkInvalid,
    NetworkNotFound,
)

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS networks (
    id       TEXT PRIMARY KEY,          -- 64 hex
    name     TEXT UNIQUE NOT NULL,
    driver   TEXT NOT NULL,             -- bridge | host | null
    created  REAL NOT NULL,
    body     TEXT NOT NULL              -- JSON: the definition (Network.__init__)
)""",
    """CREATE TABLE IF NOT EXISTS net_endpoints (
    container TEXT NOT NULL,
    network   TEXT NOT NULL,            -- networks.id
    ifindex   INTEGER NOT NULL,         -- the interface in the container: eth<ifindex>
    id        TEXT NOT NULL,            -- Docker's EndpointID
    config    TEXT NOT NULL,            -- JSON: Docker's EndpointSettings as asked
    ipv4 TEXT, ipv6 TEXT, mac TEXT,     -- the leases while the container runs, else NULL
    last_ipv4 TEXT, last_ipv6 TEXT,     -- the last run's addresses: given back when free
    PRIMARY KEY (container, network)
)""",
    "CREATE UNIQUE INDEX IF NOT EXISTS net_endpoints_v4 ON net_endpoints(network, ipv4)",
    "CREATE UNIQUE INDEX IF NOT EXISTS net_endpoints_v6 ON net_endpoints(network, ipv6)",
    "CREATE INDEX IF NOT EXISTS net_endpoints_net ON net_endpoints(network)",
    """CREATE TABLE IF NOT EXISTS net_ports (
    container      TEXT NOT NULL,       -- published while the container runs
    proto          TEXT NOT NULL,       -- tcp | udp | sctp
    host_ip        TEXT NOT NULL,       -- '' = every address
    host_port      INTEGER NOT NULL,
    container_port INTEGER NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS net_ports_c ON net_ports(container)",
    """CREATE TABLE IF NOT EXISTS net_sandboxes (
    container TEXT PRIMARY KEY,         -- a container whose network is set up (or being)
    mode      TEXT NOT NULL,            -- bridge | none | host | container:<id>
    netns     TEXT NOT NULL,            -- its namespace's path ('' for host)
    created   REAL NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS ipam_cursors (
    network TEXT NOT NULL,
    subnet  TEXT NOT NULL,
    last    TEXT NOT NULL,              -- the address handed out last (round-robin)
    PRIMARY KEY (network, subnet)
)""",
)

PREDEFINED = ("bridge", "host", "none")
DEFAULT_BRIDGE_IFACE = "sangja0"
_NAME = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"
DEFAULT_MTU = 1500

# --opt keys of the bridge driver: applied (name, mtu, the default host address of -p) or
# accepted because they ask for what sangja does anyway
OPT_NAME = "com.docker.network.bridge.name"
OPT_MTU = "com.docker.network.driver.mtu"
OPT_HOST_IP = "com.docker.network.bridge.host_binding_ipv4"
_DEFAULT_TRUE = ("com.docker.network.bridge.enable_icc",
                 "com.docker.network.bridge.enable_ip_masquerade")  # fmt: skip


def _rfc3339(ts: float) -> str:
    t = time.gmtime(ts)
    ns = int(round((ts - int(ts)) * 1e9))
    if ns >= 1_000_000_000:
        ns = 999_999_999
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{ns:09d}Z"


class Network:
    """One network (a row, with its definition parsed)."""

    __slots__ = ("id", "name", "driver", "created", "body")

    def __init__(self, id, name, driver, created, body):
        self.id, self.name, self.driver, self.created = id, name, driver, created
        if isinstance(body, str):
            from sangja import jsonio

            body = jsonio.loads(body)
        self.body = body

    def __repr__(self):
        return f"Network({self.name} {self.id[:12]})"

    # the definition
    @property
    def subnets(self) -> list[dict]:
        return self.body.get("Subnets") or []

    @property
    def ipv6(self) -> bool:
        return bool(self.body.get("EnableIPv6"))

    @property
    def internal(self) -> bool:
        return bool(self.body.get("Internal"))

    @property
    def interface(self) -> str:
        return self.body.get("Interface") or ""

    @property
    def dns(self) -> bool:
        """Names resolve on it (aardvark-dns): user networks, not the default bridge."""
        return bool(self.body.get("DNS"))

    @property
    def options(self) -> dict:
        return self.body.get("Options") or {}

    @property
    def labels(self) -> dict:
        return self.body.get("Labels") or {}

    @property
    def predefined(self) -> bool:
        return self.name in PREDEFINED

    @property
    def user_defined(self) -> bool:
        return self.driver == "bridge" and self.name != "bridge"

    @property
    def mtu(self) -> int:
        try:
            return int(self.options.get(OPT_MTU) or 0)
        except ValueError:
            return 0

    def subnet_of(self, version: int) -> dict | None:
        import ipaddress

        for s in self.subnets:
            if ipaddress.ip_network(s["Subnet"]).version == version:
                return s
        return None

    def gateway(self, version: int = 4) -> str:
        s = self.subnet_of(version)
        return (s or {}).get("Gateway") or ""

    def docker(self, containers: dict | None = None) -> dict:
        """Docker's NetworkResource (`network inspect`)."""
        ipam_conf = []
        for s in self.subnets:
            e = {"Subnet": s["Subnet"]}
            if s.get("IPRange"):
                e["IPRange"] = s["IPRange"]
            if s.get("Gateway"):
                e["Gateway"] = s["Gateway"]
            if s.get("AuxiliaryAddresses"):
                e["AuxiliaryAddresses"] = dict(s["AuxiliaryAddresses"])
            ipam_conf.append(e)
        return {
            "Name": self.name,
            "Id": self.id,
            "Created": _rfc3339(self.created),
            "Scope": "local",
            "Driver": self.driver,
            "EnableIPv6": self.ipv6,
            "IPAM": {
                "Driver": self.body.get("IPAMDriver") or "default",
                "Options": self.body.get("IPAMOptions"),
                "Config": ipam_conf,
            },
            "Internal": self.internal,
            "Attachable": bool(self.body.get("Attachable")),
            "Ingress": False,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": False,
            "Containers": containers if containers is not None else {},
            "Options": dict(self.options),
            "Labels": dict(self.labels),
        }


def bridge_settings() -> dict:
    """The config file's keys that shape the default bridge (those it sets)."""
    from sangja import settings

    keys = ("bip", "mtu", "default-address-pools")
    return {k: settings.get(k) for k in keys if settings.get(k) is not None}


def ensure_schema(db) -> None:
    for stmt in SCHEMA:
        db.execute(stmt)


def _new_id(db) -> str:
    import secrets

    while True:
        nid = secrets.token_hex(32)
        if not nid[:12].isdigit() and db.execute(
            "SELECT 1 FROM networks WHERE id LIKE ?", (nid[:12] + "%",)
        ).fetchone() is None:  # fmt: skip
            return nid


def _parse_labels(items) -> dict:
    out = {}
    for it in items or ():
        k, _, v = it.partition("=")
        if not k:
            raise NetworkInvalid(f"invalid label {it!r}")
        out[k] = v
    return out


class Networks:
    """The network records of one engine root (the store's database)."""

    def __init__(self, store):
        self.store = store
        self._ready = False

    @property
    def db(self):
        db = self.store.db
        if not self._ready:
            row = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='ipam_cursors'"
            ).fetchone()
            have = row is not None and db.execute(
                "SELECT count(*) FROM networks WHERE name IN ('bridge','host','none')"
            ).fetchone()[0] == len(PREDEFINED)  # fmt: skip
            if not have:
                with self.store.transaction() as tx:
                    ensure_schema(tx)
                    self._predefined(tx)
            else:
                self._follow_settings(db)
            self._ready = True
        return db

    def transaction(self, durable: bool = True):
        """`durable=False`: a container's endpoints and leases (Store.transaction)."""
        self.db  # noqa: B018 (the tables exist before the transaction)
        return self.store.transaction(durable)

    def _predefined(self, tx) -> None:
        have = {r[0] for r in tx.execute("SELECT name FROM networks")}
        now = time.time()
        if "bridge" not in have:
            self._insert(tx, _new_id(tx), "bridge", "bridge", now,
                         self._bridge_body(tx, bridge_settings()))  # fmt: skip
        if "host" not in have:
            self._insert(tx, _new_id(tx), "host", "host", now, {"IPAMOptions": None})
        if "none" not in have:
            self._insert(tx, _new_id(tx), "none", "null", now, {"IPAMOptions": None})

    @staticmethod
    def _insert(tx, nid, name, driver, created, body) -> None:
        from sangja import jsonio

        tx.execute("INSERT INTO networks (id, name, driver, created, body) VALUES (?,?,?,?,?)",
                   (nid, name, driver, created, jsonio.dumps(body)))  # fmt: skip

    @staticmethod
    def _subnets(tx, but: str = "") -> list[tuple]:
        """(network name, subnet) of every network but `but`."""
        import ipaddress

        from sangja import jsonio

        out = []
        for name, body in tx.execute("SELECT name, body FROM networks WHERE name != ?", (but,)):
            for s in jsonio.loads(body).get("Subnets") or ():
                out.append((name, ipaddress.ip_network(s["Subnet"])))
        return out

    @classmethod
    def _taken(cls, tx) -> list:
        return [n for _, n in cls._subnets(tx)]

    def _bridge_body(self, tx, want: dict, old: dict | None = None) -> dict:
        """The default bridge's definition for the config file's `want` (bridge_settings):
        `bip`'s subnet and gateway, else the first free subnet of the pools (the old one
        while bip and the pools are as they were), `mtu` or 1500."""
        import ipaddress

        from sangja import settings
        from sangja.engine import ipam

        others = self._subnets(tx, but="bridge")
        was = (old or {}).get("Settings") or {}
        pools = want.get("default-address-pools")
        if "bip" in want:
            iface = ipaddress.ip_interface(want["bip"])
            for name, net in others:
                if net.overlaps(iface.network):
                    raise settings.SettingsError(
                        f'{settings.path()}: key "bip": {iface.network} overlaps network'
                        f" {name} ({net})"
                    )
            subnet = {"Subnet": str(iface.network), "Gateway": str(iface.ip)}
        elif old and "bip" not in was and was.get("default-address-pools") == pools:
            subnet = old["Subnets"][0]
        else:
            subnet = ipam.complete(
                {"Subnet": str(ipam.pick_subnet([n for _, n in others], pools=pools))}
            )
        return {
            "Subnets": [subnet],
            "Interface": DEFAULT_BRIDGE_IFACE, "DNS": False, "IPAMOptions": None,
            "Options": {
                "com.docker.network.bridge.default_bridge": "true",
                "com.docker.network.bridge.enable_icc": "true",
                "com.docker.network.bridge.enable_ip_masquerade": "true",
                "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
                OPT_NAME: DEFAULT_BRIDGE_IFACE,
                OPT_MTU: str(want.get("mtu") or DEFAULT_MTU),
            },
            "Settings": want,  # what it was made from (compared at each command's first use)
        }  # fmt: skip

    def _follow_settings(self, db) -> None:
        """Remake the default bridge's definition when the config file's bip, mtu or
        default-address-pools changed since it was made (Docker remakes its bridge at each
        daemon start), unless a container is on it now: then it stays as it is, with a
        warning, until the last one has left it."""
        import sys

        from sangja import jsonio, settings

        want = bridge_settings()
        row = db.execute("SELECT body FROM networks WHERE name='bridge'").fetchone()
        if row is None or (jsonio.loads(row[0]).get("Settings") or {}) == want:
            return
        with self.store.transaction() as tx:
            row = tx.execute("SELECT id, body FROM networks WHERE name='bridge'").fetchone()
            old = jsonio.loads(row[1])
            if (old.get("Settings") or {}) == want:
                return
            busy = tx.execute(
                "SELECT count(*) FROM net_endpoints WHERE network=? AND (ipv4 IS NOT NULL OR"
                " ipv6 IS NOT NULL OR mac IS NOT NULL)", (row[0],)).fetchone()[0]  # fmt: skip
            keeps = f"the default bridge keeps {old['Subnets'][0]['Subnet']}, MTU" \
                    f" {old['Options'].get(OPT_MTU)}"  # fmt: skip
            if busy:
                sys.stderr.write(f"sangja: warning: {settings.path()} changed the default"
                                 f" bridge: {keeps} until the {busy} container(s) on it have"
                                 " stopped\n")  # fmt: skip
                return
            try:
                body = self._bridge_body(tx, want, old)
            except (settings.SettingsError, NetworkConflict) as e:
                sys.stderr.write(f"sangja: warning: {e}: {keeps}\n")
                return
            tx.execute("UPDATE networks SET body=? WHERE id=?", (jsonio.dumps(body), row[0]))
            if body["Subnets"] != old["Subnets"]:
                tx.execute("DELETE FROM ipam_cursors WHERE network=?", (row[0],))
            # a device a crash left has the old address: the next container makes it anew
            remove_device(DEFAULT_BRIDGE_IFACE)

    # ---- reading ------------------------------------------------------------------------
    def all(self) -> list[Network]:
        rows = self.db.execute("SELECT id, name, driver, created, body FROM networks")
        return sorted((Network(*r) for r in rows), key=lambda n: n.name)

    def by_id(self, nid: str) -> Network | None:
        r = self.db.execute("SELECT id, name, driver, created, body FROM networks WHERE id=?",
                            (nid,)).fetchone()  # fmt: skip
        return Network(*r) if r else None

    def get(self, ref: str) -> Network:
        """A name, a full id or a unique id prefix (Docker's order) -> the network."""
        db = self.db
        q = "SELECT id, name, driver, created, body FROM networks"
        r = db.execute(q + " WHERE name=?", (ref,)).fetchone()
        if r is None:
            r = db.execute(q + " WHERE id=?", (ref,)).fetchone()
        if r is None and ref and all(c in "0123456789abcdef" for c in ref):
            rows = db.execute(q + " WHERE id LIKE ?", (ref + "%",)).fetchall()
            if len(rows) > 1:
                raise NetworkConflict(f"network {ref} is ambiguous ({len(rows)} matches found"
                                      " on id prefix)")  # fmt: skip
            r = rows[0] if rows else None
        if r is None:
            raise NetworkNotFound(f"network {ref} not found")
        return Network(*r)

    def users(self, nid: str) -> list[str]:
        """The containers with an endpoint on the network (running or not)."""
        q = "SELECT container FROM net_endpoints WHERE network=? ORDER BY container"
        return [r[0] for r in self.db.execute(q, (nid,))]

    def active(self, nid: str) -> list[tuple]:
        """(container, endpoint id, ipv4, ipv6, mac) of the endpoints set up now."""
        return self.db.execute(
            "SELECT container, id, ipv4, ipv6, mac FROM net_endpoints WHERE network=? AND"
            " (ipv4 IS NOT NULL OR ipv6 IS NOT NULL OR mac IS NOT NULL) ORDER BY container",
            (nid,),
        ).fetchall()

    def container_name(self, cid: str) -> str:
        try:
            r = self.db.execute("SELECT name FROM containers WHERE id=?", (cid,)).fetchone()
        except Exception:  # no containers table in this store (yet)
            return ""
        return r[0] if r else ""

    def inspect(self, net: Network) -> dict:
        """Docker's JSON, with the containers attached now (Docker shows active endpoints)."""
        import ipaddress

        def cidr(ip, version):
            s = net.subnet_of(version)
            if not ip or s is None:
                return ""
            return f"{ip}/{ipaddress.ip_network(s['Subnet']).prefixlen}"

        out = {}
        for cid, eid, v4, v6, mac in self.active(net.id):
            out[cid] = {"Name": self.container_name(cid), "EndpointID": eid,
                        "MacAddress": mac or "", "IPv4Address": cidr(v4, 4),
                        "IPv6Address": cidr(v6, 6)}  # fmt: skip
        return net.docker(out)

    # ---- create -------------------------------------------------------------------------
    def create(self, name: str, *, driver: str = "bridge", subnets: list[dict] | None = None,
               ipv6: bool = False, internal: bool = False, attachable: bool = False,
               labels: dict | None = None, options: dict | None = None,
               ipam_driver: str = "default", ipam_options: dict | None = None,
               ingress: bool = False, scope: str = "", config_only: bool = False,
               config_from: str = "") -> Network:  # fmt: skip
        """NetworkCreate.  `subnets`: Docker's IPAM.Config entries (ipam.subnet_config
        makes them from the CLI's flags)."""
        import ipaddress
        import re

        from sangja.engine import ipam

        if not name:
            raise NetworkInvalid("network name is required")
        if not re.match(_NAME, name):
            raise NetworkInvalid(f"invalid network name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-]"
                                 " are allowed")  # fmt: skip
        driver = driver or "bridge"
        if driver in ("host", "null"):
            raise NetworkForbidden(f'only one instance of "{driver}" network is allowed')
        if driver != "bridge":
            raise NetworkInvalid(f'plugin "{driver}" not found: sangja has the bridge driver'
                                 " only")  # fmt: skip
        if ingress:
            raise NetworkForbidden("an ingress network needs swarm mode, which sangja has not")
        if scope not in ("", "local"):
            raise NetworkInvalid(f"scope {scope!r} is not supported (local only)")
        if config_only or config_from:
            raise NetworkInvalid("config-only networks (--config-only, --config-from) are not"
                                 " supported")  # fmt: skip
        if ipam_driver not in ("", "default"):
            raise NetworkInvalid(f'plugin "{ipam_driver}" not found: sangja has the default'
                                 " IPAM driver only")  # fmt: skip
        opts = dict(options or {})
        iface = opts.get(OPT_NAME) or ""
        for k, v in opts.items():
            if k in (OPT_NAME, OPT_MTU, OPT_HOST_IP):
                continue
            if k in _DEFAULT_TRUE and v.lower() == "true":
                continue
            raise NetworkInvalid(f"bridge driver option {k}={v!r} is not supported (sangja"
                                 f" applies {OPT_NAME}, {OPT_MTU}, {OPT_HOST_IP})")  # fmt: skip
        if OPT_MTU in opts:
            try:
                mtu = int(opts[OPT_MTU])
            except ValueError:
                mtu = -1
            if not 68 <= mtu <= 65535:
                raise NetworkInvalid(f"invalid MTU {opts[OPT_MTU]!r}")
        if OPT_HOST_IP in opts:
            ipam.address(opts[OPT_HOST_IP], "host binding address")
        if iface and (len(iface) > 15 or "/" in iface or iface.strip() != iface):
            raise NetworkInvalid(f"invalid bridge name {iface!r} (15 characters at most)")
        entries = [ipam.complete(e) for e in (subnets or [])]
        versions = [ipaddress.ip_network(e["Subnet"]).version for e in entries]
        if len(set(versions)) != len(versions):
            raise NetworkInvalid("one IPv4 and one IPv6 subnet at most (sangja)")
        if 6 in versions and not ipv6:
            raise NetworkInvalid("an IPv6 subnet needs --ipv6 (EnableIPv6)")
        with self.transaction() as tx:
            if tx.execute("SELECT 1 FROM networks WHERE name=?", (name,)).fetchone():
                raise NetworkConflict(f"network with name {name} already exists")
            taken = self._taken(tx)
            for e in entries:
                net = ipaddress.ip_network(e["Subnet"])
                for t in taken:
                    if net.overlaps(t):
                        raise NetworkForbidden(
                            f"Pool overlaps with other one on this address space ({net} and {t})"
                        )
            nid = _new_id(tx)
            pools = ipam.configured_pools()
            if 4 not in versions:
                entries.insert(0, ipam.complete(
                    {"Subnet": str(ipam.pick_subnet(taken, pools=pools))}))  # fmt: skip
            if ipv6 and 6 not in versions:
                entries.append(ipam.complete(
                    {"Subnet": str(ipam.ula_subnet(nid, taken, pools))}))  # fmt: skip
            if not iface:
                iface = "br-" + nid[:12]
            for (body,) in tx.execute("SELECT body FROM networks"):
                from sangja import jsonio

                if jsonio.loads(body).get("Interface") == iface:
                    raise NetworkConflict(f"bridge name {iface} is used by another network")
            body = {
                "Subnets": entries, "EnableIPv6": bool(ipv6), "Internal": bool(internal),
                "Attachable": bool(attachable), "Labels": dict(labels or {}), "Options": opts,
                "Interface": iface, "DNS": True, "IPAMDriver": "default",
                "IPAMOptions": dict(ipam_options or {}),
            }  # fmt: skip
            now = time.time()
            self._insert(tx, nid, name, "bridge", now, body)
        return Network(nid, name, "bridge", now, body)

    # ---- remove -------------------------------------------------------------------------
    def remove(self, ref: str) -> Network:
        """NetworkDelete: not a predefined network, not one a container is on."""
        net = self.get(ref)
        if net.predefined:
            raise NetworkForbidden(f"{net.name} is a pre-defined network and cannot be removed")
        with self.transaction() as tx:
            users = [r[0] for r in tx.execute(
                "SELECT container FROM net_endpoints WHERE network=?", (net.id,))]  # fmt: skip
            if users:
                names = ", ".join(self.container_name(c) or c[:12] for c in users)
                raise NetworkConflict(
                    f"error while removing network: network {net.name} id {net.id} has active"
                    f" endpoints (containers: {names})"
                )
            tx.execute("DELETE FROM networks WHERE id=?", (net.id,))
            tx.execute("DELETE FROM ipam_cursors WHERE network=?", (net.id,))
        remove_device(net.interface)
        return net

    def prune(self, filters: dict | None = None) -> list[str]:
        """NetworksPrune: user networks no container is on -> their names."""
        out = []
        for net in self.all():
            if net.predefined or not match(net, filters or {}, prune=True):
                continue
            try:
                self.remove(net.id)
            except (NetworkConflict, NetworkNotFound):
                continue
            out.append(net.name)
        return out

    def list(self, filters: dict | None = None) -> list[Network]:
        return [n for n in self.all() if match(n, filters or {}, users=self.users)]


def remove_device(iface: str) -> None:
    """The bridge of a removed network, if a crash left it (netavark removes it with the
    last container): only ours, only in this network namespace."""
    import socket
    import subprocess

    if not iface:
        return
    try:
        socket.if_nametoindex(iface)
    except OSError:
        return
    subprocess.run(["ip", "link", "delete", iface, "type", "bridge"], capture_output=True)


# ---- filters (ls, prune) -----------------------------------------------------------------
LS_FILTERS = ("driver", "id", "label", "name", "scope", "type", "dangling")
PRUNE_FILTERS = ("until", "label", "label!")


def parse_filters(items: list[str], allowed: tuple) -> dict:
    """`--filter k=v` (repeated) -> {k: [v, ...]}."""
    out: dict[str, list[str]] = {}
    for it in items or ():
        k, eq, v = it.partition("=")
        if not eq:
            raise NetworkInvalid(f"bad format of filter (expected name=value): {it}")
        k = k.strip().lower()
        if k not in allowed:
            raise NetworkInvalid(f"invalid filter '{k}'")
        out.setdefault(k, []).append(v)
    return out


def _label_match(labels: dict, want: str) -> bool:
    k, eq, v = want.partition("=")
    return k in labels and (not eq or labels[k] == v)


def match(net: Network, f: dict, users=None, prune: bool = False) -> bool:
    if "driver" in f and net.driver not in f["driver"]:
        return False
    if "id" in f and not any(net.id.startswith(v) for v in f["id"]):
        return False
    if "name" in f and not any(v in net.name for v in f["name"]):
        return False
    if "scope" in f and "local" not in f["scope"]:
        return False
    if "type" in f:
        for v in f["type"]:
            if v not in ("custom", "builtin"):
                raise NetworkInvalid(f"invalid filter: 'type'='{v}'")
        kinds = {"builtin" if net.predefined else "custom"}
        if not kinds & set(f["type"]):
            return False
    if "label" in f and not all(_label_match(net.labels, v) for v in f["label"]):
        return False
    if "label!" in f and any(_label_match(net.labels, v) for v in f["label!"]):
        return False
    if "dangling" in f:
        v = f["dangling"][-1].lower()
        if v not in ("true", "false", "1", "0"):
            raise NetworkInvalid(f"invalid filter 'dangling={v}'")
        dangling = not net.predefined and not (users(net.id) if users else [])
        if dangling != (v in ("true", "1")):
            return False
    if "until" in f:
        for v in f["until"]:
            if net.created >= _until(v):
                return False
    return True


def _until(v: str) -> float:
    """Docker's `until`: a Unix time, a duration ago (10m, 1h30m), or an RFC 3339 time."""
    import re

    try:
        return float(v)
    except ValueError:
        pass
    m = re.fullmatch(r"((\d+(\.\d+)?)(h|m|s|ms))+", v)
    if m:
        total = 0.0
        for num, _, unit in re.findall(r"(\d+(\.\d+)?)(h|ms|m|s)", v):
            total += float(num) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
        return time.time() - total
    import datetime

    try:
        return datetime.datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise NetworkInvalid(f"invalid filter 'until={v}'")


def default_host_ip(net: Network) -> str:
    """The host address `-p PORT:PORT` binds to on this network (bridge option)."""
    v = net.options.get(OPT_HOST_IP) or ""
    return "" if v in ("0.0.0.0", "::") else v
