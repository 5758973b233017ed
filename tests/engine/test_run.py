"""`sangja container run`: an image from the registry, through the runtime's Python API."""

import json
import os
import pty
import subprocess

from enginekit import runtime_entries
from registrykit import PLAIN, sangja_binary

BUSYBOX = f"{PLAIN}/test/busybox"
DEBIAN = f"{PLAIN}/test/debian:bookworm"


def test_run_busybox_prints_and_exits_with_its_code(sj, fixtures):
    fixtures.registry("plain")
    sj.ok("image", "pull", "-q", BUSYBOX)
    r = sj("container", "run", "--rm", BUSYBOX, "sh", "-c", "echo hello from busybox; exit 3")
    assert r.rc == 3, r
    assert r.out == "hello from busybox\n"
    assert os.listdir(os.path.join(sj.root, "containers")) == []
    assert sj.ok("container", "ls", "-a").out.strip().splitlines()[1:] == []
    assert not runtime_entries(sj.run_root)  # the runtime's state is gone too


def test_run_pulls_a_missing_image_and_uses_the_image_config(sj, fixtures):
    fixtures.registry("plain")
    r = sj("container", "run", "--rm", DEBIAN, "sh", "-c",
           'echo "$PATH|$HOME|$(pwd)|$(id -u):$(id -g)|$(hostname)";'
           " ls /fixtures/symlinks")  # fmt: skip
    assert r.rc == 0, r
    assert f"Unable to find image '{DEBIAN}' locally" in r.err
    first = r.out.splitlines()[0].split("|")
    assert first[:4] == ["/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                         "/root", "/", "0:0"]  # fmt: skip
    assert len(first[4]) == 12  # the container id's short form
    assert "escaping-dotdot" in r.out
    # the image's Cmd (bash) by default
    r = sj("container", "run", "--rm", DEBIAN)
    assert r.rc == 0 and r.out == ""  # bash with stdin at /dev/null: nothing to do


def test_run_options(sj, fixtures):
    fixtures.registry("plain")
    sj.ok("image", "pull", "-q", DEBIAN)
    r = sj.ok("container", "run", "--rm", "-e", "A=1", "-e", "PATH=/bin", "-w", "/fixtures",
              "-u", "nobody", "--hostname", "box", DEBIAN, "/bin/sh", "-c",
              'echo "$A|$PATH|$(pwd)|$(/usr/bin/id -un):$(/usr/bin/id -gn)|$HOME|'
              '$(hostname)"')  # fmt: skip
    assert r.out == "1|/bin|/fixtures|nobody:nogroup|/nonexistent|box\n"
    r = sj.ok("container", "run", "--rm", "-u", "1000:42", DEBIAN, "id")
    assert r.out.startswith("uid=1000 gid=42(shadow)")
    r = sj.ok("container", "run", "--rm", "-u", "nobody:root", DEBIAN, "id", "-g")
    assert r.out == "0\n"
    r = sj("container", "run", "--rm", "-u", "nosuchuser", DEBIAN, "true")
    assert r.rc == 125 and "unable to find user nosuchuser" in r.err
    r = sj("container", "run", "--rm", DEBIAN, "nosuchcommand")
    assert r.rc == 127 and "executable file not found" in r.err
    r = sj("container", "run", "--rm", DEBIAN, "/etc/passwd")
    assert r.rc == 126, r
    r = sj.ok("container", "run", "--rm", "--entrypoint", "/bin/echo", DEBIAN, "a", "b")
    assert r.out == "a b\n"
    # stdin: /dev/null without -i, ours with -i
    r = sj.ok("container", "run", "--rm", "-i", DEBIAN, "cat", input="from stdin\n")
    assert r.out == "from stdin\n"
    r = sj.ok("container", "run", "--rm", DEBIAN, "cat", input="ignored\n")
    assert r.out == ""


def test_run_keeps_the_container_without_rm(sj, fixtures):
    fixtures.registry("plain")
    sj.ok("image", "pull", "-q", BUSYBOX)
    r = sj("container", "run", "--name", "keep", BUSYBOX, "sh", "-c", "echo x > /new; exit 7")
    assert r.rc == 7
    ls = sj.ok("container", "ls", "-a").out
    assert "keep" in ls and "Exited (7)" in ls
    rows = [c for c in os.listdir(os.path.join(sj.root, "containers"))]
    assert len(rows) == 1
    upper = os.path.join(sj.root, "containers", rows[0], "upper")
    assert open(os.path.join(upper, "new")).read() == "x\n"  # its changes stay
    # the image is in use: rm refuses
    r = sj.fail("image", "rm", BUSYBOX)
    assert "used by container" in r.err
    r = sj("container", "run", "--name", "keep", BUSYBOX, "true")
    assert r.rc == 125 and 'The container name "/keep" is already in use' in r.err
    # -f: the names go, the image stays for the container
    r = sj.ok("image", "rm", "-f", BUSYBOX)
    assert "Untagged" in r.out and "Deleted" not in r.out
    assert [i["RepoTags"] for i in sj.images()] == [[]]
    sj.ok("container", "rm", "keep")
    assert os.listdir(os.path.join(sj.root, "containers")) == []
    sj.ok("image", "prune")
    assert sj.assert_consistent()["images"] == []


def test_run_with_a_terminal(sj, fixtures):
    fixtures.registry("plain")
    sj.ok("image", "pull", "-q", BUSYBOX)
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(sangja_binary(), [sangja_binary(), "--root", sj.run_root, "container", "run",
                                    "--rm", "-t", BUSYBOX, "sh", "-c", "tty; echo $TERM"],
                  sj.env)  # fmt: skip
    out = b""
    while True:
        try:
            b = os.read(fd, 4096)
        except OSError:
            break
        if not b:
            break
        out += b
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, out
    lines = out.decode().replace("\r", "").split("\n")
    assert lines[0].startswith("/dev/pts/") and lines[1] == "xterm", out


def test_run_unknown_image(sj, fixtures):
    fixtures.registry("plain")
    r = sj("container", "run", "--rm", f"{PLAIN}/test/nope", "true")
    assert r.rc == 125 and "not found" in r.err.splitlines()[-1]
    r = sj("container", "run", "--rm", "--pull", "never", BUSYBOX, "true")
    assert r.rc == 125 and "no such image" in r.err
    assert sj.store_state()["images"] == []


def test_config_json_from_the_image(sj, fixtures):
    """The bundle's config.json: the runtime's default spec with the image's settings."""
    fixtures.registry("plain")
    sj.ok("image", "pull", "-q", DEBIAN)
    r = sj("container", "run", "--name", "c1", DEBIAN, "true")
    assert r.rc == 0
    cid = os.listdir(os.path.join(sj.root, "containers"))[0]
    with open(os.path.join(sj.root, "containers", cid, "config.json")) as f:
        spec = json.load(f)
    assert spec["process"]["args"] == ["true"]
    assert spec["root"] == {"path": "rootfs", "readonly": False}
    assert spec["annotations"]["org.example.fixture"] == "debian-bookworm"
    assert "CAP_CHOWN" in spec["process"]["capabilities"]["bounding"]
    assert spec["process"]["noNewPrivileges"] is False
    assert {"/etc/hostname", "/etc/hosts"} <= {m["destination"] for m in spec["mounts"]}
    sj.ok("container", "rm", "c1")


def test_no_fd_the_caller_leaks_reaches_the_monitor_or_the_container(sj, fixtures, tmp_path):
    # an inheritable fd of the CLI's caller (a careless shell, a service manager): conmon
    # outlives the CLI, so holding it would keep the caller's file or socket open
    from enginekit import inspect

    fixtures.registry("plain")
    sj.ok("image", "pull", "-q", BUSYBOX)
    marker = tmp_path / "leaked-by-the-caller"
    marker.write_text("x")
    fd = os.open(marker, os.O_RDONLY)
    os.set_inheritable(fd, True)
    try:
        r = subprocess.run([sangja_binary(), "--root", sj.run_root, "container", "run", "-d",
                            "--name", "fds", BUSYBOX, "sleep", "1000"], env=sj.env,
                           pass_fds=(fd,), capture_output=True, text=True, timeout=120)  # fmt: skip
    finally:
        os.close(fd)
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    with open(os.path.join(sj.root, "containers", cid, "monitor", "conmon.pid")) as f:
        conmon = int(f.read())
    for pid in (conmon, inspect(sj, "fds")["State"]["Pid"]):
        targets = [os.readlink(f"/proc/{pid}/fd/{n}") for n in os.listdir(f"/proc/{pid}/fd")]
        assert str(marker) not in targets, (pid, targets)
