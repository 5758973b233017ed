"""Containers that outlive the CLI: create/start/stop/restart/kill/rm/pause/wait/rename, the
monitor recording an exit no CLI waits for, restart policies with back-off, the boot unit's
`start --all-restartable`."""

import os
import time

from enginekit import BUSYBOX, inspect, ps, state, wait_for


def test_detached_container_outlives_the_cli_and_its_exit_is_recorded(sj):
    cid = sj.ok("container", "run", "-d", "--name", "bg", BUSYBOX, "sh", "-c",
                "echo started; sleep 0.5; exit 3").out.strip()  # fmt: skip
    assert len(cid) == 64 and all(c in "0123456789abcdef" for c in cid)
    assert ps(sj)["bg"]["State"] in ("running", "exited")
    # no CLI runs while it ends: its monitor records the exit (and its exit command
    # tears the run down), so the record says exited with the right code
    wait_for(lambda: not _mounted(sj, cid), "the monitor's clean-up")
    st = state(sj, "bg")
    assert (st["Status"], st["ExitCode"], st["Running"]) == ("exited", 3, False)
    assert st["FinishedAt"] > st["StartedAt"]
    assert sj.ok("container", "logs", "bg").out == "started\n"
    # the runtime's state went with the run
    assert os.listdir(sj.run_root) == []


def _mounted(sj, cid):
    with open("/proc/self/mountinfo") as f:
        return any(cid in line.split()[4] for line in f)


def test_create_start_stop_restart_rm(sj):
    cid = sj.ok("container", "create", "--name", "c1", BUSYBOX, "sleep", "1000").out.strip()
    assert ps(sj)["c1"]["State"] == "created" and ps(sj)["c1"]["Status"] == "Created"
    assert sj.ok("container", "ps").out.count("\n") == 1  # only the header: not running
    assert sj.ok("container", "start", "c1").out == "c1\n"
    st = state(sj, "c1")
    assert st["Status"] == "running" and st["Pid"] > 0
    assert os.path.exists(f"/proc/{st['Pid']}")
    assert sj.ok("container", "start", "c1").out == "c1\n"  # already running: nothing to do
    # rm of a running container is refused; stop sends SIGTERM, sleep (pid 1) ignores it,
    # so after -t 1 it gets SIGKILL: 137
    r = sj("container", "rm", "c1")
    assert r.rc == 1 and "cannot remove a running container" in r.err
    assert sj.ok("container", "stop", "-t", "1", "c1").out == "c1\n"
    st = state(sj, "c1")
    assert (st["Status"], st["ExitCode"]) == ("exited", 137)
    assert not os.path.exists(f"/proc/{st['Pid']}") or st["Pid"] == 0
    assert not _mounted(sj, cid)
    sj.ok("container", "restart", "-t", "0", "c1")
    assert state(sj, "c1")["Status"] == "running"
    assert sj.ok("container", "rm", "-f", "c1").out == "c1\n"
    assert ps(sj) == {}


def test_stop_signal_and_timeout(sj):
    # a trap on TERM: stop ends it with the trap's code, long before the timeout
    sj.ok("container", "run", "-d", "--name", "t", BUSYBOX, "sh", "-c",
          "trap 'exit 42' TERM; while true; do sleep 0.1; done")  # fmt: skip
    sj.ok("container", "stop", "-t", "30", "t")
    assert state(sj, "t")["ExitCode"] == 42
    # --stop-signal USR1 is what stop sends
    sj.ok("container", "run", "-d", "--name", "u", "--stop-signal", "USR1", BUSYBOX, "sh",
          "-c", "trap 'exit 7' USR1; while true; do sleep 0.1; done")  # fmt: skip
    sj.ok("container", "stop", "u")
    assert state(sj, "u")["ExitCode"] == 7
    assert inspect(sj, "u")["Config"]["StopSignal"] == "USR1"


def test_kill_pause_unpause_wait(sj):
    sj.ok("container", "run", "-d", "--name", "k", BUSYBOX, "sh", "-c",
          "trap 'echo got usr1' USR1; while true; do sleep 0.1; done")  # fmt: skip
    sj.ok("container", "kill", "-s", "USR1", "k")
    wait_for(lambda: "got usr1" in sj.ok("container", "logs", "k").out, "the trap's output")
    assert state(sj, "k")["Status"] == "running"
    sj.ok("container", "pause", "k")
    assert state(sj, "k")["Status"] == "paused"
    assert "(Paused)" in ps(sj)["k"]["Status"]
    r = sj("container", "pause", "k")
    assert r.rc == 1 and "already paused" in r.err
    sj.ok("container", "unpause", "k")
    assert state(sj, "k")["Status"] == "running"
    sj.ok("container", "kill", "k")  # SIGKILL by default
    assert sj.ok("container", "wait", "k").out == "137\n"
    r = sj("container", "kill", "k")
    assert r.rc == 1 and "is not running" in r.err
    # wait blocks until the exit and prints the code
    sj.ok("container", "run", "-d", "--name", "w", BUSYBOX, "sh", "-c", "sleep 0.3; exit 9")
    assert sj.ok("container", "wait", "w").out == "9\n"


