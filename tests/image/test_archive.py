"""`image save` / `image load` with podman on the other side (both directions, docker-archive
and OCI layout), sangja to sangja, bad archives, and `image import`."""

import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time

import pytest
from registrykit import PLAIN, PODMAN, Podman, Sangja, layer_snapshot

needs_podman = pytest.mark.skipif(PODMAN is None, reason="podman is not installed")


@pytest.fixture
def podman(tmp_path):
    p = Podman(tmp_path)
    yield p
    p.close()


@needs_podman
@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_sangja_save_podman_load(sj, fixtures, podman, tmp_path, fmt):
    fixtures.registry("plain")
    refs = [f"{PLAIN}/test/busybox:latest", f"{PLAIN}/test/debian:bookworm"]
    for ref in refs:
        sj.ok("image", "pull", "-q", ref)
    if fmt == "docker-archive":  # both in one archive
        out = tmp_path / "images.tar"
        sj.ok("image", "save", "--format", fmt, "-o", str(out), *refs)
        names = tarfile.open(out).getnames()
        assert "manifest.json" in names and "repositories" in names
        loaded = podman("load", "-i", str(out))
    else:  # podman 4.3 reads one image per OCI archive ("more than one image in oci")
        loaded = ""
        for i, ref in enumerate(refs):
            out = tmp_path / f"image{i}.tar"
            sj.ok("image", "save", "--format", fmt, "-o", str(out), ref)
            loaded += podman("load", "-i", str(out))
    for ref in refs:
        assert ref in loaded
        mine, theirs = sj.inspect(ref), podman.inspect(ref)
        assert theirs["Id"] == mine["Id"].split(":")[1]
        assert theirs["RootFS"]["Layers"] == mine["RootFS"]["Layers"]
        assert theirs["Config"]["Cmd"] == mine["Config"]["Cmd"]


@needs_podman
@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive", "oci-dir"])
def test_podman_save_sangja_load(sj, fixtures, podman, tmp_path, fmt):
    fixtures.registry("plain")
    ref = f"{PLAIN}/test/busybox:latest"
    podman("pull", "-q", "--tls-verify=false", ref)
    out = tmp_path / ("saved" if fmt == "oci-dir" else "saved.tar")
    podman("save", "--format", fmt, "-o", str(out), ref)
    r = sj.ok("image", "load", "-i", str(out))
    assert r.out.strip() == f"Loaded image: {ref}"
    info = sj.inspect(ref)
    assert info["Id"] == "sha256:" + podman.inspect(ref)["Id"]
    assert info["Id"] == fixtures.image_id("test/busybox:latest")
    assert info["RootFS"]["Layers"] == fixtures.config("busybox")["rootfs"]["diff_ids"]
    sj.assert_consistent()


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive", "oci-dir"])
def test_sangja_round_trip(sj, fixtures, tmp_path, fmt):
    fixtures.registry("plain")
    ref = f"{PLAIN}/test/debian:bookworm-zstd"
    sj.ok("image", "pull", "-q", ref)
    out = tmp_path / ("out" if fmt == "oci-dir" else "out.tar")
    if fmt == "docker-archive":  # to stdout, read back from stdin
        with open(out, "wb") as f:
            p = subprocess.run([*_cli(sj), "image", "save", ref], stdout=f, env=sj.env)
        assert p.returncode == 0
    else:
        sj.ok("image", "save", "--format", fmt, "-o", str(out), ref)
    other = Sangja(tmp_path / "other", fixtures)
    if fmt == "docker-archive":
        with open(out, "rb") as f:
            p = subprocess.run([*_cli(other), "image", "load"], stdin=f, env=other.env,
                               capture_output=True, text=True)  # fmt: skip
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip() == f"Loaded image: {ref}"
    else:
        other.ok("image", "load", "-i", str(out))
    a, b = sj.inspect(ref), other.inspect(ref)
    assert a["Id"] == b["Id"] and a["RootFS"] == b["RootFS"]
    for x, y in zip(a["GraphDriver"]["Data"]["LowerDir"].split(":"),
                    b["GraphDriver"]["Data"]["LowerDir"].split(":"), strict=True):  # fmt: skip
        assert layer_snapshot(x) == layer_snapshot(y)
    other.assert_consistent()


def _cli(sj):
    from registrykit import sangja_binary

    return [sangja_binary(), "--root", sj.run_root]


