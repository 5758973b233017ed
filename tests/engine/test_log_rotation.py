"""Log rotation (`--log-opt max-size=S --log-opt max-file=N`, N > 1): conmon writes to the
log writer's FIFO, the writer keeps ctr.log, ctr.log.1 ... ctr.log.(N-1); `logs` reads
them oldest first (--tail, --since, --until, -t across files), `logs -f` follows across
rotations; the writer leaks no fd into the container and leaves nothing behind (the
`sj` fixture fails a test that leaves a writer process); bad values are refused as
Docker refuses them."""

import datetime
import json
import os
import signal
import subprocess

import pytest
from enginekit import BUSYBOX, inspect, kill9, ps, start_stopped, wait_for
from registrykit import sangja_binary
from rtkit import proc_state

ROT = ("--log-opt", "max-size=100k", "--log-opt", "max-file=3")


def _files(sj, ref):
    d = os.path.dirname(inspect(sj, ref)["LogPath"])
    return {
        n: os.path.getsize(os.path.join(d, n)) for n in os.listdir(d) if n.startswith("ctr.log")
    }


def _numbers(text):
    return [int(x) for x in text.split()]


N = 60000


def _lines(text, prefix):
    """'out5\nout6\n' -> [5, 6], each line checked to be of its stream."""
    got = text.splitlines()
    assert all(line.startswith(prefix) for line in got), got[:3]
    return [int(line[len(prefix) :]) for line in got]


