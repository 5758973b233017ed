"""Go's units, as both command lines read them (Docker's `-m 512m`, `--health-interval 30s`;
runc's `update --memory 96m`, `events --interval 5s`): sizes as go-units RAMInBytes (binary)
or FromHumanSize (decimal: what Docker's json-file driver reads `max-size` with), durations as
Go's time.ParseDuration. ValueError carries Go's text."""

_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_DECIMAL_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # micro sign
    "μs": 1e-6,  # Greek mu: Go takes both
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_size(text, decimal: bool = False):
    """'96m', '1.5G', '512KiB', '2 MB', '100' -> bytes: binary units (RAMInBytes), or with
    `decimal` every unit decimal, "KiB" too, as go-units' FromHumanSize reads it."""
    s = str(text).strip()
    num = s.rstrip("bBiI kKmMgGtTpP")
    rest = s[len(num) :].strip().lower()
    unit = rest[:1] if rest[:1] in "kmgtp" and rest else ""
    tail = rest[len(unit) :]
    try:
        if tail not in ("", "b", "i", "ib") or (tail.startswith("i") and not unit):
            raise ValueError
        value = float(num)
        if value < 0 or not num or not num[0].isdigit():
            raise ValueError
    except ValueError:
        raise ValueError(f"invalid size: {text!r}") from None
    return int(value * (_DECIMAL_UNITS if decimal else _SIZE_UNITS)[unit])


def parse_duration(text):
    """'5s', '100ms', '1m30s', '1.5h', '-2m', '0' -> seconds (a float)."""
    s = str(text).strip()
    sign = -1 if s.startswith("-") else 1
    s = s.lstrip("+-")
    if s == "0":
        return 0.0
    bad = ValueError(f'time: invalid duration "{text}"')
    if not s:
        raise bad
    total, i = 0.0, 0
    while i < len(s):
        j = i
        while j < len(s) and (s[j].isdigit() or s[j] == "."):
            j += 1
        k = j
        while k < len(s) and not (s[k].isdigit() or s[k] == "."):
            k += 1
        unit = s[j:k]
        try:
            if unit not in _DURATION_UNITS:
                raise ValueError
            total += float(s[i:j]) * _DURATION_UNITS[unit]
        except ValueError:
            raise bad from None
        i = k
    return sign * total
