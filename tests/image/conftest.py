"""Fixtures for the layer extractor tests (run as root: owners, devices, trusted.* xattrs)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import layertools  # noqa: E402


@pytest.fixture
def layers_dir(tmp_path):
    d = tmp_path / "layers"
    d.mkdir()
    return d


@pytest.fixture(scope="session")
def debian_fixtures():
    """test/debian:bookworm from make-fixtures.sh: found, else built, else the test is skipped."""
    fx = layertools.load_fixtures()
    if fx is None:
        fx, why = layertools.build_fixtures()
        if fx is None:
            pytest.skip(f"the test/debian fixtures could not be built: {why}")
    return fx


# ---- the image engine's tests (pull, store, archives): real registries ------------------
import registrykit  # noqa: E402


@pytest.fixture
def sj(tmp_path, fixtures):
    """The sangja CLI with a private engine root, HOME and certs.d (trusting the fixtures'
    CA), the test inside the registries' network namespace."""
    with fixtures.netns.entered():
        yield registrykit.Sangja(tmp_path, fixtures)


@pytest.fixture
def push_registry(tmp_path, fixtures):
    """push_registry(variant="plain") -> a started pushkit.PushRegistry with an empty storage
    of the test's own (stopped at the end)."""
    import pushkit

    started = []

    def start(variant="plain", port=None, delete=True):
        reg = pushkit.PushRegistry(fixtures, variant, tmp_path / f"reg-{len(started)}", port,
                                   delete)  # fmt: skip
        started.append(reg)
        return reg

    yield start
    for reg in started:
        reg.stop()
