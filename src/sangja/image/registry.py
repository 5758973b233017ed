"""A client for the OCI distribution API: http.client over ssl.  The requests of pull
(manifests, blobs with resume), push (existence checks, cross-repository mounts, monolithic
and chunked uploads, manifests) and search (the catalog, tag lists); the workflows that use
them are pull.py, push.py and search.py.

- Transport: HTTPS, verified against the system's CAs plus the registry's certs.d
  directory (`<certs.d>/<host:port>/*.crt` are CAs, `*.cert` + `*.key` a client cert, as
  Docker reads them).  Plain HTTP only for a loopback registry or one named insecure
  (for those, HTTPS is tried first, as Docker does).  Insecure registries also skip TLS
  verification.
- Auth: the `WWW-Authenticate` challenge of `GET /v2/` (or of any later request) picks
  Basic (credentials sent as they are) or Bearer (a token fetched from the realm for the
  request's scopes -- `repository:NAME:pull`, `...:pull,push` to push, the source
  repository's too for a cross-repository mount -- with the credentials if there are any,
  anonymously if not).
- Blobs: streamed to a partial file; a dropped connection or a short body is resumed with
  `Range: bytes=N-` (a partial file left by an interrupted pull is resumed the same way);
  the blob is checked, size first, then sha256, before the caller commits it.
One `Client` per registry; it may be used from several threads (a connection per thread).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.client
import io
import os
import re
import socket
import ssl
import threading
import time
import urllib.parse

from sangja.errors import SangjaError
from sangja.image import config as cfg
from sangja.image import manifest as mf

USER_AGENT = "sangja/0.1"
TIMEOUT = 30.0
CHUNK = 1 << 20
MAX_ATTEMPTS = 6  # per blob: attempts in a row that bring no new bytes
MAX_REDIRECTS = 5


class RegistryError(SangjaError):
    """The registry said no (unknown name or tag, auth, ...), or could not be reached."""


class BlobError(RegistryError):
    """A blob's bytes are wrong (size or digest) or could not all be fetched."""

    def __init__(self, msg, *, resumable=False):
        super().__init__(msg)
        self.resumable = resumable  # keep the partial file: a later pull may go on from it


class Unreachable(RegistryError):
    pass


def _short(d: str) -> str:
    return d.split(":", 1)[-1][:12]


def parse_challenge(header: str) -> tuple[str, dict]:
    """'Bearer realm="x",service="y"' -> ('bearer', {'realm': 'x', 'service': 'y'})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {}
    for m in re.finditer(r'([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))', rest):
        params[m.group(1).lower()] = (
            m.group(2).replace('\\"', '"') if m.group(2) is not None else m.group(3)
        )
    return scheme.lower(), params


def _error_text(body: bytes) -> str:
    """The registry's {"errors": [{"code", "message"}]} as one line."""
    try:
        from sangja.jsonio import loads

        errs = loads(body).get("errors") or []
        parts = []
        for e in errs:
            code = str(e.get("code", "")).lower().replace("_", " ")
            msg = str(e.get("message", ""))
            parts.append(f"{code}: {msg}" if code and msg and code != msg.lower() else msg or code)
        return "; ".join(p for p in parts if p)
    except Exception:
        return ""


