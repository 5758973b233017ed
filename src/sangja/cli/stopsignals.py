"""SIGTERM and SIGHUP as Ctrl-C, for the engine commands that must undo what they started
when they are stopped (a build's RUN containers and snapshots, a commit's pause): the
signal raises `Stopped` (a KeyboardInterrupt) in the main thread, the command's own
clean-up runs, and the exit code is 128 + the signal's number (groups.py, build.py)."""

from __future__ import annotations


class Stopped(KeyboardInterrupt):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def stop_on_signals() -> None:
    import signal

    def stop(signum, _frame):
        signal.signal(signum, signal.SIG_IGN)  # a second one does not break the clean-up
        raise Stopped(signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) == signal.SIG_DFL:
            signal.signal(sig, stop)
