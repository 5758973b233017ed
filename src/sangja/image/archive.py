"""`image save`, `image load`, `image import`.

save, two forms (both what `docker load` and `podman load` read):
  docker-archive  manifest.json [{Config, RepoTags, Layers}], <config hex>.json,
                  <diff_id hex>/layer.tar (uncompressed: its sha256 is the diff_id, checked
                  as it is written), <diff_id hex>/VERSION and json, repositories
  oci-archive     an OCI image layout in a tar (oci-layout, index.json, blobs/sha256/...):
  oci-dir         the same layout as a directory; the blobs are the stored ones as they are
load reads docker-archive (Docker's older form and the 25+ one with an OCI layout inside,
podman's), OCI layouts (tar or directory), plain or gzip/zstd-compressed, from a file or
stdin.  Every blob is checked against its digest, every layer against its diff_id, and the
image is committed only when all of it is in place (as a pull is).
import makes a one-layer image from a root file system tarball.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import posixpath
import shutil
import sys
import tarfile
import tempfile

from sangja.errors import SangjaError, UnpackError
from sangja.image import compress, reference
from sangja.image import manifest as mf
from sangja.image.store import LayerRec, Staging, Store, chain_ids, layer_record

ANN_REF = "org.opencontainers.image.ref.name"
ANN_NAME = "io.containerd.image.name"
FORMATS = ("docker-archive", "oci-archive", "oci-dir")
MAX_JSON = 64 << 20


class ArchiveError(SangjaError):
    pass


def _loads(data: bytes, what: str):
    from sangja.jsonio import loads

    try:
        return loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ArchiveError(f"{what}: invalid JSON: {e}")


def archive_name(full: str) -> str:
    """Docker Hub names in their short form (what docker writes); others in full."""
    if full.startswith(reference.DOCKER_HUB + "/"):
        return reference.familiar(full, reference.DOCKER_HUB)
    return full


# =========================================================================================
# save
# =========================================================================================


class _Item:
    def __init__(self, store: Store, image_id: str, names: list[str]):
        self.id = image_id
        self.names = names  # 'host/repo:tag'
        self.config = store.read_blob(image_id)
        self.layers = store.layers_of(image_id)
        self.manifest_digest, self.manifest = store.manifest_of(image_id)
        self.manifest_type = store.media_type_of(self.manifest_digest) or mf.parse(self.manifest)[0]
        _, doc = mf.parse(self.manifest, self.manifest_type)
        self.descs = mf.Manifest.from_doc(self.manifest_type, doc)


def _items(store: Store, refs: list[str]) -> list[_Item]:
    """The images to save, each with the names it was asked by (an id names none)."""
    out: dict[str, _Item] = {}
    tags = {n for img in store.images() for n in img.tags}
    for r in refs:
        image_id = store.resolve(r)
        item = out.setdefault(image_id, _Item(store, image_id, []))
        with contextlib.suppress(reference.ReferenceError):
            ref = reference.parse(r)
            if not ref.digest and ref.tagged in tags and ref.tagged not in item.names:
                item.names.append(ref.tagged)
    return list(out.values())


def save(store: Store, refs: list[str], output: str | None, fmt: str = "docker-archive") -> None:
    if fmt not in FORMATS:
        raise ArchiveError(f"unknown format {fmt!r} (want {', '.join(FORMATS)})")
    if not refs:
        raise ArchiveError("save: name at least one image")
    items = _items(store, refs)
    if hasattr(output, "write"):  # a stream of the caller's (the Engine API's response)
        if fmt == "oci-dir":
            raise ArchiveError("oci-dir cannot be written to a stream")
        _write_tar(store, items, fmt, output)
        return
    if fmt == "oci-dir":
        if not output:
            raise ArchiveError("oci-dir needs an output directory (-o DIR)")
        _save_oci_dir(store, items, output)
        return
    if output is None or output == "-":
        if sys.stdout.isatty():
            raise ArchiveError("refusing to write an archive to a terminal (use -o FILE)")
        _write_tar(store, items, fmt, sys.stdout.buffer)
        sys.stdout.flush()
        return
    tmp = f"{output}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            _write_tar(store, items, fmt, f)
        os.rename(tmp, output)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise ArchiveError(f"write {output}: {e.strerror}", errno=e.errno)
        raise


def _write_tar(store, items, fmt, fileobj) -> None:
    with tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        if fmt == "docker-archive":
            _docker_archive(store, items, tar)
        else:
            _oci_layout(store, items, tar)


def _add(tar: tarfile.TarFile, name: str, data: bytes | None = None, *, size=None, fileobj=None,
         dir=False) -> None:  # fmt: skip
    ti = tarfile.TarInfo(name)
    ti.mtime = 0
    ti.uname = ti.gname = ""
    if dir:
        ti.type = tarfile.DIRTYPE
        ti.mode = 0o755
        tar.addfile(ti)
        return
    ti.mode = 0o644
    if data is not None:
        ti.size = len(data)
        tar.addfile(ti, io.BytesIO(data))
    else:
        ti.size = size
        tar.addfile(ti, fileobj)


class _Uncompressed(io.RawIOBase):
    """A layer blob, read uncompressed, hashed and counted as it goes."""

    def __init__(self, path: str):
        self.gen = compress.stream(path)
        self.buf = b""
        self.h = hashlib.sha256()
        self.n = 0

    def readable(self):
        return True

    def read(self, size=-1):
        while size < 0 or len(self.buf) < size:
            try:
                b = next(self.gen)
            except StopIteration:
                break
            self.h.update(b)
            self.n += len(b)
            self.buf += b
        if size < 0:
            out, self.buf = self.buf, b""
        else:
            out, self.buf = self.buf[:size], self.buf[size:]
        return out

    def drain(self):
        while self.read(1 << 20):
            pass


def _layer_tar(store: Store, item: _Item, i: int, layer: LayerRec):
    """(size, file object) of layer i's uncompressed tar; the blob is the manifest's."""
    blob = store.blob_path(item.descs.layers[i].digest)
    size = layer.tar_size
    if size is None:  # unknown: count it first
        size = sum(len(b) for b in compress.stream(blob))
    return size, _Uncompressed(blob)


def _docker_archive(store: Store, items: list[_Item], tar: tarfile.TarFile) -> None:
    manifest, repositories = [], {}
    written: set[str] = set()
    for item in items:
        cfg_name = item.id.split(":", 1)[1] + ".json"
        if cfg_name not in written:
            _add(tar, cfg_name, item.config)
            written.add(cfg_name)
        paths, parent = [], ""
        for i, layer in enumerate(item.layers):
            hx = layer.diff_id.split(":", 1)[1]
            path = f"{hx}/layer.tar"
            paths.append(path)
            if path in written:
                parent = hx
                continue
            _add(tar, hx, dir=True)
            _add(tar, f"{hx}/VERSION", b"1.0")
            v1 = {"id": hx, "created": "1970-01-01T00:00:00Z"}
            if parent:
                v1["parent"] = parent
            _add(tar, f"{hx}/json", mf.json_bytes(v1))
            size, f = _layer_tar(store, item, i, layer)
            _add(tar, path, size=size, fileobj=f)
            f.drain()
            got = "sha256:" + f.h.hexdigest()
            if got != layer.diff_id or f.n != size:
                raise ArchiveError(
                    f"layer {item.descs.layers[i].digest}: its content does not match its"
                    f" diff_id {layer.diff_id} (got {got}, {f.n} bytes)"
                )
            written.add(path)
            parent = hx
        tags = [archive_name(n) for n in item.names]
        manifest.append({"Config": cfg_name, "RepoTags": tags or None, "Layers": paths})
        for t in tags:
            name, tag = reference.split_name(t)
            repositories.setdefault(name, {})[tag] = parent
    _add(tar, "manifest.json", mf.json_bytes(manifest))
    if repositories:
        _add(tar, "repositories", mf.json_bytes(repositories))


def _index(items: list[_Item]) -> dict:
    manifests = []
    for item in items:
        base = {"mediaType": item.manifest_type, "digest": item.manifest_digest,
                "size": len(item.manifest)}  # fmt: skip
        if not item.names:
            manifests.append(base)
        for n in item.names:
            _, tag = reference.split_name(n)
            manifests.append({**base, "annotations": {ANN_NAME: n, ANN_REF: tag}})
    return {"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": manifests}


def _oci_blobs(store: Store, items: list[_Item]):
    """(digest, size) of every blob the layout holds, once each."""
    seen = set()
    for item in items:
        for d, size in [(item.manifest_digest, len(item.manifest)), (item.id, len(item.config))] + [
            (ly.digest, ly.size) for ly in item.descs.layers
        ]:
            if d not in seen:
                seen.add(d)
                yield d, size


def _oci_layout(store: Store, items: list[_Item], tar: tarfile.TarFile) -> None:
    _add(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    _add(tar, "blobs", dir=True)
    _add(tar, "blobs/sha256", dir=True)
    for d, size in _oci_blobs(store, items):
        path = store.blob_path(d)
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size != size:
                raise ArchiveError(f"blob {d}: the stored file has the wrong size")
            _add(tar, "blobs/sha256/" + d.split(":", 1)[1], size=size, fileobj=f)
    _add(tar, "index.json", mf.json_bytes(_index(items)))


def _save_oci_dir(store: Store, items: list[_Item], out: str) -> None:
    if os.path.exists(out) and os.listdir(out):
        raise ArchiveError(f"{out}: exists and is not empty")
    try:
        os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)
        for d, _ in _oci_blobs(store, items):
            dst = os.path.join(out, "blobs", "sha256", d.split(":", 1)[1])
            try:
                os.link(store.blob_path(d), dst)
            except OSError:
                shutil.copyfile(store.blob_path(d), dst)
        with open(os.path.join(out, "oci-layout"), "w") as f:
            f.write('{"imageLayoutVersion":"1.0.0"}')
        with open(os.path.join(out, "index.json"), "wb") as f:
            f.write(mf.json_bytes(_index(items)))
    except OSError as e:
        raise ArchiveError(f"write {e.filename or out}: {e.strerror}", errno=e.errno)


# =========================================================================================
# load
# =========================================================================================


class _Source:
    """Named members of an archive: a tar (random access) or an OCI layout directory."""

    def __init__(self, path: str):
        self.dir = path if os.path.isdir(path) else None
        self.tar = None
        self.members: dict[str, tarfile.TarInfo] = {}
        if self.dir is None:
            try:
                self.tar = tarfile.open(path, mode="r:")
                for m in self.tar:
                    name = posixpath.normpath(m.name.lstrip("/"))
                    if name.startswith("../") or name == "..":
                        continue  # never read, never written anywhere
                    self.members[name] = m
            except (tarfile.TarError, OSError) as e:
                raise ArchiveError(f"not a readable tar archive: {e}")

    def close(self):
        if self.tar:
            self.tar.close()

    def _member(self, name: str, hops: int = 0) -> tarfile.TarInfo:
        name = posixpath.normpath(name.lstrip("/"))
        m = self.members.get(name)
        if m is None:
            raise ArchiveError(f"the archive has no {name}")
        if m.issym() or m.islnk():
            if hops > 16:
                raise ArchiveError(f"{name}: too many links")
            target = (
                m.linkname if m.islnk() else posixpath.join(posixpath.dirname(name), m.linkname)
            )
            return self._member(target, hops + 1)
        if not m.isfile():
            raise ArchiveError(f"{name}: not a regular file in the archive")
        return m

    def exists(self, name: str) -> bool:
        if self.dir is not None:
            return os.path.isfile(self._path(name))
        return posixpath.normpath(name) in self.members

    def _path(self, name: str) -> str:
        name = posixpath.normpath(name.lstrip("/"))
        if name.startswith(".."):
            raise ArchiveError(f"bad member name {name!r}")
        return os.path.join(self.dir, name)

    def read(self, name: str, limit: int = MAX_JSON) -> bytes:
        if self.dir is not None:
            try:
                with open(self._path(name), "rb") as f:
                    data = f.read(limit + 1)
            except OSError as e:
                raise ArchiveError(f"{name}: {e.strerror}")
        else:
            m = self._member(name)
            if m.size > limit:
                raise ArchiveError(f"{name}: over {limit} bytes")
            data = self.tar.extractfile(m).read()
        if len(data) > limit:
            raise ArchiveError(f"{name}: over {limit} bytes")
        return data

    def open(self, name: str):
        if self.dir is not None:
            try:
                return open(self._path(name), "rb")
            except OSError as e:
                raise ArchiveError(f"{name}: {e.strerror}")
        return self.tar.extractfile(self._member(name))


def _spool(store: Store, src) -> str:
    """Copy a stream (stdin) or a compressed file into a plain tar file under tmp/."""
    os.makedirs(store.tmp_dir, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix="load-", suffix=".tar", dir=store.tmp_dir)
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
    except BaseException:
        os.unlink(path)
        raise
    return path


def _plain_tar(store: Store, path: str | None) -> tuple[str, list[str]]:
    """-> (a path to read: an uncompressed tar or an OCI directory, temp files to remove)."""
    temps = []
    if hasattr(path, "read"):  # a stream of the caller's (the Engine API's request body)
        path = _spool(store, path)
        temps.append(path)
    elif path is None or path == "-":
        if sys.stdin.isatty():
            raise ArchiveError("requested load from stdin, but stdin is a terminal (use -i FILE)")
        path = _spool(store, sys.stdin.buffer)
        temps.append(path)
    if os.path.isdir(path):
        return path, temps
    try:
        kind = compress.detect_file(path)
    except OSError as e:
        raise ArchiveError(f"open {path}: {e.strerror}", errno=e.errno)
    if kind != "none":
        fd, plain = tempfile.mkstemp(prefix="load-", suffix=".tar", dir=store.tmp_dir)
        temps.append(plain)
        with os.fdopen(fd, "wb") as out:
            for b in compress.stream(path):
                out.write(b)
        path = plain
    return path, temps


def load(store: Store, path: str | None, out=None) -> list[str]:
    """Load every image of an archive -> lines to print ('Loaded image: NAME')."""
    store._dirs()
    with store.lock():
        plain, temps = _plain_tar(store, path)
        try:
            src = _Source(plain)
            try:
                if src.exists("manifest.json"):
                    return _load_docker(store, src)
                if src.exists("index.json") and src.exists("oci-layout"):
                    return _load_oci(store, src)
                raise ArchiveError(
                    "not an image archive: neither manifest.json (docker-archive) nor"
                    " oci-layout + index.json (OCI layout) in it"
                )
            finally:
                src.close()
        finally:
            for t in temps:
                with contextlib.suppress(OSError):
                    os.unlink(t)


def _copy_blob(
    store: Store, staging: Staging, src: _Source, name: str, want=None, want_size=None
) -> tuple[str, int]:
    """A member into the store as a checked blob -> (digest, size)."""
    if want is not None and want_size is not None and store.blob_usable(want, want_size):
        return want, want_size
    with src.open(name) as f:
        return copy_in(store, staging, f, name, want, want_size)


def copy_in(store: Store, staging: Staging, f, what: str, want: str | None = None,
            want_size: int | None = None) -> tuple[str, int]:  # fmt: skip
    """A stream into the store as a blob, hashed on the way -> (digest, size)."""
    fd, tmp = tempfile.mkstemp(prefix="blob-", dir=store.tmp_dir)
    h, n = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out:
            while b := f.read(1 << 20):
                h.update(b)
                n += len(b)
                out.write(b)
        digest = "sha256:" + h.hexdigest()
        if want is not None and digest != want:
            raise ArchiveError(f"{what}: digest mismatch: want {want}, got {digest}")
        if want_size is not None and n != want_size:
            raise ArchiveError(f"{what}: size mismatch: want {want_size}, got {n}")
        if store.blob_usable(digest, n):
            os.unlink(tmp)
        else:
            staging.add_file(tmp, digest)
        return digest, n
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise ArchiveError(f"{what}: {e.strerror}", errno=e.errno)
        raise


def _unpack_all(store: Store, staging: Staging, blobs: list[str], diff_ids: list[str],
                what: str) -> list[LayerRec]:  # fmt: skip
    chains = chain_ids(diff_ids)
    out, parents = [], []
    for i, (digest, diff_id) in enumerate(zip(blobs, diff_ids, strict=True)):
        chain = chains[i]
        parent = chains[i - 1] if i else None
        known = store.layer(chain)
        if known is not None:
            path = store.blob_path(digest)
            # an uncompressed blob's digest (checked) is its diff_id
            got = digest if compress.detect_file(path) == "none" else compress.diff_id(path)
            if got != diff_id:
                raise ArchiveError(
                    f"{what}: layer {i + 1}: diff_id mismatch: want {diff_id}, got {got}"
                )
            out.append(layer_record(None, chain, diff_id, parent, digest, known))
        else:
            try:
                res = staging.unpack(store.blob_path(digest), chain, digest, diff_id, parents)
            except UnpackError as e:
                raise ArchiveError(f"{what}: layer {i + 1} ({digest}): {e}", errno=e.errno)
            out.append(layer_record(res, chain, diff_id, parent, digest))
        parents.insert(0, store.layer_path(chain))
    return out


def _loaded(names: list[str], image_id: str) -> list[str]:
    """What `load` prints for one image (docker's words)."""
    return [f"Loaded image: {archive_name(n)}" for n in names] or [f"Loaded image ID: {image_id}"]


def _norm_name(name: str) -> str | None:
    try:
        ref = reference.parse(name)
    except reference.ReferenceError:
        return None
    return ref.tagged if not ref.digest else None


def _config_diff_ids(conf_bytes: bytes, what: str) -> tuple[dict, list[str]]:
    from sangja.image.pull import PullError, parse_config

    try:
        return parse_config(conf_bytes, None)
    except PullError as e:
        raise ArchiveError(f"{what}: {e}")


def _load_docker(store: Store, src: _Source) -> list[str]:
    entries = _loads(src.read("manifest.json"), "manifest.json")
    if not isinstance(entries, list) or not entries:
        raise ArchiveError("manifest.json: want a list of images")
    lines = []
    for e in entries:
        staging = Staging(store)
        try:
            conf_bytes = src.read(e["Config"])
            conf, diff_ids = _config_diff_ids(conf_bytes, e["Config"])
            layer_names = e.get("Layers") or []
            if len(layer_names) != len(diff_ids):
                raise ArchiveError(
                    f"{e['Config']}: {len(diff_ids)} diff_ids for {len(layer_names)} layers"
                )
            blobs, descs = [], []
            for name in layer_names:
                digest, size = _copy_blob(store, staging, src, name)
                mt = mf.LAYER_MEDIA_TYPES[compress.detect_file(store.blob_path(digest))]
                blobs.append(digest)
                descs.append((digest, size, mt))
            layers = _unpack_all(store, staging, blobs, diff_ids, e["Config"])
            names = [n for n in (_norm_name(t) for t in e.get("RepoTags") or []) if n]
            image_id = staging.commit(conf_bytes, conf, mf.new_oci(conf_bytes, descs),
                                      mf.OCI_MANIFEST, layers, descs, names)  # fmt: skip
        except (KeyError, TypeError) as err:
            staging.cleanup()
            raise ArchiveError(f"manifest.json: malformed entry ({err})")
        except BaseException:
            staging.cleanup()
            raise
        lines += _loaded(names, image_id)
    return lines


def _load_oci(store: Store, src: _Source) -> list[str]:
    index = _loads(src.read("index.json"), "index.json")
    lines = []
    for desc in mf.index_entries(index):
        ann = _annotations(index, desc)
        staging = Staging(store)
        try:
            mdesc, mbytes, mtype = _oci_manifest(src, desc)
            m = mf.Manifest.from_doc(mtype, mf.parse(mbytes, mtype)[1])
            conf_bytes = src.read(_blob_name(m.config.digest))
            if "sha256:" + hashlib.sha256(conf_bytes).hexdigest() != m.config.digest:
                raise ArchiveError(f"config {m.config.digest}: digest mismatch")
            conf, diff_ids = _config_diff_ids(conf_bytes, f"config {m.config.digest}")
            if len(diff_ids) != len(m.layers):
                raise ArchiveError(
                    f"manifest {mdesc}: {len(diff_ids)} diff_ids, {len(m.layers)} layers"
                )
            blobs = []
            for ly in m.layers:
                _copy_blob(store, staging, src, _blob_name(ly.digest), ly.digest, ly.size)
                blobs.append(ly.digest)
            layers = _unpack_all(store, staging, blobs, diff_ids, f"manifest {mdesc}")
            names = []
            full = ann.get(ANN_NAME) or ""
            refname = ann.get(ANN_REF) or ""
            for cand in (full, refname):
                # a bare tag ('latest') names no repository: such an image loads untagged
                if cand and ("/" in cand or ":" in cand) and (n := _norm_name(cand)):
                    names.append(n)
                    break
            image_id = staging.commit(conf_bytes, conf, mbytes, mtype, layers,
                               [(x.digest, x.size, x.media_type) for x in m.layers],
                               names)  # fmt: skip
        except BaseException:
            staging.cleanup()
            raise
        lines += _loaded(names, image_id)
    return lines


def _annotations(index: dict, desc: mf.Descriptor) -> dict:
    for m in index.get("manifests") or []:
        if isinstance(m, dict) and m.get("digest") == desc.digest:
            a = m.get("annotations")
            return a if isinstance(a, dict) else {}
    return {}


def _blob_name(digest: str) -> str:
    algo, _, hx = digest.partition(":")
    return f"blobs/{algo}/{hx}"


def _oci_manifest(src: _Source, desc: mf.Descriptor) -> tuple[str, bytes, str]:
    """An index entry -> (digest, bytes, media type) of the image manifest to load (a nested
    index: the host's platform)."""
    for _ in range(4):
        data = src.read(_blob_name(desc.digest), mf.MAX_MANIFEST)
        if "sha256:" + hashlib.sha256(data).hexdigest() != desc.digest:
            raise ArchiveError(f"manifest {desc.digest}: digest mismatch")
        mt, doc = mf.parse(data, desc.media_type)
        if mt in mf.MANIFESTS:
            return desc.digest, data, mt
        desc = mf.select(mf.index_entries(doc), mf.host_platform())
    raise ArchiveError("index nesting too deep")


# =========================================================================================
# import
# =========================================================================================

_CHANGE_KEYS = ("CMD", "ENTRYPOINT", "ENV", "WORKDIR", "USER", "LABEL", "EXPOSE", "VOLUME",
                "STOPSIGNAL")  # fmt: skip


def apply_change(cfg: dict, change: str) -> None:
    """One Dockerfile-like instruction (docker import --change) into a config's "config"."""
    key, _, rest = change.strip().partition(" ")
    key, rest = key.upper(), rest.strip()
    if key not in _CHANGE_KEYS:
        raise ArchiveError(f"--change: unsupported instruction {key!r} (want one of "
                           f"{', '.join(_CHANGE_KEYS)})")  # fmt: skip
    if key in ("CMD", "ENTRYPOINT"):
        if rest.startswith("["):
            val = _loads(rest.encode(), f"--change {key}")
            if not isinstance(val, list) or not all(isinstance(x, str) for x in val):
                raise ArchiveError(f"--change {key}: want a JSON list of strings")
        else:
            val = ["/bin/sh", "-c", rest]
        cfg["Cmd" if key == "CMD" else "Entrypoint"] = val
    elif key == "ENV":
        pairs = (
            _kv(rest) if "=" in rest.split(" ", 1)[0] else [tuple(rest.split(" ", 1)) + ("",)][:1]
        )
        env = [e for e in cfg.get("Env") or []]
        for k, v in ((p[0], p[1]) for p in pairs):
            env = [e for e in env if e.split("=", 1)[0] != k] + [f"{k}={v}"]
        cfg["Env"] = env
    elif key == "LABEL":
        cfg.setdefault("Labels", {}).update(dict(_kv(rest)))
    elif key == "EXPOSE":
        for p in rest.split():
            cfg.setdefault("ExposedPorts", {})[p if "/" in p else p + "/tcp"] = {}
    elif key == "VOLUME":
        vols = _loads(rest.encode(), "--change VOLUME") if rest.startswith("[") else rest.split()
        for v in vols:
            cfg.setdefault("Volumes", {})[v] = {}
    else:
        cfg[{"WORKDIR": "WorkingDir", "USER": "User", "STOPSIGNAL": "StopSignal"}[key]] = rest


def _kv(s: str) -> list[tuple[str, str]]:
    import shlex

    out = []
    for tok in shlex.split(s):
        k, eq, v = tok.partition("=")
        if not eq or not k:
            raise ArchiveError(f"--change: want KEY=VALUE, got {tok!r}")
        out.append((k, v))
    return out


def _without(msg: str, blob: str) -> str:
    return msg.replace(f"{blob}: ", "").replace(blob, "the archive")


def _check_rootfs_tar(path: str, shown: str) -> str:
    """A root file system archive must hold a tar with at least one entry (Docker refuses
    an empty file and one of zeros): its first header is checked. -> the compression."""
    try:
        kind = compress.detect_file(path)
        head = b""
        for b in compress.stream(path):
            head += b
            if len(head) >= 512:
                break
    except SangjaError as e:
        raise ArchiveError(f"import {shown}: {_without(str(e), path)}")
    except OSError as e:
        raise ArchiveError(f"import {shown}: {e.strerror}", errno=e.errno)
    if not head:
        raise ArchiveError(f"import {shown}: empty file (want a tar archive of a root file system)")
    if len(head) < 512:
        raise ArchiveError(f"import {shown}: not a tar archive (too short)")
    block = head[:512]
    if block.count(0) == 512:
        raise ArchiveError(f"import {shown}: not a tar archive (no entries: only zeros)")
    try:
        want = int(block[148:156].split(b"\0", 1)[0].strip() or b"-1", 8)
    except ValueError:
        want = -1
    if want != sum(block[:148]) + 8 * 32 + sum(block[156:]):
        raise ArchiveError(f"import {shown}: not a tar archive (bad header checksum)")
    return kind


def import_rootfs(store: Store, path: str | None, name: str | None = None,
                  changes: list[str] = (), message: str = "",
                  platform: str | None = None) -> str:  # fmt: skip
    """A root file system tarball (plain, gzip or zstd; a file or stdin) -> a one-layer
    image; returns its id."""
    plat = mf.parse_platform(platform)
    tagged = None
    if name:
        ref = reference.parse(name)
        if ref.digest:
            raise ArchiveError("import: the target must be a tag, not a digest")
        tagged = ref.tagged
    cfg: dict = {}
    for c in changes:
        apply_change(cfg, c)
    store._dirs()
    with store.lock():
        staging = Staging(store)
        temps = []
        try:
            if hasattr(path, "read"):  # a stream of the caller's (the Engine API's body)
                tmp = _spool(store, path)
                temps.append(tmp)
                path = tmp
            elif path is None or path == "-":
                if sys.stdin.isatty():
                    raise ArchiveError("import: stdin is a terminal (give a file, or pipe one)")
                tmp = _spool(store, sys.stdin.buffer)
                temps.append(tmp)
                path = tmp
            if not os.path.isfile(path):
                raise ArchiveError(f"import: {path}: no such file")
            shown = "stdin" if temps else path
            kind = _check_rootfs_tar(path, shown)
            with open(path, "rb") as f:
                digest, size = copy_in(store, staging, f, path)
            try:
                diff_id = digest if kind == "none" else compress.diff_id(store.blob_path(digest))
                layers = _unpack_all(store, staging, [digest], [diff_id], f"import {shown}")
            except SangjaError as e:  # name the user's file, not the blob we copied it to
                msg = _without(str(e), store.blob_path(digest))
                if not msg.startswith(f"import {shown}:"):  # _unpack_all's say it already
                    msg = f"import {shown}: {msg}"
                raise ArchiveError(msg, errno=e.errno)
            from sangja.log import now_rfc3339

            created = now_rfc3339()
            conf = {"created": created, "architecture": plat.architecture, "os": plat.os}
            if plat.variant:
                conf["variant"] = plat.variant
            conf["config"] = cfg
            conf["rootfs"] = {"type": "layers", "diff_ids": [diff_id]}
            hist = {"created": created, "created_by": "sangja image import"}
            if message:
                hist["comment"] = message
            conf["history"] = [hist]
            conf_bytes = mf.json_bytes(conf)
            descs = [(digest, size, mf.LAYER_MEDIA_TYPES[kind])]
            manifest = mf.new_oci(conf_bytes, descs)
            return staging.commit(conf_bytes, conf, manifest, mf.OCI_MANIFEST, layers, descs,
                                  [tagged] if tagged else [])  # fmt: skip
        except BaseException:
            staging.cleanup()
            raise
        finally:
            for t in temps:
                with contextlib.suppress(OSError):
                    os.unlink(t)
