"""linux.seccomp: every action, errno values, argument conditions (every operator), flags,
architectures, NOTIFY with a listener, the filter in exec'd processes, when it is loaded
(before or after the privileges go), and the default profile (Docker's) blocking what it
should. The calls are made in the container by tests/probe.c, as a program there would."""

import errno
import json
import os
import subprocess

import pytest
import seckit
from rtkit import TIMEOUT, config, read, wait_for

from sangja.runtime.seccomp import default_profile

ALLOW = "SCMP_ACT_ALLOW"


def seccomp_config(args, syscalls=(), default=ALLOW, **extra):
    c = config(args)
    c["linux"]["seccomp"] = {"defaultAction": default, "syscalls": list(syscalls), **extra}
    return c


def rule(names, action, **kw):
    return {"names": list(names), "action": action, **kw}


def probed(rt, cfg):
    """A bundle for `cfg` with the probe in its rootfs."""
    b = rt.bundle(cfg)
    seckit.add_probe(b)
    return b


def probe_run(rt, cfg, script):
    """Run `script` (sh) in a container of `cfg` that has the probe; -> Result."""
    cfg["process"]["args"] = ["sh", "-c", script]
    return rt.run(probed(rt, cfg))


# -- actions ---------------------------------------------------------------------------------------

CALL = "probe sys getpriority 0 0"
SIGSYS_EXIT = 128 + 31


@pytest.mark.parametrize(
    "action, extra, want",
    [
        ("SCMP_ACT_ERRNO", {}, "getpriority = -1 errno 1"),  # EPERM by default
        ("SCMP_ACT_ERRNO", {"errnoRet": errno.EXDEV}, f"getpriority = -1 errno {errno.EXDEV}"),
        ("SCMP_ACT_TRACE", {}, f"getpriority = -1 errno {errno.ENOSYS}"),  # no tracer: ENOSYS
        ("SCMP_ACT_LOG", {}, "getpriority = 20"),  # allowed (and logged)
        ("SCMP_ACT_ALLOW", {}, "getpriority = 20"),
        ("SCMP_ACT_KILL", {}, f"status={SIGSYS_EXIT}"),
        ("SCMP_ACT_KILL_THREAD", {}, f"status={SIGSYS_EXIT}"),
        ("SCMP_ACT_KILL_PROCESS", {}, f"status={SIGSYS_EXIT}"),
    ],
)
def test_action(rt, action, extra, want):
    c = seccomp_config([], [rule(["getpriority"], action, **extra)], default=ALLOW)
    if action == ALLOW:  # a rule equal to the default: the filter still loads
        c["linux"]["seccomp"]["syscalls"].append(rule(["mkdirat"], "SCMP_ACT_ERRNO"))
    out = probe_run(rt, c, f"{CALL}; echo status=$?").ok().out
    assert want in out.splitlines(), out


def test_action_trap(rt):
    """SCMP_ACT_TRAP: the call raises SIGSYS, which a handler can catch (KILL cannot)."""
    c = seccomp_config([], [rule(["getpriority"], "SCMP_ACT_TRAP")])
    out = probe_run(rt, c, "probe trap getpriority 0 0").ok().out
    assert "trapped getpriority" in out


def test_default_action_and_errno(rt):
    """defaultAction with defaultErrnoRet: Docker's allow-list without mkdir answers ENOSPC."""
    prof = default_profile()
    prof["defaultErrnoRet"] = errno.ENOSPC
    prof["syscalls"][0]["names"] = [
        n for n in prof["syscalls"][0]["names"] if n not in ("mkdir", "mkdirat")
    ]
    c = config([])
    c["linux"]["seccomp"] = prof
    out = probe_run(rt, c, "probe sys mkdirat -100 s:/tmp/x 0755; probe sys getpid").ok().out
    res = seckit.results(out)
    assert res["mkdirat"] == errno.ENOSPC and res["getpid"] == 0, out


# -- argument conditions ---------------------------------------------------------------------------

