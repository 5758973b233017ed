"""update: new limits for a live container, from runc's flags or the LinuxResources JSON
engines send (podman: --resources=FILE, docker: -r - on stdin)."""

import copy
import json
import os

import pytest
from rtkit import (
    NO_BLKIO_WEIGHT,
    UNSET_RESOURCES,
    blkio_weight_file,
    cgroup_dir,
    config,
    read,
    v1_files,
)

from sangja.errors import SangjaError
from sangja.runtime import control

MiB = 1 << 20


def live(rt, memory=64 * MiB):
    c = config(["sleep", "1000"])
    c["linux"]["resources"]["memory"] = {"limit": memory}
    cid, pid = rt.created(c)
    rt("start", cid).ok()
    return cid, pid


def value(pid, ctrl, f):
    return read(f"{cgroup_dir(pid, ctrl)}/{f}").strip()


def test_update_memory_flag(rt):
    cid, pid = live(rt)
    assert value(pid, "memory", "memory.limit_in_bytes") == str(64 * MiB)
    r = rt("update", "--memory", "96m", cid).ok()
    assert r.out == ""
    assert value(pid, "memory", "memory.limit_in_bytes") == str(96 * MiB)


def test_update_flags(rt):
    cid, pid = live(rt)
    swap = "memory.memsw.limit_in_bytes" in v1_files("memory")
    rt("update", "--cpu-quota", "50000", "--cpu-period", "100000", "--cpu-share", "512",
       "--pids-limit", "50", "--cpuset-cpus", "0", "--memory-reservation=32m",
       *(["--memory-swap", "200m"] if swap else []), cid).ok()  # fmt: skip
    assert value(pid, "cpu", "cpu.cfs_quota_us") == "50000"
    assert value(pid, "cpu", "cpu.cfs_period_us") == "100000"
    assert value(pid, "cpu", "cpu.shares") == "512"
    assert value(pid, "pids", "pids.max") == "50"
    assert value(pid, "cpuset", "cpuset.cpus") == "0"
    assert value(pid, "memory", "memory.soft_limit_in_bytes") == str(32 * MiB)
    if swap:  # else: no swap accounting in this kernel
        assert value(pid, "memory", "memory.memsw.limit_in_bytes") == str(200 * MiB)


def test_update_blkio_weight_flag(rt):
    weight = blkio_weight_file()
    if not weight:
        pytest.skip(NO_BLKIO_WEIGHT)
    cid, pid = live(rt)
    rt("update", "--blkio-weight", "500", cid).ok()
    assert value(pid, "blkio", weight).split()[-1] == "500"


def test_update_resources_file_podman(rt):
    cid, pid = live(rt)
    path = os.path.join(rt.workdir, "res.json")
    with open(path, "w") as f:
        json.dump({"memory": {"limit": 128 * MiB}, "cpu": {"shares": 300}}, f)
    rt("update", f"--resources={path}", cid).ok()
    assert value(pid, "memory", "memory.limit_in_bytes") == str(128 * MiB)
    assert value(pid, "cpu", "cpu.shares") == "300"


NO_SWAP_ACCOUNTING = "this kernel has no swap accounting (memory.memsw.*)"


def need_swap_accounting():
    if "memory.memsw.limit_in_bytes" not in v1_files("memory"):
        pytest.skip(NO_SWAP_ACCOUNTING)


def test_update_resources_stdin_docker(rt):
    """docker sends every field, zeros for "unchanged", and a swap over the new limit."""
    need_swap_accounting()
    cid, pid = live(rt)
    res = copy.deepcopy(UNSET_RESOURCES)
    res["memory"].update(limit=100 * MiB, swap=200 * MiB)
    rt("update", "--resources", "-", cid, input=json.dumps(res)).ok()
    assert value(pid, "memory", "memory.limit_in_bytes") == str(100 * MiB)
    assert value(pid, "memory", "memory.memsw.limit_in_bytes") == str(200 * MiB)
    assert value(pid, "cpu", "cpu.shares") == "1024"
    assert value(pid, "pids", "pids.max") == "max"


