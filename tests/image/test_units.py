"""The image modules' pure parts: references, platforms, challenges, credentials, progress
output, user resolution in an image's root, and the CLI's lazy imports."""

import base64
import gzip
import io
import json
import os
import subprocess
import sys

import pytest

from sangja.image import auth, compress, manifest, progress, reference, registry, runspec
from sangja.image.snapshot import read_in_root


@pytest.mark.parametrize("given,default,want", [
    ("busybox", "docker.io", "docker.io/library/busybox:latest"),
    ("busybox", "127.0.0.1:5000", "127.0.0.1:5000/library/busybox:latest"),
    ("user/app:1.0", "docker.io", "docker.io/user/app:1.0"),
    ("docker.io/busybox", "docker.io", "docker.io/library/busybox:latest"),
    ("index.docker.io/library/busybox", "docker.io", "docker.io/library/busybox:latest"),
    ("localhost/app", "docker.io", "localhost/app:latest"),
    ("localhost:5000/a/b/c", "docker.io", "localhost:5000/a/b/c:latest"),
    ("reg.example/x@sha256:" + "a" * 64, "docker.io", "reg.example/x@sha256:" + "a" * 64),
    ("reg.example/x:t@sha256:" + "a" * 64, "docker.io", "reg.example/x:t@sha256:" + "a" * 64),
    ("[::1]:5000/x", "docker.io", "[::1]:5000/x:latest"),
])  # fmt: skip
def test_reference_normalization(given, default, want):
    assert str(reference.parse(given, default)) == want


@pytest.mark.parametrize("bad", ["", "UPPER/case", "a//b", "x:", "x@sha256:12", "-x", "x:-t",
                                 " x", "a/b:tag:tag"])  # fmt: skip
def test_reference_errors(bad):
    with pytest.raises(reference.ReferenceError, match="invalid reference format"):
        reference.parse(bad, "docker.io")


def test_familiar_names():
    assert reference.familiar("docker.io/library/busybox", "docker.io") == "busybox"
    assert reference.familiar("docker.io/user/app", "docker.io") == "user/app"
    assert reference.familiar("r:5000/library/x", "docker.io") == "r:5000/library/x"


def test_platform_selection():
    e = [manifest.Descriptor(manifest.OCI_MANIFEST, "sha256:" + c * 64, 1, p) for c, p in [
        ("a", {"os": "linux", "architecture": "amd64"}),
        ("b", {"os": "linux", "architecture": "arm64"}),  # no variant: v8
        ("c", {"os": "linux", "architecture": "arm", "variant": "v7"}),
    ]]  # fmt: skip
    pick = lambda s: manifest.select(e, manifest.parse_platform(s)).digest[7]  # noqa: E731
    assert pick("linux/amd64") == "a" and pick("amd64") == "a"
    assert pick("linux/arm64/v8") == "b" and pick("linux/aarch64") == "b"
    assert pick("linux/arm/7") == "c"
    with pytest.raises(manifest.ManifestError, match="linux/arm64, linux/arm/v7"):
        pick("linux/ppc64le")
    assert str(manifest.host_platform()).startswith("linux/")


def test_manifest_media_types():
    with pytest.raises(manifest.ManifestError, match="schema 1"):
        manifest.parse(b'{"schemaVersion": 1, "name": "x"}')
    mt, _ = manifest.parse(b'{"schemaVersion": 2, "manifests": []}')
    assert mt == manifest.OCI_INDEX
    for t in manifest.MANIFESTS + manifest.INDEXES:
        assert t in manifest.ACCEPT


def test_challenge_parsing():
    s, p = registry.parse_challenge(
        'Bearer realm="http://127.0.0.1:5446/token",service="fixture-registry",'
        'scope="repository:test/busybox:pull,push"'
    )
    assert s == "bearer" and p["realm"] == "http://127.0.0.1:5446/token"
    assert p["scope"] == "repository:test/busybox:pull,push"
    assert registry.parse_challenge('Basic realm="fixture-realm"') == (
        "basic", {"realm": "fixture-realm"})  # fmt: skip


