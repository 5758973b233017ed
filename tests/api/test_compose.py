"""docker-compose 1.29 (Debian's, Python) against the service: a project of three
services -- one built from a Dockerfile, one that waits on it (depends_on) and talks to it
by name over the project's network, a named volume shared by two -- through up -d, ps,
logs (-f), exec, restart, scale and down -v, then a second up from the build cache; each
step checked by what compose shows and what the engine holds.  Needs the API's /build
and its /networks and /volumes."""

import os
import subprocess

import pytest
from apikit import COMPOSE, compose_missing, wait_for
from enginekit import BUSYBOX

START = """\
#!/bin/sh
[ -e /data/index.html ] || echo "stored by $(hostname)" > /data/index.html
exec httpd -f -p 8080 -h /data
"""

PROJECT_YML = f"""\
version: "3.7"
services:
  store:
    build:
      context: ./store
      args:
        BASE: {BUSYBOX}
    volumes:
      - data:/data
  client:
    image: {BUSYBOX}
    depends_on:
      - store
    command: ["sh", "-c", "until wget -qO /tmp/got http://store:8080/index.html; do sleep 0.2;
              done; echo \\"client got: $$(cat /tmp/got)\\"; exec sleep 600"]
  peer:
    image: {BUSYBOX}
    command: ["sleep", "600"]
    volumes:
      - data:/shared
volumes:
  data:
"""


def make_project(d):
    os.makedirs(os.path.join(d, "store"))
    with open(os.path.join(d, "docker-compose.yml"), "w") as f:
        f.write(PROJECT_YML)
    with open(os.path.join(d, "store", "Dockerfile"), "w") as f:
        f.write('ARG BASE\nFROM $BASE\nCOPY start.sh /start.sh\nCMD ["sh", "/start.sh"]\n')
    with open(os.path.join(d, "store", "start.sh"), "w") as f:
        f.write(START)
    return d


def test_compose_build_up_ps_logs_exec_down(api, tmp_path):
    why = compose_missing()
    if why:
        pytest.skip(why)
    r = api.docker("network", "ls")
    if r.rc != 0 and "page not found" in r.err:
        pytest.skip("the service has no /networks (compose makes the project's network)")
    d = make_project(str(tmp_path / "proj"))
    env_project = "-p", "sjproj"
    up = api.compose(d, *env_project, "up", "-d")
    assert up.rc == 0, (up, api.log_tail())
    # the built image is the engine's, named by the project
    assert api.sj.inspect("sjproj_store")["Config"]["Cmd"] == ["sh", "/start.sh"]
    ps = api.compose(d, *env_project, "ps")
    assert ps.rc == 0, ps
    for svc in ("sjproj_store_1", "sjproj_client_1", "sjproj_peer_1"):
        line = next((x for x in ps.out.splitlines() if x.startswith(svc)), "")
        assert " Up" in line, ps

    # client reached store by its name on the project's network
    def client_got():
        r = api.compose(d, *env_project, "logs", "--no-color", "client")
        return "client got: stored by " in r.out and r.out

    out = wait_for(client_got, "the client's answer from store")
    store_id = api.ok("ps", "-q", "--no-trunc", "--filter", "name=sjproj_store_1").strip()
    assert f"client got: stored by {store_id[:12]}" in out, out
    # exec in a service; the named volume is shared with peer
    r = api.compose(d, *env_project, "exec", "-T", "peer", "cat", "/shared/index.html")
    assert r.rc == 0 and r.out == f"stored by {store_id[:12]}\n", r
    r = api.compose(d, *env_project, "exec", "-T", "store", "sh", "-c", "echo $((6*7))")
    assert r.rc == 0 and r.out.strip() == "42", r
    # logs -f follows (read until the client's line, then the follower is stopped)
    f = subprocess.Popen([COMPOSE, *env_project, "logs", "-f", "--no-color", "client"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         env=api.env, cwd=d)  # fmt: skip
    try:
        got = next((x for x in f.stdout if "client got: stored by" in x), None)
        assert got is not None, "logs -f ended without the client's line"
        assert f.poll() is None  # still following
    finally:
        f.kill()
        f.wait()
    # restart and scale
    started = api.ok("inspect", "--format", "{{.State.StartedAt}}", "sjproj_peer_1").strip()
    r = api.compose(d, *env_project, "restart", "peer")
    assert r.rc == 0, r
    assert api.ok("inspect", "--format", "{{.State.StartedAt}}",
                  "sjproj_peer_1").strip() != started  # fmt: skip
    r = api.compose(d, *env_project, "up", "-d", "--scale", "peer=2")
    assert r.rc == 0, r
    r = api.compose(d, *env_project, "exec", "-T", "--index=2", "peer", "cat",
                    "/shared/index.html")  # fmt: skip
    assert r.rc == 0 and r.out == f"stored by {store_id[:12]}\n", r
    names = api.ok("ps", "--format", "{{.Names}}").split()
    assert sorted(n for n in names if "peer" in n) == ["sjproj_peer_1", "sjproj_peer_2"], names
    assert "sjproj_data" in api.ok("volume", "ls", "-q").split()
    assert "sjproj_default" in api.ok("network", "ls", "--format", "{{.Name}}").split()
    # down -v: containers, the network and the volume are gone
    down = api.compose(d, *env_project, "down", "-v")
    assert down.rc == 0, down
    assert api.ok("ps", "-aq") == ""
    assert "sjproj_data" not in api.ok("volume", "ls", "-q").split()
    assert "sjproj_default" not in api.ok("network", "ls", "--format", "{{.Name}}").split()
    # a second up reuses the build cache
    up = api.compose(d, *env_project, "up", "-d", "--build")
    assert up.rc == 0, up
    assert "Using cache" in up.out + up.err, up
    down = api.compose(d, *env_project, "down", "-v")
    assert down.rc == 0, down
