"""The registries of ../shared/fixtures/make-fixtures.sh for the image and engine tests, and
a sangja CLI runner with a private engine root, home and certs.d.

The fixtures are built once (debootstrap on the first build: about a minute) under
$SANGJA_FIXTURES, default build/fixtures (layertools.fixtures_dir).  The registries are
served on their fixed loopback ports inside a network namespace of the test session's
own, which the pytest thread enters for each test that uses them (and leaves after), so
they never meet a registry someone else runs on this machine; whatever the tests start,
they stop.
"""

import contextlib
import ctypes
import json
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "image"))

import layertools  # noqa: E402

SCRIPT = layertools.FIXTURES_SCRIPT
CLONE_NEWNET = 0x40000000
TIMEOUT = 300  # a hang guard per command, never an assertion about speed

PLAIN = "127.0.0.1:5000"
TLS = "127.0.0.1:5443"
AUTH = "127.0.0.1:5444"
TOKEN = "127.0.0.1:5445"
TOKEN_SERVER = ("127.0.0.1", 5446)
USER, PASSWORD = "testuser", "testpass"
# registry reference -> name of the same image in the fixtures' OCI layout
OCI_NAMES = {
    "test/busybox:latest": "busybox",
    "test/debian:bookworm": "debian-bookworm",
    "test/debian:bookworm-zstd": "debian-bookworm-zstd",
    "test/multi:latest": "multi",
}


def sangja_binary():
    return os.environ.get("SANGJA") or shutil.which("sangja")


def _script(*args, check=True, base=None):
    env = dict(os.environ, SANGJA_FIXTURES=base or layertools.fixtures_dir())
    r = subprocess.run(["bash", SCRIPT, *args], env=env, capture_output=True, text=True,
                       timeout=900)  # fmt: skip
    if check and r.returncode:
        tail = " | ".join((r.stdout + r.stderr).strip().splitlines()[-3:])
        raise RuntimeError(f"make-fixtures.sh {' '.join(args)}: {tail}")
    return r


def _wait_for_port(addr, guard=30):
    """A hang guard: poll until something listens at addr."""
    import socket
    import time

    end = time.monotonic() + guard
    while True:
        try:
            socket.create_connection(addr, timeout=1).close()
            return
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


class NetNS:
    """A network namespace of the test session's own, with lo up; the pytest thread enters
    it for a test (`entered()`) and comes back to the host's after."""

    def __init__(self):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.host = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        if self.libc.unshare(CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
        try:
            self.fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True, capture_output=True)
        finally:
            self._setns(self.host)

    def _setns(self, fd):
        if self.libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns(CLONE_NEWNET)")

    @contextlib.contextmanager
    def entered(self):
        prev = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            self._setns(self.fd)
            try:
                yield
            finally:
                self._setns(prev)
        finally:
            os.close(prev)

    def close(self):
        os.close(self.fd)
        os.close(self.host)


class Fixtures(layertools.Fixtures):
    """The OCI layout plus the registries that serve it (started on first use)."""

    def __init__(self, base, netns, serve):
        super().__init__(base)
        self.netns = netns
        self.serve = serve  # the registries' own SANGJA_FIXTURES (see serving_dir)
        self.started = set()
        self.ca = os.path.join(serve, "registry", "certs", "registry.crt")

    def registry(self, variant="plain"):
        if variant not in self.started:
            with self.netns.entered():
                _script("registry-start", variant, base=self.serve)
                if variant == "token":  # the script waits for the registry, not its token server
                    _wait_for_port(TOKEN_SERVER)
            self.started.add(variant)
        return {"plain": PLAIN, "tls": TLS, "auth": AUTH, "token": TOKEN}[variant]

    def stop(self):
        if self.started:
            with self.netns.entered():
                _script("registry-stop", "all", check=False, base=self.serve)
            self.started.clear()

    def digest(self, ref):
        """The manifest (or index) digest a registry reference resolves to."""
        return self.refs[OCI_NAMES[ref]]["digest"]

    def manifest(self, name):
        with open(self.blob(self.refs[name]["digest"])) as f:
            return json.load(f)

    def config(self, name):
        with open(self.blob(self.manifest(name)["config"]["digest"])) as f:
            return json.load(f)

    def image_id(self, ref):
        return self.manifest(OCI_NAMES[ref])["config"]["digest"]