VALUES = [0, 0o022, 0o077, 0o100, 0o700, 0o777]


@pytest.mark.parametrize(
    "op, value, value_two, matches",
    [
        ("SCMP_CMP_EQ", 0o077, 0, lambda v: v == 0o077),
        ("SCMP_CMP_NE", 0o077, 0, lambda v: v != 0o077),
        ("SCMP_CMP_LT", 0o100, 0, lambda v: v < 0o100),
        ("SCMP_CMP_LE", 0o100, 0, lambda v: v <= 0o100),
        ("SCMP_CMP_GT", 0o100, 0, lambda v: v > 0o100),
        ("SCMP_CMP_GE", 0o100, 0, lambda v: v >= 0o100),
        # (arg & value) == valueTwo
        ("SCMP_CMP_MASKED_EQ", 0o070, 0o020, lambda v: v & 0o070 == 0o020),
    ],
)
def test_argument_operator(rt, op, value, value_two, matches):
    """umask(v) is refused with EDOM exactly when `arg0 OP value` holds."""
    arg = {"index": 0, "value": value, "op": op}
    if value_two:
        arg["valueTwo"] = value_two
    c = seccomp_config([], [rule(["umask"], "SCMP_ACT_ERRNO", errnoRet=errno.EDOM, args=[arg])])
    script = "; ".join(f"probe sys umask {v}" for v in VALUES)
    lines = [x for x in probe_run(rt, c, script).ok().out.splitlines() if x.startswith("umask")]
    got = [x.endswith(f"errno {errno.EDOM}") for x in lines]
    assert got == [matches(v) for v in VALUES], lines


def test_conditions_on_one_argument_as_runc(rt, env):
    """Two conditions on one argument: libseccomp takes one per argument in a rule, so each
    becomes a rule of its own (either matches), as runc does; two arguments: both must."""
    c = seccomp_config([], [
        rule(["umask"], "SCMP_ACT_ERRNO", errnoRet=errno.EDOM,
             args=[{"index": 0, "value": 0o700, "op": "SCMP_CMP_EQ"},
                   {"index": 0, "value": 0o022, "op": "SCMP_CMP_EQ"}]),
        rule(["getpriority"], "SCMP_ACT_ERRNO", errnoRet=errno.EDOM,
             args=[{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                   {"index": 1, "value": 1, "op": "SCMP_CMP_EQ"}]),
    ])  # fmt: skip
    script = "; ".join(
        [f"probe sys umask {v}" for v in (0o700, 0o022, 0o077)]
        + [f"probe sys getpriority {w} {who}" for w, who in ((0, 1), (0, 0), (1, 1))]
    )
    out = probe_run(rt, c, script).ok().out
    edom = [x.endswith(f"errno {errno.EDOM}") for x in out.splitlines() if " = " in x]
    assert edom == [True, True, False, True, False, False], out
    if not rt.is_runc and os.environ.get("SANGJA_TEST_NO_RUNC") != "1":
        ref = probe_run(env.runtime("runc"), seccomp_config([], c["linux"]["seccomp"]["syscalls"]),
                        script).ok().out  # fmt: skip
        assert ref == out


# -- flags, architectures, bad profiles ------------------------------------------------------------


@pytest.mark.sangja_only("runc 1.1.5: seccomp flags are not yet supported")
@pytest.mark.parametrize("flag", ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                                  "SECCOMP_FILTER_FLAG_TSYNC"])  # fmt: skip
def test_flags(rt, flag):
    c = seccomp_config([], [rule(["mkdirat"], "SCMP_ACT_ERRNO")], flags=[flag])
    out = probe_run(rt, c, "probe sys mkdirat -100 s:/tmp/x 0755; grep Seccomp: /proc/self/status")
    out.ok()
    assert "mkdirat = -1 errno 1" in out.out and "Seccomp:\t2" in out.out


