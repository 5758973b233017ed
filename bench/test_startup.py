"""Container start-up: sangja beside runc (and crun) on the same busybox bundle, same run."""

import os
import statistics
import subprocess

import pytest
from conftest import call, new_id, record, runtimes

RUNTIMES = runtimes()
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "30"))


@pytest.mark.parametrize("name", list(RUNTIMES))
def test_run_true(benchmark, name, bundle, roots):
    """`run` of /bin/true: create, start, wait, delete, as a user types it."""
    argv = RUNTIMES[name]
    root = roots[name]

    def once():
        call([*argv, "--root", root, "run", "--bundle", bundle, new_id("r")])

    benchmark.pedantic(once, rounds=ROUNDS, warmup_rounds=3)
    record("run /bin/true", name, benchmark.stats.stats.median)


@pytest.mark.parametrize("name", list(RUNTIMES))
def test_create_start_delete(benchmark, name, bundle, roots):
    """What an engine does: create, start, then delete --force."""
    argv = RUNTIMES[name]
    root = roots[name]

    def once():
        cid = new_id("c")
        call([*argv, "--root", root, "create", "--bundle", bundle, cid])
        call([*argv, "--root", root, "start", cid])
        call([*argv, "--root", root, "delete", "--force", cid])

    benchmark.pedantic(once, rounds=ROUNDS, warmup_rounds=3)
    record("create+start+delete -f", name, benchmark.stats.stats.median)


@pytest.mark.parametrize("name", list(RUNTIMES))
def test_peak_rss(benchmark, name, bundle, roots):
    """Peak RSS of the runtime during `run`, as GNU time reports it (ru_maxrss of the runtime
    and of what it waited for: its container init, which for runc is runc too), in KiB.
    Measured through /usr/bin/time so that no copy of pytest's memory is counted."""
    argv = RUNTIMES[name]
    root = roots[name]
    samples = []

    def once():
        p = subprocess.run(
            ["/usr/bin/time", "-f", "%M", *argv, "--root", root, "run", "--bundle", bundle,
             new_id("m")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, check=True,
        )  # fmt: skip
        samples.append(int(p.stderr.strip().splitlines()[-1]))

    benchmark.pedantic(once, rounds=max(5, ROUNDS // 3), warmup_rounds=1)
    record("peak rss", name, statistics.median(samples))
