"""Image policy: what removing, pruning and finding an image for a container mean.

The store (sangja.image.store) keeps content and rows; this module decides, as Docker does,
when a name is only untagged and when the image goes, what a container's hold forbids, what
prune removes, and whether `run`/`create` pull.  Results are Docker's API shapes
(ImageDeleteResponseItem, ImagePruneResponse), which the CLI prints and the HTTP API sends.
"""

from __future__ import annotations

import sys

from sangja.engine.errors import Conflict, EngineError, NoSuchImage
from sangja.errors import SangjaError


class Images:
    def __init__(self, store=None):
        if store is None:
            from sangja.image.store import Store

            store = Store()
        self.store = store

    # ---- finding -----------------------------------------------------------------------
    def resolve(self, ref: str) -> str:
        """An image id (full or unique prefix) or a reference -> the image id."""
        from sangja.image.store import ImageNotFound, StoreError

        try:
            return self.store.resolve(ref)
        except ImageNotFound:
            raise NoSuchImage(f"no such image: {ref}")
        except StoreError as e:
            raise EngineError(str(e))

    def for_container(self, ref: str, pull: str = "missing", platform: str | None = None,
                      progress=None, signature_policy: str | None = None) -> str:  # fmt: skip
        """The image a new container uses, pulled as `pull` says (missing|always|never);
        with content trust on (`signature_policy`, sangja.image.trust), only an image the
        policy accepts."""
        if pull not in ("missing", "always", "never"):
            raise EngineError(f"invalid pull policy {pull!r} (want missing, always or never)")
        if pull == "always":
            return self.pull(ref, platform, progress, signature_policy)
        try:
            image_id = self.resolve(ref)
        except NoSuchImage:
            if pull == "never":
                raise
            if progress is not None:
                progress.line(f"Unable to find image '{ref}' locally")
            return self.pull(ref, platform, progress, signature_policy)
        # content trust (issue 19): with trust on, the image under this name must be the
        # one its registry has signed for it; when the signed one is another, pull it
        # (pull verifies).  With trust off this returns True without reading anything.
        from sangja.image import trust

        try:
            signed = trust.check_local(self.store, ref, image_id, signature_policy)
        except SangjaError as e:
            raise EngineError(str(e), errno=e.errno)
        if signed:
            return image_id
        if pull == "never":
            raise EngineError(f"image {ref}: the local image is not the one signed for it")
        return self.pull(ref, platform, progress, signature_policy)

    def pull(self, ref: str, platform: str | None = None, progress=None,
             signature_policy: str | None = None) -> str:  # fmt: skip
        from sangja.image.pull import pull

        try:
            return pull(ref, platform=platform, store=self.store, progress=progress,
                        signature_policy=signature_policy).image_id  # fmt: skip
        except SangjaError as e:
            raise EngineError(str(e), errno=e.errno)

    # ---- removal -----------------------------------------------------------------------
    def remove(self, ref: str, force: bool = False) -> list[dict]:
        """`image rm REF`: a name among others is only untagged; the last name (or the id)
        deletes the image and whatever only it used; refused while a container holds it
        (with `force`: its names go, the image stays for the container, dangling).
        -> [{"Untagged": name} | {"Deleted": id}, ...]"""
        from sangja.engine.containers import collect_dead

        collect_dead(self.store)  # containers whose create was killed hold no image
        store = self.store
        out: list[dict] = []
        with store.lock():
            image_id = self.resolve(ref)
            refs = store.refs_of(image_id)
            name = _full_name(ref)
            if name not in dict(refs):
                name = None  # asked by id
            tags = [n for n, k in refs if k == "tag"]
            if name is not None and [n for n in tags if n != name]:
                store.untag(name)  # other names remain: only this one goes
                return [{"Untagged": name}]
            users = store.holders(image_id)
            if users and not force:
                raise Conflict(
                    f"conflict: unable to remove {ref} (image {image_id[7:19]}): it is used by"
                    f" container {users[0][:12]} (remove the container first, or use -f)"
                )
            if name is None and len(tags) > 1 and not force:
                raise Conflict(
                    f"conflict: unable to delete {image_id[7:19]} (must be forced): the image"
                    f" is referenced in {len(tags)} repositories"
                )
            out += [{"Untagged": n} for n, _ in refs]
            if users:  # force: the names go, the image stays for its containers (as docker)
                for n, _ in refs:
                    store.untag(n)
                return out
            chains, _freed = store.delete_image(image_id)
            out.append({"Deleted": image_id})
            out += [{"Deleted": f"sha256:{c}"} for c in chains]
        return out

    def prune(self, all: bool = False) -> dict:
        """Dangling images (`all`: every image no container uses), then files no row names
        (left by a crash), partial downloads.  -> ImagePruneResponse."""
        from sangja.engine.containers import collect_dead

        collect_dead(self.store)
        store = self.store
        deleted, freed = [], 0
        with store.lock():
            for img in store.images():
                if store.holders(img.id) or (img.tags and not all):
                    continue
                deleted += [{"Untagged": n} for n in img.tags + img.digests]
                _, f = store.delete_image(img.id)
                deleted.append({"Deleted": img.id})
                freed += f
            freed += store.collect_garbage()
        return {"ImagesDeleted": deleted or None, "SpaceReclaimed": freed}


def _full_name(s: str) -> str | None:
    from sangja.image import reference

    try:
        ref = reference.parse(s)
    except reference.ReferenceError:
        return None
    return ref.with_digest(ref.digest) if ref.digest else ref.tagged


def stderr_progress():
    """Pull progress on stderr (what run/create show while they pull)."""
    from sangja.image.progress import Progress

    return Progress(sys.stderr)
