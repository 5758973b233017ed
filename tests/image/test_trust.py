"""Content trust against real registries (pushkit's private ones; the fixtures' for the
images): keys in cosign's format, signatures stored beside the image in sigstore's layout,
a containers-policy.json obeyed on pull -- and skopeo and podman (c/image) checking sangja's
signatures, sangja checking theirs.

Every refusal is one line naming the image and why, and leaves the store as it was."""

import base64
import json
import os
import stat

import pytest
import trustkit
from registrykit import PASSWORD, PLAIN, PODMAN, USER, Podman
from trustkit import PASSPHRASE, Raw, signed_by, skopeo, write_policy

BUSYBOX = f"{PLAIN}/test/busybox:latest"
PW = {"SANGJA_TRUST_PASSPHRASE": PASSPHRASE}


@pytest.fixture
def keys(sj, tmp_path):
    """Two key pairs made by `sangja trust key generate`: (key, pub) each."""
    d = tmp_path / "keys"
    return trustkit.keypair(sj, d, "alice"), trustkit.keypair(sj, d, "mallory")


def pushed(sj, fixtures, reg, dst, *, sign=None, src=BUSYBOX):
    """`src` pushed as `dst` (signed with the key `sign`) -> the manifest digest."""
    fixtures.registry("plain")
    if not sj.images() or src not in [t for i in sj.images() for t in i["RepoTags"]]:
        sj.ok("image", "pull", "-q", src)
    sj.ok("image", "tag", src, dst)
    args = ["image", "push", dst] + (["--sign-by", sign] if sign else [])
    r = sj.ok(*args, env=PW)
    return r.out.split("digest: ")[1].split()[0]


def fresh(sj, name):
    """The environment of a second, empty engine root."""
    return {"SANGJA_ROOT": os.path.join(sj.tmp, name)}


def refused(sj, ref, policy, env=None):
    """A pull that must be refused: one line, exit 1, the store as it was -> the reason."""
    before = sj.store_state()
    r = sj.fail("image", "pull", "--signature-policy", policy, ref, env=env)
    assert r.rc == 1, r
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"sangja: image {ref} refused: "), r
    assert sj.store_state() == before
    return lines[0].split(" refused: ", 1)[1]


# ---- keys ----------------------------------------------------------------------------------


def test_key_generate(sj, tmp_path):
    from sangja.image.trust import keys as k

    d = tmp_path / "k"
    key, pub = trustkit.keypair(sj, d, "team")
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    text = open(key).read()
    assert text.startswith("-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n")
    doc = json.loads(base64.b64decode("".join(text.strip().splitlines()[1:-1])))
    assert doc["kdf"]["name"] == "scrypt" and doc["kdf"]["params"] == {"N": 32768, "r": 8, "p": 1}
    assert doc["cipher"]["name"] == "nacl/secretbox" and len(base64.b64decode(
        doc["cipher"]["nonce"])) == 24  # fmt: skip
    assert open(pub).read().startswith("-----BEGIN PUBLIC KEY-----\n")
    priv = k.load_private(key, PASSPHRASE.encode())
    assert priv.public().spki == k.load_public(pub).spki
    payload = b"something signed"
    assert k.load_public(pub).verify(priv.sign(payload), payload)
    assert not k.load_public(pub).verify(priv.sign(payload), payload + b"!")
    with pytest.raises(k.TrustError, match="wrong passphrase"):
        k.load_private(key, b"not it")
    # never over an existing key; without a passphrase and a terminal: an error, no files
    r = sj.fail("trust", "key", "generate", "team", cwd=str(d), env=PW)
    assert "team.key exists already" in r.err
    r = sj.fail("trust", "key", "generate", "other", cwd=str(d))
    assert "SANGJA_TRUST_PASSPHRASE" in r.err and len(r.err.splitlines()) == 1
    assert sorted(os.listdir(d)) == ["team.key", "team.pub"]
    # the key signs only with its passphrase
    r = sj.fail("trust", "sign", "--key", key, BUSYBOX, env={"SANGJA_TRUST_PASSPHRASE": "x"})
    assert "wrong passphrase" in r.err


# ---- signing, verifying ---------------------------------------------------------------------


