"""The systemd cgroup driver against a real systemd.

This host runs no systemd, so the module boots one: Debian's /lib/systemd/systemd as PID 1
of a new pid and mount namespace (a fresh /run, its own unit directory with an empty default
target), placed in a cgroup of its own in every hierarchy, which it then manages as its
root, as systemd does in a container. sangja runs inside that namespace (nsenter), reaches
systemd over D-Bus on /run/systemd/private, and gets its scopes from it. The checks read
systemd's view (systemctl) and the kernel's (the cgroup files, /proc/PID/cgroup).
"""

import os
import secrets
import shutil
import signal
import subprocess
import time

import pytest
from rtkit import config, read, selected_runtimes, wait_for

from sangja.runtime.cgroups import systemd

SYSTEMD = "/lib/systemd/systemd"
CG = "/sys/fs/cgroup"
MiB = 1024 * 1024


def _hierarchies():
    """Every mounted cgroup hierarchy here: the v1 ones and the unified one."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            if post.split()[0] in ("cgroup", "cgroup2"):
                out.append(pre.split()[4])
    return out


def _v1_options(mountinfo):
    """[controller options] of each v1 cgroup mount listed in `mountinfo`."""
    out = []
    with open(mountinfo) as f:
        for line in f:
            post = line.partition(" - ")[2].split()
            if post and post[0] == "cgroup":
                out.append([o for o in post[2].split(",") if o not in ("rw", "ro")])
    return out


def _rmtree_cgroup(d):
    for root, dirs, _ in os.walk(d, topdown=False):
        for x in dirs:
            os.rmdir(os.path.join(root, x))
    os.rmdir(d)


# The whole system: a target that starts the system bus (for the tests that use it).
UNITS = {
    "default.target": "[Unit]\nDescription=sangja test target\nWants=dbus.socket\n",
    "dbus.socket": (
        "[Unit]\nDefaultDependencies=no\n[Socket]\nListenStream=/run/dbus/system_bus_socket\n"
    ),
    "dbus.service": (
        "[Unit]\nDefaultDependencies=no\nRequires=dbus.socket\n[Service]\nType=notify\nNotifyAccess=main\n"
        "ExecStart=/usr/bin/dbus-daemon --system --address=systemd: --nofork --nopidfile "
        "--systemd-activation --syslog-only\n"
    ),
}


# In the new namespaces, before systemd: its own /proc and /run, and a /sys/fs/cgroup of its
# own with the host's hierarchies moved in (systemd mounts those the host lacks, net_cls and
# perf_event here, and would make their directories in the host's /sys/fs/cgroup).
BOOT = """set -e
mount -t proc proc /proc
mount -t tmpfs tmpfs /run
mkdir /run/hostcg
mount --rbind /sys/fs/cgroup /run/hostcg
mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
for h in {names}; do
    mkdir /sys/fs/cgroup/$h
    mount --move /run/hostcg/$h /sys/fs/cgroup/$h
