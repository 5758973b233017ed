"""exec: a process joins a container's namespaces and cgroups, with the process setup of the
init (user, capabilities, rlimits, no_new_privs, env, cwd), the exit codes engines expect, and
a container left untouched when it fails."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from rtkit import (
    TIMEOUT,
    USERNS_MAP,
    alive,
    cgroup_dirs_for,
    config,
    needs_time_namespace,
    read,
    userns_config,
    wait_for,
)

NS_NAMES = ("pid", "net", "ipc", "uts", "mnt", "cgroup", "user", "time")


def sleeper():
    """The init sleeps; the rootfs is writable (the default spec's is read-only)."""
    c = config(["sleep", "1000"])
    c["root"]["readonly"] = False
    return c


def running(rt, cfg=None):
    """A started container (default: sleeper()); -> (id, init pid, bundle)."""
    b = rt.bundle(cfg or sleeper())
    cid, pid = rt.created(b)
    rt("start", cid).ok()
    return cid, pid, b


def ns_links(pid):
    return {n: os.readlink(f"/proc/{pid}/ns/{n}") for n in NS_NAMES}


class Background:
    """`exec --pid-file P ID ARGS` left running in the foreground of a background runtime
    (which then reaps the process promptly: an orphan of an exec -d would be reaped only by
    the host's init, whenever it gets to it, and keep the container's v1 cgroups busy)."""

    def __init__(self, rt, cid, *args, flags=()):
        self.pidfile = os.path.join(rt.workdir, f"exec-{len(rt.pids)}-{len(rt.ids)}.pid")
        self.runtime = rt.spawn("exec", "--pid-file", self.pidfile, *flags, cid, *args)
        self.pid = wait_for(lambda: read(self.pidfile).strip(), "the pid file")
        self.pid = int(self.pid)
        rt.pids.add(self.pid)

    def stop(self):
        os.kill(self.pid, signal.SIGKILL)
        return self.runtime.result()


def test_exec_output_and_exit_code(rt):
    cid, _, _ = running(rt)
    r = rt("exec", cid, "echo", "hello", "world").ok()
    assert r.out == "hello world\n"
    assert rt("exec", cid, "sh", "-c", "exit 4").rc == 4
    assert rt("exec", cid, "sh", "-c", "kill -9 $$").rc == 128 + 9
    assert rt.status(cid) == "running"


def test_exec_joins_every_namespace_and_cgroup(rt):
    """Seen from the host: the exec'd process is in each of the init's namespaces and in
    the init's cgroup in every hierarchy."""
    c = sleeper()
    c["linux"]["namespaces"].append({"type": "cgroup"})
    cid, init, _ = running(rt, c)
    bg = Background(rt, cid, "sleep", "1000")
    pid = bg.pid
    assert ns_links(pid) == ns_links(init)
    assert ns_links(pid) != ns_links("self")
    assert read(f"/proc/{pid}/cgroup") == read(f"/proc/{init}/cgroup")
    # and its cgroup is the container's, not the runtime's
    assert f"/{cid}" in read(f"/proc/{pid}/cgroup")
    assert bg.stop().rc == 128 + 9


def test_exec_sees_the_container(rt):
    """pid namespace (the init is pid 1), hostname, mounts and the rootfs."""
    c = sleeper()
    c["hostname"] = "exec-box"
    c["mounts"].append({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                        "options": ["size=1m"]})  # fmt: skip
    cid, _, b = running(rt, c)
    with open(os.path.join(b.rootfs, "marker"), "w") as f:
        f.write("in-rootfs\n")
    script = (
        "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$; hostname; cat /marker; "
        "grep -c ' /scratch ' /proc/self/mountinfo; "
        "test -e " + rt.workdir + " && echo host-visible || echo host-hidden"
    )
    out = rt("exec", cid, "sh", "-c", script).ok().out.split("\n")
    assert out[0].strip() == "sleep 1000"
    assert int(out[1]) > 1  # a pid in the container's namespace, not the host's
    assert int(out[1]) < 1000
    assert out[2:6] == ["exec-box", "in-rootfs", "1", "host-hidden"]


def test_exec_cgroup_view_inside(rt):
    """Inside a cgroup namespace, /proc/self/cgroup of an exec'd process is the init's."""
    c = sleeper()
    c["linux"]["namespaces"].append({"type": "cgroup"})
    cid, _, _ = running(rt, c)
    out = rt("exec", cid, "sh", "-c", "cat /proc/self/cgroup; echo --; cat /proc/1/cgroup")
    mine, init = out.ok().out.split("--\n")
    assert mine == init
    assert all(line.endswith(":/") for line in mine.split())


def test_exec_user_namespace(rt):
    """A container in its own user namespace: exec joins it and becomes its root (a mapped
    host id), or the -u user."""
    c = userns_config(["sleep", "1000"])
    cid, init, _ = running(rt, c)
    bg = Background(rt, cid, "sleep", "1000")
    assert os.readlink(f"/proc/{bg.pid}/ns/user") == os.readlink(f"/proc/{init}/ns/user")
    host_uid = read(f"/proc/{bg.pid}/status").split("Uid:")[1].split()[0]
    assert int(host_uid) == USERNS_MAP[0]["hostID"]
    bg.stop()
    out = rt("exec", "-u", "5:6", cid, "sh", "-c", "id -u; id -g; cat /proc/self/uid_map")
    lines = out.ok().out.split("\n")
    assert lines[:2] == ["5", "6"]
    assert lines[2].split() == ["0", "100000", "65536"]


@needs_time_namespace
@pytest.mark.sangja_only("runc 1.1 has no time namespace (runc 1.2 added it)")
def test_exec_time_namespace(rt):
    day = 86400
    c = config(["sleep", "1000"])
    c["linux"]["namespaces"].append({"type": "time"})
    c["linux"]["timeOffsets"] = {"boottime": {"secs": 1000 * day, "nanosecs": 0}}
    cid, init, _ = running(rt, c)
    out = rt("exec", cid, "sh", "-c", "readlink /proc/self/ns/time; cut -d. -f1 /proc/uptime")
    link, uptime = out.ok().out.split()
    assert link == os.readlink(f"/proc/{init}/ns/time")
    assert int(uptime) >= 1000 * day


def test_exec_process_setup_from_config(rt):
    """Without --process, the config's process: its env (HOME added), user, capabilities,
    noNewPrivileges and rlimits apply to the exec'd process as to the init."""
    c = config(["sleep", "1000"])
    c["process"]["env"] = ["PATH=/bin", "FROM_CONFIG=1"]
    c["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5]}
    c["process"]["noNewPrivileges"] = True
    c["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}]
    caps = ["CAP_KILL", "CAP_NET_BIND_SERVICE"]
    # ambient (so inheritable too): a non-root user keeps them across execve
    sets = ("bounding", "effective", "permitted", "inheritable", "ambient")
    c["process"]["capabilities"] = {k: caps for k in sets}
    cid, _, _ = running(rt, c)
    script = (
        "env; id; ulimit -n; ulimit -Hn; grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status"
    )
    out = rt("exec", cid, "sh", "-c", script).ok().out
    lines = out.split("\n")
    env = [x for x in lines if "=" in x and not x.startswith("uid=")]
    assert "FROM_CONFIG=1" in env and "PATH=/bin" in env and "HOME=/" in env
    assert "uid=1000 gid=1000 groups=5" in out
    assert "123\n456\n" in out
    status = dict(x.split(":\t") for x in lines if ":\t" in x)
    assert int(status["CapEff"], 16) == (1 << 5) | (1 << 10)
    assert int(status["CapBnd"], 16) == (1 << 5) | (1 << 10)
    assert status["NoNewPrivs"] == "1"


def test_exec_overrides(rt):
    """--env (appended, later wins), --cwd, --user, --additional-gids, --cap, --no-new-privs."""
    cid, _, _ = running(rt)
    r = rt("exec", "-e", "A=1", "-e", "A=2", "-e", "PATH=/bin", "--cwd", "/tmp",
           "-u", "1000:1001", "-g", "7", "-g", "8", cid,
           "sh", "-c", "echo $A $PATH; pwd; id").ok()  # fmt: skip
    assert r.out == "2 /bin\n/tmp\nuid=1000 gid=1001 groups=7,8\n"
    script = "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status"
    r = rt("exec", "--cap", "CAP_SYS_TIME", "--no-new-privs=false", cid, "sh", "-c", script)
    status = dict(x.split(":\t") for x in r.ok().out.split("\n") if x)
    assert int(status["CapEff"], 16) & (1 << 25)  # CAP_SYS_TIME added
    assert status["NoNewPrivs"] == "0"  # the default spec says true; overridden
    status = dict(
        x.split(":\t") for x in rt("exec", cid, "sh", "-c", script).ok().out.split("\n") if x
    )
    assert not int(status["CapEff"], 16) & (1 << 25)
    assert status["NoNewPrivs"] == "1"


def test_exec_process_json(rt):
    """--process FILE: a process.json (as conmon and the shims pass), used as given."""
    cid, _, _ = running(rt)
    proc = {
        "args": ["sh", "-c", "echo $P; pwd; id -u; echo $0"],
        "env": ["PATH=/bin", "P=from-json"],
        "cwd": "/etc",
        "user": {"uid": 33, "gid": 33},
        "terminal": False,
    }
    path = os.path.join(rt.workdir, "process.json")
    with open(path, "w") as f:
        json.dump(proc, f)
    r = rt("exec", "--process", path, cid).ok()
    assert r.out == "from-json\n/etc\n33\nsh\n"


def test_exec_invalid_process_json(rt):
    cid, _, _ = running(rt)
    path = os.path.join(rt.workdir, "bad.json")
    with open(path, "w") as f:
        json.dump({"args": ["true"]}, f)  # no cwd
    r = rt("exec", "--process", path, cid)
    assert r.rc == 255
    assert "cwd" in r.err.lower()
    r = rt("exec", "--process", os.path.join(rt.workdir, "missing.json"), cid)
    assert r.rc == 255
    assert "no such file or directory" in r.err


@pytest.mark.parametrize(
    "args, text",
    [
        (["nonexistent-binary"], "executable file not found in $PATH"),
        (["/nonexistent"], "no such file or directory"),
        (["/etc/passwd"], "permission denied"),
    ],
)
def test_exec_failure_is_255_and_leaves_the_container(rt, args, text):
    cid, init, _ = running(rt)
    before = rt.state(cid)
    r = rt("exec", cid, *args)
    assert r.rc == 255
    assert text in r.err and args[0] in r.err
    assert rt.state(cid) == before
    assert alive(init)
    # and nothing of the failed process is left in the container: its cgroup holds the init
    procs = [f"{d}/cgroup.procs" for d in cgroup_dirs_for(cid) if os.path.isdir(d)]
    assert procs
    for f in procs:
        wait_for(lambda f=f: read(f).split() == [str(init)], f"only the init in {f}")


def test_exec_failure_in_json_log(rt):
    """With --log-format json, the error is the last `error` line (what the shims report)."""
    cid, _, _ = running(rt)
    log = os.path.join(rt.workdir, "log.json")
    r = rt("--log", log, "--log-format", "json", "exec", cid, "nonexistent-binary")
    assert r.rc == 255
    lines = [json.loads(x) for x in read(log).splitlines()]
    errors = [x for x in lines if x["level"] == "error"]
    assert "executable file not found in $PATH" in errors[-1]["msg"]


def test_exec_into_stopped_container(rt):
    b = rt.bundle(config(["true"]))
    cid, _ = rt.created(b)
    rt("start", cid).ok()
    rt.wait_stopped(cid)
    r = rt("exec", cid, "echo", "hi")
    assert r.rc == 255
    assert "cannot exec in a stopped container" in r.err
    r = rt("exec", "no-such-container", "true")
    assert r.rc == 255
    assert "does not exist" in r.err


def test_exec_into_created_container(rt):
    """As runc: a created container (its init waiting for start) can be exec'd into."""
    c = config(["sh", "-c", "cat /tmp/from-exec > /tmp/result"])
    c["root"]["readonly"] = False
    b = rt.bundle(c)
    cid, _ = rt.created(b)
    rt("exec", cid, "sh", "-c", "echo written-by-exec > /tmp/from-exec").ok()
    assert rt.status(cid) == "created"
    rt("start", cid).ok()
    rt.wait_stopped(cid)
    assert read(os.path.join(b.rootfs, "tmp/result")) == "written-by-exec\n"


def _freezer_dir(cid):
    for d in cgroup_dirs_for(cid):
        if os.path.exists(os.path.join(d, "freezer.state")):
            return d
        if os.path.exists(os.path.join(d, "cgroup.freeze")):
            return d
    pytest.skip("no freezer for the container's cgroup")


def _freeze(d, frozen):
    if os.path.exists(os.path.join(d, "freezer.state")):
        with open(os.path.join(d, "freezer.state"), "w") as f:
            f.write("FROZEN" if frozen else "THAWED")
    else:
        with open(os.path.join(d, "cgroup.freeze"), "w") as f:
            f.write("1" if frozen else "0")


def test_exec_paused_container(rt):
    """Refused when paused; --ignore-paused goes ahead (the process runs once thawed)."""
    cid, _, b = running(rt)
    d = _freezer_dir(cid)
    _freeze(d, True)
    try:
        wait_for(lambda: rt.status(cid) == "paused", "paused")
        r = rt("exec", cid, "true")
        assert r.rc == 255
        assert "paused" in r.err and "--ignore-paused" in r.err
        p = rt.spawn("exec", "--ignore-paused", cid, "sh", "-c", "echo ran > /tmp/ran")
    finally:
        _freeze(d, False)
    assert p.result().rc == 0
    assert read(os.path.join(b.rootfs, "tmp/ran")) == "ran\n"


def test_exec_detach_child_of_caller(rt):
    """exec -d returns while the process runs; the process is the caller's child (a shim or
    conmon is a subreaper and collects its exit status)."""
    cid, _, _ = running(rt)
    helper = textwrap.dedent(
        f"""
        import ctypes, os, subprocess, sys
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
        argv = {rt.argv("exec", "-d", "--pid-file", "P", cid, "sh", "-c", "read x; exit 7")!r}
        r, w = os.pipe()
        subprocess.run(argv, stdin=r, check=True, cwd={rt.workdir!r})
        pid = int(open(os.path.join({rt.workdir!r}, "P")).read())
        print("runtime exited; process alive:", os.waitpid(pid, os.WNOHANG) == (0, 0))
        os.write(w, b"go\\n")
        _, status = os.waitpid(pid, 0)
        print("status", os.waitstatus_to_exitcode(status))
        """
    )
    out = subprocess.run([sys.executable, "-c", helper], capture_output=True, text=True,
                         timeout=TIMEOUT)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout == "runtime exited; process alive: True\nstatus 7\n"


def test_exec_forwards_signals(rt):
    cid, _, b = running(rt)
    script = "trap 'exit 9' TERM; touch /tmp/ready; while :; do sleep 0.05; done"
    p = rt.spawn("exec", cid, "sh", "-c", script)
    wait_for(lambda: os.path.exists(os.path.join(b.rootfs, "tmp/ready")), "exec'd shell ready")
    os.kill(p.proc.pid, signal.SIGTERM)
    assert p.result().rc == 9


def test_exec_preserve_fds(rt):
    cid, _, _ = running(rt)
    r, w = os.pipe()
    try:
        argv = rt.argv("exec", "--preserve-fds", "1", cid, "sh", "-c", "echo via-fd3 >&3")
        # fd 3 of the runtime is the pipe (close_fds=False: subprocess would close it)
        p = subprocess.run(argv, close_fds=False, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=TIMEOUT, preexec_fn=lambda: os.dup2(w, 3))  # fmt: skip
        assert p.returncode == 0, p.stderr
        os.close(w)
        w = -1
        assert os.read(r, 100) == b"via-fd3\n"
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_exec_closes_other_fds(rt):
    cid, _, _ = running(rt)
    r = rt("exec", cid, "ls", "/proc/self/fd").ok()
    assert sorted(r.out.split()) == ["0", "1", "2", "3"]  # 3: ls's own directory


def test_exec_cgroup_subpath(rt):
    """--cgroup CONTROLLER:PATH: into an existing sub-cgroup of the container's, for that
    controller only; a missing one is an error."""
    cid, _, _ = running(rt)
    pids_dirs = [d for d in cgroup_dirs_for(cid) if os.path.exists(f"{d}/pids.max")]
    if not pids_dirs or os.path.exists(f"{pids_dirs[0]}/cgroup.controllers"):
        pytest.skip("needs a v1 pids hierarchy")
    sub = os.path.join(pids_dirs[0], "sub")
    r = rt("exec", "--cgroup", "pids:sub", cid, "true")
    assert r.rc == 255
    os.mkdir(sub)
    try:
        bg = Background(rt, cid, "sleep", "1000", flags=("--cgroup", "pids:sub"))
        lines = read(f"/proc/{bg.pid}/cgroup").split()
        assert any(x.split(":")[1] == "pids" and x.endswith(f"/{cid}/sub") for x in lines)
        assert any(x.split(":")[1] == "memory" and x.endswith(f"/{cid}") for x in lines)
        bg.stop()
        wait_for(lambda: not read(f"{sub}/cgroup.procs").strip(), "the sub-cgroup is empty")
    finally:
        os.rmdir(sub)


@pytest.mark.parametrize("verb", ["run", "exec"])
def test_execve_failure_after_the_checks(rt, verb):
    """A program that passes the checks (a regular, executable file) but that the kernel
    will not run (neither `#!` nor ELF): the failed execve is reported with Go's text, by
    `exec` (exit 255) as by `run` (on its stderr)."""
    c = sleeper()
    if verb == "run":
        c["process"]["args"] = ["/bin/notelf"]
    b = rt.bundle(c)
    with open(os.path.join(b.rootfs, "bin/notelf"), "w") as f:
        f.write("just text\n")
    os.chmod(os.path.join(b.rootfs, "bin/notelf"), 0o755)
    if verb == "run":
        r = rt.run(b)
        assert r.rc != 0, r
    else:
        cid, _ = rt.created(b)
        rt("start", cid).ok()
        r = rt("exec", cid, "/bin/notelf")
        assert r.rc == (1 if rt.is_runc else 255), r  # runc 1.1.5: 1 once the init is gone
    assert "/bin/notelf" in r.err and "exec format error" in r.err, r