def test_push_signs_and_pull_verifies(sj, fixtures, push_registry, keys, tmp_path):
    (key, pub), _ = keys
    reg = push_registry("plain")
    dst = f"{reg.addr}/signed/box:v1"
    digest = pushed(sj, fixtures, reg, dst, sign=key)
    # the signature beside the image, in sigstore's layout
    raw = Raw(reg.addr)
    sig = raw.sig_manifest("signed/box", digest)
    assert sig["mediaType"] == trustkit.OCI_MANIFEST and len(sig["layers"]) == 1
    layer = sig["layers"][0]
    assert layer["mediaType"] == trustkit.SIMPLE_SIGNING
    payload = json.loads(raw.blob("signed/box", layer["digest"]))
    assert payload["critical"] == {"identity": {"docker-reference": dst},
                                   "image": {"docker-manifest-digest": digest},
                                   "type": "cosign container image signature"}  # fmt: skip
    assert base64.b64decode(layer["annotations"][trustkit.SIG_ANNOTATION])
    # a policy wanting alice's signature lets it in; the pull is the usual one
    policy = write_policy(tmp_path / "alice.json", {reg.addr: signed_by(pub)},
                          default={"type": "reject"})  # fmt: skip
    r = sj.ok("image", "pull", "--signature-policy", policy, dst, env=fresh(sj, "r2"))
    assert f"Digest: {digest}" in r.out
    # the store remembers the payload and that alice's key verified it; a signature
    # tampered with afterwards is refused all the same (the remembered fact names it)
    cache = os.path.join(sj.tmp, "r2", "trust")
    assert len(os.listdir(os.path.join(cache, "payloads"))) == 1
    assert len(os.listdir(os.path.join(cache, "verified"))) == 1
    sj.ok("image", "pull", "-q", "--signature-policy", policy, dst, env=fresh(sj, "r2"))
    good = raw.sig_manifest("signed/box", digest)
    bad = json.loads(json.dumps(good))
    note = bad["layers"][0]["annotations"]
    note[trustkit.SIG_ANNOTATION] = trustkit.flip_signature(note[trustkit.SIG_ANNOTATION])
    raw.put_sig_manifest("signed/box", digest, bad)
    why = refused(sj, dst, policy, env=fresh(sj, "r2"))
    assert why.startswith("signed by an unknown key")
    raw.put_sig_manifest("signed/box", digest, good)
    # by digest too (matchRepoDigestOrExact: the same repository is enough)
    sj.ok("image", "pull", "-q", "--signature-policy", policy, f"{reg.addr}/signed/box@{digest}",
          env=fresh(sj, "r3"))  # fmt: skip
    # trust inspect: who signed it, as JSON and as a table
    info = json.loads(sj.ok("trust", "inspect", "--key", pub, dst).out)[0]
    assert info["Digest"] == digest and info["SignatureTag"] == trustkit.sig_tag(digest)
    (s,) = info["Signatures"]
    assert s["Signer"] == pub and s["SignedReference"] == dst and s["Problem"] is None
    assert s["Creator"].startswith("sangja ")
    r = sj.ok("trust", "inspect", "--pretty", dst)
    assert "(unknown key)" in r.out  # no key given, no policy: nobody known signed it
    r = sj.ok("trust", "inspect", "--pretty", "--signature-policy", policy, dst)
    assert f"{dst}   {digest[:19]}   {pub}   " in r.out  # the policy's key did
    # `trust sign` signs what the registry holds; the same signature is not stored twice
    r = sj.ok("trust", "sign", "--key", key, dst, env=PW)
    assert (
        r.out
        == f"Signed {dst} ({digest}) with {key}: {reg.addr}/signed/box:{trustkit.sig_tag(digest)}\n"
    )
    assert len(raw.sig_manifest("signed/box", digest)["layers"]) in (1, 2)  # timestamps differ


# ---- refusals -------------------------------------------------------------------------------


