"""`sangja image push` to real registries (Debian's docker-registry, configured as the
fixtures' are: plain HTTP, TLS, basic auth, bearer tokens) with storages of the tests' own
(pushkit.py); and podman/skopeo pulling what sangja pushed, sangja pulling what podman
pushed."""

import hashlib
import json
import os
import socket
import subprocess
import threading

import pytest
from pushkit import podman_run
from registrykit import PASSWORD, PLAIN, PODMAN, USER, Podman

BUSYBOX = f"{PLAIN}/test/busybox:latest"
DEBIAN = f"{PLAIN}/test/debian:bookworm"


def rid(diff_id):
    return diff_id.split(":", 1)[1][:12]


def skopeo_digest(ref, *extra):
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", *extra,
                          f"docker://{ref}"], capture_output=True, check=True).stdout  # fmt: skip
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def test_push_plain(sj, fixtures, push_registry):
    fixtures.registry("plain")
    reg = push_registry("plain")
    sj.ok("image", "pull", "-q", BUSYBOX)
    dst = f"{reg.addr}/mine/busybox:v1"
    sj.ok("image", "tag", BUSYBOX, dst)
    before = sj.store_state()
    r = sj.ok("image", "push", dst)
    lines = r.out.splitlines()
    digest = fixtures.digest("test/busybox:latest")
    size = os.path.getsize(fixtures.blob(digest))
    layer = rid(fixtures.config("busybox")["rootfs"]["diff_ids"][0])
    assert lines[0] == f"The push refers to repository [{reg.addr}/mine/busybox]"
    assert lines[1:] == [f"{layer}: Preparing", f"{layer}: Pushing", f"{layer}: Pushed",
                         f"v1: digest: {digest} size: {size}"]  # fmt: skip
    # the registry serves the very manifest the store holds
    assert skopeo_digest(dst) == digest
    # again: the blobs are there already (a HEAD each), the manifest is put again
    r = sj.ok("image", "push", dst)
    assert f"{layer}: Layer already exists" in r.out and r.out.endswith(
        f"v1: digest: {digest} size: {size}\n")  # fmt: skip
    assert "PATCH" not in reg.log()  # a 1 MB blob goes in one request
    # the store knows the digest in the new repository now (image ls --digests)
    assert f"{reg.addr}/mine/busybox@{digest}" in sj.inspect(dst)["RepoDigests"]
    after = sj.store_state()
    assert after["images"] == before["images"] and after["blobs"] == before["blobs"]
    # a fresh store pulls it back: the same image
    sj2_root = os.path.join(sj.tmp, "root2")
    r = sj.ok("image", "pull", dst, env={"SANGJA_ROOT": sj2_root})
    assert f"Digest: {digest}" in r.out


def test_push_quiet_and_bad_names(sj, fixtures, push_registry):
    fixtures.registry("plain")
    reg = push_registry("plain")
    sj.ok("image", "pull", "-q", BUSYBOX)
    sj.ok("image", "tag", BUSYBOX, f"{reg.addr}/q/box")
    r = sj.ok("image", "push", "-q", f"{reg.addr}/q/box")
    assert r.out == f"{reg.addr}/q/box:latest\n"
    before = sj.store_state()
    r = sj.fail("image", "push", f"{reg.addr}/q/nope:v9")
    assert r.err == f"sangja: An image does not exist locally with the tag: {reg.addr}/q/nope\n"
    r = sj.fail("image", "push", f"{reg.addr}/q/box@{fixtures.digest('test/busybox:latest')}")
    assert "cannot push a digest reference" in r.err
    r = sj.fail("image", "push", "-a", f"{reg.addr}/q/box:latest")
    assert "tag can't be used with --all-tags/-a" in r.err
    sj.ok("image", "tag", BUSYBOX, "127.0.0.1:5199/q/box")  # nobody listens there
    r = sj.fail("image", "push", "127.0.0.1:5199/q/box")
    assert "cannot reach registry 127.0.0.1:5199" in r.err and len(r.err.splitlines()) == 1
    sj.ok("image", "rm", "127.0.0.1:5199/q/box")
    assert sj.store_state() == before


