"""Helpers for the runtime tests: the runtime under test driven through its CLI, bundles,
and what the host looks like (processes, cgroups, mounts) to tell what a container left.

Imported by tests/conftest.py (fixtures) and by the test modules (a unique module name:
`conftest` is ambiguous once other test directories have their own).
"""

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import bundles  # noqa: E402

RUNC = "/usr/sbin/runc"
CGROUP_ROOT = "/sys/fs/cgroup"
TIMEOUT = 60  # a hang guard for each command, never an assertion about speed


def sangja_binary():
    return os.environ.get("SANGJA") or shutil.which("sangja")


def selected_runtimes():
    names = os.environ.get("SANGJA_TEST_RUNTIMES", "sangja")
    return [n.strip() for n in names.split(",") if n.strip()]


def binary_for(name):
    if name == "runc":
        return RUNC if os.path.exists(RUNC) else shutil.which("runc")
    if name == "sangja":
        return sangja_binary()
    raise pytest.UsageError(f"SANGJA_TEST_RUNTIMES: unknown runtime {name!r}")


# -- host observations ----------------------------------------------------------------------


def host_mounts():
    """The host's mount points (our mount namespace)."""
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4].replace("\\040", " ") for line in f]


def proc_stat(pid):
    """(state, start time) of a live process, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(b")") + 2 :].split()
    return rest[0].decode(), int(rest[19])


def runtime_ids(root):
    """The containers a runtime root holds state for: a name with an @ is no container id
    (the engine's @net run dir)."""
    try:
        return sorted(n for n in os.listdir(root) if "@" not in n)
    except FileNotFoundError:
        return []


def wait_for(pred, what="condition", guard=TIMEOUT, step=0.01):
    """Poll `pred` every `step` seconds until true (a hang guard, never a timing
    assertion)."""
    end = time.monotonic() + guard
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"never happened: {what}")


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return default


def alive(pid):
    s = proc_stat(pid)
    return s is not None and s[0] not in ("Z", "X")


def all_pids():
    return {int(p) for p in os.listdir("/proc") if p.isdigit()}


def _ns(pid, name):
    try:
        return os.readlink(f"/proc/{pid}/ns/{name}")
    except OSError:
        return None


def cgroup_dirs_for(cid, cgroups_path=None):
    """Every host directory where a runtime could have made the container's cgroup."""
    mounts = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fields = post.split()
            if fields and fields[0] in ("cgroup", "cgroup2"):
                mnt = pre.split()[4]
                opts = set(fields[2].split(","))
                mounts[mnt] = opts if fields[0] == "cgroup" else {""}
    own = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            own[ctrls] = path
    out = set()
    for mnt, opts in mounts.items():
        paths = ["/"]
        for ctrls, path in own.items():
            if (ctrls == "" and "" in opts) or (ctrls and set(ctrls.split(",")) <= opts):
                paths.append(path)
        for p in paths:
            out.add(os.path.normpath(f"{mnt}/{p}/{cid}"))
            if cgroups_path:
                if cgroups_path.startswith("/"):
                    out.add(os.path.normpath(f"{mnt}/{cgroups_path}"))
                else:
                    out.add(os.path.normpath(f"{mnt}/{p}/{cgroups_path}"))
    return sorted(out)


def cgroup_dir(pid, controller):
    """The host directory of `pid`'s cgroup for a v1 controller ('memory', 'cpu'), or for
    the unified hierarchy with controller ''. None when that hierarchy is not mounted."""
    want = None
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if ctrls.split(",") == [controller] or (controller and controller in ctrls.split(",")):
                want = path
    if want is None:
        return None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fields = post.split()
            if not fields or fields[0] not in ("cgroup", "cgroup2"):
                continue
            opts = fields[2].split(",")
            if (controller == "" and fields[0] == "cgroup2") or (controller and controller in opts):
                return os.path.normpath(pre.split()[4] + want)
    return None


_V1_FILES = {}


