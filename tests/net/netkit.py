"""Helpers of the network tests: a private network namespace per test (its own "host":
bridges, firewall rules, aardvark-dns and ports all live there), real traffic between
namespaces with small Python servers and clients run by nsenter, and what the host side
holds (rules, links, aardvark-dns) to check that nothing is left."""

import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from registrykit import NetNS  # noqa: E402

NETAVARK = "/usr/lib/podman/netavark"
AARDVARK = "/usr/lib/podman/aardvark-dns"
PY = sys.executable
GUARD = 30  # a hang guard for one command, never an assertion about speed


def missing_tools() -> str:
    for p in (NETAVARK, AARDVARK):
        if not os.access(p, os.X_OK):
            return f"{p} is missing (apt-get install netavark aardvark-dns)"
    for t in ("iptables", "ip6tables", "ip", "nsenter", "busybox"):
        if not shutil.which(t):
            return f"{t} is missing"
    return ""


def run(*argv, check=True, input=None, timeout=GUARD):
    r = subprocess.run(list(argv), capture_output=True, text=True, input=input, timeout=timeout)
    if check and r.returncode:
        raise AssertionError(f"{' '.join(argv)}: rc={r.returncode} {r.stdout} {r.stderr}")
    return r


def in_ns(path, *argv, **kw):
    """A command in the network namespace at `path`."""
    return run("nsenter", f"--net={path}", *argv, **kw)


# A server that answers one TCP connection (or UDP datagram) with what it was sent and the
# peer's address, then exits; it prints READY once it listens.
_SERVER = r"""
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
kind = socket.SOCK_DGRAM if sys.argv[3] == "udp" else socket.SOCK_STREAM
s = socket.socket(fam, kind)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(30)
if kind == socket.SOCK_STREAM:
    s.listen(1)
print("READY", flush=True)
if kind == socket.SOCK_STREAM:
    c, peer = s.accept()
    data = c.recv(100)
    c.sendall(data + b" from " + peer[0].encode())
    c.close()
else:
    data, peer = s.recvfrom(100)
    s.sendto(data + b" from " + peer[0].encode(), peer)
"""

_CLIENT = r"""
import socket, sys
host, port, proto, msg = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].encode()
wait = float(sys.argv[5])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
try:
    if proto == "udp":
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.settimeout(wait)
        s.sendto(msg, (host, port))
        print(s.recvfrom(200)[0].decode())
    else:
        s = socket.create_connection((host, port), timeout=wait)
        s.sendall(msg)
        got = b""
        while len(got) < 4096:  # until the peer closes
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        print(got.decode())
except OSError as e:
    print("ERROR", e.errno, e.strerror or e)
"""


class Server:
    """One answer from `bind:port/proto` inside the namespace `ns` (None: this one)."""

    def __init__(self, ns, bind, port, proto="tcp"):
        pre = ["nsenter", f"--net={ns}"] if ns else []
        argv = pre + [PY, "-c", _SERVER, bind, str(port), proto]
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        if line.strip() != "READY":
            self.p.kill()
            raise AssertionError(f"server did not start: {line} {self.p.stderr.read()}")

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def talk(ns, host, port, proto="tcp", msg="hello", wait=5.0):
    """Send `msg` from the namespace `ns` (None: this one) -> the answer, or "ERROR ..."
    (`wait`: how long a dropped packet is waited for)."""
    pre = ["nsenter", f"--net={ns}"] if ns else []
    r = run(*pre, PY, "-c", _CLIENT, host, str(port), proto, msg, str(wait), check=False)
    return r.stdout.strip()


def exchange(server_ns, bind, port, client_ns, host, cport=None, proto="tcp"):
    """A server in one namespace, a client in another: -> the client's answer."""
    with Server(server_ns, bind, port, proto) as s:
        out = talk(client_ns, host, cport or port, proto)
        if out.startswith("ERROR"):
            s.close()
        return out


def lookup(ns, name, server):
    """busybox nslookup NAME SERVER from the namespace -> the addresses answered."""
    r = in_ns(ns, "busybox", "nslookup", name, server, check=False)
    out = []
    seen_name = False
    for line in r.stdout.splitlines():
        if line.startswith("Name:"):
            seen_name = True
        elif seen_name and line.startswith("Address"):
            out.append(line.split()[-1])
    return out


def nat_rules() -> str:
    return run("iptables-save", "-t", "nat").stdout + run("ip6tables-save", "-t", "nat").stdout


def links() -> list[str]:
    return [ln.split()[0].split("@")[0] for ln in run("ip", "-br", "link").stdout.splitlines()]


def outside(netns_obj, addr="192.0.2.2", host_addr="192.0.2.1"):
    """A third namespace reached from the test's namespace through a veth (the test
    namespace's "internet"): -> its path (a bind mount under a temp dir) and a cleanup."""
    import tempfile

    d = tempfile.mkdtemp(prefix="sjnet-out-")
    path = os.path.join(d, "ns")
    open(path, "w").close()
    run("unshare", f"--net={path}", "true")
    run("ip", "link", "add", "sjout0", "type", "veth", "peer", "name", "sjout1")
    run("ip", "link", "set", "sjout1", "netns", path)
    run("ip", "addr", "add", f"{host_addr}/24", "dev", "sjout0")
    run("ip", "link", "set", "sjout0", "up")
    in_ns(path, "ip", "addr", "add", f"{addr}/24", "dev", "sjout1")
    in_ns(path, "ip", "link", "set", "sjout1", "up")
    in_ns(path, "ip", "link", "set", "lo", "up")

    def cleanup():
        run("ip", "link", "delete", "sjout0", check=False)
        run("umount", path, check=False)
        shutil.rmtree(d, ignore_errors=True)

    return path, cleanup


def wait_gone(pid, guard=10):
    end = time.monotonic() + guard
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < end:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return
        time.sleep(0.05)


__all__ = ["NetNS"]


# A DNS server that answers every A question with 203.0.113.7 (one answer, then exits).
_DNS = r"""
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
s.settimeout(30)
print("READY", flush=True)
while True:
    q, peer = s.recvfrom(512)
    qid, flags, qd = struct.unpack("!HHH", q[:6])
    end = 12
    while q[end]:
        end += q[end] + 1
    question = q[12 : end + 5]
    qtype = struct.unpack("!H", q[end + 1 : end + 3])[0]
    ans = b""
    if qtype == 1:
        ans = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([203, 0, 113, 7])
    hdr = struct.pack("!HHHHHH", qid, 0x8180, 1, 1 if ans else 0, 0, 0)
    s.sendto(hdr + question + ans, peer)
    print(q[13 : end].decode(errors="replace"), flush=True)
"""


class DNSServer(Server):
    def __init__(self, ns, bind):
        pre = ["nsenter", f"--net={ns}"] if ns else []
        argv = pre + [PY, "-c", _DNS, bind]
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        if line.strip() != "READY":
            self.p.kill()
            raise AssertionError(f"dns server did not start: {line} {self.p.stderr.read()}")