def test_architectures(rt):
    arches = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    if os.uname().machine != "x86_64":
        pytest.skip("the x86 arches")
    c = seccomp_config([], [rule(["mkdirat"], "SCMP_ACT_ERRNO")], architectures=arches)
    assert "mkdirat = -1 errno 1" in probe_run(rt, c, "probe sys mkdirat -100 s:/x 0").ok().out


@pytest.mark.sangja_only("runc's texts differ; the cases are the spec's")
@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda s: s.update(defaultAction="SCMP_ACT_BOGUS"), ["SCMP_ACT_BOGUS", "action"]),
        (lambda s: s["syscalls"].append(rule(["getpid"], "SCMP_ACT_NOPE")), ["SCMP_ACT_NOPE"]),
        (lambda s: s.update(architectures=["SCMP_ARCH_PDP11"]), ["SCMP_ARCH_PDP11"]),
        (lambda s: s.update(flags=["SECCOMP_FILTER_FLAG_BOGUS"]), ["SECCOMP_FILTER_FLAG_BOGUS"]),
        (
            lambda s: s["syscalls"].append(
                rule(
                    ["getpid"],
                    "SCMP_ACT_ERRNO",
                    args=[{"index": 0, "value": 1, "op": "SCMP_CMP_XX"}],
                )
            ),
            ["SCMP_CMP_XX"],
        ),  # fmt: skip
        (lambda s: s["syscalls"].append(rule(["getpid"], ALLOW, errnoRet=1)), ["errnoRet"]),
        (lambda s: s.update(defaultErrnoRet=1), ["defaultErrnoRet"]),  # with ALLOW
        (lambda s: s["syscalls"].append(rule(["getpid"], "SCMP_ACT_NOTIFY")), ["listenerPath"]),
        (lambda s: s.update(defaultAction="SCMP_ACT_NOTIFY"), ["SCMP_ACT_NOTIFY"]),
    ],
)
def test_bad_profile_is_refused(rt, mutate, words):
    c = seccomp_config(["true"], [rule(["mkdirat"], "SCMP_ACT_ERRNO")])
    mutate(c["linux"]["seccomp"])
    b = rt.bundle(c)
    cid = rt.new_id()
    r = rt("run", "--bundle", b.path, cid)
    assert r.rc == 1 and len(r.err.strip().splitlines()) == 1, r
    for w in words:
        assert w in r.err, r
    rt.assert_nothing_left(cid)


@pytest.mark.sangja_only("runc logs unknown syscalls at debug level")
def test_unknown_syscall_is_skipped_with_a_warning(rt):
    c = seccomp_config([], [rule(["mkdirat", "no_such_call_sj"], "SCMP_ACT_ERRNO")])
    r = probe_run(rt, c, "probe sys mkdirat -100 s:/x 0").ok()
    assert "mkdirat = -1 errno 1" in r.out
    assert "no_such_call_sj" in r.err and "warning" in r.err, r


# -- when the filter is loaded ---------------------------------------------------------------------


def test_no_new_privileges_filter_after_capabilities(rt):
    """With noNewPrivileges the filter comes after the capabilities are set: a profile that
    forbids capset does not stop the init."""
    c = seccomp_config(["sh", "-c", "grep -E 'NoNewPrivs|Seccomp:' /proc/self/status"],
                       [rule(["capset"], "SCMP_ACT_ERRNO")])  # fmt: skip
    c["process"]["noNewPrivileges"] = True
    assert "NoNewPrivs:\t1\nSeccomp:\t2" in rt.output(c)


def test_without_no_new_privileges_filter_before_capabilities(rt):
    """Without it the filter must be loaded while the init may (CAP_SYS_ADMIN), before the
    privileges go: the same profile then stops the init's own capset, with a reason."""
    c = seccomp_config(["true"], [rule(["capset"], "SCMP_ACT_ERRNO")])
    c["process"]["noNewPrivileges"] = False
    r = rt.run(c)
    assert r.rc != 0 and ("capset" in r.err or "caps" in r.err), r


