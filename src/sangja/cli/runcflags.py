"""runc's command-line forms of the control verbs: update's flags (sizes as `96m`, Go's
integers) into LinuxResources, events' --interval (a Go duration), and ps's table (the `ps`
program's output filtered to the container's pids). The runtime takes and gives plain data
(runtime/control.py); the shapes of flags and of output are the CLI's.
"""

from sangja.errors import SangjaError

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(text):
    """docker/go-units RAMInBytes: '96m', '1.5G', '512KiB', '100' -> bytes (binary units)."""
    s = text.strip()
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
        raise SangjaError(f"invalid size: {text!r}")
    return int(value * _UNITS[unit])


_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_duration(text):
    """Go's time.ParseDuration: '5s', '100ms', '1m30s', '1.5h' -> seconds."""
    s = text.strip()
    sign = -1 if s.startswith("-") else 1
    s = s.lstrip("+-")
    if s == "0":
        return 0.0
    total, i = 0.0, 0
    if not s:
        raise ValueError(text)
    while i < len(s):
        j = i
        while j < len(s) and (s[j].isdigit() or s[j] == "."):
            j += 1
        k = j
        while k < len(s) and not (s[k].isdigit() or s[k] == "."):
            k += 1
        num, unit = s[i:j], s[j:k]
        if not num or unit not in _DURATION_UNITS or num == ".":
            raise ValueError(text)
        total += float(num) * _DURATION_UNITS[unit]
        i = k
    return sign * total


# flag -> (section, field, kind): what `runc update --flag V` sets
UPDATE_FLAGS = {
    "blkio_weight": ("blockIO", "weight", "uint"),
    "cpu_period": ("cpu", "period", "uint"),
    "cpu_quota": ("cpu", "quota", "int"),
    "cpu_share": ("cpu", "shares", "uint"),
    "cpu_rt_period": ("cpu", "realtimePeriod", "uint"),
    "cpu_rt_runtime": ("cpu", "realtimeRuntime", "int"),
    "cpuset_cpus": ("cpu", "cpus", "str"),
    "cpuset_mems": ("cpu", "mems", "str"),
    "memory": ("memory", "limit", "size"),
    "memory_reservation": ("memory", "reservation", "size"),
    "memory_swap": ("memory", "swap", "size"),
    "kernel_memory": ("memory", "kernel", "size"),
    "kernel_memory_tcp": ("memory", "kernelTCP", "size"),
    "pids_limit": ("pids", "limit", "int"),
}


def resources_from_flags(opts):
    """runc update's flags (parsed, by canonical name) -> a LinuxResources dict."""
    if opts.get("l3_cache_schema") or opts.get("mem_bw_schema"):
        raise SangjaError("Intel RDT is not supported by sangja")
    res = {}
    for key, (section, field, kind) in UPDATE_FLAGS.items():
        val = opts.get(key)
        if val is None or val == "":
            continue
        flag = key.replace("_", "-")
        try:
            if kind == "str":
                v = val
            elif kind == "size":
                v = -1 if val.strip() == "-1" else parse_size(val)
            else:
                v = int(val)
                if kind == "uint" and v < 0:
                    raise ValueError
        except (ValueError, SangjaError) as e:
            why = str(e) if isinstance(e, SangjaError) else f"invalid syntax: {val!r}"
            raise SangjaError(f"invalid value for {flag}: {why}")
        res.setdefault(section, {})[field] = v
    return res


def ps_table(pids, ps_args):
    """`ps ps_args` (default -ef) filtered to `pids`, header kept (runc)."""
    import subprocess

    try:
        p = subprocess.run(["ps", *(ps_args or ["-ef"])], capture_output=True, text=True)
    except OSError as e:
        raise SangjaError(f"ps: {e.strerror}", errno=e.errno)
    if p.returncode != 0:
        raise SangjaError(f"exit status {p.returncode}: {p.stdout}{p.stderr}")
    lines = p.stdout.split("\n")
    header = lines[0].split()
    if "PID" not in header:
        raise SangjaError("couldn't find PID field in ps output")
    col = header.index("PID")
    want = set(pids)
    out = [lines[0]]
    for line in lines[1:]:
        fields = line.split()
        if not fields:
            continue
        try:
            pid = int(fields[col])
        except (ValueError, IndexError):
            raise SangjaError(f"unable to parse pid: {line!r}")
        if pid in want:
            out.append(line)
    return "\n".join(out) + "\n"
