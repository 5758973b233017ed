"""File descriptors: only 0, 1, 2 and the --preserve-fds ones reach the process; stdio is the
runtime's own; the process's cwd lies inside the container."""

import os
import subprocess
import tempfile

import pytest
from rtkit import TIMEOUT, Result, config, read

# The process's open fds: `ls` execs with what the container's process had, and opens one
# more (its directory) at the lowest free number.
LIST_FDS = ["ls", "/proc/self/fd"]


def leaky_fds(n=3):
    """Open fds without O_CLOEXEC, as a careless engine would hand them to the runtime."""
    fds = []
    for _ in range(n):
        r, w = os.pipe()
        os.set_inheritable(r, True)
        os.set_inheritable(w, True)
        fds += [r, w]
    fds.append(
        os.open("/etc/hostname" if os.path.exists("/etc/hostname") else "/etc/passwd", os.O_RDONLY)
    )
    os.set_inheritable(fds[-1], True)
    return fds


def run_with_fds(rt, b, cid, flags=(), fd_map=None, extra=()):
    """`run` with `fd_map` ({target fd: our fd}) dup2'ed into place and `extra` fds inherited
    at their own numbers."""
    fd_map = fd_map or {}

    def place():
        for target, fd in fd_map.items():
            os.dup2(fd, target)

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        argv = rt.argv("run", "--bundle", b.path, *flags, cid)
        p = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            pass_fds=[*fd_map, *extra],
            preexec_fn=place if fd_map else None,
            timeout=TIMEOUT,
        )
        out.seek(0)
        err.seek(0)
        return Result(argv, p.returncode, out.read().decode(), err.read().decode())


def test_only_stdio_reaches_the_process(rt):
    fds = leaky_fds()
    try:
        b = rt.bundle(config(LIST_FDS))
        r = run_with_fds(rt, b, rt.new_id(), extra=fds).ok()
    finally:
        for fd in fds:
            os.close(fd)
    assert sorted(map(int, r.out.split())) == [0, 1, 2, 3]  # 3: ls's own directory


def test_caller_fds_not_in_created_init(rt):
    """Already in the created init, none of the caller's leaked fds is open."""
    fds = leaky_fds()
    ids = {os.readlink(f"/proc/self/fd/{fd}") for fd in fds}
    b = rt.bundle(config(["true"]))
    cid = rt.new_id()
    try:
        with tempfile.TemporaryFile() as out:
            argv = rt.argv("create", "--bundle", b.path, cid)
            p = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                pass_fds=fds,
                timeout=TIMEOUT,
            )
            assert p.returncode == 0
    finally:
        for fd in fds:
            os.close(fd)
    pid = rt.state(cid)["pid"]
    rt.pids.add(pid)
    targets = set()
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            targets.add(os.readlink(f"/proc/{pid}/fd/{name}"))
        except OSError:
            pass
    assert not targets & ids, targets & ids


def test_preserve_fds(rt):
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    leak_r, leak_w = os.pipe()
    os.set_inheritable(leak_r, True)
    c = config(["sh", "-c", "echo to-3 >&3; echo to-4 >&4; exec ls /proc/self/fd"])
    b = rt.bundle(c)
    try:
        r = run_with_fds(
            rt, b, rt.new_id(), ["--preserve-fds", "2"], fd_map={3: w1, 4: w2, 5: leak_r}
        )
    finally:
        os.close(w1)
        os.close(w2)
        os.close(leak_r)
        os.close(leak_w)
    try:
        r.ok()
        assert os.read(r1, 100) == b"to-3\n"
        assert os.read(r2, 100) == b"to-4\n"
        # 5 is ls's own directory: the caller's fd 5 was not preserved
        assert sorted(map(int, r.out.split())) == [0, 1, 2, 3, 4, 5]
    finally:
        os.close(r1)
        os.close(r2)


def test_preserve_fds_equals_form(rt):
    rd, wr = os.pipe()
    b = rt.bundle(config(["sh", "-c", "echo via-3 >&3"]))
    try:
        r = run_with_fds(rt, b, rt.new_id(), ["--preserve-fds=1"], fd_map={3: wr})
    finally:
        os.close(wr)
    r.ok()
    assert os.read(rd, 100) == b"via-3\n"
    os.close(rd)


