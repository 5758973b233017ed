"""Bad input: a one-line error that names the problem, a non-zero exit, nothing
half-written in the store, and the next pull works.  Faults come from a tiny registry
served by the test (fakeregistry.py) or from the real ones."""

import gzip
import os
import signal
import subprocess
import time

import pytest
from fakeregistry import FakeRegistry, sha, tar_of
from registrykit import PLAIN, sangja_binary


@pytest.fixture
def fake(sj):
    f = FakeRegistry()
    yield f
    f.close()


def one_line_error(r):
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r
    return lines[0]


def big_layer(n=3 << 20):
    """A gzip layer of n random bytes in one file (incompressible: n bytes on the wire)."""
    tar = tar_of({"bin/sh": b"#!", "data/blob": os.urandom(n)})
    return gzip.compress(tar, 1), tar


def assert_unchanged(sj, before, allow_partial=None):
    after = sj.store_state()
    tmp = after.pop("files:tmp")
    before = dict(before)
    before.pop("files:tmp")
    assert after == before
    allowed = {allow_partial.split(":")[1] + ".partial"} if allow_partial else set()
    assert set(tmp) <= allowed, tmp
    sj.assert_consistent()


def test_connection_dropped_mid_blob_resumes_with_range(sj, fake):
    blob, _ = big_layer()
    img = fake.add_image("x/app", "v1", [blob])
    d = img["layers"][0]
    fake.faults[d] = {"drop_once": 1 << 20}
    sj.ok("image", "pull", f"{fake.host}/x/app:v1")
    assert fake.ranges(d) == [None, f"bytes={1 << 20}-"]
    s = sj.assert_consistent()
    assert s["files:tmp"] == []


def test_truncated_blob(sj, fake, fixtures):
    blob, _ = big_layer()
    img = fake.add_image("x/app", "v1", [blob])
    d = img["layers"][0]
    fake.faults[d] = {"truncate": 100_000, "no_range": True}
    fixtures.registry("plain")
    sj.ok("image", "pull", f"{PLAIN}/test/busybox")
    before = sj.store_state()
    r = sj.fail("image", "pull", f"{fake.host}/x/app:v1")
    line = one_line_error(r)
    assert f"blob {d}: truncated: got 100000 of {len(blob)} bytes" in line
    assert_unchanged(sj, before, allow_partial=d)  # the partial download stays, for a resume
    # the next pull (the server mended) resumes where the last one stopped
    fake.faults.clear()
    sj.ok("image", "pull", f"{fake.host}/x/app:v1")
    assert fake.ranges(d)[-1] == "bytes=100000-"
    assert sj.assert_consistent()["files:tmp"] == []