class Client:
    def __init__(self, domain: str, *, credentials=None, timeout: float = TIMEOUT):
        self.domain = domain
        self.api = "registry-1.docker.io" if domain == "docker.io" else domain
        self.timeout = timeout
        self._creds = credentials  # (user, password) or None
        self._scheme: str | None = None
        self._verify = not cfg.is_insecure(domain)
        self._challenge: tuple[str, dict] | None = None
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        self._all: list = []  # every connection of every thread (for abort())
        self._all_lock = threading.Lock()
        self._ctx: ssl.SSLContext | None = None

    # ---- transport --------------------------------------------------------------------
    def _ssl_context(self) -> ssl.SSLContext:
        if self._ctx is None:
            ctx = ssl.create_default_context()
            if not self._verify:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            for d in cfg.certs_dirs():
                hd = os.path.join(d, self.api.replace("[", "").replace("]", ""))
                try:
                    names = sorted(os.listdir(hd))
                except OSError:
                    continue
                for n in names:
                    p = os.path.join(hd, n)
                    try:
                        if n.endswith(".crt"):
                            ctx.load_verify_locations(cafile=p)
                        elif n.endswith(".cert"):
                            key = p[: -len(".cert")] + ".key"
                            ctx.load_cert_chain(p, key if os.path.exists(key) else None)
                    except (OSError, ssl.SSLError) as e:
                        raise RegistryError(f"certs.d: cannot load {p}: {e}")
            self._ctx = ctx
        return self._ctx

    def _conn(self, scheme: str, host: str, fresh=False):
        conns = self._local.__dict__.setdefault("conns", {})
        key = (scheme, host)
        c = conns.get(key)
        if c is not None and fresh:
            c.close()
            c = None
        if c is None:
            if scheme == "https":
                ctx = self._ssl_context() if host == self.api else ssl.create_default_context()
                c = http.client.HTTPSConnection(host, timeout=self.timeout, context=ctx,
                                                blocksize=CHUNK)  # fmt: skip
            else:
                c = http.client.HTTPConnection(host, timeout=self.timeout, blocksize=CHUNK)
            conns[key] = c
            with self._all_lock:
                self._all.append(c)
        return c

    def abort(self):
        """From another thread: make every blocked read of this client return now."""
        with self._all_lock:
            conns = list(self._all)
        for c in conns:
            sock = c.sock
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        for c in self._local.__dict__.get("conns", {}).values():
            c.close()
        self._local.__dict__["conns"] = {}

    def _send(self, method, url, headers, fresh=False, body=None):
        """One request (no auth logic, no redirects) -> response, body not read.

        body: None, bytes, or a callable giving a file object (blob data: sent once, never
        again behind the caller's back -- part of it may have reached the registry, and
        only the caller knows how to go on)."""
        u = urllib.parse.urlsplit(url)
        path = u.path + ("?" + u.query if u.query else "")
        hdrs = {"User-Agent": USER_AGENT, **headers}
        for attempt in (0,) if callable(body) else (0, 1):
            c = self._conn(u.scheme, u.netloc, fresh=fresh or attempt > 0)
            try:
                c.request(method, path, body=body() if callable(body) else body, headers=hdrs)
                return c.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                if attempt or callable(body):  # a kept-alive connection the server had
                    c.close()  # closed: once more (never with blob data)
                    raise
            except BaseException:
                c.close()
                raise
        raise AssertionError("unreachable")

    def _base(self) -> str:
        if self._scheme is None:
            self.ping()
        return f"{self._scheme}://{self.api}"

    def ping(self):
        """GET /v2/: find the scheme (HTTPS, or HTTP where allowed) and the auth challenge."""
        with self._lock:
            if self._scheme is not None:
                return
            schemes = ["https", "http"] if cfg.plain_http_allowed(self.domain) else ["https"]
            first_error = None
            for scheme in schemes:
                try:
                    r = self._send("GET", f"{scheme}://{self.api}/v2/", {}, fresh=True)
                    r.read()
                except ssl.SSLCertVerificationError as e:
                    raise RegistryError(
                        f"tls: cannot verify the certificate of {self.api}: {e.verify_message}"
                        f" (put the registry's CA in <certs.d>/{self.api}/ca.crt,"
                        f" certs.d: {':'.join(cfg.certs_dirs())})"
                    )
                except (OSError, http.client.HTTPException) as e:
                    first_error = first_error or e
                    continue
                if r.status not in (200, 401):
                    # not a registry at all (or a TLS port spoken to in plain HTTP)
                    first_error = first_error or RegistryError(
                        f"GET {scheme}://{self.api}/v2/: {r.status} {r.reason}"
                    )
                    continue
                self._scheme = scheme
                if r.status == 401:
                    self._challenge = parse_challenge(r.getheader("WWW-Authenticate", ""))
                return
            raise Unreachable(f"cannot reach registry {self.api}: {_os_text(first_error)}")

    # ---- auth -------------------------------------------------------------------------
    def _auth_header(self, scope: str) -> dict:
        if self._challenge is None:
            return {}
        scheme, params = self._challenge
        if scheme == "basic":
            if not self._creds:
                return {}
            return {"Authorization": "Basic " + _b64(*self._creds)}
        if scheme == "bearer":
            tok = self._tokens.get(scope)
            if tok is None:
                tok = self._fetch_token(params, scope)
            return {"Authorization": "Bearer " + tok}
        return {}

    def _fetch_token(self, params: dict, scope: str) -> str:
        """A token for `scope`: one or more scopes separated by spaces, sent as one `scope`
        parameter each (as Docker sends them)."""
        realm = params.get("realm")
        if not realm:
            raise RegistryError(f"{self.api}: bearer challenge without a realm")
        q = [("service", params.get("service", ""))]
        q += [("scope", sc) for sc in scope.split()]
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(q)
        ru = urllib.parse.urlsplit(url)
        if ru.scheme not in ("http", "https"):
            raise RegistryError(f"{self.api}: bad token realm {realm!r}")
        headers = {}
        if self._creds:
            if ru.scheme == "http" and not cfg.plain_http_allowed(ru.netloc):
                raise RegistryError(f"refusing to send credentials to {realm} over plain HTTP")
            headers["Authorization"] = "Basic " + _b64(*self._creds)
        try:
            r = self._send("GET", url, headers)
            body = r.read()
        except (OSError, http.client.HTTPException) as e:
            raise Unreachable(f"cannot reach the token server {realm}: {_os_text(e)}")
        if r.status == 401:
            raise RegistryError(
                f"unauthorized: {realm} refused the credentials for {self.domain}"
                + ("" if self._creds else " (anonymous)")
            )
        if r.status != 200:
            raise RegistryError(f"token server {realm}: {r.status} {r.reason}")
        from sangja.jsonio import loads

        try:
            doc = loads(body)
            tok = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError):
            tok = None
        if not tok:
            raise RegistryError(f"token server {realm}: no token in its answer")
        with self._lock:
            self._tokens[scope] = tok
        return tok

    def check_login(self):
        """For `sangja login`: the credentials work against this registry."""
        self.ping()
        if self._challenge is None:
            return
        scheme, params = self._challenge
        if scheme == "bearer":
            self._tokens.pop("", None)
            self._fetch_token(params, "")
            return
        r = self._send("GET", f"{self._scheme}://{self.api}/v2/", self._auth_header(""))
        r.read()
        if r.status == 401:
            raise RegistryError(f"unauthorized: {self.api} refused the credentials")
        if r.status != 200:
            raise RegistryError(f"login to {self.api}: {r.status} {r.reason}")

    def _request(self, method, path, repo, headers=None, *, push=False, mount_from=None,
                 body=None, url=None, scope=None):  # fmt: skip
        """An API request with auth (one retry on a fresh challenge) and redirects.

        push: the token is for pull and push; mount_from: also for pulling that repository.
        body: as _send's.  url: an absolute URL instead of `path` (an upload's Location:
        credentials go only to the registry's own host).
        scope: the token's scope instead (the catalog's is registry:catalog:*).
        Returns the response with its body unread, status as it came (the caller decides)."""
        if scope is None:
            scope = f"repository:{repo}:{'pull,push' if push else 'pull'}"
            if mount_from:
                scope += f" repository:{mount_from}:pull"
        url = url or self._base() + path
        headers = dict(headers or {})
        retried = False
        redirects = 0
        same_host = urllib.parse.urlsplit(url).netloc == self.api
        while True:
            h = dict(headers)
            if same_host:
                h.update(self._auth_header(scope))
            try:
                r = self._send(method, url, h, body=body)
            except (OSError, http.client.HTTPException) as e:
                raise Unreachable(f"{method} {url}: {_os_text(e)}")
            if r.status == 401 and same_host and not retried:
                retried = True
                challenge = r.getheader("WWW-Authenticate", "")
                rbody = r.read()
                if challenge:
                    new = parse_challenge(challenge)
                    # bearer: a token for this scope; basic: credentials not sent yet
                    again = new[0] == "bearer" or (
                        new[0] == "basic" and self._creds and self._challenge != new
                    )
                    self._challenge = new
                    self._tokens.pop(scope, None)
                    if again:
                        continue
                return _Replay(401, r.reason, rbody, challenge)
            if r.status in (301, 302, 303, 307, 308) and redirects < MAX_REDIRECTS:
                loc = r.getheader("Location")
                r.read()
                if not loc:
                    raise RegistryError(f"{method} {url}: redirect without a Location")
                new = urllib.parse.urljoin(url, loc)
                same_host = urllib.parse.urlsplit(new).netloc == self.api
                url = new
                redirects += 1
                continue
            return r

    def _drop(self):
        """Close this thread's connections (after an error mid-response)."""
        self.close()

    def _fail(self, what: str, r, body: bytes):
        word, default = _STATUS_WORDS.get(r.status, ("", ""))
        text = _error_text(body)
        if word and text.lower().startswith(word + ":"):
            text = text[len(word) + 1 :].strip()
        detail = text or default or f"{r.status} {r.reason}"
        if r.status == 404 and text:
            detail = f"not found: {text}"
        if r.status == 401 and not self._creds:
            detail += f" (log in with: sangja login {self.domain})"
        raise RegistryError(f"{word + ': ' if word else ''}{what}: {detail}")

    # ---- manifests ----------------------------------------------------------------------
    def get_manifest(self, repo: str, ref: str) -> tuple[bytes, str, str]:
        """-> (body, media type, digest).  A digest reference is checked against the body."""
        what = f"manifest {self.domain}/{repo}{'@' if ref.startswith('sha256:') else ':'}{ref}"
        r = self._request("GET", f"/v2/{repo}/manifests/{ref}", repo, {"Accept": mf.ACCEPT})
        try:
            body = r.read(mf.MAX_MANIFEST + 1)
        except (OSError, http.client.HTTPException) as e:
            raise Unreachable(f"{what}: {_os_text(e)}")
        if r.status != 200:
            if r.status == 404:
                code = _error_text(body)
                if "name unknown" in code or "NAME_UNKNOWN" in code.upper():
                    raise RegistryError(f"{self.domain}/{repo}: repository not found")
            self._fail(what, r, body)
        if len(body) > mf.MAX_MANIFEST:
            raise RegistryError(f"{what}: larger than {mf.MAX_MANIFEST} bytes")
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if ref.startswith("sha256:") and digest != ref:
            raise RegistryError(f"{what}: digest mismatch: the registry sent {digest}")
        return body, (r.getheader("Content-Type") or ""), digest

    def find_manifest(self, repo: str, tag: str, accept: str) -> tuple[bytes, str, str] | None:
        """GET a manifest that may well not exist (a signature tag): None for a 404, else
        (body, media type, digest)."""
        what = f"manifest {self.domain}/{repo}:{tag}"
        r = self._request("GET", f"/v2/{repo}/manifests/{tag}", repo, {"Accept": accept})
        try:
            body = r.read(mf.MAX_MANIFEST + 1)
        except (OSError, http.client.HTTPException) as e:
            self._drop()
            raise Unreachable(f"{what}: {_os_text(e)}")
        if r.status == 404:
            return None
        if r.status != 200:
            self._fail(what, r, body)
        if len(body) > mf.MAX_MANIFEST:
            raise RegistryError(f"{what}: larger than {mf.MAX_MANIFEST} bytes")
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        return body, (r.getheader("Content-Type") or ""), digest

    def delete_manifest(self, repo: str, digest: str) -> None:
        """DELETE a manifest by digest (every tag naming it goes with it)."""
        what = f"delete of {self.domain}/{repo}@{digest}"
        self._call(what, "DELETE", f"/v2/{repo}/manifests/{digest}", repo, (202, 200),
                   push=True)  # fmt: skip

    def put_blob_bytes(self, repo: str, data: bytes) -> str:
        """A small blob (a signature payload, a config) in one request, unless the
        repository has it already -> its digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if self.blob_exists(repo, digest):
            return digest
        url = self.start_upload(repo)
        hdrs = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}
        try:
            self._call(f"upload of {digest}", "PUT", None, repo, (201,), push=True,
                       url=_add_query(url, digest), headers=hdrs, body=data)  # fmt: skip
        except BaseException:
            self.cancel_upload(repo, url)
            raise
        return digest

    def get_blob_bytes(self, repo: str, desc: mf.Descriptor, limit: int) -> bytes:
        """A small blob (a config) in memory, checked."""
        if desc.size > limit:
            raise BlobError(f"blob {desc.digest}: {desc.size} bytes, over the {limit} limit")
        what = f"blob {desc.digest}"
        r = self._request("GET", f"/v2/{repo}/blobs/{desc.digest}", repo)
        try:
            body = r.read(desc.size + 1)
        except (OSError, http.client.HTTPException) as e:
            raise Unreachable(f"{what}: {_os_text(e)}")
        if r.status != 200:
            self._fail(what, r, body)
        check_bytes(body, desc)
        return body

    # ---- blobs ------------------------------------------------------------------------
    def fetch_blob(self, repo: str, desc: mf.Descriptor, partial: str, progress=None) -> str:
        """Download `desc` into the file `partial` (going on from what it holds), check it.

        progress(done, total) is called as bytes arrive.  Returns `partial`, complete and
        checked.  Raises BlobError (`resumable`: the partial file is worth keeping)."""
        what = f"blob {desc.digest}"
        fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            h = _Hash()
            have = h.rehash(fd, desc.size)
            if progress:
                progress(have, desc.size)
            idle = 0
            last_error = ""
            while have < desc.size:
                if progress:
                    progress(have, desc.size)  # may raise: the pull is cancelled
                if idle >= MAX_ATTEMPTS:
                    raise BlobError(
                        f"{what}: truncated: got {have} of {desc.size} bytes"
                        f" after {MAX_ATTEMPTS} attempts ({last_error})",
                        resumable=True,
                    )
                if idle:
                    time.sleep(min(0.1 * 2**idle, 2.0))
                idle += 1
                before = have
                try:
                    have, last_error = self._fetch_range(repo, desc, what, fd, h, have, progress)
                except Unreachable as e:
                    last_error = str(e)
                if have > before:
                    idle = 0
            got = h.digest()
            if got != desc.digest:
                raise BlobError(f"{what}: digest mismatch: got {got}")
            return partial
        finally:
            os.close(fd)

    def _fetch_range(self, repo, desc, what, fd, h, have, progress) -> tuple[int, str]:
        """One GET (a Range request when `have` > 0) -> (bytes now held, why it stopped)."""
        headers = {"Range": f"bytes={have}-"} if have else {}
        r = self._request("GET", f"/v2/{repo}/blobs/{desc.digest}", repo, headers)
        if r.status == 206:
            cr = r.getheader("Content-Range", "")
            if _range_start(cr) != have:
                self._drop()
                return h.restart(fd), f"bad Content-Range {cr!r}"
        elif r.status == 200:
            if have:  # the server ignores ranges: from the beginning
                have = h.restart(fd)
                if progress:
                    progress(0, desc.size)
        elif r.status == 416:
            r.read()
            return h.restart(fd), "416 range not satisfiable"
        else:
            body = r.read(65536)
            self._drop()
            self._fail(what, r, body)
        try:
            have = _copy(r, fd, h, have, desc.size, progress)
        except BlobError:
            self._drop()
            raise
        except (OSError, http.client.HTTPException) as e:
            self._drop()
            if isinstance(e, OSError) and e.errno in _DISK_ERRNOS:
                raise
            return have, _os_text(e)
        if have < desc.size:
            self._drop()
            return have, "the server closed the connection early"
        return have, ""

    # ---- push -------------------------------------------------------------------------
    def _location(self, r, what: str) -> str:
        loc = r.getheader("Location")
        if not loc:
            raise RegistryError(f"{what}: {r.status} without a Location")
        return urllib.parse.urljoin(self._base() + "/v2/", loc)

    def _call(self, what, method, path, repo, ok, **kw):
        """A request whose body is small (read here) -> the response; any status not in
        `ok` is an error named `what`."""
        r = self._request(method, path, repo, **kw)
        try:
            body = r.read(1 << 20)
        except (OSError, http.client.HTTPException) as e:
            self._drop()
            raise Unreachable(f"{what}: {_os_text(e)}")
        if r.status not in ok:
            self._fail(what, r, body)
        return r

    def blob_exists(self, repo: str, digest: str) -> bool:
        """HEAD: the registry has the blob in this repository."""
        r = self._call(f"blob {digest}", "HEAD", f"/v2/{repo}/blobs/{digest}", repo, (200, 404),
                       push=True)  # fmt: skip
        return r.status == 200

    def start_upload(self, repo: str) -> str:
        """POST: a new upload session -> its URL."""
        what = f"upload to {self.domain}/{repo}"
        r = self._call(what, "POST", f"/v2/{repo}/blobs/uploads/", repo, (202,), push=True)
        return self._location(r, what)

    def mount_blob(self, repo: str, digest: str, source: str) -> str | None:
        """A cross-repository mount of the blob from `source` (same registry): None if it
        is mounted, else the URL of the upload session the registry opened instead."""
        q = urllib.parse.urlencode({"mount": digest, "from": source})
        what = f"mount of {digest} from {source}"
        r = self._call(what, "POST", f"/v2/{repo}/blobs/uploads/?{q}", repo, (201, 202),
                       push=True, mount_from=source)  # fmt: skip
        return None if r.status == 201 else self._location(r, what)

    def cancel_upload(self, repo: str, url: str) -> None:
        """DELETE an upload session (after a failure; the registry may not allow it)."""
        try:
            r = self._request("DELETE", None, repo, push=True, url=url)
            r.read()
        except (RegistryError, OSError, http.client.HTTPException):
            self._drop()

    def upload_blob(self, repo: str, url: str, path: str, size: int, digest: str, chunk: int,
                    progress=None) -> None:  # fmt: skip
        """The file `path` (size bytes, the blob `digest`) into the upload session `url`:
        one PUT with the whole blob when it is up to `chunk` bytes (monolithic), else
        PATCHes of `chunk` bytes then an empty PUT.  A dropped connection during a chunk
        is resumed from where the registry says the upload is (GET on the session), or the
        blob is started again in a new session if the registry cannot say; a dropped
        monolithic upload is started again.
        progress(done, total) as bytes go out; it may raise to cancel."""
        what = f"upload of {digest}"
        octets = {"Content-Type": "application/octet-stream"}
        if size <= chunk:
            for attempt in range(MAX_ATTEMPTS):
                try:
                    self._put_blob(repo, url, digest, octets, path, size, progress, what)
                    return
                except Unreachable:
                    if attempt == MAX_ATTEMPTS - 1:
                        raise
                    time.sleep(min(0.1 * 2**attempt, 2.0))
                    self.cancel_upload(repo, url)
                    url = self.start_upload(repo)
        done, idle, lost = 0, 0, False
        while done < size:
            try:
                if lost:  # a chunk was cut off: where is the upload now?
                    url, done = self._resume(repo, url, what, done)
                    lost = False
                    continue
                n = min(chunk, size - done)
                hdrs = dict(octets, **{"Content-Length": str(n),
                                       "Content-Range": f"{done}-{done + n - 1}"})  # fmt: skip
                part = functools.partial(_Part, path, done, n, size, progress)
                r = self._call(what, "PATCH", None, repo, (202,), push=True, url=url,
                               headers=hdrs, body=part)  # fmt: skip
                url = self._location(r, what)
                done = _range_end(r.getheader("Range", ""), done + n)
                idle = 0
            except Unreachable:
                idle += 1
                if idle >= MAX_ATTEMPTS:
                    raise
                time.sleep(min(0.1 * 2**idle, 2.0))
                lost = True
        self._call(what, "PUT", None, repo, (201,), push=True, url=_add_query(url, digest),
                   headers={"Content-Length": "0"})  # fmt: skip

    def _resume(self, repo, url, what, done) -> tuple[str, int]:
        """After a dropped chunk: the session's URL and the bytes it holds (GET on it, as
        the distribution spec says), or a new session from the start when the registry
        cannot go on with the old one (distribution's cannot once part of the chunk
        reached it: "blob upload invalid")."""
        try:
            r = self._call(what, "GET", None, repo, (204,), push=True, url=url)
        except Unreachable:
            raise
        except RegistryError:
            self.cancel_upload(repo, url)
            return self.start_upload(repo), 0
        held = _range_end(r.getheader("Range", ""), 0)
        return self._location(r, what), 0 if held == 1 and done == 0 else held  # "0-0": empty

    def _put_blob(self, repo, url, digest, octets, path, size, progress, what):
        hdrs = dict(octets, **{"Content-Length": str(size)})
        part = functools.partial(_Part, path, 0, size, size, progress)
        self._call(what, "PUT", None, repo, (201,), push=True, url=_add_query(url, digest),
                   headers=hdrs, body=part)  # fmt: skip

    def put_manifest(self, repo: str, ref: str, body: bytes, media_type: str) -> str:
        """PUT a manifest under a tag (or its digest) -> the digest the registry gives it."""
        what = f"manifest {self.domain}/{repo}:{ref}"
        r = self._call(what, "PUT", f"/v2/{repo}/manifests/{ref}", repo, (201,), push=True,
                       headers={"Content-Type": media_type}, body=body)  # fmt: skip
        return r.getheader("Docker-Content-Digest") or ""

    # ---- search -----------------------------------------------------------------------
    def _pages(self, what, path, repo, key, scope=None, limit=None) -> list[str]:
        """A paginated list (`Link: <next>; rel="next"`) -> all of it (or `limit` items)."""
        out: list[str] = []
        url = None
        while True:
            r = self._request("GET", path, repo, url=url, scope=scope)
            try:
                body = r.read(mf.MAX_MANIFEST)
            except (OSError, http.client.HTTPException) as e:
                self._drop()
                raise Unreachable(f"{what}: {_os_text(e)}")
            if r.status != 200:
                self._fail(what, r, body)
            from sangja.jsonio import loads

            try:
                items = loads(body).get(key) or []
            except (ValueError, AttributeError):
                raise RegistryError(f"{what}: the registry's answer is not JSON")
            out += [x for x in items if isinstance(x, str)]
            nxt = _next_link(r.getheader("Link", ""))
            if not nxt or (limit and len(out) >= limit):
                return out[:limit] if limit else out
            url = urllib.parse.urljoin(self._base() + "/v2/", nxt)

    def catalog(self, limit: int | None = None) -> list[str]:
        """GET /v2/_catalog: the registry's repositories (needs the catalog scope)."""
        return self._pages(f"catalog of {self.domain}", "/v2/_catalog?n=1000", "", "repositories",
                           scope="registry:catalog:*", limit=limit)  # fmt: skip

    def tags(self, repo: str) -> list[str]:
        """GET /v2/<name>/tags/list."""
        return self._pages(f"tags of {self.domain}/{repo}", f"/v2/{repo}/tags/list", repo,
                           "tags")  # fmt: skip


