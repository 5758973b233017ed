"""A container's pty has the client's terminal size before its process runs (Docker's
HostConfig.ConsoleSize / ExecConfig.ConsoleSize), not only after a resize that races
with the process's first question."""

from enginekit import BUSYBOX, Terminal


def test_create_t_on_a_terminal_sizes_the_pty_before_start(sj):
    # created on a 33x101 terminal, started without anyone attached: no resize is ever
    # sent, so the size the process sees can only be the one given at create
    t = Terminal(sj, "container", "create", "-t", "--name", "sz", BUSYBOX, "stty", "size",
                 size=(33, 101))  # fmt: skip
    assert t.wait() == 0, t.out
    assert sj.ok("container", "inspect", "--format", "{{json .HostConfig.ConsoleSize}}",
                 "sz").out.strip() == "[33,101]"  # fmt: skip
    sj.ok("container", "start", "sz")
    sj.ok("container", "wait", "sz")
    assert sj.ok("container", "logs", "sz").out.split() == ["33", "101"]


def test_run_it_sees_its_size_at_once(sj):
    t = Terminal(sj, "container", "run", "--rm", "-it", BUSYBOX, "stty", "size",
                 size=(41, 97))  # fmt: skip
    assert t.wait() == 0, t.out
    assert b"41 97" in t.out


def test_exec_it_sees_its_size_at_once(sj):
    sj.ok("container", "run", "-d", "--name", "ex", BUSYBOX, "sleep", "1000")
    t = Terminal(sj, "container", "exec", "-it", "ex", "stty", "size", size=(29, 111))
    assert t.wait() == 0, t.out
    assert b"29 111" in t.out


def test_without_a_terminal_nothing_is_sized(sj):
    sj.ok("container", "create", "-t", "--name", "nt", BUSYBOX, "true")
    out = sj.ok("container", "inspect", "--format", "{{json .HostConfig.ConsoleSize}}", "nt")
    assert out.out.strip() == "[0,0]"