def test_preserve_fds_through_create_start(rt):
    rd, wr = os.pipe()
    b = rt.bundle(config(["sh", "-c", "echo created-3 >&3"]))
    cid = rt.new_id()
    with tempfile.TemporaryFile() as out:
        argv = rt.argv("create", "--bundle", b.path, "--preserve-fds", "1", cid)
        p = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            pass_fds=[3],
            preexec_fn=lambda: os.dup2(wr, 3),
            timeout=TIMEOUT,
        )
        out.seek(0)
        assert p.returncode == 0, out.read()
    os.close(wr)
    rt.pids.add(rt.state(cid)["pid"])
    rt("start", cid).ok()
    assert os.read(rd, 100) == b"created-3\n"
    os.close(rd)


def test_run_stdio(rt):
    with tempfile.TemporaryFile() as inp:
        inp.write(b"from stdin\n")
        inp.seek(0)
        b = rt.bundle(config(["sh", "-c", "cat; echo to-err >&2"]))
        cid = rt.new_id()
        r = rt("run", "--bundle", b.path, cid, stdin=inp).ok()
    assert r.out == "from stdin\n"
    assert r.err.endswith("to-err\n")


def test_created_init_has_the_runtimes_stdio(rt):
    """create: the init's 0, 1, 2 are the very files the runtime was given (engines pass
    their log pipes this way)."""
    b = rt.bundle(config(["true"]))
    cid = rt.new_id()
    outfile = os.path.join(rt.workdir, "create.out")
    with open("/etc/passwd") as inp, open(outfile, "w") as out:
        p = subprocess.run(
            rt.argv("create", "--bundle", b.path, cid),
            stdin=inp,
            stdout=out,
            stderr=out,
            timeout=TIMEOUT,
        )
    assert p.returncode == 0, read(outfile)
    pid = rt.state(cid)["pid"]
    rt.pids.add(pid)
    assert os.path.samestat(os.stat(f"/proc/{pid}/fd/0"), os.stat("/etc/passwd"))
    for fd in (1, 2):
        assert os.path.samestat(os.stat(f"/proc/{pid}/fd/{fd}"), os.stat(outfile))


def test_detached_output_goes_to_the_runtimes_stdout(rt):
    outfile = os.path.join(rt.workdir, "detached.out")
    b = rt.bundle(config(["sh", "-c", "echo detached-out"]))
    cid = rt.new_id()
    with open(outfile, "w") as f:
        p = subprocess.run(
            rt.argv("run", "--detach", "--bundle", b.path, cid),
            stdin=subprocess.DEVNULL,
            stdout=f,
            stderr=f,
            timeout=TIMEOUT,
        )
    assert p.returncode == 0
    rt.wait_stopped(cid)
    assert read(outfile) == "detached-out\n"


def test_cwd_inside_container(rt):
    """The runtime's own cwd (a host dir) never becomes the process's: its cwd resolves
    inside the container, from the host's view too."""
    c = config(["sh", "-c", "readlink /proc/self/cwd; ls /proc/self/cwd/ | head -3"])
    c["process"]["cwd"] = "/etc"
    b = rt.bundle(c)
    r = rt("run", "--bundle", b.path, rt.new_id(), cwd=rt.workdir).ok()
    rt.ids[r.argv[-1]] = None
    lines = r.out.splitlines()
    assert lines[0] == "/etc"
    assert set(lines[1:]) <= set(os.listdir(os.path.join(b.rootfs, "etc")))


def test_created_init_cwd_and_root_inside(rt):
    """From the host, the created init's cwd and root are in the container's rootfs."""
    c = config(["true"])
    c["process"]["cwd"] = "/tmp"
    b = rt.bundle(c)
    cid, r = rt.create(b, cwd=rt.workdir)
    r.ok()
    pid = rt.state(cid)["pid"]
    rt.pids.add(pid)
    # /proc/PID/cwd, followed from the host, is a directory of the rootfs
    st_cwd = os.stat(f"/proc/{pid}/cwd")
    candidates = {os.path.join(b.rootfs, "tmp"), b.rootfs}
    assert any(os.path.samestat(st_cwd, os.stat(p)) for p in candidates), os.readlink(
        f"/proc/{pid}/cwd"
    )
    assert not os.path.samestat(st_cwd, os.stat(rt.workdir))
    st_root = os.stat(f"/proc/{pid}/root")
    assert os.path.samestat(st_root, os.stat(b.rootfs))


