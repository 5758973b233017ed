"""ps: the container's processes, as ps(1) shows them or as the JSON array of host pids
containerd parses."""

from rtkit import config, read, wait_for


def running(rt, script="sleep 1000 & exec sleep 1001"):
    cid, pid = rt.created(config(["sh", "-c", script]))
    rt("start", cid).ok()
    return cid, pid


def container_pids(pid):
    with open(f"/proc/{pid}/cgroup") as f:
        path = next(line.split(":", 2)[2].strip() for line in f if ":pids:" in line)
    return sorted(int(p) for p in read(f"/sys/fs/cgroup/pids{path}/cgroup.procs").split())


def test_ps_json_is_the_host_pids(rt):
    cid, pid = running(rt)
    wait_for(lambda: len(container_pids(pid)) == 2, "two processes")
    r = rt("ps", "--format", "json", cid).ok()
    pids = r.json()
    assert isinstance(pids, list) and all(isinstance(p, int) for p in pids)
    assert sorted(pids) == container_pids(pid)
    assert pid in pids
    assert r.out.endswith("\n")


def test_ps_table(rt):
    cid, pid = running(rt)
    wait_for(lambda: len(container_pids(pid)) == 2, "two processes")
    lines = rt("ps", cid).ok().out.splitlines()
    assert "PID" in lines[0].split() and "CMD" in lines[0].split()
    col = lines[0].split().index("PID")
    assert sorted(int(line.split()[col]) for line in lines[1:]) == container_pids(pid)


def test_ps_with_ps_arguments(rt):
    cid, pid = running(rt, "exec sleep 1000")
    lines = rt("ps", cid, "-o", "pid,comm").ok().out.split()
    assert lines == ["PID", "COMMAND", str(pid), "sleep"]


def test_ps_of_a_stopped_container(rt):
    cid, pid = rt.created(config(["true"]))
    rt("start", cid).ok()
    rt.wait_stopped(cid)
    assert rt("ps", "--format", "json", cid).ok().out.strip() == "null"  # Go's nil slice
    assert rt("ps", cid).ok().out.split("\n")[1:] == [""]


def test_ps_unknown_container(rt):
    assert "does not exist" in rt("ps", "nosuch").failed(1).err
