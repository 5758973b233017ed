"""A create that was killed half-way (an engine's timeout, an OOM kill) leaves something
that `delete --force` must still find and remove, and that never blocks the id forever.

The kill cannot be timed reliably from a test, so these tests lay down exactly what a
killed create leaves at each point (that is the only thing faked here) and then use the
real runtime on it.
"""

import json
import os
import subprocess

import pytest
from rtkit import config

pytestmark = pytest.mark.sangja_only("sangja's own state layout")


def dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_killed_between_mkdir_and_state(rt):
    """Killed right after mkdir: a bare directory. It is not listed; delete -f removes it."""
    cid = rt.new_id()
    os.makedirs(os.path.join(rt.root, cid))
    assert cid not in rt("list", "-q").ok().out.split()
    rt("delete", "--force", cid).ok()
    assert not os.path.exists(os.path.join(rt.root, cid))


def test_killed_during_setup(rt):
    """Killed while its init was being set up: state says who was creating it; once that
    process is gone the container reads as stopped and delete removes it and its cgroups."""
    b = rt.bundle(config(["true"]))
    cid, _ = rt.created(b)
    path = os.path.join(rt.root, cid, "state.json")
    with open(path) as f:
        state = json.load(f)
    rt("delete", "--force", cid).ok()  # the real container goes; its layout is what we keep
    os.makedirs(os.path.join(rt.root, cid))
    state.update(pid=0, pid_start=None, creator=[dead_pid(), 1])
    with open(path, "w") as f:
        json.dump(state, f)
    assert rt.state(cid)["status"] == "stopped"
    assert rt("start", cid).failed().err
    rt("delete", cid).ok()
    assert not os.path.exists(os.path.join(rt.root, cid))
