"""The engine's config file (sangja/settings.py): TOML at $SANGJA_CONFIG (default
/etc/sangja/engine.toml), flat keys named as Docker's daemon.json names them; every key
checked, an unknown one an error naming it; the older JSON form read the same way; what
the engine does follows it (registry, storage driver, logging), the environment wins."""

import json
import textwrap

import pytest
from registrykit import PLAIN, Sangja

FULL = """
data-root = "/var/lib/sangja-test"
storage-driver = "vfs"
runtime = "/opt/sangja/bin/sangja"
default-registry = "registry.example:5000"
insecure-registries = ["10.0.0.5:5000", "10.1.0.0/16"]
certs-d = ["/etc/sangja/certs.d"]
max-concurrent-downloads = 2
max-concurrent-uploads = 4
push-chunk-size = 1048576
signature-policy = "/etc/sangja/policy.json"
content-trust = false
log-driver = "json-file"
cgroup-parent = "/sangja-test"
log-opts = { max-size = "10m", max-file = 1 }
bip = "172.30.0.1/16"
mtu = 1450
dns = ["10.0.0.2", "fd00::53"]
dns-search = ["example.org"]
dns-opts = ["ndots:2"]
default-address-pools = [{ base = "10.90.0.0/16", size = 24 }]
firewall = "netavark"

[default-ulimits]
nofile = "1024:4096"
nproc = { soft = 100, hard = 200 }
core = 0
"""


@pytest.fixture
def conf(tmp_path, monkeypatch):
    """Write a config file and point SANGJA_CONFIG at it (for the CLI and in-process)."""

    def write(text, name="engine.toml"):
        p = tmp_path / name
        p.write_text(textwrap.dedent(text))
        monkeypatch.setenv("SANGJA_CONFIG", str(p))
        return str(p)

    return write


def test_every_key_is_read_and_typed(conf):
    from sangja import settings

    path = conf(FULL)
    got = settings.load(path)
    assert got["storage-driver"] == "vfs" and got["mtu"] == 1450
    assert got["default-ulimits"] == {"nofile": (1024, 4096), "nproc": (100, 200), "core": (0, 0)}
    assert got["log-opts"] == {"max-size": "10m", "max-file": "1"}
    assert got["default-address-pools"] == [{"base": "10.90.0.0/16", "size": 24}]
    assert got["firewall"] == "netavark"
    assert set(got) == set(settings.SCHEMA)  # the example names every key there is


@pytest.mark.parametrize("text,msg", [
    ('registry = "x"\n', 'unknown key "registry"'),
    ('[registries]\ndefault = "x"\n', 'unknown key "registries" (keys are flat'),
    ('log-opts = { max-size = "1m", compress = "yes" }\n', 'unknown key "log-opts.compress"'),
    ('[default-ulimits]\nnofiles = "1:2"\n', 'unknown key "default-ulimits.nofiles"'),
    ('[default-ulimits]\nnofile = { soft = 1, hardd = 2 }\n',
     'unknown key "default-ulimits.nofile.hardd"'),
    ('default-address-pools = [{ base = "10.0.0.0/8", size = 24, gw = "x" }]\n',
     'unknown key "default-address-pools.0.gw"'),
    ('mtu = "1500"\n', 'key "mtu": want an integer from 68 to 65535'),
    ('firewall = "nft"\n', 'key "firewall": want one of'),
    ('mtu = 20\n', 'key "mtu": want an integer from 68 to 65535, got 20'),
    ('bip = "10.55.0.0/24"\n', 'key "bip": want the bridge\'s own address in its subnet (e.g.'
     ' 10.55.0.1/24)'),
    ('bip = "10.55.0.1"\n', 'key "bip": want an IPv4 address with its prefix'),
    ('bip = "fd00::1/64"\n', 'key "bip": want an IPv4 address with its prefix'),
    ('default-address-pools = [{ base = "10.0.0.0/16", size = 8 }]\n',
     'key "default-address-pools": size 8 does not fit in 10.0.0.0/16'),
    ('storage-driver = "zfs"\n', 'key "storage-driver": want one of overlay, overlay2, vfs'),
    ('dns = ["not-an-ip"]\n', "key \"dns\": want IP addresses, got 'not-an-ip'"),
    ('bip = "300.1.1.1/8"\n', 'key "bip": want an address with its prefix'),
    ('data-root = "relative/dir"\n', 'key "data-root": want an absolute path'),
    ('[default-ulimits]\nnofile = "10:5"\n', "soft limit 10 is above the hard limit 5"),
    ('mtu = \n', "invalid TOML"),
])  # fmt: skip
def test_bad_files_are_errors_that_name_the_key(tmp_path, text, msg):
    s = Sangja(tmp_path)
    p = tmp_path / "engine.toml"
    p.write_text(text)
    s.env["SANGJA_CONFIG"] = str(p)
    r = s.fail("info")
    assert msg in r.err, r
    assert r.err.startswith(f"sangja: {p}: ")
    assert len(r.err.strip().splitlines()) == 1
    # the same check for the commands that only read registry settings
    r = s.fail("image", "pull", "busybox")
    assert msg in r.err