def test_load_corrupt_layer(sj, fixtures, tmp_path):
    fixtures.registry("plain")
    ref = f"{PLAIN}/test/busybox:latest"
    sj.ok("image", "pull", "-q", ref)
    good = tmp_path / "good.tar"
    sj.ok("image", "save", "-o", str(good), ref)
    # rewrite the archive with one byte of the layer changed (a file's content)
    bad = tmp_path / "bad.tar"
    with tarfile.open(good) as src, tarfile.open(bad, "w") as dst:
        for m in src:
            data = src.extractfile(m).read() if m.isfile() else None
            if m.name.endswith("layer.tar"):
                inner = tarfile.open(fileobj=io.BytesIO(data))
                busybox = inner.getmember("bin/busybox")
                data = bytearray(data)
                data[busybox.offset_data + 1000] ^= 0xFF
                data = bytes(data)
            dst.addfile(m, io.BytesIO(data) if data is not None else None)
    other = Sangja(tmp_path / "other", fixtures)
    before = other.store_state()
    r = other.fail("image", "load", "-i", str(bad))
    assert "diff_id mismatch" in r.err and len(r.err.strip().splitlines()) == 1
    assert other.store_state() == before
    other.ok("image", "load", "-i", str(good))
    # not an archive at all
    (tmp_path / "junk").write_bytes(b"junk" * 1000)
    r = other.fail("image", "load", "-i", str(tmp_path / "junk"))
    assert "tar" in r.err


def test_import_rootfs(sj, fixtures, tmp_path):
    fixtures.registry("plain")
    sj.ok("image", "pull", "-q", f"{PLAIN}/test/busybox")
    lower = sj.inspect(f"{PLAIN}/test/busybox")["GraphDriver"]["Data"]["LowerDir"]
    tgz = tmp_path / "rootfs.tar.gz"
    with tarfile.open(tgz, "w:gz") as t:
        t.add(lower, arcname=".")
    r = sj.ok("image", "import", "-c", 'CMD ["sh", "-c", "echo imported"]', "-c", "ENV A=b",
              "-c", "WORKDIR /tmp", "-c", "LABEL k=v", "-m", "from a tarball", str(tgz),
              "mine/rootfs:1")  # fmt: skip
    image_id = r.out.strip()
    info = sj.inspect("mine/rootfs:1")
    assert info["Id"] == image_id
    assert info["Config"]["Cmd"] == ["sh", "-c", "echo imported"]
    assert "A=b" in info["Config"]["Env"] and info["Config"]["WorkingDir"] == "/tmp"
    assert info["Config"]["Labels"] == {"k": "v"}
    assert info["Comment"] == "from a tarball"
    with gzip.open(tgz) as f:
        import hashlib

        assert info["RootFS"]["Layers"] == ["sha256:" + hashlib.sha256(f.read()).hexdigest()]
    new_lower = info["GraphDriver"]["Data"]["LowerDir"]
    assert os.path.islink(os.path.join(new_lower, "bin", "sh"))
    hist = sj.ok("image", "history", "mine/rootfs:1").out
    assert "sangja image import" in hist and "from a tarball" in hist
    # from stdin, uncompressed
    plain = tmp_path / "rootfs.tar"
    with tarfile.open(plain, "w") as t:
        t.add(lower, arcname=".")
    with open(plain, "rb") as f:
        p = subprocess.run([*_cli(sj), "image", "import", "-", "mine/rootfs:2"], stdin=f,
                           env=sj.env, capture_output=True, text=True)  # fmt: skip
    assert p.returncode == 0, p.stderr
    sj.assert_consistent()