def test_runtime_fds_do_not_leak(rt):
    """The runtime's own fds (its log, sync channels, pid file, the exec fifo) never reach
    the process."""
    b = rt.bundle(config(LIST_FDS))
    log = os.path.join(rt.workdir, "rt.log")
    pidfile = os.path.join(rt.workdir, "rt.pid")
    cid = rt.new_id()
    r = rt("--log", log, "--log-format", "json", "--debug", "run", "--bundle", b.path,
           "--pid-file", pidfile, cid).ok()  # fmt: skip
    assert sorted(map(int, r.out.split())) == [0, 1, 2, 3]


def test_runtime_fds_do_not_leak_create_start(rt):
    outfile = os.path.join(rt.workdir, "fds.out")
    c = config(["sh", "-c", f"exec > /out/{os.path.basename(outfile)}; exec ls /proc/self/fd"])
    c["mounts"].append(
        {"destination": "/out", "type": "bind", "source": rt.workdir, "options": ["bind"]}
    )
    b = rt.bundle(c)
    log = os.path.join(rt.workdir, "rt2.log")
    cid, r = rt.create(b, "--pid-file", os.path.join(rt.workdir, "p"))
    r.ok()
    rt.pids.add(rt.state(cid)["pid"])
    rt("--log", log, "start", cid).ok()
    rt.wait_stopped(cid)
    assert sorted(map(int, read(outfile).split())) == [0, 1, 2, 3]


_LIBRARY_CREATE = """
import json, os, sys
from sangja.runtime.container import Runtime

root, bundle, cid = sys.argv[1:4]
r, w = os.pipe2(os.O_CLOEXEC)
null = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
ours = [os.fstat(i) for i in (0, 1, 2)]
rt = Runtime(root=root)
pid, pidfd = rt.create(cid, bundle, stdio=(null, w, w))
same = all(os.path.samestat(a, os.fstat(i)) for i, a in enumerate(ours))
os.close(w)
rt.start(cid)
out = b""
while chunk := os.read(r, 65536):
    out += chunk
os.waitpid(pid, 0)
rt.delete(cid, force=True)
print(json.dumps({"pid": pid, "ours_unchanged": same, "out": out.decode()}))
"""


@pytest.mark.sangja_only("the runtime library's create(stdio=), which the build engine uses")
@pytest.mark.parametrize("join", [False, True], ids=["clone", "join-netns"])
def test_library_create_gives_the_init_its_own_stdio(rt, join):
    """create(stdio=(in, out, err)): the init's 0-2 are those fds, set in the child only;
    the caller's own 0-2 never change (a threaded engine's other children would see a swap).
    Also when the init comes from an intermediate that joins a namespace first (a build
    step on a network: the namespace's path), which must hand the fds on."""
    import json
    import sys

    c = config(["sh", "-c", "echo out; echo err >&2; readlink /proc/self/fd/0; ls /proc/self/fd"])
    if join:  # this test's own network namespace, by path
        for ns in c["linux"]["namespaces"]:
            if ns["type"] == "network":
                ns["path"] = f"/proc/{os.getpid()}/ns/net"
    b = rt.bundle(c)
    cid = rt.new_id()
    python = os.path.join(os.path.dirname(os.path.realpath(rt.binary)), "python3")
    python = python if os.path.exists(python) else sys.executable
    p = subprocess.run([python, "-c", _LIBRARY_CREATE, rt.root, b.path, cid],
                       capture_output=True, text=True, timeout=TIMEOUT)  # fmt: skip
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    rt.pids.add(res["pid"])
    assert res["ours_unchanged"]
    lines = res["out"].split()
    assert lines[:3] == ["out", "err", "/dev/null"] or sorted(lines[:3]) == [
        "/dev/null", "err", "out"]  # fmt: skip
    assert sorted(map(int, lines[3:])) == [0, 1, 2, 3]  # no other fd of the caller's