def test_refusals(sj, fixtures, push_registry, keys, tmp_path):
    """Each way a signature can fail, against a policy wanting alice's: one line naming the
    image and why, exit 1, nothing of the image kept (the store as it was, a fresh one
    empty)."""
    (key, pub), (mkey, _) = keys
    reg = push_registry("plain")
    raw = Raw(reg.addr)
    r = reg.addr
    policy = write_policy(tmp_path / "alice.json", {r: signed_by(pub)}, default={"type": "reject"})
    empty = fresh(sj, "empty")

    # no signature at all
    pushed(sj, fixtures, reg, f"{r}/a/box:v1")
    why = refused(sj, f"{r}/a/box:v1", policy, env=empty)
    assert why == f"no signature (the policy wants one by {pub})"
    assert not os.path.exists(os.path.join(sj.tmp, "empty", "blobs")) or not os.listdir(
        os.path.join(sj.tmp, "empty", "blobs", "sha256"))  # fmt: skip
    # an image with a valid signature for another repository: refused, and nothing of the
    # signature is remembered either
    d = pushed(sj, fixtures, reg, f"{r}/a2/box:v1", sign=key)
    raw.copy("a2/box", "v1", "a3/box", "v1")
    raw.copy("a2/box", trustkit.sig_tag(d), "a3/box", trustkit.sig_tag(d))
    assert refused(sj, f"{r}/a3/box:v1", policy, env=empty).startswith("the signature is for")
    assert not os.path.exists(os.path.join(sj.tmp, "empty", "trust"))
    # signed, by another key
    pushed(sj, fixtures, reg, f"{r}/b/box:v1", sign=mkey)
    why = refused(sj, f"{r}/b/box:v1", policy)
    assert why == f"signed by an unknown key (1 signature, none verifies with {pub})"
    # the signature tampered with (the image is what was signed; its signature is not)
    d = pushed(sj, fixtures, reg, f"{r}/c/box:v1", sign=key)
    doc = raw.sig_manifest("c/box", d)
    note = doc["layers"][0]["annotations"]
    note[trustkit.SIG_ANNOTATION] = trustkit.flip_signature(note[trustkit.SIG_ANNOTATION])
    raw.put_sig_manifest("c/box", d, doc)
    assert refused(sj, f"{r}/c/box:v1", policy).startswith("signed by an unknown key")
    # the payload tampered with: another digest written into it, the signature kept
    d = pushed(sj, fixtures, reg, f"{r}/d/box:v1", sign=key)
    doc = raw.sig_manifest("d/box", d)
    payload = json.loads(raw.blob("d/box", doc["layers"][0]["digest"]))
    payload["critical"]["identity"]["docker-reference"] = f"{r}/d/box:v2"
    forged = json.dumps(payload).encode()
    doc["layers"][0].update(digest=raw.put_blob("d/box", forged), size=len(forged))
    raw.put_sig_manifest("d/box", d, doc)
    assert refused(sj, f"{r}/d/box:v1", policy).startswith("signed by an unknown key")
    # a valid signature of another image, copied under this image's signature tag
    other = trustkit.marker_image(sj, tmp_path, f"{r}/e/other:v1")
    od = sj.ok("image", "push", "--sign-by", key, other, env=PW).out.split("digest: ")[1].split()[0]
    d = pushed(sj, fixtures, reg, f"{r}/e/box:v1")
    raw.copy("e/other", trustkit.sig_tag(od), "e/box", trustkit.sig_tag(d))
    why = refused(sj, f"{r}/e/box:v1", policy)
    assert why == f"the signature is for another digest ({od}; the image is {d})"
    # the tag moved: v2's signature is valid, and v1 now names v2's image
    d = pushed(sj, fixtures, reg, f"{r}/f/box:v2", sign=key)
    pushed(sj, fixtures, reg, f"{r}/f/box:v1")  # the same manifest, not signed as v1
    why = refused(sj, f"{r}/f/box:v1", policy)
    assert why == f"the tag moved: the signature is for {r}/f/box:v2, not {r}/f/box:v1"
    # the image and its signature copied into another repository
    d = pushed(sj, fixtures, reg, f"{r}/g/box:v1", sign=key)
    raw.copy("g/box", "v1", "h/box", "v1")
    raw.copy("g/box", trustkit.sig_tag(d), "h/box", trustkit.sig_tag(d))
    why = refused(sj, f"{r}/h/box:v1", policy)
    assert why == f"the signature is for another repository ({r}/g/box:v1)"
    # the image replaced under a signed tag: the new one has no signature
    trustkit.marker_image(sj, tmp_path, f"{r}/g/box:v1")
    sj.ok("image", "push", f"{r}/g/box:v1")
    assert refused(sj, f"{r}/g/box:v1", policy).startswith("no signature")
    # the policy rejects the registry (its default here)
    why = refused(sj, f"{BUSYBOX}", policy)
    assert why == f"the policy {policy} rejects it"
    sj.assert_consistent()


def test_refusals_are_errors_of_the_policy_too(sj, fixtures, push_registry, keys, tmp_path):
    """A broken policy or key is an error naming the file; the image is not pulled."""
    (key, pub), _ = keys
    reg = push_registry("plain")
    dst = f"{reg.addr}/p/box:v1"
    pushed(sj, fixtures, reg, dst, sign=key)
    sj.ok("image", "rm", dst)
    before = sj.store_state()
    bad = tmp_path / "bad.json"
    cases = {
        "{": "invalid JSON",
        '{"default": []}': "default: want a non-empty list of requirements",
        '{"default": [{"type": "accept"}]}': "unknown requirement type 'accept'",
        '{"default": [{"type": "reject", "x": 1}]}': "unknown field 'x'",
        '{"default": [{"type": "reject"}], "default": [{"type": "reject"}]}': "duplicate key",
        '{"default": [{"type": "sigstoreSigned", "keyPath": "k", "keyData": "aa=="}]}':
            "exactly one of",
    }  # fmt: skip
    for text, msg in cases.items():
        bad.write_text(text)
        r = sj.fail("image", "pull", "--signature-policy", str(bad), dst)
        assert msg in r.err and str(bad) in r.err and len(r.err.splitlines()) == 1, (text, r)
    r = sj.fail("image", "pull", "--signature-policy", str(tmp_path / "none.json"), dst)
    assert "No such file or directory" in r.err
    # a key the policy names that is not there
    p = write_policy(tmp_path / "gone.json", {reg.addr: signed_by(tmp_path / "gone.pub")})
    why = refused(sj, dst, p)
    assert why.startswith("the policy's key cannot be used: public key ") and "gone.pub" in why
    # what sangja does not verify refuses, never passes
    for req, what in (({"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k"}, "GPG"),
                      ({"type": "sigstoreSigned", "keyPath": pub, "rekorPublicKeyPath": "/r"},
                       "Rekor"),
                      ({"type": "sigstoreSigned", "fulcio": {}}, "fulcio")):  # fmt: skip
        p = write_policy(tmp_path / "unsupported.json", {reg.addr: req})
        assert what in refused(sj, dst, p) and "which sangja does not verify" in refused(sj, dst, p)
    assert sj.store_state() == before