def test_the_engine_follows_the_file_and_the_environment_wins(tmp_path):
    s = Sangja(tmp_path)
    p = tmp_path / "engine.toml"
    p.write_text(FULL.replace('data-root = "/var/lib/sangja-test"\n', ""))
    s.env["SANGJA_CONFIG"] = str(p)
    info = json.loads(s.ok("info", "--format", "json").out)
    assert info["Driver"] == "vfs"
    assert info["IndexServerAddress"] == "registry.example:5000"
    assert info["LoggingDriver"] == "k8s-file"  # json-file is conmon's k8s-file here
    assert info["InsecureRegistries"] == ["10.0.0.5:5000", "10.1.0.0/16"]
    assert info["RegistryConfig"]["InsecureRegistryCIDRs"] == ["10.1.0.0/16"]
    assert info["ConfigFile"] == str(p)
    assert info["Runtimes"] == {"sangja": {"path": "/opt/sangja/bin/sangja"}}
    s.env["SANGJA_DEFAULT_REGISTRY"] = "other.example"
    s.env["SANGJA_STORAGE_DRIVER"] = "overlay"
    info = json.loads(s.ok("info", "--format", "json").out)
    assert info["IndexServerAddress"] == "other.example" and info["Driver"] == "overlay"
    info = json.loads(s.ok("--storage-driver", "vfs", "info", "--format", "json").out)
    assert info["Driver"] == "vfs"  # the flag wins over everything


def test_the_older_json_file_is_read_with_the_same_keys(tmp_path):
    s = Sangja(tmp_path)
    p = tmp_path / "daemon.json"
    p.write_text(json.dumps({"default-registry": "json.example", "storage-driver": "vfs"}))
    s.env["SANGJA_CONFIG"] = str(p)
    info = json.loads(s.ok("info", "--format", "json").out)
    assert (info["IndexServerAddress"], info["Driver"]) == ("json.example", "vfs")
    p.write_text(json.dumps({"default-registyr": "typo.example"}))
    assert 'unknown key "default-registyr"' in s.fail("info").err


def test_default_registry_from_the_file_is_where_pull_goes(sj, fixtures, tmp_path):
    fixtures.registry("plain")
    p = tmp_path / "engine.toml"
    p.write_text(f'default-registry = "{PLAIN}"\n')
    sj.env["SANGJA_CONFIG"] = str(p)
    r = sj.ok("image", "pull", "test/busybox")
    assert r.out.strip().endswith(f"{PLAIN}/test/busybox:latest")
    assert sj.ok("image", "ls", "-q").out.strip()


def test_containers_get_the_files_defaults(sj, tmp_path):
    """default-ulimits under the container's own --ulimit, log-driver/log-opts for a
    container that names no driver, and `runtime`: the program conmon runs."""
    import os

    from registrykit import sangja_binary

    busybox = f"{PLAIN}/test/busybox"
    calls = tmp_path / "runtime-calls"
    wrapper = tmp_path / "runtime"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexec {sangja_binary()} "$@"\n')
    os.chmod(wrapper, 0o755)
    p = tmp_path / "engine.toml"
    p.write_text(textwrap.dedent(f"""\
        runtime = "{wrapper}"
        log-opts = {{ max-size = "5m" }}
        [default-ulimits]
        nofile = "1000:2000"
        stack = "8388608:16777216"
        """))  # fmt: skip
    sj.env["SANGJA_CONFIG"] = str(p)
    out = sj.ok("container", "run", "--rm", "--ulimit", "stack=4194304:4194304", busybox, "sh",
                "-c", "ulimit -Sn; ulimit -Hn; ulimit -Ss; ulimit -Hs").out  # fmt: skip
    assert out.split() == ["1000", "2000", "4096", "4096"]  # ulimit -s counts KiB
    assert " create " in f" {calls.read_text()}"  # conmon ran the configured program
    sj.ok("container", "create", "--name", "a", busybox)
    sj.ok("container", "create", "--name", "b", "--log-opt", "max-size=1m", busybox)
    sj.ok("container", "create", "--name", "c", "--log-driver", "none", busybox)
    lc = {n: json.loads(sj.ok("container", "inspect", n).out)[0]["HostConfig"]["LogConfig"]
          for n in "abc"}  # fmt: skip
    assert lc["a"] == {"Type": "k8s-file", "Config": {"max-size": "5m"}}
    assert lc["b"] == {"Type": "k8s-file", "Config": {"max-size": "1m"}}
    assert lc["c"] == {"Type": "none", "Config": {}}  # another driver: not its options
    p.write_text('log-driver = "none"\n')
    sj.ok("container", "create", "--name", "d", busybox)
    d = json.loads(sj.ok("container", "inspect", "d").out)[0]["HostConfig"]["LogConfig"]
    assert d["Type"] == "none"
    sj.ok("container", "rm", "a", "b", "c", "d")
    p.write_text('runtime = "/no/such/sangja"\n')
    r = sj.fail("container", "run", "--rm", busybox, "true")
    assert "/no/such/sangja" in r.err and r.rc == 125
    assert sj.ok("container", "ps", "-aq").out == ""
