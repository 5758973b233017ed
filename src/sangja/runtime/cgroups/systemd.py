"""The systemd cgroup driver (`--systemd-cgroup`): cgroupsPath is `slice:prefix:name`, the
container's cgroup a transient scope `prefix-name.scope` in that slice, made by systemd.

What is here: runc's reading of the path and of slice names, and the check that systemd
runs. Asking systemd for the scope (StartTransientUnit over D-Bus) is not implemented: with
systemd running, the driver says so rather than make cgroups behind systemd's back.
"""

import os

from sangja.errors import ConfigError, SangjaError

RUNNING_MARK = "/run/systemd/system"


def is_running():
    return os.path.isdir(RUNNING_MARK)


def parse_path(cgroups_path, container_id):
    """-> (slice, prefix, name): runc's defaults when cgroupsPath is empty."""
    if not cgroups_path:
        return "system.slice", "runc", container_id
    parts = cgroups_path.split(":")
    if len(parts) != 3:
        raise ConfigError(
            'expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, '
            f"got {cgroups_path!r} instead"
        )
    return parts[0] or "system.slice", parts[1], parts[2]


def unit_name(prefix, name):
    """The unit systemd makes: a scope, unless the name is a slice itself."""
    if name.endswith(".slice"):
        return name
    return f"{prefix}-{name}.scope" if prefix else f"{name}.scope"


def expand_slice(slice_name):
    """'a-b-c.slice' -> '/a.slice/a-b.slice/a-b-c.slice' (systemd's nesting by dashes)."""
    if not slice_name.endswith(".slice") or "/" in slice_name:
        raise ConfigError(f"invalid slice name {slice_name!r}")
    base = slice_name[: -len(".slice")]
    if base == "-":
        return "/"
    if not base or base.startswith("-") or base.endswith("-") or "--" in base:
        raise ConfigError(f"invalid slice name {slice_name!r}")
    path, prefix = "", ""
    for part in base.split("-"):
        prefix = f"{prefix}-{part}" if prefix else part
        path += f"/{prefix}.slice"
    return path


def for_spec(cgroups_path, container_id):
    slice_name, prefix, name = parse_path(cgroups_path, container_id)
    expand_slice(slice_name)
    unit_name(prefix, name)
    if not is_running():
        raise SangjaError(f"systemd cgroup driver: systemd is not running (no {RUNNING_MARK})")
    raise SangjaError(
        "systemd cgroup driver: creating the transient scope over D-Bus is not implemented "
        "in sangja; run without --systemd-cgroup (the cgroupfs driver)"
    )
