"""pause / resume: every process of the container stops (cgroup freezer) and goes on."""

import os
import time

from rtkit import cgroup_dir, config, read, wait_for


def counter_config(rt):
    """A container counting as fast as it can into a host file."""
    outdir = os.path.join(rt.workdir, f"count-{len(rt.ids)}")
    os.makedirs(outdir)
    c = config(["sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /out/n; done"])
    c["mounts"].append(
        {"destination": "/out", "type": "bind", "source": outdir, "options": ["rbind", "rw"]}
    )
    return c, os.path.join(outdir, "n")


def test_pause_stops_the_counter_and_resume_continues(rt):
    c, counter = counter_config(rt)
    cid, pid = rt.created(c)
    rt("start", cid).ok()
    wait_for(lambda: read(counter).strip(), "the counter runs")
    rt("pause", cid).ok()
    assert rt.status(cid) == "paused"
    assert read(f"{cgroup_dir(pid, 'freezer')}/freezer.state").strip() == "FROZEN"
    frozen_at = read(counter)
    time.sleep(0.3)  # a running counter moves thousands of times meanwhile
    assert read(counter) == frozen_at
    rt("resume", cid).ok()
    assert rt.status(cid) == "running"
    wait_for(lambda: read(counter) not in ("", frozen_at), "the counter moves again")


def test_pause_and_resume_a_created_container(rt):
    cid, pid = rt.created(config(["true"]))
    rt("pause", cid).ok()
    assert rt.status(cid) == "paused"
    rt("resume", cid).ok()
    assert rt.status(cid) == "created"


def test_pause_twice_and_resume_running_fail(rt):
    cid, pid = rt.created(config(["sleep", "1000"]))
    rt("start", cid).ok()
    rt("pause", cid).ok()
    assert "container not running" in rt("pause", cid).failed(1).err
    rt("resume", cid).ok()
    assert "container not paused" in rt("resume", cid).failed(1).err


def test_pause_stopped_container_fails(rt):
    cid, pid = rt.created(config(["true"]))
    rt("start", cid).ok()
    rt.wait_stopped(cid)
    assert "container not running" in rt("pause", cid).failed(1).err
    assert "container not paused" in rt("resume", cid).failed(1).err


def test_delete_force_of_a_paused_container(rt):
    cid, pid = rt.created(config(["sh", "-c", "sleep 1000 & exec sleep 1001"]))
    rt("start", cid).ok()
    rt("pause", cid).ok()
    rt("delete", "--force", cid).ok()
    rt.assert_nothing_left(cid)
