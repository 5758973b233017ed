"""`sangja image push`: an image of the store -> the registry its name says, as it is (the
manifest and blobs the store holds, so the manifest's digest stays what it was).

For each blob (layers, several at a time, then the config): a HEAD says whether the
repository has it already ("Layer already exists"); if not, a cross-repository mount from
another repository of the same registry that the store knows has it (a name of an image
using the blob, on that registry: pulled from there, or pushed there before) -- "Mounted
from ..."; else an upload, in one request up to the chunk size, in chunks above it (a
dropped connection resumes the chunked upload where the registry says it is).  Then the
manifest is PUT under the tag, and the digest printed as docker prints it; the store
records the digest (`image ls --digests`, and the mounts of later pushes).
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
from dataclasses import dataclass

from sangja.errors import SangjaError
from sangja.image import auth, reference, registry
from sangja.image import config as cfg
from sangja.image import manifest as mf
from sangja.image.store import Store

MOUNT_TRIES = 3  # candidate source repositories per blob (as Docker)


class PushError(SangjaError):
    pass


class _Cancelled(Exception):
    pass


@dataclass(frozen=True)
class PushResult:
    reference: str  # host/repo:tag
    digest: str  # the manifest's
    size: int  # the manifest's bytes


def _has_tag(s: str) -> bool:
    name = s.partition("@")[0]
    return ":" in name.rsplit("/", 1)[-1]


def targets(store: Store, ref_str: str, all_tags: bool) -> tuple[reference.Reference, list]:
    """-> (the repository's reference, [(tag, image id)]) to push."""
    ref = reference.parse(ref_str)
    if ref.digest:
        raise PushError(f"cannot push a digest reference: {ref_str}")
    if all_tags and _has_tag(ref_str):
        raise PushError("tag can't be used with --all-tags/-a")
    missing = f"An image does not exist locally with the tag: {reference.familiar(ref.name)}"
    tags = sorted((reference.split_name(t)[1], img.id) for img in store.images()
                  for t in img.tags if reference.split_name(t)[0] == ref.name)  # fmt: skip
    if not all_tags:
        tags = [(tag, image_id) for tag, image_id in tags if tag == ref.tag]
    if not tags:
        raise PushError(missing)
    return ref, tags


def push(ref_str: str, *, store: Store | None = None, progress=None, all_tags: bool = False,
         sign_by=None, credentials: tuple[str, str] | None = None) -> list[PushResult]:  # fmt: skip
    """Push NAME[:TAG] (or, all_tags, every tag of NAME in the store).  sign_by: a
    trust.keys.PrivateKey that signs each pushed tag (its signature stored beside it).
    credentials: (user, password) for this push, else the stored ones."""
    store = store or Store()
    ref, tags = targets(store, ref_str, all_tags)
    client = registry.Client(ref.domain, credentials=credentials or auth.lookup(ref.domain))
    try:
        if progress:
            progress.line(f"The push refers to repository [{ref.name}]")
        out = []
        for tag, image_id in tags:
            res = _Push(store, client, ref, tag, image_id, progress).run()
            out.append(res)
            if sign_by is not None:
                from sangja.image.trust import sign

                tagged = reference.parse(f"{ref.name}:{tag}")
                signed = sign.sign_with(client, tagged, res.digest, sign_by)
                if progress:
                    progress.line(f"{tag}: signed with {sign_by.path}: {ref.name}:{signed.tag}")
        return out
    finally:
        client.close()


class _Push:
    """One tag: its blobs, then its manifest."""

    def __init__(self, store, client, ref, tag, image_id, progress):
        self.store, self.client, self.ref, self.tag = store, client, ref, tag
        self.image_id, self.progress = image_id, progress
        self.repo = ref.path
        self.cancel = threading.Event()
        self.chunk = cfg.push_chunk_size()

    def run(self) -> PushResult:
        store, p = self.store, self.progress
        mdigest, mbytes = store.manifest_of(self.image_id)
        mt, doc = mf.parse(mbytes, store.media_type_of(mdigest) or "")
        if mt not in mf.MANIFESTS:
            raise PushError(f"image {self.image_id[7:19]}: its manifest is a {mt}")
        manifest = mf.Manifest.from_doc(mt, doc)
        diff_ids = [ly.diff_id for ly in store.layers_of(self.image_id)]
        if len(diff_ids) != len(manifest.layers):
            raise PushError(f"image {self.image_id[7:19]}: {len(diff_ids)} layers in the store,"
                            f" {len(manifest.layers)} in its manifest")  # fmt: skip
        for desc in (*manifest.layers, manifest.config):
            path = store.blob_path(desc.digest)
            if not store.blob_usable(desc.digest, desc.size):
                raise PushError(f"image {self.image_id[7:19]}: blob {desc.digest} is not in"
                                f" the store ({path})")  # fmt: skip
        # a row per layer, the top one first (as docker lists them), named by its diff_id
        rows, seen = [], set()
        for desc, diff_id in zip(manifest.layers, diff_ids, strict=True):
            if desc.digest not in seen:
                seen.add(desc.digest)
                rows.append((desc, diff_id.split(":", 1)[1][:12]))
        if p:
            for _, rid in reversed(rows):
                p.add(rid, "Preparing")
        workers = min(cfg.max_concurrent_uploads(), max(1, len(rows)))
        pool = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="push")
        futures = []
        try:
            futures = [pool.submit(self._blob, desc, rid, self._sources(desc.digest))
                       for desc, rid in rows]  # fmt: skip
            for f in futures:
                f.result()
        except BaseException:
            self.cancel.set()
            cf.wait(futures)
            raise
        finally:
            pool.shutdown(wait=True)
        self._blob(manifest.config, None, self._sources(manifest.config.digest))
        got = self.client.put_manifest(self.repo, self.tag, mbytes, mt)
        if got and got != mdigest:
            raise PushError(f"{self.ref.name}:{self.tag}: the registry took the manifest as"
                            f" {got}, not {mdigest}")  # fmt: skip
        store.tag(self.image_id, self.ref.with_digest(mdigest), kind="digest")
        if p:
            p.finish()
            p.line(f"{self.tag}: digest: {mdigest} size: {len(mbytes)}")
        return PushResult(f"{self.ref.name}:{self.tag}", mdigest, len(mbytes))

    def _status(self, rid, text):
        if rid and self.progress:
            self.progress.status(rid, text)

    def _sources(self, digest: str) -> list[str]:
        """Repositories of this registry that have the blob, as far as the store knows (on
        the calling thread: the database connection is its)."""
        out = []
        for name in self.store.names_with_blob(digest):
            repo_name, _ = reference.split_name(name)
            domain, _, path = repo_name.partition("/")
            if domain == self.ref.domain and path != self.repo and path not in out:
                out.append(path)
        return out[:MOUNT_TRIES]

    def _blob(self, desc, rid, sources) -> None:
        if self.cancel.is_set():
            raise _Cancelled()
        c, digest = self.client, desc.digest
        if c.blob_exists(self.repo, digest):
            self._status(rid, "Layer already exists")
            return
        url = None
        for src in sources:
            url = c.mount_blob(self.repo, digest, src)
            if url is None:
                self._status(rid, f"Mounted from {src}")
                return
            break  # not mounted: the registry opened an upload session instead
        url = url or c.start_upload(self.repo)

        def on_bytes(done, total):
            if self.cancel.is_set():
                raise _Cancelled()
            if rid and self.progress:
                self.progress.bytes(rid, done, total, "Pushing")

        try:
            c.upload_blob(self.repo, url, self.store.blob_path(digest), desc.size, digest,
                          self.chunk, on_bytes)  # fmt: skip
        except BaseException:
            c.cancel_upload(self.repo, url)
            raise
        self._status(rid, "Pushed")