class _Part(io.RawIOBase):
    """Bytes [offset, offset+n) of a file as a request body, read as http.client sends it;
    progress(done, total) is told the blob's bytes sent so far (and may raise to stop)."""

    def __init__(self, path, offset, n, total, progress=None):
        super().__init__()
        self.fd = -1
        self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self.name = path
        self.pos, self.end, self.total, self.progress = offset, offset + n, total, progress

    def readable(self):
        return True

    def read(self, size=-1):
        want = self.end - self.pos if size is None or size < 0 else min(size, self.end - self.pos)
        if want <= 0 or self.fd < 0:
            self.close()
            return b""
        b = os.pread(self.fd, want, self.pos)
        if not b:
            raise BlobError(f"blob file {self.name}: shorter than its size")
        self.pos += len(b)
        if self.progress:
            self.progress(self.pos, self.total)
        return b

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        super().close()

    def __del__(self):
        self.close()


def _add_query(url: str, digest: str) -> str:
    return url + ("&" if "?" in url else "?") + urllib.parse.urlencode({"digest": digest})


def _range_end(rng: str, default: int) -> int:
    """`Range: 0-N` of an upload session -> N + 1 bytes held."""
    m = re.fullmatch(r"\s*(?:bytes=)?0-(\d+)\s*", rng)
    return int(m.group(1)) + 1 if m else default