def test_push_cross_repository_mounts(sj, fixtures, push_registry):
    fixtures.registry("plain")
    reg = push_registry("plain")
    sj.ok("image", "pull", "-q", BUSYBOX)
    layer = rid(fixtures.config("busybox")["rootfs"]["diff_ids"][0])
    sj.ok("image", "tag", BUSYBOX, f"{reg.addr}/team-a/box:1")
    assert f"{layer}: Pushed" in sj.ok("image", "push", f"{reg.addr}/team-a/box:1").out
    # another repository of the same registry: mounted from the first, not uploaded
    sj.ok("image", "tag", BUSYBOX, f"{reg.addr}/team-b/box:1")
    r = sj.ok("image", "push", f"{reg.addr}/team-b/box:1")
    assert f"{layer}: Mounted from team-a/box" in r.out, r
    assert "mount=sha256" in reg.log()
    # a store that only pulled from there knows it too
    other = {"SANGJA_ROOT": os.path.join(sj.tmp, "root2")}
    sj.ok("image", "pull", "-q", f"{reg.addr}/team-b/box:1", env=other)
    sj.ok("image", "tag", f"{reg.addr}/team-b/box:1", f"{reg.addr}/team-c/box:1", env=other)
    r = sj.ok("image", "push", f"{reg.addr}/team-c/box:1", env=other)
    assert f"{layer}: Mounted from team-b/box" in r.out, r
    assert skopeo_digest(f"{reg.addr}/team-c/box:1") == fixtures.digest("test/busybox:latest")


