"""RUN's network, as Docker's: by default (and with `--network bridge`) each RUN's container
is on the engine's default bridge (an address on its subnet, a default route through the
gateway, the host reached there), set up by the engine's own network code and torn down
with the step; `none` has lo only, `host` the host's interfaces.  After a build -- done,
failed in a RUN, or killed with -9 (then the next build sweeps) -- no namespace, bridge,
veth, firewall rule or lease is left (the `sj` fixture checks each test's end; these
tests check in between too).  All in the registries' network namespace (tests/build
conftest), never the host's own."""

import http.server
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading

import pytest
from buildkit import write_context
from registrykit import sangja_binary
from test_networks import held, network_rules, veths

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "net"))  # fmt: skip

import netkit  # noqa: E402

pytestmark = pytest.mark.skipif(bool(netkit.missing_tools()), reason=netkit.missing_tools())

GATEWAY = "172.17.0.1"  # the default bridge's (engine/networks.py bridge_settings)


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"hello from the host side, you are {self.client_address[0]}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture
def server(sj):
    """An HTTP server on every address of the test's namespace (the host side of the
    bridge): -> its port.  The socket is made in this thread, in the namespace."""
    srv = http.server.ThreadingHTTPServer(("0.0.0.0", 0), _Hello)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def build(sj, ctx, *args):
    r = sj("build", *args, str(ctx))
    assert r.rc == 0, f"build failed: {r}"
    return r.out


def nothing_held(sj):
    try:
        db = held(sj)
    except sqlite3.OperationalError:  # no network tables: no step was on the bridge
        db = {"endpoints": [], "sandboxes": []}
    return {"veths": veths(), "rules": network_rules(), "endpoints": db["endpoints"],
            "sandboxes": db["sandboxes"],
            "netns": os.listdir(os.path.join(sj.run_root, "@net", "netns"))
            if os.path.isdir(os.path.join(sj.run_root, "@net", "netns")) else []}  # fmt: skip


def empty(d):
    return not any(d.values())


def test_default_run_is_on_the_default_bridge(sj, busybox, tmp_path, server):
    probe = ("echo IF; ip -o -4 addr show eth0; echo ROUTE; ip route; echo HOSTS;"
             " cat /etc/hosts; echo HOSTNAME; cat /etc/hostname; cat /etc/resolv.conf;"
             " echo GET;"
             f" wget -q -O - http://{GATEWAY}:{server}/")  # fmt: skip
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": f"FROM {busybox}\nRUN {probe}\n"})
    for args in ((), ("--network", "bridge", "--no-cache")):
        out = build(sj, ctx, *args)
        m = re.search(r"inet (172\.17\.\d+\.\d+)/16 ", out)
        assert m, out  # eth0 on the bridge's subnet
        addr = m.group(1)
        assert re.search(rf"^default via {GATEWAY} dev eth0", out, re.M), out
        # the host side reached through the gateway, and it sees the step's address
        assert f"hello from the host side, you are {addr}\n" in out
        host = re.search(r"^HOSTNAME\n(\S+)$", out, re.M).group(1)
        assert re.search(rf"^{re.escape(addr)}\s+{host}$", out, re.M), out  # /etc/hosts
        # resolv.conf as a default-bridge container's: servers, none on the host's loopback
        servers = re.findall(r"^nameserver (\S+)$", out, re.M)
        assert servers and not [a for a in servers if a.startswith("127.")], out
        assert empty(nothing_held(sj)), nothing_held(sj)


def test_none_has_lo_only_and_host_the_hosts_interfaces(sj, busybox, tmp_path, server):
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    ours = sorted(ln.split(":")[1].strip().split("@")[0] for ln in links.stdout.splitlines())
    probe = (f"ip -o link | cut -d: -f2 | tr -d ' ' | sort | tr '\\n' ,; echo;"
             f" wget -q -O - http://127.0.0.1:{server}/ || echo unreachable")  # fmt: skip
    df = f"FROM {busybox}\nRUN --network=none {probe}\nRUN --network=host {probe}\n"
    out = build(sj, write_context(tmp_path / "ctx", {"Dockerfile": df}))
    runs = [ln for ln in out.splitlines() if ln.endswith(",")]
    assert runs[0] == "lo,", out
    assert runs[1].rstrip(",").split(",") == [n.split("@")[0] for n in ours], out
    assert out.splitlines().count("unreachable") == 1  # none cannot, host can
    assert "hello from the host side, you are 127.0.0.1\n" in out
    assert empty(nothing_held(sj))


def test_a_failing_run_leaves_no_network(sj, busybox, tmp_path):
    df = f"FROM {busybox}\nRUN ip -o -4 addr show eth0 && exit 3\n"
    r = sj("build", write_context(tmp_path / "ctx", {"Dockerfile": df}))
    assert r.rc == 3 and "inet 172.17." in r.out, r
    assert empty(nothing_held(sj)), nothing_held(sj)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_a_killed_build_leaves_its_network_to_the_next(sj, busybox, tmp_path, sig):
    """kill -9 while a RUN runs on the bridge: its veth, namespace and lease stay until
    the next build sweeps them; Ctrl-C: the build releases them itself."""
    df = f"FROM {busybox}\nRUN ip -o -4 addr show eth0; echo started; sleep 60\n"
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": df})
    p = subprocess.Popen([sangja_binary(), "--root", sj.run_root, "build", ctx], env=sj.env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        seen = b""
        while b"\nstarted\n" not in seen:
            chunk = p.stdout.read1(4096)
            assert chunk, seen
            seen += chunk
        during = nothing_held(sj)
        assert during["veths"] and during["endpoints"] and during["netns"], during
        p.send_signal(sig)
        p.stdout.read()
        assert p.wait(timeout=60) == 128 + sig or sig == signal.SIGKILL
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
    if sig == signal.SIGKILL:
        after = nothing_held(sj)
        assert after["endpoints"] and after["netns"], after  # left for the next build
        # an engine command's sweep leaves a build's step alone (it may be running)
        sj.ok("network", "ls")
        assert held(sj)["endpoints"]
        build(sj, write_context(tmp_path / "ctx2", {"Dockerfile": f"FROM {busybox}\n"}))
    assert empty(nothing_held(sj)), nothing_held(sj)
