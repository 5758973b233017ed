"""`container commit` (a container's changes as a new image, its config changed by -c) and
`container export` (its root file system as a tar), on the engine's containers."""

import io
import json
import os
import tarfile

from enginekit import BUSYBOX, wait_for


def test_commit_makes_an_image_of_the_changes(sj):
    sj.ok("image", "pull", "-q", BUSYBOX)
    sj.ok("container", "run", "--name", "src", "-e", "FROM_RUN=1", "-w", "/tmp", BUSYBOX, "sh",
          "-c", "echo made > /made; rm /etc/group; mkdir /d; chmod 700 /d; chown 5:6 /d;"
          " ln -s made /link")  # fmt: skip
    r = sj.ok("container", "commit", "-c", 'CMD ["cat", "/made"]', "-c", "ENV ADDED=2",
              "-c", "EXPOSE 8080", "-c", "LABEL team=core", "-m", "the message", "-a",
              "someone <s@example>", "src", "committed:1")  # fmt: skip
    image_id = r.out.strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    img = sj.inspect("committed:1")
    assert img["Id"] == image_id and img["Author"] == "someone <s@example>"
    c = img["Config"]
    assert c["Cmd"] == ["cat", "/made"]
    assert "FROM_RUN=1" in c["Env"] and "ADDED=2" in c["Env"]  # the container's env is kept
    assert c["WorkingDir"] == "/tmp" and c["ExposedPorts"] == {"8080/tcp": {}}
    assert c["Labels"] == {"team": "core"}
    base = sj.inspect(BUSYBOX)
    assert img["RootFS"]["Layers"][:-1] == base["RootFS"]["Layers"]  # one layer on the image
    hist = sj.ok("image", "history", "--no-trunc", "committed:1").out.splitlines()[1]
    assert "sh -c echo made > /made" in hist and "the message" in hist
    assert sj.ok("container", "run", "--rm", "committed:1").out == "made\n"
    script = "stat -c '%a %u:%g' /d; readlink /link; test -e /etc/group || echo gone"
    out = sj.ok("container", "run", "--rm", "committed:1", "sh", "-c", script).out
    assert out == "700 5:6\nmade\ngone\n"
    # without a name: a dangling image, its id printed
    r = sj.ok("container", "commit", "src")
    assert sj.inspect(r.out.strip())["RepoTags"] == []
    sj.assert_consistent()


def test_commit_pauses_a_running_container_and_lets_it_run_on(sj):
    sj.ok("image", "pull", "-q", BUSYBOX)
    sj.ok("container", "run", "-d", "--name", "live", BUSYBOX, "sh", "-c",
          "echo 1 > /state; exec sleep 300")  # fmt: skip
    wait_for(lambda: sj("container", "exec", "live", "cat", "/state").out == "1\n",
             "the container wrote its file")  # fmt: skip
    sj.ok("container", "commit", "live", "live:1")
    state = json.loads(sj.ok("container", "inspect", "live").out)[0]["State"]
    assert state["Running"] and not state["Paused"]
    sj.ok("container", "commit", "-p=false", "live", "live:2")
    for tag in ("live:1", "live:2"):
        assert sj.ok("container", "run", "--rm", tag, "cat", "/state").out == "1\n"
    sj.ok("container", "rm", "-f", "live")


def test_export_writes_the_merged_root(sj, tmp_path):
    sj.ok("image", "pull", "-q", BUSYBOX)
    sj.ok("container", "create", "--name", "ex", BUSYBOX, "true")  # never started
    sj.ok("container", "run", "--name", "ex2", BUSYBOX, "sh", "-c",
          "echo x > /new; rm /etc/passwd")  # fmt: skip
    out = tmp_path / "ex2.tar"
    sj.ok("container", "export", "-o", str(out), "ex2")
    with tarfile.open(out) as t:
        names = {m.name.rstrip("/") for m in t.getmembers()}
        assert t.extractfile("new").read() == b"x\n"
    assert "bin/busybox" in names and "new" in names and "etc/passwd" not in names
    assert not any(n.split("/")[-1].startswith(".wh.") for n in names)  # merged: no whiteouts
    out2 = tmp_path / "ex.tar"
    sj.ok("container", "export", "-o", str(out2), "ex")
    with tarfile.open(out2) as t:
        assert "etc/passwd" in {m.name for m in t.getmembers()}
    # a running container: its live root
    sj.ok("container", "run", "-d", "--name", "ex3", BUSYBOX, "sh", "-c",
          "echo live > /live; exec sleep 300")  # fmt: skip
    wait_for(lambda: sj("container", "exec", "ex3", "cat", "/live").out == "live\n",
             "the container wrote its file")  # fmt: skip
    sj.ok("container", "export", "-o", str(tmp_path / "ex3.tar"), "ex3")
    with tarfile.open(tmp_path / "ex3.tar") as t:
        assert t.extractfile("live").read() == b"live\n"
    sj.ok("container", "rm", "-f", "ex3")


def test_export_to_stdout_is_a_tar(sj):
    import subprocess

    from registrykit import sangja_binary

    sj.ok("image", "pull", "-q", BUSYBOX)
    sj.ok("container", "create", "--name", "so", BUSYBOX, "true")
    p = subprocess.run([sangja_binary(), "--root", sj.run_root, "container", "export", "so"],
                       capture_output=True, env=sj.env, timeout=120)  # fmt: skip
    assert p.returncode == 0, p.stderr
    with tarfile.open(fileobj=io.BytesIO(p.stdout)) as t:
        assert "bin/busybox" in t.getnames()


