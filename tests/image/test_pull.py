"""`sangja image pull` against the real registries of make-fixtures.sh: plain HTTP, TLS with
a certs.d CA, basic auth with `sangja login` and ~/.docker/config.json, bearer tokens; by
tag and by digest; a multi-arch index; zstd layers."""

import base64
import json
import os

import pytest
from registrykit import AUTH, PASSWORD, PLAIN, TLS, TOKEN, USER, layer_snapshot


def layer_dirs(sj, ref):
    return json.loads(sj.ok("image", "inspect", ref).out)[0]["GraphDriver"]["Data"]["LowerDir"]


def test_pull_by_tag_plain_http(sj, fixtures):
    fixtures.registry("plain")
    r = sj.ok("image", "pull", f"{PLAIN}/test/busybox")
    assert r.out.strip().splitlines()[-1] == f"{PLAIN}/test/busybox:latest"
    assert f"Digest: {fixtures.digest('test/busybox:latest')}" in r.out
    assert "Status: Downloaded newer image" in r.out
    # not a terminal: plain status lines, no bars or escape sequences
    assert "\x1b[" not in r.out and "Pull complete" in r.out
    info = sj.inspect(f"{PLAIN}/test/busybox")
    assert info["Id"] == fixtures.image_id("test/busybox:latest")
    assert info["RepoTags"] == [f"{PLAIN}/test/busybox:latest"]
    assert info["RepoDigests"] == [f"{PLAIN}/test/busybox@{fixtures.digest('test/busybox:latest')}"]
    assert info["Config"]["Cmd"] == ["sh"]
    assert info["RootFS"]["Layers"] == fixtures.config("busybox")["rootfs"]["diff_ids"]
    lower = info["GraphDriver"]["Data"]["LowerDir"]
    assert os.path.islink(os.path.join(lower, "bin", "sh"))
    sj.assert_consistent()
    # again: nothing to fetch
    r = sj.ok("image", "pull", f"{PLAIN}/test/busybox:latest")
    assert "Image is up to date" in r.out and "Already exists" in r.out


def test_pull_by_digest(sj, fixtures):
    fixtures.registry("plain")
    digest = fixtures.digest("test/busybox:latest")
    r = sj.ok("image", "pull", f"{PLAIN}/test/busybox@{digest}")
    assert r.out.strip().splitlines()[-1] == f"{PLAIN}/test/busybox@{digest}"
    info = sj.inspect(f"{PLAIN}/test/busybox@{digest}")
    assert info["RepoTags"] == []  # a digest names no tag
    assert info["RepoDigests"] == [f"{PLAIN}/test/busybox@{digest}"]
    assert info["Id"] == sj.inspect(info["Id"])["Id"]
    ls = sj.ok("image", "ls", "--digests").out
    assert "<none>" in ls and digest in ls


def test_pull_wrong_digest_is_refused(sj, fixtures):
    fixtures.registry("plain")
    before = sj.store_state()
    bad = "sha256:" + "0" * 64
    r = sj.fail("image", "pull", f"{PLAIN}/test/busybox@{bad}")
    assert "not found" in r.err and "manifest" in r.err
    assert sj.store_state() == before


def test_pull_tls_with_certs_d(sj, fixtures):
    fixtures.registry("tls")
    sj.ok("image", "pull", f"{TLS}/test/busybox")
    assert sj.inspect(f"{TLS}/test/busybox")["Id"] == fixtures.image_id("test/busybox:latest")


def test_pull_tls_without_the_ca_fails(sj, fixtures, tmp_path):
    fixtures.registry("tls")
    empty = tmp_path / "empty-certs.d"
    empty.mkdir()
    r = sj.fail("image", "pull", f"{TLS}/test/busybox", env={"SANGJA_CERTS_D": str(empty)})
    assert "certificate" in r.err and TLS in r.err
    assert len(r.err.strip().splitlines()) == 1
    # named insecure: no verification
    r = sj.ok("image", "pull", f"{TLS}/test/busybox",
              env={"SANGJA_CERTS_D": str(empty), "SANGJA_INSECURE_REGISTRIES": TLS})  # fmt: skip


def test_plain_http_only_for_loopback_or_insecure(sj, fixtures):
    fixtures.registry("plain")
    # localhost is loopback; an ordinary name is not: HTTPS only
    sj.ok("image", "pull", "localhost:5000/test/busybox")
    r = sj.fail("image", "pull", "registry.invalid:5000/test/busybox")
    assert "registry.invalid:5000" in r.err


def test_basic_auth_login(sj, fixtures):
    fixtures.registry("auth")
    before = sj.store_state()
    r = sj.fail("image", "pull", f"{AUTH}/test/busybox")
    assert "unauthorized" in r.err and "sangja login" in r.err
    r = sj.fail("login", "-u", USER, "-p", "wrong", AUTH)
    assert "unauthorized" in r.err
    assert not os.path.exists(os.path.join(sj.home, ".config", "sangja", "auth.json"))
    assert sj.store_state() == before
    r = sj.ok("login", "-u", USER, "--password-stdin", AUTH, input=PASSWORD + "\n")
    assert "Login Succeeded" in r.out
    path = os.path.join(sj.home, ".config", "sangja", "auth.json")
    assert os.stat(path).st_mode & 0o777 == 0o600
    sj.ok("image", "pull", f"{AUTH}/test/busybox")
    sj.ok("logout", AUTH)
    sj.ok("image", "rm", f"{AUTH}/test/busybox")
    sj.fail("image", "pull", f"{AUTH}/test/busybox")


