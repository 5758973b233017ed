"""`sangja system service` itself: its socket, its idle exit, its bad arguments, and that
nothing else in sangja loads aiohttp."""

import os
import socket
import subprocess
import sys

from apikit import GUARD
from registrykit import sangja_binary


def test_idle_timeout_exits_and_removes_its_socket(service):
    service.start("--timeout", "1")
    # nobody asks: it ends by itself (GUARD is a hang guard, not a speed assertion)
    assert service.proc.wait(GUARD) == 0, service.log_tail()
    assert not os.path.exists(service.sock)


def test_a_live_socket_is_not_taken_and_a_stale_one_is(service):
    service.start()
    second = subprocess.run(service.argv(), env=service.sj.env, capture_output=True, text=True,
                            timeout=GUARD)  # fmt: skip
    assert second.returncode == 125, second
    assert f"another service listens on {service.sock}" in second.stderr
    assert service.listening()  # the first one still serves
    assert service.stop() == 0
    # a socket file nobody listens on (a killed service's) is replaced
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(service.sock)
    s.close()
    service.start()
    assert service.listening()
    assert service.stop() == 0


def test_bad_arguments(sj):
    for args, words in ((["--timeout", "soon"], 'invalid argument "soon" for "--timeout"'),
                        (["--timeout", "-1"], "negative"),
                        (["extra"], "accepts no arguments")):  # fmt: skip
        r = subprocess.run([sangja_binary(), "system", "service", *args], env=sj.env,
                           capture_output=True, text=True, timeout=GUARD)  # fmt: skip
        assert r.returncode == 125 and words in r.stderr, r


def test_engine_verbs_do_not_load_aiohttp(sj):
    """`container ls` and `image ls` run without aiohttp or sangja.api in the process."""
    code = ("import sys; from sangja.cli.main import main; rc = main(sys.argv[1:]);"
            " bad = [m for m in sys.modules if m.startswith(('aiohttp', 'sangja.api'))];"
            " print('LOADED', bad)")  # fmt: skip
    env = dict(sj.env, PYTHONPATH=os.pathsep.join(sys.path))
    for verb in (["container", "ls"], ["image", "ls"]):
        r = subprocess.run([sys.executable, "-c", code, "--root", sj.run_root, *verb],
                           env=env, capture_output=True, text=True, timeout=GUARD)  # fmt: skip
        assert "LOADED []" in r.stdout, r


def test_socket_activation(service):
    """The socket systemd passes (systemd-socket-activate does it as systemd does: fd 3,
    LISTEN_PID, LISTEN_FDS): served, and the service leaves it in place when it exits."""
    import shutil

    import pytest
    from apikit import docker_cli_missing

    activate = shutil.which("systemd-socket-activate")
    if activate is None:
        pytest.skip("systemd-socket-activate is not installed (Debian's systemd)")
    why = docker_cli_missing()
    if why:
        pytest.skip(why)
    argv = [activate, "-l", service.sock, sangja_binary(), "--root", service.sj.run_root,
            "system", "service", "--timeout", "1"]  # fmt: skip
    with service.netns.entered():
        p = subprocess.Popen(argv, env=service.sj.env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        from apikit import wait_for

        wait_for(lambda: os.path.exists(service.sock), "the activation socket")
        assert service.docker("version", "--format", "{{.Server.APIVersion}}").out == "1.41\n"
        assert p.wait(GUARD) == 0  # idle: it exits
        assert os.path.exists(service.sock)  # systemd's, not the service's to remove
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
