"""--preserve-fds N with a hole in 3..N+2: the runtime's own fds (exec fifo, --log file,
console socket) must not take the free number and so leak into the container."""

import os
import subprocess

import pytest
from rtkit import TIMEOUT, config


@pytest.mark.sangja_only("a guarantee of sangja's, not checked against runc")
def test_gap_in_preserved_range_gets_none_of_ours(rt, tmp_path):
    log = tmp_path / "log"
    b = rt.bundle(config(["sh", "-c", "for f in 3 4 5; do readlink /proc/self/fd/$f; done"]))
    cid = rt.new_id()
    r, w = os.pipe()

    def fds():  # 3 and 5 open, 4 a hole
        os.dup2(r, 3)
        os.dup2(w, 5)
        os.close(4) if _is_open(4) else None

    argv = [rt.binary, "--root", rt.root, "--log", str(log), "run", "--preserve-fds", "3",
            "--bundle", b.path, cid]  # fmt: skip
    p = subprocess.run(argv, pass_fds=(3, 5), preexec_fn=fds, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=TIMEOUT)  # fmt: skip
    os.close(r)
    os.close(w)
    assert p.returncode == 0, p.stderr
    links = p.stdout.split()
    assert links[0].startswith("pipe:") and links[2].startswith("pipe:"), links
    assert links[1] == "/dev/null", links  # the hole, never the log, fifo or a socket
    assert str(log) not in p.stdout and "exec.fifo" not in p.stdout


def _is_open(fd):
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False
