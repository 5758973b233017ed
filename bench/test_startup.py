"""Container start-up: sangja beside runc (and crun) on the same busybox bundle, same run."""

import os
import statistics

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
    """Peak RSS of the runtime process during `run` (ru_maxrss from wait4, KiB)."""
    argv = RUNTIMES[name]
    root = roots[name]
    samples = []

    def once():
        pid = os.fork()
        if pid == 0:
            os.closerange(3, 1024)
            fd = os.open(os.devnull, os.O_RDWR)
            os.dup2(fd, 0)
            os.dup2(fd, 1)
            os.execvp(argv[0], [*argv, "--root", root, "run", "--bundle", bundle, new_id("m")])
        _, status, ru = os.wait4(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        samples.append(ru.ru_maxrss)

    benchmark.pedantic(once, rounds=max(5, ROUNDS // 3), warmup_rounds=1)
    record("peak rss", name, statistics.median(samples))
