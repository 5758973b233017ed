"""`container commit` and `container export`: a container's changes as a new image, and its
whole root file system as a tar.

commit: the container's upper dir (only its own changes: the mount points the engine makes
live in its init layer, engine/paths.py) is written as one layer on its image with the C
layer writer (sangja.image.commit), and the image's config is the container's as Docker
keeps it -- the image config with what `create` was given over it (Cmd, Entrypoint, Env,
WorkingDir, User, Labels, ExposedPorts, Volumes, StopSignal, Healthcheck) -- changed by
`-c` instructions (engine/build/changes.py: CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK,
LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR).  A running container is paused for the
time of the write unless `pause=False` (then a file that changes while it is read fails
the commit, naming it).  The history entry is the container's command, with `-m` as its
comment; `-a` is the author.

export: the merged root (the image's layers, the init layer and the changes) as a plain
tar, from the overlay the container runs on, or from one mounted for the time of the
export (under the container's lock) when it does not run.
"""

from __future__ import annotations

import contextlib
import copy
import os

from sangja.engine.errors import EngineError, InvalidArgument
from sangja.errors import SangjaError

PAUSE_MARKER = "commit-pause"  # in the container's dir while a commit holds it paused

_MERGED = ("Labels", "ExposedPorts", "Volumes")
_SCALARS = ("WorkingDir", "User", "StopSignal", "Healthcheck", "OnBuild", "Shell")


def container_config(image_cfg: dict, cfg: dict) -> dict:
    """The image's config with the container's create options over it, as Docker merges
    them when it creates a container."""
    out = copy.deepcopy(image_cfg or {})
    if cfg.get("Entrypoint") is not None:
        ep = list(cfg["Entrypoint"])
        out["Entrypoint"] = None if ep in ([], [""]) else ep
        out["Cmd"] = list(cfg["Cmd"]) if cfg.get("Cmd") else None
    elif cfg.get("Cmd"):
        out["Cmd"] = list(cfg["Cmd"])
    if cfg.get("Env"):
        from sangja.image.runspec import merge_env

        out["Env"] = merge_env(out.get("Env") or [], cfg["Env"])
    for k in _MERGED:
        if cfg.get(k):
            out[k] = {**(out.get(k) or {}), **cfg[k]}
    for k in _SCALARS:
        if cfg.get(k):
            out[k] = copy.deepcopy(cfg[k])
    return {k: v for k, v in out.items() if v is not None}


