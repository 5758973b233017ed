"""Content trust's parts that need no registry: policy scopes and parsing, signedIdentity
rules, the simple-signing payload's strictness, the key file's encryption."""

import base64
import json

import pytest

from sangja.image import reference
from sangja.image.trust import TrustError, check_local, policy, sigstore
from sangja.image.trust import keys as k

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def ref(s):
    return reference.parse(s, default_registry="docker.io")


def test_scopes_most_specific_first():
    assert policy.scopes(ref("reg.example.com:5000/a/b/c:v1")) == [
        "reg.example.com:5000/a/b/c:v1", "reg.example.com:5000/a/b/c", "reg.example.com:5000/a/b",
        "reg.example.com:5000/a", "reg.example.com:5000", "*.example.com", "*.com", ""]  # fmt: skip
    assert policy.scopes(ref(f"busybox@{D1}"))[:3] == [
        f"docker.io/library/busybox@{D1}",
        "docker.io/library/busybox",
        "docker.io/library",
    ]


def test_policy_requirements_by_scope(tmp_path):
    anything, reject = [{"type": "insecureAcceptAnything"}], [{"type": "reject"}]
    signed = [{"type": "sigstoreSigned", "keyPath": "k.pub"}]
    doc = {"default": reject,
           "transports": {"docker": {"reg.example.com/team": anything, "*.example.com": signed,
                                     "reg.example.com/team/app:v1": reject},
                          "oci": {"": anything}}}  # fmt: skip
    p = policy.parse(doc, str(tmp_path / "p.json"))
    assert p.requirements(ref("reg.example.com/team/app:v2"))[0] == "reg.example.com/team"
    assert p.requirements(ref("reg.example.com/team/app:v1"))[1][0].kind == "reject"
    scope, (req,) = p.requirements(ref("other.example.com/x"))
    assert scope == "*.example.com" and req.keys == (("path", str(tmp_path / "k.pub")),)
    assert p.requirements(ref("quay.io/x"))[0] == "default"


@pytest.mark.parametrize("doc, msg", [
    ([], "not a JSON object"),
    ({}, 'no "default"'),
    ({"default": [{"type": "reject"}], "extra": 1}, "unknown field 'extra'"),
    ({"default": [{"type": "sigstoreSigned"}]}, "exactly one of"),
    ({"default": [{"type": "sigstoreSigned", "keyPaths": []}]}, "non-empty list"),
    ({"default": [{"type": "sigstoreSigned", "keyData": "!!"}]}, "not base64"),
    ({"default": [{"type": "sigstoreSigned", "keyPath": "k",
                   "signedIdentity": {"type": "matchAnything"}}]}, "unknown signedIdentity"),
    ({"default": [{"type": "sigstoreSigned", "keyPath": "k",
                   "signedIdentity": {"type": "exactReference", "dockerReference": "a/b"}}]},
     "want a name:tag or name@digest"),
    ({"default": [{"type": "reject"}], "transports": {"docker": {"*.a/b": [{"type": "reject"}]}}},
     "invalid wildcard scope"),
])  # fmt: skip
def test_policy_parse_errors(doc, msg):
    with pytest.raises(policy.PolicyError, match=msg):
        policy.parse(doc, "/p.json")


def test_what_sangja_does_not_verify_is_kept_as_a_refusal():
    sig = "sigstoreSigned"
    for req in ({"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k"},
                {"type": "signedBaseLayer", "baseLayerIdentity": {"type": "matchExact"}},
                {"type": sig, "fulcio": {"caPath": "/c"}},
                {"type": sig, "keyPath": "/k", "rekorPublicKeyPath": "/r"}):  # fmt: skip
        (r,) = policy.parse({"default": [req]}, "/p.json").default
        assert r.kind == "unsupported" and r.why


def named(s):
    return policy.Named.of(reference.parse(s, default_registry="docker.io"))


@pytest.mark.parametrize("kind, image, signed, ok", [
    ("matchRepoDigestOrExact", "r.io/a:v1", "r.io/a:v1", True),
    ("matchRepoDigestOrExact", "r.io/a:v1", "r.io/a:v2", False),
    ("matchRepoDigestOrExact", "r.io/a:v1", "r.io/a", False),
    ("matchRepoDigestOrExact", f"r.io/a@{D1}", "r.io/a:v2", True),
    ("matchRepoDigestOrExact", f"r.io/a@{D1}", "r.io/b:v2", False),
    ("matchExact", f"r.io/a@{D1}", "r.io/a:v1", False),
    ("matchExact", f"r.io/a@{D1}", f"r.io/a@{D1}", True),
    ("matchRepository", "r.io/a:v1", "r.io/a:v7", True),
    ("matchRepository", "r.io/a:v1", "r.io/a", True),
    ("matchRepository", "busybox", "docker.io/library/busybox:1", True),
    ("matchRepository", "r.io/a:v1", "r.io/ab:v1", False),
])  # fmt: skip
def test_signed_identity(kind, image, signed, ok):
    why = policy.mismatch(policy.Identity(kind), named(image), signed)
    assert (why is None) == ok, why


