"""The known runtime breakouts, each attempted for real, from inside a container (or by its
image), and what a container must never manage. The runtime under test must defeat every
one: refusing the bundle with a one-line reason is fine, touching the host is not.

CVE-2019-5736 (/proc/self/exe), CVE-2024-21626 (leaked fds as cwd), CVE-2021-30465 and
CVE-2024-45310 (symlinks swapped under mount targets), CVE-2025-31133 and CVE-2025-52565
(/dev/null and /dev/console replaced by symlinks), CVE-2019-16884 and CVE-2023-27561 (a fake
/proc). runc 1.1.5 predates the fixes of several: those tests are sangja's.
"""

import glob
import hashlib
import os
import secrets
import shutil
import subprocess
import sys

import pytest
import seckit
from recvtty import ConsoleReceiver
from rtkit import TIMEOUT, Result, config, read, userns_config

# -- helpers ---------------------------------------------------------------------------------------


def one_line_refusal(r):
    assert r.rc == 1 and len(r.err.strip().splitlines()) == 1, r


def runtime_files(rt):
    """The host files the runtime executes: its binary, and for sangja the interpreter the
    entry script names and the C extensions."""
    files = [os.path.realpath(rt.binary)]
    py = interpreter(rt)
    if py:
        files.append(py)
        venv = os.path.dirname(os.path.dirname(rt.binary))
        files += glob.glob(f"{venv}/lib/python3*/site-packages/sangja/_native/*.so")
    return files


def fingerprint(paths):
    out = {}
    for p in paths:
        st = os.stat(p)
        with open(p, "rb") as f:
            out[p] = (hashlib.sha256(f.read()).hexdigest(), st.st_size, st.st_mtime_ns)
    return out


# -- CVE-2019-5736: /proc/self/exe -----------------------------------------------------------------

# The image's /bin/sh: the kernel runs /proc/self/exe as its interpreter. Were that the host's
# Python (the runtime's init is a copy of it until execve), this would run as the Python
# program below, inside the container: it reports what it reached and tries to open it for
# writing (it never writes: the test must not damage the host if it fails).
EVIL_SH = """#!/proc/self/exe
import os
st = os.stat("/proc/self/exe")
with open("/report/ran", "w") as f:
    f.write(f"{st.st_dev}:{st.st_ino}\\n")
try:
    os.close(os.open("/proc/self/exe", os.O_WRONLY))
    open("/report/opened-for-write", "w").close()
except OSError as e:
    open("/report/write-errno", "w").write(str(e.errno))
"""


def interpreter(rt):
    """The Python the runtime runs on (sangja's entry script names it), or None."""
    with open(rt.binary, "rb") as f:
        head = f.read(256)
    if not head.startswith(b"#!"):
        return None
    return os.path.realpath(head[2:].split(b"\n")[0].split()[0].decode())