def commit(cs, ref: str, repo_tag: str | None = None, changes=(), message: str = "",
           author: str = "", pause: bool = True) -> str:  # fmt: skip
    """-> the new image's id."""
    from sangja.engine.build.changes import ChangeError, apply
    from sangja.image import reference
    from sangja.image.commit import CommitError, Step
    from sangja.image.commit import commit as commit_image
    from sangja.image.runspec import image_config

    refs = []
    if repo_tag:
        try:
            r = reference.parse(repo_tag)
        except reference.ReferenceError as e:
            raise InvalidArgument(f"invalid reference format: {repo_tag}: {e}")
        if r.digest:
            raise InvalidArgument(f"invalid reference format: {repo_tag}: a new image needs"
                                  " a tag, not a digest")  # fmt: skip
        refs.append(repo_tag)
    rec = cs.get(ref)
    image_conf = cs.store.config_of(rec.image)
    config = container_config(image_config(image_conf), rec.config)
    try:
        config = apply(config, list(changes))
    except ChangeError as e:
        raise InvalidArgument(str(e))
    args = _args(rec.config, image_config(image_conf))
    paused = False
    paths = cs.paths(rec.id)
    marker = os.path.join(paths.dir, PAUSE_MARKER)
    vfs = cs.storage(rec.id).name == "vfs"
    upper = paths.upper
    if vfs:
        # the changes are found by walking the root by path: it must stand still
        pause = True
        upper = os.path.join(paths.dir, "commit-changes")
    try:
        if pause and rec.state == "running":
            cs.pause(rec.id)
            paused = True
            # who paused it: a commit killed (-9) from here on is found out by the next
            # command that looks at the container (resume_orphaned), which resumes it
            from sangja.engine.records import proc_id

            with open(marker, "w") as f:
                f.write(proc_id())
            from sangja.engine.failpoints import failpoint

            failpoint("commit:paused")
        if vfs:
            from sangja.image import treecopy
            from sangja.image.store import remove_tree

            if os.path.lexists(upper):  # a commit killed before
                remove_tree(upper)
            try:
                treecopy.changes_tree([paths.init] + cs._image_lowers(rec.image),
                                      paths.rootfs, upper)  # fmt: skip
            except OSError as e:
                raise EngineError(f"commit {rec.name}: {e.filename}: {e.strerror}",
                                  errno=e.errno or 0)  # fmt: skip
        res = commit_image(
            cs.store, [Step(" ".join(args), root=upper, comment=message)],
            base=rec.image, config=config, refs=refs, author=author or None,
        )  # fmt: skip
    except CommitError as e:
        raise EngineError(f"commit {rec.name}: {e}", errno=e.errno)
    finally:
        if vfs and os.path.lexists(upper):
            from sangja.image.store import remove_tree

            with contextlib.suppress(OSError, SangjaError):
                remove_tree(upper)
        if paused:
            # the marker goes first: a stale one must never resume a pause of the user's
            with contextlib.suppress(FileNotFoundError):
                os.unlink(marker)
            with contextlib.suppress(EngineError):
                cs.unpause(rec.id)
    return res.image_id


def resume_orphaned(cs, rec) -> bool:
    """For Containers.observe: a container paused by a commit that was killed before it
    resumed it is resumed.  -> True if it was."""
    from sangja.engine.records import alive

    marker = os.path.join(cs.paths(rec.id).dir, PAUSE_MARKER)
    try:
        with open(marker) as f:
            owner = f.read().strip()
    except FileNotFoundError:
        return False
    if alive(owner):
        return False  # the commit is still writing
    with contextlib.suppress(FileNotFoundError):
        os.unlink(marker)
    try:
        cs.rt.resume(rec.id)
    except SangjaError:
        return False  # resumed meanwhile by another command that saw it
    return True


def _args(cfg: dict, icfg: dict) -> list[str]:
    from sangja.engine.ocispec import args_of

    try:
        return args_of(cfg, icfg, False)
    except EngineError:
        return []


def export(cs, ref: str, out_fd: int) -> None:
    """The container's root file system as a tar written to out_fd."""
    from sangja.image import pack
    from sangja.image.snapshot import is_mounted, mount_overlay, unmount

    rec = cs.get(ref)
    paths = cs.paths(rec.id)
    if cs.storage(rec.id).name == "vfs":  # a plain directory, never mounted
        running = rec.state in ("running", "paused")
        with contextlib.nullcontext() if running else cs._locked(rec.id):
            _write(pack, paths.rootfs, out_fd, rec)
        return
    if rec.state in ("running", "paused") and is_mounted(paths.rootfs):
        _write(pack, paths.rootfs, out_fd, rec)
        return
    with cs._locked(rec.id):
        mounted = False
        if not is_mounted(paths.rootfs):
            mount_overlay([paths.init] + cs._image_lowers(rec.image), paths.upper, paths.work,
                          paths.rootfs)  # fmt: skip
            mounted = True
        try:
            _write(pack, paths.rootfs, out_fd, rec)
        finally:
            if mounted:
                unmount(paths.rootfs)


def _write(pack, root: str, out_fd: int, rec) -> None:
    from sangja.errors import PackError

    try:
        pack.write_layer(root, out_fd, compression="none", one_file_system=True)
    except PackError as e:
        raise EngineError(f"export {rec.name}: {e}", errno=e.errno)
