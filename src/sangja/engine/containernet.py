"""Networks in the container engine's life cycle: what engine/containers.py's hooks do.

create    the body's network part checked (networks exist, addresses in their subnets,
          Docker's conflicting options), `container:NAME` turned into the id, and the
          container's endpoints recorded (engine/endpoints.py);
start     the container's network namespace made and netavark started on it before
          config.json is written (the namespace goes in as a `path` namespace; the
          /etc/hostname, /etc/hosts and /etc/resolv.conf the container gets are written);
          netavark works while conmon has the runtime create the container, and is waited
          for (`finish`) before the runtime's `start` lets the process run;
stop      (the run torn down) addresses, ports, rules and the namespace released;
connect/disconnect of a running container: its /etc/hosts and /etc/resolv.conf rewritten;
rm        the endpoints forgotten.

A build's RUN step (engine/build/run.py) has no container record: `step_begin` gives its
container an endpoint on the default bridge and sets it up at once (the same lease,
namespace, netavark set-up and etc files as a container's start), `step_end` tears it
down and forgets it.  The build notes the step's id in its working dir first, so a killed
build's step is released by the next build's sweep (engine/build/workspace.py), and
`Endpoints.sweep` leaves `build-` ids to it.
"""

from __future__ import annotations

import os

from sangja.engine.endpoints import Endpoints, network_mode


def endpoints(cs) -> Endpoints:
    e = cs.__dict__.get("_endpoints")
    if e is None:
        e = cs.__dict__["_endpoints"] = Endpoints(cs.store, cs.runtime_root)
    return e


def prepare(cs, body: dict) -> dict:
    """At create, after createconfig.normalize: checked; `container:X` names X's id."""
    hc = body["HostConfig"]
    mode = network_mode(hc)
    if mode.startswith("container:"):
        ref = mode.split(":", 1)[1]
        hc["NetworkMode"] = "container:" + cs.resolve(ref).id if ref else mode
    endpoints(cs).validate(body, lambda ref: cs.resolve(ref).id)
    return body


def attach(cs, rec) -> None:
    endpoints(cs).attach(rec.id, rec.spec)


def image_exposed(cs, rec) -> list[str]:
    conf = cs._image_conf(rec.image) if hasattr(cs, "_image_conf") else {}
    return sorted((conf.get("config") or {}).get("ExposedPorts") or {})


def begin(cs, rec):
    """First thing at start: -> the Sandbox, its netavark still running."""
    return endpoints(cs).setup(rec.id, rec.name, rec.spec, hostname=None,
                               image_exposed=image_exposed(cs, rec),
                               resolve_container=lambda ref: cs.resolve(ref).id,
                               defer=True)  # fmt: skip


def setup(cs, rec, spec: dict, paths, sb) -> None:
    """Before config.json is written: the namespace into the spec, the etc files."""
    from sangja.engine import dns

    e = endpoints(cs)
    try:
        nss = spec["linux"]["namespaces"]
        nss[:] = [ns for ns in nss if ns.get("type") != "network"]
        if sb.netns:
            nss.append({"type": "network", "path": sb.netns})
        if sb.share:  # container:X: X's files and hostname, as Docker does
            other = cs.paths(sb.share)
            for src, dst in ((other.hostname, paths.hostname), (other.hosts, paths.hosts),
                             (other.resolv, paths.resolv)):  # fmt: skip
                try:
                    with open(src) as f:
                        text = f.read()
                except OSError:
                    continue
                dns.write(dst, text)
                if dst == paths.hostname and "hostname" in spec and text.strip():
                    spec["hostname"] = text.strip()
        else:
            e.files(sb, rec.spec, spec.get("hostname") or os.uname().nodename)
            dns.write(paths.hostname, sb.hostname)
            dns.write(paths.hosts, sb.hosts)
            dns.write(paths.resolv, sb.resolv)
    except BaseException:
        e.teardown(rec.id)
        raise


def refresh_files(cs, rec) -> None:
    """After `network connect`/`disconnect` of a running container: its /etc/hosts and
    /etc/resolv.conf rewritten for the networks it is on now (a network with names brings
    its aardvark-dns as nameserver, as Docker's embedded DNS comes with a user network).
    Its /etc/hostname says the hostname it was started with."""
    from sangja.engine import dns

    paths = cs.paths(rec.id)
    try:
        with open(paths.hostname) as f:
            hostname = f.read().strip()
    except OSError:  # not started by this engine's start (no files to update)
        return
    sb = endpoints(cs).current_files(rec.id, rec.spec, hostname)
    if sb is None:
        return
    dns.rewrite(paths.hosts, sb.hosts)
    dns.rewrite(paths.resolv, sb.resolv)


def finish(cs, rec, sb) -> None:
    if sb is not None:
        endpoints(cs).finish(rec.id, sb)


def teardown(cs, rec) -> list[str]:
    return endpoints(cs).teardown(rec.id)


def forget(cs, rec) -> list[str]:
    return endpoints(cs).forget(rec.id)


def step_begin(store, runtime_root: str, cid: str, hostname: str):
    """A build step's network on the default bridge, set up now: -> the Sandbox (its
    namespace, the contents of its /etc/hostname, /etc/hosts, /etc/resolv.conf)."""
    e = Endpoints(store, runtime_root)
    body = {"Config": {}, "HostConfig": {"NetworkMode": "bridge"}}
    try:
        e.attach(cid, body)
        return e.setup(cid, hostname, body, hostname=hostname)
    except BaseException:
        try:
            e.forget(cid)
        except Exception:  # the first error is the one to report
            pass
        raise


def step_end(store, runtime_root: str, cid: str) -> list[str]:
    """The step's network torn down, its endpoint forgotten (idempotent). -> warnings."""
    return Endpoints(store, runtime_root).forget(cid)


def settings(cs, rec) -> dict:
    return endpoints(cs).settings(rec.id, rec.name, rec.spec, image_exposed(cs, rec))


def summary_ports(ns: dict) -> list[dict]:
    """/containers/json's Ports from NetworkSettings.Ports (published, then exposed)."""
    out = []
    for port, lst in (ns.get("Ports") or {}).items():
        num, _, proto = port.partition("/")
        if not lst:
            out.append({"PrivatePort": int(num), "Type": proto})
            continue
        for b in lst:
            out.append({"IP": b["HostIp"], "PrivatePort": int(num),
                        "PublicPort": int(b["HostPort"]), "Type": proto})  # fmt: skip
    return out


def ports_column(ports: list[dict]) -> str:
    """`ps`'s PORTS: "0.0.0.0:8080->80/tcp, 443/tcp" (Docker's, ranges not folded)."""
    parts = []
    for p in ports:
        if "PublicPort" in p:
            ip = p["IP"]
            host = f"[{ip}]" if ":" in ip else ip
            parts.append(f"{host}:{p['PublicPort']}->{p['PrivatePort']}/{p['Type']}")
        else:
            parts.append(f"{p['PrivatePort']}/{p['Type']}")
    return ", ".join(parts)


def networks_of(cs, rec) -> dict:
    """NetworkSettings.Networks (for ps --format {{.Networks}} and /containers/json)."""
    return settings(cs, rec)["Networks"]
