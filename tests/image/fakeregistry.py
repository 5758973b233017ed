"""A tiny registry for the bad-input tests: the pull half of the distribution API over
http.server on a free loopback port, serving images the test makes, with faults it picks.

Faults, per blob digest (a dict of options):
    truncate=N    send the real Content-Length but only N bytes, then close (every time)
    drop_once=N   the first response stops after N bytes (connection closed); then normal
    stall=N       send N bytes, then hang until `release` is set
    no_range      ignore Range headers (always 200 with the whole body)
Status overrides per path prefix: `status[path] = 403`.
Every request is recorded: (method, path, headers).
"""

import gzip
import hashlib
import io
import json
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def sha(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


def tar_of(files: dict) -> bytes:
    """{name: bytes} -> an uncompressed tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o755
            ti.mtime = 1700000000
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


class FakeRegistry:
    def __init__(self):
        self.manifests = {}  # (repo, ref) -> bytes
        self.blobs = {}  # digest -> bytes
        self.faults = {}  # digest -> {fault: value}
        self.status = {}  # path prefix -> status code
        self.requests = []
        self.release = threading.Event()
        self.served = {}  # digest -> times the body was started
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                outer.requests.append(("GET", self.path, dict(self.headers)))
                outer._get(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    # ---- content ------------------------------------------------------------------------
    def add_blob(self, data: bytes) -> str:
        d = sha(data)
        self.blobs[d] = data
        return d

    def add_image(self, repo, tag, layers, *, diff_ids=None, layer_type="tar+gzip",
                  sizes=None, config_extra=None) -> dict:  # fmt: skip
        """layers: blobs as they are served.  Returns {'manifest', 'config', 'layers'}."""
        ldigests = [self.add_blob(b) for b in layers]
        if diff_ids is None:
            diff_ids = [sha(gzip.decompress(b)) if b[:2] == b"\x1f\x8b" else sha(b) for b in layers]
        config = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                  "rootfs": {"type": "layers", "diff_ids": diff_ids},
                  **(config_extra or {})}  # fmt: skip
        cbytes = json.dumps(config).encode()
        cdigest = self.add_blob(cbytes)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": cdigest, "size": len(cbytes)},
            "layers": [{"mediaType": f"application/vnd.oci.image.layer.v1.{layer_type}",
                        "digest": d, "size": (sizes or {}).get(i, len(b))}
                       for i, (d, b) in enumerate(zip(ldigests, layers, strict=True))],
        }  # fmt: skip
        mbytes = json.dumps(manifest).encode()
        self.manifests[(repo, tag)] = mbytes
        self.manifests[(repo, sha(mbytes))] = mbytes
        return {"manifest": sha(mbytes), "config": cdigest, "layers": ldigests}

    def ranges(self, digest):
        return [h.get("Range") for m, p, h in self.requests if p.endswith(digest)]

    # ---- serving ------------------------------------------------------------------------
    def _get(self, h):
        path = h.path.split("?")[0]
        for prefix, code in self.status.items():
            if path.startswith(prefix):
                return self._send(h, code, b'{"errors":[{"code":"DENIED","message":"nope"}]}')
        if path == "/v2/":
            return self._send(h, 200, b"{}")
        parts = path[len("/v2/") :].rsplit("/", 2)
        if len(parts) != 3:
            return self._send(h, 404, b"{}")
        repo, kind, ref = parts
        if kind == "manifests":
            body = self.manifests.get((repo, ref))
            if body is None:
                return self._send(h, 404, b'{"errors":[{"code":"MANIFEST_UNKNOWN",'
                                  b'"message":"manifest unknown"}]}')  # fmt: skip
            return self._send(h, 200, body, {"Content-Type": OCI_MANIFEST,
                                             "Docker-Content-Digest": sha(body)})  # fmt: skip
        if kind == "blobs":
            body = self.blobs.get(ref)
            if body is None:
                return self._send(h, 404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}')
            return self._blob(h, ref, body)
        return self._send(h, 404, b"{}")

    def _send(self, h, code, body, headers=None):
        h.send_response(code)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _blob(self, h, digest, body):
        f = self.faults.get(digest, {})
        n = self.served[digest] = self.served.get(digest, 0) + 1
        start = 0
        rng = h.headers.get("Range")
        if rng and "no_range" not in f:
            start = int(rng.split("=")[1].split("-")[0])
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            h.send_response(200)
        h.send_header("Content-Length", str(len(body) - start))
        h.end_headers()
        part = body[start:]
        cut = None
        if "truncate" in f:
            cut = f["truncate"]
        elif "drop_once" in f and n == 1:
            cut = f["drop_once"]
        elif "stall" in f and not self.release.is_set():
            h.wfile.write(part[: f["stall"]])
            h.wfile.flush()
            self.release.wait(60)
            h.close_connection = True
            return
        if cut is not None:
            h.wfile.write(part[:cut])
            h.wfile.flush()
            h.close_connection = True
            return
        h.wfile.write(part)
