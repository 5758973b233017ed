"""`run`/`create` options, each checked from inside the container (or on its cgroup), and bad
values: one line, exit 125, nothing left."""

import json
import os

from enginekit import BUSYBOX, DEBIAN, inspect, ps


def run(sj, *args, image=BUSYBOX):
    return sj.ok("container", "run", "--rm", *args[:-1], image, "sh", "-c", args[-1]).out


def test_env_workdir_user_hostname_labels(sj, tmp_path):
    envfile = tmp_path / "env"
    envfile.write_text("# a comment\nFROM_FILE=f\nBOTH=file\n\n")
    out = run(sj, "--env-file", str(envfile), "-e", "BOTH=flag", "-e", "PASSED",
              "-w", "/tmp/new/dir", "-h", "box", "--domainname", "example.org",
              'echo "$FROM_FILE $BOTH ${PASSED:-unset} $(pwd) $(hostname)"')  # fmt: skip
    assert out == "f flag unset /tmp/new/dir box\n"
    out = sj.ok("container", "run", "--rm", "-e", "PASSED", BUSYBOX, "sh", "-c", "echo $PASSED",
                env={"PASSED": "from-env"}).out  # fmt: skip
    assert out == "from-env\n"
    out = run(sj, "-u", "1000:42", "--group-add", "7", 'echo "$(id -u) $(id -g) $(id -G)"')
    assert out == "1000 42 42 7\n"
    out = run(sj, "-u", "nobody", "--group-add", "root", "id", image=DEBIAN)
    assert out.startswith("uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup),0(root)")
    sj.ok("container", "create", "--name", "lab", "-l", "a=1", "--label", "b", BUSYBOX, "true")
    labels = inspect(sj, "lab")["Config"]["Labels"]
    assert labels == {"a": "1", "b": ""}
    # --entrypoint replaces the image's and drops its Cmd; "" clears it
    assert sj.ok("container", "run", "--rm", "--entrypoint", "echo", BUSYBOX, "x").out == "x\n"
    r = sj("container", "run", "--rm", "--entrypoint", "", BUSYBOX)
    assert r.rc == 125 and "No command specified" in r.err


def _cgroup_file(sj, name, ctrl, fname):
    pid = inspect(sj, name)["State"]["Pid"]
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if ctrl in ctrls.split(","):
                for base in (f"/sys/fs/cgroup/{ctrls}", f"/sys/fs/cgroup/{ctrl}"):
                    if os.path.exists(f"{base}{path}/{fname}"):
                        with open(f"{base}{path}/{fname}") as g:
                            return g.read().strip()
    raise AssertionError(f"no {ctrl} cgroup file {fname}")


def test_resources_on_the_cgroup_and_update(sj):
    sj.ok("container", "run", "-d", "--name", "r", "-m", "64m", "--memory-swap", "96m",
          "-c", "512", "--cpus", "0.5", "--cpuset-cpus", "0", "--pids-limit", "50",
          "--oom-kill-disable", BUSYBOX, "sleep", "1000")  # fmt: skip
    assert _cgroup_file(sj, "r", "memory", "memory.limit_in_bytes") == str(64 << 20)
    assert _cgroup_file(sj, "r", "memory", "memory.memsw.limit_in_bytes") == str(96 << 20)
    assert _cgroup_file(sj, "r", "memory", "memory.oom_control").startswith("oom_kill_disable 1")
    assert _cgroup_file(sj, "r", "cpu", "cpu.shares") == "512"
    assert _cgroup_file(sj, "r", "cpu", "cpu.cfs_quota_us") == "50000"
    assert _cgroup_file(sj, "r", "cpuset", "cpuset.cpus") == "0"
    assert _cgroup_file(sj, "r", "pids", "pids.max") == "50"
    hc = inspect(sj, "r")["HostConfig"]
    assert (hc["Memory"], hc["MemorySwap"], hc["NanoCpus"], hc["PidsLimit"]) == (
        64 << 20,
        96 << 20,
        500000000,
        50,
    )
    # update: the running container's cgroup changes, and the record keeps it
    sj.ok("container", "update", "-m", "80m", "--memory-swap", "100m", "--pids-limit", "60", "r")
    assert _cgroup_file(sj, "r", "memory", "memory.limit_in_bytes") == str(80 << 20)
    assert _cgroup_file(sj, "r", "pids", "pids.max") == "60"
    assert inspect(sj, "r")["HostConfig"]["Memory"] == 80 << 20
    sj.ok("container", "update", "--restart", "always", "r")
    assert inspect(sj, "r")["HostConfig"]["RestartPolicy"] == {
        "Name": "always",
        "MaximumRetryCount": 0,
    }


def test_limits_seen_inside(sj):
    out = run(sj, "--ulimit", "nofile=100:200", "--ulimit", "nproc=50", "--shm-size", "8m",
              'echo "$(ulimit -n) $(ulimit -Hn) $(ulimit -u)"; '
              "df -k /dev/shm | tail -1")  # fmt: skip
    lines = out.splitlines()
    assert lines[0] == "100 200 50"
    assert lines[1].split()[1] == str(8 * 1024)
    r = sj("container", "run", "--rm", "--ulimit", "nofile=20:10", BUSYBOX, "true")
    assert r.rc == 125 and "ulimit soft limit must be less than or equal to hard limit" in r.err


def test_read_only_and_tmpfs(sj):
    out = run(sj, "--read-only", "--tmpfs", "/scratch:size=1m",
              "touch /x 2>&1; touch /scratch/ok && echo scratch ok; "
              "grep ' /scratch ' /proc/mounts")  # fmt: skip
    assert "Read-only file system" in out and "scratch ok" in out
    assert "tmpfs /scratch tmpfs rw,nosuid,nodev,noexec" in out and "size=1024k" in out