def test_commit_and_export_errors_leave_nothing(sj, tmp_path):
    sj.ok("image", "pull", "-q", BUSYBOX)
    sj.ok("container", "create", "--name", "c", BUSYBOX, "true")
    before = sj.store_state()
    r = sj("container", "commit", "nosuch", "x:1")
    assert r.rc == 1 and "No such container: nosuch" in r.err
    r = sj("container", "commit", "-c", "RUN true", "c", "x:1")
    assert r.rc == 1 and "RUN is not a valid change command" in r.err
    r = sj("container", "commit", "-c", "STOPSIGNAL NOPE", "c", "x:1")
    assert r.rc == 1 and "invalid signal" in r.err
    r = sj("container", "commit", "c", "Bad/Name")
    assert r.rc == 1 and "invalid reference format" in r.err
    assert sj.store_state() == before
    r = sj("container", "export", "-o", str(tmp_path / "no.tar"), "nosuch")
    assert r.rc == 1 and not os.path.exists(tmp_path / "no.tar")


def _inspect_state(sj, name):
    return json.loads(sj.ok("container", "inspect", name).out)[0]["State"]


def test_a_stopped_commit_resumes_the_container(sj):
    """SIGTERM (as SIGHUP and Ctrl-C) while commit holds a running container paused: the
    container is resumed, no image is made, exit 143.  A SIGKILL there: the next command
    that looks at the container finds the commit gone and resumes it; a pause of the
    user's own is left alone."""
    import signal

    from enginekit import kill9, start_stopped

    sj.ok("image", "pull", "-q", BUSYBOX)
    sj.ok("container", "run", "-d", "--name", "live", BUSYBOX, "sleep", "300")
    before = sj.store_state()
    p = start_stopped(sj, "container", "commit", "live", "never:1", failpoint="commit:paused")
    assert _inspect_state(sj, "live")["Paused"]
    p.send_signal(signal.SIGTERM)
    p.send_signal(signal.SIGCONT)
    p.communicate(timeout=60)
    assert p.returncode == 143
    state = _inspect_state(sj, "live")
    assert state["Running"] and not state["Paused"]
    assert sj.store_state() == before  # no image, no layer, no blob
    kill9(start_stopped(sj, "container", "commit", "live", "never:2", failpoint="commit:paused"))
    state = _inspect_state(sj, "live")
    assert state["Running"] and not state["Paused"]
    assert sj.ok("container", "exec", "live", "echo", "on").out == "on\n"
    assert sj.store_state() == before
    sj.ok("container", "pause", "live")
    assert _inspect_state(sj, "live")["Paused"]  # the user's pause stays
    sj.ok("container", "commit", "live", "while-paused:1")  # a paused one is not resumed
    assert _inspect_state(sj, "live")["Paused"]
    sj.ok("container", "rm", "-f", "live")


def test_commit_and_export_of_a_vfs_container(sj, tmp_path):
    """On the vfs driver (a whole copy of the image, no upper dir) commit finds the changes
    by comparing the copy with the image's layers, and export writes the copy."""
    sj.ok("image", "pull", "-q", BUSYBOX)
    sj.ok("--storage-driver", "vfs", "container", "run", "--name", "v", BUSYBOX, "sh", "-c",
          "echo made > /made; rm /etc/group; mkdir -p /d/e; chmod 700 /d; chown 5:6 /d;"
          " echo in > /d/e/f; ln -s made /link; echo more >> /etc/passwd")  # fmt: skip
    assert sj.ok("container", "inspect", "-f", "{{.Driver}}", "v").out.strip() == "vfs"
    sj.ok("container", "commit", "v", "vfs:1")
    img, base = sj.inspect("vfs:1"), sj.inspect(BUSYBOX)
    assert img["RootFS"]["Layers"][:-1] == base["RootFS"]["Layers"]  # one layer on the image
    script = ("cat /made /d/e/f; stat -c '%a %u:%g' /d; readlink /link; tail -1 /etc/passwd;"
              " test -e /etc/group || echo gone; test -e /bin/busybox && echo kept")  # fmt: skip
    out = sj.ok("container", "run", "--rm", "vfs:1", "sh", "-c", script).out
    assert out == "made\nin\n700 5:6\nmade\nmore\ngone\nkept\n"
    # the layer holds the changes only, not the copied image
    layer_size = img["Size"] - base["Size"]
    assert 0 < layer_size < 64 * 1024, layer_size
    cid = json.loads(sj.ok("container", "inspect", "v").out)[0]["Id"]
    assert not os.path.exists(os.path.join(sj.root, "containers", cid, "commit-changes"))
    out = tmp_path / "v.tar"
    sj.ok("container", "export", "-o", str(out), "v")
    with tarfile.open(out) as t:
        names = {m.name.rstrip("/") for m in t.getmembers()}
        assert t.extractfile("made").read() == b"made\n"
    assert "bin/busybox" in names and "etc/group" not in names
    # a running vfs container is paused for the commit (its copy is walked by path)
    sj.ok("--storage-driver", "vfs", "container", "run", "-d", "--name", "vl", BUSYBOX, "sh",
          "-c", "echo 1 > /state; exec sleep 300")  # fmt: skip
    wait_for(lambda: sj("container", "exec", "vl", "cat", "/state").out == "1\n",
             "the container wrote its file")  # fmt: skip
    sj.ok("container", "commit", "-p=false", "vl", "vfs:2")
    assert sj.ok("container", "run", "--rm", "vfs:2", "cat", "/state").out == "1\n"
    assert json.loads(sj.ok("container", "inspect", "vl").out)[0]["State"]["Running"]
    sj.ok("container", "rm", "-f", "vl")
