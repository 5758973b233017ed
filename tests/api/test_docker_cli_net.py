"""Debian's docker CLI (20.10) against `sangja system service`: networks, published ports,
volumes, events, commit and export (engine/networks.py, volumes.py, events.py, commit.py
through api/networks.py, volumes.py, system.py, containers.py), each checked by what the
client shows and by what the containers do (a ping by name, a connection to a published
port from the test's network namespace, a file shared through a volume)."""

import json
import os
import subprocess
import sys
import tarfile
import time
import urllib.request

import pytest
from apikit import DOCKER, wait_for
from enginekit import BUSYBOX

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "net"))  # fmt: skip

import netkit  # noqa: E402

needs_net = pytest.mark.skipif(bool(netkit.missing_tools()), reason=netkit.missing_tools())

SLEEP = ["sh", "-c", 'trap "exit 0" TERM; while true; do sleep 0.1; done']


APPNET_IP = '{{(index .NetworkSettings.Networks "appnet").IPAddress}}'


def retry(cmd):
    """A shell loop: cmd until it succeeds (bounded: a hang guard, not a measure)."""
    return f"for i in $(seq 100); do {cmd} && exit 0; sleep 0.1; done; exit 1"


@needs_net
def test_network_commands_and_a_ping_by_name(api):
    api.ok("pull", BUSYBOX)
    nid = api.ok("network", "create", "--subnet", "10.89.7.0/24", "--label", "team=a",
                 "appnet").strip()  # fmt: skip
    assert len(nid) == 64
    rows = api.ok("network", "ls", "--format", "{{.Name}} {{.Driver}}").splitlines()
    assert {"appnet bridge", "bridge bridge", "host host", "none null"} <= set(rows), rows
    assert api.ok("network", "ls", "-q", "--filter", "label=team=a").split() == [nid[:12]]
    assert api.ok("network", "ls", "-q", "--filter", "label=team=b") == ""
    got = api.json("network", "inspect", "appnet")[0]
    assert got["Id"] == nid and got["Driver"] == "bridge" and got["Labels"] == {"team": "a"}
    assert got["IPAM"]["Config"][0]["Subnet"] == "10.89.7.0/24"
    r = api.fail("network", "create", "--subnet", "10.89.8.0/24", "appnet")
    assert "already exists" in r.err, r
    r = api.fail("network", "inspect", "nonet")
    assert "No such network: nonet" in r.err, r

    # one container on the user network from its create, one connected later with an alias
    api.ok("run", "-d", "--name", "a", "--network", "appnet", "--network-alias", "ay",
           BUSYBOX, *SLEEP)  # fmt: skip
    api.ok("run", "-d", "--name", "b", BUSYBOX, *SLEEP)
    api.ok("network", "connect", "--alias", "bee", "--ip", "10.89.7.50", "appnet", "b")
    nets = api.json("inspect", "--format", "{{json .NetworkSettings.Networks}}", "b")
    assert set(nets) == {"bridge", "appnet"}, nets
    assert nets["appnet"]["IPAddress"] == "10.89.7.50"
    assert "bee" in nets["appnet"]["Aliases"], nets
    a_ip = api.ok("inspect", "--format", APPNET_IP, "a").strip()
    assert a_ip.startswith("10.89.7.")
    for name in ("b", "bee"):
        out = api.ok("exec", "a", "sh", "-c", retry(f"ping -c 1 -W 2 {name}"))
        assert "10.89.7.50" in out, out
    out = api.ok("exec", "b", "sh", "-c", retry("ping -c 1 -W 2 ay"))
    assert a_ip in out, out
    members = api.json("network", "inspect", "--format", "{{json .Containers}}", "appnet")
    assert sorted(m["Name"] for m in members.values()) == ["a", "b"], members

    # in use: not removable; disconnect, then the last container's rm frees it
    r = api.fail("network", "rm", "appnet")
    assert "active endpoints" in r.err, r
    api.ok("network", "disconnect", "appnet", "b")
    nets = api.json("inspect", "--format", "{{json .NetworkSettings.Networks}}", "b")
    assert set(nets) == {"bridge"}, nets
    r = api.fail("network", "disconnect", "appnet", "b")
    api.ok("rm", "-f", "a", "b")
    assert api.ok("network", "rm", "appnet") == "appnet\n"
    assert "appnet" not in api.ok("network", "ls")
    r = api.fail("network", "rm", "bridge")
    assert "pre-defined network" in r.err, r

    # prune: the unused user networks only
    api.ok("network", "create", "spare")
    out = api.ok("network", "prune", "-f")
    assert out == "Deleted Networks:\nspare\n\n" or out.startswith("Deleted Networks:\nspare\n")
    names = api.ok("network", "ls", "--format", "{{.Name}}").split()
    assert sorted(names) == ["bridge", "host", "none"], names


