"""What content trust adds to `sangja image pull` of an image the store already has (the
registry is asked for the manifest, every layer "Already exists"): the same pull with trust
off and with a policy wanting a sigstore signature by a key, in the same run, on a signed
busybox in a private registry on loopback.  With trust on, pull also reads the policy and
the key, fetches the signature manifest and its payload, and verifies the ECDSA signature
(importing `cryptography` for it).  Goal: <= 20 ms added.  Run as root:
`make bench`, or `pytest bench/test_trust.py`.
"""

import json
import os
import subprocess
import sys

import pytest
from conftest import print_at_end

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "image"))

import pushkit  # noqa: E402
import registrykit  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="run as root: registries")

ROUNDS = 30
GOAL = 0.020
RESULTS = {}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A signed image in a push registry, pulled once into a store of its own."""
    gen = registrykit.session_fixtures()
    fx = next(gen)
    fx.registry("plain")
    tmp = tmp_path_factory.mktemp("trust")
    reg = pushkit.PushRegistry(fx, "plain", tmp / "reg")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANGJA_")}
    env.update(SANGJA_ROOT=str(tmp / "root"), SANGJA_CONFIG=str(tmp / "none" / "daemon.json"),
               SANGJA_TRUST_PASSPHRASE="bench", HOME=str(tmp))  # fmt: skip
    sangja = registrykit.sangja_binary()
    ref = f"{reg.addr}/bench/box:v1"
    try:
        with fx.netns.entered():

            def run(*args):
                subprocess.run([sangja, *args], env=env, check=True, cwd=tmp,
                               stdout=subprocess.DEVNULL)  # fmt: skip

            run("trust", "key", "generate", "bench")
            run("image", "pull", "-q", f"{registrykit.PLAIN}/test/busybox:latest")
            run("image", "tag", f"{registrykit.PLAIN}/test/busybox:latest", ref)
            run("image", "push", "-q", "--sign-by", str(tmp / "bench.key"), ref)
            policy = tmp / "policy.json"
            policy.write_text(json.dumps({"default": [{"type": "reject"}], "transports": {
                "docker": {reg.addr: [{"type": "sigstoreSigned",
                                       "keyPath": str(tmp / "bench.pub")}]}}}))  # fmt: skip
            run("image", "pull", "-q", "--signature-policy", str(policy), ref)
            yield sangja, env, ref, str(policy)
    finally:
        reg.stop()
        with pytest.raises(StopIteration):
            next(gen)


@pytest.fixture(scope="module", autouse=True)
def summary(request):
    yield
    print_at_end(request, RESULTS, print_summary)


def print_summary(tr):
    off = RESULTS.get("off")
    tr.write_line("")
    tr.write_line("pull of an image already in the store, median ms (same run):")
    for name in ("off", "on", "on-cold"):
        t = RESULTS.get(name)
        if t is None:
            continue
        line = f"  trust {name:8} {t * 1000:7.1f} ms"
        if off and name != "off":
            added = t - off
            line += (f"   adds {added * 1000:5.1f} ms; goal <= {GOAL * 1000:.0f} ms:"
                     f" {'met' if added <= GOAL else 'NOT met'}")  # fmt: skip
        tr.write_line(line)


@pytest.mark.parametrize("trust", ["off", "on", "on-cold"])
def test_pull_present(benchmark, setup, trust):
    """on: the store remembers the signature it verified at the first pull (the usual
    case); on-cold: it does not (an image pulled with trust off, or that remembered state
    removed): the payload is fetched and `cryptography` verifies the signature."""
    import shutil

    sangja, env, ref, policy = setup
    argv = [sangja, "image", "pull", "-q"]
    if trust != "off":
        argv += ["--signature-policy", policy]
    argv.append(ref)  # the module's fixture keeps this thread in the registries' netns
    cache = os.path.join(env["SANGJA_ROOT"], "trust")

    def forget():
        if trust == "on-cold":
            shutil.rmtree(cache, ignore_errors=True)
        return (), {}

    def pull():
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)

    benchmark.pedantic(pull, setup=forget, rounds=ROUNDS, iterations=1, warmup_rounds=2)
    RESULTS[trust] = benchmark.stats.stats.median
