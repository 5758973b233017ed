"""Health checks (Config.Healthcheck, or the image's HEALTHCHECK), as Docker runs them: the
test (`CMD ...` exec'd, `CMD-SHELL ...` through /bin/sh -c) runs in the container every
Interval (default 30 s), killed after Timeout (30 s); Retries (3) failures in a row make it
`unhealthy`, a success `healthy`; failures within StartPeriod do not count.  The status,
the failing streak and the last five results are the record's State.Health, shown by ps
and inspect.

There is no daemon to keep the timer: each container that has a health check gets a small
checker process of its own (`sangja container healthcheck --loop ID`, started with the
container, detached like its monitor; podman uses systemd timers for the same job).  It
stops once the container does not run any more; stop, restart and rm also end it.
`container healthcheck ID` runs one check now (exit 0 healthy, 1 not).
"""

from __future__ import annotations

import contextlib
import os
import time

NS = 1_000_000_000
DEFAULTS = {"Interval": 30 * NS, "Timeout": 30 * NS, "StartPeriod": 0, "Retries": 3}
KEEP = 5  # results kept, as Docker
OUTPUT_MAX = 4096


def config(rec, image_conf: dict) -> dict | None:
    """The effective health check (the container's, else the image's), or None."""
    h = rec.config.get("Healthcheck") or (image_conf.get("config") or {}).get("Healthcheck")
    if not h or not h.get("Test") or h["Test"][0] == "NONE":
        return None
    out = dict(DEFAULTS)
    out.update({k: v for k, v in h.items() if v})
    return out


def command(test: list[str]) -> list[str]:
    if test[0] == "CMD":
        return list(test[1:])
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(test[1:])]
    return list(test)  # the old form: the command itself


def checker_pid_file(paths) -> str:
    return os.path.join(paths.monitor, "health.pid")


def start_checker(containers, rec) -> None:
    """The checker process for a container that has a health check (detached: a new
    session; stdio to /dev/null, its errors to monitor/health.err)."""
    from sangja.engine.paths import sangja_binary

    paths = containers.paths(rec.id)
    argv = [sangja_binary(), "--root", containers.runtime_root, "container", "healthcheck",
            "--loop", rec.id]  # fmt: skip
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    err = os.open(os.path.join(paths.monitor, "health.err"),
                  os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)  # fmt: skip
    try:
        env = dict(os.environ, SANGJA_ROOT=containers.root)
        env.pop("SANGJA_FAILPOINT", None)
        pid = os.posix_spawn(argv[0], argv, env, setsid=True, file_actions=[
            (os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, null, 1),
            (os.POSIX_SPAWN_DUP2, err, 2)])  # fmt: skip
    finally:
        os.close(null)
        os.close(err)
    # not waited for: the CLI exits and the checker lives on (a session of its own)
    with open(checker_pid_file(paths), "w") as f:
        from sangja.engine.records import proc_id

        f.write(proc_id(pid))


def stop_checker(paths) -> None:
    from sangja.engine.records import alive

    try:
        with open(checker_pid_file(paths)) as f:
            who = f.read().strip()
    except OSError:
        return
    if alive(who):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(who.split(":")[0]), 15)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(checker_pid_file(paths))


def run_once(containers, rec, hc: dict) -> dict:
    """Run the test once in the container: -> the result (Docker's HealthcheckResult)."""
    import subprocess

    from sangja.engine import execs
    from sangja.engine.units import rfc3339_nano
    from sangja.jsonio import dumps

    paths = containers.paths(rec.id)
    proc = execs.process_spec(containers, rec, {"Cmd": command(hc["Test"])})
    pfile = os.path.join(paths.monitor, "health-process.json")
    pidfile = os.path.join(paths.monitor, "health-exec.pid")
    with open(pfile, "w") as f:
        f.write(dumps(proc))
    from sangja.engine.paths import sangja_binary

    start = time.time()
    argv = [sangja_binary(), "--root", containers.runtime_root, "exec", "--pid-file", pidfile,
            "--process", pfile, rec.id]  # fmt: skip
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)  # fmt: skip
    try:
        out, _ = p.communicate(timeout=hc["Timeout"] / NS)
        code = p.returncode
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError, ValueError), open(pidfile) as f:
            os.kill(int(f.read()), 9)
        p.kill()
        out, _ = p.communicate()
        code = -1
        out = f"Health check exceeded timeout ({hc['Timeout'] / NS:g}s)".encode()
    return {"Start": rfc3339_nano(start), "End": rfc3339_nano(time.time()),
            "ExitCode": code, "Output": out[:OUTPUT_MAX].decode(errors="replace")}  # fmt: skip


def record(containers, rec, hc: dict, result: dict) -> dict:
    """Fold one result into the container's State.Health and store it."""
    from sangja import jsonio

    cur = jsonio.loads(rec.health) if rec.health else {"Status": "starting",
                                                       "FailingStreak": 0, "Log": []}  # fmt: skip
    in_start = (time.time() - (rec.started or 0)) * NS < hc["StartPeriod"]
    if result["ExitCode"] == 0:
        cur["Status"], cur["FailingStreak"] = "healthy", 0
    elif not in_start:
        cur["FailingStreak"] += 1
        if cur["FailingStreak"] >= hc["Retries"]:
            cur["Status"] = "unhealthy"
    cur["Log"] = (cur.get("Log") or [])[-(KEEP - 1) :] + [result]
    containers.records.update(rec.id, health=jsonio.dumps(cur))
    return cur


def loop(containers, cid: str) -> None:
    """The checker: a check every Interval while the container runs."""
    rec = containers.records.get(cid)
    if rec is None:
        return
    hc = config(rec, containers._image_conf(rec.image))
    if hc is None:
        return
    started = rec.started
    while True:
        time.sleep(hc["Interval"] / NS)
        rec = containers.records.get(cid)
        if rec is None or rec.state not in ("running", "paused") or rec.started != started:
            return  # stopped, removed or started again (that start has its own checker)
        status = containers.runtime_status(cid)
        if status == "paused":
            continue  # no checks while it is frozen (Docker's way too)
        if status != "running":
            return
        record(containers, rec, hc, run_once(containers, rec, hc))
