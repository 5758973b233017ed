"""POST /build driven by Debian's docker CLI 20.10 (the classic builder: the service's
_ping says Builder-Version 1) and by docker-py's images.build: the JSON progress stream,
the cache, --target, a failing RUN, -q, and what the engine holds after."""

import json
import os

import pytest
from apikit import dockerpy_missing
from enginekit import BUSYBOX

DOCKERFILE = f"""\
FROM {BUSYBOX} AS base
ARG GREETING=hello
RUN echo "$GREETING from base" > /greeting
COPY . /ctx/

FROM base AS tools
RUN echo tools > /tools

FROM {BUSYBOX}
LABEL stage=final
COPY --from=base /greeting /greeting
COPY --from=base /ctx /ctx
CMD ["cat", "/greeting"]
"""


def project(d, dockerfile=DOCKERFILE):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "Dockerfile"), "w") as f:
        f.write(dockerfile)
    with open(os.path.join(d, "kept.txt"), "w") as f:
        f.write("kept\n")
    with open(os.path.join(d, "secret.key"), "w") as f:
        f.write("never in the image\n")
    os.makedirs(os.path.join(d, "logs"), exist_ok=True)
    with open(os.path.join(d, "logs", "x.log"), "w") as f:
        f.write("noise\n")
    with open(os.path.join(d, ".dockerignore"), "w") as f:
        f.write("*.key\nlogs\n")
    return str(d)


def test_build_multistage_args_ignore_cache_target(api, tmp_path):
    ctx = project(tmp_path / "ctx")
    out = api.ok("build", "-t", "built/app:1", "-t", "built/app:two",
                 "--build-arg", "GREETING=bonjour", ctx)  # fmt: skip
    # the classic builder's output, streamed from the service
    # (the stage no one needs is not built: 9 steps, not 11)
    assert f"Step 1/9 : FROM {BUSYBOX} AS base" in out, out
    assert " ---> Running in " in out, out
    assert "Successfully built " in out, out
    assert "Successfully tagged built/app:1" in out and "Successfully tagged built/app:two" in out
    assert "echo tools" not in out, out
    image_id = api.ok("inspect", "--format", "{{.Id}}", "built/app:1").strip()
    assert f"Successfully built {image_id[7:19]}" in out
    assert api.ok("inspect", "--format", "{{.Id}}", "built/app:two").strip() == image_id
    assert image_id == api.sj.inspect("built/app:1")["Id"]  # the engine's own view
    assert api.ok("inspect", "--format", "{{.Config.Labels.stage}}",
                  "built/app:1").strip() == "final"  # fmt: skip
    # the build arg reached the RUN; .dockerignore kept the key and the logs out
    assert api.ok("run", "--rm", "built/app:1") == "bonjour from base\n"
    listing = api.ok("run", "--rm", "built/app:1", "ls", "-a", "/ctx").split()
    assert "kept.txt" in listing and "Dockerfile" in listing
    assert "secret.key" not in listing and "logs" not in listing
    # the second build: every step from the cache, the same image
    again = api.ok("build", "-t", "built/app:1", "--build-arg", "GREETING=bonjour", ctx)
    assert "Using cache" in again and " ---> Running in " not in again, again
    assert f"Successfully built {image_id[7:19]}" in again, again
    # another build arg: the RUN runs again
    other = api.ok("build", "-t", "built/app:hi", ctx)
    assert " ---> Running in " in other, other
    assert api.ok("run", "--rm", "built/app:hi") == "hello from base\n"
    # --target: the stage and what it needs, not what comes after
    tgt = api.ok("build", "--target", "tools", "-t", "built/tools", ctx)
    assert "Step 6/6 : RUN echo tools > /tools" in tgt, tgt
    assert "LABEL stage=final" not in tgt, tgt
    assert api.ok("run", "--rm", "built/tools", "cat", "/tools") == "tools\n"
    assert api.ok("inspect", "--format", "{{json .Config.Labels}}",
                  "built/tools").strip() in ("null", "{}")  # fmt: skip
    # the cache is counted by system df and removed by builder prune
    df = api.ok("system", "df", "--format", "{{.Type}} {{.TotalCount}}")
    counts = dict(line.rsplit(" ", 1) for line in df.splitlines())
    assert int(counts["Build Cache"]) > 0, df
    pruned = api.ok("builder", "prune", "-a", "-f")
    assert "Total reclaimed space" in pruned, pruned
    df = api.ok("system", "df", "--format", "{{.Type}} {{.TotalCount}}")
    assert dict(line.rsplit(" ", 1) for line in df.splitlines())["Build Cache"] == "0", df


