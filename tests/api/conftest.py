"""Fixtures for the API tests: `sangja system service` on a private socket with a private
engine root, runtime root and cgroup parent, in the fixtures' network namespace (where the
registries serve on 127.0.0.1), and the real clients pointed at it (apikit.py).  At the end
the service is stopped (SIGTERM: it must exit 0 and remove its socket), whatever
containers the test left are removed with the CLI's `rm -f`, and the test fails if
anything stays (tests/engine's leftovers check)."""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "engine"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "image"))  # pushkit
sys.path.insert(0, HERE)

import apikit  # noqa: E402
import enginekit  # noqa: E402
import registrykit  # noqa: E402


@pytest.fixture(scope="session")
def cgroup_parent():
    name = f"/sangja-api-tests-{os.getpid()}"
    yield name
    enginekit.remove_cgroup_parent(name)


@pytest.fixture
def sj(tmp_path, fixtures, cgroup_parent):
    """The sangja CLI on the same private roots as the service (for checks and cleanup)."""
    with fixtures.netns.entered():
        s = registrykit.Sangja(tmp_path, fixtures)
        s.env["SANGJA_CGROUP_PARENT"] = cgroup_parent
        fixtures.registry("plain")
        yield s


@pytest.fixture
def service(sj, fixtures, tmp_path, cgroup_parent):
    """The service, not started (tests of start-up and socket activation)."""
    api = apikit.Api(sj, fixtures.netns, tmp_path)
    try:
        yield api
    finally:
        api.cleanup()
        with fixtures.netns.entered():
            problems = enginekit.leftovers(sj, cgroup_parent)
        assert not problems, f"left behind: {problems}"


@pytest.fixture
def api(service):
    """The service, started, for the docker CLI (skipped without Debian's docker 20.10)."""
    why = apikit.docker_cli_missing()
    if why:
        pytest.skip(why)
    service.start()
    yield service
    code = service.stop()
    assert code == 0, f"the service exited {code}: {service.log_tail()}"
    assert not os.path.exists(service.sock), "the service left its socket"


@pytest.fixture
def push_registry(tmp_path, fixtures):
    """An empty registry of the test's own to push to (tests/image's pushkit)."""
    import pushkit

    started = []

    def start(variant="plain"):
        reg = pushkit.PushRegistry(fixtures, variant, tmp_path / f"reg-{len(started)}")
        started.append(reg)
        return reg

    yield start
    for reg in started:
        reg.stop()