def test_policy_scopes(sj, fixtures, push_registry, keys, tmp_path):
    """The most specific scope wins: name:tag, repository, namespace, registry, wildcard,
    the transport's "", then default; every requirement of a list must hold."""
    (key, pub), (mkey, mpub) = keys
    reg = push_registry("plain")
    r = reg.addr
    pushed(sj, fixtures, reg, f"{r}/team/app:v1", sign=key)
    pushed(sj, fixtures, reg, f"{r}/team/app:dev")
    pushed(sj, fixtures, reg, f"{r}/team/tool:v1", sign=mkey)
    pushed(sj, fixtures, reg, f"{r}/other/x:v1")
    for t in ("team/app:v1", "team/app:dev", "team/tool:v1", "other/x:v1"):
        sj.ok("image", "rm", f"{r}/{t}")
    policy = write_policy(tmp_path / "scoped.json", {
        f"{r}/team/app:dev": {"type": "insecureAcceptAnything"},
        f"{r}/team/app": signed_by(pub),
        f"{r}/team": signed_by(mpub),
        r: {"type": "reject"},
    }, default={"type": "insecureAcceptAnything"})  # fmt: skip
    ok = lambda ref: sj.ok("image", "pull", "-q", "--signature-policy", policy, ref)  # noqa: E731
    ok(f"{r}/team/app:v1")
    ok(f"{r}/team/app:dev")  # the tag's own scope: anything
    ok(f"{r}/team/tool:v1")  # the namespace's: mallory's key
    assert refused(sj, f"{r}/other/x:v1", policy) == (
        f"the policy {policy} (scope '{r}') rejects it"
    )
    ok(BUSYBOX)  # another registry: the default
    # a list: both keys must have signed
    both = write_policy(tmp_path / "both.json", {f"{r}/team": [signed_by(pub), signed_by(mpub)]})
    assert refused(sj, f"{r}/team/app:v1", both).startswith("signed by an unknown key")
    sj.ok("trust", "sign", "--key", mkey, f"{r}/team/app:v1", env=PW)
    sj.ok("image", "pull", "-q", "--signature-policy", both, f"{r}/team/app:v1",
          env=fresh(sj, "both"))  # fmt: skip
    # keyPaths: either key will do; the wildcard scope of the host (127.0.0.1 -> *.0.0.1)
    either = write_policy(tmp_path / "either.json", {"*.0.0.1": signed_by(pub, mpub)},
                          default={"type": "reject"})  # fmt: skip
    sj.ok("image", "pull", "-q", "--signature-policy", either, f"{r}/team/tool:v1",
          env=fresh(sj, "either"))  # fmt: skip
    # signedIdentity matchRepository: a signature for any tag of the repository
    repo_only = write_policy(
        tmp_path / "repo.json", {r: signed_by(pub, identity="matchRepository")}
    )
    pushed(sj, fixtures, reg, f"{r}/team/app:v9")  # v1's manifest, unsigned as v9
    sj.ok("image", "pull", "-q", "--signature-policy", repo_only, f"{r}/team/app:v9",
          env=fresh(sj, "repo"))  # fmt: skip
    assert refused(sj, f"{r}/team/app:v9", write_policy(
        tmp_path / "exact.json", {r: signed_by(pub, identity="matchExact")})).startswith(
        "the tag moved")  # fmt: skip