def test_without_no_new_privileges_as_a_user(rt):
    """A user without capabilities and no noNewPrivileges still gets the filter."""
    c = seccomp_config([], [rule(["mkdirat"], "SCMP_ACT_ERRNO", errnoRet=errno.EXDEV)])
    c["process"]["noNewPrivileges"] = False
    c["process"]["user"] = {"uid": 1000, "gid": 1000}
    c["process"]["capabilities"] = {}
    out = probe_run(rt, c, "probe sys mkdirat -100 s:/tmp/x 0755; probe status").ok().out
    assert f"mkdirat = -1 errno {errno.EXDEV}" in out
    assert "NoNewPrivs:\t0" in out and "Seccomp:\t2" in out and "CapEff:\t0000000000000000" in out


# -- exec ------------------------------------------------------------------------------------------


def running(rt, cfg):
    b = probed(rt, cfg)
    cid = rt.new_id()
    rt("run", "-d", "--bundle", b.path, cid).ok()
    pid = rt.state(cid)["pid"]
    rt.pids.add(pid)
    return cid, pid


@pytest.mark.parametrize("nnp", [True, False])
def test_exec_gets_the_container_filter(rt, nnp):
    """An exec'd process loads the container's filter too (before its privilege drop when
    it has no noNewPrivileges, after it otherwise)."""
    c = seccomp_config(["sleep", "1000"], [rule(["mkdirat"], "SCMP_ACT_ERRNO", errnoRet=18)])
    c["process"]["noNewPrivileges"] = nnp
    cid, _ = running(rt, c)
    r = rt("exec", cid, "sh", "-c", "probe sys mkdirat -100 s:/tmp/x 0755; probe status").ok()
    assert "mkdirat = -1 errno 18" in r.out and "Seccomp:\t2" in r.out
    assert f"NoNewPrivs:\t{int(nnp)}" in r.out


def child_comms(pid):
    kids = read(f"/proc/{pid}/task/{pid}/children").split()
    return [read(f"/proc/{k}/comm").strip() for k in kids]


@pytest.mark.sangja_only("what sangja's exec maps")
def test_exec_does_not_load_libseccomp(rt):
    """exec loads the program create built (in the state dir): libseccomp, and the
    extension that links it, are never mapped by it."""
    c = seccomp_config(["sleep", "1000"], [rule(["mkdirat"], "SCMP_ACT_ERRNO")])
    cid, _ = running(rt, c)
    assert os.path.getsize(os.path.join(rt.root, cid, "seccomp.bpf")) > 0
    p = rt.popen("exec", cid, "sleep", "1000", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: "sleep" in child_comms(p.pid), "the exec'd sleep runs")
        maps = read(f"/proc/{p.pid}/maps")
        assert "libseccomp" not in maps and "_native/seccomp" not in maps
        assert "_native/launch" in maps  # (the check reads the right process)
    finally:
        for k in read(f"/proc/{p.pid}/task/{p.pid}/children").split():
            os.kill(int(k), 9)  # the exec'd sleep, our child's child
        p.kill()
        p.wait(timeout=TIMEOUT)


# -- NOTIFY ----------------------------------------------------------------------------------------


@pytest.fixture
def agent_path(env):
    return os.path.join(env.workdir, "agent.sock")  # short: under 108 bytes


