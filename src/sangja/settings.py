"""The engine's config file: one TOML file of flat keys, named as Docker's daemon.json names
them where Docker has the setting.

    $SANGJA_CONFIG, else /etc/sangja/engine.toml (else the older /etc/sangja/daemon.json)

    data-root = "/var/lib/sangja"
    storage-driver = "overlay"               # or "vfs"
    runtime = "/opt/sangja/bin/sangja"       # the sangja program conmon runs
    default-registry = "registry.example:5000"
    insecure-registries = ["10.0.0.5:5000", "10.1.0.0/16"]
    log-driver = "k8s-file"
    log-opts = { max-size = "10m" }
    mtu = 1450
    dns = ["10.0.0.2"]
    default-address-pools = [{ base = "10.90.0.0/16", size = 24 }]
    firewall = "sangja"                      # or "netavark": its own iptables driver
    [default-ulimits]
    nofile = "1024:4096"                     # or { soft = 1024, hard = 4096 }

A file whose name ends in `.json` is read as JSON with the same keys (sangja's older
daemon.json).  Every key is checked when the file is read: an unknown key, or a value of
the wrong type, is an error that names it (`sangja: engine.toml: unknown key "foo"`), so a
typo never passes silently.  The environment variables each reader documents win over the
file.  Shared by the image layer (registries, data root, storage driver) and the engine
(logs, ulimits, networks), so it sits beside them, below both; the runtime never reads it.
"""

from __future__ import annotations

import os

from sangja.errors import SangjaError

DEFAULT_PATH = "/etc/sangja/engine.toml"
LEGACY_PATH = "/etc/sangja/daemon.json"

_cache: dict[str, dict] = {}


class SettingsError(SangjaError):
    """The config file is unreadable or holds a bad key or value."""

    exit_code = 125


# ---- value checkers: each returns the value as the readers want it or raises ValueError --


def _str(v):
    if not isinstance(v, str):
        raise ValueError("want a string")
    return v


def _abspath(v):
    if not _str(v).startswith("/"):
        raise ValueError("want an absolute path")
    return v


def _bool(v):
    if not isinstance(v, bool):
        raise ValueError("want true or false")
    return v


def _positive(v):
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError("want a positive integer")
    return v


def _strings(v):
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        raise ValueError("want a list of strings")
    return v


def _one_of(*allowed):
    def check(v):
        if v not in allowed:
            raise ValueError(f"want one of {', '.join(allowed)}")
        return v

    return check


def _cidr(v):
    import ipaddress

    try:
        ipaddress.ip_network(_str(v), strict=False)
    except ValueError:
        raise ValueError(f"want an address with its prefix (CIDR), got {v!r}")
    return v


def _bip(v):
    """The default bridge's own address with its prefix (Docker's bip: 10.55.0.1/24)."""
    import ipaddress

    try:
        iface = ipaddress.ip_interface(_str(v))
    except ValueError:
        raise ValueError(f"want an address with its prefix (CIDR), got {v!r}")
    if "/" not in v or iface.version != 4:
        raise ValueError(f"want an IPv4 address with its prefix, e.g. 10.55.0.1/24, got {v!r}")
    net = iface.network
    if net.prefixlen > 30 or iface.ip in (net.network_address, net.broadcast_address):
        raise ValueError(f"want the bridge's own address in its subnet (e.g. "
                         f"{net.network_address + 1}/{net.prefixlen}), got {v!r}")  # fmt: skip
    return v


def _mtu(v):
    if isinstance(v, bool) or not isinstance(v, int) or not 68 <= v <= 65535:
        raise ValueError(f"want an integer from 68 to 65535, got {v!r}")
    return v


def _ips(v):
    import ipaddress

    for s in _strings(v):
        try:
            ipaddress.ip_address(s)
        except ValueError:
            raise ValueError(f"want IP addresses, got {s!r}")
    return v


def _pools(v):
    if not isinstance(v, list) or not all(isinstance(p, dict) for p in v):
        raise ValueError("want a list of tables {base = CIDR, size = N}")
    for i, p in enumerate(v):
        for k in p:
            if k not in ("base", "size"):
                raise KeyError(f"{i}.{k}")
        if "base" not in p or "size" not in p:
            raise ValueError("each pool wants base and size")
        _cidr(p["base"])
        if isinstance(p["size"], bool) or not isinstance(p["size"], int):
            raise ValueError("a pool's size is a prefix length")
        import ipaddress

        net = ipaddress.ip_network(p["base"], strict=False)
        if not net.prefixlen <= p["size"] <= net.max_prefixlen:
            raise ValueError(f"size {p['size']} does not fit in {p['base']}")
    return v


LOG_OPTS = ("max-size", "max-file")


def _log_opts(v):
    if not isinstance(v, dict):
        raise ValueError("want a table of strings")
    for k, s in v.items():
        if k not in LOG_OPTS:
            raise KeyError(k)
        if not isinstance(s, (str, int)) or isinstance(s, bool):
            raise ValueError(f"{k}: want a string")
    return {k: str(s) for k, s in v.items()}