def test_content_trust_switch_and_default_policy(sj, fixtures, push_registry, keys, tmp_path):
    """SANGJA_CONTENT_TRUST=1 (Docker's DOCKER_CONTENT_TRUST): a policy that would let an
    image in unsigned does not; sangja's own policy file (policy.json beside the engine
    config) is in force without any flag; so is daemon.json's `signature-policy`."""
    (key, pub), _ = keys
    reg = push_registry("plain")
    signed, unsigned = f"{reg.addr}/ct/box:signed", f"{reg.addr}/ct/other:unsigned"
    pushed(sj, fixtures, reg, signed, sign=key)
    sj.ok("image", "push", trustkit.marker_image(sj, tmp_path, unsigned))
    for t in (signed, unsigned):
        sj.ok("image", "rm", t)
    on = {"SANGJA_CONTENT_TRUST": "1"}
    r = sj.fail("image", "pull", unsigned, env=on)
    if os.path.exists("/etc/containers/policy.json"):  # podman's: read when sangja has none
        assert "/etc/containers/policy.json" in r.err
    assert "content trust is on (SANGJA_CONTENT_TRUST=1)" in r.err and len(r.err.splitlines()) == 1
    anything = write_policy(tmp_path / "anything.json")
    r = sj.fail("image", "pull", "--signature-policy", anything, unsigned, env=on)
    assert f"refused: content trust is on (SANGJA_CONTENT_TRUST=1) and the policy {anything}" \
        f" names no trusted key for {reg.addr}/ct/other" in r.err  # fmt: skip
    sj.ok("image", "pull", "--signature-policy", anything, unsigned)  # without the switch
    sj.ok("image", "rm", unsigned)
    # sangja's own policy file: beside the engine config ($SANGJA_CONFIG here)
    own = write_policy(os.path.join(os.path.dirname(sj.env["SANGJA_CONFIG"]), "policy.json"),
                       {reg.addr: signed_by(pub)})  # fmt: skip
    try:
        assert refused(sj, unsigned, own).startswith("no signature")
        r = sj.fail("image", "pull", unsigned)
        assert f"image {unsigned} refused: no signature" in r.err
        sj.ok("image", "pull", "-q", signed)
        sj.ok("image", "pull", "-q", signed, env=on)
    finally:
        os.unlink(own)
    # daemon.json's signature-policy
    conf = tmp_path / "daemon.json"
    conf.write_text(json.dumps({"signature-policy": str(tmp_path / "anything.json")}))
    sj.ok("image", "pull", "-q", unsigned, env={"SANGJA_CONFIG": str(conf)})
    r = sj.fail("image", "pull", unsigned, env={"SANGJA_CONFIG": str(conf), **on})
    assert "names no trusted key" in r.err


def test_trust_off_changes_nothing(sj, fixtures, push_registry, keys, tmp_path):
    """No flag, no switch, no policy of sangja's: pull asks the registry for no signature
    (its log shows no .sig request), prints what it always printed, and an unsigned image
    comes in as before; `SANGJA_CONTENT_TRUST=0` is off too."""
    (key, pub), _ = keys
    reg = push_registry("plain")
    signed = f"{reg.addr}/off/box:v1"
    digest = pushed(sj, fixtures, reg, signed, sign=key)
    sj.ok("image", "rm", signed)
    before = reg.log().count(".sig")
    rid = fixtures.manifest("busybox")["layers"][0]["digest"][7:19]
    for i, env in enumerate(({}, {"SANGJA_CONTENT_TRUST": "0"})):
        r = sj.ok("image", "pull", signed, env=dict(env, **fresh(sj, f"off{i}")))
        assert r.out.splitlines() == [
            "v1: Pulling from off/box", f"{rid}: Pulling fs layer", f"{rid}: Downloading",
            f"{rid}: Download complete",
            f"{rid}: Extracting", f"{rid}: Pull complete", f"Digest: {digest}",
            f"Status: Downloaded newer image for {signed}", signed], r.out  # fmt: skip
    assert reg.log().count(".sig") == before
    # a store and an image that trust never touched are the same as one it verified
    a = sj.ok("image", "pull", "-q", signed, env=fresh(sj, "off")).out
    policy = write_policy(tmp_path / "alice.json", {reg.addr: signed_by(pub)})
    b = sj.ok("image", "pull", "-q", "--signature-policy", policy, signed, env=fresh(sj, "on")).out
    assert a == b
    assert reg.log().count(".sig") > before


def test_revoke(sj, fixtures, push_registry, keys, tmp_path):
    (key, pub), (mkey, mpub) = keys
    reg = push_registry("plain")
    dst = f"{reg.addr}/rev/box:v1"
    digest = pushed(sj, fixtures, reg, dst, sign=key)
    sj.ok("trust", "sign", "--key", mkey, dst, env=PW)
    alice = write_policy(tmp_path / "alice.json", {reg.addr: signed_by(pub)})
    mallory = write_policy(tmp_path / "mallory.json", {reg.addr: signed_by(mpub)})
    r = sj.fail("trust", "revoke", dst)
    assert "confirm with -y" in r.err
    r = sj.ok("trust", "revoke", "-y", "--key", mpub, dst)
    assert r.out == f"Revoked 1 signature of {dst} (1 other signature kept)\n"
    assert refused(sj, dst, mallory).startswith("signed by an unknown key")
    sj.ok("image", "pull", "-q", "--signature-policy", alice, dst, env=fresh(sj, "a"))
    r = sj.fail("trust", "revoke", "-y", "--key", mpub, dst)
    assert f"no signature by {mpub} to revoke" in r.err
    r = sj.ok("trust", "revoke", "-y", dst)
    assert r.out == f"Revoked 1 signature of {dst} (the signature manifest is deleted)\n"
    assert not Raw(reg.addr).has_manifest("rev/box", trustkit.sig_tag(digest))
    assert refused(sj, dst, alice).startswith("no signature")
    r = sj.fail("trust", "revoke", "-y", dst)
    assert "no signature to revoke" in r.err
    # a registry that deletes nothing: the tag is left holding no signature
    ro = push_registry("plain", port=5103, delete=False)
    dst = f"{ro.addr}/rev/box:v1"
    pushed(sj, fixtures, ro, dst, sign=key)
    r = sj.ok("trust", "revoke", "-y", dst)
    assert "the registry does not delete manifests" in r.out
    assert refused(sj, dst, write_policy(tmp_path / "ro.json", {ro.addr: signed_by(pub)})) == (
        f"no signature (the policy wants one by {pub})"
    )