def test_notify_listener(rt, agent_path):
    """SCMP_ACT_NOTIFY: the listener fd and the container process state reach listenerPath;
    the agent's answers are what the container's calls return, for the init and for an
    exec'd process (each with a state and an fd of its own)."""
    nr_getppid = 110 if os.uname().machine == "x86_64" else 173

    def answer(pid, nr, args):
        return ("value", 4242) if nr == nr_getppid else ("errno", errno.ENOTSUP)

    agent = seckit.NotifyAgent(agent_path, answer)
    try:
        outdir = os.path.join(rt.workdir, "notify-out")
        os.mkdir(outdir)
        script = ("{ probe sys getppid; probe sys mkdirat -100 s:/tmp/n 0755; "
                  "probe sys getpid; } > /out/log; exec sleep 1000")  # fmt: skip
        c = seccomp_config(["sh", "-c", script],
                           [rule(["getppid", "mkdirat"], "SCMP_ACT_NOTIFY")],
                           listenerPath=agent_path, listenerMetadata="MKNOD=/dev/null")  # fmt: skip
        c["mounts"].append({"destination": "/out", "type": "bind", "source": outdir,
                            "options": ["rbind"]})  # fmt: skip
        b = probed(rt, c)
        cid = rt.new_id()
        rt("run", "-d", "--bundle", b.path, cid).ok()
        init = rt.state(cid)["pid"]
        rt.pids.add(init)
        log = os.path.join(outdir, "log")
        wait_for(lambda: "getpid = " in read(log), "the container's calls are answered")
        assert "getppid = 4242" in read(log), read(log)
        assert seckit.results(read(log))["mkdirat"] == errno.ENOTSUP, read(log)
        state, fds = agent.states[0]
        assert len(fds) == 1 and state["fds"] == ["seccompFd"]
        assert state["pid"] == init and state["metadata"] == "MKNOD=/dev/null"
        assert state["ociVersion"] and state["state"]["id"] == cid
        assert state["state"]["status"] == "creating" and state["state"]["bundle"] == b.path
        assert state["state"]["pid"] == init
        if rt.is_runc:  # runc 1.1.5's exec'd init asks getppid itself, and the agent lies
            return
        # an exec'd process: its own filter, listener and state
        r = rt("exec", cid, "probe", "sys", "getppid").ok()
        assert "getppid = 4242" in r.out
        agent.wait(lambda a: len(a.states) == 2, "the exec'd process's listener")
        state, fds = agent.states[1]
        assert len(fds) == 1 and state["pid"] != init and state["state"]["pid"] == init
        assert state["state"]["status"] == "running"
        assert not agent.errors
    finally:
        agent.close()


@pytest.mark.sangja_only("runc's error text")
def test_notify_listener_missing_is_an_error(rt, agent_path):
    """The spec: sending to the listener fails -> an error, and nothing is left."""
    c = seccomp_config(["true"], [rule(["mkdirat"], "SCMP_ACT_NOTIFY")],
                       listenerPath=agent_path)  # fmt: skip
    b = rt.bundle(c)
    cid = rt.new_id()
    r = rt("run", "--bundle", b.path, cid)
    assert r.rc == 1 and agent_path in r.err and "seccomp" in r.err, r
    rt.assert_nothing_left(cid)


# -- the default profile (Docker's) ----------------------------------------------------------------

# name -> the probe's arguments
CALLS = {
    "unshare": "0x10000000",  # CLONE_NEWUSER: needs no capability
    "keyctl": "0 -3 0",  # KEYCTL_GET_KEYRING_ID of the session keyring
    "mount": "s:none s:/tmp s:tmpfs 0 0",
    "clone3": "0 0",  # NULL args: EINVAL where allowed, ENOSYS under the profile
    "socket": "40 1 0",  # AF_VSOCK
    "personality": "0x0040000",  # ADDR_NO_RANDOMIZE
    "personality#2": "0xffffffff",  # the query
    "getpid": "",
}


def call_all():
    return "; ".join(f"probe sys {n.partition('#')[0]} {a}" for n, a in CALLS.items())


def test_default_profile_blocks_the_usual_calls(rt):
    """Docker's profile: unshare, mount, keyctl fail with EPERM, clone3 with ENOSYS, AF_VSOCK
    sockets and personality changes are refused; without it (the control run) they go
    through to the kernel."""
    c = config([])
    caps = c["process"]["capabilities"]["bounding"]
    c["linux"]["seccomp"] = default_profile(caps)
    res = seckit.results(probe_run(rt, c, call_all()).ok().out)
    assert res["unshare"] == res["keyctl"] == res["mount"] == errno.EPERM, res
    assert res["clone3"] == errno.ENOSYS and res["socket"] == errno.EPERM, res
    assert res["personality"] == errno.EPERM, res
    assert res["personality#2"] == 0 and res["getpid"] == 0, res  # the query is allowed
    control = seckit.results(probe_run(rt, config([]), call_all()).ok().out)
    assert control["keyctl"] == 0 and control["unshare"] == 0, control
    assert control["clone3"] == errno.EINVAL, control


