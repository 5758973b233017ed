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
    """`collect_dead(store)` sweeps what killed container commands left (a killed create's
    row still holds its image) before an image is freed: engine/containers.py's, passed in
    by the caller, since containers stand above images (a container is made from one)."""

    def __init__(self, store=None, collect_dead=None):
        if store is None:
            from sangja.image.store import Store

            store = Store()
        self.store = store
        self.collect_dead = collect_dead

    def _sweep(self):
        if self.collect_dead is not None:
            self.collect_dead(self.store)

    def event(self, action: str, actor: str, **attrs) -> None:
        """Docker's image event (engine/events.py): pull, push, tag, untag, delete, load,
        import, save, prune."""
        from sangja.engine import events

        events.emit("image", action, actor, {k: str(v) for k, v in attrs.items()},
                    root=self.store.root)  # fmt: skip

    def _named(self, action: str, reference: str) -> None:
        from sangja.image.reference import familiar, split_name

        self.event(action, reference, name=familiar(split_name(reference)[0]))

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
            res = pull(ref, platform=platform, store=self.store, progress=progress,
                       signature_policy=signature_policy)  # fmt: skip
        except SangjaError as e:
            raise EngineError(str(e), errno=e.errno)
        self._named("pull", res.reference)
        return res.image_id

    def fetch(self, ref: str, platform: str | None = None, progress=None,
              all_tags: bool = False, signature_policy: str | None = None):  # fmt: skip
        """`image pull`: -> sangja.image.pull's PullResult (its errors as they are)."""
        from sangja.image.pull import pull

        res = pull(ref, platform=platform, store=self.store, progress=progress,
                   all_tags=all_tags, signature_policy=signature_policy)  # fmt: skip
        self._named("pull", res.reference)
        return res

    def tag(self, image_id: str, name: str) -> None:
        self.store.tag(image_id, name)
        self.event("tag", image_id, name=name)

    def push(self, ref: str, progress=None, all_tags: bool = False, sign_by=None) -> list:
        from sangja.image.push import push

        out = push(ref, store=self.store, progress=progress, all_tags=all_tags,
                   sign_by=sign_by)  # fmt: skip
        for res in out:
            self._named("push", res.reference)
        return out

    def load(self, path: str | None) -> list[str]:
        """`image load` -> the lines to print ('Loaded image: NAME')."""
        from sangja.image import archive

        lines = archive.load(self.store, path)
        for line in lines:
            self.event("load", line.split(": ", 1)[-1])
        return lines

    def import_rootfs(self, path: str | None, name: str | None = None, **kw) -> str:
        from sangja.image import archive

        image_id = archive.import_rootfs(self.store, path, name, **kw)
        self.event("import", image_id, **({"name": name} if name else {}))
        return image_id

    def save(self, refs: list[str], output: str | None, fmt: str) -> None:
        from sangja.image import archive

        archive.save(self.store, refs, output, fmt)
        for r in refs:
            self.event("save", r)

    # ---- removal -----------------------------------------------------------------------
    def remove(self, ref: str, force: bool = False) -> list[dict]:
        """`image rm REF`: a name among others is only untagged; the last name (or the id)
        deletes the image and whatever only it used; refused while a container holds it
        (with `force`: its names go, the image stays for the container, dangling).
        -> [{"Untagged": name} | {"Deleted": id}, ...]"""
        self._sweep()  # containers whose create was killed hold no image
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
                self.event("untag", image_id, name=name)
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
                    self.event("untag", image_id, name=n)
                return out
            chains, _freed = store.delete_image(image_id)
            for n, _ in refs:
                self.event("untag", image_id, name=n)
            self.event("delete", image_id)
            out.append({"Deleted": image_id})
            out += [{"Deleted": f"sha256:{c}"} for c in chains]
        return out

    def prune(self, all: bool = False, until: float | None = None,
              labels: list[str] = (), not_labels: list[str] = ()) -> dict:  # fmt: skip
        """Dangling images (`all`: every image no container uses), then files no row names
        (left by a crash), partial downloads.  `until`: only images created before;
        `labels`: only images whose config has them (KEY or KEY=VALUE), `not_labels`: none
        whose config has any.
        -> ImagePruneResponse."""
        from sangja.engine.filters import label_match
        from sangja.engine.units import parse_timestamp

        self._sweep()
        store = self.store
        deleted, freed = [], 0
        with store.lock():
            for img in store.images():
                if store.holders(img.id) or (img.tags and not all):
                    continue
                if until is not None:
                    try:
                        if parse_timestamp(img.created or "0") >= until:
                            continue
                    except ValueError:
                        pass
                if labels or not_labels:
                    conf = (store.config_of(img.id).get("config") or {}).get("Labels") or {}
                    if any(not label_match(conf, w) for w in labels):  # `all` is the flag here
                        continue
                    if any(label_match(conf, w) for w in not_labels):
                        continue
                deleted += [{"Untagged": n} for n in img.tags + img.digests]
                _, f = store.delete_image(img.id)
                for n in img.tags + img.digests:
                    self.event("untag", img.id, name=n)
                self.event("delete", img.id)
                deleted.append({"Deleted": img.id})
                freed += f
            freed += store.collect_garbage()
        self.event("prune", "", reclaimed=freed)
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
