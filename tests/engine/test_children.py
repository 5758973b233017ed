"""engine/children.py: the helper programs on a container's way to running (netavark,
iptables-restore, iptables-save) are real processes here: their input is in their stdin
before the engine waits for them, both outputs and the exit code come back, a hang is
killed and reaped, and the child gets the signal dispositions a program expects."""

import os
import time

import pytest

from sangja.engine import children


def _wait_for(path, deadline=30.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if os.path.exists(path) and os.path.getsize(path):
            return True
        time.sleep(0.01)
    return False


def test_input_is_read_before_the_engine_waits(tmp_path):
    # the child consumes its stdin and acts on it while nobody waits for it (netavark's
    # set-up overlapping the runtime's create depends on this)
    out = tmp_path / "got"
    c = children.Child(["sh", "-c", f"cat > {out}.tmp && mv {out}.tmp {out}"], b"options\n")
    assert _wait_for(str(out)), "the child never got its input before wait()"
    assert out.read_bytes() == b"options\n"
    assert c.wait(30) == (0, b"", b"")


def test_outputs_and_exit_code_apart():
    c = children.Child(["sh", "-c", "cat; echo oops >&2; exit 3"], b"in")
    code, out, err = c.wait(30)
    assert (code, out, err) == (3, b"in", b"oops\n")
    assert c.returncode == 3


@pytest.mark.parametrize("size", [65536 * 3, (1 << 20) + 12345])
def test_large_input_and_output_whole(size):
    # above one pipe's default size it grows the pipe; above the largest pipe it writes
    # while reading the output, so a child that echoes as it reads never deadlocks
    data = bytes(range(256)) * (size // 256) + b"end"
    code, out, err = children.Child(["cat"], data).wait(60)
    assert code == 0 and err == b"" and out == data


def test_lots_of_stderr_while_stdout_waits():
    code, out, err = children.Child(["sh", "-c", "head -c 300000 /dev/zero >&2; echo done"]
                                    ).wait(60)  # fmt: skip
    assert (code, out, len(err)) == (0, b"done\n", 300000)


def test_hang_is_killed_and_reaped():
    c = children.Child(["sleep", "1000"])
    with pytest.raises(children.Timeout):
        c.wait(0.3)
    assert c.returncode == -9
    with pytest.raises(ChildProcessError):  # already reaped: no zombie left
        os.waitpid(c.pid, os.WNOHANG)


def test_missing_program_is_an_oserror_naming_it():
    with pytest.raises(FileNotFoundError) as e:
        children.Child(["no-such-program-here"], b"x", {"PATH": "/nonexistent"})
    assert e.value.filename == "no-such-program-here"


def test_environment_and_path_are_the_given_ones(tmp_path):
    exe = tmp_path / "tool"
    exe.write_text('#!/bin/sh\necho "tool $X"\n')
    exe.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "X": "42"}
    assert children.Child(["tool"], b"", env).wait(30) == (0, b"tool 42\n", b"")


def test_signals_python_ignores_are_default_in_the_child():
    # Python ignores SIGPIPE; a child that inherited that would see EPIPE instead of dying
    _, out, _ = children.Child(["sh", "-c", "grep SigIgn /proc/self/status"]).wait(30)
    ignored = int(out.split()[1], 16)
    assert not ignored & (1 << (13 - 1)), "SIGPIPE is still ignored in the child"


def test_no_fd_of_the_caller_reaches_the_child(tmp_path):
    # one fd Python made (close-on-exec) and one the engine's caller leaked (inheritable)
    own = os.open(str(tmp_path), os.O_RDONLY)
    leaked = os.open(str(tmp_path), os.O_RDONLY)
    os.set_inheritable(leaked, True)
    try:
        _, out, _ = children.Child(["ls", "-l", "/proc/self/fd"]).wait(30)
    finally:
        os.close(own)
        os.close(leaked)
    targets = [ln.split(" -> ")[-1] for ln in out.decode().splitlines() if " -> " in ln]
    assert str(tmp_path) not in targets, targets
    assert len(targets) <= 4, targets  # 0, 1, 2 and ls's own listing