def _next_link(link: str) -> str | None:
    m = re.search(r'<([^>]+)>\s*;\s*rel="?next"?', link)
    return m.group(1) if m else None


class _Hash:
    """sha256 of a partial file, that can start over."""

    def __init__(self):
        self.h = hashlib.sha256()

    def update(self, b):
        self.h.update(b)

    def digest(self) -> str:
        return "sha256:" + self.h.hexdigest()

    def restart(self, fd) -> int:
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        self.h = hashlib.sha256()
        return 0

    def rehash(self, fd, size) -> int:
        """Feed what the file holds already; one longer than the blob starts over."""
        have = os.fstat(fd).st_size
        if have > size:
            return self.restart(fd)
        pos = 0
        while pos < have:
            b = os.pread(fd, min(CHUNK * 4, have - pos), pos)
            if not b:
                break
            self.h.update(b)
            pos += len(b)
        os.ftruncate(fd, pos)
        os.lseek(fd, pos, os.SEEK_SET)
        return pos


_STATUS_WORDS = {  # status -> (the word Docker's errors start with, the text if none came)
    401: ("unauthorized", "authentication required"),
    403: ("denied", "requested access to the resource is denied"),
    404: ("", "not found"),
    429: ("toomanyrequests", "rate limited"),
}
_DISK_ERRNOS = (28, 122, 5, 30)  # ENOSPC, EDQUOT, EIO, EROFS: writing, not the network


