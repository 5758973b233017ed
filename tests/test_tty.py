"""Terminals: a pty from the container's own devpts sent over --console-socket (driven here
through tests/recvtty.py), consoleSize, the controlling terminal, exec -t, and foreground
`run`/`exec -t` on the caller's terminal (raw mode, window size kept in sync, restored)."""

import fcntl
import os
import re
import struct
import subprocess
import termios

import pytest
from recvtty import ConsoleReceiver, Pty
from rtkit import TIMEOUT, config, wait_for

SIZE_RX = re.compile(rb"(?m)^(\d+) (\d+)\r?$")


def tty_config(args, **process):
    c = config(args)
    c["process"]["terminal"] = True
    c["process"].update(process)
    return c


def receiver(rt):
    # short: a unix socket path must stay under 108 bytes
    return ConsoleReceiver(os.path.join(rt.workdir, f"c{len(rt.ids)}.sock"))


def shell_ready(pty):
    """Wait for the prompt: input typed earlier may be flushed when the shell sets the
    terminal up."""
    pty.read_until(rb"# (?:\x1b\[[0-9;]*[A-Za-z])*$")  # maybe a cursor query, a redraw


def stty_size(pty):
    """Ask the shell on `pty` for its terminal's size -> (rows, cols)."""
    pty.write("busybox stty size\n")
    m = pty.read_until(SIZE_RX)
    return int(m.group(1)), int(m.group(2))


def test_console_socket(rt):
    """create --console-socket: the master arrives with its name; the slave is the process's
    stdio and controlling terminal, from the container's devpts, at consoleSize."""
    script = "tty; busybox stty size; echo ctty-ok > /dev/tty; read line; echo got:$line"
    c = tty_config(["sh", "-c", script], consoleSize={"height": 30, "width": 100})
    with receiver(rt) as rx:
        cid, r = rt.create(c, "--console-socket", rx.path)
        r.ok()
        pty = rx.accept()
    try:
        # the name of the pty (runc sends its master's: /dev/ptmx)
        assert re.fullmatch(r"/dev/ptmx" if rt.is_runc else r"/dev/pts/\d+", pty.name)
        peer = pty.peer()
        try:  # a pty of the container's devpts instance (newinstance), not the host's
            assert os.fstat(peer).st_dev != os.stat("/dev/pts/ptmx").st_dev
        finally:
            os.close(peer)
        rt("start", cid).ok()
        name = pty.read_until(r"/dev/pts/\d+").group(0).decode()  # from `tty`
        if not rt.is_runc:
            assert name == pty.name
        assert pty.read_until(SIZE_RX).group(0).strip() == b"30 100"
        pty.read_until("ctty-ok")
        pty.write("hello\n")
        pty.read_until("got:hello")
        rt.wait_stopped(cid)
    finally:
        pty.close()


def test_console_socket_is_required_when_detached(rt):
    c = tty_config(["true"])
    _, r = rt.create(c)
    assert r.rc != 0
    assert "console socket" in r.err
    _, r = rt.create(config(["true"]), "--console-socket", "/nonexistent.sock")
    assert r.rc != 0


def _running(rt):
    b = rt.bundle(config(["sleep", "1000"]))
    cid, _ = rt.created(b)
    rt("start", cid).ok()
    return cid


def test_exec_tty_interactive_shell(rt):
    """exec -t -d --console-socket: an interactive shell on a new pty; it resizes."""
    cid = _running(rt)
    with receiver(rt) as rx:
        p = rt.spawn("exec", "-t", "-d", "--console-socket", rx.path, cid, "sh")
        pty = rx.accept()
        p.result().ok()  # detached: back once the shell runs
    try:
        shell_ready(pty)
        pty.write("echo $((6*7))\n")
        pty.read_until(r"(?m)^42\r?$")
        pty.resize(40, 120)
        assert stty_size(pty) == (40, 120)
        pty.resize(50, 132)
        assert stty_size(pty) == (50, 132)
        pty.write("tty; echo $$\n")
        m = pty.read_until(rb"(/dev/pts/\d+)\r?\n(\d+)\r?\n")
        if not rt.is_runc:
            assert m.group(1).decode() == pty.name
        assert int(m.group(2)) > 1  # in the container's pid namespace, not its init
        pty.write("exit\n")
        pty.read_all()
    finally:
        pty.close()


@pytest.mark.sangja_only("runc uses --console-socket only with --detach")
def test_exec_tty_foreground_exit_code(rt):
    """exec -t --console-socket in the foreground: waits and exits with the shell's code."""
    cid = _running(rt)
    with receiver(rt) as rx:
        p = rt.spawn("exec", "-t", "--console-socket", rx.path, cid, "sh")
        pty = rx.accept()
    try:
        shell_ready(pty)
        pty.write("exit 3\n")
        assert p.result().rc == 3
    finally:
        pty.close()


def _set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


@pytest.mark.parametrize("verb", ["run", "exec"])
def test_foreground_terminal(rt, verb):
    """`run` of a terminal container, `exec -t`, without a console socket: on our terminal,
    put in raw mode, its size copied and kept in sync (SIGWINCH), restored on exit."""
    master, slave = os.openpty()
    _set_size(master, 33, 90)
    before = termios.tcgetattr(slave)
    if verb == "run":
        b = rt.bundle(tty_config(["sh"]))
        cid = rt.new_id()
        argv = rt.argv("run", "--bundle", b.path, cid)
    else:
        cid = _running(rt)
        argv = rt.argv("exec", "-t", cid, "sh")

    def make_ctty():
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                         preexec_fn=make_ctty)  # fmt: skip
    pty = Pty(master, "caller")
    try:
        shell_ready(pty)
        assert stty_size(pty) == (33, 90)
        raw = termios.tcgetattr(slave)
        assert not raw[3] & (termios.ICANON | termios.ECHO)  # our terminal is raw meanwhile
        _set_size(master, 44, 100)  # the kernel sends SIGWINCH to the runtime
        wait_for(lambda: stty_size(pty) == (44, 100), "the new size reached the container")
        pty.write("exit 5\n")
        assert p.wait(TIMEOUT) == 5
        assert termios.tcgetattr(slave) == before  # restored
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        pty.close()
        os.close(slave)
