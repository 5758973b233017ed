"""`sangja image search` against real registries: a private one with repositories the test
pushes (so it knows the whole catalog), the fixtures' basic-auth and token ones."""

import json

from registrykit import AUTH, PASSWORD, PLAIN, TOKEN, USER

BUSYBOX = f"{PLAIN}/test/busybox:latest"


def filled(sj, fixtures, push_registry):
    fixtures.registry("plain")
    reg = push_registry("plain")
    sj.ok("image", "pull", "-q", BUSYBOX)
    tags = ["1.36", "latest"] + [f"very-long-tag-name-{i}" for i in range(3)]
    for repo, tag in [("lib/busybox", t) for t in tags] + [("tools/box-x", "v1"),
                                                           ("other/thing", "1")]:  # fmt: skip
        sj.ok("image", "tag", BUSYBOX, f"{reg.addr}/{repo}:{tag}")
    for repo in ("lib/busybox", "tools/box-x", "other/thing"):
        sj.ok("image", "push", "-q", "-a", f"{reg.addr}/{repo}")
    return reg


def table(out):
    lines = out.splitlines()
    return lines[0].split(), [line.split("   ") for line in lines[1:]]


def test_search(sj, fixtures, push_registry):
    reg = filled(sj, fixtures, push_registry)
    r = sj.ok("image", "search", f"{reg.addr}/BOX")  # any case
    head, rows = table(r.out)
    assert head == ["NAME", "DESCRIPTION", "STARS", "OFFICIAL", "AUTOMATED"]
    names = [row[0].strip() for row in rows]
    assert names == [f"{reg.addr}/lib/busybox", f"{reg.addr}/tools/box-x"]
    desc = [c.strip() for c in rows[0] if c.strip()][1]
    assert desc.startswith("tags: 1.36, latest, very-long") and desc.endswith("…")
    assert len(desc) == 45
    assert [c.strip() for c in rows[1] if c.strip()] == [f"{reg.addr}/tools/box-x", "tags: v1",
                                                         "0"]  # fmt: skip
    full = sj.ok("image", "search", "--no-trunc", f"{reg.addr}/busybox").out
    assert "very-long-tag-name-2" in full
    # an empty term: the whole catalog; --limit
    assert len(table(sj.ok("image", "search", f"{reg.addr}/").out)[1]) == 3
    assert len(table(sj.ok("image", "search", "--limit", "1", f"{reg.addr}/").out)[1]) == 1
    # --format: fields, table, json
    r = sj.ok("image", "search", "--format", "{{.Name}}: {{.Tags}}", f"{reg.addr}/box-x")
    assert r.out == f"{reg.addr}/tools/box-x: v1\n"
    r = sj.ok(
        "image", "search", "--format", "table {{.Name}}\\t{{.StarCount}}", f"{reg.addr}/thing"
    )
    assert r.out == f"NAME{' ' * (len(reg.addr) + 11)}STARS\n{reg.addr}/other/thing   0\n"
    r = sj.ok("image", "search", "--format", "json", f"{reg.addr}/thing")
    assert json.loads(r.out) == {"Description": "tags: 1", "IsAutomated": "false",
                                 "IsOfficial": "false", "Name": f"{reg.addr}/other/thing",
                                 "StarCount": "0"}  # fmt: skip
    # filters: a registry has no stars, nothing official or automated
    assert table(sj.ok("image", "search", "-f", "stars=1", f"{reg.addr}/").out)[1] == []
    assert table(sj.ok("image", "search", "-f", "is-official=true", f"{reg.addr}/").out)[1] == []
    assert len(table(sj.ok("image", "search", "--filter", "is-automated=false",
                           f"{reg.addr}/").out)[1]) == 3  # fmt: skip
    # the default registry, when it is not Docker Hub
    r = sj.ok("image", "search", "--format", "{{.Name}}", "thing",
              env={"SANGJA_DEFAULT_REGISTRY": reg.addr})  # fmt: skip
    assert r.out == f"{reg.addr}/other/thing\n"


def test_search_bad_input(sj, fixtures, push_registry):
    reg = push_registry("plain")
    for args, what in ((["--limit", "0"], "outside the range of [1, 100]"),
                       (["--limit", "x"], "invalid --limit"),
                       (["-f", "color=red"], "invalid filter"),
                       (["-f", "stars=many"], "want a number"),
                       (["--format", "{{.Nope}}"], "can't evaluate field Nope"),
                       (["--format", "{{range .}}"], "unexpected EOF")):  # fmt: skip
        r = sj.fail("image", "search", *args, f"{reg.addr}/x")
        assert what in r.err and len(r.err.splitlines()) == 1, r
    r = sj.fail("image", "search", "debian")  # the default registry: Docker Hub
    assert "Docker Hub" in r.err and "HOST[:PORT]/TERM" in r.err
    r = sj.fail("image", "search", "127.0.0.1:5199/x")
    assert "cannot reach registry 127.0.0.1:5199" in r.err


def test_search_with_auth(sj, fixtures):
    fixtures.registry("auth")
    r = sj.fail("image", "search", f"{AUTH}/busybox")
    assert "unauthorized" in r.err and f"sangja login {AUTH}" in r.err
    sj.ok("login", "-u", USER, "--password-stdin", AUTH, input=PASSWORD)
    r = sj.ok("image", "search", "--format", "{{.Name}} {{.Tags}}", f"{AUTH}/test/busybox")
    assert f"{AUTH}/test/busybox latest" in r.out.splitlines()
    # the token server of the fixtures grants repository scopes only: no catalog
    fixtures.registry("token")
    sj.ok("login", "-u", USER, "--password-stdin", TOKEN, input=PASSWORD)
    r = sj.fail("image", "search", f"{TOKEN}/busybox")
    assert "unauthorized" in r.err and "catalog" in r.err and len(r.err.splitlines()) == 1