def test_rename_and_name_rules(sj):
    sj.ok("container", "create", "--name", "a", BUSYBOX, "true")
    sj.ok("container", "create", "--name", "b", BUSYBOX, "true")
    r = sj("container", "rename", "a", "b")
    assert r.rc == 1 and 'The container name "/b" is already in use' in r.err
    sj.ok("container", "rename", "a", "c")
    assert set(ps(sj)) == {"b", "c"}
    r = sj("container", "create", "--name", "bad name", BUSYBOX, "true")
    assert r.rc == 125 and "Invalid container name" in r.err
    # generated names: adjective_surname, unique
    for _ in range(3):
        sj.ok("container", "create", BUSYBOX, "true")
    generated = [n for n in ps(sj) if n not in ("b", "c")]
    assert len(set(generated)) == 3 and all("_" in n for n in generated)
    # ids and names resolve by unique prefix, like Docker
    cid = inspect(sj, "b")["Id"]
    assert inspect(sj, cid[:10])["Name"] == "/b"
    assert inspect(sj, "/b")["Id"] == cid
    r = sj("container", "inspect", "nosuch")
    assert r.rc == 1 and "No such container: nosuch" in r.err


def test_restart_policies(sj):
    # on-failure:2: two restarts, then it stays exited; the count is kept
    sj.ok("container", "run", "-d", "--name", "of", "--restart", "on-failure:2", BUSYBOX,
          "sh", "-c", "exit 1")  # fmt: skip
    wait_for(lambda: inspect(sj, "of")["RestartCount"] == 2
             and state(sj, "of")["Status"] == "exited", "two restarts")  # fmt: skip
    time.sleep(1)  # no third one comes (a settle delay, not a measure)
    assert inspect(sj, "of")["RestartCount"] == 2
    # on-failure does not restart a success
    sj.ok("container", "run", "-d", "--name", "ok", "--restart", "on-failure", BUSYBOX, "true")
    assert sj.ok("container", "wait", "ok").out == "0\n"
    # always: back after it ends by itself; a stop ends that for good
    sj.ok("container", "run", "-d", "--name", "al", "--restart", "always", BUSYBOX, "sh", "-c",
          "sleep 0.2; exit 5")  # fmt: skip
    wait_for(lambda: inspect(sj, "al")["RestartCount"] >= 2, "restarts of an always container")
    sj.ok("container", "stop", "-t", "1", "al")
    n = inspect(sj, "al")["RestartCount"]
    time.sleep(1)
    assert state(sj, "al")["Status"] == "exited" and inspect(sj, "al")["RestartCount"] == n
    # --restart with --rm is refused, as Docker
    r = sj("container", "run", "--rm", "--restart", "always", BUSYBOX, "true")
    assert r.rc == 125 and "AutoRemove" in r.err
    r = sj("container", "run", "--restart", "sometimes", BUSYBOX, "true")
    assert r.rc == 125 and "invalid restart policy" in r.err


def test_a_process_killed_from_the_host_is_restarted(sj):
    """unless-stopped: its init killed by someone else (not the engine) is a crash."""
    sj.ok("container", "run", "-d", "--name", "us", "--restart", "unless-stopped", BUSYBOX,
          "sleep", "1000")  # fmt: skip
    pid = state(sj, "us")["Pid"]
    os.kill(pid, 9)
    wait_for(lambda: state(sj, "us")["Status"] == "running" and state(sj, "us")["Pid"] != pid,
             "the restart")  # fmt: skip
    assert inspect(sj, "us")["RestartCount"] == 1