def test_capabilities_privileged_and_security_options(sj):
    def caps(*flags):
        return int(run(sj, *flags, "grep CapEff /proc/self/status").split()[1], 16)

    default = caps()
    assert default == 0xA80425FB  # Docker's default set
    assert caps("--cap-drop", "ALL") == 0
    assert caps("--cap-drop", "chown") == default & ~1
    assert caps("--cap-add", "SYS_ADMIN") == default | 1 << 21
    r = sj("container", "run", "--rm", "--cap-add", "NOT_A_CAP", BUSYBOX, "true")
    assert r.rc == 125 and "unknown capability" in r.err
    # seccomp: Docker's default profile (Seccomp: 2), none when unconfined or privileged
    assert "Seccomp:\t2" in run(sj, "grep Seccomp: /proc/self/status")
    assert "Seccomp:\t0" in run(sj, "--security-opt", "seccomp=unconfined",
                                "grep Seccomp: /proc/self/status")  # fmt: skip
    out = run(sj, "--privileged", "grep -E 'Seccomp:|CapEff' /proc/self/status; "
              "ls /dev | wc -l; grep ' /sys ' /proc/mounts")  # fmt: skip
    assert "Seccomp:\t0" in out
    assert int(out.split("CapEff:")[1].split()[0], 16) > default
    assert int(out.splitlines()[2]) > 20  # the host's devices
    assert " /sys sysfs rw" in out
    assert "NoNewPrivs:\t1" in run(sj, "--security-opt", "no-new-privileges",
                                   "grep NoNewPrivs /proc/self/status")  # fmt: skip
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}],
    }
    path = os.path.join(sj.tmp, "profile.json")
    with open(path, "w") as f:
        json.dump(profile, f)
    out = run(sj, "--security-opt", f"seccomp={path}", "mkdir /d 2>&1; echo rc=$?")
    assert "Operation not permitted" in out and "rc=1" in out


def test_devices_and_sysctls(sj):
    out = run(sj, "--device", "/dev/zero:/dev/myzero:r",
              "ls -l /dev/myzero; head -c 3 /dev/myzero | wc -c")  # fmt: skip
    assert out.startswith("crw") and "1,   5" in out and out.endswith("3\n")
    out = run(sj, "--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.msgmax=9999",
              "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax")  # fmt: skip
    assert out == "1\n9999\n"


def test_init_reaps_and_forwards(sj):
    out = run(sj, "--init", "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$")
    assert out.startswith("/dev/init -- sh -c") and out.splitlines()[1] != "1"


def test_cidfile_and_name(sj, tmp_path):
    cidfile = tmp_path / "cid"
    sj.ok("container", "run", "-d", "--cidfile", str(cidfile), "--name", "named", BUSYBOX,
          "sleep", "100")  # fmt: skip
    assert cidfile.read_text() == inspect(sj, "named")["Id"]
    r = sj("container", "run", "--cidfile", str(cidfile), BUSYBOX, "true")
    assert r.rc == 125 and "Container ID file found" in r.err


def test_bad_values_leave_nothing(sj):
    before = sorted(os.listdir(os.path.join(sj.root, "containers"))) if os.path.isdir(
        os.path.join(sj.root, "containers")) else []  # fmt: skip
    for args, words in [
        (["-m", "12q"], 'invalid argument "12q" for "-m, --memory" flag'),
        (["-m", "1k"], "Minimum memory limit allowed is 6MB"),
        (["--cpus", "64"], "Range of CPUs is from 0.01 to"),
        (["--memory-swap", "10m", "-m", "20m"], "Minimum memoryswap limit should be larger"),
        (["--network", "bridge"], "networks are not supported yet"),
        (["-p", "80:80"], "publishing ports (-p): not supported yet"),
        (["-v", "/tmp:/x"], "volumes (-v): not supported yet"),
        (["--stop-signal", "NOPE"], "invalid signal"),
        (["--restart", "on-failure:x"], "maximum retry count must be an integer"),
        (["--security-opt", "apparmor=docker-default"], "no apparmor"),
        (["-w", "relative"], "needs to be an absolute path"),
    ]:
        r = sj("container", "run", "--rm", *args, BUSYBOX, "true")
        assert r.rc == 125, (args, r)
        assert len(r.err.strip().splitlines()) == 1 and words in r.err, (args, r.err)
    r = sj("container", "run", "--rm", f"{BUSYBOX.rsplit('/', 1)[0]}/nope", "true")
    assert r.rc == 125 and "not found" in r.err.splitlines()[-1]
    r = sj("container", "run", "--rm", "--pull", "never", DEBIAN, "true")
    assert r.rc == 125 and "no such image" in r.err
    r = sj("container", "run", "--rm", BUSYBOX, "nosuchcommand")
    assert r.rc == 127 and "executable file not found" in r.err
    r = sj("container", "run", "--rm", BUSYBOX, "/etc/passwd")
    assert r.rc == 126
    # without --rm, a command that cannot run leaves a created container (as Docker)
    r = sj("container", "run", "--name", "norun", BUSYBOX, "nosuchcommand")
    assert r.rc == 127
    c = ps(sj)["norun"]
    assert c["State"] == "created" and "executable file not found" in inspect(sj, "norun")[
        "State"]["Error"]  # fmt: skip
    sj.ok("container", "rm", "norun")
    after = sorted(os.listdir(os.path.join(sj.root, "containers")))
    assert after == before and ps(sj) == {}
