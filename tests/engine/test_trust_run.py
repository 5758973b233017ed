"""Content trust on `container run`: an image the policy refuses is never run (exit 125, one
line naming the image and why, no container, nothing pulled); an image the store has is
checked against its registry's signatures too (as Docker's content trust asks its notary),
and when the signed image under the name is another one, that one is pulled and run."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "image"))  # fmt: skip

import pushkit  # noqa: E402
import trustkit  # noqa: E402
from registrykit import PLAIN  # noqa: E402
from trustkit import PASSPHRASE, signed_by, write_policy  # noqa: E402

BUSYBOX = f"{PLAIN}/test/busybox:latest"
PW = {"SANGJA_TRUST_PASSPHRASE": PASSPHRASE}


@pytest.fixture
def reg(tmp_path, fixtures, sj):
    fixtures.registry("plain")
    r = pushkit.PushRegistry(fixtures, "plain", tmp_path / "reg")
    yield r
    r.stop()


@pytest.fixture
def alice(sj, tmp_path):
    return trustkit.keypair(sj, tmp_path / "keys", "alice")


def push(sj, ref, src=BUSYBOX, key=None):
    sj.ok("image", "pull", "-q", src)
    sj.ok("image", "tag", src, ref)
    sj.ok("image", "push", "-q", ref, *(["--sign-by", key] if key else []), env=PW)


def containers(sj):
    d = os.path.join(sj.root, "containers")
    return os.listdir(d) if os.path.isdir(d) else []


def test_run_refuses_an_unsigned_image(sj, reg, alice, tmp_path):
    key, pub = alice
    ref = f"{reg.addr}/run/box:v1"
    push(sj, ref)
    policy = write_policy(tmp_path / "alice.json", {reg.addr: signed_by(pub)})
    # not in the store: nothing is pulled
    empty = {"SANGJA_ROOT": os.path.join(sj.tmp, "empty")}
    r = sj("container", "run", "--rm", "--signature-policy", policy, ref, "true", env=empty)
    assert r.rc == 125, r
    assert r.err.splitlines()[-1] == (f"sangja: image {ref} refused: no signature (the policy"
                                      f" wants one by {pub})")  # fmt: skip
    assert sj.ok("image", "ls", "-q", env=empty).out == ""
    # in the store (pulled with trust off): checked all the same, never run
    before = sj.store_state()
    r = sj("container", "run", "--rm", "--signature-policy", policy, ref, "true")
    assert r.rc == 125 and r.err == f"sangja: image {ref} refused: no signature (the policy" \
        f" wants one by {pub})\n", r  # fmt: skip
    assert containers(sj) == [] and sj.store_state() == before
    # signed now: it runs, and without trust it ran all along
    sj.ok("trust", "sign", "--key", key, ref, env=PW)
    r = sj.ok("container", "run", "--rm", "--signature-policy", policy, ref, "echo", "signed")
    assert r.out == "signed\n"
    r = sj.ok("container", "run", "--rm", ref, "echo", "no trust")
    assert r.out == "no trust\n"
    assert containers(sj) == []


def test_run_takes_the_signed_image(sj, reg, alice, tmp_path):
    """The store's image under the name is not the one the registry signed for it: the
    signed one is pulled (and verified) and run; with --pull never it is refused."""
    key, pub = alice
    ref = f"{reg.addr}/run/app:v1"
    push(sj, ref, key=key)  # busybox, signed
    trustkit.marker_image(sj, tmp_path, ref)  # the store's ref:v1 is now another image
    probe = ["sh", "-c", "test -e /marker && echo marker || echo busybox"]
    assert sj.ok("container", "run", "--rm", ref, *probe).out == "marker\n"  # trust off
    policy = write_policy(tmp_path / "alice.json", {reg.addr: signed_by(pub)})
    r = sj("container", "run", "--rm", "--pull", "never", "--signature-policy", policy, ref,
           *probe)  # fmt: skip
    assert r.rc == 125 and "the local image is not the one signed for it" in r.err, r
    r = sj.ok("container", "run", "--rm", "--signature-policy", policy, ref, *probe)
    assert r.out == "busybox\n"
    assert sj.inspect(ref)["Id"] == sj.inspect(BUSYBOX)["Id"]


def test_run_with_content_trust_on(sj, reg, alice, tmp_path):
    """SANGJA_CONTENT_TRUST=1 and sangja's own policy file (beside the engine config): no
    flag needed; an image id is content the user named, run as it is (as Docker)."""
    key, pub = alice
    signed, unsigned = f"{reg.addr}/ct/box:signed", f"{reg.addr}/ct/plain:v1"
    push(sj, signed, key=key)
    sj.ok("image", "push", "-q", trustkit.marker_image(sj, tmp_path, unsigned))
    own = os.path.join(os.path.dirname(sj.env["SANGJA_CONFIG"]), "policy.json")
    write_policy(own, {reg.addr: signed_by(pub)}, default={"type": "insecureAcceptAnything"})
    try:
        on = {"SANGJA_CONTENT_TRUST": "1"}
        assert sj.ok("container", "run", "--rm", signed, "echo", "ok", env=on).out == "ok\n"
        r = sj("container", "run", "--rm", unsigned, "true", env=on)
        assert r.rc == 125 and f"image {unsigned} refused: no signature" in r.err
        r = sj("container", "run", "--rm", BUSYBOX, "true", env=on)  # the policy: anything
        assert r.rc == 125 and "content trust is on" in r.err and "no trusted key" in r.err
        image_id = sj.inspect(unsigned)["Id"]
        r = sj.ok("container", "run", "--rm", image_id[7:19], "sh", "-c", "read x </marker;"
                  ' echo "$x"', env=on)  # fmt: skip
        assert r.out == "image B\n"
    finally:
        os.unlink(own)
    assert containers(sj) == []
