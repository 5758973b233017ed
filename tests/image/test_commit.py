"""sangja.image.commit: new images from a base image and directory trees, in the store,
runnable at once (what `container commit` and `build` will call)."""

import json
import os
import stat

import pytest
from registrykit import PLAIN

from sangja.errors import PackError
from sangja.image.commit import Step, commit
from sangja.image.store import Store

BUSYBOX = f"{PLAIN}/test/busybox:latest"


def upper(tmp_path, name="upper"):
    """An overlay upper dir's worth of changes over busybox: a new file, /bin/ls whited
    out, /etc replaced by an opaque directory with one file."""
    u = tmp_path / name
    (u / "bin").mkdir(parents=True)
    (u / "etc").mkdir()
    (u / "hello.txt").write_text("hi from a new layer\n")
    os.mknod(u / "bin" / "ls", 0o000 | stat.S_IFCHR, os.makedev(0, 0))
    (u / "etc" / "only").write_text("alone\n")
    os.setxattr(u / "etc", "trusted.overlay.opaque", b"y")
    for p in (u / "hello.txt", u / "etc" / "only", u / "etc", u / "bin", u):
        os.utime(p, (1700000000, 1700000000))
    return str(u)


def test_commit_on_a_base_runs(sj, fixtures, tmp_path):
    fixtures.registry("plain")
    sj.ok("image", "pull", "-q", BUSYBOX)
    base = sj.inspect(BUSYBOX)
    store = Store(sj.root)
    res = commit(store, [Step("/bin/sh -c echo hi > /hello.txt", root=upper(tmp_path)),
                         Step('/bin/sh -c #(nop)  CMD ["cat" "/hello.txt"]')],
                 base=BUSYBOX, config=dict(base["Config"], Cmd=["cat", "/hello.txt"]),
                 refs=["localhost/committed:v1"], author="tester")  # fmt: skip
    store.close()
    info = sj.inspect("localhost/committed:v1")
    assert info["Id"] == res.image_id and info["Author"] == "tester"
    assert info["RootFS"]["Layers"] == base["RootFS"]["Layers"] + [res.layers[0].diff_id]
    assert info["Config"]["Cmd"] == ["cat", "/hello.txt"]
    # it runs: the new file, the whiteout, the opaque directory, through overlayfs
    r = sj.ok("container", "run", "--rm", "localhost/committed:v1")
    assert r.out == "hi from a new layer\n"
    r = sj("container", "run", "--rm", "localhost/committed:v1", "sh", "-c",
           "ls /bin/ls; ls /etc; /bin/cat /etc/only")  # fmt: skip
    # /etc: only the opaque directory's file (and the three files the engine puts in)
    assert r.out.split() == ["hostname", "hosts", "only", "resolv.conf", "alone"], r
    assert "No such file" in r.err
    # history: the base's entries, then one per step; sizes from the layers
    hist = sj.ok("image", "history", "--no-trunc", "localhost/committed:v1").out.splitlines()
    assert hist[1].startswith(res.image_id) and 'CMD ["cat" "/hello.txt"]' in hist[1]
    assert "0B" in hist[1].split("   ")[-1] or hist[1].rstrip().endswith("0B")
    assert "echo hi > /hello.txt" in hist[2] and "<missing>" in hist[2]
    # the manifest names the new blob, the store holds it and nothing else is left over
    s = sj.assert_consistent()
    assert (res.layers[0].digest, res.layers[0].size) in {(d, n) for d, n, *_ in s["blobs"]}
    assert s["files:tmp"] == []
    with open(os.path.join(sj.root, "blobs", "sha256", res.manifest_digest[7:])) as f:
        m = json.load(f)
    new = res.layers[0]
    assert m["layers"][-1] == {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                               "digest": new.digest, "size": new.size}  # fmt: skip
    # removing it leaves the base whole
    sj.ok("image", "rm", "localhost/committed:v1")
    sj.ok("container", "run", "--rm", BUSYBOX, "ls", "/bin/ls")
    sj.assert_consistent()