def serving_dir(base):
    """A SANGJA_FIXTURES of this session's own for serving: the built images and registry
    storage are the shared ones (symlinks), the configs, pid files and logs are not, so
    two test sessions never stop or reuse each other's registries."""
    import tempfile

    serve = tempfile.mkdtemp(prefix="sangja-registries-")
    for d in ("oci", "registry-data", "cache"):
        os.symlink(os.path.join(base, d), os.path.join(serve, d))
    src, dst = os.path.join(base, "registry"), os.path.join(serve, "registry")
    os.makedirs(os.path.join(dst, "certs"))
    for f in ("certs/registry.crt", "registry.key", "token.crt", "token.key", "htpasswd"):
        if os.path.exists(os.path.join(src, f)):
            shutil.copy2(os.path.join(src, f), os.path.join(dst, f))
    return serve


def session_fixtures():
    """A generator for the session fixture: build (if needed), a private netns, the
    registries stopped at the end."""
    if os.geteuid() != 0:
        pytest.skip("needs root (registries, overlay mounts, layers with owners)")
    for tool in ("docker-registry", "skopeo", "umoci"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed (make test installs it: APT_PACKAGES)")
    base = layertools.fixtures_dir()
    cache_warm = os.path.exists(os.path.join(base, "cache", "bookworm-minbase.tar"))
    have = os.path.exists(os.path.join(base, "oci", "index.json"))
    if not have and not cache_warm:
        # debootstrap needs the Debian mirror: build on the host's network
        fx, why = layertools.build_fixtures()
        if fx is None:
            pytest.skip(f"the fixtures could not be built: {why}")
    netns = NetNS()
    try:
        if not os.path.exists(os.path.join(base, "oci", "index.json")):
            with netns.entered():
                try:  # cache warm: no network needed, and the ports are ours in here
                    _script("build")
                except RuntimeError as e:
                    pytest.skip(f"the fixtures could not be built: {e}")
                finally:
                    _script("registry-stop", "all", check=False)
        serve = serving_dir(base)
        fx = Fixtures(base, netns, serve)
        try:
            yield fx
        finally:
            fx.stop()
            shutil.rmtree(serve, ignore_errors=True)
    finally:
        netns.close()


class Result:
    def __init__(self, p):
        self.rc = p.returncode
        self.out = p.stdout
        self.err = p.stderr

    def __repr__(self):
        return f"<rc={self.rc} out={self.out[-2000:]!r} err={self.err[-2000:]!r}>"


class Sangja:
    """The sangja CLI with a private engine root, HOME (login store, ~/.docker), certs.d
    and runtime --root."""

    def __init__(self, tmp, fixtures=None):
        self.tmp = str(tmp)
        self.root = os.path.join(self.tmp, "root")
        self.home = os.path.join(self.tmp, "home")
        self.certs = os.path.join(self.tmp, "certs.d")
        self.run_root = os.path.join(self.tmp, "run")
        for d in (self.home, self.certs):
            os.makedirs(d, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("SANGJA_", "DOCKER_", "XDG_"))}  # fmt: skip
        self.env.update(HOME=self.home, SANGJA_ROOT=self.root, SANGJA_CERTS_D=self.certs,
                        SANGJA_CONFIG=os.path.join(self.tmp, "no-config.json"))  # fmt: skip
        if fixtures is not None:
            self.trust(fixtures.ca, TLS, AUTH)

    def trust(self, ca, *hosts):
        for h in hosts:
            os.makedirs(os.path.join(self.certs, h), exist_ok=True)
            shutil.copy(ca, os.path.join(self.certs, h, "ca.crt"))

    def __call__(self, *args, input=None, env=None, timeout=TIMEOUT, cwd=None):
        p = subprocess.run(
            [sangja_binary(), "--root", self.run_root, *args], input=input, capture_output=True,
            text=True, env=dict(self.env, **(env or {})), timeout=timeout, cwd=cwd,
        )  # fmt: skip
        return Result(p)

    def ok(self, *args, **kw):
        r = self(*args, **kw)
        assert r.rc == 0, f"sangja {' '.join(args)} failed: {r}"
        return r

    def fail(self, *args, **kw):
        r = self(*args, **kw)
        assert r.rc != 0, f"sangja {' '.join(args)} should have failed: {r}"
        lines = r.err.strip().splitlines()
        assert lines and lines[-1].startswith("sangja: "), r
        return r

    def inspect(self, ref):
        return json.loads(self.ok("image", "inspect", ref).out)[0]

    def images(self):
        return json.loads(self.ok("image", "ls", "--format", "json").out)

    # ---- what the store holds -----------------------------------------------------------
    def store_state(self):
        """Everything in the store, to compare before/after a failed command."""
        import sqlite3

        out = {}
        for sub in ("blobs/sha256", "layers", "tmp", "containers"):
            d = os.path.join(self.root, sub)
            out["files:" + sub] = sorted(os.listdir(d)) if os.path.isdir(d) else []
        tables = ("images", "refs", "layers", "blobs", "image_layers", "image_blobs")
        out.update({t: [] for t in tables})
        db = os.path.join(self.root, "sangja.db")
        if os.path.exists(db):
            c = sqlite3.connect(db)
            try:
                for t in tables:
                    out[t] = sorted(map(tuple, c.execute(f"SELECT * FROM {t}")))
            finally:
                c.close()
        return out

    def assert_consistent(self):
        """Every file in the store is named by the database and vice versa; no temp dirs."""
        s = self.store_state()
        blobs = {d.split(":", 1)[1] for d, *_ in s.get("blobs", [])}
        layers = {r[0] for r in s.get("layers", [])}
        files, dirs = s["files:blobs/sha256"], s["files:layers"]
        assert set(files) == blobs, ("blob files vs rows", files, blobs)
        assert set(dirs) == layers, ("layer dirs vs rows", dirs, layers)
        return s