RLIMITS = ("as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
           "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack")  # fmt: skip


def _ulimits(v):
    """-> {name: (soft, hard)}; "soft[:hard]", a number, or {soft, hard}."""
    if not isinstance(v, dict):
        raise ValueError('want a table name = "soft:hard"')
    out = {}
    for name, lim in v.items():
        if name not in RLIMITS:
            raise KeyError(name)
        try:
            if isinstance(lim, dict):
                for k in lim:
                    if k not in ("soft", "hard"):
                        raise KeyError(f"{name}.{k}")
                soft, hard = lim.get("soft"), lim.get("hard", lim.get("soft"))
            elif isinstance(lim, int) and not isinstance(lim, bool):
                soft = hard = lim
            else:
                s, _, h = _str(lim).partition(":")
                soft, hard = int(s), int(h or s)
            if not isinstance(soft, int) or not isinstance(hard, int):
                raise ValueError
        except (ValueError, TypeError):
            raise ValueError(f'{name}: want "soft:hard" or {{soft, hard}}, got {lim!r}')
        if soft > hard and hard != -1:
            raise ValueError(f"{name}: soft limit {soft} is above the hard limit {hard}")
        out[name] = (soft, hard)
    return out


# key -> checker.  Docker's daemon.json name where Docker has the setting.
SCHEMA = {
    # where the engine keeps its data, and how containers' roots are made (image/snapshot)
    "data-root": _abspath,
    "storage-driver": _one_of("overlay", "overlay2", "vfs"),
    # the sangja program conmon runs (the runtime and the exit command); default: the one
    # beside the running interpreter
    "runtime": _abspath,
    # registries (image/config, image/registry)
    "default-registry": _str,
    "insecure-registries": _strings,
    "certs-d": _strings,
    "max-concurrent-downloads": _positive,
    "max-concurrent-uploads": _positive,
    "push-chunk-size": _positive,
    # content trust (image/trust)
    "signature-policy": _abspath,
    "content-trust": _bool,
    # containers' defaults (engine)
    "cgroup-parent": _str,
    "log-driver": _one_of("k8s-file", "json-file", "none"),
    "log-opts": _log_opts,
    "default-ulimits": _ulimits,
    # networks' defaults (engine/networks)
    "bip": _bip,
    "mtu": _mtu,
    "dns": _ips,
    "dns-search": _strings,
    "dns-opts": _strings,
    "default-address-pools": _pools,
    # who writes containers' firewall rules (engine/firewall.py); $SANGJA_FIREWALL wins
    "firewall": _one_of("sangja", "netavark"),
}


def path() -> str:
    """The config file in force: $SANGJA_CONFIG, else engine.toml, else the older
    daemon.json if only it exists."""
    env = os.environ.get("SANGJA_CONFIG")
    if env:
        return env
    if not os.path.exists(DEFAULT_PATH) and os.path.exists(LEGACY_PATH):
        return LEGACY_PATH
    return DEFAULT_PATH


def load(file: str | None = None) -> dict:
    """The file's keys, checked ({} when there is no file).  Cached per path."""
    file = file or path()
    got = _cache.get(file)
    if got is None:
        got = _cache[file] = check(_read(file), file)
    return got


def clear_cache() -> None:
    """Read the file again next time (it is read once per process otherwise)."""
    _cache.clear()


def get(key: str, default=None):
    """One key of the config file, checked (KeyError for a key the schema lacks: a
    reader asking for an undeclared key is a bug, not a user's typo)."""
    if key not in SCHEMA:
        raise KeyError(key)
    return load().get(key, default)


def _read(file: str) -> dict:
    try:
        with open(file, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise SettingsError(f"read {file}: {e.strerror}", errno=e.errno, path=file)
    if not data.strip():
        return {}
    if file.endswith(".json"):
        from sangja.jsonio import loads

        try:
            doc = loads(data)
        except ValueError as e:
            raise SettingsError(f"{file}: invalid JSON: {e}", path=file)
        if not isinstance(doc, dict):
            raise SettingsError(f"{file}: want a JSON object", path=file)
        return doc
    import tomllib

    try:
        return tomllib.loads(data.decode("utf-8", "replace"))
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"{file}: invalid TOML: {e}", path=file)


def check(doc: dict, file: str = "config") -> dict:
    """Every key known, every value of its type -> the values as readers use them."""
    out = {}
    for key, value in doc.items():
        checker = SCHEMA.get(key)
        if checker is None:
            hint = ""
            if isinstance(value, dict):
                hint = " (keys are flat: write them at the top of the file, not in a table)"
            raise SettingsError(f'{file}: unknown key "{key}"{hint}', path=file)
        try:
            out[key] = checker(value)
        except KeyError as e:
            raise SettingsError(f'{file}: unknown key "{key}.{e.args[0]}"', path=file)
        except ValueError as e:
            raise SettingsError(f'{file}: key "{key}": {e}', path=file)
    return out