def test_tls_and_auth_registries(sj, fixtures, push_registry, keys, tmp_path):
    """Signing and verifying through TLS (the fixtures' CA in certs.d), basic auth and
    bearer tokens: the signature's requests use the image's own credentials and scopes."""
    (key, pub), _ = keys
    for variant in ("tls", "auth", "token"):
        reg = push_registry(variant)
        sj.trust(fixtures.ca, reg.addr)
        if variant != "tls":
            sj.ok("login", "-u", USER, "--password-stdin", reg.addr, input=PASSWORD)
        dst = f"{reg.addr}/{variant}/box:v1"
        digest = pushed(sj, fixtures, reg, dst, sign=key)
        policy = write_policy(tmp_path / f"{variant}.json", {reg.addr: signed_by(pub)},
                              default={"type": "reject"})  # fmt: skip
        r = sj.ok("image", "pull", "--signature-policy", policy, dst, env=fresh(sj, variant))
        assert f"Digest: {digest}" in r.out
        unsigned = f"{reg.addr}/{variant}/plain:v1"
        pushed(sj, fixtures, reg, unsigned)
        assert refused(sj, unsigned, policy, env=fresh(sj, variant + "2")).startswith(
            "no signature")  # fmt: skip


# ---- the ecosystem's tools ------------------------------------------------------------------


def test_signatures_travel_with_skopeo_copy(sj, fixtures, push_registry, keys, tmp_path):
    """c/image reads sangja's signature tag as sigstore attachments and copies it along
    with the image (skopeo copy, registries.d use-sigstore-attachments); what it writes at
    the destination -- its own signature manifest and config -- sangja verifies.  The
    signature still names the first registry: remapIdentity says the copy may carry it."""
    (key, pub), _ = keys
    src_reg, dst_reg = push_registry("plain"), push_registry("plain", port=5102)
    src = f"{src_reg.addr}/orig/box:v1"
    dst = f"{dst_reg.addr}/mirror/box:v1"
    digest = pushed(sj, fixtures, src_reg, src, sign=key)
    regd = trustkit.registries_d(tmp_path)
    r = skopeo(write_policy(tmp_path / "any.json"), regd, "copy", "-q", "--src-tls-verify=false",
               "--dest-tls-verify=false", f"docker://{src}", f"docker://{dst}")  # fmt: skip
    assert r.returncode == 0, r.stderr
    raw = Raw(dst_reg.addr)
    copied = raw.sig_manifest("mirror/box", digest)
    assert [ly["digest"] for ly in copied["layers"]] == [
        ly["digest"] for ly in Raw(src_reg.addr).sig_manifest("orig/box", digest)["layers"]
    ]
    # as it is, the signature is for another repository
    policy = write_policy(tmp_path / "mirror.json", {dst_reg.addr: signed_by(pub)})
    why = refused(sj, dst, policy, env=fresh(sj, "m1"))
    assert why == f"the signature is for another repository ({src})"
    # the mirror's images are the origin's: remapIdentity
    remap = signed_by(pub)
    remap["signedIdentity"] = {"type": "remapIdentity", "prefix": f"{dst_reg.addr}/mirror",
                               "signedPrefix": f"{src_reg.addr}/orig"}  # fmt: skip
    policy = write_policy(tmp_path / "remap.json", {dst_reg.addr: remap})
    r = sj.ok("image", "pull", "--signature-policy", policy, dst, env=fresh(sj, "m2"))
    assert f"Digest: {digest}" in r.out


def c_image_has_sigstore(fixtures, tmp_path):
    """Debian builds c/image (skopeo, podman, buildah) without sigstore: signing and
    verifying stop at "Debian-local change: sigstore disabled".  Ask skopeo itself: a copy
    signed with a key that is not one fails for that reason there, for another elsewhere."""
    import subprocess

    d = tmp_path / "probe"
    d.mkdir()
    (d / "k.key").write_text("-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\neyJ9\n"
                             "-----END ENCRYPTED COSIGN PRIVATE KEY-----\n")  # fmt: skip
    (d / "pw").write_text("x")
    argv = ["skopeo", "--insecure-policy", "copy", "-q", "--sign-identity", "localhost/probe:1",
            "--sign-by-sigstore-private-key", str(d / "k.key"), "--sign-passphrase-file",
            str(d / "pw"), f"oci:{fixtures.oci}:busybox", f"dir:{d / 'dst'}"]  # fmt: skip
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    return "sigstore disabled" not in r.stderr


