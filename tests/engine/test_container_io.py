"""A container's stdio through its monitor: logs (streams apart, -t, --since/--until,
--tail, -f, rotation), attach and the detach keys, -i stdin, exec."""

import json
import os
import subprocess
import time

import pytest
from enginekit import BUSYBOX, DEBIAN, Terminal, inspect, state, wait_for
from registrykit import sangja_binary


def test_logs_keep_stdout_and_stderr_apart(sj):
    sj.ok("container", "run", "--name", "l", BUSYBOX, "sh", "-c",
          "echo out1; echo err1 >&2; sleep 0.2; printf partial; sleep 0.3; echo out2")  # fmt: skip
    # (the sleep orders err1's record before partial's: conmon reads the two pipes apart,
    # and a line's pieces count with the record that ends them, for --tail below)
    r = sj.ok("container", "logs", "l")
    assert r.out == "out1\npartialout2\n" and r.err == "err1\n"
    # the log file is conmon's k8s-file: one record per line, its stream and whether it
    # ends a line (F) or not (P: written without a newline)
    log = inspect(sj, "l")["LogPath"]
    with open(log) as f:
        recs = [line.split(" ", 3)[1:] for line in f.read().splitlines()]
    out = [r for r in recs if r[0] == "stdout"]
    assert out == [["stdout", "F", "out1"], ["stdout", "P", "partial"],
                   ["stdout", "F", "out2"]]  # fmt: skip
    assert [r for r in recs if r[0] == "stderr"] == [["stderr", "F", "err1"]]
    r = sj.ok("container", "logs", "-t", "l")
    stamps = [line.split(" ", 1)[0] for line in r.out.splitlines()]
    assert all(len(s) == 30 and s.endswith("Z") and s[10] == "T" for s in stamps), stamps
    # a line written in two pieces is one line, with one time (its first piece's)
    assert [line.split(" ", 1)[1] for line in r.out.splitlines()] == ["out1", "partialout2"]
    r = sj.ok("container", "logs", "--tail", "1", "l")  # the last line, both its pieces
    assert r.out == "partialout2\n" and r.err == ""
    assert sj.ok("container", "logs", "--tail", "0", "l").out == ""
    assert sj.ok("container", "logs", "--since", "1h", "l").out == "out1\npartialout2\n"
    assert sj.ok("container", "logs", "--until", "2000-01-01T00:00:00Z", "l").out == ""
    assert sj.ok("container", "logs", "--since", str(int(time.time()) + 3600), "l").out == ""
    r = sj("container", "logs", "--since", "yesterday-ish", "l")
    assert r.rc == 1 and "invalid time" in r.err


def test_logs_follow_and_a_fast_writer(sj):
    """-f streams until the container ends; a container that writes faster than anyone
    reads loses nothing (its monitor writes the file)."""
    sj.ok("container", "run", "-d", "--name", "f", BUSYBOX, "sh", "-c",
          "i=0; while [ $i -lt 3 ]; do echo tick $i; i=$((i+1)); sleep 0.3; done")  # fmt: skip
    r = sj.ok("container", "logs", "-f", "f")
    assert r.out == "tick 0\ntick 1\ntick 2\n"
    sj.ok("container", "run", "-d", "--name", "fast", BUSYBOX, "sh", "-c",
          "seq 1 200000")  # fmt: skip
    sj.ok("container", "wait", "fast")
    out = sj.ok("container", "logs", "fast").out.split("\n")
    assert out[:-1] == [str(i) for i in range(1, 200001)]


def test_log_max_size_alone_starts_the_file_again(sj):
    """max-size without max-file (or max-file=1): conmon starts its one file again (more
    files: test_log_rotation.py)."""
    sj.ok("container", "run", "--name", "rot", "--log-opt", "max-size=10k", "--log-opt",
          "max-file=1", BUSYBOX, "sh", "-c", "seq 1 20000")  # fmt: skip
    log = inspect(sj, "rot")["LogPath"]
    assert os.path.getsize(log) <= 10 * 1024
    out = sj.ok("container", "logs", "rot").out.split()
    assert out[-1] == "20000" and len(out) < 20000  # the newest kept, the file started over
    log = os.path.dirname(log)
    assert sorted(n for n in os.listdir(log) if n.startswith("ctr.log")) == ["ctr.log"]
    r = sj("container", "run", "--log-opt", "max-size=12q", BUSYBOX, "true")
    assert r.rc == 125 and "max-size" in r.err
    assert list(
        json.loads(line)["Names"]
        for line in sj.ok("container", "ps", "-a", "--format", "json").out.splitlines()
    ) == ["rot"]


def test_run_stdin(sj):
    r = sj.ok("container", "run", "--rm", "-i", BUSYBOX, "sh", "-c", "cat; echo eof",
              input="line a\nline b\n")  # fmt: skip
    assert r.out == "line a\nline b\neof\n"
    r = sj.ok("container", "run", "--rm", BUSYBOX, "cat", input="not read\n")
    assert r.out == ""
    # -a: only the streams asked for
    r = sj.ok("container", "run", "--rm", "-a", "stderr", BUSYBOX, "sh", "-c",
              "echo o; echo e >&2")  # fmt: skip
    assert (r.out, r.err) == ("", "e\n")