def test_commit_is_reproducible(sj, fixtures, tmp_path):
    fixtures.registry("plain")
    sj.ok("image", "pull", "-q", BUSYBOX)
    store = Store(sj.root)
    try:
        args = dict(base=BUSYBOX, source_date_epoch=1700000000, compression="zstd")
        a = commit(store, [Step("x", root=upper(tmp_path, "a"))], refs=["localhost/r:a"], **args)
        b = commit(store, [Step("x", root=upper(tmp_path, "b"))], refs=["localhost/r:b"], **args)
    finally:
        store.close()
    assert a.image_id == b.image_id and a.manifest_digest == b.manifest_digest
    assert sj.inspect("localhost/r:b")["Created"] == "2023-11-14T22:13:20Z"
    s = sj.assert_consistent()
    assert len(s["images"]) == 2  # busybox and the new one, under two names


def test_commit_from_scratch(sj, fixtures, tmp_path):
    """The unpacked busybox layer itself as the tree: a one-layer image of its own."""
    fixtures.registry("plain")
    sj.ok("image", "pull", "-q", BUSYBOX)
    lower = sj.inspect(BUSYBOX)["GraphDriver"]["Data"]["LowerDir"]
    store = Store(sj.root)
    try:
        res = commit(store, [Step("copy of busybox", root=lower)], config={"Cmd": ["sh"]},
                     refs=["localhost/scratch:1"])  # fmt: skip
    finally:
        store.close()
    info = sj.inspect("localhost/scratch:1")
    assert info["RootFS"]["Layers"] == [res.layers[0].diff_id]
    assert info["Os"] == "linux" and info["Architecture"] == "amd64"
    r = sj.ok("container", "run", "--rm", "localhost/scratch:1", "sh", "-c", "echo ok")
    assert r.out == "ok\n"


def test_failed_commit_leaves_the_store_as_it_was(sj, fixtures, tmp_path):
    fixtures.registry("plain")
    sj.ok("image", "pull", "-q", BUSYBOX)
    before = sj.store_state()
    store = Store(sj.root)
    good, bad = upper(tmp_path), tmp_path / "bad"
    (bad / "moved").mkdir(parents=True)
    os.setxattr(bad / "moved", "trusted.overlay.redirect", b"/x")  # cannot be a layer
    try:
        with pytest.raises(PackError):
            commit(store, [Step("ok", root=good), Step("bad", root=str(bad))], base=BUSYBOX,
                   refs=["localhost/never:1"])  # fmt: skip
    finally:
        store.close()
    assert sj.store_state() == before


def test_history_of_a_commit(sj, fixtures, tmp_path):
    """`image history` as docker shows it: the instruction (tabs as spaces, cut at 45
    characters with …, whole with --no-trunc), the layer's size, 0B for steps without one;
    -H=false: RFC 3339 times and sizes in bytes."""
    fixtures.registry("plain")
    sj.ok("image", "pull", "-q", BUSYBOX)
    long = "/bin/sh -c\tapt-get update && apt-get install -y --no-install-recommends curl"
    store = Store(sj.root)
    try:
        steps = [Step(long, root=upper(tmp_path)), Step("/bin/sh -c #(nop)  USER 1")]
        res = commit(store, steps, base=BUSYBOX, refs=["localhost/hist:1"],
                     source_date_epoch=1700000000)  # fmt: skip
    finally:
        store.close()
    out = sj.ok("image", "history", "localhost/hist:1").out.splitlines()
    assert out[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert out[1].startswith(res.image_id[7:19]) and "USER 1" in out[1] and " 0B" in out[1]
    assert "/bin/sh -c apt-get update && apt-get install…" in out[2]
    assert out[2].startswith("<missing>")
    full = sj.ok("image", "history", "--no-trunc", "-H=false", "localhost/hist:1").out
    row = full.splitlines()[2]
    assert long.replace("\t", " ") in row and "2023-11-14T22:13:20Z" in row
    size = sj.inspect("localhost/hist:1")["Size"] - sj.inspect(BUSYBOX)["Size"]
    assert f"   {size}" in row and size > 0