def test_credentials_lookup(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    monkeypatch.delenv("SANGJA_AUTH_FILE", raising=False)
    assert auth.lookup("r.example:5000") is None
    (tmp_path / ".docker").mkdir()
    enc = base64.b64encode(b"d:dpw").decode()
    (tmp_path / ".docker" / "config.json").write_text(json.dumps(
        {"auths": {"https://r.example:5000/v2/": {"auth": enc},
                   "https://index.docker.io/v1/": {"auth": enc}}, "credsStore": "desktop"}
    ))  # fmt: skip
    assert auth.lookup("r.example:5000") == ("d", "dpw")
    assert auth.lookup("docker.io") == ("d", "dpw")
    path = auth.store("r.example:5000", "s", "spw")  # sangja's own file wins
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert auth.lookup("r.example:5000") == ("s", "spw")
    assert auth.remove("r.example:5000")
    assert auth.lookup("r.example:5000") == ("d", "dpw")


def test_progress_plain_and_tty():
    out = io.StringIO()
    p = progress.Progress(out, tty=False)
    p.add("abc", "Pulling fs layer", 100)
    p.bytes("abc", 50, 100)
    p.bytes("abc", 100, 100)
    p.status("abc", "Pull complete")
    assert out.getvalue() == "abc: Pulling fs layer\nabc: Downloading\nabc: Pull complete\n"
    out = io.StringIO()
    p = progress.Progress(out, tty=True)
    p.add("abc", "Pulling fs layer", 2_000_000)
    p.bytes("abc", 1_000_000, 2_000_000)
    p.finish()
    text = out.getvalue()
    assert "\x1b[" in text and "Downloading [" in text and "1MB/2MB" in text
    assert "Total: [" in text
    assert progress.human(51_112_218) == "51.1MB" and progress.human(762) == "762B"


def test_resolve_user(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
    )
    (etc / "group").write_text("root:x:0:\napp:x:1000:\nextra:x:50:app,other\nother:x:51:x\n")
    u = runspec.resolve_user(str(tmp_path), "app")
    assert (u.uid, u.gid, u.additional_gids, u.home) == (1000, 1000, [50], "/home/app")
    u = runspec.resolve_user(str(tmp_path), "")
    assert (u.uid, u.gid, u.home) == (0, 0, "/root")
    u = runspec.resolve_user(str(tmp_path), "4242:extra")
    assert (u.uid, u.gid, u.additional_gids, u.home) == (4242, 50, [], "/")
    with pytest.raises(runspec.UserError, match="unable to find user nobody"):
        runspec.resolve_user(str(tmp_path), "nobody")
    with pytest.raises(runspec.UserError, match="unable to find group nogroup"):
        runspec.resolve_user(str(tmp_path), "app:nogroup")


def test_image_files_are_read_inside_its_root(tmp_path):
    outside = tmp_path / "outside"
    outside.write_text("host secret")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").symlink_to("../../../../../../outside")
    (root / "etc" / "group").symlink_to(str(outside))
    (root / "outside").write_text("inside")
    assert read_in_root(str(root), "/etc/passwd") == b"inside"
    assert read_in_root(str(root), "/etc/group") is None  # /<tmp>/outside inside the root
    (root / "etc" / "loop").symlink_to("loop")
    assert read_in_root(str(root), "/etc/loop") is None


def test_gzip_stream_concatenated_members_and_corruption(tmp_path):
    p = tmp_path / "x.gz"
    p.write_bytes(gzip.compress(b"a" * 100000) + gzip.compress(b"b" * 10))
    assert b"".join(compress.stream(str(p))) == b"a" * 100000 + b"b" * 10
    p.write_bytes(gzip.compress(os.urandom(50000))[:-100])
    with pytest.raises(Exception, match="corrupt gzip"):
        b"".join(compress.stream(str(p)))


def test_runtime_verbs_do_not_load_the_engine():
    """`sangja state x` imports nothing of image/engine, sqlite3, http, ssl."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run([sys.executable, "-X", "importtime", "-c",
                        "import sys; from sangja.cli.main import main; "
                        "main(['--root', '/nonexistent-sangja', 'state', 'x'])"],
                       capture_output=True, text=True, env=env)  # fmt: skip
    loaded = [line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines() if "|" in line]
    assert "sangja.cli.main" in loaded
    heavy = ("sangja.image", "sangja.engine", "sangja.cli.engine", "sqlite3", "_sqlite3",
             "http", "ssl", "urllib", "aiohttp", "sangja.api")  # fmt: skip
    bad = [m for m in loaded if m.startswith(heavy)]
    assert bad == []