def v1_files(controller):
    """The files a new cgroup of the v1 `controller` hierarchy has on this host: what the
    kernel's configuration (swap accounting, RT group scheduling, ...) and the block
    devices' schedulers (BFQ: blkio.bfq.weight; CFQ: blkio.weight) provide. Empty when the
    hierarchy is not mounted. Found out once, with a cgroup made and removed under ours."""
    if controller not in _V1_FILES:
        files = set()
        parent = cgroup_dir(os.getpid(), controller)
        if parent and os.path.isdir(parent):
            probe = os.path.join(parent, f"sjt-probe-{secrets.token_hex(4)}")
            os.mkdir(probe)
            try:
                files = set(os.listdir(probe))
            finally:
                os.rmdir(probe)
        _V1_FILES[controller] = files
    return _V1_FILES[controller]


def blkio_weight_file():
    """blkio.weight (CFQ) or blkio.bfq.weight (BFQ), or None: neither scheduler here."""
    have = v1_files("blkio")
    return next((f for f in ("blkio.weight", "blkio.bfq.weight") if f in have), None)


# Time namespaces came with Linux 5.6.
needs_time_namespace = pytest.mark.skipif(
    not os.path.exists("/proc/self/ns/time"), reason="this kernel has no time namespaces (5.6+)"
)

NO_BLKIO_WEIGHT = ("this host has no blkio.weight or blkio.bfq.weight: its block devices use "
                   "neither the BFQ nor the CFQ scheduler")  # fmt: skip


# -- results and bundles --------------------------------------------------------------------


class Result:
    def __init__(self, argv, rc, out, err):
        self.argv, self.rc, self.out, self.err = argv, rc, out, err

    def __repr__(self):
        return f"<{' '.join(self.argv)}: rc={self.rc} out={self.out!r} err={self.err!r}>"

    def ok(self):
        assert self.rc == 0, f"expected success: {self!r}"
        return self

    def failed(self, rc=1):
        assert self.rc == rc, f"expected exit {rc}: {self!r}"
        return self

    def json(self):
        return json.loads(self.out)


class Pending:
    def __init__(self, argv, **kw):
        self.argv = argv
        self._out = tempfile.TemporaryFile()
        self._err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err, **kw
        )

    def poll(self):
        return self.proc.poll()

    def output(self):
        """What the command has written to stdout so far."""
        return os.pread(self._out.fileno(), 1 << 20, 0).decode(errors="replace")

    def result(self, timeout=TIMEOUT):
        try:
            rc = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self._out.seek(0)
        self._err.seek(0)
        r = Result(
            self.argv,
            rc,
            self._out.read().decode(errors="replace"),
            self._err.read().decode(errors="replace"),
        )
        self._out.close()
        self._err.close()
        return r


def proc_state(pid):
    """The state letter of `pid` in /proc (R, S, T: stopped, Z: a zombie...), or None if it
    is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def require_front(rt):
    """Skip unless `rt` is sangja with its C front end (csrc/front/) installed as `sangja`."""
    import pytest

    if rt.name != "sangja":
        pytest.skip("the front end is sangja's")
    with open(rt.binary, "rb") as f:
        if f.read(4) != b"\x7fELF":
            pytest.skip(f"{rt.binary} is not the C front end")


class Bundle:
    def __init__(self, path, config):
        self.path = path
        self.config = config

    @property
    def rootfs(self):
        p = self.config.get("root", {}).get("path", "rootfs")
        return p if p.startswith("/") else os.path.join(self.path, p)

    def write(self):
        with open(os.path.join(self.path, "config.json"), "w") as f:
            json.dump(self.config, f, indent=1)

    def __fspath__(self):
        return self.path


def config(args=("true",)):
    """runc's default spec, non-interactive, running `args`."""
    return bundles.default_config(list(args))


# -- the runtime under test -----------------------------------------------------------------