done
umount /run/hostcg
rmdir /run/hostcg
exec env -i container=sangja-test SYSTEMD_UNIT_PATH={path} {systemd} --system
"""

# What systemd, sangja and runc make at the top of the hierarchies only the namespace has.
TOP_NAMES = ("init.scope", "system.slice", "sjt.slice")


class Systemd:
    """A systemd booted in its own namespaces; `run` executes a command inside them."""

    def __init__(self, workdir):
        self.base = f"/sjt-systemd-{secrets.token_hex(4)}"
        self.dirs = [m + self.base for m in _hierarchies()]
        self.tops_before = {
            os.path.join(m, n)
            for m in _hierarchies()
            for n in TOP_NAMES
            if os.path.isdir(f"{m}/{n}")
        }
        units = os.path.join(workdir, "units")
        os.makedirs(units)
        for name, text in UNITS.items():
            with open(os.path.join(units, name), "w") as f:
                f.write(text)
        for d in self.dirs:
            os.mkdir(d)
            if os.path.basename(os.path.dirname(d)) == "cpuset":
                for k in ("cpus", "mems"):
                    with open(f"{d}/cpuset.{k}", "w") as f:
                        f.write(read(f"{CG}/cpuset/cpuset.{k}").strip())
        join = "; ".join(f"echo $$ > {d}/cgroup.procs" for d in self.dirs)
        # Units: where transient units and their runtime changes go, then ours.
        path = f"/run/systemd/system.control:/run/systemd/transient:{units}"
        names = " ".join(os.path.basename(m) for m in _hierarchies())
        boot = os.path.join(workdir, "boot.sh")
        with open(boot, "w") as f:
            f.write(BOOT.format(names=names, path=path, systemd=SYSTEMD))
        self.log = open(os.path.join(workdir, "systemd.log"), "wb")
        self.proc = subprocess.Popen(
            [
                "sh",
                "-c",
                f"{join}; exec unshare --pid --fork --mount --propagation private sh {boot}",
            ],  # fmt: skip
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = wait_for(self._pid1, "systemd started", guard=20)
        wait_for(lambda: self.run("systemctl", "is-system-running").stdout.strip() in
                 ("running", "degraded"), "systemd running", guard=30)  # fmt: skip

    def _pid1(self):
        try:
            kids = read(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").split()
        except OSError:
            return None
        for k in kids:
            if read(f"/proc/{k}/comm").strip() == "systemd":
                return int(k)
        return None

    def run(self, *argv, check=False):
        return subprocess.run(
            ["nsenter", "-t", str(self.pid), "-m", "-p", "--", *argv],
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    def show(self, unit, prop):
        return self.run("systemctl", "show", "-P", prop, unit, check=True).stdout.strip()

    def _own_hierarchies(self):
        """The options of the cgroup v1 hierarchies mounted in the namespace but not here."""
        host = {tuple(sorted(o)) for o in _v1_options("/proc/self/mountinfo")}
        return [
            o for o in _v1_options(f"/proc/{self.pid}/mountinfo") if tuple(sorted(o)) not in host
        ]

    def stop(self):
        extra = self._own_hierarchies()
        os.kill(self.pid, signal.SIGKILL)  # the namespace's init: all of it goes
        self.proc.wait()
        self.log.close()
        # The cgroups left in those hierarchies (they outlive every mount of them).
        for opts in extra:
            script = (
                "d=$(mktemp -d) && mount -t cgroup -o {o} none $d && cd $d && "
                "for t in {tops}; do [ -d $t ] && find $t -depth -type d -exec rmdir {{}} +; done; "
                "cd / && umount $d && rmdir $d"
            ).format(o=",".join(opts), tops=" ".join((*TOP_NAMES, self.base.lstrip("/"))))
            subprocess.run(["unshare", "-m", "sh", "-c", script], check=True, timeout=30)
        end = time.monotonic() + 10
        for d in reversed(self.dirs):
            while True:
                try:
                    _rmtree_cgroup(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > end:
                        raise
                    time.sleep(0.05)
        # Nothing of systemd's, sangja's or runc's outside the tree given to systemd.
        stray = [
            d
            for m in _hierarchies()
            for d in (os.path.join(m, n) for n in TOP_NAMES)
            if os.path.isdir(d) and d not in self.tops_before
        ]
        for d in stray:
            _rmtree_cgroup(d)
        # runc 1.1.5 takes each controller's root from /proc/1/cgroup, where systemd in a
        # container has moved itself to the top of the controllers init.scope does not use
        # (cpu, blkio, devices here): its cgroups land there. sangja uses systemd's own root.
        if "runc" not in selected_runtimes():
            assert stray == [], f"cgroups made outside systemd's tree: {stray}"


@pytest.fixture(scope="module")
def sd(tmp_path_factory):
    s = Systemd(str(tmp_path_factory.mktemp("systemd")))
    yield s
    s.stop()


def _inside(rt, sd, env_prefix=""):
    """Make `rt` run with --systemd-cgroup inside systemd's namespaces (the env fixture's
    `delete --force` at teardown goes the same way)."""
    wrapper = os.path.join(os.path.dirname(rt.root), f"{rt.name}-in-systemd")
    with open(wrapper, "w") as f:
        f.write(f"#!/bin/sh\nexec nsenter -t {sd.pid} -m -p -- {env_prefix}"
                f'{rt.binary} --systemd-cgroup "$@"\n')  # fmt: skip
    os.chmod(wrapper, 0o755)
    rt.binary = wrapper
    return rt


@pytest.fixture
def srt(rt, sd):
    """The runtime under test (sangja, or runc with SANGJA_TEST_RUNTIMES=runc: runc reaches
    systemd over the system bus, which the namespace has too)."""
    return _inside(rt, sd)


def sd_config(cid, args=("sleep", "100"), slice_name="system.slice", resources=None):
    c = config(list(args))
    c["linux"]["cgroupsPath"] = f"{slice_name}:sjt:{cid}"
    if resources:
        c["linux"]["resources"].update(resources)
    return c


def scope_dir(sd, hierarchy, cid, slice_path="/system.slice"):
    return f"{CG}/{hierarchy}{sd.base}{slice_path}/sjt-{cid}.scope"


def inside_cgroups(sd, pid):
    """/proc/PID/cgroup of a process of systemd's pid namespace -> {controllers: path}."""
    text = sd.run("cat", f"/proc/{pid}/cgroup", check=True).stdout
    return dict(line.split(":", 2)[1:] for line in text.splitlines())