PODMAN = shutil.which("podman")


class Podman:
    """podman with a private --root (and a short --runroot: podman wants <= 50 bytes)."""

    def __init__(self, tmp):
        import tempfile

        self.root = os.path.join(str(tmp), "proot")
        self.runroot = tempfile.mkdtemp(prefix="sjpod-", dir="/tmp")
        # --tmpdir too: libpod's state (its `alive` file) would else be the host's shared
        # /run/libpod, which another podman user's `system reset` removes under us
        self.base = [PODMAN, "--root", self.root, "--runroot", self.runroot,
                     "--tmpdir", os.path.join(self.runroot, "libpod"),
                     "--storage-driver", "overlay", "--events-backend", "none"]  # fmt: skip

    def __call__(self, *args):
        r = subprocess.run(self.base + list(args), capture_output=True, text=True,
                           timeout=TIMEOUT)  # fmt: skip
        assert r.returncode == 0, f"podman {' '.join(args)}: {r.stderr}"
        return r.stdout

    def inspect(self, ref):
        return json.loads(self("image", "inspect", ref))[0]

    def close(self):
        self.reset()
        shutil.rmtree(self.runroot, ignore_errors=True)

    def reset(self):
        """An empty storage again (podman system reset), and no mount left under it."""
        subprocess.run(self.base + ["system", "reset", "-f"], capture_output=True,
                       timeout=TIMEOUT)  # fmt: skip
        # c/storage bind-mounts its overlay directory onto itself: never leave that behind
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split()[4] for line in f]
        for m in reversed(mounts):
            if m == self.root or m.startswith(self.root + "/"):
                subprocess.run(["umount", "-l", m], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


def layer_snapshot(path):
    """layertools.snapshot of an unpacked layer, without the times the extractor makes up:
    the layer root's (no tar entry makes it) and whiteouts' (created, not extracted)."""
    snap = layertools.snapshot(path, ignore_mtime={"."})
    for v in snap.values():
        if v["type"] == "c" and v.get("rdev") == (0, 0):
            v["mtime"] = None
    return snap