def test_start_all_restartable_after_a_reboot(sj):
    """A reboot loses the runtime's state and every process: what the boot unit's
    `container start --all-restartable` then brings back.  The reboot is made by killing
    the containers' monitors and processes and removing the runtime's state (/run is a
    tmpfs that a reboot empties)."""
    import shutil

    sj.ok("container", "run", "-d", "--name", "always", "--restart", "always", BUSYBOX,
          "sleep", "1000")  # fmt: skip
    sj.ok("container", "run", "-d", "--name", "unless", "--restart", "unless-stopped", BUSYBOX,
          "sleep", "1000")  # fmt: skip
    sj.ok("container", "run", "-d", "--name", "stopped", "--restart", "unless-stopped",
          BUSYBOX, "sleep", "1000")  # fmt: skip
    sj.ok("container", "stop", "-t", "0", "stopped")
    sj.ok("container", "run", "-d", "--name", "never", BUSYBOX, "sleep", "1000")
    for name in ("always", "unless", "never"):
        i = inspect(sj, name)
        _kill_monitor(sj, i["Id"])
        os.kill(i["State"]["Pid"], 9)
    for name in ("always", "unless", "never"):
        wait_for(lambda n=name: not os.path.exists(f"/proc/{inspect(sj, n)['State']['Pid']}")
                 or state(sj, n)["Status"] != "running", "the crash")  # fmt: skip
    for cid in os.listdir(sj.run_root):
        sj("delete", "--force", cid)
    shutil.rmtree(sj.run_root, ignore_errors=True)
    # the records say what the runtime confirms: gone (255: the monitor never said)
    st = {n: c["State"] for n, c in ps(sj).items()}
    assert st == {"always": "exited", "unless": "exited", "stopped": "exited",
                  "never": "exited"}  # fmt: skip
    assert state(sj, "always")["ExitCode"] == 255
    r = sj.ok("container", "start", "--all-restartable")
    assert sorted(r.out.split()) == ["always", "unless"]
    st = {n: c["State"] for n, c in ps(sj).items()}
    assert st == {"always": "running", "unless": "running", "stopped": "exited",
                  "never": "exited"}  # fmt: skip


def _kill_monitor(sj, cid):
    pidfile = os.path.join(sj.root, "containers", cid, "monitor", "conmon.pid")
    with open(pidfile) as f:
        os.kill(int(f.read()), 9)


def test_the_boot_unit_file_is_shipped():
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(here, "contrib", "systemd", "sangja-restart.service")) as f:
        unit = f.read()
    assert "ExecStart=/usr/local/bin/sangja container start --all-restartable" in unit
    assert "WantedBy=multi-user.target" in unit


def test_prune(sj):
    sj.ok("container", "run", "--name", "done1", BUSYBOX, "true")
    sj.ok("container", "create", "--name", "new1", BUSYBOX, "true")
    sj.ok("container", "run", "-d", "--name", "up", BUSYBOX, "sleep", "1000")
    r = sj.ok("container", "prune", "-f")
    assert r.out.startswith("Deleted Containers:\n") and "Total reclaimed space:" in r.out
    assert set(ps(sj)) == {"up"}


def test_health_checks(sj):
    """--health-cmd & co: starting, unhealthy after Retries failures, healthy after a
    success; shown by ps (status and filter) and inspect; the checker goes with the
    container."""
    sj.ok("container", "run", "-d", "--name", "h", "--health-cmd", "test -f /tmp/ok",
          "--health-interval", "200ms", "--health-retries", "2", BUSYBOX, "sleep",
          "1000")  # fmt: skip
    assert inspect(sj, "h")["State"]["Health"]["Status"] in ("starting", "unhealthy")
    wait_for(lambda: inspect(sj, "h")["State"]["Health"]["Status"] == "unhealthy",
             "unhealthy")  # fmt: skip
    assert "(unhealthy)" in ps(sj)["h"]["Status"]
    assert sj.ok("container", "ps", "--filter", "health=unhealthy", "--format",
                 "{{.Names}}").out == "h\n"  # fmt: skip
    r = sj("container", "healthcheck", "h")
    assert (r.rc, r.out) == (1, "unhealthy\n")
    sj.ok("container", "exec", "h", "touch", "/tmp/ok")
    wait_for(lambda: inspect(sj, "h")["State"]["Health"]["Status"] == "healthy", "healthy")
    h = inspect(sj, "h")["State"]["Health"]
    assert h["FailingStreak"] == 0 and h["Log"][-1]["ExitCode"] == 0 and len(h["Log"]) <= 5
    assert inspect(sj, "h")["Config"]["Healthcheck"]["Test"] == ["CMD-SHELL", "test -f /tmp/ok"]
    r = sj("container", "run", "--rm", "--no-healthcheck", "--health-cmd", "true", BUSYBOX, "true")
    assert r.rc == 125 and "conflicts" in r.err
    sj.ok("container", "rm", "-f", "h")
    from enginekit import monitor_processes

    assert not [p for p in monitor_processes(sj.tmp) if "healthcheck" in p]


def test_detached_rm_is_removed_by_its_monitor(sj):
    cid = sj.ok("container", "run", "-d", "--rm", "--name", "gone", BUSYBOX, "sh", "-c",
                "sleep 0.3").out.strip()  # fmt: skip
    wait_for(lambda: ps(sj) == {}, "the monitor's removal")
    assert not os.path.exists(os.path.join(sj.root, "containers", cid))
    r = sj("container", "inspect", "gone")
    assert r.rc == 1 and "No such container" in r.err
