"""`sangja system df` (every figure the `du -sb` of the same directories), `system info`
and `version` (Docker's fields that apply, in text and JSON)."""

import json
import os
import subprocess

from registrykit import PLAIN

BUSYBOX = f"{PLAIN}/test/busybox"
DEBIAN = f"{PLAIN}/test/debian:bookworm"


def du(*paths):
    """`du -sb` of the paths together (a hard-linked inode counted once)."""
    out = subprocess.run(["du", "-scb", *paths], capture_output=True, text=True, check=True)
    return int(out.stdout.splitlines()[-1].split()[0])


def _df(sj):
    return json.loads(sj.ok("system", "df", "-v", "--format", "json").out)


def test_df_figures_are_du_of_the_directories(sj, fixtures):
    fixtures.registry("plain")
    sj.ok("image", "pull", "-q", BUSYBOX)
    sj.ok("image", "pull", "-q", DEBIAN)
    sj.ok("volume", "create", "small")
    sj.ok("volume", "create", "big")
    data = os.path.join(sj.root, "volumes", "big", "_data")
    os.makedirs(os.path.join(data, "d"))
    with open(os.path.join(data, "d", "blob"), "wb") as f:
        f.write(os.urandom(123_457))
    os.link(os.path.join(data, "d", "blob"), os.path.join(data, "hardlink"))  # counted once
    os.symlink("d/blob", os.path.join(data, "symlink"))
    sj.ok("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "opts")  # left out
    df = _df(sj)
    layers = os.path.join(sj.root, "layers")
    assert df["LayersSize"] == du(*[os.path.join(layers, c) for c in os.listdir(layers)])
    from sangja.image.store import Store

    store = Store(sj.root)
    for img in df["Images"]:
        chains = [ly.chain_id for ly in store.layers_of(img["Id"])]
        assert img["Size"] == du(*[os.path.join(layers, c) for c in chains])
        assert img["Containers"] == 0 and img["SharedSize"] == 0  # no layer shared here
    vols = {v["Name"]: v for v in df["Volumes"]}
    assert set(vols) == {"small", "big"}  # a volume with mount options is not local data
    for name, v in vols.items():
        assert v["UsageData"] == {"Size": du(os.path.join(sj.root, "volumes", name, "_data")),
                                  "RefCount": 0}  # fmt: skip
    assert vols["big"]["UsageData"]["Size"] > 123_457
    # the summary: the same figures, Docker's columns and units
    rows = {r["Type"]: r for r in map(json.loads, sj.ok("system", "df", "--format",
                                                         "json").out.splitlines())}  # fmt: skip
    assert rows["Images"]["TotalCount"] == "2" and rows["Images"]["Active"] == "0"
    total = df["LayersSize"]
    assert rows["Images"]["Reclaimable"].endswith("(100%)")
    from sangja.cli.output import size

    assert rows["Images"]["Size"] == size(total)
    vsize = sum(v["UsageData"]["Size"] for v in vols.values())
    assert rows["Local Volumes"]["Size"] == size(vsize)
    assert rows["Local Volumes"]["Reclaimable"] == f"{size(vsize)} (100%)"
    table = sj.ok("system", "df").out.splitlines()
    assert table[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert table[1].split()[:3] == ["Images", "2", "0"]
    assert [line.split()[0] for line in table[1:]] == ["Images", "Containers", "Local", "Build"]
    verbose = sj.ok("system", "df", "-v").out
    assert "Images space usage:" in verbose and "Local Volumes space usage:" in verbose
    assert "test/busybox   latest" in verbose
    # a layer measured once is remembered (layers never change): the same figure again
    assert _df(sj)["LayersSize"] == total
    sj.ok("image", "rm", BUSYBOX)
    assert _df(sj)["LayersSize"] == du(*[os.path.join(layers, c) for c in os.listdir(layers)])


def test_info_and_version(sj):
    info = json.loads(sj.ok("info", "--format", "json").out)
    again = json.loads(sj.ok("system", "info", "--format", "{{json .}}").out)
    for d in (info, again):
        del d["SystemTime"], d["NFd"]
    assert info == again
    for k in ("ID", "Containers", "Images", "Driver", "DriverStatus", "CgroupDriver",
              "CgroupVersion", "KernelVersion", "OperatingSystem", "OSType", "Architecture",
              "NCPU", "MemTotal", "DockerRootDir", "Name", "ServerVersion", "Runtimes",
              "DefaultRuntime", "Warnings", "IndexServerAddress"):  # fmt: skip
        assert k in info, k
    assert info["DockerRootDir"] == sj.root and info["Images"] == 0
    assert info["KernelVersion"] == os.uname().release
    assert info["NCPU"] == len(os.sched_getaffinity(0))
    assert info["CgroupVersion"] in ("1", "2") and info["CgroupDriver"] == "cgroupfs"
    assert info["ID"] == json.loads(sj.ok("info", "--format", "json").out)["ID"]  # stable
    with open("/proc/meminfo") as f:
        assert info["MemTotal"] == int(f.readline().split()[1]) * 1024
    text = sj.ok("info").out
    assert f"Root Dir: {sj.root}\n" in text and "Storage Driver: overlay\n" in text
    assert f"Kernel Version: {os.uname().release}\n" in text
    v = json.loads(sj.ok("version", "--format", "json").out)
    from sangja import OCI_VERSION, __version__

    assert v["Client"]["Version"] == v["Server"]["Version"] == __version__
    names = [c["Name"] for c in v["Server"]["Components"]]
    assert names[:2] == ["Engine", "sangja"]
    assert v["Server"]["Components"][1]["Details"]["OCIRuntimeSpec"] == OCI_VERSION
    text = sj.ok("version").out
    assert text.startswith("Client: sangja\n") and "\nServer: sangja\n" in text
    assert sj.ok("version", "--format", "{{.Server.Version}}").out == __version__ + "\n"
    assert sj.ok("info", "--format", "{{.Driver}} {{.Images}}").out == "overlay 0\n"


def test_system_prune_removes_only_what_it_should(sj):
    from enginekit import inspect

    def names():
        ids = sj.ok("container", "ps", "-a", "--format", "{{.Names}}").out.split()
        return sorted(ids)

    def vols():
        return sorted(sj.ok("volume", "ls", "-q").out.split())

    def tags():
        images = json.loads(sj.ok("image", "ls", "--format", "json").out)
        return sorted(t for i in images for t in i["RepoTags"])

    sj.ok("image", "pull", "-q", DEBIAN)
    sj.ok("container", "run", "-d", "--name", "up", "-v", "/upanon", BUSYBOX, "sleep", "600")
    sj.ok("container", "create", "--name", "down", "--label", "prune=yes", "-v", "/downanon",
          "-v", "named:/n", BUSYBOX)  # fmt: skip
    sj.ok("container", "create", "--name", "keep", BUSYBOX)
    sj.ok("volume", "create", "spare")
    anon = {m["Destination"]: m["Name"] for n in ("up", "down") for m in inspect(sj, n)["Mounts"]
            if m["Destination"] != "/n"}  # fmt: skip
    all_vols = sorted([anon["/upanon"], anon["/downanon"], "named", "spare"])
    assert vols() == all_vols
    r = sj.ok("system", "prune", "--volumes", input="n\n")  # a no removes nothing
    assert "WARNING! This will remove:" in r.out and "anonymous volumes" in r.out
    assert names() == ["down", "keep", "up"] and vols() == all_vols
    keep = inspect(sj, "keep")["Id"]
    r = sj.ok("system", "prune", "-f", "--filter", "label!=prune")
    assert r.out.startswith(f"Deleted Containers:\n{keep}\n\n") and "Total reclaimed space" in r.out
    assert names() == ["down", "up"]
    down = inspect(sj, "down")["Id"]
    r = sj.ok("system", "prune", "-f", "--filter", "label=prune=yes")
    assert r.out.startswith(f"Deleted Containers:\n{down}\n\n")
    assert names() == ["up"] and vols() == all_vols  # a pruned container's volumes stay
    r = sj.ok("system", "prune", "-f", "--volumes")
    assert f"Deleted Volumes:\n{anon['/downanon']}\n" in r.out
    assert names() == ["up"]  # running: kept; named volumes and the one in use: kept
    assert vols() == sorted([anon["/upanon"], "named", "spare"])
    assert tags() == sorted([f"{BUSYBOX}:latest", DEBIAN])  # nothing dangling
    r = sj.ok("system", "prune", "-a", "-f")
    assert f"untagged: {DEBIAN}" in r.out and "deleted: sha256:" in r.out
    assert tags() == [f"{BUSYBOX}:latest"]  # the running container's image stays
    sj.ok("container", "rm", "-f", "-v", "up")
    sj.ok("volume", "rm", "named", "spare")


def test_system_prune_takes_unused_networks_and_build_cache(sj, tmp_path):
    """As Docker's: user networks no container is on go, and the build cache no image uses
    (`-a`: all of it); `system df` counts the cache."""
    sj.ok("network", "create", "spare-net")
    sj.ok("network", "create", "busy-net")
    sj.ok("container", "run", "-d", "--name", "up", "--network", "busy-net", BUSYBOX,
          "sleep", "600")  # fmt: skip
    (tmp_path / "Dockerfile").write_text(f"FROM {BUSYBOX}\nRUN echo hi > /x\n")
    sj.ok("build", "-q", "-t", "built", str(tmp_path))
    cache = {r["Type"]: r for r in map(json.loads, sj.ok("system", "df", "--format",
                                                          "json").out.splitlines())}  # fmt: skip
    assert cache["Build Cache"]["TotalCount"] != "0"
    assert _df(sj)["BuildCache"] and all(c["Shared"] for c in _df(sj)["BuildCache"] if c["Size"])
    r = sj.ok("system", "prune", "-f")
    assert "Deleted Networks:\nspare-net\n" in r.out
    assert "Deleted build cache objects" not in r.out  # the image `built` uses its layer
    nets = sj.ok("network", "ls", "--format", "{{.Name}}").out.split()
    assert "busy-net" in nets and "spare-net" not in nets
    r = sj.ok("system", "prune", "-a", "-f")
    assert "Deleted build cache objects:\n" in r.out
    assert _df(sj)["BuildCache"] == []
    assert sj.ok("build", "-q", str(tmp_path)).rc == 0  # builds again from nothing
    sj.ok("container", "rm", "-f", "up")
