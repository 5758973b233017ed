"""Fixtures for the runtime tests: real containers, driven through the CLI as engines drive it.

Which runtimes run: `SANGJA_TEST_RUNTIMES` (comma list of `sangja`, `runc`; default `sangja`).
`SANGJA_TEST_RUNTIMES=runc pytest tests` checks the tests themselves against runc 1.1.
The sangja binary is `$SANGJA`, else `sangja` on $PATH. Tests marked `sangja_only` (with the
reason: runc 1.1 lacks the feature, or the issue asks for something runc does not do) are
skipped under runc.

Every test gets a private `--root` and unique ids; at teardown each id is deleted with
`delete --force`, and the test fails if anything is left: the state dir, a cgroup dir, a
container process, or a new mount in the host's mount namespace.
"""

import os
import secrets
import shutil
import tempfile
import time

import pytest
from rtkit import (
    Env,
    alive,
    all_pids,
    container_processes,
    host_mounts,
    namespaces_in_use,
    read,
    selected_runtimes,
)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "sangja_only(reason): the issue asks for something runc 1.1 does not do"
    )


def pytest_generate_tests(metafunc):
    if "rt" in metafunc.fixturenames:
        metafunc.parametrize("rt", selected_runtimes(), indirect=True)


@pytest.fixture(scope="session")
def base_dir():
    # World-traversable (0755): a container whose root is a mapped, unprivileged user must
    # still reach its rootfs. pytest's tmp_path lives under a 0700 directory.
    d = tempfile.mkdtemp(prefix="sangja-tests-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def env(base_dir):
    workdir = tempfile.mkdtemp(prefix="t-", dir=base_dir)
    os.chmod(workdir, 0o755)
    e = Env(workdir)
    mounts_before = set(host_mounts())
    pids_before = all_pids()
    ns_before = namespaces_in_use()
    yield e
    problems = []
    for rt in e.runtimes.values():
        for cid in rt.ids:
            r = rt("delete", "--force", cid)
            if r.rc != 0:
                problems.append(f"{rt.name} delete --force {cid}: {r.err.strip()}")
    # A killed init may take a moment to be reaped by its parent: a bounded wait, no assert.
    end = time.monotonic() + 10
    while True:
        ids = [cid for rt in e.runtimes.values() for cid in rt.ids]
        procs = container_processes(pids_before, ns_before, workdir, ids)
        procs += [
            f"pid {p} (the container's)"
            for rt in e.runtimes.values()
            for p in rt.pids
            if p and p not in pids_before and alive(p)
        ]
        if not procs or time.monotonic() > end:
            break
        time.sleep(0.02)
    problems += procs
    for rt in e.runtimes.values():
        for cid in rt.ids:
            problems += [f"{rt.name} {cid}: {x}" for x in rt.leftovers(cid)]
    # Other sessions may mount things meanwhile: only mounts at this test's paths count
    # (the escape tests check their own host paths too).
    new = [m for m in host_mounts() if m not in mounts_before and m.startswith(workdir)]
    if new:
        problems.append(f"new host mounts: {new}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)  # never rmtree through a stray mount
    if problems:
        pytest.fail("left behind after the test:\n  " + "\n  ".join(problems))


@pytest.fixture
def rt(request, env):
    """The runtime under test (parametrized by SANGJA_TEST_RUNTIMES)."""
    name = request.param
    marker = request.node.get_closest_marker("sangja_only")
    if marker and name != "sangja":
        pytest.skip(f"sangja only: {marker.args[0] if marker.args else ''}")
    return env.runtime(name)


@pytest.fixture
def runc(env):
    """runc as the reference, next to the runtime under test."""
    return env.runtime("runc")


@pytest.fixture
def alone(rt, tmp_path):
    """The C front end copied alone, with no Python CLI beside it: what it does itself works,
    a hand-off fails with `exec …` (test_front.py, test_prepare.py)."""
    from rtkit import require_front

    require_front(rt)
    path = tmp_path / "sangja"
    shutil.copy(rt.binary, path)
    return str(path)


@pytest.fixture(scope="session")
def fixtures():
    """make-fixtures.sh's images and registries, for tests/image and tests/engine
    (tests/registrykit.py, imported only by the tests that use it)."""
    import registrykit

    yield from registrykit.session_fixtures()


@pytest.fixture
def canary():
    """A host directory outside every bundle, with one file; checked untouched afterwards
    (the escape and breakout tests aim their symlinks and mounts at it)."""
    h = f"/tmp/sjt-host-{secrets.token_hex(4)}"
    os.mkdir(h)
    with open(f"{h}/canary", "w") as f:
        f.write("host file\n")
    yield h
    try:
        assert sorted(os.listdir(h)) == ["canary"], "something was created in the host dir"
        assert read(f"{h}/canary") == "host file\n"
        with open("/proc/self/mountinfo") as f:
            assert not any(line.split()[4].startswith(h) for line in f), "a host mount"
    finally:
        shutil.rmtree(h)
