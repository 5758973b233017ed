"""`linux.resources` read field by field, as engines send it: a zero (or absent) number means
"leave as is", a field of the wrong type is an error naming it.

Each driver turns the fields into cgroup files (v1.py, v2.py); every write carries the spec
field it comes from, so an error says which setting the kernel refused.
"""

from sangja.errors import ConfigError


class Write:
    """One cgroup file write: `value` into `file` of `controller` (v1; '' on v2)."""

    __slots__ = ("field", "controller", "file", "value", "optional")

    def __init__(self, field, controller, file, value, optional=False):
        self.field = field  # "memory.limit": where it comes from, for errors
        self.controller = controller
        self.file = file
        self.value = value
        self.optional = optional  # a missing file is no error (a kernel feature we skip)

    def __repr__(self):
        return f"Write({self.controller}/{self.file}={self.value!r} <- {self.field})"

    def key(self):
        """(controller, file, value): what tests compare."""
        return (self.controller, self.file, self.value)


I64 = (-(1 << 63), (1 << 63) - 1)
U64 = (0, (1 << 64) - 1)
_MEMORY_BYTES = ("limit", "reservation", "swap", "kernel", "kernelTCP")


class Fields:
    """Typed access to one object of the resources, naming `where` in errors."""

    def __init__(self, obj, where):
        if obj is None:
            obj = {}
        if not isinstance(obj, dict):
            raise ConfigError(f"{where} must be an object")
        self.obj = obj
        self.where = where

    def sub(self, key):
        return Fields(self.obj.get(key), f"{self.where}.{key}")

    def has(self, key):
        return self.obj.get(key) is not None

    def int(self, key, unsigned=False):
        """The number, 0 when absent; within the spec's int64 (uint64 if `unsigned`)."""
        v = self.obj.get(key)
        if v is None:
            return 0
        if not isinstance(v, int) or isinstance(v, bool):
            raise ConfigError(f"{self.where}.{key} must be an integer")
        if unsigned and v < 0:
            raise ConfigError(f"{self.where}.{key} must not be negative")
        lo, hi = U64 if unsigned else I64
        if not lo <= v <= hi:
            raise ConfigError(f"{self.where}.{key} must be {lo} to {hi}, got {v}")
        if v < -1 and key in _MEMORY_BYTES and self.where.endswith(".memory"):
            # runc: -1 is unlimited, any other negative an error (not unlimited)
            raise ConfigError(f"{self.where}.{key} must be -1 (unlimited) or not negative, "
                              f"got {v}")  # fmt: skip
        return v

    def opt_int(self, key):
        """The number, or None when absent (for fields where 0 is a value: swappiness, idle)."""
        return self.int(key) if self.has(key) else None

    def bool(self, key):
        v = self.obj.get(key)
        if v is None:
            return None
        if not isinstance(v, bool):
            raise ConfigError(f"{self.where}.{key} must be a boolean")
        return v

    def str(self, key):
        v = self.obj.get(key)
        if v is None:
            return ""
        if not isinstance(v, str):
            raise ConfigError(f"{self.where}.{key} must be a string")
        return v

    def list(self, key):
        """The items of an array of objects, each as Fields."""
        v = self.obj.get(key)
        if v is None:
            return []
        if not isinstance(v, list):
            raise ConfigError(f"{self.where}.{key} must be an array")
        return [Fields(x, f"{self.where}.{key}[{i}]") for i, x in enumerate(v)]

    def dict(self, key):
        v = self.obj.get(key)
        if v is None:
            return {}
        if not isinstance(v, dict):
            raise ConfigError(f"{self.where}.{key} must be an object")
        return v


def cpuset_writes(cpu, controller):
    """cpu.cpus and cpu.mems: the same files on v1 (controller 'cpuset') and v2 ('')."""
    return [
        Write(f"cpu.{key}", controller, f"cpuset.{key}", cpu.str(key))
        for key in ("cpus", "mems")
        if cpu.str(key)
    ]


def memory_swap(mem):
    """(limit, swap) with runc's rule: an unlimited memory with swap unset means both
    unlimited; swap (memory+swap on v1) below the memory limit is an error."""
    limit, swap = mem.int("limit"), mem.int("swap")
    if swap > 0 and limit > 0 and swap < limit:
        raise ConfigError(
            f"{mem.where}.swap ({swap}) must not be below {mem.where}.limit ({limit}): "
            "it is memory+swap"
        )
    return limit, swap


def device_numbers(d):
    return f"{d.int('major', unsigned=True)}:{d.int('minor', unsigned=True)}"


def page_size(h):
    """'2MB', '1GB', '64KB': the name the kernel gives the hugetlb files."""
    ps = h.str("pageSize")
    if not ps or not ps[:-2].isdigit() or ps[-2:] not in ("KB", "MB", "GB"):
        raise ConfigError(f"{h.where}.pageSize must be like 2MB or 1GB, got {ps!r}")
    return ps


def cpu_quota_period(cpu):
    quota, period = cpu.int("quota"), cpu.int("period", unsigned=True)
    if quota < -1:
        raise ConfigError(f"{cpu.where}.quota must be -1 (unlimited) or positive")
    return quota, period


def rdma_lines(res):
    out = []
    for dev, lim in res.dict("rdma").items():
        f = Fields(lim, f"{res.where}.rdma.{dev}")
        parts = [dev]
        if f.has("hcaHandles"):
            parts.append(f"hca_handle={f.int('hcaHandles', unsigned=True)}")
        if f.has("hcaObjects"):
            parts.append(f"hca_object={f.int('hcaObjects', unsigned=True)}")
        if len(parts) > 1:
            out.append(" ".join(parts))
    return out