LIMITS = {
    "memory": {"limit": 64 * MiB},
    "pids": {"limit": 50},
    "cpu": {"shares": 512, "quota": 25000, "period": 100000},
}


@pytest.mark.sangja_only("runc 1.1.5 leaves the init in the slice's devices cgroup")
def test_scope_made_by_systemd_with_limits(srt, sd):
    cid = srt.new_id("sd")
    srt.create(sd_config(cid, resources=LIMITS), cid=cid)[1].ok()
    unit = f"sjt-{cid}.scope"
    assert sd.show(unit, "ActiveState") == "active"
    assert sd.show(unit, "Slice") == "system.slice"
    assert sd.show(unit, "Delegate") == "yes"
    # systemd holds the limits it knows
    assert sd.show(unit, "MemoryLimit") == str(64 * MiB)
    assert sd.show(unit, "TasksMax") == "50"
    assert sd.show(unit, "CPUShares") == "512"
    assert sd.show(unit, "CPUQuotaPerSecUSec") == "250ms"
    # the init is in the scope in every hierarchy, ours (freezer, cpuset) as systemd's
    pid = srt.state(cid)["pid"]
    where = inside_cgroups(sd, pid)
    want = f"{sd.base}/system.slice/{unit}"
    for ctrls in ("memory", "pids", "cpu", "devices", "name=systemd", "freezer", "cpuset", ""):
        assert where[ctrls] == want, (ctrls, where)
    assert sd.show(unit, "ControlGroup") == want
    # and the files say so
    assert read(f"{scope_dir(sd, 'memory', cid)}/memory.limit_in_bytes").strip() == str(64 * MiB)
    assert read(f"{scope_dir(sd, 'pids', cid)}/pids.max").strip() == "50"
    assert read(f"{scope_dir(sd, 'cpu', cid)}/cpu.cfs_quota_us").strip() == "25000"
    assert read(f"{scope_dir(sd, 'cpu', cid)}/cpu.shares").strip() == "512"


