"""docker-py (Debian's python3-docker 5, run by /usr/bin/python3) against the service:
its high-level API (pull, images, containers.run, logs, exec_run, wait, remove), no client
code of ours."""

import json

import pytest
from apikit import dockerpy_missing
from enginekit import BUSYBOX

SCRIPT = r"""
import json, sys
import docker

ref = sys.argv[1]
c = docker.from_env(version="1.41")
out = {}
out["ping"] = c.ping()
img = c.images.pull(ref, tag="latest")
out["image_tags"] = img.tags
out["listed"] = sorted(t for i in c.images.list() for t in i.tags)
# docker-py reads the output only when inspect names the log driver json-file
out["run"] = c.containers.run(ref + ":latest", ["sh", "-c", "echo hi; echo oops >&2"],
                              remove=True, stderr=True).decode()
try:
    c.containers.run(ref + ":latest", ["sh", "-c", "exit 2"], remove=True)
except docker.errors.ContainerError as e:
    out["run_failed"] = e.exit_status
once = c.containers.run(ref + ":latest", ["sh", "-c", "echo hi; echo oops >&2"], detach=True)
out["once_wait"] = once.wait()["StatusCode"]
out["once"] = once.logs(stdout=True, stderr=True).decode()
out["run_err"] = once.logs(stdout=False, stderr=True).decode()
once.remove()
box = c.containers.run(ref + ":latest", ["sh", "-c", "echo started; sleep 300"],
                       detach=True, name="pybox", environment={"K": "v"})
for chunk in box.logs(stream=True, follow=True):
    out["first_log"] = chunk.decode()
    break
box.reload()
out["status"] = box.status
r = box.exec_run(["sh", "-c", "echo $K; exit 3"], environment={"K": "from-exec"})
out["exec"] = [r.exit_code, r.output.decode()]
r = box.exec_run(["sh", "-c", "echo o; echo e >&2"], demux=True)
out["demux"] = [r.output[0].decode(), r.output[1].decode()]
out["names"] = [x.name for x in c.containers.list()]
box.kill()
out["wait"] = box.wait()["StatusCode"]
box.remove()
out["after"] = [x.name for x in c.containers.list(all=True)]
try:
    c.containers.get("pybox")
except docker.errors.NotFound as e:
    out["notfound"] = str(e.explanation)
try:
    c.containers.run("nothing/here:x", "true")
except docker.errors.ImageNotFound:
    out["pull_missing"] = "ImageNotFound"
except docker.errors.APIError as e:
    out["pull_missing"] = f"APIError {e.status_code}"
print(json.dumps(out))
"""


def test_dockerpy_high_level(api):
    why = dockerpy_missing()
    if why:
        pytest.skip(why)
    r = api.python(SCRIPT, BUSYBOX)
    assert r.rc == 0, r
    out = json.loads(r.out.strip().splitlines()[-1])
    assert out["ping"] is True
    assert f"{BUSYBOX}:latest" in out["image_tags"]
    assert f"{BUSYBOX}:latest" in out["listed"]
    assert out["run_failed"] == 2
    assert out["once_wait"] == 0
    assert sorted(out["run"].splitlines()) == ["hi", "oops"]
    assert sorted(out["once"].splitlines()) == ["hi", "oops"]
    assert out["run_err"] == "oops\n"
    assert out["first_log"] == "started\n"
    assert out["status"] == "running"
    assert out["exec"] == [3, "from-exec\n"]
    assert out["demux"] == ["o\n", "e\n"]
    assert out["names"] == ["pybox"]
    assert out["wait"] == 137
    assert out["after"] == []
    assert "No such container: pybox" in out["notfound"]
    assert out["pull_missing"] in ("ImageNotFound", "APIError 404", "APIError 500"), out


