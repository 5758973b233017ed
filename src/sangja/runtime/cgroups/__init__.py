"""Container cgroups: one manager interface (manager.py) with three drivers behind it, chosen
once, when the container is made, and found again from its record.

- v1 (cgroupfs, one hierarchy per controller, as here; manager.V1, limits in v1.py).
- v2 (cgroupfs, the unified hierarchy; manager.V2, limits in v2.py, devices as a BPF program).
- systemd (`--systemd-cgroup`: a transient scope made over D-Bus; systemd.py, sdbus.py).
What the host has, and its files: host.py. Device rules: devices.py; statistics and OOM
notifications (`events`): stats.py; the shapes of linux.resources both versions read:
resources.py.
"""


def driver():
    """-> ('v1' | 'v2', cgroup2 mountpoint or None, v1 hierarchies): this host's (host.py)."""
    from sangja.runtime.cgroups import host

    return host.driver()


def for_spec(spec, container_id, systemd=False):
    """The container's manager (nothing made yet), as config.json asks: systemd's when
    `systemd`, else the cgroupfs driver of this host."""
    spec_path = (spec.get("linux") or {}).get("cgroupsPath")
    if systemd:
        from sangja.runtime.cgroups import systemd as sd

        return sd.for_spec(spec_path, container_id)
    from sangja.runtime.cgroups import host
    from sangja.runtime.cgroups.manager import cgroupfs, inner_path

    mode, v2, v1 = host.driver()
    own = host.read_proc_cgroup()
    paths = {}
    if mode == "v1":
        for name, mnt, ctrls in v1:
            paths[name] = mnt + inner_path(spec_path, own.get(ctrls), container_id)
    if v2:
        paths[""] = v2 + inner_path(spec_path, own.get(""), container_id)
    return cgroupfs(mode == "v2", paths)


def load(record):
    """The manager of an existing container, from what state.json keeps (`to_json`)."""
    if "systemd" in record:
        from sangja.runtime.cgroups.systemd import Systemd

        return Systemd.from_json(record)
    from sangja.runtime.cgroups.manager import cgroupfs

    return cgroupfs(record["unified"], record["paths"])
