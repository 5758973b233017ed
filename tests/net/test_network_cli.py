"""`sangja network ls|inspect|create|rm|prune`: Docker's flags, output and exit codes, in a
network namespace of the test's own with a private engine root."""

import json
import os
import subprocess

import pytest

A = "a" * 64


@pytest.fixture
def sj(netns, tmp_path):
    sangja = os.environ.get("SANGJA") or "sangja"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANGJA_")}
    env["SANGJA_ROOT"] = str(tmp_path / "root")

    def run(*args, input=None):
        return subprocess.run([sangja, "--root", str(tmp_path / "run"), *args], env=env,
                              capture_output=True, text=True, input=input, timeout=60)  # fmt: skip

    return run


def ok(r):
    assert r.returncode == 0, r
    return r.stdout


def test_ls_and_inspect_predefined(sj):
    out = ok(sj("network", "ls")).splitlines()
    assert out[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    assert [line.split()[1:] for line in out[1:]] == [["bridge", "bridge", "local"],
                                                      ["host", "host", "local"],
                                                      ["none", "null", "local"]]  # fmt: skip
    ids = ok(sj("network", "ls", "-q")).split()
    assert len(ids) == 3 and all(len(i) == 12 for i in ids)
    (b,) = json.loads(ok(sj("network", "inspect", "bridge")))
    assert b["Name"] == "bridge" and b["Driver"] == "bridge" and b["Scope"] == "local"
    conf = [{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}]
    assert b["IPAM"] == {"Driver": "default", "Options": None, "Config": conf}
    assert b["Containers"] == {} and b["Options"]["com.docker.network.bridge.name"] == "sangja0"
    assert b["Id"].startswith(ids[0])
    # Docker's indentation for inspect
    assert ok(sj("network", "inspect", "none")).startswith('[\n    {\n        "Name": "none"')
    r = sj("network", "inspect", "bridge", "nope")
    assert r.returncode == 1 and json.loads(r.stdout)[0]["Name"] == "bridge"
    assert r.stderr.strip() == "sangja: network nope not found"


def test_create_rm_prune(sj):
    nid = ok(sj("network", "create", "--subnet", "10.9.0.0/24", "--gateway", "10.9.0.254",
                "--ip-range", "10.9.0.128/25", "--label", "team=a", "--internal",
                "-o", "com.docker.network.driver.mtu=1400", "web")).strip()  # fmt: skip
    assert len(nid) == 64
    (w,) = json.loads(ok(sj("network", "inspect", nid[:10])))
    assert w["Name"] == "web" and w["Internal"] and w["Labels"] == {"team": "a"}
    assert w["IPAM"]["Config"] == [{"Subnet": "10.9.0.0/24", "IPRange": "10.9.0.128/25",
                                    "Gateway": "10.9.0.254"}]  # fmt: skip
    assert w["Options"] == {"com.docker.network.driver.mtu": "1400"}
    ok(sj("network", "create", "--ipv6", "--subnet", "fd00:9::/64", "six"))
    (s,) = json.loads(ok(sj("network", "inspect", "six")))
    assert s["EnableIPv6"]
    subnets = [c["Subnet"] for c in s["IPAM"]["Config"]]
    assert subnets[1] == "fd00:9::/64" and subnets[0].startswith("172.18.")
    lines = ok(sj("network", "ls", "--filter", "label=team=a", "--format", "json")).splitlines()
    assert [json.loads(x)["Name"] for x in lines] == ["web"]
    assert json.loads(lines[0])["Internal"] == "true"
    assert ok(sj("network", "ls", "-f", "type=custom", "--format", "json")).count("\n") == 2
    assert ok(sj("network", "ls", "-f", "name=we", "-q")).split() == [nid[:12]]
    # errors: one line, exit 1 (docker's for the daemon's errors)
    for args, msg in (
        (("create", "web"), "network with name web already exists"),
        (("create", "--subnet", "10.9.0.0/16", "x"), "Pool overlaps"),
        (("create", "--gateway", "10.1.1.1", "x"), "corresponding subnet"),
        (("create", "-d", "macvlan", "x"), 'plugin "macvlan" not found'),
        (("create", "-o", "com.docker.network.bridge.enable_icc=false", "x"), "not supported"),
        (("rm", "bridge"), "pre-defined network"),
        (("ls", "-f", "color=red"), "invalid filter 'color'"),
    ):  # fmt: skip
        r = sj("network", *args)
        assert r.returncode == 1 and r.stderr.startswith("sangja: ") and msg in r.stderr, r
    assert sj("network", "create").returncode == 1
    # rm: each name printed; an unknown one is an error unless -f
    r = sj("network", "rm", "web", "ghost")
    assert r.returncode == 1 and r.stdout == "web\n" and "network ghost not found" in r.stderr
    assert ok(sj("network", "rm", "-f", "ghost")) == ""
    # prune asks first; -f does not
    assert ok(sj("network", "prune", input="n\n")).startswith("WARNING!")
    assert "six" in ok(sj("network", "ls"))
    assert ok(sj("network", "prune", "-f")) == "Deleted Networks:\nsix\n"
    assert ok(sj("network", "prune", "-f")) == ""


def test_rm_refuses_a_network_in_use(sj, tmp_path):
    from sangja.engine.endpoints import Endpoints
    from sangja.image.store import Store

    ok(sj("network", "create", "busy"))
    store = Store(str(tmp_path / "root"))
    e = Endpoints(store, str(tmp_path / "run"))
    b = {"Config": {}, "HostConfig": {"NetworkMode": "busy"}, "NetworkingConfig": {}}
    e.attach(A, b)
    r = sj("network", "rm", "busy")
    assert (
        r.returncode == 1 and "network busy id" in r.stderr and "has active endpoints" in r.stderr
    )
    assert ok(sj("network", "prune", "-f")) == ""
    e.forget(A)
    store.close()
    assert ok(sj("network", "rm", "busy")) == "busy\n"