def test_basic_auth_from_docker_config(sj, fixtures):
    fixtures.registry("auth")
    os.makedirs(os.path.join(sj.home, ".docker"))
    cred = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    with open(os.path.join(sj.home, ".docker", "config.json"), "w") as f:
        json.dump({"auths": {f"https://{AUTH}": {"auth": cred}}}, f)
    sj.ok("image", "pull", f"{AUTH}/test/busybox")
    # wrong ones there: a 401 named as such
    bad = base64.b64encode(f"{USER}:nope".encode()).decode()
    with open(os.path.join(sj.home, ".docker", "config.json"), "w") as f:
        json.dump({"auths": {AUTH: {"auth": bad}}}, f)
    r = sj.fail("image", "pull", f"{AUTH}/test/debian:bookworm")
    assert "unauthorized" in r.err


def test_token_auth(sj, fixtures):
    fixtures.registry("token")
    sj.ok("image", "pull", f"{TOKEN}/test/busybox")  # anonymous pull: a pull-only token
    r = sj.fail("login", "-u", USER, "-p", "wrong", TOKEN)
    assert "unauthorized" in r.err
    sj.ok("login", "-u", USER, "-p", PASSWORD, TOKEN)
    sj.ok("image", "pull", f"{TOKEN}/test/multi")
    sj.assert_consistent()


def test_multi_arch_index(sj, fixtures):
    fixtures.registry("plain")
    index = fixtures.manifest("multi")
    by_arch = {m["platform"]["architecture"]: m for m in index["manifests"]}
    sj.ok("image", "pull", f"{PLAIN}/test/multi")
    info = sj.inspect(f"{PLAIN}/test/multi")
    assert info["Architecture"] == "amd64"
    assert info["Metadata"]["Manifest"] == by_arch["amd64"]["digest"]
    assert info["RepoDigests"] == [f"{PLAIN}/test/multi@{fixtures.digest('test/multi:latest')}"]
    sj.ok("image", "pull", "--platform", "linux/arm64/v8", f"{PLAIN}/test/multi")
    arm = sj.inspect(f"{PLAIN}/test/multi")
    assert arm["Architecture"] == "arm64" and arm["Id"] != info["Id"]
    assert arm["Metadata"]["Manifest"] == by_arch["arm64"]["digest"]
    r = sj.fail("image", "pull", "--platform", "linux/s390x", f"{PLAIN}/test/multi")
    assert "no matching manifest for linux/s390x" in r.err
    assert "linux/amd64" in r.err and "linux/arm64/v8" in r.err
    # a single-platform image asked for another platform
    r = sj.fail("image", "pull", "--platform", "linux/arm64", f"{PLAIN}/test/busybox")
    assert "linux/amd64" in r.err


def test_zstd_layers_unpack_like_gzip(sj, fixtures, tmp_path):
    fixtures.registry("plain")
    sj.ok("image", "pull", f"{PLAIN}/test/debian:bookworm-zstd")
    z = sj.inspect(f"{PLAIN}/test/debian:bookworm-zstd")
    assert z["Id"] == fixtures.image_id("test/debian:bookworm")  # same config, other blobs
    import registrykit

    other = registrykit.Sangja(tmp_path / "gzip", fixtures)
    other.ok("image", "pull", f"{PLAIN}/test/debian:bookworm")
    g = other.inspect(f"{PLAIN}/test/debian:bookworm")
    for zd, gd in zip(z["GraphDriver"]["Data"]["LowerDir"].split(":"),
                      g["GraphDriver"]["Data"]["LowerDir"].split(":"), strict=True):  # fmt: skip
        assert layer_snapshot(zd) == layer_snapshot(gd), zd
    # gzip after zstd in one store: the layers are there already, the new blobs are still
    # checked against the diff_ids (by decompressing them)
    r = sj.ok("image", "pull", f"{PLAIN}/test/debian:bookworm")
    assert "Verifying diff_id" in r.out
    s = sj.assert_consistent()
    assert len(s["files:layers"]) == 3
    assert len(s["files:blobs/sha256"]) == 3 + 3 + 2 + 1  # layers x2, manifests x2, one config


def test_default_registry_and_normalization(sj, fixtures):
    fixtures.registry("plain")
    env = {"SANGJA_DEFAULT_REGISTRY": PLAIN}
    # 'test/busybox' -> <default>/test/busybox:latest
    r = sj.ok("image", "pull", "test/busybox", env=env)
    assert r.out.strip().splitlines()[-1] == f"{PLAIN}/test/busybox:latest"
    ls = sj.ok("image", "ls", env=env).out
    assert "test/busybox" in ls and PLAIN not in ls  # shown in the short form
    # 'busybox' -> <default>/library/busybox:latest, which the fixtures do not have
    r = sj.fail("image", "pull", "busybox", env=env)
    assert f"{PLAIN}/library/busybox" in r.err


@pytest.mark.parametrize("ref,msg", [
    ("test/busybox:no-such-tag", "not found"),
    ("test/no-such-repo", "not found"),
    ("Test/Busybox", "must be lowercase"),
    ("test/busybox@sha256:abc", "invalid reference"),
])  # fmt: skip
def test_bad_references(sj, fixtures, ref, msg):
    fixtures.registry("plain")
    r = sj.fail("image", "pull", f"{PLAIN}/{ref}")
    assert msg in r.err
    assert len(r.err.strip().splitlines()) == 1


def test_unreachable_registry(sj, fixtures):
    r = sj.fail("image", "pull", "127.0.0.1:5999/test/busybox")
    assert "cannot reach registry 127.0.0.1:5999" in r.err and "refused" in r.err
    assert len(r.err.strip().splitlines()) == 1
