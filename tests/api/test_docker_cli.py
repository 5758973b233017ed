"""Debian's docker CLI (20.10) against `sangja system service`: the seed's commands as
they are written, each checked by what it shows and by what the engine holds after."""

import json
import os
import subprocess

from apikit import wait_for
from enginekit import BUSYBOX

TRAP = 'trap "exit 7" TERM; while true; do sleep 0.1; done'


def pulled(api):
    api.ok("pull", BUSYBOX)


def test_version_info_and_api_versions(api):
    assert api.ok("version", "--format", "{{.Server.APIVersion}}").strip() == "1.41"
    assert api.ok("version", "--format", "{{.Server.Os}}").strip() == "linux"
    info = api.json("info", "--format", "{{json .}}")
    assert info["OSType"] == "linux" and info["Containers"] == 0
    assert info["DefaultRuntime"] == "sangja"
    # a client newer than the service is refused with dockerd's words
    r = api.fail("version", env={"DOCKER_API_VERSION": "1.99"})
    assert "client version 1.99 is too new" in r.err, r
    # an older one is served
    assert api.ok("version", "--format", "{{.Server.APIVersion}}",
                  env={"DOCKER_API_VERSION": "1.40"}).strip() == "1.41"  # fmt: skip


def test_pull_images_inspect_tag_history_rmi(api):
    out = api.ok("pull", BUSYBOX)
    assert "Pull complete" in out or "Already exists" in out, out
    assert f"Status: Downloaded newer image for {BUSYBOX}:latest" in out, out
    image_id = api.ok("inspect", "--format", "{{.Id}}", BUSYBOX).strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    assert image_id == api.sj.inspect(BUSYBOX)["Id"]  # the engine's own view agrees
    assert api.ok("image", "inspect", "--format", "{{.Os}}/{{.Architecture}}",
                  BUSYBOX).strip().startswith("linux/")  # fmt: skip
    api.ok("tag", BUSYBOX, "mine/box:v1")
    rows = api.ok("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").split("\n")
    assert f"mine/box:v1 {image_id[7:19]}" in rows
    assert f"{BUSYBOX}:latest {image_id[7:19]}" in rows
    assert api.ok("images", "-q", "--no-trunc", "mine/box").split() == [image_id]
    hist = api.ok("history", "--no-trunc", "--format", "{{.ID}}", "mine/box:v1").split()
    assert hist[0] == image_id
    assert api.ok("rmi", "mine/box:v1") == "Untagged: mine/box:v1\n"
    assert "mine/box" not in api.ok("images")
    r = api.fail("rmi", "mine/box:v1")
    assert "No such image" in r.err or "no such image" in r.err, r
    r = api.fail("inspect", "--type", "image", "nothing/here:x")
    assert "No such image" in r.err, r


def test_save_load(api, tmp_path):
    pulled(api)
    api.ok("tag", BUSYBOX, "saved/box:1")
    tar = str(tmp_path / "box.tar")
    api.ok("save", "-o", tar, "saved/box:1")
    names = subprocess.run(["tar", "tf", tar], capture_output=True, text=True).stdout.split()
    assert "manifest.json" in names
    api.ok("rmi", "saved/box:1")
    out = api.ok("load", "-i", tar)
    assert "Loaded image: saved/box:1" in out, out
    assert api.ok("images", "-q", "saved/box:1").strip()


def test_create_start_ps_stop_rm(api):
    pulled(api)
    cid = api.ok("create", "--name", "web", BUSYBOX, "sh", "-c", TRAP).strip()
    assert len(cid) == 64
    rows = api.ok("ps", "-a", "--format", "{{.Names}} {{.Status}}").splitlines()
    assert rows == ["web Created"], rows
    assert api.ok("ps", "-q") == ""
    api.ok("start", "web")
    assert api.ok("inspect", "--format", "{{.State.Running}}", "web").strip() == "true"
    assert api.ok("ps", "--format", "{{.ID}} {{.Names}}").split() == [cid[:12], "web"]
    assert api.sj("container", "inspect", "--format", "{{.State.Status}}",
                  "web").out.strip() == "running"  # fmt: skip
    top = api.ok("top", "web")
    assert "PID" in top and "sleep" in top or "sh -c" in top, top
    api.ok("rename", "web", "web2")
    assert api.ok("ps", "--format", "{{.Names}}").strip() == "web2"
    api.ok("stop", "web2")
    assert api.ok("wait", "web2").strip() == "7"  # its TERM trap's code
    assert api.ok("inspect", "--format", "{{.State.ExitCode}}", "web2").strip() == "7"
    api.ok("rm", "web2")
    assert api.ok("ps", "-aq") == ""
    r = api.fail("rm", "web2")
    assert "No such container: web2" in r.err, r
    r = api.fail("start", "nothing")
    assert "No such container: nothing" in r.err, r


