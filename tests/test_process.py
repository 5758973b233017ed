"""The process: args, env, cwd, user (uid/gid/umask/additionalGids), rlimits, capabilities,
noNewPrivileges, oomScoreAdj, linux.sysctl, personality."""

import os
import platform

import pytest
from rtkit import config, same_as_runc

CAPS = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
]
CAP_NUM = {f"CAP_{n}": i for i, n in enumerate(CAPS)}


def mask(names):
    m = 0
    for n in names:
        m |= 1 << CAP_NUM[n]
    return m


def status_of(text):
    """/proc/PID/status text -> {field: value}."""
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())}


def caps_of(st):
    return {k: int(st[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}


STATUS = ["cat", "/proc/self/status"]


def test_args_exact(rt):
    args = ["sh", "-c", 'for a in "$@"; do echo "[$a]"; done', "x", "a b", "", "*", "$HOME", "'q'"]
    assert rt.output(config(args)) == "[a b]\n[]\n[*]\n[$HOME]\n['q']\n"


def test_args_path_lookup(rt):
    """args[0] without a slash is looked up in the process's PATH (not the runtime's)."""
    c = config(["mytool"])
    c["process"]["env"] = ["PATH=/opt/tools:/bin"]
    b = rt.bundle(c)
    os.makedirs(os.path.join(b.rootfs, "opt/tools"))
    with open(os.path.join(b.rootfs, "opt/tools/mytool"), "w") as f:
        f.write("#!/bin/sh\necho tool ran\n")
    os.chmod(os.path.join(b.rootfs, "opt/tools/mytool"), 0o755)
    assert rt.output(b) == "tool ran\n"


def test_env_exact(rt):
    c = config(["env"])
    c["process"]["env"] = ["PATH=/bin", "A=1", "B=two words", "EMPTY=", "HOME=/home/x"]
    out = rt.output(c, env={**os.environ, "SJT_RUNTIME_ENV": "leak"})
    assert sorted(out.splitlines()) == sorted(c["process"]["env"])


def test_env_home_default(rt):
    """No HOME in env: HOME comes from the user's /etc/passwd entry (runc does this)."""
    c = config(["sh", "-c", "echo $HOME"])
    c["process"]["env"] = ["PATH=/bin"]
    assert rt.output(c) == "/root\n"


@pytest.mark.parametrize("cwd", ["/", "/tmp", "/etc"])
def test_cwd(rt, cwd):
    c = config(["sh", "-c", "pwd; readlink /proc/self/cwd"])
    c["process"]["cwd"] = cwd
    assert rt.output(c) == f"{cwd}\n{cwd}\n"


def test_cwd_missing_is_created(rt):
    c = config(["pwd"])
    c["process"]["cwd"] = "/does/not/exist"
    c["root"]["readonly"] = False
    assert rt.output(c) == "/does/not/exist\n"


def test_user_ids(rt):
    c = config(STATUS)
    c["process"]["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [10, 20, 1001]}
    st = status_of(rt.output(c))
    assert st["Uid"].split() == ["1000"] * 4
    assert st["Gid"].split() == ["1001"] * 4
    assert sorted(map(int, st["Groups"].split())) == [10, 20, 1001]


def test_user_root_has_no_extra_groups(rt):
    st = status_of(rt.output(config(STATUS)))
    assert st["Uid"].split() == ["0"] * 4
    assert st["Groups"].split() in ([], ["0"])


def test_id_command(rt, env):
    c = config(["id"])
    c["process"]["user"] = {"uid": 65534, "gid": 65534, "additionalGids": [5]}
    out = same_as_runc(rt, env, c)
    assert (
        out == "uid=65534(nobody) gid=65534(nogroup) groups=5(tty),65534(nogroup)\n"
        or out.startswith("uid=65534(nobody) gid=65534(nogroup)")
    )


@pytest.mark.parametrize("umask,want", [(0o27, "0027"), (0o77, "0077"), (0, "0000")])
def test_umask(rt, umask, want):
    c = config(["sh", "-c", "umask; grep Umask /proc/self/status"])
    c["process"]["user"]["umask"] = umask
    out = rt.output(c).split()
    assert out[0] == want
    assert out[-1] == want


def test_umask_default(rt):
    assert rt.output(config(["sh", "-c", "umask"])) == "0022\n"


def test_rlimits(rt):
    c = config(["cat", "/proc/self/limits"])
    c["process"]["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456},
        {"type": "RLIMIT_NPROC", "soft": 77, "hard": 88},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 4096},
        {"type": "RLIMIT_STACK", "soft": 1 << 22, "hard": 1 << 23},
    ]
    lines = {line[:26].strip(): line[26:].split() for line in rt.output(c).splitlines()[1:]}
    assert lines["Max open files"][:2] == ["123", "456"]
    assert lines["Max processes"][:2] == ["77", "88"]
    assert lines["Max core file size"][:2] == ["0", "4096"]
    assert lines["Max stack size"][:2] == [str(1 << 22), str(1 << 23)]


def test_rlimit_ulimit(rt):
    c = config(["sh", "-c", "ulimit -n; ulimit -Hn"])
    c["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 64, "hard": 128}]
    assert rt.output(c) == "64\n128\n"


DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def test_default_capabilities(rt, env):
    out = same_as_runc(
        rt,
        env,
        config(STATUS),
        lambda s: {k: v for k, v in status_of(s).items() if k.startswith("Cap")},
    )
    caps = caps_of(status_of(out))
    m = mask(DEFAULT_CAPS)
    assert caps == {"CapInh": 0, "CapPrm": m, "CapEff": m, "CapBnd": m, "CapAmb": 0}


SETS = {
    "bounding": [
        "CAP_SYS_ADMIN",
        "CAP_NET_ADMIN",
        "CAP_KILL",
        "CAP_CHOWN",
        "CAP_SETUID",
        "CAP_SETGID",
        "CAP_NET_BIND_SERVICE",
    ],
    "effective": ["CAP_KILL", "CAP_CHOWN"],
    "permitted": ["CAP_KILL", "CAP_CHOWN", "CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE"],
    "inheritable": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
    "ambient": ["CAP_NET_BIND_SERVICE"],
}


@pytest.mark.parametrize("uid", [0, 1000])
def test_capability_sets_before_exec(rt, uid):
    """The created init holds exactly the five sets of the spec (applied before the fifo)."""
    c = config(["true"])
    c["process"]["capabilities"] = SETS
    c["process"]["user"] = {"uid": uid, "gid": uid}
    _, pid = rt.created(c)
    with open(f"/proc/{pid}/status") as f:
        caps = caps_of(status_of(f.read()))
    assert caps == {
        "CapBnd": mask(SETS["bounding"]),
        "CapEff": mask(SETS["effective"]),
        "CapPrm": mask(SETS["permitted"]),
        "CapInh": mask(SETS["inheritable"]),
        "CapAmb": mask(SETS["ambient"]),
    }


def test_capability_sets_after_exec_non_root(rt):
    """A non-root process keeps its ambient set across execve: permitted = effective =
    ambient; inheritable and bounding as given."""
    c = config(STATUS)
    c["process"]["capabilities"] = SETS
    c["process"]["user"] = {"uid": 1000, "gid": 1000}
    caps = caps_of(status_of(rt.output(c)))
    amb = mask(SETS["ambient"])
    assert caps == {
        "CapBnd": mask(SETS["bounding"]),
        "CapInh": mask(SETS["inheritable"]),
        "CapPrm": amb,
        "CapEff": amb,
        "CapAmb": amb,
    }


def test_capability_sets_after_exec_root(rt, env):
    c = config(STATUS)
    c["process"]["capabilities"] = SETS
    c["process"]["noNewPrivileges"] = True
    out = same_as_runc(
        rt, env, c, lambda s: {k: v for k, v in status_of(s).items() if k.startswith("Cap")}
    )
    caps = caps_of(status_of(out))
    assert caps["CapBnd"] == mask(SETS["bounding"])
    assert caps["CapInh"] == mask(SETS["inheritable"])
    # root's execve under no_new_privs: what it had permitted, all of it effective
    assert caps["CapPrm"] == mask(SETS["permitted"])
    assert caps["CapEff"] == caps["CapPrm"]
    assert caps["CapAmb"] == mask(SETS["ambient"])


def test_capabilities_take_effect(rt):
    """Root without CAP_CHOWN cannot chown."""
    script = "touch /dev/shm/f && chown 5 /dev/shm/f; echo $?"
    c = config(["sh", "-c", script])
    c["process"]["capabilities"] = {
        k: ["CAP_CHOWN"] for k in ("bounding", "effective", "permitted")
    }
    assert rt.output(c).strip() == "0"
    c = config(["sh", "-c", script])
    c["process"]["capabilities"] = {k: ["CAP_KILL"] for k in ("bounding", "effective", "permitted")}
    assert rt.output(c).strip() != "0"


def test_no_capabilities(rt):
    c = config(STATUS)
    c["process"]["capabilities"] = {}
    caps = caps_of(status_of(rt.output(c)))
    assert caps == {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": 0, "CapAmb": 0}


@pytest.mark.parametrize("nnp", [True, False])
def test_no_new_privileges(rt, nnp):
    c = config(STATUS)
    c["process"]["noNewPrivileges"] = nnp
    assert status_of(rt.output(c))["NoNewPrivs"] == ("1" if nnp else "0")


def test_oom_score_adj(rt):
    c = config(["cat", "/proc/self/oom_score_adj"])
    c["process"]["oomScoreAdj"] = 500
    assert rt.output(c) == "500\n"
    # the created init already has it
    c = config(["true"])
    c["process"]["oomScoreAdj"] = 321
    _, pid = rt.created(c)
    with open(f"/proc/{pid}/oom_score_adj") as f:
        assert f.read() == "321\n"


def test_sysctl(rt):
    c = config(
        [
            "sh",
            "-c",
            "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni "
            "/proc/sys/net/ipv4/ip_default_ttl",
        ]
    )
    c["linux"]["sysctl"] = {
        "net.ipv4.ip_forward": "1",
        "kernel.shmmni": "1234",
        "net/ipv4/ip_default_ttl": "33",
    }
    host = [
        open(p).read()
        for p in (
            "/proc/sys/net/ipv4/ip_forward",
            "/proc/sys/kernel/shmmni",
            "/proc/sys/net/ipv4/ip_default_ttl",
        )
    ]
    assert rt.output(c) == "1\n1234\n33\n"
    after = [
        open(p).read()
        for p in (
            "/proc/sys/net/ipv4/ip_forward",
            "/proc/sys/kernel/shmmni",
            "/proc/sys/net/ipv4/ip_default_ttl",
        )
    ]
    assert after == host


@pytest.mark.sangja_only("runc 1.1 ignores linux.personality (runc 1.2 added it)")
@pytest.mark.skipif(platform.machine() != "x86_64", reason="LINUX32 on x86_64 reads i686")
def test_personality(rt):
    c = config(["uname", "-m"])
    c["linux"]["personality"] = {"domain": "LINUX32"}
    assert rt.output(c) == "i686\n"
    c = config(["uname", "-m"])
    c["linux"]["personality"] = {"domain": "LINUX"}
    assert rt.output(c) == "x86_64\n"


def test_env_home_from_a_passwd_without_a_final_newline(rt):
    """The last entry of /etc/passwd counts even when the file does not end in a newline."""
    c = config(["sh", "-c", "echo $HOME"])
    c["process"]["env"] = ["PATH=/bin"]
    c["process"]["user"] = {"uid": 1000, "gid": 1000}
    b = rt.bundle(c)
    with open(os.path.join(b.rootfs, "etc/passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh")
    assert rt.output(b) == "/home/user\n"


@pytest.mark.parametrize("n", range(3, 12))
def test_cwd_through_the_runtimes_fds_is_refused(rt, n):
    """A cwd of /proc/self/fd/N would be resolved through one of the init's own fds (the
    rootfs, the exec fifo, ...): refused (not a directory), as runc and crun refuse it; the
    process never runs."""
    c = config(["sh", "-c", "echo ran in $(pwd)"])
    c["process"]["cwd"] = f"/proc/self/fd/{n}"
    cid, r = rt.create(c)
    if r.rc == 0:  # created: then start must not run it
        r = rt("start", cid)
        rt.wait_stopped(cid)
    assert r.rc != 0 and "ran in" not in r.out, r
    # an fd the init holds is no directory of the container's; one it does not hold is none
    whys = ("not a directory", "no such file or directory", "too many levels of symbolic links")
    assert any(w in r.err for w in whys), r