def test_import_refuses_what_is_no_rootfs(sj, tmp_path):
    """An empty file, a file of zeros, a damaged gzip: one line naming the user's file (not
    a blob of the store), exit 1, and nothing stored (Docker refuses all three)."""
    good = tmp_path / "good.tar.gz"
    with tarfile.open(good, "w:gz") as t:
        t.add(__file__, arcname="f")
    data = good.read_bytes()
    cases = {"empty.tar": b"", "zeros.tar": bytes(10240), "cut.tar.gz": data[: len(data) // 2],
             "junk.tar.gz": data[:10] + b"\xff" * 300}  # fmt: skip
    before = sj.store_state()
    for name, content in cases.items():
        f = tmp_path / name
        f.write_bytes(content)
        r = sj("image", "import", str(f), f"bad/{name.split('.')[0]}")
        assert r.rc == 1, (name, r)
        line = r.err.strip()
        assert "\n" not in line and line.count(f"import {f}:") == 1, line
        assert "blobs/" not in line, line
    assert sj("image", "import", str(tmp_path / "empty.tar")).err.strip().endswith(
        "empty file (want a tar archive of a root file system)")  # fmt: skip
    p = subprocess.run([*_cli(sj), "image", "import", "-"], input=bytes(10240),
                       env=sj.env, capture_output=True)  # fmt: skip
    assert p.returncode == 1 and b"import stdin: not a tar archive" in p.stderr
    after = sj.store_state()
    assert {k: v for k, v in after.items() if k != "files:tmp"} == {
        k: v for k, v in before.items() if k != "files:tmp"}  # fmt: skip
    assert sj.images() == []


# ---- docker (Debian's dockerd, a private one: its own data-root, exec-root and socket) ---

DOCKERD, DOCKER = shutil.which("dockerd"), "/usr/bin/docker"


@pytest.fixture
def docker():
    if not DOCKERD or not os.path.exists(DOCKER):
        pytest.skip("dockerd is not installed")
    d = tempfile.mkdtemp(prefix="sjd-", dir="/tmp")  # a short path: unix socket names
    conf = {"data-root": f"{d}/data", "exec-root": f"{d}/exec", "pidfile": f"{d}/docker.pid",
            "hosts": [f"unix://{d}/docker.sock"], "bridge": "none", "iptables": False,
            "ip6tables": False, "ip-forward": False, "ip-masq": False,
            "storage-driver": "overlay2",
            "exec-opts": ["native.cgroupdriver=cgroupfs"]}  # fmt: skip
    with open(f"{d}/daemon.json", "w") as f:
        json.dump(conf, f)
    log = open(f"{d}/dockerd.log", "w")
    proc = subprocess.Popen([DOCKERD, "--config-file", f"{d}/daemon.json"], stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_CONFIG"] = f"{d}/cli"

    def cli(*args):
        r = subprocess.run([DOCKER, "-H", f"unix://{d}/docker.sock", *args], env=env,
                           capture_output=True, text=True, timeout=300)  # fmt: skip
        assert r.returncode == 0, f"docker {' '.join(args)}: {r.stderr}"
        return r.stdout

    try:
        for _ in range(300):
            assert proc.poll() is None, open(f"{d}/dockerd.log").read()[-2000:]
            if subprocess.run([DOCKER, "-H", f"unix://{d}/docker.sock", "version"], env=env,
                              capture_output=True).returncode == 0:  # fmt: skip
                break
            time.sleep(0.1)
        yield cli
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split()[4] for line in f]
        for m in reversed(mounts):
            if m.startswith(d + "/"):
                subprocess.run(["umount", "-l", m], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


def test_docker_load_and_save(sj, fixtures, docker, tmp_path):
    """docker load reads sangja's docker-archive; sangja loads what docker save writes."""
    fixtures.registry("plain")
    ref = f"{PLAIN}/test/debian:bookworm"
    sj.ok("image", "pull", "-q", ref)
    out = tmp_path / "debian.tar"
    sj.ok("image", "save", "-o", str(out), ref)
    assert f"Loaded image: {ref}" in docker("load", "-i", str(out))
    info = json.loads(docker("image", "inspect", ref))[0]
    assert info["Id"] == sj.inspect(ref)["Id"]
    assert info["RootFS"]["Layers"] == sj.inspect(ref)["RootFS"]["Layers"]
    docker("tag", ref, "example.org/resaved:1")
    back = tmp_path / "from-docker.tar"
    docker("save", "-o", str(back), "example.org/resaved:1")
    other = Sangja(tmp_path / "other", fixtures)
    r = other.ok("image", "load", "-i", str(back))
    assert r.out.strip() == "Loaded image: example.org/resaved:1"
    assert other.inspect("example.org/resaved:1")["Id"] == info["Id"]
    for x, y in zip(sj.inspect(ref)["GraphDriver"]["Data"]["LowerDir"].split(":"),
                    other.inspect("example.org/resaved:1")["GraphDriver"]["Data"]["LowerDir"]
                    .split(":"), strict=True):  # fmt: skip
        assert layer_snapshot(x) == layer_snapshot(y)
