"""Helpers for the content-trust tests: key pairs made by the CLI, policies, a second small
image, raw access to a plain push registry (to tamper with what it holds, as an attacker
with write access to it would), and skopeo/podman set up to read sigstore signatures."""

import base64
import hashlib
import http.client
import json
import os
import subprocess
import tarfile

import registrykit

PASSPHRASE = "correct horse battery"
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIG_ANNOTATION = "dev.cosignproject.cosign/signature"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ACCEPT = ", ".join([OCI_MANIFEST, "application/vnd.oci.image.index.v1+json",
                    "application/vnd.docker.distribution.manifest.v2+json"])  # fmt: skip


def keypair(sj, directory, name):
    """`sangja trust key generate NAME` in `directory` -> (private, public) paths."""
    os.makedirs(directory, exist_ok=True)
    sj.ok("trust", "key", "generate", name, cwd=str(directory),
          env={"SANGJA_TRUST_PASSPHRASE": PASSPHRASE})  # fmt: skip
    return os.path.join(directory, name + ".key"), os.path.join(directory, name + ".pub")


def signed_by(*pubs, identity=None):
    req = {"type": "sigstoreSigned"}
    if len(pubs) == 1:
        req["keyPath"] = str(pubs[0])
    else:
        req["keyPaths"] = [str(p) for p in pubs]
    if identity:
        req["signedIdentity"] = {"type": identity}
    return req


def write_policy(path, docker=None, default=None):
    """A containers-policy.json: `docker` maps scopes to a requirement (or a list)."""
    doc = {"default": [default or {"type": "insecureAcceptAnything"}]}
    if docker is not None:
        doc["transports"] = {"docker": {s: (r if isinstance(r, list) else [r])
                                        for s, r in docker.items()}}  # fmt: skip
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)
    return str(path)


def marker_image(sj, tmp, name, text="image B"):
    """A one-layer image of busybox-static and a /marker file, by `image import`."""
    tar = os.path.join(str(tmp), f"rootfs-{hashlib.sha256(text.encode()).hexdigest()[:8]}.tar")
    with tarfile.open(tar, "w") as t:
        t.add("/bin/busybox", "bin/busybox")
        link = tarfile.TarInfo("bin/sh")
        link.type, link.linkname = tarfile.SYMTYPE, "busybox"
        t.addfile(link)
        data = (text + "\n").encode()
        info = tarfile.TarInfo("marker")
        info.size = len(data)
        import io

        t.addfile(info, io.BytesIO(data))
    sj.ok("image", "import", "-c", 'CMD ["/bin/sh"]', tar, name)
    return name


class Raw:
    """The distribution API of a plain-HTTP registry, unauthenticated (a push registry of
    pushkit): to read and rewrite manifests and blobs behind sangja's back."""

    def __init__(self, addr):
        self.host, self.port = addr.split(":")

    def _req(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection(self.host, int(self.port), timeout=registrykit.TIMEOUT)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def manifest(self, repo, ref):
        st, h, body = self._req("GET", f"/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT})
        assert st == 200, (st, body)
        return body, h.get("Content-Type")

    def has_manifest(self, repo, ref):
        return (
            self._req("HEAD", f"/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT})[0] == 200
        )

    def put_manifest(self, repo, ref, body, ctype):
        st, _, out = self._req("PUT", f"/v2/{repo}/manifests/{ref}", body,
                               {"Content-Type": ctype})  # fmt: skip
        assert st == 201, (st, out)
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def blob(self, repo, digest):
        st, _, body = self._req("GET", f"/v2/{repo}/blobs/{digest}")
        assert st == 200, (st, body)
        return body

    def put_blob(self, repo, data):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        st, h, out = self._req("POST", f"/v2/{repo}/blobs/uploads/")
        assert st == 202, (st, out)
        loc = h["Location"]
        loc = loc.split(f"{self.host}:{self.port}", 1)[-1]
        sep = "&" if "?" in loc else "?"
        st, _, out = self._req("PUT", f"{loc}{sep}digest={digest}", data,
                               {"Content-Type": "application/octet-stream"})  # fmt: skip
        assert st == 201, (st, out)
        return digest

    def copy(self, src_repo, src_ref, dst_repo, dst_ref):
        """A manifest and its blobs from one repository (and tag) to another."""
        body, ctype = self.manifest(src_repo, src_ref)
        doc = json.loads(body)
        for d in [doc["config"]] + doc.get("layers", []):
            self.put_blob(dst_repo, self.blob(src_repo, d["digest"]))
        return self.put_manifest(dst_repo, dst_ref, body, ctype)

    def sig_manifest(self, repo, digest):
        body, _ = self.manifest(repo, sig_tag(digest))
        return json.loads(body)

    def put_sig_manifest(self, repo, digest, doc):
        return self.put_manifest(repo, sig_tag(digest), json.dumps(doc).encode(), OCI_MANIFEST)


def sig_tag(digest):
    return digest.replace(":", "-", 1) + ".sig"


def flip_signature(b64):
    raw = bytearray(base64.b64decode(b64))
    raw[-3] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def registries_d(tmp):
    """registries.d for c/image: read and write sigstore attachments for every registry."""
    d = os.path.join(str(tmp), "registries.d")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "sigstore.yaml"), "w") as f:
        f.write("default-docker:\n  use-sigstore-attachments: true\n")
    return d


def skopeo(policy, regd, *args, check=False):
    return subprocess.run(["skopeo", "--policy", policy, "--registries.d", regd, *args],
                          capture_output=True, text=True, timeout=registrykit.TIMEOUT,
                          check=check)  # fmt: skip