_PROBED = {}


@pytest.fixture
def c_image_sigstore(fixtures, tmp_path):
    if "ok" not in _PROBED:
        _PROBED["ok"] = c_image_has_sigstore(fixtures, tmp_path)
    if not _PROBED["ok"]:
        pytest.skip(
            "this host's skopeo and podman (c/image) are built without sigstore"
            " (Debian's patch, 'sigstore disabled'): they can neither sign nor verify"
        )


def test_skopeo_checks_sangja_signatures(sj, fixtures, push_registry, keys, tmp_path,
                                        c_image_sigstore):  # fmt: skip
    """c/image (skopeo copy) with a policy wanting sigstoreSigned by sangja's public key:
    accepts what sangja signed, refuses it once the signature or the image is tampered
    with, and refuses the other key's signature."""
    (key, pub), (mkey, mpub) = keys
    reg = push_registry("plain")
    dst = f"{reg.addr}/checked/box:v1"
    digest = pushed(sj, fixtures, reg, dst, sign=key)
    regd = trustkit.registries_d(tmp_path)
    policy = write_policy(tmp_path / "c-image.json", {reg.addr: signed_by(pub)},
                          default={"type": "reject"})  # fmt: skip

    def copy():
        out = tmp_path / f"out-{len(os.listdir(tmp_path))}"
        return skopeo(policy, regd, "copy", "-q", "--src-tls-verify=false", f"docker://{dst}",
                      f"dir:{out}")  # fmt: skip

    r = copy()
    assert r.returncode == 0, r.stderr
    raw = Raw(reg.addr)
    good = raw.sig_manifest("checked/box", digest)
    # the signature tampered with: c/image refuses, and so does sangja
    bad = json.loads(json.dumps(good))
    note = bad["layers"][0]["annotations"]
    note[trustkit.SIG_ANNOTATION] = trustkit.flip_signature(note[trustkit.SIG_ANNOTATION])
    raw.put_sig_manifest("checked/box", digest, bad)
    r = copy()
    assert r.returncode != 0 and "signature" in r.stderr.lower(), r.stderr
    assert refused(sj, dst, policy, env=fresh(sj, "t1")).startswith("signed by an unknown key")
    # signed by the other key only: refused by both
    raw.put_sig_manifest("checked/box", digest, good)
    sj.ok("trust", "revoke", "-y", dst)
    sj.ok("trust", "sign", "--key", mkey, dst, env=PW)
    assert copy().returncode != 0
    assert refused(sj, dst, policy, env=fresh(sj, "t2")).startswith("signed by an unknown key")
    # the image tampered with: the tag now names another image, which nobody signed
    raw.put_sig_manifest("checked/box", digest, good)
    trustkit.marker_image(sj, tmp_path, dst)
    sj.ok("image", "push", dst)
    r = copy()
    assert r.returncode != 0 and "signature" in r.stderr.lower(), r.stderr
    assert refused(sj, dst, policy, env=fresh(sj, "t3")).startswith("no signature")


@pytest.mark.skipif(PODMAN is None, reason="podman is not installed")
def test_podman_checks_sangja_signatures(sj, fixtures, push_registry, keys, tmp_path,
                                        c_image_sigstore):  # fmt: skip
    import subprocess

    (key, pub), _ = keys
    reg = push_registry("plain")
    dst = f"{reg.addr}/pod/box:v1"
    digest = pushed(sj, fixtures, reg, dst, sign=key)
    home = tmp_path / "home-podman"
    os.makedirs(home / ".config" / "containers")
    os.rename(trustkit.registries_d(tmp_path), home / ".config" / "containers" / "registries.d")
    policy = write_policy(tmp_path / "podman.json", {reg.addr: signed_by(pub)},
                          default={"type": "reject"})  # fmt: skip
    pm = Podman(tmp_path)

    def pull():
        return subprocess.run(pm.base + ["pull", "-q", "--tls-verify=false", "--signature-policy",
                                         policy, dst], capture_output=True, text=True,
                              env=dict(os.environ, HOME=str(home)), timeout=300)  # fmt: skip

    try:
        r = pull()
        assert r.returncode == 0, r.stderr
        assert pm.inspect(dst)["Digest"] == digest
        pm.reset()
        raw = Raw(reg.addr)
        bad = raw.sig_manifest("pod/box", digest)
        note = bad["layers"][0]["annotations"]
        note[trustkit.SIG_ANNOTATION] = trustkit.flip_signature(note[trustkit.SIG_ANNOTATION])
        raw.put_sig_manifest("pod/box", digest, bad)
        r = pull()
        assert r.returncode != 0 and "signature" in r.stderr.lower(), r.stderr
    finally:
        pm.close()