def test_daemon_reload_keeps_the_containers_limits_and_devices(srt, sd):
    """systemd re-applies a unit's properties on daemon-reload: they must be the
    container's (runc's reason to send them), not systemd's allow-all defaults."""
    cid = srt.new_id("sd")
    srt.create(sd_config(cid, resources=LIMITS), cid=cid)[1].ok()
    dev = scope_dir(sd, "devices", cid)
    before = read(f"{dev}/devices.list")
    assert "a *:* rwm" not in before and "c 1:3 rwm" in before
    sd.run("systemctl", "daemon-reload", check=True)
    assert read(f"{scope_dir(sd, 'memory', cid)}/memory.limit_in_bytes").strip() == str(64 * MiB)
    assert read(f"{scope_dir(sd, 'pids', cid)}/pids.max").strip() == "50"
    after = read(f"{dev}/devices.list")
    assert "a *:* rwm" not in after
    assert sorted(after.split("\n")) == sorted(before.split("\n"))
    # and the container still cannot open a device it was not given, but can /dev/null
    srt("start", cid).ok()
    r = srt("exec", cid, "sh", "-c", "echo x > /dev/null && echo null-ok; "
            "mknod /dev/t c 4 0 && head -c1 /dev/t")  # fmt: skip
    assert "null-ok" in r.out
    assert "/dev/t: Operation not permitted" in r.err, r


@pytest.mark.sangja_only("runc 1.1.5's ps finds no process under the systemd driver here")
def test_run_exec_and_the_processes_inside(srt, sd):
    cid = srt.new_id("sd")
    out = srt.output(sd_config(cid, args=("cat", "/proc/self/cgroup")), cid=cid)
    assert f":memory:{sd.base}/system.slice/sjt-{cid}.scope" in out
    assert f":freezer:{sd.base}/system.slice/sjt-{cid}.scope" in out
    # the scope went with its last process: systemd cleans up after a scope that emptied
    wait_for(lambda: sd.show(f"sjt-{cid}.scope", "LoadState") == "not-found",
             "the emptied scope gone")  # fmt: skip

    cid = srt.new_id("sd")
    srt.create(sd_config(cid), cid=cid)[1].ok()
    srt("start", cid).ok()
    out = srt("exec", cid, "cat", "/proc/self/cgroup").ok().out
    assert f":pids:{sd.base}/system.slice/sjt-{cid}.scope" in out
    assert f":cpuset:{sd.base}/system.slice/sjt-{cid}.scope" in out
    # the pids the kernel lists in the scope (as this pid namespace numbers them)
    assert srt("ps", "--format", "json", cid).ok().json() == [srt.state(cid)["pid"]]


def test_update_changes_the_unit_and_the_files(srt, sd):
    cid = srt.new_id("sd")
    srt.create(sd_config(cid, resources=LIMITS), cid=cid)[1].ok()
    srt("update", "--memory", str(128 * MiB), "--pids-limit", "70", cid).ok()
    unit = f"sjt-{cid}.scope"
    assert sd.show(unit, "MemoryLimit") == str(128 * MiB)
    assert sd.show(unit, "TasksMax") == "70"
    assert read(f"{scope_dir(sd, 'memory', cid)}/memory.limit_in_bytes").strip() == str(128 * MiB)
    assert read(f"{scope_dir(sd, 'pids', cid)}/pids.max").strip() == "70"
    sd.run("systemctl", "daemon-reload", check=True)
    assert read(f"{scope_dir(sd, 'pids', cid)}/pids.max").strip() == "70"


def test_pause_resume_and_delete_leave_nothing(srt, sd):
    cid = srt.new_id("sd")
    slice_name = "sjt-a.slice"
    srt.create(sd_config(cid, slice_name=slice_name), cid=cid)[1].ok()
    srt("start", cid).ok()
    unit = f"sjt-{cid}.scope"
    assert sd.show(unit, "Slice") == slice_name
    nested = "/sjt.slice/sjt-a.slice"
    dirs = [scope_dir(sd, h, cid, nested) for h in ("memory", "freezer", "cpuset", "unified")]
    assert all(os.path.isdir(d) for d in dirs)
    srt("pause", cid).ok()
    assert srt.status(cid) == "paused"
    assert read(f"{dirs[1]}/freezer.state").strip() == "FROZEN"
    srt("resume", cid).ok()
    assert srt.status(cid) == "running"
    srt("delete", "--force", cid).ok()
    assert sd.show(unit, "LoadState") == "not-found"
    assert [d for d in dirs if os.path.exists(d)] == []


