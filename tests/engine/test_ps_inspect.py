"""`ps` and `inspect`: Docker's columns, flags, filters, Go templates and JSON shapes,
compared with podman's where Docker's would be (podman 4.3's `inspect` and `ps --format
json`, the same containers made by both)."""

import json
import shutil

import pytest
from enginekit import BUSYBOX, DEBIAN, inspect, ps
from registrykit import PODMAN, Podman


def _setup(sj):
    sj.ok("container", "run", "-d", "--name", "up", "-l", "tier=web", BUSYBOX, "sleep", "1000")
    sj.ok("container", "run", "--name", "done0", BUSYBOX, "true")
    assert sj("container", "run", "--name", "done3", "-l", "tier=db", BUSYBOX, "sh", "-c",
              "exit 3").rc == 3  # fmt: skip
    sj.ok("container", "create", "--name", "new", DEBIAN, "true")


def test_ps_columns_and_flags(sj):
    _setup(sj)
    lines = sj.ok("container", "ps").out.splitlines()
    assert lines[0].split("   ") == ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED",
                                    "STATUS", "PORTS", "NAMES"] or lines[0].startswith(
        "CONTAINER ID   IMAGE")  # fmt: skip
    assert len(lines) == 2 and lines[1].endswith("up") and "Up " in lines[1]
    assert '"sleep 1000"' in lines[1]
    all_ = sj.ok("container", "ps", "-a").out.splitlines()
    assert len(all_) == 5
    assert [ln.split()[-1] for ln in all_[1:]] == ["new", "done3", "done0", "up"]  # newest first
    assert "Exited (3)" in all_[2] and "Created" in all_[1]
    q = sj.ok("container", "ps", "-aq").out.split()
    assert len(q) == 4 and all(len(i) == 12 for i in q)
    assert all(len(i) == 64 for i in sj.ok("container", "ps", "-aq", "--no-trunc").out.split())
    assert sj.ok("container", "ps", "-n", "2", "--format", "{{.Names}}").out == "new\ndone3\n"
    assert sj.ok("container", "ps", "-l", "--format", "{{.Names}}").out == "new\n"
    s = sj.ok("container", "ps", "-s", "--format", "{{.Names}} {{.Size}}").out
    assert s.startswith("up 0B (virtual 1.98MB)") or "(virtual" in s
    long_cmd = sj.ok("container", "ps", "-a", "--no-trunc", "--format", "{{.Command}}").out
    assert '"sh -c exit 3"' in long_cmd


@pytest.mark.parametrize("flt,names", [
    (["status=exited"], {"done0", "done3"}),
    (["status=created"], {"new"}),
    (["status=running", "status=created"], {"up", "new"}),
    (["name=^done"], {"done0", "done3"}),
    (["label=tier"], {"up", "done3"}),
    (["label=tier=db"], {"done3"}),
    (["exited=3"], {"done3"}),
    (["ancestor=" + DEBIAN], {"new"}),
    (["status=exited", "label=tier"], {"done3"}),
])  # fmt: skip
def test_ps_filters(sj, flt, names):
    _setup(sj)
    args = [a for f in flt for a in ("--filter", f)]
    got = sj.ok("container", "ps", "-a", *args, "--format", "{{.Names}}").out.split()
    assert set(got) == names
    cid = inspect(sj, "up")["Id"]
    assert sj.ok("container", "ps", "-a", "--filter", f"id={cid[:6]}", "--format",
                 "{{.Names}}").out == "up\n"  # fmt: skip
    r = sj("container", "ps", "--filter", "status=bogus")
    assert r.rc == 1 and "invalid filter" in r.err


def test_ps_formats(sj):
    _setup(sj)
    t = sj.ok("container", "ps", "-a", "--format", "table {{.Names}}\\t{{.State}}").out
    assert t.splitlines()[0].split() == ["NAMES", "STATE"]
    assert "done3     exited" in t or "done3   exited" in t
    assert sj.ok("container", "ps", "--format", '{{.Label "tier"}}').out == "web\n"
    assert sj.ok("container", "ps", "--format", "{{.Labels}}").out == "tier=web\n"
    rows = [json.loads(line) for line in
            sj.ok("container", "ps", "-a", "--format", "json").out.splitlines()]  # fmt: skip
    assert set(rows[0]) == {"Command", "CreatedAt", "ID", "Image", "Labels", "LocalVolumes",
                            "Mounts", "Names", "Networks", "Ports", "RunningFor", "Size",
                            "State", "Status"}  # fmt: skip
    r = sj("container", "ps", "--format", "{{.Nope")
    assert r.rc == 1 and "template" in r.err


