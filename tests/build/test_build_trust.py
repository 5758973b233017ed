"""Content trust on `sangja build`: FROM and COPY --from=IMAGE go through the same check as
`container run` (sangja.image.trust: check_local, and pull with the policy).  An image the
policy refuses is never built on (one line naming the image and why, no image, no build
dir, nothing pulled, no hold on any image); the store's image under a name is checked
against its registry's signatures too, and when the signed image is another one that one
is pulled and built on."""

import os
import sqlite3

import pytest
import trustkit
from buildkit import BUSYBOX, write_context
from trustkit import PASSPHRASE, signed_by, write_policy

PW = {"SANGJA_TRUST_PASSPHRASE": PASSPHRASE}
PROBE = "RUN test -e /marker && echo base=marker || echo base=busybox\n"


@pytest.fixture
def reg(push_registry):
    return push_registry("plain")


@pytest.fixture
def alice(sj, tmp_path):
    return trustkit.keypair(sj, tmp_path / "keys", "alice")


def push(sj, ref, key=None):
    sj.ok("image", "pull", "-q", BUSYBOX)
    sj.ok("image", "tag", BUSYBOX, ref)
    sj.ok("image", "push", "-q", ref, *(["--sign-by", key] if key else []), env=PW)


def holds(sj):
    db = os.path.join(sj.root, "sangja.db")
    c = sqlite3.connect(db)
    try:
        return c.execute("SELECT * FROM holds").fetchall()
    finally:
        c.close()


def test_build_refuses_an_unsigned_base(sj, reg, alice, tmp_path):
    key, pub = alice
    ref = f"{reg.addr}/build/box:v1"
    push(sj, ref)
    policy = write_policy(tmp_path / "alice.json", {reg.addr: signed_by(pub)})
    refused = f"image {ref} refused: no signature (the policy wants one by {pub})"
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": f"FROM {ref}\n{PROBE}"})
    # not in the store: nothing is pulled, nothing is built
    empty = {"SANGJA_ROOT": os.path.join(sj.tmp, "empty")}
    r = sj("build", "--signature-policy", policy, "-t", "app:1", ctx, env=empty)
    assert r.rc == 1 and r.err.splitlines()[-1].endswith(refused), r
    assert "Successfully built" not in r.out
    assert sj.ok("image", "ls", "-q", env=empty).out == ""
    # in the store (pulled with trust off): checked all the same, never built on
    before = sj.store_state()
    r = sj("build", "--signature-policy", policy, "-t", "app:1", ctx)
    assert r.rc == 1 and r.err.splitlines()[-1].endswith(refused), r
    assert "base=" not in r.out  # no RUN ran
    assert sj.store_state() == before and holds(sj) == []
    # COPY --from=IMAGE is checked as FROM is
    other = write_context(tmp_path / "ctx2", {"Dockerfile": f"FROM {BUSYBOX}\n"
                                              f"COPY --from={ref} /bin/busybox /b\n"})  # fmt: skip
    r = sj("build", "--signature-policy", policy, "-t", "app:2", other)
    assert r.rc == 1 and r.err.splitlines()[-1].endswith(refused), r
    assert sj.store_state() == before and holds(sj) == []
    # signed now: it builds; without a policy it built all along
    sj.ok("trust", "sign", "--key", key, ref, env=PW)
    r = sj.ok("build", "--signature-policy", policy, "-t", "app:1", ctx)
    assert "base=busybox" in r.out
    sj.ok("build", "--signature-policy", policy, "-t", "app:2", other)
    sj.ok("build", "--no-cache", "-t", "app:3", write_context(
        tmp_path / "ctx3", {"Dockerfile": f"FROM {BUSYBOX}\nCOPY --from={ref} /bin/busybox /b\n"}
    ))  # fmt: skip
    assert holds(sj) == []
    sj.assert_consistent()


def test_build_takes_the_signed_base(sj, reg, alice, tmp_path):
    """The store's image under the base's name is not the one the registry signed for it:
    the signed one is pulled (and verified) and the build runs on it."""
    key, pub = alice
    ref = f"{reg.addr}/build/app:v1"
    push(sj, ref, key=key)  # busybox, signed
    trustkit.marker_image(sj, tmp_path, ref)  # the store's ref:v1 is now another image
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": f"FROM {ref}\n{PROBE}"})
    assert "base=marker" in sj.ok("build", ctx).out  # trust off: the store's image
    policy = write_policy(tmp_path / "alice.json", {reg.addr: signed_by(pub)})
    r = sj.ok("build", "--signature-policy", policy, "-t", "on-signed:1", ctx)
    assert "base=busybox" in r.out
    assert sj.inspect(ref)["Id"] == sj.inspect(BUSYBOX)["Id"]  # the name now: the signed one
    assert holds(sj) == []


def test_build_with_content_trust_on(sj, reg, alice, tmp_path):
    """SANGJA_CONTENT_TRUST=1 and sangja's own policy file: no flag needed."""
    key, pub = alice
    signed, unsigned = f"{reg.addr}/ct/box:signed", f"{reg.addr}/ct/plain:v1"
    push(sj, signed, key=key)
    sj.ok("image", "push", "-q", trustkit.marker_image(sj, tmp_path, unsigned))
    own = os.path.join(os.path.dirname(sj.env["SANGJA_CONFIG"]), "policy.json")
    write_policy(own, {reg.addr: signed_by(pub)})
    on = {"SANGJA_CONTENT_TRUST": "1"}
    try:
        ok = write_context(tmp_path / "ok", {"Dockerfile": f"FROM {signed}\n{PROBE}"})
        assert "base=busybox" in sj.ok("build", ok, env=on).out
        bad = write_context(tmp_path / "bad", {"Dockerfile": f"FROM {unsigned}\n{PROBE}"})
        r = sj("build", "-t", "bad:1", bad, env=on)
        assert r.rc == 1 and f"image {unsigned} refused: no signature" in r.err, r
        assert "bad:1" not in sj.ok("image", "ls").out
    finally:
        os.unlink(own)
    # without a policy the same Dockerfile builds
    assert "base=marker" in sj.ok("build", bad).out
    assert holds(sj) == []