def test_push_chunked(sj, fixtures, push_registry):
    """Blobs over the chunk size go as PATCHes of that size; the image comes back whole."""
    fixtures.registry("plain")
    reg = push_registry("plain")
    sj.ok("image", "pull", "-q", DEBIAN)
    dst = f"{reg.addr}/chunked/debian:bookworm"
    sj.ok("image", "tag", DEBIAN, dst)
    r = sj.ok("image", "push", dst, env={"SANGJA_PUSH_CHUNK_SIZE": str(4 << 20)})
    digest = fixtures.digest("test/debian:bookworm")
    assert r.out.splitlines()[-1].startswith(f"bookworm: digest: {digest} size: ")
    patches = [ln for ln in reg.log().splitlines() if '"PATCH /v2/chunked/debian/' in ln]
    sizes = [ly["size"] for ly in fixtures.manifest("debian-bookworm")["layers"]]
    assert len(patches) == sum(-(-n // (4 << 20)) for n in sizes if n > 4 << 20)
    r = sj.ok("image", "pull", dst, env={"SANGJA_ROOT": os.path.join(sj.tmp, "root2")})
    assert f"Digest: {digest}" in r.out  # every blob checked on the way in


class DropOnce:
    """A TCP proxy in front of a registry that cuts the first connection carrying more
    than `after` bytes upstream (a real dropped connection, mid-request)."""

    def __init__(self, port, target, after):
        self.target, self.after, self.dropped = target, after, 0
        self.srv = socket.create_server(("127.0.0.1", port))
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            u = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(c, u, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(u, c, False), daemon=True).start()

    def _pipe(self, a, b, upstream):
        n = 0
        try:
            while data := a.recv(1 << 16):
                n += len(data)
                if upstream and not self.dropped and n > self.after:
                    self.dropped += 1
                    for s in (a, b):
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
                        s.close()
                    return
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.srv.close()


def test_push_survives_a_dropped_connection(sj, fixtures, push_registry):
    """A connection cut in the middle of a chunk: sangja asks the registry where the
    upload is (GET on the session); distribution cannot go on with a session that got part
    of a chunk (it answers 404), so the blob starts again in a new session."""
    fixtures.registry("plain")
    reg = push_registry("plain")
    proxy = DropOnce(5101, ("127.0.0.1", reg.port), after=6 << 20)
    try:
        sj.ok("image", "pull", "-q", DEBIAN)
        dst = "127.0.0.1:5101/resumed/debian:bookworm"
        sj.ok("image", "tag", DEBIAN, dst)
        sj.ok("image", "push", dst, env={"SANGJA_PUSH_CHUNK_SIZE": str(4 << 20)})
        assert proxy.dropped == 1
        log = reg.log()
        assert '"GET /v2/resumed/debian/blobs/uploads/' in log
        assert log.count('"POST /v2/resumed/debian/blobs/uploads/') == 5  # 4 blobs, 1 again
        r = sj.ok("image", "pull", f"{reg.addr}/resumed/debian:bookworm",
                  env={"SANGJA_ROOT": os.path.join(sj.tmp, "root2")})  # fmt: skip
        assert f"Digest: {fixtures.digest('test/debian:bookworm')}" in r.out
    finally:
        proxy.close()


def test_push_all_tags(sj, fixtures, push_registry):
    fixtures.registry("plain")
    reg = push_registry("plain")
    sj.ok("image", "pull", "-q", BUSYBOX)
    sj.ok("image", "pull", "-q", DEBIAN)
    repo = f"{reg.addr}/all/img"
    for src, tag in ((BUSYBOX, "a"), (BUSYBOX, "b"), (DEBIAN, "c")):
        sj.ok("image", "tag", src, f"{repo}:{tag}")
    r = sj.ok("image", "push", "--all-tags", repo)
    done = [ln.split(":")[0] for ln in r.out.splitlines() if ": digest: " in ln]
    assert done == ["a", "b", "c"]
    assert r.out.count("The push refers to repository") == 1
    tags = json.loads(subprocess.run(["skopeo", "list-tags", "--tls-verify=false",
                                      f"docker://{repo}"], capture_output=True,
                                     check=True).stdout)["Tags"]  # fmt: skip
    assert sorted(tags) == ["a", "b", "c"]
    assert skopeo_digest(f"{repo}:c") == fixtures.digest("test/debian:bookworm")


def test_push_tls_and_basic_auth(sj, fixtures, push_registry):
    fixtures.registry("plain")
    tls, auth = push_registry("tls"), push_registry("auth")
    sj.trust(fixtures.ca, tls.addr, auth.addr)
    sj.ok("image", "pull", "-q", BUSYBOX)
    sj.ok("image", "tag", BUSYBOX, f"{tls.addr}/t/box:1")
    sj.ok("image", "push", f"{tls.addr}/t/box:1")
    sj.ok("image", "tag", BUSYBOX, f"{auth.addr}/a/box:1")
    before = sj.store_state()
    r = sj.fail("image", "push", f"{auth.addr}/a/box:1")
    assert "unauthorized" in r.err and f"sangja login {auth.addr}" in r.err
    assert sj.store_state() == before
    sj.ok("login", "-u", USER, "--password-stdin", auth.addr, input=PASSWORD)
    r = sj.ok("image", "push", f"{auth.addr}/a/box:1")
    assert f"digest: {fixtures.digest('test/busybox:latest')}" in r.out


def test_push_token_auth(sj, fixtures, push_registry):
    """Bearer tokens with push scopes (anonymous ones may only pull), and a mount, whose
    token also names the source repository."""
    fixtures.registry("plain")
    reg = push_registry("token")
    sj.ok("image", "pull", "-q", BUSYBOX)
    sj.ok("image", "tag", BUSYBOX, f"{reg.addr}/tok/box:1")
    r = sj.fail("image", "push", f"{reg.addr}/tok/box:1")
    assert "unauthorized" in r.err and "sangja login" in r.err, r
    sj.ok("login", "-u", USER, "--password-stdin", reg.addr, input=PASSWORD)
    sj.ok("image", "push", f"{reg.addr}/tok/box:1")
    sj.ok("image", "tag", BUSYBOX, f"{reg.addr}/tok/other:1")
    r = sj.ok("image", "push", f"{reg.addr}/tok/other:1")
    assert "Mounted from tok/box" in r.out


# ---- with podman and skopeo -------------------------------------------------------------


@pytest.mark.skipif(PODMAN is None, reason="podman is not installed")
def test_podman_pulls_and_runs_what_sangja_pushed(sj, fixtures, push_registry, tmp_path):
    fixtures.registry("plain")
    reg = push_registry("plain")
    sj.ok("image", "pull", "-q", DEBIAN)
    dst = f"{reg.addr}/by-sangja/debian:bookworm"
    sj.ok("image", "tag", DEBIAN, dst)
    sj.ok("image", "push", dst)
    # skopeo copies it into an OCI layout, checking every digest
    subprocess.run(["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{dst}",
                    f"oci:{tmp_path / 'layout'}:x"], check=True, capture_output=True)  # fmt: skip
    pm = Podman(tmp_path)
    try:
        pm("pull", "-q", "--tls-verify=false", dst)
        assert pm.inspect(dst)["Digest"] == fixtures.digest("test/debian:bookworm")
        out = podman_run(
            pm, dst, "sh", "-c", "cat /etc/debian_version; cat /fixtures/hardlinks/a-orig.txt"
        )
        assert out.split("\n")[0].startswith("12")
        assert out.split("\n")[1] == "hardlinked content"
    finally:
        pm.close()


@pytest.mark.skipif(PODMAN is None, reason="podman is not installed")
def test_sangja_pulls_and_runs_what_podman_pushed(sj, fixtures, push_registry, tmp_path):
    fixtures.registry("plain")
    reg = push_registry("plain")
    dst = f"{reg.addr}/by-podman/debian:bookworm"
    pm = Podman(tmp_path)
    try:
        pm("pull", "-q", "--tls-verify=false", DEBIAN)
        pm("push", "-q", "--tls-verify=false", DEBIAN, dst)  # recompressed by podman
    finally:
        pm.close()
    r = sj.ok("image", "pull", dst)
    assert "Digest: sha256:" in r.out
    info = sj.inspect(dst)
    assert info["RootFS"]["Layers"] == fixtures.config("debian-bookworm")["rootfs"]["diff_ids"]
    r = sj.ok("container", "run", "--rm", dst, "sh", "-c",
              "cat /etc/debian_version; cat /fixtures/hardlinks/a-orig.txt")  # fmt: skip
    assert r.out.split("\n")[0].startswith("12") and r.out.split("\n")[1] == "hardlinked content"


@pytest.mark.skipif(PODMAN is None, reason="podman is not installed")
def test_a_committed_image_through_a_registry(sj, fixtures, push_registry, tmp_path):
    """A layer of the C writer, pushed: podman pulls it (c/storage unpacks our tar) and runs
    it, with the whiteout and the opaque directory in effect."""
    import stat

    from sangja.image.commit import Step, commit
    from sangja.image.store import Store

    fixtures.registry("plain")
    reg = push_registry("plain")
    sj.ok("image", "pull", "-q", BUSYBOX)
    u = tmp_path / "upper"
    (u / "etc").mkdir(parents=True)
    (u / "bin").mkdir()
    (u / "etc" / "new").write_text("new\n")
    os.setxattr(u / "etc", "trusted.overlay.opaque", b"y")
    os.mknod(u / "bin" / "ls", stat.S_IFCHR, os.makedev(0, 0))
    dst = f"{reg.addr}/committed/box:1"
    store = Store(sj.root)
    try:
        res = commit(store, [Step("changes", root=str(u))], base=BUSYBOX, refs=[dst])
    finally:
        store.close()
    r = sj.ok("image", "push", dst)
    assert f"{rid(res.layers[0].diff_id)}: Pushed" in r.out
    assert r.out.splitlines()[-1].startswith(f"1: digest: {res.manifest_digest} ")
    pm = Podman(tmp_path)
    try:
        pm("pull", "-q", "--tls-verify=false", dst)
        script = "ls /etc; cat /etc/new; test -e /bin/ls && echo ls || echo no-ls"
        out = podman_run(pm, dst, "sh", "-c", script)
        *listing, content, ls = out.split()
        assert ls == "no-ls", out
        # /etc: the opaque directory's one file, and what podman puts there itself
        assert "new" in listing and set(listing) <= {"new", "hostname", "hosts", "mtab",
                                                     "resolv.conf"}, out  # fmt: skip
        assert content == "new"
    finally:
        pm.close()