NET_SCRIPT = r"""
import json, sys
import docker

ref = sys.argv[1] + ":latest"
c = docker.from_env(version="1.41")
out = {}
c.images.pull(ref)
ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet="10.89.11.0/24")])
net = c.networks.create("pynet", driver="bridge", ipam=ipam, labels={"by": "py"})
out["net_listed"] = [n.name for n in c.networks.list(filters={"label": "by=py"})]
vol = c.volumes.create("pyvol", labels={"by": "py"})
out["vol_listed"] = [v.name for v in c.volumes.list(filters={"label": "by=py"})]
server = c.containers.run(ref, ["sh", "-c", "echo kept > /data/f; httpd -f -p 80 -h /data"],
                          detach=True, name="pyserver", network="pynet",
                          volumes={"pyvol": {"bind": "/data", "mode": "rw"}})
net.reload()
out["members"] = [x.name for x in net.containers]
client = c.containers.run(ref, ["sh", "-c", "for i in $(seq 100); do wget -q -O - "
                                "http://pyserver/f && exit 0; sleep 0.1; done; exit 1"],
                          network="pynet", remove=True)
out["fetched"] = client.decode()
other = c.containers.run(ref, ["sleep", "300"], detach=True, name="pyother")
net.connect(other, aliases=["other-alias"])
other.reload()
out["other_nets"] = sorted(other.attrs["NetworkSettings"]["Networks"])
net.disconnect(other)
other.reload()
out["other_nets_after"] = sorted(other.attrs["NetworkSettings"]["Networks"])
reader = c.containers.run(ref, ["cat", "/v/f"], volumes=["pyvol:/v:ro"], remove=True)
out["read"] = reader.decode()
try:
    vol.remove()
except docker.errors.APIError as e:
    out["vol_in_use"] = e.status_code
for x in (server, other):
    x.remove(force=True)
net.remove()
out["pruned_volumes"] = c.volumes.prune()["VolumesDeleted"]
try:
    c.networks.get("pynet")
except docker.errors.NotFound:
    out["net_gone"] = True
print(json.dumps(out))
"""


def test_dockerpy_networks_and_volumes(api):
    import os
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "net"))
    import netkit

    why = dockerpy_missing() or netkit.missing_tools()
    if why:
        pytest.skip(why)
    r = api.python(NET_SCRIPT, BUSYBOX)
    assert r.rc == 0, r
    out = json.loads(r.out.strip().splitlines()[-1])
    assert out["net_listed"] == ["pynet"] and out["vol_listed"] == ["pyvol"], out
    assert out["members"] == ["pyserver"]
    assert out["fetched"] == "kept\n"
    assert out["other_nets"] == ["bridge", "pynet"]
    assert out["other_nets_after"] == ["bridge"]
    assert out["read"] == "kept\n"
    assert out["vol_in_use"] == 409
    assert out["pruned_volumes"] == ["pyvol"]
    assert out["net_gone"] is True


PUSH_SCRIPT = r"""
import json, sys
import docker

src, dst = sys.argv[1] + ":latest", sys.argv[2]
repo, tag = dst.rsplit(":", 1)
c = docker.from_env(version="1.41")
out = {}
img = c.images.pull(src)
img.tag(repo, tag)
events = list(c.images.push(repo, tag=tag, stream=True, decode=True))
out["errors"] = [e for e in events if "error" in e]
out["digest"] = [e["aux"]["Digest"] for e in events if "aux" in e]
c.images.remove(dst)
out["gone"] = dst not in [t for i in c.images.list() for t in i.tags]
back = c.images.pull(repo, tag=tag)
out["back"] = back.tags
out["same"] = back.id == img.id
print(json.dumps(out))
"""


def test_dockerpy_push_and_pull_back(api, push_registry):
    """images.push streams Docker's progress JSON with the pushed digest; the image comes
    back from the registry the same."""
    why = dockerpy_missing()
    if why:
        pytest.skip(why)
    reg = push_registry("plain")
    dst = f"{reg.addr}/py/box:v1"
    r = api.python(PUSH_SCRIPT, BUSYBOX, dst)
    assert r.rc == 0, r
    out = json.loads(r.out.strip().splitlines()[-1])
    assert out["errors"] == [] and len(out["digest"]) == 1
    assert out["digest"][0].startswith("sha256:")
    assert out["gone"] and dst in out["back"] and out["same"], out


STATS_SCRIPT = r"""
import json, sys
import docker

c = docker.from_env(version="1.41")
box = c.containers.run(sys.argv[1] + ":latest", ["sleep", "300"], detach=True, name="pystats")
samples = []
for s in box.stats(stream=True, decode=True):
    samples.append({"read": s["read"], "mem": s["memory_stats"].get("usage", 0),
                    "cpu": s["cpu_stats"]["cpu_usage"]["total_usage"], "pids": s["pids_stats"]})
    if len(samples) == 2:
        break
one = box.stats(stream=False)
box.remove(force=True)
print(json.dumps({"samples": samples, "one": sorted(one)}))
"""


def test_dockerpy_stats_stream_and_one_shot(api):
    """GET /containers/{id}/stats streams a sample a second until the client stops reading;
    stream=false answers one."""
    why = dockerpy_missing()
    if why:
        pytest.skip(why)
    api.ok("pull", BUSYBOX)
    r = api.python(STATS_SCRIPT, BUSYBOX)
    assert r.rc == 0, r
    out = json.loads(r.out.strip().splitlines()[-1])
    first, second = out["samples"]
    assert first["read"] < second["read"]  # two samples, one after the other
    assert second["mem"] > 0 and second["pids"].get("current", 0) >= 1, out
    assert {"cpu_stats", "memory_stats", "pids_stats", "read"} <= set(out["one"])