def test_inspect_shape_and_format(sj):
    _setup(sj)
    i = inspect(sj, "up")
    for k in ("Id", "Created", "Path", "Args", "State", "Image", "ResolvConfPath",
              "HostnamePath", "HostsPath", "LogPath", "Name", "RestartCount", "Driver",
              "Platform", "MountLabel", "ProcessLabel", "AppArmorProfile", "ExecIDs",
              "HostConfig", "GraphDriver", "Mounts", "Config", "NetworkSettings"):  # fmt: skip
        assert k in i, k
    assert (i["Path"], i["Args"]) == ("sleep", ["1000"])
    assert i["Image"].startswith("sha256:") and i["Config"]["Image"] == BUSYBOX
    assert i["Config"]["Labels"] == {"tier": "web"}
    assert "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in i["Config"][
        "Env"]  # fmt: skip
    assert i["GraphDriver"]["Data"]["MergedDir"].endswith("/rootfs")
    f = sj.ok("container", "inspect", "-f",
              '{{.State.Status}} {{index .Config.Labels "tier"}} {{json .Config.Cmd}} '
              "{{range .Args}}[{{.}}]{{end}} {{if .State.Running}}yes{{else}}no{{end}}",
              "up").out  # fmt: skip
    assert f == 'running web ["sleep","1000"] [1000] yes\n'
    assert sj.ok("container", "inspect", "-f", "{{.State.ExitCode}}", "done3").out == "3\n"
    assert json.loads(sj.ok("container", "inspect", "-s", "up").out)[0]["SizeRootFs"] > 0


def _types(d):
    return {k: type(v).__name__ for k, v in d.items()}


@pytest.mark.skipif(not PODMAN, reason="podman is not installed")
def test_shapes_match_podman(sj, tmp_path):
    """The keys Docker's inspect has and podman's too: ours have them, with the same JSON
    types; State likewise.  podman makes the same container from the same image (created,
    not started: podman needs no runtime for that)."""
    if not shutil.which("skopeo"):
        pytest.skip("skopeo is not installed")
    pod = Podman(tmp_path)
    try:
        pod("pull", "-q", "--tls-verify=false", BUSYBOX)
        pod("create", "--name", "same", "-l", "k=v", BUSYBOX, "sleep", "1000")
        sj.ok("container", "create", "--name", "same", "-l", "k=v", BUSYBOX, "sleep", "1000")
        theirs = json.loads(pod("inspect", "same"))[0]
        ours = inspect(sj, "same")
        docker_keys = {"Id", "Created", "Path", "Args", "State", "Image", "ResolvConfPath",
                       "HostnamePath", "HostsPath", "Name", "RestartCount", "Driver",
                       "MountLabel", "ProcessLabel", "AppArmorProfile", "ExecIDs",
                       "GraphDriver", "Mounts", "NetworkSettings", "Config",
                       "HostConfig"}  # fmt: skip
        common = docker_keys & set(theirs)
        assert common <= set(ours)
        t_ours, t_theirs = _types(ours), _types(theirs)
        for k in common - {"ExecIDs"}:  # podman: [] where Docker has null
            assert t_ours[k] == t_theirs[k], (k, t_ours[k], t_theirs[k])
        st = set(theirs["State"]) & {"Status", "Running", "Paused", "Restarting", "OOMKilled",
                                     "Dead", "Pid", "ExitCode", "Error", "StartedAt",
                                     "FinishedAt"}  # fmt: skip
        for k in st:
            assert type(ours["State"][k]) is type(theirs["State"][k]), k
        assert ours["State"]["Status"] == theirs["State"]["Status"] == "created"
        assert ours["Path"] == theirs["Path"] and ours["Args"] == theirs["Args"]
        assert ours["Config"]["Labels"]["k"] == theirs["Config"]["Labels"]["k"] == "v"
        assert ours["Config"]["Cmd"] == theirs["Config"]["Cmd"] == ["sleep", "1000"]
        # ps: the same container, the same facts
        their_ps = json.loads(pod("ps", "-a", "--format", "json"))[0]
        our_ps = ps(sj)["same"]
        assert their_ps["Names"] == [our_ps["Names"]]
        assert their_ps["State"] == our_ps["State"] == "created"
        # Docker shows the image as it was named; podman adds the tag
        assert their_ps["Image"] == our_ps["Image"] + ":latest"
        assert their_ps["Labels"]["k"] == "v" and our_ps["Labels"] == "k=v"
    finally:
        pod.close()
