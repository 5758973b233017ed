"""Fault injection for the tests: with SANGJA_FAILPOINT=<name> a command stops itself
(SIGSTOP) at the step of that name, for the test to `kill -9` it exactly there (a real
SIGKILL at a known point, not a mock)."""

import os


def failpoint(name: str) -> None:
    if os.environ.get("SANGJA_FAILPOINT") == name:
        import _signal

        os.kill(os.getpid(), _signal.SIGSTOP)
