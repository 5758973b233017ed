"""`cp` both ways (Docker's semantics for files, directories and `dir/.`, `-a`, tar streams
with '-'), paths resolved inside the container's root only, and `diff`."""

import io
import os
import tarfile

from enginekit import BUSYBOX, inspect, run_bytes


def _running(sj, name="f"):
    sj.ok("container", "run", "-d", "--name", name, BUSYBOX, "sh", "-c",
          "mkdir -p /data/sub && echo in-container > /data/sub/file && echo top > /data/top"
          " && ln -sfn / /escape && ln -sfn /data /datalink && sleep 1000")  # fmt: skip
    from enginekit import wait_for

    wait_for(lambda: sj("container", "exec", name, "test", "-L", "/datalink").rc == 0,
             "the container's files")  # fmt: skip


def test_cp_into_the_container(sj, tmp_path):
    _running(sj)
    src = tmp_path / "hostfile"
    src.write_text("from host\n")
    os.chown(src, 1234, 5678)
    sj.ok("container", "cp", str(src), "f:/tmp")
    assert sj.ok("container", "exec", "f", "cat", "/tmp/hostfile").out == "from host\n"
    assert sj.ok("container", "exec", "f", "stat", "-c", "%u:%g", "/tmp/hostfile").out == "0:0\n"
    sj.ok("container", "cp", "-a", str(src), "f:/tmp/renamed")
    assert sj.ok("container", "exec", "f", "stat", "-c", "%u:%g",
                 "/tmp/renamed").out == "1234:5678\n"  # fmt: skip
    # a directory: to a new name (its contents), into an existing one, or its contents
    d = tmp_path / "dir"
    (d / "inner").mkdir(parents=True)
    (d / "inner" / "a").write_text("a\n")
    (d / "b").write_text("b\n")
    sj.ok("container", "cp", str(d), "f:/newdir")
    sj.ok("container", "cp", str(d), "f:/tmp")
    sj.ok("container", "cp", str(d) + "/.", "f:/data")
    ls = sj.ok("container", "exec", "f", "sh", "-c",
               "cat /newdir/inner/a /tmp/dir/b /data/b /data/inner/a").out  # fmt: skip
    assert ls == "a\nb\nb\na\n"
    # a symlink in the container leads inside the container, never to the host
    sj.ok("container", "cp", str(src), "f:/escape/tmp/via-link")
    assert not os.path.exists("/tmp/via-link")
    assert sj.ok("container", "exec", "f", "cat", "/tmp/via-link").out == "from host\n"
    r = sj("container", "cp", str(d), "f:/data/top")
    assert r.rc == 1 and "cannot copy a directory to a file" in r.err
    r = sj("container", "cp", str(tmp_path / "nope"), "f:/tmp")
    assert r.rc == 1 and "could not find the file" in r.err


def test_cp_out_of_the_container(sj, tmp_path):
    _running(sj)
    sj.ok("container", "cp", "f:/data/top", str(tmp_path / "top.txt"))
    assert (tmp_path / "top.txt").read_text() == "top\n"
    sj.ok("container", "cp", "f:/data", str(tmp_path))  # into an existing dir: data/
    assert (tmp_path / "data" / "sub" / "file").read_text() == "in-container\n"
    sj.ok("container", "cp", "f:/data", str(tmp_path / "copy"))  # a new name
    assert (tmp_path / "copy" / "top").read_text() == "top\n"
    sj.ok("container", "cp", "f:/data/.", str(tmp_path / "copy"))
    # through the container's symlinks: its root, not the host's
    sj.ok("container", "cp", "f:/escape/data/top", str(tmp_path / "t2"))
    assert (tmp_path / "t2").read_text() == "top\n"
    sj.ok("container", "cp", "f:/etc/hostname", str(tmp_path / "hn"))
    assert (tmp_path / "hn").read_text() == inspect(sj, "f")["Id"][:12] + "\n"
    # the link itself, or (-L) what it points to
    sj.ok("container", "cp", "f:/datalink", str(tmp_path / "ln"))
    assert os.readlink(tmp_path / "ln") == "/data"
    sj.ok("container", "cp", "-L", "f:/datalink", str(tmp_path / "followed"))
    assert (tmp_path / "followed" / "top").read_text() == "top\n"
    r = sj("container", "cp", "f:/nope", str(tmp_path))
    assert r.rc == 1 and "nope" in r.err


def test_cp_tar_streams_and_stopped_containers(sj, tmp_path):
    _running(sj)
    raw = run_bytes(sj, "container", "cp", "f:/data/sub", "-")
    with tarfile.open(fileobj=io.BytesIO(raw)) as t:
        assert sorted(t.getnames()) == ["sub", "sub/file"]
        assert t.extractfile("sub/file").read() == b"in-container\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = b"streamed\n"
        info = tarfile.TarInfo("s.txt")
        info.size, info.uid = len(data), 42
        t.addfile(info, io.BytesIO(data))
    run_bytes(sj, "container", "cp", "-", "f:/tmp", input=buf.getvalue())
    assert sj.ok("container", "exec", "f", "stat", "-c", "%u %s", "/tmp/s.txt").out == "42 9\n"
    # a stopped container: its files are there too; nothing stays mounted after
    sj.ok("container", "stop", "-t", "0", "f")
    sj.ok("container", "cp", "f:/data/top", str(tmp_path / "after-stop"))
    assert (tmp_path / "after-stop").read_text() == "top\n"
    sj.ok("container", "cp", str(tmp_path / "after-stop"), "f:/data/back")
    sj.ok("container", "start", "f")
    assert sj.ok("container", "exec", "f", "cat", "/data/back").out == "top\n"


def test_diff(sj):
    sj.ok("container", "run", "--name", "d", BUSYBOX, "sh", "-c",
          "echo new > /new; echo more >> /etc/passwd; rm /bin/ls; mkdir -p /a/b")  # fmt: skip
    out = sj.ok("container", "diff", "d").out.splitlines()
    assert out == ["A /a", "A /a/b", "C /bin", "D /bin/ls", "C /etc", "C /etc/passwd",
                   "A /new"]  # fmt: skip