def test_rotation_keeps_max_file_files_and_logs_reads_them_in_order(sj):
    # both streams, one line each in turn, ~6 MB of log records
    loop = f"i=0; while [ $i -lt {N} ]; do echo out$i; echo err$i >&2; i=$((i+1)); done"
    sj.ok("container", "run", "--name", "r", *ROT, BUSYBOX, "sh", "-c", loop)
    files = _files(sj, "r")
    assert sorted(files) == ["ctr.log", "ctr.log.1", "ctr.log.2"], files
    # (a line conmon wrote in two parts may take a file up to 64k past: see the writer)
    assert all(size <= 164 * 1024 for size in files.values()), files
    r = sj.ok("container", "logs", "r")
    out, err = _lines(r.out, "out"), _lines(r.err, "err")
    # the newest lines of each stream, in order, none repeated, the last one there
    assert out == list(range(out[0], N)) and out[0] > N // 2
    assert err == list(range(err[0], N)) and err[0] > N // 2
    # the files hold whole records: each begins with one
    d = os.path.dirname(inspect(sj, "r")["LogPath"])
    for n in files:
        with open(os.path.join(d, n), "rb") as f:
            first = f.readline()
        assert first[35:43] in (b" stdout ", b" stderr ") and first.endswith(b"\n")

    # --tail counts lines (of both streams) from the newest file back, across files
    t = sj.ok("container", "logs", "--tail", "3000", "r")
    tout, terr = _lines(t.out, "out"), _lines(t.err, "err")
    assert len(tout) + len(terr) == 3000 and len(tout) > 1000 and len(terr) > 1000
    assert tout == out[-len(tout) :] and terr == err[-len(terr) :]
    last = sj.ok("container", "logs", "--tail", "1", "r")
    assert f"{N - 1}\n" in (last.out + last.err) and len((last.out + last.err).split()) == 1
    for every in ("all", "999999"):
        a = sj.ok("container", "logs", "--tail", every, "r")
        assert (a.out, a.err) == (r.out, r.err)

    # -t: the records' times, never going back across files; --since/--until cut there
    stamped = sj.ok("container", "logs", "-t", "r").out.splitlines()
    stamps = [line.split(" ", 1)[0] for line in stamped]
    assert stamps == sorted(stamps) and len(stamped) == len(out)
    out = [int(line.split(" ", 1)[1][3:]) for line in stamped]

    # --since/--until read microseconds (and compare as floats, ~0.2 us apart at best): cut
    # where two records are more than 2 us apart, the later one well inside its microsecond
    def us(stamp):
        d = datetime.datetime.fromisoformat(stamp[:26] + "+00:00")
        return round(d.timestamp() * 1e6)

    cut = next(i for i in range(len(stamps) // 2, len(stamps))
               if us(stamps[i]) - us(stamps[i - 1]) > 2
               and int(stamps[i][26:29]) >= 600)  # fmt: skip
    since = _lines(sj.ok("container", "logs", "--since", stamps[cut], "r").out, "out")
    assert since == out[cut:]
    until = _lines(sj.ok("container", "logs", "--until", stamps[cut], "r").out, "out")
    assert until == out[:cut]

    # inspect shows the config as given; rm removes every file
    lc = inspect(sj, "r")["HostConfig"]["LogConfig"]
    assert lc["Config"] == {"max-size": "100k", "max-file": "3"}
    sj.ok("container", "rm", "r")
    assert not os.path.exists(d)


def _reads(pid, path):
    try:
        return any(
            os.readlink(f"/proc/{pid}/fd/{fd}") == path for fd in os.listdir(f"/proc/{pid}/fd")
        )
    except OSError:
        return False


def test_follow_across_rotations(sj, tmp_path):
    """A `logs -f` started before the writes sees every line, in order, once, across the
    rotations: it opens each new file as soon as it sees it and holds it (up to 64 MiB of
    them) until it has read it, so a burst (~5 MB in a moment, far faster than it reads)
    costs it nothing."""
    go = tmp_path / "go"
    go.mkdir()
    sj.ok("container", "run", "-d", "--name", "f", "--log-opt", "max-size=512k",
          "--log-opt", "max-file=3", "-v", f"{go}:/go", BUSYBOX, "sh", "-c",
          "while [ ! -e /go/now ]; do sleep 0.05; done; seq 1 100000; echo end >&2")  # fmt: skip
    log = inspect(sj, "f")["LogPath"]
    # its output to files: a pipe the test reads would slow it down to the test's pace
    with open(tmp_path / "out", "w+b") as fo, open(tmp_path / "err", "w+b") as fe:
        p = subprocess.Popen([sangja_binary(), "--root", sj.run_root, "container", "logs", "-f",
                              "f"], env=sj.env, stdout=fo, stderr=fe)  # fmt: skip
        try:
            wait_for(lambda: _reads(p.pid, log), "logs -f to open the log")
            (go / "now").touch()
            p.wait(timeout=300)
        finally:
            p.kill()
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read(), fe.read()
    assert p.returncode == 0, err
    assert len(_files(sj, "f")) == 3  # it did rotate (~5 MB of records)
    got = _numbers(out.decode())
    kept = _numbers(sj.ok("container", "logs", "f").out)
    assert kept == list(range(kept[0], 100001)) and kept[0] > 1
    assert got == list(range(1, 100001)) and err == b"end\n"


def _wchan(pid):
    try:
        with open(f"/proc/{pid}/wchan") as f:
            return f.read().strip()
    except OSError:
        return ""


def test_a_stopped_writer_holds_the_container_back(sj, tmp_path):
    """Backpressure, not loss: while the writer is stopped (a real SIGSTOP), conmon blocks
    on the full FIFO and the container on its full pipe; once it goes on, every line is
    in the log."""
    go = tmp_path / "go"
    go.mkdir()
    sj.ok("container", "run", "-d", "--name", "slow", "--log-opt", "max-size=50m",
          "--log-opt", "max-file=2", "-v", f"{go}:/go", BUSYBOX, "sh", "-c",
          "while [ ! -e /go/now ]; do sleep 0.05; done; seq 1 200000")  # fmt: skip
    d = os.path.join(os.path.dirname(inspect(sj, "slow")["LogPath"]), "monitor")
    with open(os.path.join(d, "logwriter.pid")) as f:
        writer = int(f.read().split(":")[0])
    with open(os.path.join(d, "conmon.pid")) as f:
        conmon = int(f.read())
    if _wchan(conmon) in ("", "0"):
        pytest.skip("this kernel does not show where a process waits (/proc/PID/wchan)")
    os.kill(writer, signal.SIGSTOP)
    try:
        (go / "now").touch()
        # (the kernel names the wait pipe_write, or anon_pipe_write since 6.x)
        wait_for(lambda: "pipe_write" in _wchan(conmon), "conmon to wait on the full FIFO")
        assert inspect(sj, "slow")["State"]["Running"]  # its output is not all taken yet
    finally:
        os.kill(writer, signal.SIGCONT)
    assert sj.ok("container", "wait", "slow").out == "0\n"
    assert _numbers(sj.ok("container", "logs", "slow").out) == list(range(1, 200001))


def test_writer_leaks_no_fd_and_goes_with_the_container(sj):
    sj.ok("container", "run", "-d", "--name", "w", *ROT, BUSYBOX, "sleep", "1000")
    st = inspect(sj, "w")["State"]
    d = os.path.dirname(inspect(sj, "w")["LogPath"])
    # the container's process: its stdio only (the pipes conmon holds)
    fds = os.listdir(f"/proc/{st['Pid']}/fd")
    assert sorted(fds) == ["0", "1", "2"], fds
    assert all(os.readlink(f"/proc/{st['Pid']}/fd/{fd}").startswith(("pipe:", "/dev/null"))
               for fd in fds)  # fmt: skip
    # the writer: the FIFO, its lock, the log, /dev/null and its error file; nothing of
    # the CLI that started it (the store's database, sockets)
    with open(os.path.join(d, "monitor", "logwriter.pid")) as f:
        pid = int(f.read().split(":")[0])
    targets = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    allowed = {"/dev/null", f"{d}/monitor/logwriter.err", f"{d}/monitor/log.fifo",
               f"{d}/monitor/log.fifo.lock", f"{d}/ctr.log"}  # fmt: skip
    assert targets <= allowed, targets - allowed
    assert os.readlink(f"/proc/{pid}/cwd") == "/"  # no directory of the CLI's held
    out = sj.ok("container", "exec", "w", "ls", "/proc/1/fd").out.split()
    assert out == ["0", "1", "2"]
    # stopped: the writer ends with its conmon; rm then leaves no process
    sj.ok("container", "stop", "-t", "0", "w")
    wait_for(lambda: proc_state(pid) in (None, "Z"), "the writer to end")
    sj.ok("container", "start", "w")  # a new run: a new writer, the same files
    with open(os.path.join(d, "monitor", "logwriter.pid")) as f:
        pid2 = int(f.read().split(":")[0])
    assert pid2 != pid and os.path.exists(f"/proc/{pid2}")
    sj.ok("container", "rm", "-f", "w")
    wait_for(lambda: proc_state(pid2) in (None, "Z"), "the writer to go")


def test_logs_kept_across_restarts(sj):
    """Each run appends to the same files (a new writer per run, one at a time), also when
    the restart policy starts it again from the monitor's exit command."""
    sj.ok("container", "run", "--name", "again", *ROT, BUSYBOX, "sh", "-c", "seq 1 3")
    sj.ok("container", "start", "-a", "again")
    assert _numbers(sj.ok("container", "logs", "again").out) == [1, 2, 3, 1, 2, 3]
    sj.ok("container", "run", "-d", "--name", "of", "--restart", "on-failure:2", *ROT, BUSYBOX,
          "sh", "-c", "seq 1 2; exit 1")  # fmt: skip
    wait_for(lambda: inspect(sj, "of")["RestartCount"] == 2
             and inspect(sj, "of")["State"]["Status"] == "exited", "two restarts")  # fmt: skip
    assert _numbers(sj.ok("container", "logs", "of").out) == [1, 2, 1, 2, 1, 2]


@pytest.mark.parametrize("point", ["start:logwriter", "start:created"])
def test_cli_killed_after_the_writer_started(sj, point):
    """kill -9 of the CLI between the writer's start and conmon's (or just after conmon's):
    the next start runs (a writer left waiting is released), `rm -f` removes all (the
    fixture checks that no writer process stays)."""
    sj.ok("container", "create", "--name", "k", *ROT, BUSYBOX, "sh", "-c", "echo hello")
    kill9(start_stopped(sj, "container", "start", "k", failpoint=point))
    sj.ok("container", "start", "-a", "k")
    assert sj.ok("container", "logs", "k").out == "hello\n"
    sj.ok("container", "create", "--name", "k2", *ROT, BUSYBOX, "sleep", "1000")
    kill9(start_stopped(sj, "container", "start", "k2", failpoint=point))
    sj.ok("container", "rm", "-f", "k2")
    kill9(start_stopped(sj, "container", "run", "-d", "--name", "k3", *ROT, BUSYBOX, "sleep",
                        "1000", failpoint=point))  # fmt: skip
    assert "k3" not in ps(sj)  # a run killed before it returned: collected


@pytest.mark.parametrize("opts,error", [
    (["max-size=100k", "max-file=0"], "max-file cannot be less than 1"),
    (["max-size=100k", "max-file=x"], 'strconv.Atoi: parsing "x": invalid syntax'),
    (["max-size=100k", "max-file=-2"], "max-file cannot be less than 1"),
    (["max-size=0", "max-file=2"], "max-size must be a positive number"),
    (["max-size=12q"], "invalid log opt max-size"),
    (["max-size=1m", "compress=true"], "unknown log opt 'compress'"),
])  # fmt: skip
def test_bad_values(sj, opts, error):
    flags = [a for o in opts for a in ("--log-opt", o)]
    r = sj("container", "run", *flags, BUSYBOX, "true")
    assert r.rc == 125 and error in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert ps(sj) == {}


@pytest.mark.parametrize("size,expect", [("100k", 100000), ("1.5m", 1500000),
                                         ("10MiB", 10000000), ("2g", 2 * 10**9)])  # fmt: skip
def test_max_size_units_are_decimal_as_dockers(sj, size, expect):
    # Docker's json-file reads max-size with go-units' FromHumanSize: every unit decimal
    sj.ok("container", "run", "-d", "--name", "u", "--log-opt", f"max-size={size}",
          "--log-opt", "max-file=2", BUSYBOX, "sleep", "1000")  # fmt: skip
    d = os.path.dirname(inspect(sj, "u")["LogPath"])
    with open(os.path.join(d, "monitor", "logwriter.pid")) as f:
        pid = int(f.read().split(":")[0])
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        argv = f.read().split(b"\0")
    assert argv[3:5] == [str(expect).encode(), b"2"], argv  # the bound the writer keeps


def test_max_file_without_max_size_is_one_file(sj):
    """As Docker: accepted, and nothing rotates (no writer: conmon writes the file)."""
    sj.ok("container", "run", "--name", "one", "--log-opt", "max-file=3", BUSYBOX, "sh", "-c",
          "seq 1 30000")  # fmt: skip
    assert list(_files(sj, "one")) == ["ctr.log"]
    d = os.path.dirname(inspect(sj, "one")["LogPath"])
    assert not os.path.exists(os.path.join(d, "monitor", "logwriter.pid"))
    assert _numbers(sj.ok("container", "logs", "one").out) == list(range(1, 30001))
    lc = json.loads(sj.ok("container", "inspect", "--format", "{{json .HostConfig.LogConfig}}",
                          "one").out)  # fmt: skip
    assert lc["Config"] == {"max-file": "3"}


def _pinned(under):
    """Bytes of deleted files under `under` this process holds open."""
    total = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith(under) and target.endswith(" (deleted)"):
                total += os.stat(f"/proc/self/fd/{fd}").st_size
        except OSError:
            pass
    return total


def test_a_slow_follower_holds_a_bounded_amount(tmp_path):
    """The real writer (no container: the test writes conmon's records into its FIFO) and
    engine/logs.py's follower, read one piece at a time while ~120 MB go by: it holds
    the rotated files it has not read yet, up to 64 MiB of them (besides the one it reads
    and the newest), then lets the oldest go; what it yields stays in order, none twice,
    to the last."""
    from sangja.engine import logs

    writer = os.path.join(os.path.dirname(os.path.realpath(sangja_binary())), "sangja-logwriter")
    fifo, log = str(tmp_path / "fifo"), str(tmp_path / "ctr.log")
    subprocess.run([writer, fifo, log, str(4 << 20), "2", str(tmp_path / "pid")], check=True)
    w = os.open(fifo, os.O_WRONLY)
    stamp = b"2026-01-01T00:00:00.000000000+00:00 stdout F "
    n = 0

    def put(count):
        nonlocal n
        os.write(w, b"".join(stamp + b"%d\n" % i for i in range(n, n + count)))
        n += count

    done = False
    put(1000)
    gen = logs.read(log, follow=True, running=lambda: not done, wait_change=lambda t: None)
    got, most = [], 0
    try:
        for _ in range(300):  # ~120 MB of records, a piece (64 KiB) read after each 400 KB
            got.append(next(gen))
            for _ in range(8):
                put(1000)
            most = max(most, _pinned(str(tmp_path)))
        os.close(w)
        w = -1
        with open(str(tmp_path / "pid")) as f:
            pid = int(f.read().split(":")[0])
        wait_for(lambda: proc_state(pid) in (None, "Z"), "the writer")
        done = True
        got += list(gen)
    finally:
        if w >= 0:
            os.close(w)
        gen.close()
    lines = [int(x) for x in b"".join(b for _, b in got).split()]
    assert lines == sorted(set(lines)) and lines[0] == 0 and lines[-1] == n - 1
    assert len(lines) < n  # it fell behind by more than it may hold: it lost some
    assert 64 << 20 < most <= (64 + 2 * 4 + 1) << 20, most