def test_default_profile_follows_capabilities(rt):
    """Rendered for a container with CAP_SYS_ADMIN (as Docker does), unshare and mount are
    allowed and clone3 is the kernel's."""
    c = config([])
    for s in ("bounding", "effective", "permitted"):
        c["process"]["capabilities"][s].append("CAP_SYS_ADMIN")
    c["linux"]["seccomp"] = default_profile(c["process"]["capabilities"]["bounding"])
    c["root"]["readonly"] = False
    res = seckit.results(probe_run(rt, c, call_all()).ok().out)
    assert res["mount"] == 0 and res["unshare"] == 0 and res["clone3"] == errno.EINVAL, res
    assert res["keyctl"] == errno.EPERM, res


@pytest.mark.sangja_only("sangja's own flag")
def test_spec_seccomp_default(rt, env):
    d = os.path.join(env.workdir, "specd")
    os.mkdir(d)
    rt("spec", "--seccomp-default", "--bundle", d).ok()
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    bounding = cfg["process"]["capabilities"]["bounding"]
    assert cfg["linux"]["seccomp"] == default_profile(bounding)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sh", "-c", "ps >/dev/null && ls / >/dev/null && echo fine"]
    assert rt.output(cfg) == "fine\n"
    res = seckit.results(probe_run(rt, cfg, "probe sys keyctl 0 -3 0").ok().out)
    assert res["keyctl"] == errno.EPERM


def test_default_profile_render_is_docker_shaped():
    """The renderer itself (no container): the parts that depend on caps and machine."""
    p = default_profile([], machine="x86_64")
    allowed = set(p["syscalls"][0]["names"])
    assert {"read", "arch_prctl", "modify_ldt", "ptrace", "fchmodat2"} <= allowed
    assert not {"mount", "unshare", "keyctl", "clone", "clone3", "reboot", "chroot"} & allowed
    assert p["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    clone = [r for r in p["syscalls"] if r["names"] == ["clone"]]
    assert clone[0]["args"] == [{"index": 0, "value": 0x7E020000, "valueTwo": 0,
                                 "op": "SCMP_CMP_MASKED_EQ"}]  # fmt: skip
    s390 = default_profile([], machine="s390x")
    assert [r for r in s390["syscalls"] if r["names"] == ["clone"]][0]["args"][0]["index"] == 1
    admin = default_profile(["CAP_SYS_ADMIN", "CAP_SYS_CHROOT"], machine="aarch64")
    names = set(admin["syscalls"][0]["names"])
    assert {"mount", "clone", "clone3", "chroot", "set_tls"} <= names and "arch_prctl" not in names
    assert not [r for r in admin["syscalls"] if r["names"] in (["clone"], ["clone3"])]


def test_default_profile_compiles(rt):
    """Every name in it is known to this libseccomp or skipped without a fuss; the BPF is
    built and loaded with all of Docker's architectures."""
    c = config(["true"])
    c["linux"]["seccomp"] = default_profile(c["process"]["capabilities"]["bounding"])
    r = rt.run(c).ok()
    assert "unknown" not in r.err


def test_start_container_hook_under_the_default_profile(rt):
    """The init runs startContainer hooks after loading the filter (noNewPrivileges): under
    Docker's profile, where clone3 answers ENOSYS, they still start (clone instead)."""
    c = config(["sh", "-c", "cat /hook-ran"])
    c["root"]["readonly"] = False
    c["linux"]["seccomp"] = default_profile(c["process"]["capabilities"]["bounding"])
    c["hooks"] = {
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "echo yes > /hook-ran"]}]
    }
    assert rt.output(c) == "yes\n"


