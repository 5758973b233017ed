"""Image policy: what removing, pruning and finding an image for a container mean.

The store (sangja.image.store) keeps content and rows; this module decides, as Docker does,
when a name is only untagged and when the image goes, what a container's hold forbids, what
prune removes, and whether `run`/`create` pull.  Results are Docker's API shapes
(ImageDeleteResponseItem, ImagePruneResponse), which the CLI prints and the HTTP API sends.
"""

from __future__ import annotations

import sys

from sangja.engine.errors import Conflict, EngineError, InvalidArgument, NoSuchImage
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
             signature_policy: str | None = None, credentials=None) -> str:  # fmt: skip
        """ImageCreate (fromImage): -> the image id.  `credentials`: (user, password) for
        this pull (the API's X-Registry-Auth), else the stored ones."""
        try:
            return self.fetch(ref, platform, progress, signature_policy=signature_policy,
                              credentials=credentials).image_id  # fmt: skip
        except SangjaError as e:
            raise EngineError(str(e), errno=e.errno)

    def fetch(self, ref: str, platform: str | None = None, progress=None,
              all_tags: bool = False, signature_policy: str | None = None,
              credentials=None):  # fmt: skip
        """`image pull`: -> sangja.image.pull's PullResult (its errors as they are)."""
        from sangja.image.pull import pull

        res = pull(ref, platform=platform, store=self.store, progress=progress,
                   all_tags=all_tags, signature_policy=signature_policy,
                   credentials=credentials)  # fmt: skip
        self._named("pull", res.reference)
        return res

    # ---- listing and looking --------------------------------------------------------------
    def records(self, filters=None, name: str | None = None, all: bool = True) -> list:
        """The store's images (newest first) that pass Docker's image filters (dangling,
        label, reference, before, since; a dict or ["k=v", ...]) and, with `name`, hold a
        name in that repository."""
        from sangja.engine.filters import parse_image_filters

        f = parse_image_filters(filters)
        images = self.store.images()
        if name:
            from sangja.image.reference import parse as parse_ref
            from sangja.image.reference import split_name

            want = parse_ref(name).name
            images = [i for i in images if any(split_name(t)[0] == want
                                               for t in i.tags + i.digests)]  # fmt: skip
        if not f:
            return images
        before = [self._added(r) for r in f.get("before", ())]
        since = [self._added(r) for r in f.get("since", ())]
        out = []
        for img in images:
            if "dangling" in f and (not img.tags) != (f["dangling"][0].lower() in ("1", "true")):
                continue
            if f.get("reference") and not _reference_match(img.tags + img.digests,
                                                           f["reference"]):  # fmt: skip
                continue
            if f.get("label"):
                from sangja.engine.filters import label_match

                labels = (self.store.config_of(img.id).get("config") or {}).get("Labels") or {}
                if not all(label_match(labels, want) for want in f["label"]):
                    continue
            if before and not all(img.added < t for t in before):
                continue
            if since and not all(img.added > t for t in since):
                continue
            out.append(img)
        return out

    def _added(self, ref: str) -> float:
        image_id = self.resolve(ref)
        row = self.store.db.execute("SELECT added FROM images WHERE id=?", (image_id,)).fetchone()
        return row[0] if row else 0.0

    def list(self, filters=None, all: bool = False) -> list[dict]:
        """ImageList (/images/json): ImageSummary entries, newest first."""
        from sangja.engine.filters import parse_image_filters
        from sangja.image.reference import familiar

        refs = parse_image_filters(filters).get("reference")
        out = []
        for img in self.records(filters, all=all):
            conf = self.store.config_of(img.id)
            tags, digests = img.tags, img.digests
            if refs:  # as dockerd: only the names that match (the CLI shows a row each)
                tags = [t for t in tags if _reference_match([t], refs)]
                digests = [d for d in digests if _reference_match([d], refs)]
            out.append({
                "Id": img.id, "ParentId": "",
                "RepoTags": [familiar(t) for t in tags],
                "RepoDigests": [familiar(d) for d in digests],
                "Created": _unix(img.created), "Size": img.size, "SharedSize": -1,
                "VirtualSize": img.size,
                "Labels": (conf.get("config") or {}).get("Labels") or {},
                "Containers": len(self.store.holders(img.id)),
            })  # fmt: skip
        return out

    def inspect(self, ref: str) -> dict:
        """ImageInspect."""
        from sangja.image import inspect

        return inspect.inspect(self.store, self.resolve(ref))

    def history(self, ref: str) -> list[dict]:
        """ImageHistory: newest first, {Id, Created (Unix), CreatedBy, Tags, Size, Comment};
        the image's own id on the top entry, `<missing>` below (as Docker)."""
        from sangja.image import inspect
        from sangja.image.reference import familiar

        image_id = self.resolve(ref)
        tags = [familiar(t) for t in self.store.image(image_id).tags]
        out = []
        for i, h in enumerate(inspect.history(self.store, image_id)):
            out.append({"Id": h["id"], "Created": _unix(h["created"]),
                        "CreatedBy": h["created_by"], "Tags": tags if i == 0 else None,
                        "Size": h["size"], "Comment": h["comment"]})  # fmt: skip
        return out

    def tag(self, ref: str, repo: str, tag: str | None = None) -> str:
        """ImageTag: another name (REPO[:TAG], TAG default latest) for an image.  -> it."""
        from sangja.image.reference import ReferenceError
        from sangja.image.reference import parse as parse_ref

        image_id = self.resolve(ref)
        target = f"{repo}:{tag}" if tag else repo
        try:
            r = parse_ref(target)
        except ReferenceError as e:
            raise InvalidArgument(str(e))
        if r.digest:
            raise InvalidArgument("refusing to create a tag with a digest reference")
        self.store.tag(image_id, r.tagged)
        self.event("tag", image_id, name=r.tagged)
        return r.tagged

    # ---- registries ----------------------------------------------------------------------
    def push(self, ref: str, progress=None, credentials=None, all_tags: bool = False,
             sign_by=None) -> list:  # fmt: skip
        """Push NAME[:TAG] (or every tag of NAME) to its registry."""
        from sangja.image.push import push

        try:
            out = push(ref, store=self.store, progress=progress, all_tags=all_tags,
                       sign_by=sign_by, credentials=credentials)  # fmt: skip
        except SangjaError as e:
            if "does not exist locally" in str(e):
                raise NoSuchImage(str(e), errno=e.errno)
            raise EngineError(str(e), errno=e.errno)
        for res in out:
            self._named("push", res.reference)
        return out

    def search(self, term: str, limit: int = 25, filters=()) -> list:
        """A registry's repositories named like TERM (image/search.py's Results)."""
        from sangja.image import search

        try:
            return search.search(term, limit=limit, filters=list(filters))
        except search.SearchError as e:
            raise InvalidArgument(str(e))
        except SangjaError as e:
            raise EngineError(str(e), errno=e.errno)

    @staticmethod
    def check_login(server: str, user: str, password: str) -> str:
        """The credentials work against the registry (nothing stored).  -> its key."""
        from sangja.image import auth, registry

        key = auth.normalize_key(server or "docker.io")
        if not user or not password:
            raise InvalidArgument("login: user name and password must not be empty")
        c = registry.Client(key, credentials=(user, password))
        try:
            c.check_login()
        except SangjaError as e:
            err = EngineError(str(e), errno=e.errno)
            if "unauthorized" in str(e):
                err.status = 401
            raise err
        finally:
            c.close()
        return key

    # ---- archives -------------------------------------------------------------------------
    def save(self, refs: list[str], out, fmt: str = "docker-archive") -> None:
        """ImageGet: the images as one archive written to `out` (a path or a stream)."""
        from sangja.image import archive

        for r in refs:
            self.resolve(r)  # 404 before anything is written
        archive.save(self.store, refs, out, fmt)
        for r in refs:
            self.event("save", r)

    def load(self, src) -> list[str]:
        """ImageLoad: every image of an archive (a path or a stream) -> 'Loaded image: ...'."""
        from sangja.image import archive

        try:
            lines = archive.load(self.store, src)
        except archive.ArchiveError as e:
            raise InvalidArgument(str(e), errno=e.errno)
        for line in lines:
            self.event("load", line.split(": ", 1)[-1])
        return lines

    def import_rootfs(self, src, name: str | None = None, changes=(), message: str = "",
                      platform: str | None = None) -> str:  # fmt: skip
        """ImageCreate with fromSrc: a root file system tarball as a one-layer image."""
        from sangja.image import archive

        try:
            image_id = archive.import_rootfs(self.store, src, name, changes=list(changes),
                                             message=message, platform=platform)  # fmt: skip
        except archive.ArchiveError as e:
            raise InvalidArgument(str(e), errno=e.errno)
        self.event("import", image_id, **({"name": name} if name else {}))
        return image_id

    # ---- removal -----------------------------------------------------------------------
    def remove(self, ref: str, force: bool = False) -> list[dict]:
        """`image rm REF`: a name among others is only untagged; the last name (or the id)
        deletes the image and whatever only it used; refused while a container holds it
        (with `force`: its names go, the image stays for the container, dangling).
        -> [{"Untagged": name (familiar, as dockerd)} | {"Deleted": id}, ...]"""
        from sangja.image.reference import familiar

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
                return [{"Untagged": familiar(name)}]
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
            out += [{"Untagged": familiar(n)} for n, _ in refs]
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


def _unix(created) -> int:
    """An image config's RFC 3339 `created` -> Unix seconds (0 if absent)."""
    if not created:
        return 0
    from sangja.engine.units import parse_timestamp

    try:
        return int(parse_timestamp(created))
    except ValueError:
        return 0


def _reference_match(names: list[str], patterns: list[str]) -> bool:
    """Docker's `reference` filter: a name (familiar form) or NAME:TAG matches the glob."""
    import fnmatch

    from sangja.image.reference import familiar, split_name

    for full in names:
        fam = familiar(full)
        repo = familiar(split_name(full)[0])
        for p in patterns:
            if fnmatch.fnmatchcase(fam, p) or fnmatch.fnmatchcase(repo, p):
                return True
    return False


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