@pytest.mark.sangja_only("the text of the error")
def test_a_unit_in_use_is_refused_and_left_alone(srt, sd):
    """Two containers with one cgroupsPath: the second is refused, and its clean-up neither
    stops the first one's scope nor kills its processes."""
    cid = srt.new_id("sd")
    srt.create(sd_config(cid), cid=cid)[1].ok()
    srt("start", cid).ok()
    other = srt.new_id("sd")
    r = srt.create(sd_config(cid), cid=other)[1]
    assert r.rc == 1
    assert f"systemd: unit sjt-{cid}.scope already exists" in r.err, r
    assert srt("state", other).rc != 0
    assert srt.status(cid) == "running"
    assert sd.show(f"sjt-{cid}.scope", "ActiveState") == "active"


@pytest.mark.sangja_only("the text of the error")
def test_systemd_gone_is_a_clear_error(srt, sd):
    """The runtime asks systemd for the scope: a socket nobody answers on is an error that
    names it, and nothing is left behind (the env fixture checks)."""
    cid = srt.new_id("sd")
    b = srt.bundle(sd_config(cid))
    sd.run("mount", "--bind", "/dev/null", "/run/systemd/private", check=True)
    try:
        r = srt("create", "--bundle", b.path, cid)
    finally:
        sd.run("umount", "/run/systemd/private", check=True)
    assert r.rc == 1
    assert "systemd: connect /run/systemd/private" in r.err, r.err
    assert srt("state", cid).rc != 0


def test_over_the_system_bus(env, sd):
    """DBUS_SYSTEM_BUS_ADDRESS: sangja goes through the bus daemon (Hello, AddMatch,
    Subscribe). systemd's private socket is made unusable meanwhile, so that only the bus
    can have carried the calls."""
    bus = "unix:path=/run/dbus/system_bus_socket"
    srt = _inside(env.runtime("sangja"), sd, env_prefix=f"env DBUS_SYSTEM_BUS_ADDRESS={bus} ")
    cid = srt.new_id("sd")
    sd.run("mount", "--bind", "/dev/null", "/run/systemd/private", check=True)
    try:
        srt.create(sd_config(cid, resources=LIMITS), cid=cid)[1].ok()
        unit = f"sjt-{cid}.scope"
        assert sd.show(unit, "ActiveState") == "active"
        srt("update", "--pids-limit", "60", cid).ok()
        assert sd.show(unit, "TasksMax") == "60"
        srt("delete", "--force", cid).ok()
        assert sd.show(unit, "LoadState") == "not-found"
    finally:
        sd.run("umount", "/run/systemd/private", check=True)


@pytest.fixture(scope="module")
def bbox_tar(tmp_path_factory):
    """../shared/engines' test image (busybox-static, offline) as a docker-archive."""
    out = str(tmp_path_factory.mktemp("image") / "bbox.tar")
    script = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "engines",
                          "build-image.sh")  # fmt: skip
    subprocess.run(["bash", script, out], check=True, capture_output=True, timeout=300)
    return out