# -- allow-lists older than the kernel (Docker 19.03's kind) ---------------------------------------

# From 424 (pidfd_send_signal, Linux 5.1) on, every architecture numbers new calls alike.
NEWER_THAN_5_0 = 424


def old_allow_list(caps=("CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE")):
    """Docker's default profile as it was before Linux 5.1: an allow-list (defaultAction
    SCMP_ACT_ERRNO) naming none of the calls added since (clone3, close_range, openat2,
    faccessat2, ...), as Docker 19.03's and many hand-written profiles are."""
    from sangja._native import seccomp as native

    prof = default_profile(caps)
    old = [r for r in prof["syscalls"]
           if all(0 <= native.resolve_syscall(n) < NEWER_THAN_5_0 for n in r["names"])]  # fmt: skip
    allow = [n for n in prof["syscalls"][0]["names"]
             if 0 <= native.resolve_syscall(n) < NEWER_THAN_5_0]  # fmt: skip
    prof["syscalls"] = [{"names": allow, "action": ALLOW}, *old[1:]]
    assert prof["defaultAction"] == "SCMP_ACT_ERRNO" and "faccessat2" not in allow
    return prof


# newer than the profile: ENOSYS (libc falls back); older and not allowed: the default (EPERM)
NEWER_CALLS = ("probe sys faccessat2 -100 s:/ 0 0; probe sys clone3 0 0; "
               "probe sys close_range 100 100 0; probe sys openat2 -100 s:/ b:24 24; "
               "probe sys acct 0; probe sys getpid")  # fmt: skip
NEWER_RESULTS = {"faccessat2": errno.ENOSYS, "clone3": errno.ENOSYS, "close_range": errno.ENOSYS,
                 "openat2": errno.ENOSYS, "acct": errno.EPERM, "getpid": 0}  # fmt: skip


@pytest.mark.parametrize("nnp", [True, False])
def test_old_allow_list_runs_the_container(rt, nnp):
    """The runtime's own checks (the executable with faccessat2, the cwd) come before the
    filter, and calls newer than the profile answer ENOSYS (runc's rule), so a container
    under an allow-list without faccessat2 starts, as under runc; its own calls get ENOSYS
    for the newer ones (and fall back), the default action for the others."""
    c = config(["sh", "-c", NEWER_CALLS])
    c["linux"]["seccomp"] = old_allow_list()
    c["process"]["noNewPrivileges"] = nnp
    c["process"]["cwd"] = "/tmp"
    b = probed(rt, c)
    cid, _ = rt.created(b)  # create, then start: the init's exec of sh
    rt("start", cid).ok()
    rt.wait_stopped(cid)
    out = rt.run(b).ok().out  # the same with run, its output read
    assert seckit.results(out) == NEWER_RESULTS, out
    # plain /bin/true (what failed: `exec: "/bin/true": operation not permitted`)
    c["process"]["args"] = ["/bin/true"]
    assert rt.run(rt.bundle(c)).rc == 0


@pytest.mark.parametrize("nnp", [True, False])
def test_old_allow_list_exec(rt, nnp):
    """exec under the same profile: its process starts and gets the same answers."""
    c = config(["sleep", "1000"])
    c["linux"]["seccomp"] = old_allow_list()
    c["process"]["noNewPrivileges"] = nnp
    cid, _ = running(rt, c)
    out = rt("exec", "--cwd", "/tmp", cid, "sh", "-c", NEWER_CALLS).ok().out
    assert seckit.results(out) == NEWER_RESULTS, out
    assert rt("exec", cid, "/bin/true").rc == 0