class Runtime:
    """One runtime binary with a private --root; remembers every id so teardown can check it."""

    def __init__(self, name, binary, workdir):
        self.name = name
        self.binary = binary
        self.workdir = workdir
        self.root = os.path.join(workdir, f"root-{name}")
        self.ids = {}  # id -> cgroupsPath from its config (or None)
        self.pids = set()
        self._n = 0

    def __repr__(self):
        return f"<Runtime {self.name}>"

    @property
    def is_runc(self):
        return self.name == "runc"

    def new_id(self, tag="c", cgroups_path=None):
        self._n += 1
        cid = f"sjt-{tag}-{secrets.token_hex(4)}-{self._n}"
        self.ids[cid] = cgroups_path
        return cid

    def argv(self, *args):
        return [self.binary, "--root", self.root, *map(str, args)]

    def __call__(self, *args, input=None, stdin=subprocess.DEVNULL, timeout=TIMEOUT, **kw):
        """Run `<rt> --root R args...`; returns a Result (never raises on failure)."""
        argv = self.argv(*args)
        if input is not None:
            stdin = None
        # Files, not pipes: a created or detached init inherits the runtime's stdio and would
        # hold a pipe open long after the runtime has exited.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            p = subprocess.run(
                argv,
                input=input and input.encode(),
                stdin=stdin,
                stdout=out,
                stderr=err,
                timeout=timeout,
                **kw,
            )
            out.seek(0)
            err.seek(0)
            return Result(
                argv,
                p.returncode,
                out.read().decode(errors="replace"),
                err.read().decode(errors="replace"),
            )

    def spawn(self, *args, **kw):
        """Start `<rt> args` in the background, stdio to files; `.result()` waits -> Result."""
        return Pending(self.argv(*args), **kw)

    def popen(self, *args, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        return subprocess.Popen(self.argv(*args), **kw)

    # bundles
    def bundle(self, cfg=None, args=("true",), name=None):
        """A busybox bundle under this test's directory, with `cfg` (default: runs `args`)."""
        self._n += 1
        path = os.path.join(self.workdir, name or f"bundle-{self.name}-{self._n}")
        cfg = cfg if cfg is not None else config(args)
        root_path = cfg.get("root", {}).get("path", "rootfs")
        rootfs = root_path if root_path.startswith("/") else os.path.join(path, root_path)
        os.makedirs(path, exist_ok=True)
        # Only ever inside this test's directory: a test may name a rootfs that must not exist.
        if not os.path.exists(rootfs) and rootfs.startswith(self.workdir + "/"):
            bundles.make_rootfs(rootfs)
        b = Bundle(path, cfg)
        b.write()
        return b

    def _id_for(self, b, cid):
        if cid is None:
            cgp = (b.config.get("linux") or {}).get("cgroupsPath") if b else None
            cid = self.new_id(cgroups_path=cgp)
        elif cid not in self.ids:
            self.ids[cid] = None
        return cid

    def run(self, cfg_or_bundle, *flags, cid=None, **kw):
        """`run --bundle B ID` in the foreground; a Result."""
        b = cfg_or_bundle if isinstance(cfg_or_bundle, Bundle) else self.bundle(cfg_or_bundle)
        cid = self._id_for(b, cid)
        return self("run", "--bundle", b.path, *flags, cid, **kw)

    def output(self, cfg_or_args, *flags, **kw):
        """Run a container in the foreground, expect exit 0, return its stdout."""
        cfg = cfg_or_args if isinstance(cfg_or_args, dict | Bundle) else config(cfg_or_args)
        return self.run(cfg, *flags, **kw).ok().out

    def create(self, cfg_or_bundle, *flags, cid=None, **kw):
        b = cfg_or_bundle if isinstance(cfg_or_bundle, Bundle) else self.bundle(cfg_or_bundle)
        cid = self._id_for(b, cid)
        r = self("create", "--bundle", b.path, *flags, cid, **kw)
        return cid, r

    def created(self, cfg_or_bundle, *flags, **kw):
        """create, expect success; -> (id, pid)."""
        cid, r = self.create(cfg_or_bundle, *flags, **kw)
        r.ok()
        st = self.state(cid)
        assert st["status"] == "created", st
        self.pids.add(st["pid"])
        return cid, st["pid"]

    def state(self, cid):
        return self("state", cid).ok().json()

    def status(self, cid):
        return self.state(cid)["status"]

    def wait_stopped(self, cid, guard=TIMEOUT):
        """Poll `state` until the container has stopped (a hang guard, not a timing check)."""
        end = time.monotonic() + guard
        while time.monotonic() < end:
            if self.status(cid) == "stopped":
                return
            time.sleep(0.02)
        raise AssertionError(f"{cid} did not stop")

    # teardown
    def leftovers(self, cid):
        """What `delete --force` left of `cid`: a list of descriptions (empty if none)."""
        out = []
        if os.path.lexists(os.path.join(self.root, cid)):
            out.append(f"state dir {self.root}/{cid}")
        for d in cgroup_dirs_for(cid, self.ids.get(cid)):
            if os.path.isdir(d):
                out.append(f"cgroup {d}")
        return out

    def assert_nothing_left(self, cid):
        """Before any cleanup by the test: no state dir, cgroup or process of `cid`."""
        assert self.leftovers(cid) == []
        wait_for(
            lambda: not container_processes(set(), set(), self.workdir, [cid]),
            f"the processes of {cid} are gone",
            guard=10,
        )


class Env:
    """A test's world: its directory, and a runtime per name (the one under test and runc)."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.runtimes = {}

    def runtime(self, name):
        if name not in self.runtimes:
            binary = binary_for(name)
            if not binary or not os.path.exists(binary):
                if name == "sangja":
                    pytest.fail("sangja not found: set SANGJA or run `make install`")
                pytest.skip(f"{name} is not installed")
            self.runtimes[name] = Runtime(name, binary, self.workdir)
        return self.runtimes[name]


def namespaces_in_use():
    """The pid and mount namespaces of every process now."""
    out = set()
    for pid in all_pids():
        out.add(_ns(pid, "pid"))
        out.add(_ns(pid, "mnt"))
    return out


def _belongs_to(pid, workdir, ids):
    """Is `pid` one of this test's: run from its directory, in one of its containers' cgroups,
    or rooted in one of its rootfs? (Other sessions may run containers at the same time.)"""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        if workdir in cmd:
            return cmd
        with open(f"/proc/{pid}/cgroup") as f:
            cg = f.read()
        if any(f"/{cid}" in cg for cid in ids):
            return cmd
        tail = workdir.rstrip("/").split("/")[-2:]  # sangja-tests-XXX/t-YYY
        with open(f"/proc/{pid}/mountinfo") as f:
            for line in f:
                fields = line.split()
                if fields[4] == "/" and "/".join(tail) in fields[3]:
                    return cmd
    except OSError:
        pass
    return None


def container_processes(pids_before, ns_before, workdir, ids):
    """Live processes of this test: new ones, or in a namespace made during it."""
    out = []
    for pid in all_pids():
        if not alive(pid):
            continue
        new_ns = {_ns(pid, "pid"), _ns(pid, "mnt")} - ns_before - {None}
        if pid in pids_before and not new_ns:
            continue
        cmd = _belongs_to(pid, workdir, ids)
        if cmd is not None:
            out.append(f"pid {pid}: {cmd}")
    return out


def same_as_runc(rt, env, cfg, normalize=lambda s: s):
    """Run `cfg` under rt and (when rt is not runc) under runc; outputs must match.

    Returns rt's output. Under runc alone it only runs once: the test still checks itself.
    """
    out = rt.output(cfg)
    if not rt.is_runc and os.environ.get("SANGJA_TEST_NO_RUNC") != "1":
        ref = env.runtime("runc").output(cfg)
        assert normalize(out) == normalize(ref), "differs from runc"
    return out


# What engines send when a container has no limits: every field, zero meaning "leave it".
UNSET_RESOURCES = {
    "memory": {"limit": 0, "reservation": 0, "swap": 0, "kernel": 0, "kernelTCP": 0},
    "cpu": {"shares": 0, "quota": 0, "period": 0, "realtimeRuntime": 0, "realtimePeriod": 0,
            "cpus": "", "mems": ""},
    "pids": {"limit": 0},
    "blockIO": {"weight": 0},
}  # fmt: skip


USERNS_MAP = [{"containerID": 0, "hostID": 100000, "size": 65536}]


def userns_config(args):
    c = config(args)
    c["linux"]["namespaces"].append({"type": "user"})
    c["linux"]["uidMappings"] = list(USERNS_MAP)
    c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    # sysfs and the cgroup mount need privileges over the host's; bind them read-only
    for m in c["mounts"]:
        if m["destination"] == "/sys":
            m.update(
                type="none", source="/sys", options=["rbind", "nosuid", "noexec", "nodev", "ro"]
            )
    c["mounts"] = [m for m in c["mounts"] if m["destination"] != "/sys/fs/cgroup"]
    for m in c["mounts"]:
        if m["destination"] == "/dev/pts":
            m["options"] = [o for o in m["options"] if o != "gid=5"]
    return c