def evil_bundle(rt, args):
    """A bundle whose /bin/sh is the attack, and with what the runtime's Python needs to
    start in the container (its loader, libraries, encodings) as an attacker's image would
    have them: if the attack got through, the payload would really run."""
    report = os.path.join(rt.workdir, f"report-{secrets.token_hex(3)}")
    os.mkdir(report)
    c = config(args)
    c["mounts"].append({"destination": "/report", "type": "bind", "source": report,
                        "options": ["rbind"]})  # fmt: skip
    b = rt.bundle(c)
    py = interpreter(rt) or os.path.realpath(sys.executable)
    ldd = subprocess.run(["ldd", py], capture_output=True, text=True).stdout
    for word in ldd.split():
        if word.startswith("/") and os.path.exists(word):
            dst = os.path.join(b.rootfs, word.lstrip("/"))
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy(word, dst)
    stdlib = subprocess.run([py, "-c", "import os; print(os.path.dirname(os.__file__))"],
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    lib = os.path.join(b.rootfs, stdlib.lstrip("/"))
    shutil.copytree(os.path.join(stdlib, "encodings"), os.path.join(lib, "encodings"))
    shutil.copy(os.path.join(stdlib, "os.py"), lib)  # the landmark getpath looks for
    sh = os.path.join(b.rootfs, "bin/sh")
    os.unlink(sh)
    with open(sh, "w") as f:
        f.write(EVIL_SH)
    os.chmod(sh, 0o755)
    return b, report


def assert_not_reached(rt, report, before):
    assert not os.listdir(report), {n: read(os.path.join(report, n)) for n in os.listdir(report)}
    assert fingerprint(before) == before


def test_proc_self_exe_run(rt):
    """run: the container's program is a script for /proc/self/exe."""
    files = fingerprint(runtime_files(rt))
    b, report = evil_bundle(rt, ["/bin/sh", "-c", "true"])
    r = rt.run(b)
    assert_not_reached(rt, report, files)
    assert r.rc != 0, r  # whatever ran as the interpreter refused


def test_proc_self_exe_exec(rt):
    """exec into a running container whose /bin/sh was replaced (by its own processes)."""
    files = fingerprint(runtime_files(rt))
    b, report = evil_bundle(rt, ["sleep", "1000"])
    cid = rt.new_id()
    rt("run", "-d", "--bundle", b.path, cid).ok()
    rt.pids.add(rt.state(cid)["pid"])
    r = rt("exec", cid, "/bin/sh", "-c", "true")
    assert_not_reached(rt, report, files)
    assert r.rc != 0, r


@pytest.mark.sangja_only("runc 1.1.5's created init is dumpable")
def test_created_init_is_not_dumpable(rt):
    """Until its execve the init holds the runtime's resources: nothing in the container may
    reach its /proc entries (exe, fds, memory)."""
    b = rt.bundle(config(["true"]))
    cid, pid = rt.created(b)
    # (the names in /proc/1/fd are listed to anyone: what they point to is not)
    script = ("readlink /proc/1/exe || echo exe-denied; readlink /proc/1/fd/1 || "
              "echo fd-denied; cat /proc/1/environ >/dev/null 2>&1 || echo env-denied")  # fmt: skip
    out = rt("exec", cid, "sh", "-c", script).ok().out
    assert out.split() == ["exe-denied", "fd-denied", "env-denied"], out


@pytest.mark.sangja_only("the process is caught at sangja's execveat of its trampoline")
def test_exec_process_is_not_dumpable_until_execve(rt, env):
    """An exec'd process, caught just before its execve (a seccomp agent holds the call), is
    out of reach of the container's other processes too."""
    agent_path = os.path.join(env.workdir, "agent.sock")
    hold = {"armed": False, "pid": None}

    def answer(pid, nr, args):
        if hold["armed"] and hold["pid"] is None:
            hold["pid"] = pid
            return None  # held: the process waits in execve(at)
        return ("continue",)

    agent = seckit.NotifyAgent(agent_path, answer)
    pending = None
    try:
        c = config(["sleep", "1000"])
        c["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": agent_path,
            "syscalls": [{"names": ["execve", "execveat"], "action": "SCMP_ACT_NOTIFY"}],
        }
        cid = rt.new_id()
        rt("run", "-d", "--bundle", rt.bundle(c).path, cid).ok()
        rt.pids.add(rt.state(cid)["pid"])
        hold["armed"] = True
        pending = rt.spawn("exec", cid, "true")
        agent.wait(lambda a: hold["pid"] in a.held, "the exec'd process is held")
        pid = hold["pid"]
        nspid = [ln.split()[-1] for ln in read(f"/proc/{pid}/status").splitlines()
                 if ln.startswith("NSpid:")][0]  # fmt: skip
        if not rt.is_runc:
            assert read(f"/proc/{pid}/comm").strip() == "sangja:exec"  # not executed yet
        script = (f"readlink /proc/{nspid}/exe || echo exe-denied; "
                  f"readlink /proc/{nspid}/fd/1 || echo fd-denied")  # fmt: skip
        out = rt("exec", cid, "sh", "-c", script).ok().out
        assert out.split() == ["exe-denied", "fd-denied"], out
        agent.release(pid, "continue")
        assert pending.result().rc == 0
        pending = None
    finally:
        if pending is not None:
            pending.proc.kill()
            pending.result()
        agent.close()


# -- CVE-2024-21626: leaked fds as the cwd ---------------------------------------------------------


def leak_host_dirs(canary):
    """Host directories opened without O_CLOEXEC, as a careless caller hands them over."""
    fds = [os.open(p, os.O_RDONLY | os.O_DIRECTORY) for p in ("/", canary, "/sys/fs/cgroup")]
    for fd in fds:
        os.set_inheritable(fd, True)
    return fds


def run_leaking(rt, fds, *args):
    with open(os.devnull) as devnull:
        argv = rt.argv(*args)
        p = subprocess.run(argv, stdin=devnull, capture_output=True, pass_fds=fds,
                           timeout=TIMEOUT)  # fmt: skip
    return Result(argv, p.returncode, p.stdout.decode(), p.stderr.decode())


def assert_inside(r, canary):
    """Refused, or the process's cwd is in the container: never a host directory."""
    if r.rc != 0:
        return
    cwd, _, listing = r.out.partition("\n")
    assert cwd.startswith("/") and "unreachable" not in cwd, r
    names = set(listing.split())
    assert "canary" not in names and "cgroup.procs" not in names, r
    assert names != set(os.listdir("/")) or names <= {"bin", "dev", "etc", "proc", "sys"}, r


@pytest.mark.sangja_only("runc 1.1.5 predates the fix for CVE-2024-21626 (1.1.12)")
def test_cwd_through_leaked_fds(rt, canary):
    fds = leak_host_dirs(canary)
    try:
        for n in range(3, 16):
            c = config(["sh", "-c", "pwd; ls -a"])
            c["process"]["cwd"] = f"/proc/self/fd/{n}"
            b = rt.bundle(c)
            r = run_leaking(rt, fds, "run", "--bundle", b.path, rt.new_id())
            assert_inside(r, canary)
            if r.rc != 0:
                assert len(r.err.strip().splitlines()) == 1, r
    finally:
        for fd in fds:
            os.close(fd)


@pytest.mark.sangja_only("runc 1.1.5 predates the fix for CVE-2024-21626 (1.1.12)")
def test_exec_cwd_through_leaked_fds(rt, canary):
    b = rt.bundle(config(["sleep", "1000"]))
    cid = rt.new_id()
    rt("run", "-d", "--bundle", b.path, cid).ok()
    rt.pids.add(rt.state(cid)["pid"])
    fds = leak_host_dirs(canary)
    try:
        for n in range(3, 16):
            r = run_leaking(rt, fds, "exec", "--cwd", f"/proc/self/fd/{n}", cid, "sh", "-c",
                            "pwd; ls -a")  # fmt: skip
            assert_inside(r, canary)
        # and what the exec'd process holds: 0, 1, 2 and the preserved ones only
        r = run_leaking(rt, fds, "exec", cid, "ls", "/proc/self/fd")
        assert sorted(map(int, r.out.split())) == [0, 1, 2, 3], r  # 3: ls's own directory
    finally:
        for fd in fds:
            os.close(fd)


# -- CVE-2021-30465, CVE-2024-45310: mount targets swapped for symlinks ----------------------------

SWAPPER = r"""
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
a, b = sys.argv[1].encode(), sys.argv[2].encode()
while True:
    libc.renameat2(-100, a, -100, b, 2)  # AT_FDCWD, RENAME_EXCHANGE
"""


def swapping(a, b):
    """A process that swaps a and b (a directory and a symlink) in a tight loop."""
    return subprocess.Popen([sys.executable, "-c", SWAPPER, a, b])


@pytest.mark.parametrize("link", ["H", "../../../../../../../../H"])
def test_mount_target_swapped_for_a_symlink(rt, canary, link):
    """While the runtime mounts a tmpfs on /race/target, something swaps that directory with
    a symlink to a host directory, over and over: every mount lands inside the container."""
    H = canary
    c = config(["sh", "-c", "cat /proc/self/mountinfo"])
    c["mounts"].append({"destination": "/race/target", "type": "tmpfs", "source": "tmpfs"})
    b = rt.bundle(c)
    race = os.path.join(b.rootfs, "race")
    os.makedirs(os.path.join(race, "target"))
    os.symlink(link.replace("H", H.lstrip("/") if link != "H" else H), os.path.join(race, "alt"))
    swapper = swapping(os.path.join(race, "target"), os.path.join(race, "alt"))
    try:
        for _ in range(20):
            r = rt.run(b)
            if r.rc != 0:
                one_line_refusal(r)
                continue
            targets = [ln.split()[4] for ln in r.out.splitlines() if " - tmpfs " in ln]
            assert any(t.startswith("/race/") or t == H for t in targets), r.out
    finally:
        swapper.kill()
        swapper.wait()


def test_bind_target_swapped_for_a_symlink(rt, canary):
    """The same for a file bind mount whose target is swapped with a symlink to a host file:
    the host file is never covered or written."""
    H = canary
    src = os.path.join(rt.workdir, "payload")
    with open(src, "w") as f:
        f.write("payload\n")
    c = config(["cat", "/race/file"])
    c["mounts"].append({"destination": "/race/file", "type": "bind", "source": src,
                        "options": ["bind"]})  # fmt: skip
    b = rt.bundle(c)
    race = os.path.join(b.rootfs, "race")
    os.makedirs(race)
    open(os.path.join(race, "file"), "w").close()
    os.symlink(f"{H}/canary", os.path.join(race, "alt"))
    swapper = swapping(os.path.join(race, "file"), os.path.join(race, "alt"))
    try:
        for _ in range(20):
            r = rt.run(b)
            if r.rc != 0:
                one_line_refusal(r)
    finally:
        swapper.kill()
        swapper.wait()


# -- CVE-2025-31133, CVE-2025-52565: /dev/null and /dev/console ------------------------------------


def test_masks_are_the_null_device(rt):
    """Masked files are covered by the null device itself (by device numbers)."""
    c = config([])
    files = [p for p in c["linux"]["maskedPaths"] if os.path.isfile(p)]  # what this kernel has
    assert files
    c["process"]["args"] = ["stat", "-c", "%t:%T %F", *files]
    out = rt.output(c)
    assert out.splitlines() == ["1:3 character special file"] * len(files), out


def dev_from_bundle(rt, c, entries):
    """/dev is the bundle's directory `dev` (a bind, as an image volume would be), holding
    `entries` ({name: ("link", target) | ("null",) | ("file",)})."""
    devdir = os.path.join(rt.workdir, f"dev-{secrets.token_hex(3)}")
    os.mkdir(devdir)
    for name, what in entries.items():
        p = os.path.join(devdir, name)
        if what[0] == "link":
            os.symlink(what[1], p)
        elif what[0] == "null":
            os.mknod(p, 0o20666, os.makedev(1, 3))
            os.chmod(p, 0o666)
        else:
            open(p, "w").close()
    for m in c["mounts"]:
        if m["destination"] == "/dev":
            m.update(type="bind", source=devdir, options=["rbind"])
    return devdir


@pytest.mark.sangja_only("runc 1.1.5 predates the fix for CVE-2025-31133 (1.2.8)")
@pytest.mark.parametrize(
    "null", [("link", "/proc/sys/kernel/core_pattern"), ("link", "/proc/sys/kernel/modprobe"),
             ("file",)],
)  # fmt: skip
def test_dev_null_replaced(rt, null):
    """A rootfs whose /dev/null is a symlink to a procfs file (or a plain file): masking with
    it would expose that file writable. Refused, with a reason; the host is untouched."""
    before = read("/proc/sys/kernel/core_pattern")
    c = config(["true"])
    dev_from_bundle(rt, c, {"null": null, "ptmx": ("link", "pts/ptmx")})
    cid = rt.new_id()
    r = rt("run", "--bundle", rt.bundle(c).path, cid)
    one_line_refusal(r)
    assert "/dev/null" in r.err
    assert read("/proc/sys/kernel/core_pattern") == before
    rt.assert_nothing_left(cid)


def console_run(rt, c):
    """Run `c` (terminal) with a console socket; -> what the process wrote to the pty."""
    with ConsoleReceiver(os.path.join(rt.workdir, f"c{secrets.token_hex(2)}.sock")) as rx:
        cid, r = rt.create(c, "--console-socket", rx.path)
        r.ok()
        pty = rx.accept()
    try:
        rt.pids.add(rt.state(cid)["pid"])
        rt("start", cid).ok()
        return pty.read_all().decode(errors="replace").replace("\r", "")
    finally:
        pty.close()


CONSOLE_CHECK = (
    "stat -c 'console=%t:%T' /dev/console; stat -L -c 'tty=%t:%T' /proc/self/fd/0; "
    "stat -c 'target=%F' /proc/sys/kernel/core_pattern; [ -L /dev/console ] && echo link; true"
)


def console_facts(out):
    return dict(ln.split("=", 1) for ln in out.splitlines() if "=" in ln), "link" in out.split()


def test_dev_console_is_the_pty(rt):
    c = config(["sh", "-c", CONSOLE_CHECK])
    c["process"]["terminal"] = True
    facts, link = console_facts(console_run(rt, c))
    assert facts["console"] == facts["tty"] and not link, facts


@pytest.mark.sangja_only("runc 1.1.5 predates the fix for CVE-2025-52565 (1.2.8)")
def test_dev_console_replaced_by_a_symlink(rt):
    """A /dev whose console is a symlink to a procfs file (core_pattern: who may write it
    owns the host): the pty is bound on /dev/console itself (the link is replaced), never
    on what the link names."""
    c = config(["sh", "-c", CONSOLE_CHECK])
    c["process"]["terminal"] = True
    dev_from_bundle(rt, c, {"console": ("link", "/proc/sys/kernel/core_pattern"), "null": ("null",),
                            "ptmx": ("link", "pts/ptmx")})  # fmt: skip
    out = console_run(rt, c)
    facts, link = console_facts(out)
    assert facts["console"] == facts["tty"] and not link, out
    assert facts["target"].startswith("regular"), out


# -- CVE-2019-16884, CVE-2023-27561: a fake /proc --------------------------------------------------


def fake_proc(rt, c):
    """No procfs mount: the image's /proc is a directory of look-alike files."""
    c["mounts"] = [m for m in c["mounts"] if m["destination"] != "/proc"]
    b = rt.bundle(c)
    fake = os.path.join(b.rootfs, "proc")
    for rel, text in (("sys/net/ipv4/ip_forward", "0\n"), ("self/attr/exec", ""),
                      ("self/attr/apparmor/exec", ""), ("self/fd/.keep", "")):  # fmt: skip
        os.makedirs(os.path.dirname(os.path.join(fake, rel)), exist_ok=True)
        with open(os.path.join(fake, rel), "w") as f:
            f.write(text)
    return b, fake


@pytest.mark.parametrize("userns", [False, True])
def test_fake_proc(rt, userns):
    """sysctls, the exec fifo (and LSM attributes, where the host has an LSM) go through a
    procfs the runtime made, the uid/gid maps and oom_score_adj through the host's: the
    fake files are never written and the real values are set."""
    c = userns_config(["true"]) if userns else config(["true"])
    c["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    c["process"]["oomScoreAdj"] = 123
    b, fake = fake_proc(rt, c)
    cid, r = rt.create(b)
    if r.rc != 0:  # refusing is fine
        one_line_refusal(r)
        return
    pid = rt.state(cid)["pid"]
    rt.pids.add(pid)
    real = subprocess.run(["nsenter", "-t", str(pid), "-n", "cat", "/proc/sys/net/ipv4/ip_forward"],
                          capture_output=True, text=True, timeout=TIMEOUT)  # fmt: skip
    assert real.stdout == "1\n", real
    assert read(f"/proc/{pid}/oom_score_adj").strip() == "123"
    if userns:
        assert read(f"/proc/{pid}/uid_map").split() == ["0", "100000", "65536"]
    assert read(os.path.join(fake, "sys/net/ipv4/ip_forward")) == "0\n"
    assert read(os.path.join(fake, "self/attr/exec")) == ""
    rt("start", cid).ok()
    rt.wait_stopped(cid)


# -- what a container can never do -----------------------------------------------------------------


def probe_out(rt, cfg, script):
    cfg["process"]["args"] = ["sh", "-c", script]
    b = rt.bundle(cfg)
    seckit.add_probe(b)
    return rt.output(b)


def test_cannot_see_host_processes(rt):
    out = rt.output(config(["sh", "-c", "for d in /proc/[0-9]*; do cat $d/comm; done"]))
    assert set(out.split()) <= {"sh", "cat"}, out


def test_cannot_mount_the_host_root(rt):
    script = ("probe sys mount s:/ s:/tmp 0 0x5000 0; probe sys open_tree -100 s:/ 1; "
              "probe sys chroot s:/proc/1/root; probe mknod /dev/disk 8 0; "
              "probe sys mount s:proc s:/tmp s:proc 0 0")  # fmt: skip
    res = seckit.results(probe_out(rt, config([]), script))
    assert res == {"mount": 1, "open_tree": 1, "chroot": 1, "mknod": 1, "mount#2": 1}, res


def test_cannot_write_readonly_sys_and_proc_sys(rt):
    files = ["/proc/sys/kernel/hostname", "/sys/kernel/mm/transparent_hugepage/enabled",
             "/proc/sysrq-trigger", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]  # fmt: skip
    files = [f for f in files if os.path.exists(f)]  # the host's view of the same files
    script = "; ".join(f"probe open-write {f}" for f in files)
    script += "; probe sys mount s:none s:/sys 0 0x20 0"  # MS_REMOUNT, read-write
    out = probe_out(rt, config([]), script)
    lines = out.splitlines()
    assert lines[: len(files)] == ["open = -1 errno 30"] * len(files), out  # EROFS
    assert lines[-1] == "mount = -1 errno 1", out


def test_device_nodes_outside_linux_devices_are_unusable(rt):
    """Even with CAP_MKNOD, a node for a device the config does not give (the host's disk)
    cannot be opened: the device cgroup refuses it."""
    c = config([])
    for s in ("bounding", "effective", "permitted"):
        c["process"]["capabilities"][s].append("CAP_MKNOD")
    script = "probe mknod /dev/disk 8 0 && probe open-write /dev/disk"
    res = seckit.results(probe_out(rt, c, script))
    assert res.get("mknod") or res.get("open") == 1, res
