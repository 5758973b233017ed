"""Fixtures for the engine's tests: images from the fixtures' registries, a private engine
root, runtime --root and cgroup parent for each test (tests/registrykit.py).

At the end of every test, whatever containers it left are removed with `container rm -f`,
and the test fails if anything stays: a mount under its directory, runtime state, a
monitor (conmon) or container process, a container cgroup."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import enginekit  # noqa: E402
import registrykit  # noqa: E402


@pytest.fixture(scope="session")
def cgroup_parent():
    """A cgroup parent of the session's own: the tests' containers never meet others'."""
    name = f"/sangja-tests-{os.getpid()}"
    yield name
    enginekit.remove_cgroup_parent(name)


@pytest.fixture
def sj(tmp_path, fixtures, cgroup_parent):
    """The sangja CLI (private engine root, HOME, certs.d, runtime --root), in the
    registries' network namespace; nothing may be left behind."""
    with fixtures.netns.entered():
        s = registrykit.Sangja(tmp_path, fixtures)
        s.env["SANGJA_CGROUP_PARENT"] = cgroup_parent
        fixtures.registry("plain")
        yield s
        problems = enginekit.leftovers(s, cgroup_parent)
    assert not problems, f"left behind: {problems}"