def test_sangja_checks_skopeo_signatures(sj, fixtures, push_registry, keys, tmp_path,
                                        c_image_sigstore):  # fmt: skip
    """skopeo signs with a key sangja generated (cosign's encrypted format); sangja's pull
    verifies the signature with its public key, and refuses it with another key."""
    (key, pub), (_, mpub) = keys
    reg = push_registry("plain")
    fixtures.registry("plain")
    dst = f"{reg.addr}/by-skopeo/box:v1"
    regd = trustkit.registries_d(tmp_path)
    pwfile = tmp_path / "pw"
    pwfile.write_text(PASSPHRASE)
    sign = ["--sign-by-sigstore-private-key", key, "--sign-passphrase-file", str(pwfile)]
    tls = ["--src-tls-verify=false", "--dest-tls-verify=false"]
    r = skopeo(write_policy(tmp_path / "any.json"), regd, "copy", "-q", *tls, *sign,
               f"docker://{BUSYBOX}", f"docker://{dst}")  # fmt: skip
    assert r.returncode == 0, r.stderr
    policy = write_policy(tmp_path / "alice.json", {reg.addr: signed_by(pub)},
                          default={"type": "reject"})  # fmt: skip
    r = sj.ok("image", "pull", "--signature-policy", policy, dst)
    assert f"Digest: {fixtures.digest('test/busybox:latest')}" in r.out
    info = json.loads(sj.ok("trust", "inspect", "--key", pub, dst).out)[0]
    assert info["Signatures"][0]["Creator"].startswith("containers/image")
    assert info["Signatures"][0]["Signer"] == pub
    mallory = write_policy(tmp_path / "mallory.json", {reg.addr: signed_by(mpub)})
    assert refused(sj, dst, mallory, env=fresh(sj, "m")).startswith("signed by an unknown key")


# ---- an implementation that is not sangja's ------------------------------------------------


def test_openssl_checks_sangja_signatures_and_keys(sj, fixtures, push_registry, keys, tmp_path):
    """This host's c/image cannot check sigstore signatures (see the skipped tests above), so
    OpenSSL stands in as the independent verifier: the signature stored in the registry is
    an ECDSA-SHA256 signature of the stored payload by the key in NAME.pub, and the private
    key file decrypts, as cosign's format says (go-tuf's scrypt + NaCl secretbox, read here
    by the test's own few lines), to a PKCS#8 key whose public half OpenSSL finds equal to
    NAME.pub."""
    import hashlib
    import subprocess

    import nacl.secret

    (key, pub), (_, mpub) = keys
    reg = push_registry("plain")
    dst = f"{reg.addr}/signed/openssl:v1"
    digest = pushed(sj, fixtures, reg, dst, sign=key)
    raw = Raw(reg.addr)
    layer = raw.sig_manifest("signed/openssl", digest)["layers"][0]
    payload = tmp_path / "payload.json"
    payload.write_bytes(raw.blob("signed/openssl", layer["digest"]))
    sig = tmp_path / "sig.der"
    sig.write_bytes(base64.b64decode(layer["annotations"][trustkit.SIG_ANNOTATION]))

    def verify(pubkey, data):
        return subprocess.run(["openssl", "dgst", "-sha256", "-verify", pubkey, "-signature",
                               str(sig), str(data)], capture_output=True, text=True)  # fmt: skip

    r = verify(pub, payload)
    assert r.returncode == 0 and r.stdout.strip() == "Verified OK", r
    assert verify(mpub, payload).returncode == 1  # another key
    forged = tmp_path / "forged.json"
    forged.write_bytes(payload.read_bytes().replace(digest.encode(), b"sha256:" + b"0" * 64))
    assert verify(pub, forged).returncode == 1  # another digest in the payload

    text = open(key).read().strip().splitlines()
    doc = json.loads(base64.b64decode("".join(text[1:-1])))
    kdf = doc["kdf"]["params"]
    secret = hashlib.scrypt(trustkit.PASSPHRASE.encode(),
                            salt=base64.b64decode(doc["kdf"]["salt"]), n=kdf["N"], r=kdf["r"],
                            p=kdf["p"], maxmem=128 * kdf["N"] * kdf["r"] * 2, dklen=32)  # fmt: skip
    box = nacl.secret.SecretBox(secret)
    der = box.decrypt(base64.b64decode(doc["ciphertext"]), base64.b64decode(doc["cipher"]["nonce"]))
    (tmp_path / "key.der").write_bytes(der)
    r = subprocess.run(["openssl", "pkey", "-inform", "DER", "-in", str(tmp_path / "key.der"),
                        "-pubout"], capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout == open(pub).read()
    r = subprocess.run(["openssl", "pkey", "-inform", "DER", "-in", str(tmp_path / "key.der"),
                        "-noout", "-text"], capture_output=True, text=True)  # fmt: skip
    assert "NIST CURVE: P-256" in r.stdout or "prime256v1" in r.stdout, r.stdout