def test_run_rm_exit_codes_and_streams(api):
    pulled(api)
    r = api.docker("run", "--rm", BUSYBOX, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (r.rc, r.out, r.err) == (3, "out\n", "err\n"), r
    assert api.ok("ps", "-aq") == ""  # --rm: gone when the client returns
    out = api.ok("run", "--rm", "-e", "A=1", "-w", "/tmp", "-h", "boxhost", BUSYBOX,
                 "sh", "-c", 'echo "$A $(pwd) $(hostname)"')  # fmt: skip
    assert out == "1 /tmp boxhost\n"
    r = api.docker("run", "--rm", BUSYBOX, "/no/such/command")
    assert r.rc in (126, 127), r
    assert api.ok("ps", "-aq") == ""
    r = api.docker("run", "--rm", "nothing/here:x")
    assert r.rc == 125, r


def test_run_detached_logs_wait(api):
    pulled(api)
    cid = api.ok("run", "-d", "--name", "talk", BUSYBOX, "sh", "-c",
                 "echo one; echo two >&2; echo three").strip()  # fmt: skip
    assert api.ok("wait", cid).strip() == "0"
    r = api.docker("logs", "talk")
    assert (r.out, r.err) == ("one\nthree\n", "two\n"), r
    # (stdout and stderr are two pipes: their lines' order in the log is not fixed)
    r = api.docker("logs", "--tail", "1", "talk")
    assert r.out + r.err in ("three\n", "two\n"), r
    stamped = api.ok("logs", "-t", "talk").splitlines()
    assert [s.split(" ", 1)[1] for s in stamped] == ["one", "three"]
    assert all(s[:4].isdigit() and "T" in s.split(" ")[0] for s in stamped), stamped
    # logs -f ends when the container does
    api.ok("run", "-d", "--name", "slow", BUSYBOX, "sh", "-c", "echo a; sleep 1; echo b")
    assert api.ok("logs", "-f", "slow") == "a\nb\n"
    api.ok("rm", "talk", "slow")


def test_log_rotation(api):
    """--log-opt max-size/max-file through the API: the same engine code (rotated files,
    read oldest first); the config shown as given, under Docker's driver name."""
    pulled(api)
    cid = api.ok("run", "-d", "--name", "rot", "--log-opt", "max-size=10k", "--log-opt",
                 "max-file=2", BUSYBOX, "seq", "1", "5000").strip()  # fmt: skip
    assert api.ok("wait", cid).strip() == "0"
    out = [int(x) for x in api.ok("logs", "rot").split()]
    assert out == list(range(out[0], 5001)) and out[0] > 1
    assert api.ok("logs", "--tail", "2", "rot") == "4999\n5000\n"
    lc = api.json("inspect", "--format", "{{json .HostConfig.LogConfig}}", "rot")
    assert lc == {"Type": "json-file", "Config": {"max-size": "10k", "max-file": "2"}}
    r = api.docker("run", "--log-opt", "max-size=1k", "--log-opt", "max-file=0", BUSYBOX, "true")
    assert r.rc == 125 and "max-file cannot be less than 1" in r.err, r
    api.ok("rm", "rot")
    assert api.ok("ps", "-aq") == ""


def test_exec(api):
    pulled(api)
    api.ok("run", "-d", "--name", "box", BUSYBOX, "sh", "-c", TRAP)
    r = api.docker("exec", "box", "sh", "-c", "echo out; echo err >&2; exit 4")
    assert (r.rc, r.out, r.err) == (4, "out\n", "err\n"), r
    assert api.ok("exec", "-i", "box", "cat", input="piped in\n") == "piped in\n"
    assert api.ok("exec", "-e", "X=y", "-w", "/etc", "box", "sh", "-c",
                  'echo "$X $(pwd)"') == "y /etc\n"  # fmt: skip
    assert api.ok("exec", "-u", "65534", "box", "id", "-u") == "65534\n"
    r = api.docker("exec", "box", "/no/such/command")
    assert r.rc in (126, 127), r
    # detached: it runs on its own
    api.ok("exec", "-d", "box", "sh", "-c", "echo done > /tmp/flag")
    from apikit import wait_for

    wait_for(lambda: api.docker("exec", "box", "cat", "/tmp/flag").out == "done\n", "exec -d")
    r = api.fail("exec", "nothing", "true")
    assert "No such container: nothing" in r.err, r
    api.ok("stop", "box")
    r = api.fail("exec", "box", "true")
    assert "is not running" in r.err, r
    api.ok("rm", "box")


def test_exec_and_run_with_a_tty(api):
    """exec -it and run -it under a real pty (the CLI's raw stream, no frames)."""
    from apikit import DOCKER, pty_run

    pulled(api)
    api.ok("run", "-d", "--name", "tt", BUSYBOX, "sh", "-c", TRAP)
    env = dict(api.env, TERM="xterm")
    with pty_run(env, [DOCKER, "exec", "-it", "tt", "sh"]) as t:
        t.read_until(b"# ")
        t.write(b"tty; echo ex$((6*7))\r")
        t.read_until(b"ex42")
        assert b"/dev/pts/" in t.out
        t.write(b"exit 5\r")
        assert t.wait() == 5
    with pty_run(env, [DOCKER, "run", "--rm", "-it", BUSYBOX, "sh"]) as t:
        t.read_until(b"# ")
        t.write(b"echo in$((2*3))tty\r")
        t.read_until(b"in6tty")
        t.write(b"exit\r")
        assert t.wait() == 0
    # run -it, then ctrl-p ctrl-q: the client leaves, the container runs on
    with pty_run(env, [DOCKER, "run", "-it", "--name", "kept", BUSYBOX, "sh"]) as t:
        t.read_until(b"# ")
        t.write(b"\x10\x11")
        assert t.wait() == 0
    assert api.ok("inspect", "--format", "{{.State.Running}}", "kept").strip() == "true"
    api.ok("rm", "-f", "tt", "kept")
    assert api.ok("ps", "-aq") == ""


def test_cp_both_ways_and_diff(api, tmp_path):
    pulled(api)
    api.ok("run", "-d", "--name", "files", BUSYBOX, "sh", "-c", TRAP)
    src = tmp_path / "in.txt"
    src.write_text("from the host\n")
    api.ok("cp", str(src), "files:/tmp/in.txt")
    assert api.ok("exec", "files", "cat", "/tmp/in.txt") == "from the host\n"
    api.ok("exec", "files", "sh", "-c", "mkdir /made && echo inside > /made/f")
    api.ok("cp", "files:/made", str(tmp_path / "out"))
    assert (tmp_path / "out" / "f").read_text() == "inside\n"
    diff = api.ok("diff", "files").splitlines()
    assert "A /made" in diff and "A /tmp/in.txt" in diff, diff
    r = api.fail("cp", "files:/no/such", str(tmp_path / "x"))
    assert "No such container:path: files:/no/such" in r.err, r  # the CLI's words for a 404
    assert not os.path.exists(tmp_path / "x")
    api.ok("rm", "-f", "files")


def test_pause_stats_restart_kill(api):
    pulled(api)
    api.ok("run", "-d", "--name", "p", BUSYBOX, "sh", "-c", TRAP)
    api.ok("pause", "p")
    assert api.ok("inspect", "--format", "{{.State.Status}}", "p").strip() == "paused"
    assert "(Paused)" in api.ok("ps", "--format", "{{.Status}}")
    api.ok("unpause", "p")
    assert api.ok("inspect", "--format", "{{.State.Status}}", "p").strip() == "running"
    stats = api.json("stats", "--no-stream", "--format", "{{json .}}", "p")
    assert stats["Name"] == "p" and stats["PIDs"] != "0", stats
    pid1 = api.ok("inspect", "--format", "{{.State.Pid}}", "p").strip()
    api.ok("restart", "-t", "5", "p")
    pid2 = api.ok("inspect", "--format", "{{.State.Pid}}", "p").strip()
    assert pid2 != pid1 and pid2 != "0"
    api.ok("kill", "p")
    assert api.ok("wait", "p").strip() == "137"
    api.ok("rm", "p")


def test_system_df(api):
    pulled(api)
    api.ok("create", "--name", "held", BUSYBOX, "true")
    rows = {}
    for line in api.ok("system", "df", "--format", "{{json .}}").splitlines():
        d = json.loads(line)
        rows[d["Type"]] = d
    assert rows["Images"]["TotalCount"] == "1" and rows["Images"]["Active"] == "1", rows
    assert rows["Containers"]["TotalCount"] == "1", rows
    api.ok("rm", "held")


def test_errors_are_dockers(api):
    """An unknown path is 404 `page not found`; a bad body is 400; a conflict 409 (the
    CLI shows each message as dockerd's)."""
    pulled(api)
    api.ok("create", "--name", "dup", BUSYBOX, "true")
    r = api.fail("create", "--name", "dup", BUSYBOX, "true")
    assert "Conflict" in r.err or "already in use" in r.err, r
    r = api.fail("rmi", BUSYBOX)
    assert "conflict" in r.err.lower(), r
    api.ok("rm", "dup")
    status = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", api.sock,
         "http://docker/v1.41/no/such/path"], capture_output=True, text=True).stdout  # fmt: skip
    assert status == "404"
    argv = ["curl", "-s", "--unix-socket", api.sock, "-X", "POST", "-H",
            "Content-Type: application/json", "-d", "{not json",
            "http://docker/v1.41/containers/create"]  # fmt: skip
    body = subprocess.run(argv, capture_output=True, text=True).stdout
    assert "invalid JSON" in json.loads(body)["message"]
    bad = {"Image": BUSYBOX, "Tty": True, "HostConfig": {"ConsoleSize": [-1, 5]}}
    argv[-3:] = ["-w", "\n%{http_code}", "-d", json.dumps(bad),
                 "http://docker/v1.41/containers/create"]  # fmt: skip
    body, _, status = subprocess.run(argv, capture_output=True, text=True).stdout.rpartition("\n")
    assert status == "400" and "ConsoleSize" in json.loads(body)["message"], (status, body)