def test_podman_with_the_systemd_cgroup_manager(env, sd, bbox_tar):
    """What podman does on a systemd host by default (`cgroup_manager = "systemd"`): sangja
    as its runtime gets `--systemd-cgroup` and `machine.slice:libpod:ID`; the container's
    limits, `podman update` and `podman rm` go through systemd's scope."""
    sangja = env.runtime("sangja").binary
    store = os.path.join(env.workdir, "podman")
    pd = ["podman", "--root", f"{store}/root", "--runroot", f"{store}/run", "--runtime", sangja,
          "--cgroup-manager", "systemd", "--events-backend", "none"]  # fmt: skip

    def podman(*args):
        r = sd.run(*pd, *args)
        assert r.returncode == 0, (args, r.stderr)
        return r.stdout.strip()

    podman("load", "-i", bbox_tar)
    cid = podman("run", "-d", "--log-driver", "k8s-file", "--memory", "64m", "--pids-limit", "40",
                 "localhost/bbox:latest", "sleep", "100")  # fmt: skip
    try:
        unit = f"libpod-{cid}.scope"
        assert sd.show(unit, "ActiveState") == "active"
        assert sd.show(unit, "Slice") == "machine.slice"
        assert sd.show(unit, "MemoryLimit") == str(64 * MiB)
        assert sd.show(unit, "TasksMax") == "40"
        inside = podman("exec", cid, "cat", "/proc/self/cgroup")
        assert f":memory:{sd.base}/machine.slice/{unit}" in inside
        mem = f"{CG}/memory{sd.base}/machine.slice/{unit}/memory.limit_in_bytes"
        assert read(mem).strip() == str(64 * MiB)
        podman("update", "--memory", "128m", cid)
        assert sd.show(unit, "MemoryLimit") == str(128 * MiB)
        assert read(mem).strip() == str(128 * MiB)
    finally:
        podman("rm", "-f", "-t", "0", cid)
    assert sd.show(unit, "LoadState") == "not-found"
    assert not os.path.exists(os.path.dirname(mem))


# -- without a kernel: the properties -------------------------------------------------------
def test_properties_as_runc_converts_them():
    from sangja.runtime.cgroups import devices

    res = {"memory": {"limit": -1}, "cpu": {"quota": 12345, "period": 50000, "shares": 2},
           "pids": {"limit": -1}, "blockIO": {"weight": 500}}  # fmt: skip
    v1 = dict(systemd.properties(res, None, unified=False))
    assert v1["MemoryLimit"] == ("t", systemd.INFINITY)
    assert v1["CPUQuotaPerSecUSec"] == ("t", 250000)  # 246900 rounded up to a whole 1%
    assert v1["CPUQuotaPeriodUSec"] == ("t", 50000)
    assert v1["CPUShares"] == ("t", 2)
    assert v1["TasksMax"] == ("t", systemd.INFINITY)
    assert v1["BlockIOWeight"] == ("t", 500)
    v2 = dict(systemd.properties(dict(res, cpu={"shares": 1024, "cpus": "0-2,5"}), None, True))
    assert v2["CPUWeight"] == ("t", 39)
    assert v2["IOWeight"] == ("t", 4950)
    assert v2["AllowedCPUs"] == ("ay", bytes([0b100111]))
    assert "CPUQuotaPerSecUSec" not in v2
    rules = devices.rules({"resources": {"devices": [{"allow": False, "access": "rwm"}]}})
    props = dict(systemd.device_properties(rules))
    assert props["DevicePolicy"] == ("s", "strict")
    allow = props["DeviceAllow"][1]
    assert ("/dev/char/1:3", "rwm") in allow
    assert ("char-136", "rwm") in allow  # /dev/pts/*
    assert ("char-*", "m") in allow and ("block-*", "m") in allow
    open_all = devices.rules({"resources": {"devices": [{"allow": True, "access": "rwm"}]}})
    assert dict(systemd.device_properties(open_all))["DevicePolicy"] == ("s", "auto")


def test_slice_as_the_unit_is_refused():
    with pytest.raises(Exception, match="a slice as the container's own unit"):
        systemd.for_spec("system.slice:x:my.slice", "id")


@pytest.fixture(autouse=True, scope="module")
def _need_nsenter():
    if not shutil.which("nsenter"):
        pytest.fail("nsenter (util-linux) is needed")