@pytest.mark.parametrize("nnp", [True, False])
def test_profile_blocking_the_runtimes_own_calls(rt, nnp):
    """A profile that forbids what only the runtime needs (getcwd for its cwd check,
    faccessat and faccessat2 for its executable check) does not stop the container."""
    if rt.is_runc and not nnp:
        pytest.skip("runc 1.1 checks the cwd (getcwd) under the filter without noNewPrivileges")
    blocked = ["getcwd", "faccessat", "faccessat2"]
    c = seccomp_config(["sh", "-c", "probe sys getcwd b:256 256; echo ran"],
                       [rule(blocked, "SCMP_ACT_ERRNO")])  # fmt: skip
    c["process"]["noNewPrivileges"] = nnp
    c["process"]["cwd"] = "/tmp"
    out = rt.run(probed(rt, c)).ok().out
    assert out.splitlines() == ["getcwd = -1 errno 1", "ran"], out


@pytest.mark.sangja_only("sangja's stub: a profile without architectures gets it too")
def test_enosys_stub_without_architectures(rt):
    """runc adds the stub for the listed architectures only; sangja for the native one too,
    so that a profile that lists none still answers ENOSYS for newer calls."""
    prof = old_allow_list()
    prof.pop("architectures", None)
    c = config(["sh", "-c", NEWER_CALLS])
    c["linux"]["seccomp"] = prof
    out = rt.run(probed(rt, c)).ok().out
    assert seckit.results(out) == NEWER_RESULTS, out


def test_no_enosys_stub_when_the_default_allows(rt):
    """With an allowing default there is nothing to stub: a newer call just runs."""
    c = seccomp_config([], [rule(["mkdirat"], "SCMP_ACT_ERRNO")])
    out = probe_run(rt, c, "probe sys faccessat2 -100 s:/ 0 0").ok().out
    assert seckit.results(out) == {"faccessat2": 0}, out


# -- the compiled-profile cache --------------------------------------------------------------------


def _cached_run(rt, cfg, script, cache):
    """`script` in a container of `cfg` (with the probe), the cache in `cache`."""
    cfg["process"]["args"] = ["sh", "-c", script]
    return rt.run(probed(rt, cfg), env=dict(os.environ, SANGJA_SECCOMP_CACHE=str(cache)))


@pytest.mark.sangja_only("sangja's cache of compiled profiles")
def test_cached_profile_filters_and_warns_as_the_first(rt, tmp_path):
    """The second container of one profile takes the program the first compiled: it
    filters the same, and the compile's warnings are said again. The cache is not in the
    runtime's root, which holds containers only."""
    c = seccomp_config([], [rule(["mkdirat", "no_such_call_sj"], "SCMP_ACT_ERRNO")])
    for n in range(2):
        r = _cached_run(rt, c, "probe sys mkdirat -100 s:/x 0", tmp_path).ok()
        assert "mkdirat = -1 errno 1" in r.out, (n, r)
        assert "no_such_call_sj" in r.err and "warning" in r.err, (n, r)
        assert len(os.listdir(tmp_path)) == 1
    other = seccomp_config([], [rule(["getpriority"], "SCMP_ACT_ERRNO")])
    assert "mkdirat = -1 errno 1" not in _cached_run(rt, other, "probe sys mkdirat -100 s:/x 0",
                                                     tmp_path).out  # fmt: skip
    assert len(os.listdir(tmp_path)) == 2  # another profile, another entry
    assert os.listdir(rt.root) == []


@pytest.mark.sangja_only("sangja's cache of compiled profiles")
def test_damaged_cache_entry_is_compiled_again(rt, tmp_path):
    c = seccomp_config([], [rule(["mkdirat"], "SCMP_ACT_ERRNO")])
    _cached_run(rt, c, "true", tmp_path).ok()
    (entry,) = os.listdir(tmp_path)
    path = os.path.join(tmp_path, entry)
    with open(path, "r+b") as f:  # a program cut short: no longer an entry
        f.truncate(os.path.getsize(path) - 3)
    out = _cached_run(rt, c, "probe sys mkdirat -100 s:/x 0", tmp_path).ok().out
    assert "mkdirat = -1 errno 1" in out
    with open(path, "rb") as f:
        head, _, bpf = f.read().partition(b"\n")
    assert json.loads(head)["size"] == len(bpf)  # written again, whole