def test_update_lowers_memory_and_swap_in_the_right_order(rt):
    """memsw may never be below memory: lowering both writes memory first, raising both
    writes memsw first."""
    need_swap_accounting()
    cid, pid = live(rt, memory=256 * MiB)
    rt("update", "--memory", "256m", "--memory-swap", "512m", cid).ok()
    rt("update", "--memory", "64m", "--memory-swap", "64m", cid).ok()
    assert value(pid, "memory", "memory.memsw.limit_in_bytes") == str(64 * MiB)
    rt("update", "--memory", "300m", "--memory-swap", "600m", cid).ok()
    assert value(pid, "memory", "memory.limit_in_bytes") == str(300 * MiB)
    assert value(pid, "memory", "memory.memsw.limit_in_bytes") == str(600 * MiB)
    rt("update", "--memory", "-1", cid).ok()  # unlimited, swap with it
    assert int(value(pid, "memory", "memory.memsw.limit_in_bytes")) > 1 << 60


def test_update_inside_view(rt):
    """The container sees its new limit in its own cgroup mount."""
    cid, pid = live(rt)
    rt("update", "--pids-limit", "77", cid).ok()
    r = rt("exec", cid, "cat", "/sys/fs/cgroup/pids/pids.max").ok()
    assert r.out.strip() == "77"


def test_update_errors(rt):
    cid, pid = live(rt)
    assert "invalid value for memory" in rt("update", "--memory", "abc", cid).failed(1).err
    assert rt("update", "-r", "-", cid, input="{bad").rc == 1
    assert rt("update", "-r", os.path.join(rt.workdir, "missing.json"), cid).rc == 1
    assert "does not exist" in rt("update", "--memory", "1m", "nosuch").failed(1).err
    assert value(pid, "memory", "memory.limit_in_bytes") == str(64 * MiB)


def test_update_stopped_container_fails(rt):
    cid, pid = rt.created(config(["true"]))
    rt("start", cid).ok()
    rt.wait_stopped(cid)
    assert "container not running" in rt("update", "--memory", "96m", cid).failed(1).err


def test_update_paused_container(rt):
    cid, pid = live(rt)
    rt("pause", cid).ok()
    rt("update", "--memory", "80m", cid).ok()
    assert value(pid, "memory", "memory.limit_in_bytes") == str(80 * MiB)
    assert rt.status(cid) == "paused"


# -- runc's flag forms, without a container ----------------------------------------------------


@pytest.mark.parametrize(
    "text,n",
    [
        ("100", 100),
        ("96m", 96 * MiB),
        ("96M", 96 * MiB),
        ("1.5g", 3 << 29),
        ("512KiB", 512 << 10),
        ("2 MB", 2 * MiB),
        ("1t", 1 << 40),
    ],
)
def test_parse_size(text, n):
    assert control.parse_size(text) == n


@pytest.mark.parametrize("text", ["abc", "", "m", "-5", "1x", "5ib"])
def test_parse_size_refuses(text):
    with pytest.raises(SangjaError, match="invalid size"):
        control.parse_size(text)


def test_resources_from_flags():
    res = control.resources_from_flags(
        {
            "memory": "64m",
            "memory_swap": "-1",
            "cpu_share": "512",
            "cpu_quota": "-1",
            "cpuset_cpus": "0-1",
            "pids_limit": "100",
            "blkio_weight": "300",
        }
    )
    assert res == {
        "memory": {"limit": 64 * MiB, "swap": -1},
        "cpu": {"shares": 512, "quota": -1, "cpus": "0-1"},
        "pids": {"limit": 100},
        "blockIO": {"weight": 300},
    }
    with pytest.raises(SangjaError, match="invalid value for cpu-period"):
        control.resources_from_flags({"cpu_period": "-5"})
