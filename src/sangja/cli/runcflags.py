"""runc's command-line forms of the control verbs: update's flags (sizes as `96m`, Go's
integers) into LinuxResources, and ps's table (the `ps` program's output filtered to the
container's pids). The runtime takes and gives plain data (runtime/control.py); the shapes
of flags and of output are the CLI's (Go's sizes and durations: sangja.gounits).
"""

from sangja.errors import SangjaError
from sangja.gounits import parse_size

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
        except ValueError as e:
            why = str(e) if kind == "size" else f"invalid syntax: {val!r}"
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