def test_build_failing_run_leaves_nothing(api, tmp_path):
    ctx = project(tmp_path / "ctx", f"FROM {BUSYBOX}\nRUN echo about to fail; exit 3\n")
    api.ok("pull", BUSYBOX)
    before = api.ok("images", "-aq", "--no-trunc").split()
    state = api.sj.store_state()
    r = api.docker("build", "-t", "broken/app", ctx)
    assert r.rc == 3, r  # the RUN's own exit code, as with dockerd
    assert "about to fail" in r.out, r
    assert "returned a non-zero code: 3" in r.err, r
    assert api.ok("images", "-aq", "--no-trunc").split() == before
    assert api.ok("ps", "-aq") == ""
    assert api.sj.store_state() == state  # no layer, blob or temp dir of the failed step
    api.sj.assert_consistent()
    # the same failure with -q: the kept output and the message on stderr
    r = api.docker("build", "-q", ctx)
    assert r.rc == 3 and "returned a non-zero code: 3" in r.err, r
    assert "about to fail" in r.err and r.out == "", r  # the RUN's output, kept for the error
    # a Dockerfile the parser refuses: an error, nothing built
    bad = project(tmp_path / "bad", f"FROM {BUSYBOX}\nFROBNICATE now\n")
    r = api.docker("build", bad)
    assert r.rc == 1 and "FROBNICATE" in r.err.upper(), r


def test_build_quiet_and_dockerfile_flag(api, tmp_path):
    ctx = project(tmp_path / "ctx", "")
    with open(os.path.join(ctx, "Other.dockerfile"), "w") as f:
        f.write(f"FROM {BUSYBOX}\nRUN echo quiet > /q\n")
    r = api.docker("build", "-q", "-f", os.path.join(ctx, "Other.dockerfile"), "-t", "q/x", ctx)
    assert r.rc == 0, r
    image_id = r.out.strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71, r  # the id alone
    assert api.ok("inspect", "--format", "{{.Id}}", "q/x").strip() == image_id
    assert api.ok("run", "--rm", "q/x", "cat", "/q") == "quiet\n"
    # --iidfile: the id the CLI read from the stream's aux message
    iid = str(tmp_path / "iid")
    api.ok("build", "--iidfile", iid, "-f", os.path.join(ctx, "Other.dockerfile"), ctx)
    with open(iid) as f:
        assert f.read() == image_id
    # the context as a tar on stdin (the CLI sends it as it is)
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = f'FROM {BUSYBOX}\nCMD ["echo", "from-stdin"]\n'.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    r = api.raw("build", "-t", "stdin/x", "-", input=buf.getvalue())
    assert r.rc == 0, r
    assert api.ok("run", "--rm", "stdin/x") == "from-stdin\n"


PY_BUILD = r"""
import io, json, sys
import docker

c = docker.from_env(version="1.41")
df = sys.argv[1].encode()
img, logs = c.images.build(fileobj=io.BytesIO(df), tag="py/built:1", rm=True,
                           buildargs={"WHO": "docker-py"}, labels={"by": "py"})
out = {"id": img.id, "tags": img.tags, "labels": img.labels,
       "stream": "".join(x.get("stream", "") for x in logs)}
out["run"] = c.containers.run("py/built:1", remove=True).decode()
try:
    c.images.build(fileobj=io.BytesIO(df + b"RUN exit 5\n"), tag="py/broken")
except docker.errors.BuildError as e:
    out["error"] = e.msg
print(json.dumps(out))
"""


def test_dockerpy_images_build(api):
    why = dockerpy_missing()
    if why:
        pytest.skip(why)
    dockerfile = f'FROM {BUSYBOX}\nARG WHO\nRUN echo "built by $WHO" > /who\nCMD ["cat", "/who"]\n'
    r = api.python(PY_BUILD, dockerfile)
    assert r.rc == 0, r
    out = json.loads(r.out.strip().splitlines()[-1])
    assert "py/built:1" in out["tags"]
    assert out["labels"] == {"by": "py"}
    assert out["id"] == api.sj.inspect("py/built:1")["Id"]
    assert "Step 3/4 : RUN echo" in out["stream"], out
    assert out["run"] == "built by docker-py\n"
    assert "returned a non-zero code: 5" in out["error"], out