def test_signed_identity_fixed_and_remapped():
    exact = policy.Identity("exactReference", value="r.io/base:1")
    assert policy.mismatch(exact, named("r.io/any:9"), "r.io/base:1") is None
    assert "for r.io/base:2, not r.io/base:1" in policy.mismatch(exact, named("r.io/x:1"),
                                                                 "r.io/base:2")  # fmt: skip
    repo = policy.Identity("exactRepository", value="r.io/base")
    assert policy.mismatch(repo, named("m.io/x:1"), "r.io/base:7") is None
    remap = policy.Identity("remapIdentity", prefix="mirror.io/lib", signed_prefix="r.io/lib")
    assert policy.mismatch(remap, named("mirror.io/lib/app:1"), "r.io/lib/app:1") is None
    assert policy.mismatch(remap, named("mirror.io/library/app:1"), "r.io/lib/app:1")
    assert "tag moved" in policy.mismatch(policy.Identity(), named("r.io/a:v1"), "r.io/a:v2")
    assert "without a tag" in policy.mismatch(policy.Identity(), named("r.io/a:v1"), "r.io/a")


def test_payload_is_checked_strictly():
    good = json.loads(sigstore.make_payload("r.io/a:v1", D1))
    assert sigstore.parse_payload(json.dumps(good).encode()).reference == "r.io/a:v1"
    cases = [
        ({**good, "extra": 1}, "unexpected field 'extra'"),
        ({"critical": good["critical"]}, "missing field 'optional'"),
        ({**good, "critical": {**good["critical"], "type": "x"}}, "unknown signature type"),
        ({**good, "critical": {**good["critical"], "image": {}}}, "missing field"),
        ({**good, "optional": {"timestamp": 1.5}}, "not an integer"),
    ]
    for doc, msg in cases:
        with pytest.raises(sigstore.InvalidPayload, match=msg):
            sigstore.parse_payload(json.dumps(doc).encode())
    p = sigstore.parse_payload(json.dumps({**good, "optional": None}).encode())  # cosign's
    assert p.digest == D1 and p.creator is None
    assert sigstore.tag_for(D2) == "sha256-" + "2" * 64 + ".sig"


def test_key_encryption(tmp_path):
    priv, pub = k.generate("t", b"pw", str(tmp_path))
    text = open(priv).read()
    body = base64.b64decode("".join(text.splitlines()[1:-1]))
    # cosign 2's PEM type is read as well
    (tmp_path / "s.key").write_text(text.replace("ENCRYPTED COSIGN", "ENCRYPTED SIGSTORE"))
    assert k.load_private(str(tmp_path / "s.key"), b"pw").public().spki == k.load_public(pub).spki
    # scrypt parameters from the file are bounded: no unbounded memory for a hostile file
    doc = json.loads(body)
    doc["kdf"]["params"]["N"] = 1 << 30
    with pytest.raises(TrustError, match="unexpected scrypt parameters"):
        k.decrypt(json.dumps(doc).encode(), b"pw", "key")
    doc = json.loads(body)
    doc["cipher"]["name"] = "aes"
    with pytest.raises(TrustError, match="unsupported encryption"):
        k.decrypt(json.dumps(doc).encode(), b"pw", "key")
    with pytest.raises(TrustError, match="no PEM block"):
        k.load_private(pub, b"pw")
    with pytest.raises(TrustError, match="invalid key name"):
        k.generate("a/b", b"pw", str(tmp_path))


def test_check_local_with_trust_off_reads_nothing(tmp_path, monkeypatch):
    """What run, create and build's FROM call: with trust off it answers at once -- it is
    given no store here, and never looks at one."""
    monkeypatch.setenv("SANGJA_CONFIG", str(tmp_path / "daemon.json"))  # no policy beside it
    monkeypatch.delenv("SANGJA_CONTENT_TRUST", raising=False)
    from sangja.image import config

    config._file.cache_clear()
    try:
        assert check_local(None, "r.io/a:v1", "sha256:" + "a" * 64) is True
    finally:
        config._file.cache_clear()