def _http_get(url, guard=30):
    def get():
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read().decode()
        except OSError:
            return None

    return wait_for(get, f"GET {url}", guard=guard)


@needs_net
def test_run_publishes_ports(api):
    """-p and -P through the API: a connection from the test's network namespace (where
    the service runs) reaches the container's server."""
    api.ok("pull", BUSYBOX)
    api.ok("run", "-d", "--name", "web", "-h", "webhost", "-p", "8080:80", "--expose", "81",
           "-P", BUSYBOX, "httpd", "-f", "-p", "80", "-h", "/etc")  # fmt: skip
    ports = api.json("inspect", "--format", "{{json .NetworkSettings.Ports}}", "web")
    assert ports["80/tcp"][0] == {"HostIp": "0.0.0.0", "HostPort": "8080"}, ports
    rnd = int(ports["81/tcp"][0]["HostPort"])
    assert rnd > 1024
    out = api.ok("port", "web").splitlines()
    assert "80/tcp -> 0.0.0.0:8080" in out and f"81/tcp -> 0.0.0.0:{rnd}" in out, out
    assert "0.0.0.0:8080->80/tcp" in api.ok("ps", "--format", "{{.Ports}}")
    assert _http_get("http://127.0.0.1:8080/hostname").strip() == "webhost"
    # the port is taken while web runs
    r = api.docker("run", "-d", "--name", "dup", "-p", "8080:80", BUSYBOX, "true")
    assert r.rc != 0, r
    api.ok("rm", "-f", "web")
    if "dup" in api.ok("ps", "-a", "--format", "{{.Names}}").split():
        api.ok("rm", "-f", "dup")


def test_volumes_shared_by_two_containers(api):
    api.ok("pull", BUSYBOX)
    assert api.ok("volume", "create", "--label", "k=v", "data") == "data\n"
    assert api.ok("volume", "ls", "-q") == "data\n"
    assert api.ok("volume", "ls", "-q", "--filter", "label=k=v") == "data\n"
    assert api.ok("volume", "ls", "-q", "--filter", "label=k=w") == ""
    v = api.json("volume", "inspect", "data")[0]
    assert v["Name"] == "data" and v["Driver"] == "local" and v["Labels"] == {"k": "v"}
    assert v["Mountpoint"].endswith("/data/_data")
    assert api.sj("volume", "inspect", "--format", "{{.Mountpoint}}",
                  "data").out.strip() == v["Mountpoint"]  # fmt: skip
    # one container writes while it runs, another reads it
    api.ok("run", "-d", "--name", "writer", "-v", "data:/data", BUSYBOX, "sh", "-c",
           'echo shared > /data/f; trap "exit 0" TERM; while true; do sleep 0.1; done')  # fmt: skip
    out = api.ok("run", "--rm", "-v", "data:/data:ro", BUSYBOX, "sh", "-c",
                 retry("cat /data/f"))  # fmt: skip
    assert out == "shared\n"
    r = api.docker("run", "--rm", "-v", "data:/data:ro", BUSYBOX, "touch", "/data/g")
    assert r.rc != 0 and "Read-only file system" in r.err, r
    with open(os.path.join(v["Mountpoint"], "f")) as f:
        assert f.read() == "shared\n"
    r = api.fail("volume", "rm", "data")
    assert "in use" in r.err, r
    # --mount and an anonymous volume
    api.ok("run", "--name", "anon", "-v", "/scratch", "--mount", "source=data,target=/d2",
           BUSYBOX, "cat", "/d2/f")  # fmt: skip
    names = api.ok("volume", "ls", "-q").split()
    assert len(names) == 2 and "data" in names, names
    api.ok("rm", "-f", "writer", "anon")
    r = api.fail("volume", "inspect", "nothing")
    assert "no such volume" in r.err.lower(), r
    api.ok("volume", "create", "spare")
    assert api.ok("volume", "rm", "spare") == "spare\n"
    # prune (API 1.41): every unused local volume, named or anonymous
    out = api.ok("volume", "prune", "-f")
    assert "Deleted Volumes:" in out and "data" in out, out
    assert api.ok("volume", "ls", "-q") == ""
    api.ok("volume", "rm", "-f", "nothing")  # -f: a missing volume is not an error