def test_build_output_streams_while_the_run_runs(api, tmp_path):
    """The RUN prints, then waits for the test (a TCP connection on the service's
    loopback: --network host): its first line must reach the CLI before it ends."""
    import socket
    import subprocess

    from apikit import DOCKER, GUARD

    with api.netns.entered():
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
    port = srv.getsockname()[1]
    ctx = project(tmp_path / "ctx", f"FROM {BUSYBOX}\nRUN echo started-run; nc 127.0.0.1"
                                    f" {port} > /got\nCMD [\"cat\", \"/got\"]\n")  # fmt: skip
    p = subprocess.Popen([DOCKER, "build", "--network", "host", "-t", "streamed/x", ctx],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=api.env)  # fmt: skip
    import threading

    guard = threading.Timer(GUARD, p.kill)  # a hang guard: broken streaming ends the loop
    guard.start()
    try:
        seen = []
        for line in p.stdout:  # the build cannot end before the test answers below
            seen.append(line)
            if line.strip() == "started-run":
                break
        assert seen and seen[-1].strip() == "started-run", (seen, p.stderr.read())
        srv.settimeout(GUARD)
        conn, _ = srv.accept()
        conn.sendall(b"go\n")
        conn.close()
        rest = p.stdout.read()
        assert p.wait(GUARD) == 0, (rest, p.stderr.read())
        assert "Successfully tagged streamed/x:latest" in rest
    finally:
        guard.cancel()
        srv.close()
        if p.poll() is None:
            p.kill()
            p.wait()
    assert api.ok("run", "--rm", "streamed/x") == "go\n"


def test_build_cancelled_when_the_client_goes_away(api, tmp_path):
    """docker build killed while its RUN waits (printing nothing): the service kills the
    RUN and removes what the build made, as dockerd cancels a build whose client left."""
    import signal
    import socket
    import subprocess

    import rtkit
    from apikit import DOCKER, wait_for

    with api.netns.entered():
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
    port = srv.getsockname()[1]
    ctx = project(tmp_path / "ctx", f"FROM {BUSYBOX}\nRUN echo started-run; nc 127.0.0.1"
                                    f" {port}\n")  # fmt: skip
    p = subprocess.Popen([DOCKER, "build", "--network", "host", "-t", "cancelled/x", ctx],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         env=api.env)  # fmt: skip
    try:
        for line in p.stdout:
            if line.strip() == "started-run":
                break
        assert rtkit.runtime_ids(api.sj.run_root), "the RUN's container is not running"
        p.send_signal(signal.SIGKILL)
        p.wait()
        # never answered: the RUN ends only if the service kills it
        wait_for(lambda: not rtkit.runtime_ids(api.sj.run_root), "the RUN killed")
        wait_for(lambda: not os.listdir(os.path.join(api.sj.root, "build", "work"))
                 if os.path.isdir(os.path.join(api.sj.root, "build", "work")) else True,
                 "the build's workspace removed")  # fmt: skip
    finally:
        srv.close()
        if p.poll() is None:
            p.kill()
            p.wait()
    assert api.docker("inspect", "cancelled/x").rc != 0
    api.sj.assert_consistent()


def test_service_stopped_during_a_build(api, tmp_path):
    """SIGTERM while a RUN waits: the service cancels the build (the RUN killed, nothing
    left) and exits 0; started again, it serves."""
    import socket
    import subprocess

    import rtkit
    from apikit import DOCKER

    with api.netns.entered():
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
    port = srv.getsockname()[1]
    ctx = project(tmp_path / "ctx", f"FROM {BUSYBOX}\nRUN echo started-run; nc 127.0.0.1"
                                    f" {port}\n")  # fmt: skip
    p = subprocess.Popen([DOCKER, "build", "--network", "host", ctx], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=api.env)  # fmt: skip
    try:
        for line in p.stdout:
            if line.strip() == "started-run":
                break
        assert rtkit.runtime_ids(api.sj.run_root), "the RUN's container is not running"
        assert api.stop() == 0, api.log_tail()
        assert p.wait() != 0
        assert rtkit.runtime_ids(api.sj.run_root) == []
    finally:
        srv.close()
        if p.poll() is None:
            p.kill()
            p.wait()
    api.sj.assert_consistent()
    api.start()
    assert api.ok("version", "--format", "{{.Server.APIVersion}}").strip() == "1.41"


def test_build_from_a_registry_that_wants_a_login(api, fixtures, tmp_path):
    """FROM an image behind a login: the CLI sends its logins (X-Registry-Config) and the
    build's pull uses them; without a login the build fails with the registry's answer."""
    from registrykit import AUTH, PASSWORD, USER

    fixtures.registry("auth")
    ctx = project(tmp_path / "ctx", f"FROM {AUTH}/test/busybox\nRUN echo authed > /a\n")
    r = api.docker("build", "-t", "authed/x", ctx)
    assert r.rc != 0 and "unauthorized" in (r.out + r.err).lower(), r
    api.ok("login", "-u", USER, "--password-stdin", AUTH, input=PASSWORD + "\n")
    api.ok("build", "-t", "authed/x", ctx)
    assert api.ok("run", "--rm", "authed/x", "cat", "/a") == "authed\n"
    assert not os.path.exists(os.path.join(api.sj.home, ".config", "sangja", "auth.json"))