def test_attach_and_detach(api):
    """docker attach to a running shell on a tty: input reaches it, its output comes back,
    ctrl-p ctrl-q detaches and leaves it running."""
    from apikit import DOCKER, pty_run

    pulled(api)
    api.ok("run", "-dit", "--name", "sh1", BUSYBOX, "sh")
    with pty_run(dict(api.env, TERM="xterm"), [DOCKER, "attach", "sh1"]) as t:
        t.write(b"echo at$((40+2))tach\r")
        t.read_until(b"at42tach")
        t.write(b"\x10\x11")
        t.read_until(b"read escape sequence")
        t.wait()
    assert api.ok("inspect", "--format", "{{.State.Running}}", "sh1").strip() == "true"
    # attach without a tty: stdin goes in, its output comes back, it ends with the container
    api.ok("run", "-di", "--name", "counter", BUSYBOX, "sh", "-c",
           "read x; for i in 1 2 3; do echo n$i; done")  # fmt: skip
    api.ok("rm", "-f", "sh1")
    r = subprocess.Popen([DOCKER, "attach", "counter"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, env=api.env, text=True)  # fmt: skip
    out, _ = r.communicate("go\n", timeout=60)
    assert out == "n1\nn2\nn3\n" and r.returncode == 0, (out, r.returncode)
    api.ok("rm", "counter")


def test_push_and_pull_back(api, push_registry):
    pulled(api)
    reg = push_registry("plain")
    dst = f"{reg.addr}/mine/box:v1"
    api.ok("tag", BUSYBOX, dst)
    out = api.ok("push", dst)
    assert f"The push refers to repository [{reg.addr}/mine/box]" in out, out
    assert "Pushed" in out and "v1: digest: sha256:" in out, out
    api.ok("rmi", dst)
    out = api.ok("pull", dst)
    assert "Digest: sha256:" in out and out.endswith(f"{dst}\n"), out
    assert api.ok("images", "-q", dst).strip()
    r = api.fail("push", f"{reg.addr}/mine/nothing:v9")
    assert "No such image" in r.err or "does not exist" in r.err, r


def test_login_and_pull_with_the_clients_credentials(api, fixtures):
    """The docker CLI keeps the credentials (its own config) and sends them with each
    pull (X-Registry-Auth); the service stores none."""
    from registrykit import AUTH, PASSWORD, USER

    fixtures.registry("auth")
    ref = f"{AUTH}/test/busybox"
    r = api.fail("pull", ref)
    assert "unauthorized" in r.err.lower(), r
    r = api.fail("login", "-u", USER, "-p", "wrong", AUTH)
    assert "unauthorized" in r.err.lower(), r
    out = api.ok("login", "-u", USER, "--password-stdin", AUTH, input=PASSWORD + "\n")
    assert "Login Succeeded" in out
    assert AUTH in open(os.path.join(api.env["DOCKER_CONFIG"], "config.json")).read()
    assert not os.path.exists(os.path.join(api.sj.home, ".config", "sangja", "auth.json"))
    api.ok("pull", ref)
    api.ok("logout", AUTH)
    api.ok("rmi", ref)
    api.fail("pull", ref)


def test_import_prune_update_and_run_options(api, tmp_path):
    pulled(api)
    # import: a root file system from the request body, with a change
    import tarfile

    tar = tmp_path / "rootfs.tar"
    with tarfile.open(tar, "w") as t:
        t.add("/bin/busybox", "bin/busybox")  # busybox-static (make test installs it)
        for cmd in ("sh", "echo"):
            link = tarfile.TarInfo(f"bin/{cmd}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            t.addfile(link)
    image_id = api.ok("import", "-c", 'CMD ["echo", "imported"]', str(tar), "imp:1").strip()
    assert image_id.startswith("sha256:")
    assert api.ok("run", "--rm", "imp:1") == "imported\n"
    # prune: stopped containers go, running ones stay
    api.ok("create", "--name", "dead", BUSYBOX, "true")
    api.ok("run", "-d", "--name", "live", BUSYBOX, "sh", "-c", TRAP)
    out = api.ok("container", "prune", "-f")
    assert "Total reclaimed space" in out
    assert api.ok("ps", "-a", "--format", "{{.Names}}").split() == ["live"]
    # update: the limits change on the running container
    api.ok("update", "--memory", "64m", "--memory-swap", "64m", "live")
    assert api.ok("inspect", "--format", "{{.HostConfig.Memory}}", "live").strip() == "67108864"
    api.ok("rm", "-f", "live")
    api.ok("rmi", "imp:1")
    assert api.ok("image", "prune", "-f").startswith("Total reclaimed space")
    # a few of run's options, checked inside
    out = api.ok("run", "--rm", "--read-only", "--cap-drop", "ALL", "-u", "1000", "-m", "32m",
                 BUSYBOX, "sh", "-c", "id -u; touch /x 2>&1 || true")  # fmt: skip
    assert out.splitlines()[0] == "1000" and "Read-only file system" in out, out
    env = tmp_path / "env"
    env.write_text("FROM_FILE=yes\n")
    assert api.ok("run", "--rm", "--env-file", str(env), BUSYBOX, "sh", "-c",
                  "echo $FROM_FILE") == "yes\n"  # fmt: skip
    # the seed's other run options: capabilities, privileged, CPU shares, restart policy
    caps = api.ok("run", "--rm", "--cap-drop", "ALL", "--cap-add", "NET_ADMIN", BUSYBOX,
                  "sh", "-c", "grep CapEff /proc/self/status")  # fmt: skip
    assert caps.split()[-1] == f"{1 << 12:016x}", caps  # CAP_NET_ADMIN only
    assert api.ok("run", "--rm", "--privileged", BUSYBOX, "sh", "-c",
                  "mkdir -p /tmp/m && mount -t tmpfs t /tmp/m && echo mounted"
                  ).splitlines()[-1] == "mounted"  # fmt: skip
    api.ok("run", "-d", "--name", "shares", "-c", "512", BUSYBOX, "sleep", "300")
    assert api.ok("inspect", "--format", "{{.HostConfig.CpuShares}}", "shares").strip() == "512"
    api.ok("rm", "-f", "shares")
    api.ok("run", "-d", "--name", "again", "--restart", "on-failure:2", BUSYBOX, "sh", "-c",
           "exit 3")  # fmt: skip
    fmt = "{{.RestartCount}} {{.State.Status}}"
    wait_for(lambda: api.ok("inspect", "--format", fmt, "again").strip() == "2 exited",
             "two restarts, then the end")  # fmt: skip
    assert api.ok("inspect", "--format", "{{.State.ExitCode}}", "again").strip() == "3"
    api.ok("rm", "-f", "again")


def test_run_pulls_a_missing_image(api):
    """create answers 404 for an image the store lacks; the CLI then pulls it and asks
    again (dockerd's way: the service itself never pulls on create)."""
    r = api.docker("run", "--rm", BUSYBOX, "echo", "fresh")
    assert r.rc == 0 and r.out.endswith("fresh\n"), r
    assert f"Unable to find image '{BUSYBOX}:latest' locally" in r.err, r
    assert api.ok("images", "-q", BUSYBOX).strip()


def test_exec_start_frames_on_the_wire(api):
    """The hijacked stream itself: `101 UPGRADED` to a client that asks for the upgrade
    (plain `200 OK` to one that does not), then Docker's frames: [1 stdout | 2 stderr,
    0, 0, 0, big-endian uint32 size] + the bytes; the exit code recorded for inspect."""
    import socket
    import struct

    from apikit import GUARD

    pulled(api)
    api.ok("run", "-d", "--name", "wire", BUSYBOX, "sh", "-c", TRAP)

    def request(method, path, body, upgrade):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(api.sock)
        data = json.dumps(body).encode()
        head = (f"{method} {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\n")  # fmt: skip
        # the service closes a hijacked connection when the exec ends, others when asked
        head += "Connection: Upgrade\r\nUpgrade: tcp\r\n" if upgrade else "Connection: close\r\n"
        s.settimeout(GUARD)  # a hang guard: recv raises rather than blocks for ever
        s.sendall(head.encode() + b"\r\n" + data)
        got = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += b
        s.close()
        return got

    for upgrade, status in ((True, b"HTTP/1.1 101 UPGRADED"), (False, b"HTTP/1.1 200 OK")):
        created = request("POST", "/v1.41/containers/wire/exec",
                          {"Cmd": ["sh", "-c", "printf out; printf err >&2; exit 9"],
                           "AttachStdout": True, "AttachStderr": True}, False)  # fmt: skip
        exec_id = json.loads(created.split(b"\r\n\r\n", 1)[1])["Id"]
        raw = request("POST", f"/v1.41/exec/{exec_id}/start", {"Detach": False}, upgrade)
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(status), head
        assert b"Content-Type: application/vnd.docker.raw-stream" in head
        frames = {}
        while body:
            kind, size = struct.unpack(">BxxxL", body[:8])
            frames[kind] = frames.get(kind, b"") + body[8 : 8 + size]
            body = body[8 + size :]
        assert frames == {1: b"out", 2: b"err"}, frames
        inspect = json.loads(request("GET", f"/v1.41/exec/{exec_id}/json", {}, False)
                             .split(b"\r\n\r\n", 1)[1])  # fmt: skip
        assert inspect["ExitCode"] == 9 and inspect["Running"] is False
    api.ok("rm", "-f", "wire")
