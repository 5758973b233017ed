"""Helpers for the security tests: the probe (tests/probe.c, built static once per session and
put in a container's rootfs), its output parsed, and a seccomp notify agent (a listener for
linux.seccomp.listenerPath that answers the container's notifications)."""

import errno
import fcntl
import hashlib
import json
import os
import re
import socket
import struct
import subprocess
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
_PROBE = None


def probe_binary():
    """tests/probe.c, compiled static (cached by content, so reruns do not rebuild it)."""
    global _PROBE
    if _PROBE is None:
        src = os.path.join(HERE, "probe.c")
        with open(src, "rb") as f:
            tag = hashlib.sha256(f.read()).hexdigest()[:16]
        out = os.path.join(tempfile.gettempdir(), f"sangja-probe-{tag}")
        if not os.path.exists(out):
            tmp = f"{out}.{os.getpid()}"
            subprocess.run(["cc", "-static", "-O2", "-Wall", "-o", tmp, src], check=True)
            os.rename(tmp, out)
        _PROBE = out
    return _PROBE


def add_probe(bundle, name="/bin/probe"):
    """Copy the probe into the bundle's rootfs (mode 0755); returns its path in the container."""
    dst = os.path.join(bundle.rootfs, name.lstrip("/"))
    with open(probe_binary(), "rb") as f, open(dst, "wb") as g:
        g.write(f.read())
    os.chmod(dst, 0o755)
    return name


_LINE = re.compile(r"^(\S+) = (-?\d+|ok)(?: errno (\d+))?$")


def results(out):
    """probe output -> {name: errno (0 when the call succeeded)}, a second call of one name
    as "name#2" (and so on); `trapped NAME` lines too."""
    res = {}
    for line in out.splitlines():
        m = _LINE.match(line.strip())
        if m:
            name, n = m.group(1), 1
            while (name if n == 1 else f"{name}#{n}") in res:
                n += 1
            res[name if n == 1 else f"{name}#{n}"] = int(m.group(3) or 0)
        elif line.startswith("trapped "):
            res["trapped " + line.split()[1]] = True
    return res


# -- seccomp notify: the agent side ----------------------------------------------------------

# struct seccomp_notif {u64 id; u32 pid; u32 flags; struct seccomp_data {int nr; u32 arch;
# u64 ip; u64 args[6];}}; struct seccomp_notif_resp {u64 id; s64 val; s32 error; u32 flags}
NOTIF = struct.Struct("=QIIiIQ6Q")
RESP = struct.Struct("=QqiI")
IOCTL_NOTIF_RECV = 0xC0502100  # SECCOMP_IOWR(0, struct seccomp_notif)
IOCTL_NOTIF_SEND = 0xC0182101  # SECCOMP_IOWR(1, struct seccomp_notif_resp)
FLAG_CONTINUE = 1  # SECCOMP_USER_NOTIF_FLAG_CONTINUE


class NotifyAgent:
    """Listens on `path`; every connection brings one container process state and its
    seccomp fd. Each notification goes to `answer(pid, nr, args)`, which returns
    ("value", v), ("errno", e), ("continue",), or None to hold it until `release(pid, ...)`.
    """

    def __init__(self, path, answer):
        self.path = path
        self.answer = answer
        self.states = []  # (container process state, [fd names' fds])
        self.seen = []  # (pid, nr, args)
        self.held = {}  # pid -> (fd, id)
        self.errors = []
        self.cond = threading.Condition()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.fds = []
        self.stop_r, self.stop_w = os.pipe()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _accept(self):
        conn, _ = self.sock.accept()
        with conn:
            fds, data = [], b""
            while True:
                msg, anc, _flags, _addr = conn.recvmsg(65536, socket.CMSG_SPACE(16))
                for level, typ, payload in anc:
                    if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                        fds += list(struct.unpack(f"{len(payload) // 4}i", payload))
                if not msg:
                    break
                data += msg
        with self.cond:
            self.states.append((json.loads(data), fds))
            self.fds += fds
            self.cond.notify_all()

    @staticmethod
    def _send(fd, nid, kind, value=0):
        if kind == "value":
            resp = RESP.pack(nid, value, 0, 0)
        elif kind == "errno":
            resp = RESP.pack(nid, 0, -value, 0)
        else:
            resp = RESP.pack(nid, 0, 0, FLAG_CONTINUE)
        try:
            fcntl.ioctl(fd, IOCTL_NOTIF_SEND, bytearray(resp))
        except OSError as e:
            if e.errno != errno.ENOENT:  # the process went away meanwhile
                raise

    def _serve(self, fd):
        buf = bytearray(NOTIF.size)
        try:
            fcntl.ioctl(fd, IOCTL_NOTIF_RECV, buf)
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.EINTR):
                self.errors.append(e)
            return
        nid, pid, _flags, nr, _arch, _ip, *args = NOTIF.unpack(buf)
        with self.cond:
            self.seen.append((pid, nr, args))
            self.cond.notify_all()
        reply = self.answer(pid, nr, args)
        if reply is None:
            with self.cond:
                self.held[pid] = (fd, nid)
                self.cond.notify_all()
            return
        try:
            self._send(fd, nid, *reply)
        except OSError as e:
            self.errors.append(e)

    def release(self, pid, *reply):
        with self.cond:
            fd, nid = self.held.pop(pid)
        self._send(fd, nid, *reply)

    def _run(self):
        import select

        p = select.poll()
        p.register(self.sock.fileno(), select.POLLIN)
        p.register(self.stop_r, select.POLLIN)
        watched = set()
        while True:
            for fd in self.fds:
                if fd not in watched:
                    p.register(fd, select.POLLIN)
                    watched.add(fd)
            for fd, ev in p.poll():
                if fd == self.stop_r:
                    return
                if fd == self.sock.fileno():
                    try:
                        self._accept()
                    except OSError as e:
                        self.errors.append(e)
                elif ev & select.POLLIN:
                    self._serve(fd)
                elif ev & (select.POLLHUP | select.POLLERR):
                    p.unregister(fd)  # every process of that filter is gone

    def wait(self, pred, what, guard=60):
        """Block until pred(self) (a hang guard, never a timing assertion)."""
        with self.cond:
            if not self.cond.wait_for(lambda: pred(self), guard):
                raise AssertionError(f"seccomp agent: never happened: {what}")

    def close(self):
        os.write(self.stop_w, b"x")
        self.thread.join()
        for fd in self.fds:
            os.close(fd)
        os.close(self.stop_r)
        os.close(self.stop_w)
        self.sock.close()
