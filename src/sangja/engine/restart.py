"""Restart policies, as Docker applies them: no, on-failure[:N], always, unless-stopped, and
the back-off between restarts (100 ms, doubled at each restart, at most a minute; back to
100 ms once a run lasted 10 s)."""

from __future__ import annotations

FIRST_DELAY = 0.1
MAX_DELAY = 60.0
RESET_AFTER = 10.0


def should_restart(policy: dict, exit_code: int, restart_count: int,
                   manually_stopped: bool) -> bool:  # fmt: skip
    """After the container exited by itself (not `stop`, `kill` or `rm`)."""
    name = (policy or {}).get("Name") or "no"
    if manually_stopped or name == "no":
        return False
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure":
        if exit_code == 0:
            return False
        limit = (policy or {}).get("MaximumRetryCount") or 0
        return limit == 0 or restart_count < limit
    return False


def next_delay(previous: float, ran_for: float) -> float:
    if ran_for >= RESET_AFTER or previous <= 0:
        return FIRST_DELAY
    return min(previous * 2, MAX_DELAY)


def restart_at_boot(policy: dict, manually_stopped: bool) -> bool:
    """`start --all-restartable` (the boot unit): always, and unless-stopped unless the user
    stopped it."""
    name = (policy or {}).get("Name") or "no"
    return name == "always" or (name == "unless-stopped" and not manually_stopped)
