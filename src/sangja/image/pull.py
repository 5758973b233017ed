"""`sangja image pull`: reference -> manifest (platform from an index) -> config -> blobs
downloaded concurrently -> layers unpacked in order as their blobs arrive -> one commit.

The layers are unpacked while later blobs still download (the extractor runs without the
GIL).  Nothing is named in the database until every blob and layer of the image is checked
and synced; a failed pull removes what it wrote, except partial downloads after a network
failure or an interrupt, which the next pull resumes with a Range request.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
from dataclasses import dataclass

from sangja.errors import SangjaError, UnpackError
from sangja.image import auth, reference, registry, trust
from sangja.image import config as cfg
from sangja.image import manifest as mf
from sangja.image.store import LayerRec, Staging, Store, chain_ids, layer_record


class PullError(SangjaError):
    pass


class _Cancelled(Exception):
    pass


@dataclass
class PullResult:
    image_id: str
    reference: str  # what was pulled, normalized
    digest: str  # the digest the reference resolved to (index or manifest)
    new: bool  # the image was not in the store before


def parse_config(data: bytes, n_layers: int | None) -> tuple[dict, list[str]]:
    """-> (config, rootfs.diff_ids), checked: one diff_id per layer (if n_layers is given)."""
    from sangja.jsonio import loads

    try:
        conf = loads(data)
        diff_ids = conf["rootfs"]["diff_ids"]
    except (ValueError, KeyError, TypeError):
        raise PullError("image config: invalid JSON or no rootfs.diff_ids")
    if not isinstance(diff_ids, list) or not all(
        isinstance(d, str) and d.startswith("sha256:") and len(d) == 71 for d in diff_ids
    ):
        raise PullError("image config: invalid rootfs.diff_ids")
    if n_layers is not None and len(diff_ids) != n_layers:
        raise PullError(
            f"image config: {len(diff_ids)} diff_ids for {n_layers} layers in the manifest"
        )
    return conf, diff_ids


def pull(ref_str: str, *, platform: str | None = None, store: Store | None = None,
         progress=None, all_tags: bool = False, signature_policy: str | None = None,
         credentials: tuple[str, str] | None = None) -> PullResult:  # fmt: skip
    """signature_policy: a containers-policy.json to obey (content trust: sangja.image.trust
    says when one is in force without it).  credentials: (user, password) for this pull
    (the Engine API's X-Registry-Auth), else the stored ones."""
    if all_tags:
        raise PullError("--all-tags is not supported")
    ref = reference.parse(ref_str)
    want = mf.parse_platform(platform)
    store = store or Store()
    verifier = trust.verifier(signature_policy, store)  # None: trust is off
    client = registry.Client(ref.domain, credentials=credentials or auth.lookup(ref.domain))
    try:
        return _pull(ref, want, platform is not None, store, client, progress, verifier)
    finally:
        client.close()


def _pull(ref, want, explicit_platform, store, client, progress, verifier=None) -> PullResult:
    if progress:
        progress.line(f"{ref.digest or ref.tag}: Pulling from {ref.path}")
    body, ctype, digest = client.get_manifest(ref.path, ref.digest or ref.tag)
    if verifier is not None:
        # content trust: the digest the name resolved to, checked before anything of the
        # image is fetched or kept
        verifier.check(client, ref, digest)
    mt, doc = mf.parse(body, ctype)
    docs = [(digest, body, mt)]  # (digest, bytes, media type) of the index and the manifest
    if mt in mf.INDEXES:
        entry = mf.select(mf.index_entries(doc), want)
        body, ctype, mdigest = client.get_manifest(ref.path, entry.digest)
        if len(body) != entry.size:
            raise PullError(
                f"manifest {entry.digest}: size {len(body)}, the index says {entry.size}"
            )
        mt, doc = mf.parse(body, ctype)
        if mt in mf.INDEXES:
            raise PullError(f"manifest {mdigest}: an index inside an index is not supported")
        docs.append((mdigest, body, mt))
    manifest = mf.Manifest.from_doc(mt, doc)
    manifest_digest = docs[-1][0]

    with store.lock():
        if store.blob_usable(manifest.config.digest, manifest.config.size):
            conf_bytes = store.read_blob(manifest.config.digest)
        else:
            conf_bytes = client.get_blob_bytes(ref.path, manifest.config, mf.MAX_CONFIG)
        conf, diff_ids = parse_config(conf_bytes, len(manifest.layers))
        if explicit_platform and len(docs) == 1 and not want.matches(conf):
            raise PullError(
                f"image {ref} is for {mf.config_platform(conf)}, not the requested {want}"
            )
        job = _Job(store, client, ref, manifest, diff_ids, progress)
        try:
            layers = job.run()
            blobs = [(d, len(b), m) for d, b, m in docs]
            blobs.append((manifest.config.digest, manifest.config.size,
                          manifest.config.media_type or mf.OCI_CONFIG))  # fmt: skip
            blobs += [(ly.digest, ly.size, ly.media_type) for ly in manifest.layers]
            for d, b, _ in docs + [(manifest.config.digest, conf_bytes, None)]:
                job.staging.blobs.append(store.put_bytes(b, d))
            refs = [(ref.with_digest(digest), "digest")]
            if not ref.digest:
                refs.append((ref.tagged, "tag"))
            new = store.commit_image(
                image_id=manifest.config.digest, manifest=manifest_digest,
                created=conf.get("created"), platform=mf.config_platform(conf),
                layers=layers, blobs=blobs, refs=refs,
            )  # fmt: skip
        except BaseException as e:
            job.cleanup(keep_partials=_resumable(e))
            raise
    if progress:
        progress.finish()
        progress.line(f"Digest: {digest}")
        if job.fetched or new:
            progress.line(f"Status: Downloaded newer image for {ref}")
        else:
            progress.line(f"Status: Image is up to date for {ref}")
    return PullResult(manifest.config.digest, str(ref), digest, new)


def _resumable(e: BaseException) -> bool:
    if isinstance(e, KeyboardInterrupt):
        return True
    return isinstance(e, registry.Unreachable) or getattr(e, "resumable", False)


class _Job:
    """The blobs and layers of one image: fetch, check, unpack (undone by `staging`)."""

    def __init__(self, store: Store, client, ref, manifest, diff_ids, progress):
        self.store = store
        self.staging = Staging(store)
        self.client = client
        self.ref = ref
        self.layers = manifest.layers
        self.diff_ids = diff_ids
        self.chains = chain_ids(diff_ids)
        self.progress = progress
        self.cancel = threading.Event()
        self.fetched = 0

    def cleanup(self, keep_partials: bool) -> None:
        self.staging.cleanup(keep_partials)

    def _rid(self, i: int) -> str:
        return self.layers[i].digest.split(":", 1)[1][:12]

    def run(self) -> list[LayerRec]:
        store, p = self.store, self.progress
        need_blob = {}  # digest -> descriptor, blobs to download
        for i, desc in enumerate(self.layers):
            if store.blob_usable(desc.digest, desc.size):
                if p:
                    p.add(self._rid(i), "Already exists")
                continue
            need_blob.setdefault(desc.digest, desc)
            if p:
                p.add(self._rid(i), "Pulling fs layer", desc.size)
        workers = min(cfg.max_concurrent_downloads(), max(1, len(need_blob)))
        pool = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pull")
        futures = {d: pool.submit(self._download, desc) for d, desc in need_blob.items()}
        try:
            out = []
            parents: list[str] = []  # unpacked layer dirs, nearest first
            for i, desc in enumerate(self.layers):
                fut = futures.get(desc.digest)
                if fut is not None:
                    fut.result()
                out.append(self._layer(i, desc, parents, fut is not None))
                parents.insert(0, store.layer_path(self.chains[i]))
            return out
        except BaseException:
            self.cancel.set()
            self.client.abort()
            for f in futures.values():
                f.cancel()
            # the downloads see the flag at their next chunk; wait so nothing is half-moved
            cf.wait(list(futures.values()))
            raise
        finally:
            pool.shutdown(wait=True)

    def _download(self, desc) -> None:
        if self.cancel.is_set():
            raise _Cancelled()
        rid = desc.digest.split(":", 1)[1][:12]
        partial = self.store.partial_path(desc.digest)
        self.staging.partials.append(partial)
        p = self.progress

        def on_bytes(done, total):
            if self.cancel.is_set():
                raise _Cancelled()
            if p:
                p.bytes(rid, done, total)

        try:
            self.client.fetch_blob(self.ref.path, desc, partial, on_bytes)
        except OSError as e:  # the network's errors are RegistryErrors: this is the disk
            raise PullError(f"blob {desc.digest}: write {partial}: {e.strerror}", errno=e.errno)
        if p:
            p.status(rid, "Download complete")
        self.staging.add_file(partial, desc.digest)
        self.staging.partials.remove(partial)
        self.fetched += 1

    def _layer(self, i, desc, parents, downloaded) -> LayerRec:
        store, p, rid = self.store, self.progress, self._rid(i)
        chain, diff_id = self.chains[i], self.diff_ids[i]
        parent = self.chains[i - 1] if i else None
        blob = store.blob_path(desc.digest)
        known = store.layer(chain)
        if known is not None:
            if downloaded:
                # a new blob for a layer already unpacked (the same image, compressed
                # otherwise): its diff_id is still checked, by decompressing it
                from sangja.image import compress

                if p:
                    p.status(rid, "Verifying diff_id")
                got = compress.diff_id(blob)
                if got != diff_id:
                    raise PullError(
                        f"layer {desc.digest}: diff_id mismatch: expected {diff_id}, got {got}"
                    )
                if p:
                    p.status(rid, "Pull complete")
            return layer_record(None, chain, diff_id, parent, desc.digest, known)
        if p:
            p.status(rid, "Extracting")
        try:
            res = self.staging.unpack(blob, chain, desc.digest, diff_id, parents)
        except UnpackError as e:
            raise PullError(f"layer {desc.digest}: {_strip_blob(str(e), blob)}", errno=e.errno)
        if p:
            p.status(rid, "Pull complete")
        return layer_record(res, chain, diff_id, parent, desc.digest)


def _strip_blob(msg: str, blob: str) -> str:
    """The extractor names the blob file; the digest says it already."""
    return msg.replace(f"layer {blob}: ", "").replace(blob + ": ", "")
