"""Docker's units (go-units): sizes, durations and times as its CLI reads and prints them."""

from __future__ import annotations

import re
import time

_SIZE = re.compile(r"^(\d+(?:\.\d+)?) *([kKmMgGtTpP]?)[bB]?$")
_MULT = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(text: str) -> int:
    """'512m', '1g', '1.5G', '100kb', '4096' -> bytes (1024-based, as `-m`).  ValueError."""
    m = _SIZE.match(str(text).strip())
    if not m:
        raise ValueError(f"invalid size: '{text}'")
    return int(float(m.group(1)) * _MULT[m.group(2).lower()])


def human_size(n: float) -> str:
    """1000-based, 3 significant digits: '1.98MB', '762B' (image and container sizes)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.3g}{unit}"
        n /= 1000
    return f"{n}B"


def bytes_size(n: float) -> str:
    """1024-based, as `stats` prints memory: '1.5MiB', '0B'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.4g}{unit}"
        n /= 1024
    return f"{n}B"


def human_duration(seconds: float) -> str:
    """go-units HumanDuration: 'Less than a second', '5 seconds', 'About a minute', ..."""
    s = int(seconds)
    if seconds < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(s / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


_DUR = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DUR_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration: '10s', '1m30s', '500ms' -> seconds.  ValueError."""
    t = str(text).strip()
    if t in ("0", ""):
        return 0.0
    sign = -1 if t.startswith("-") else 1
    t = t.lstrip("+-")
    pos, total = 0, 0.0
    for m in _DUR.finditer(t):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DUR_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(t) or not t:
        raise ValueError(f'time: invalid duration "{text}"')
    return sign * total


def parse_timestamp(text: str, now: float | None = None) -> float:
    """`--since`/`--until`: a Unix time ('1700000000.5'), an RFC 3339 date or time
    ('2024-01-02', '2024-01-02T15:04:05Z', with an offset), or a duration before now ('10m',
    '1h30m').  -> Unix seconds.  ValueError."""
    import datetime

    t = str(text).strip()
    now = time.time() if now is None else now
    try:
        return float(t)
    except ValueError:
        pass
    try:
        return now - parse_duration(t)
    except ValueError:
        pass
    s = t.replace("Z", "+00:00")
    if "." in s:  # Python's fromisoformat wants at most 6 digits of fraction
        head, _, rest = s.partition(".")
        digits = re.match(r"\d+", rest)
        if digits:
            frac = digits.group(0)[:6].ljust(6, "0")
            s = f"{head}.{frac}{rest[digits.end() :]}"
    try:
        d = datetime.datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(f"invalid time {text!r} (want a Unix time, RFC 3339, or a duration)")
    if d.tzinfo is None:
        d = d.astimezone()  # local time, as Docker reads a time without an offset
    return d.timestamp()


def rfc3339_nano(ts: float | None) -> str:
    """Unix seconds -> '2024-01-02T15:04:05.123456789Z' (Docker's JSON times); the zero
    time for None."""
    if not ts:
        return "0001-01-01T00:00:00Z"
    sec = int(ts)
    nanos = int(round((ts - sec) * 1e9))
    if nanos >= 1_000_000_000:
        sec, nanos = sec + 1, nanos - 1_000_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{nanos:09d}Z"
