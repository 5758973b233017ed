"""A D-Bus connection to systemd's manager, for the systemd cgroup driver.

jeepney (pure Python, no dependencies) builds and parses the messages; this module only
connects, calls a method and waits for the job it starts. Where it connects: the system bus
when `DBUS_SYSTEM_BUS_ADDRESS` names one; else, as root, systemd's private socket
`/run/systemd/private` as systemctl uses it (no bus daemon needed, and systemd sends its
signals to every private connection); else the system bus at /run/dbus/system_bus_socket.
On a bus we say Hello, ask for JobRemoved and Subscribe.
"""

import os
import socket
import time

from sangja.errors import SangjaError

PRIVATE_SOCKET = "/run/systemd/private"
SYSTEM_BUS = "/run/dbus/system_bus_socket"
SYSTEMD = "org.freedesktop.systemd1"
MANAGER_PATH = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
TIMEOUT = 30.0  # runc waits as long for a unit's job


class DBusError(SangjaError):
    """An error reply: `name` is the D-Bus error name (org.freedesktop.systemd1.NoSuchUnit)."""

    def __init__(self, method, name, text):
        super().__init__(f"systemd: {method}: {text or name}")
        self.name = name


def _system_bus_path():
    addr = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS", "")
    for part in addr.split(";"):
        kind, _, args = part.partition(":")
        if kind != "unix":
            continue
        kv = dict(a.split("=", 1) for a in args.split(",") if "=" in a)
        if "path" in kv:
            return kv["path"]
        if "abstract" in kv:
            return "\0" + kv["abstract"]
    return SYSTEM_BUS


class Manager:
    """One connection to systemd's manager object."""

    def __init__(self):
        from jeepney import DBusAddress

        self._addr = DBusAddress(MANAGER_PATH, bus_name=SYSTEMD, interface=MANAGER)
        private = (
            not os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
            and os.geteuid() == 0
            and os.path.exists(PRIVATE_SOCKET)
        )
        path = PRIVATE_SOCKET if private else _system_bus_path()
        self._sock = _connect(path)
        from jeepney.low_level import Parser

        self._parser = Parser()
        self._serial = 0
        self._removed = {}  # job path -> result, from JobRemoved signals seen so far
        if not private:
            from jeepney import message_bus
            from jeepney.bus_messages import MatchRule

            self._call(message_bus.Hello(), "Hello")
            rule = MatchRule(type="signal", interface=MANAGER, member="JobRemoved")
            self._call(message_bus.AddMatch(rule), "AddMatch")
            self.call("Subscribe")

    def close(self):
        self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- messages ------------------------------------------------------------------------
    def call(self, method, signature=None, body=()):
        from jeepney import new_method_call

        return self._call(new_method_call(self._addr, method, signature, body), method)

    def _call(self, msg, method):
        from jeepney import HeaderFields, MessageType

        self._serial += 1
        serial = self._serial
        try:
            self._sock.sendall(msg.serialise(serial=serial))
        except OSError as e:
            raise SangjaError(f"systemd: {method}: {e.strerror}", errno=e.errno)
        deadline = time.monotonic() + TIMEOUT
        while True:
            m = self._receive(deadline, method)
            if m.header.fields.get(HeaderFields.reply_serial) != serial:
                continue
            if m.header.message_type is MessageType.error:
                name = m.header.fields.get(HeaderFields.error_name, "")
                raise DBusError(method, name, m.body[0] if m.body else "")
            return m.body

    def _receive(self, deadline, what):
        from jeepney import HeaderFields, MessageType

        while True:
            m = self._parser.get_next_message()
            if m is not None:
                h = m.header
                if (
                    h.message_type is MessageType.signal
                    and h.fields.get(HeaderFields.member) == "JobRemoved"
                ):
                    _, job, _, result = m.body
                    self._removed[job] = result
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise SangjaError(f"systemd: {what}: no answer in {TIMEOUT:g}s")
            self._sock.settimeout(left)
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError as e:
                raise SangjaError(f"systemd: {what}: {e.strerror}", errno=e.errno)
            if not data:
                raise SangjaError(f"systemd: {what}: systemd closed the connection")
            self._parser.add_data(data)

    def wait_job(self, job, unit):
        """Wait for JobRemoved of `job`; its result ('done', 'failed', ...)."""
        deadline = time.monotonic() + TIMEOUT
        while job not in self._removed:
            self._receive(deadline, f"job for {unit}")
        return self._removed.pop(job)

    # -- the manager's methods -----------------------------------------------------------
    def start_transient_unit(self, unit, properties):
        """Start `unit` with `properties` [(name, (signature, value))]; wait for its job."""
        (job,) = self.call(
            "StartTransientUnit", "ssa(sv)a(sa(sv))", (unit, "replace", properties, [])
        )
        result = self.wait_job(job, unit)
        if result != "done":
            raise SangjaError(f"systemd: starting {unit}: the job ended '{result}'")

    def stop_unit(self, unit):
        """Stop `unit` and wait; a unit systemd no longer knows is already stopped."""
        try:
            (job,) = self.call("StopUnit", "ss", (unit, "replace"))
        except DBusError as e:
            if e.name == "org.freedesktop.systemd1.NoSuchUnit":
                return
            raise
        self.wait_job(job, unit)
        try:
            self.call("ResetFailedUnit", "s", (unit,))
        except DBusError:
            pass  # not failed, or already gone

    def set_unit_properties(self, unit, properties):
        """Change a live unit's properties (runtime only, as runc does)."""
        self.call("SetUnitProperties", "sba(sv)", (unit, True, properties))


def _connect(path):
    """Connect and authenticate (EXTERNAL, by our uid). BEGIN goes with the AUTH line, as
    sd-bus clients send it, and the first message only after the server's OK: systemd's
    private socket leaves a message that arrives in the same read as BEGIN unprocessed
    until more data comes."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    s.settimeout(TIMEOUT)
    try:
        s.connect(path)
        uid = str(os.geteuid()).encode().hex().encode()
        s.sendall(b"\0AUTH EXTERNAL " + uid + b"\r\nBEGIN\r\n")
        answer = b""
        while not answer.endswith(b"\r\n"):
            data = s.recv(256)
            if not data:
                raise SangjaError(f"systemd: {path}: closed during authentication", path=path)
            answer += data
    except OSError as e:
        s.close()
        raise SangjaError(f"systemd: connect {path}: {e.strerror or e}", errno=e.errno, path=path)
    if not answer.startswith(b"OK "):
        s.close()
        text = answer.decode(errors="replace").strip()
        raise SangjaError(f"systemd: {path}: authentication refused: {text}", path=path)
    return s