def test_run_with_a_terminal_and_detach_keys(sj):
    t = Terminal(sj, "container", "run", "-it", "--name", "tt", BUSYBOX, "sh")
    t.read_until(b"# ")
    t.write(b"tty; stty size\r")
    t.read_until(b"24 80")
    assert b"/dev/pts/0" in t.out
    t.write(b"\x10\x11")  # ctrl-p ctrl-q: detached, the shell goes on
    assert t.wait() == 0
    assert state(sj, "tt")["Status"] == "running"
    # attach again, type, and leave with custom keys
    t = Terminal(sj, "container", "attach", "--detach-keys", "ctrl-x,y", "tt")
    t.write(b"echo back $((40+2))\r")
    t.read_until(b"back 42")
    t.write(b"\x18y")
    assert t.wait() == 0
    assert state(sj, "tt")["Status"] == "running"
    # exit from the shell: the attached client ends with its code
    t = Terminal(sj, "container", "attach", "tt")
    t.write(b"exit 3\r")
    assert t.wait() == 3
    assert state(sj, "tt")["ExitCode"] == 3


def test_attach_to_a_stopped_container_is_an_error(sj):
    sj.ok("container", "create", "--name", "idle", BUSYBOX, "true")
    r = sj("container", "attach", "idle")
    assert r.rc == 1 and "You cannot attach to a stopped container" in r.err


def test_attach_without_a_tty(sj):
    """stdout and stderr come through apart; the input goes to a -i container's stdin; the
    client ends with the container, with its exit code."""
    sj.ok("container", "run", "-di", "--name", "cat", BUSYBOX, "sh", "-c",
          "while read l; do echo \"out:$l\"; echo \"err:$l\" >&2; done")  # fmt: skip
    p = subprocess.Popen([sangja_binary(), "--root", sj.run_root, "container", "attach", "cat"],
                         env=sj.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)  # fmt: skip
    try:
        wait_for(lambda: os.path.exists(f"/proc/{p.pid}") and _attached(sj, p.pid), "attach")
        p.stdin.write(b"one\ntwo\n")
        p.stdin.flush()
        wait_for(lambda: "out:two" in sj.ok("container", "logs", "cat").out, "the echo")
        sj.ok("container", "stop", "-t", "1", "cat")
        out, err = p.communicate(timeout=60)
    finally:
        p.kill()
    assert (out, err) == (b"out:one\nout:two\n", b"err:one\nerr:two\n")
    assert p.returncode == 137
    logs = sj.ok("container", "logs", "cat")
    assert logs.out == "out:one\nout:two\n" and logs.err == "err:one\nerr:two\n"


def _attached(sj, pid):
    """The attach client holds its connection to the monitor's socket."""
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
                   for fd in os.listdir(f"/proc/{pid}/fd"))  # fmt: skip
    except OSError:
        return False


def test_exec(sj):
    sj.ok("container", "run", "-d", "--name", "e", "-e", "FROM_RUN=1", "-w", "/tmp", BUSYBOX,
          "sleep", "1000")  # fmt: skip
    r = sj.ok("container", "exec", "e", "sh", "-c", 'echo "$FROM_RUN $(pwd) $(id -u)"')
    assert r.out == "1 /tmp 0\n"
    r = sj.ok("container", "exec", "-e", "X=2", "-w", "/etc", "-u", "nobody", "e", "sh", "-c",
              'echo "$X $(pwd) $(id -un)"')  # fmt: skip
    assert r.out == "2 /etc nobody\n"
    r = sj("container", "exec", "e", "sh", "-c", "exit 7")
    assert r.rc == 7
    r = sj("container", "exec", "e", "nosuchcmd")
    assert r.rc == 127 and "executable file not found" in r.err
    r = sj("container", "exec", "e", "/etc/passwd")
    assert r.rc == 126
    r = sj.ok("container", "exec", "-i", "e", "cat", input="via stdin\n")
    assert r.out == "via stdin\n"
    assert sj.ok("container", "exec", "e", "cat", input="ignored\n").out == ""

    # capabilities: the container's (Docker's defaults), every one with --privileged
    def capeff(*flags):
        out = sj.ok("container", "exec", *flags, "e", "grep", "CapEff", "/proc/self/status")
        return int(out.out.split()[1], 16)

    assert capeff() == capeff() and capeff("--privileged") > capeff()
    # -d: it runs on; its monitor reaps it
    sj.ok("container", "exec", "-d", "e", "sh", "-c", "echo detached > /tmp/d; sleep 0.2")
    wait_for(lambda: sj("container", "exec", "e", "cat", "/tmp/d").out == "detached\n",
             "the detached exec")  # fmt: skip
    # a terminal
    t = Terminal(sj, "container", "exec", "-it", "e", "sh")
    t.read_until(b"# ")
    t.write(b"tty; exit 5\r")
    assert t.wait() == 5 and b"/dev/pts/" in t.out
    sj.ok("container", "stop", "-t", "0", "e")
    r = sj("container", "exec", "e", "true")
    assert r.rc == 1 and "is not running" in r.err


@pytest.mark.parametrize("image", [DEBIAN])
def test_exec_user_from_the_image(sj, image):
    sj.ok("container", "run", "-d", "--name", "d", "-u", "nobody", image, "sleep", "1000")
    assert sj.ok("container", "exec", "d", "id", "-un").out == "nobody\n"
    assert sj.ok("container", "exec", "-u", "root", "d", "id", "-un").out == "root\n"
    r = sj("container", "exec", "-u", "nosuchuser", "d", "true")
    assert r.rc != 0 and "unable to find user nosuchuser" in r.err
