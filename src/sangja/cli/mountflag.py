"""`--mount` as Docker's CLI reads it: comma-separated key=value fields (CSV: a field may be
quoted) -> one HostConfig.Mounts object, the API's shape, which the engine checks
(engine/mounts.py parse_spec).

    type=bind|volume|tmpfs (default volume), source|src, target|destination|dst,
    readonly|ro[=BOOL], consistency,
    bind-propagation, bind-recursive=enabled|disabled|writable|readonly, bind-nonrecursive,
    volume-driver, volume-label=K=V, volume-nocopy[=BOOL], volume-opt=K=V,
    tmpfs-size=SIZE (64m, 1g), tmpfs-mode=OCTAL
"""

from __future__ import annotations

from sangja.cli.parse import UsageError

_BOOLS = {"1": True, "t": True, "true": True, "True": True, "TRUE": True, "0": False,
          "f": False, "false": False, "False": False, "FALSE": False}  # fmt: skip
_SIZE_MULT = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def _bool(key: str, v: str) -> bool:
    if v not in _BOOLS:
        raise UsageError(f"invalid value for {key}: {v}")
    return _BOOLS[v]


def _size(v: str) -> int:
    """go-units RAMInBytes: '64m', '1.5g', '4096', '512kb' (1024-based)."""
    import re

    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kKmMgGtTbB]?)[bB]?", v.strip())
    if not m:
        raise UsageError(f"invalid value for tmpfs-size: {v!r}")
    return int(float(m.group(1)) * _SIZE_MULT[m.group(2).lower()])


def parse_mount(value: str) -> dict:
    import csv

    try:
        fields = next(csv.reader([value]))
    except (csv.Error, StopIteration):
        raise UsageError(f"invalid --mount {value!r}")
    m: dict = {"Type": "volume"}
    bind, vol, tmpfs = {}, {}, {}

    def driver() -> dict:
        return vol.setdefault("DriverConfig", {})

    for field in fields:
        key, eq, val = field.partition("=")
        key = key.strip().lower()
        if not eq:
            if key in ("readonly", "ro", "volume-nocopy", "bind-nonrecursive"):
                val = "true"
            else:
                raise UsageError(f"invalid field '{field}' must be a key=value pair")
        if key == "type":
            m["Type"] = val
        elif key in ("source", "src"):
            m["Source"] = val
        elif key in ("target", "dst", "destination"):
            m["Target"] = val
        elif key in ("readonly", "ro"):
            m["ReadOnly"] = _bool(key, val)
        elif key == "consistency":
            m["Consistency"] = val
        elif key == "bind-propagation":
            bind["Propagation"] = val
        elif key == "bind-nonrecursive":
            bind["NonRecursive"] = _bool(key, val)
        elif key == "bind-recursive":
            if val not in ("enabled", "disabled", "writable", "readonly"):
                raise UsageError(f"invalid value for {key}: {val} (want enabled, disabled,"
                                 " writable or readonly)")  # fmt: skip
            if val == "disabled":
                bind["NonRecursive"] = True
            elif val == "writable":
                bind["ReadOnlyNonRecursive"] = True
            elif val == "readonly":
                bind["ReadOnlyForceRecursive"] = True
        elif key == "volume-driver":
            driver()["Name"] = val
        elif key == "volume-nocopy":
            vol["NoCopy"] = _bool(key, val)
        elif key == "volume-label":
            k, _, v = val.partition("=")
            vol.setdefault("Labels", {})[k] = v
        elif key == "volume-opt":
            k, eq2, v = val.partition("=")
            if not eq2:
                raise UsageError(f"invalid value for {key}: {val} (want KEY=VALUE)")
            driver().setdefault("Options", {})[k] = v
        elif key == "volume-subpath":
            vol["Subpath"] = val
        elif key == "tmpfs-size":
            tmpfs["SizeBytes"] = _size(val)
        elif key == "tmpfs-mode":
            try:
                tmpfs["Mode"] = int(val, 8)
            except ValueError:
                raise UsageError(f"invalid value for {key}: {val}")
        else:
            raise UsageError(f"unexpected key '{key}' in '{field}'")
    kind = m["Type"]
    if not m.get("Target"):
        raise UsageError("target is required")
    for opts, prefix, want in ((bind, "bind", "bind"), (vol, "volume", "volume"),
                               (tmpfs, "tmpfs", "tmpfs")):  # fmt: skip
        if opts and kind != want:
            raise UsageError(f"cannot mix '{prefix}-*' options with mount type '{kind}'")
    if bind:
        m["BindOptions"] = bind
    if vol:
        m["VolumeOptions"] = vol
    if tmpfs:
        m["TmpfsOptions"] = tmpfs
    return m