def test_wrong_digest_blob(sj, fake):
    blob, _ = big_layer(1 << 16)
    img = fake.add_image("x/app", "v1", [blob])
    d = img["layers"][0]
    bad = bytearray(blob)
    bad[len(bad) // 2] ^= 0xFF
    fake.blobs[d] = bytes(bad)  # same size, other bytes
    before = sj.store_state()
    r = sj.fail("image", "pull", f"{fake.host}/x/app:v1")
    assert f"blob {d}: digest mismatch: got {sha(bytes(bad))}" in one_line_error(r)
    assert_unchanged(sj, before)  # no partial kept: those bytes are wrong
    fake.blobs[d] = blob
    sj.ok("image", "pull", f"{fake.host}/x/app:v1")


def test_blob_larger_than_its_descriptor(sj, fake):
    blob, _ = big_layer(1 << 16)
    fake.add_image("x/app", "v1", [blob], sizes={0: len(blob) - 10})
    before = sj.store_state()
    r = sj.fail("image", "pull", f"{fake.host}/x/app:v1")
    assert "larger than its descriptor" in one_line_error(r)
    assert_unchanged(sj, before)


def test_wrong_diff_id(sj, fake):
    blob, _ = big_layer(1 << 16)
    fake.add_image("x/app", "v1", [blob], diff_ids=["sha256:" + "ab" * 32])
    before = sj.store_state()
    r = sj.fail("image", "pull", f"{fake.host}/x/app:v1")
    assert "diff_id mismatch" in one_line_error(r)
    assert_unchanged(sj, before)


@pytest.mark.parametrize("comp", ["gzip", "zstd"])
def test_corrupt_compressed_layer(sj, fake, comp):
    _, tar = big_layer(1 << 18)
    if comp == "gzip":
        data = bytearray(gzip.compress(tar, 6))
    else:
        data = bytearray(subprocess.run(["zstd", "-q", "-c"], input=tar, capture_output=True,
                                        check=True).stdout)  # fmt: skip
    for i in range(len(data) // 2, len(data) // 2 + 32):
        data[i] ^= 0x5A
    # the blob's digest is right (the registry serves what the manifest names): only the
    # stream inside is broken, which the extractor finds
    img = fake.add_image("x/app", "v1", [bytes(data)], diff_ids=[sha(tar)],
                         layer_type=f"tar+{comp}")  # fmt: skip
    before = sj.store_state()
    r = sj.fail("image", "pull", f"{fake.host}/x/app:v1")
    line = one_line_error(r)
    assert img["layers"][0] in line and comp in line.lower(), line
    assert_unchanged(sj, before)


def test_hostile_tar(sj, fake, tmp_path):
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        link = tarfile.TarInfo("etc")
        link.type, link.linkname = tarfile.SYMTYPE, str(tmp_path)
        t.addfile(link)
        f = tarfile.TarInfo("etc/pwned")
        f.size = 5
        t.addfile(f, io.BytesIO(b"pwned"))
    blob = gzip.compress(buf.getvalue())
    fake.add_image("x/evil", "v1", [blob])
    before = sj.store_state()
    r = sj.fail("image", "pull", f"{fake.host}/x/evil:v1")
    assert "etc/pwned" in one_line_error(r) and "escapes" in r.err
    assert not (tmp_path / "pwned").exists()
    assert_unchanged(sj, before)


@pytest.mark.parametrize("code,word", [(401, "unauthorized"), (403, "denied")])
def test_registry_refuses(sj, fake, code, word):
    fake.add_image("x/app", "v1", [gzip.compress(tar_of({"a": b"a"}))])
    fake.status["/v2/x/app/"] = code
    r = sj.fail("image", "pull", f"{fake.host}/x/app:v1")
    assert one_line_error(r).startswith(f"sangja: {word}")


def test_interrupted_pull_resumes(sj, fake):
    blob, _ = big_layer(4 << 20)
    img = fake.add_image("x/app", "v1", [blob])
    d = img["layers"][0]
    fake.faults[d] = {"stall": 1 << 20}
    partial = os.path.join(sj.root, "tmp", d.split(":")[1] + ".partial")
    p = subprocess.Popen([sangja_binary(), "image", "pull", f"{fake.host}/x/app:v1"],
                         env=sj.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        end = time.monotonic() + 60
        while not (os.path.exists(partial) and os.path.getsize(partial) == 1 << 20):
            assert time.monotonic() < end and p.poll() is None, "the download never started"
            time.sleep(0.02)
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=60) == 130
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    fake.release.set()
    assert os.path.getsize(partial) == 1 << 20
    assert sj.store_state()["images"] == []
    sj.ok("image", "pull", f"{fake.host}/x/app:v1")
    assert fake.ranges(d)[-1] == f"bytes={1 << 20}-"
    assert sj.assert_consistent()["files:tmp"] == []


def test_full_disk(sj, fixtures, tmp_path):
    """A store on a 24 MiB tmpfs: the debian image (51 MB of blobs) does not fit."""
    fixtures.registry("plain")
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(small)], check=True)
    try:
        env = {"SANGJA_ROOT": str(small / "root")}
        sj.root = str(small / "root")
        r = sj.fail("image", "pull", f"{PLAIN}/test/debian:bookworm", env=env)
        line = one_line_error(r)
        assert "no space left on device" in line.lower(), line
        s = sj.assert_consistent()
        assert s["images"] == [] and s["files:tmp"] == [] and s["files:layers"] == []
        # the space is given back: a small image fits
        sj.ok("image", "pull", f"{PLAIN}/test/busybox", env=env)
        sj.assert_consistent()
    finally:
        subprocess.run(["umount", str(small)], check=True)