def test_events_since_until_and_follow(api):
    api.ok("pull", BUSYBOX)
    t0 = time.time() - 1
    api.ok("run", "--name", "ev", BUSYBOX, "true")

    def seen():
        out = api.ok("events", "--since", f"{t0:.3f}", "--until", f"{time.time():.3f}",
                     "--filter", "container=ev", "--format", "{{.Type}} {{.Action}}")  # fmt: skip
        lines = out.splitlines()
        return lines if "container die" in lines else None

    lines = wait_for(seen, "the die event")
    acts = [ln.split()[1] for ln in lines]
    assert acts.index("create") < acts.index("start") < acts.index("die"), lines
    first = json.loads(api.ok("events", "--since", f"{t0:.3f}", "--until",
                              f"{time.time():.3f}", "--filter", "event=create",
                              "--format", "{{json .}}").splitlines()[0])  # fmt: skip
    assert first["Type"] == "container" and first["Actor"]["Attributes"]["name"] == "ev"
    assert first["Actor"]["Attributes"]["image"].startswith(BUSYBOX)
    # an --until in the past: the logged ones only, and the client returns
    assert api.ok("events", "--since", "1", "--until", f"{t0 - 3600:.0f}") == ""

    # no --until: new events as they happen, until the client goes
    p = subprocess.Popen([DOCKER,
                          "events", "--filter", "event=start", "--format",
                          "{{.Actor.Attributes.name}}"], env=api.env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        time.sleep(0.5)  # (not an assertion: the follow may start before or after the run)
        api.ok("start", "ev")
        line = p.stdout.readline()
        assert line == "ev\n", (line, p.stderr)
    finally:
        p.terminate()
        p.wait(30)
    assert api.ok("version", "--format", "{{.Server.APIVersion}}").strip() == "1.41"
    api.ok("rm", "-f", "ev")


def test_commit_and_export(api, tmp_path):
    api.ok("pull", BUSYBOX)
    api.ok("run", "-d", "--name", "src", BUSYBOX, "sh", "-c",
           'echo made > /made; trap "exit 0" TERM; while true; do sleep 0.1; done')  # fmt: skip
    wait_for(lambda: api.docker("exec", "src", "cat", "/made").out == "made\n", "/made")
    iid = api.ok("commit", "-c", "ENV K=v", "-c", "CMD [\"cat\", \"/made\"]", "-m", "a note",
                 "-a", "me <me@x>", "src", "mine/committed:1").strip()  # fmt: skip
    assert iid.startswith("sha256:"), iid
    img = api.json("image", "inspect", "mine/committed:1")[0]
    assert img["Id"] == iid and img["Comment"] == "a note" and img["Author"] == "me <me@x>"
    assert "K=v" in img["Config"]["Env"] and img["Config"]["Cmd"] == ["cat", "/made"]
    assert api.ok("run", "--rm", "mine/committed:1") == "made\n"
    # the container was paused for the commit and runs on
    assert api.ok("inspect", "--format", "{{.State.Status}}", "src").strip() == "running"
    r = api.fail("commit", "nothing")
    assert "No such container: nothing" in r.err, r

    tar = str(tmp_path / "src.tar")
    api.ok("export", "-o", tar, "src")
    with tarfile.open(tar) as t:
        names = t.getnames()
        assert "made" in names and "bin/busybox" in names, names[:20]
        assert t.extractfile("made").read() == b"made\n"
    raw = api.raw("export", "src")
    assert raw.rc == 0 and raw.out[257:262] == b"ustar", raw
    r = api.fail("export", "nothing")
    assert "No such container: nothing" in r.err, r
    api.ok("rm", "-f", "src")
    api.ok("rmi", "mine/committed:1")


@needs_net
def test_run_with_network_options_and_volumes_from(api):
    """The create body's EndpointsConfig (IPAMConfig, aliases), Dns*, ExtraHosts,
    VolumesFrom and Mounts as the docker CLI sends them; ps's Networks and Ports."""
    api.ok("pull", BUSYBOX)
    api.ok("network", "create", "--subnet", "10.89.9.0/24", "opts")
    api.ok("run", "-d", "--name", "holder", "--network", "opts", "--ip", "10.89.9.9",
           "--network-alias", "hold", "-v", "/shared", "--mount",
           "type=tmpfs,target=/fast", BUSYBOX, *SLEEP)  # fmt: skip
    assert api.ok("ps", "--format", "{{.Names}} {{.Networks}}").split() == ["holder", "opts"]
    assert api.ok("ps", "-q", "--filter", "network=opts").split() != []
    assert api.ok("ps", "-q", "--filter", "network=bridge") == ""
    assert api.ok("ps", "--format", "{{.Names}}", "--filter", "volume=/shared") == "holder\n"
    net = api.json("inspect", "--format", "{{json .NetworkSettings.Networks.opts}}", "holder")
    assert net["IPAddress"] == "10.89.9.9" and "hold" in net["Aliases"], net
    assert net["IPAMConfig"]["IPv4Address"] == "10.89.9.9", net
    mounts = api.json("inspect", "--format", "{{json .Mounts}}", "holder")
    assert {m["Destination"]: m["Type"] for m in mounts} == {
        "/shared": "volume",
        "/fast": "tmpfs",
    }, mounts
    api.ok("exec", "holder", "sh", "-c", "echo from-holder > /shared/x")
    script = (
        "cat /shared/x; grep nameserver /etc/resolv.conf; grep search /etc/resolv.conf;"
        " grep myhost /etc/hosts; " + retry("ping -c 1 -W 2 hold >/dev/null")
    )
    out = api.ok("run", "--rm", "--volumes-from", "holder", "--network", "opts", "--dns",
                 "10.89.9.1", "--dns-search", "example.test", "--add-host",
                 "myhost:10.1.2.3", BUSYBOX, "sh", "-c", script).splitlines()  # fmt: skip
    assert out[0] == "from-holder", out
    assert "example.test" in out[2] and out[3].split()[:2] == ["10.1.2.3", "myhost"], out
    # NetworkMode container:NAME and none
    out = api.ok("run", "--rm", "--network", "container:holder", BUSYBOX, "ip", "-4", "addr")
    assert "10.89.9.9/24" in out, out
    out = api.ok("run", "--rm", "--network", "none", BUSYBOX, "ip", "-o", "link")
    assert [ln.split(":")[1].strip() for ln in out.splitlines()] == ["lo"], out
    r = api.docker("run", "--rm", "--network", "nonet", BUSYBOX, "true")
    assert r.rc == 125 and "nonet" in r.err, r
    api.ok("rm", "-f", "-v", "holder")
    api.ok("network", "rm", "opts")
