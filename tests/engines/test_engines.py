"""Drop-in proof: podman (with conmon), containerd (with ctr and its runc shim) and dockerd
drive sangja in place of runc through ../shared/engines/run.sh's fixed scenarios (run, exit
codes, env/workdir, read-only, stdin, tty, detached + exec + exec -it, user, missing binary,
top/ps, pause/unpause, update/limits, kill, stop, rm, and that nothing is left behind).

Real daemons with private roots; the engines' packages are installed by the Makefile.
"""

import os
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
RUN_SH = os.path.realpath(os.path.join(HERE, "..", "..", "..", "shared", "engines", "run.sh"))


def sangja():
    return os.environ.get("SANGJA") or "/usr/local/bin/sangja"


@pytest.mark.parametrize("engine", ["podman", "containerd", "docker"])
def test_engine_scenarios(engine):
    assert os.path.exists(RUN_SH), f"{RUN_SH} is missing (../shared is beside the repo)"
    p = subprocess.run(
        ["bash", RUN_SH, sangja(), engine],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = p.stdout.splitlines()
    failed = [line for line in lines if line.startswith("FAIL")]
    passed = [line for line in lines if line.startswith("PASS")]
    assert p.returncode == 0 and not failed, "\n".join(failed) + "\n" + p.stderr[-2000:]
    # every scenario ran (cleanup last): a harness that ran nothing is not a pass
    assert len(passed) >= 15 and passed[-1].endswith(" cleanup"), p.stdout
