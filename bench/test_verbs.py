"""The light runtime verbs engines call all day (`state`, `start`, `kill`, `delete`), one
by one, sangja beside runc and crun in the same run; their peak RSS; and the cycle an engine
runs for a short container: `create + start + delete -f` of /bin/true.

crun 1.8 creates through the unshare wrapper (conftest.CRUN_WRAP: it refuses this hybrid
cgroup layout otherwise); the verbs measured here run crun itself, which they need no wrapper
for. sangja's verbs are its C front end's (SANGJA_PYTHON=1 in the environment hands them all
to the Python CLI, to compare)."""

import os
import shutil
import statistics
import subprocess
import time

import pytest
from bundles import make_bundle
from conftest import call, new_id, record, runtimes

RUNTIMES = runtimes()
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "30"))


def plain(name):
    """The runtime's own binary (crun without its create wrapper)."""
    return [shutil.which("crun")] if name == "crun" else RUNTIMES[name]


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    d = tmp_path_factory.mktemp("verbs")
    return {
        "sleep": str(make_bundle(str(d / "sleep"), ["sleep", "100000"])),
        "true": str(make_bundle(str(d / "true"), ["/bin/true"])),
    }


def status(name, root, cid):
    p = subprocess.run([*plain(name), "--root", root, "state", cid], capture_output=True,
                       text=True, check=True)  # fmt: skip
    return p.stdout.split('"status": "', 1)[1].split('"', 1)[0]


@pytest.fixture(scope="module")
def running(bundles, roots):
    """One running `sleep` container per runtime, deleted at the end."""
    made = {}
    for name, argv in RUNTIMES.items():
        cid = new_id("v")
        call([*argv, "--root", roots[name], "create", "--bundle", bundles["sleep"], cid])
        call([*plain(name), "--root", roots[name], "start", cid])
        made[name] = cid
    yield made
    for name, cid in made.items():
        subprocess.run([*plain(name), "--root", roots[name], "delete", "--force", cid])


@pytest.mark.parametrize("name", list(RUNTIMES))
def test_state(benchmark, name, roots, running):
    argv = [*plain(name), "--root", roots[name], "state", running[name]]
    benchmark.pedantic(call, args=(argv,), rounds=ROUNDS, warmup_rounds=3)
    record("verb state", name, benchmark.stats.stats.median)


@pytest.mark.parametrize("name", list(RUNTIMES))
def test_kill(benchmark, name, roots, running):
    """`kill ID CONT`: a signal the sleeping init takes without a change."""
    argv = [*plain(name), "--root", roots[name], "kill", running[name], "CONT"]
    benchmark.pedantic(call, args=(argv,), rounds=ROUNDS, warmup_rounds=3)
    record("verb kill", name, benchmark.stats.stats.median)


@pytest.mark.parametrize("name", list(RUNTIMES))
def test_start(benchmark, name, roots, bundles):
    """`start` of a created /bin/true (made, and the last one deleted, untimed)."""
    root = roots[name]
    made = []

    def setup():
        while made:
            subprocess.run([*plain(name), "--root", root, "delete", "--force", made.pop()])
        cid = new_id("s")
        call([*RUNTIMES[name], "--root", root, "create", "--bundle", bundles["true"], cid])
        made.append(cid)
        return ([*plain(name), "--root", root, "start", cid],), {}

    benchmark.pedantic(call, setup=setup, rounds=ROUNDS, warmup_rounds=3)
    setup()
    subprocess.run([*plain(name), "--root", root, "delete", "--force", made.pop()])
    record("verb start", name, benchmark.stats.stats.median)


@pytest.mark.parametrize("name", list(RUNTIMES))
def test_delete(benchmark, name, roots, bundles):
    """`delete` of a stopped container (created, started, exited: untimed)."""
    root = roots[name]

    def setup():
        cid = new_id("d")
        call([*RUNTIMES[name], "--root", root, "create", "--bundle", bundles["true"], cid])
        call([*plain(name), "--root", root, "start", cid])
        while status(name, root, cid) != "stopped":
            time.sleep(0.001)
        return ([*plain(name), "--root", root, "delete", cid],), {}

    benchmark.pedantic(call, setup=setup, rounds=ROUNDS, warmup_rounds=3)
    record("verb delete", name, benchmark.stats.stats.median)


@pytest.mark.parametrize("name", list(RUNTIMES))
def test_cycle(benchmark, name, roots, bundles):
    """An engine's short container: create, start, delete --force."""
    root = roots[name]

    def once():
        cid = new_id("y")
        call([*RUNTIMES[name], "--root", root, "create", "--bundle", bundles["true"], cid])
        call([*plain(name), "--root", root, "start", cid])
        call([*plain(name), "--root", root, "delete", "--force", cid])

    benchmark.pedantic(once, rounds=ROUNDS, warmup_rounds=3)
    record("cycle create+start+delete -f", name, benchmark.stats.stats.median)


@pytest.mark.parametrize("name", list(RUNTIMES))
def test_verb_rss(benchmark, name, roots, running):
    """Peak RSS (KiB, GNU time's %M) of `state` and `kill` on the running container: the
    largest of the two."""
    samples = []

    def once():
        peak = 0
        for verb in (["state", running[name]], ["kill", running[name], "CONT"]):
            p = subprocess.run(["/usr/bin/time", "-f", "%M", *plain(name), "--root",
                                roots[name], *verb], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               check=True)  # fmt: skip
            peak = max(peak, int(p.stderr.strip().splitlines()[-1]))
        samples.append(peak)

    benchmark.pedantic(once, rounds=max(5, ROUNDS // 3), warmup_rounds=1)
    record("verb peak rss", name, statistics.median(samples))
