"""Fixtures for the engine's tests: images from the fixtures' registries, a private engine
root and runtime --root for each test (tests/registrykit.py)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import registrykit  # noqa: E402


@pytest.fixture
def sj(tmp_path, fixtures):
    """The sangja CLI (private engine root, HOME, certs.d, runtime --root), in the
    registries' network namespace; the test fails if it leaves a mount behind."""
    with fixtures.netns.entered():
        s = registrykit.Sangja(tmp_path, fixtures)
        yield s
    with open("/proc/self/mountinfo") as f:
        left = [line.split()[4] for line in f if str(tmp_path) in line.split()[4]]
    assert not left, f"mounts left behind: {left}"