class _Replay:
    """A 401 whose body was read already (for _fail)."""

    def __init__(self, status, reason, body, challenge):
        self.status, self.reason, self._body = status, reason, body
        self._challenge = challenge

    def read(self, *_):
        return self._body

    def getheader(self, name, default=None):
        return self._challenge if name.lower() == "www-authenticate" else default

    def close(self):
        pass


def _b64(user, pw) -> str:
    return base64.b64encode(f"{user}:{pw}".encode()).decode()


def _os_text(e) -> str:
    if e is None:
        return "no answer"
    if isinstance(e, socket.timeout):
        return "timed out"
    if isinstance(e, ssl.SSLError):
        return f"tls: {e.reason or e}"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror.lower() if e.errno else e.strerror
    if isinstance(e, http.client.IncompleteRead):
        return f"connection closed after {len(e.partial)} more bytes"
    if isinstance(e, http.client.RemoteDisconnected):
        return "connection closed by the server"
    return str(e) or type(e).__name__


def _range_start(cr: str) -> int:
    m = re.match(r"bytes (\d+)-\d+/(\d+|\*)", cr.strip())
    return int(m.group(1)) if m else -1


def _copy(r, fd, h, have, size, progress) -> int:
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    try:
        while True:
            n = r.readinto(buf)
            if not n:
                return have
            if have + n > size:
                raise BlobError(f"blob larger than its descriptor says ({size} bytes)")
            chunk = view[:n]
            h.update(chunk)
            off = 0
            while off < n:
                off += os.write(fd, chunk[off:])
            have += n
            if progress:
                progress(have, size)
    finally:
        view.release()


def check_bytes(data: bytes, desc: mf.Descriptor) -> None:
    if len(data) != desc.size:
        raise BlobError(f"blob {desc.digest}: size mismatch: got {len(data)}, want {desc.size}")
    got = "sha256:" + hashlib.sha256(data).hexdigest()
    if got != desc.digest:
        raise BlobError(f"blob {desc.digest}: digest mismatch: got {got}")
