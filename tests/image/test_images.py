"""`image ls|tag|rm|inspect|history|prune` on a store filled from the registry."""

import os

from registrykit import PLAIN

BUSYBOX = f"{PLAIN}/test/busybox:latest"
DEBIAN = f"{PLAIN}/test/debian:bookworm"


def test_tag_ls_rm(sj, fixtures):
    fixtures.registry("plain")
    sj.ok("image", "pull", "-q", BUSYBOX)
    image_id = sj.inspect(BUSYBOX)["Id"]
    sj.ok("image", "tag", BUSYBOX, "mine/box:v1")
    sj.ok("image", "tag", image_id[7:19], "mine/box:v2")  # by id prefix
    ls = sj.ok("image", "ls").out.splitlines()
    assert ls[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    rows = {tuple(line.split()[:3]) for line in ls[1:]}
    short = image_id[7:19]
    assert rows == {(f"{PLAIN}/test/busybox", "latest", short), ("mine/box", "v1", short),
                    ("mine/box", "v2", short)}  # fmt: skip
    assert sj.ok("image", "ls", "-q").out == short + "\n"
    assert sj.ok("image", "ls", "mine/box").out.count("mine/box") == 2
    # by id, with several names: refused unless forced
    r = sj.fail("image", "rm", short)
    assert "must be forced" in r.err
    # a name among others: only untagged
    r = sj.ok("image", "rm", "mine/box:v1")
    assert r.out == "Untagged: mine/box:v1\n"
    sj.ok("image", "rm", "mine/box:v2")
    # the last name: the image and its layer go
    r = sj.ok("image", "rm", BUSYBOX)
    assert f"Deleted: {image_id}" in r.out
    s = sj.assert_consistent()
    assert s["images"] == [] and s["files:layers"] == [] and s["files:blobs/sha256"] == []
    r = sj.fail("image", "rm", BUSYBOX)
    assert "no such image" in r.err


def test_shared_layers_are_counted(sj, fixtures):
    fixtures.registry("plain")
    sj.ok("image", "pull", "-q", DEBIAN)
    sj.ok("image", "pull", "-q", f"{PLAIN}/test/debian:bookworm-zstd")  # same image id
    assert len(sj.images()) == 1
    assert sorted(sj.images()[0]["RepoTags"]) == [DEBIAN, DEBIAN + "-zstd"]
    sj.ok("image", "rm", DEBIAN)  # untag: the other tag holds it
    assert len(sj.store_state()["files:layers"]) == 3
    sj.ok("image", "rm", DEBIAN + "-zstd")
    assert sj.assert_consistent()["files:layers"] == []


def test_inspect_and_history(sj, fixtures):
    fixtures.registry("plain")
    sj.ok("image", "pull", "-q", DEBIAN)
    info = sj.inspect(DEBIAN)
    conf = fixtures.config("debian-bookworm")
    assert info["Config"] == conf["config"]
    assert info["Created"] == conf["created"]
    assert info["Os"] == "linux" and info["Architecture"] == "amd64"
    assert info["Config"]["Labels"] == {"org.example.fixture": "debian-bookworm"}
    assert info["Size"] > 100_000_000
    hist = sj.ok("image", "history", "--no-trunc", DEBIAN).out.splitlines()
    assert len(hist) == 1 + len(conf["history"])
    assert hist[1].startswith(info["Id"]) and 'CMD ["bash"]' in hist[1]
    assert "fixture layer 3" in hist[2] and "<missing>" in hist[2]
    assert "debootstrap" in hist[-1]
    r = sj.fail("image", "inspect", "nope/nope")
    assert "no such image" in r.err


def test_prune(sj, fixtures):
    fixtures.registry("plain")
    sj.ok("image", "pull", "-q", BUSYBOX)
    sj.ok("image", "pull", "-q", "--platform", "linux/arm64", f"{PLAIN}/test/multi")
    # a tag moved away leaves a dangling image
    sj.ok("image", "tag", BUSYBOX, f"{PLAIN}/test/multi:latest")
    assert any(not i["RepoTags"] for i in sj.images())
    # orphans a crash could leave: a blob and a layer no row names, a partial download
    os.makedirs(os.path.join(sj.root, "layers", "f" * 64))
    with open(os.path.join(sj.root, "blobs", "sha256", "e" * 64), "w") as f:
        f.write("orphan")
    with open(os.path.join(sj.root, "tmp", "d" * 64 + ".partial"), "w") as f:
        f.write("partial")
    r = sj.ok("image", "prune")
    assert "Deleted Images:" in r.out and "Total reclaimed space" in r.out
    s = sj.assert_consistent()
    assert len(s["images"]) == 1 and s["files:tmp"] == []
    r = sj.ok("image", "prune", "-a")
    assert sj.assert_consistent()["images"] == []
