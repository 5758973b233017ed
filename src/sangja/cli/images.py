"""`sangja image ...`, `sangja login`, `sangja logout`: flags in, Docker's output out.  What
removing and pruning mean is the engine's (engine/images.py); the store, pull, archives are
sangja.image's."""

from __future__ import annotations

import sys

from sangja.cli.groups import Sub, dispatch, need
from sangja.cli.output import Struct, age, print_formatted, table
from sangja.cli.parse import B, M, UsageError, V, flags


def main(word: str, args: list[str], g: dict) -> int:
    if word == "login":
        return dispatch("login", {"login": Sub(LOGIN, "SERVER", "", login)}, {},
                        ["login", *args], g)  # fmt: skip
    if word == "logout":
        return dispatch("logout", {"logout": Sub({}, "SERVER", "", logout)}, {},
                        ["logout", *args], g)  # fmt: skip
    return dispatch("image", IMAGE, ALIASES, args, g)


def _store():
    from sangja.image.store import Store

    return Store()


def _images(frees=False):
    """The engine's image policy; `frees` (rm, prune): with the sweep of dead containers
    (engine/containers.py, imported only then), so a killed create holds no image."""
    from sangja.engine.images import Images

    if not frees:
        return Images(_store())
    from sangja.engine.containers import collect_dead

    return Images(_store(), collect_dead)


def image_pull(opts, pos, g):
    from sangja.image.progress import Progress

    need(pos, "image pull", 1, 1)
    p = Progress(sys.stdout, quiet=opts.get("quiet", False))
    res = _images().fetch(pos[0], platform=opts.get("platform"), progress=p,
                          all_tags=opts.get("all_tags", False),
                          signature_policy=opts.get("signature_policy"))  # fmt: skip
    sys.stdout.write(res.reference + "\n")
    return 0


def image_ls(opts, pos, g):
    from sangja.engine.units import human_size
    from sangja.image.reference import familiar, split_name

    need(pos, "image ls", 0, 1)
    images = _images().records(opts.get("filter") or [], name=pos[0] if pos else None)
    if opts.get("format") == "json":
        from sangja.jsonio import dumps_indent

        out = [{"Id": i.id, "RepoTags": i.tags, "RepoDigests": i.digests, "Created": i.created,
                "Size": i.size, "Platform": i.platform} for i in images]  # fmt: skip
        sys.stdout.write(dumps_indent(out) + "\n")
        return 0
    if opts.get("format"):
        raise UsageError(f"invalid --format {opts['format']!r} (want json)")
    trunc = (lambda s: s) if opts.get("no_trunc") else (lambda s: s.split(":", 1)[1][:12])
    if opts.get("quiet"):
        seen = []
        for i in images:
            if trunc(i.id) not in seen:
                seen.append(trunc(i.id))
        sys.stdout.write("".join(s + "\n" for s in seen))
        return 0
    digests = opts.get("digests")
    head = ["REPOSITORY", "TAG"] + (["DIGEST"] if digests else []) + ["IMAGE ID", "CREATED", "SIZE"]
    rows = [head]
    for i in images:
        by_repo = {}
        for d in i.digests:
            name, dg = split_name(d)
            by_repo.setdefault(name, dg)
        names = [split_name(t) for t in i.tags] or [(None, None)]
        for repo, tag in names:
            row = [familiar(repo) if repo else "<none>", tag or "<none>"]
            if digests:
                row.append(by_repo.get(repo, "<none>") if repo else
                           (next(iter(by_repo.values()), "<none>")))  # fmt: skip
            row += [trunc(i.id), age(i.created), human_size(i.size)]
            rows.append(row)
    table(rows)
    return 0


def image_tag(opts, pos, g):
    from sangja.image.reference import parse as parse_ref

    need(pos, "image tag", 2, 2)
    if parse_ref(pos[1]).digest:
        raise UsageError("image tag: the target must be a tag, not a digest")
    _images().tag(pos[0], pos[1])
    return 0


def image_rm(opts, pos, g):
    from sangja.errors import SangjaError
    from sangja.image import reference

    need(pos, "image rm", 1)
    images = _images(frees=True)
    failed = 0
    for s in pos:
        try:
            for item in images.remove(s, force=opts.get("force", False)):
                if "Untagged" in item:
                    sys.stdout.write(f"Untagged: {reference.familiar(item['Untagged'])}\n")
                else:
                    sys.stdout.write(f"Deleted: {item['Deleted']}\n")
        except SangjaError as e:
            sys.stderr.write(f"sangja: {e}\n")
            failed += 1
    return 1 if failed else 0


def image_inspect(opts, pos, g):
    from sangja.jsonio import dumps_indent

    need(pos, "image inspect", 1)
    images = _images()
    out = [images.inspect(s) for s in pos]
    if opts.get("format"):
        from sangja.cli.output import print_template

        return print_template(opts["format"], out)
    sys.stdout.write(dumps_indent(out) + "\n")
    return 0


def image_history(opts, pos, g):
    import time

    from sangja.engine.units import human_size

    need(pos, "image history", 1, 1)
    rows = [("IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT")]
    hist = _images().history(pos[0])
    if opts.get("quiet"):
        sys.stdout.write("".join(h["Id"] + "\n" for h in hist))
        return 0
    humane = opts.get("human", True)
    for h in hist:
        by = h["CreatedBy"].replace("\t", " ")  # as docker shows it
        if not opts.get("no_trunc") and len(by) > 45:
            by = by[:44] + "…"
        ident = h["Id"] if h["Id"] == "<missing>" or opts.get("no_trunc") else h["Id"][7:19]
        if humane:
            created = age(h["Created"])
        else:
            created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(h["Created"])) \
                if h["Created"] else ""  # fmt: skip
        size = human_size(h["Size"]) if humane else str(h["Size"])
        rows.append((ident, created, by, size, h["Comment"]))
    table(rows)
    return 0


def image_push(opts, pos, g):
    from sangja.image.progress import Progress

    need(pos, "image push", 1, 1)
    quiet = opts.get("quiet", False)
    key = None
    if opts.get("sign_by"):  # content trust: the key is opened before anything is pushed
        from sangja.cli.trust_cli import load_signing_key

        key = load_signing_key(opts["sign_by"])
    for res in _images().push(pos[0], progress=Progress(sys.stdout, quiet=quiet),
                              all_tags=opts.get("all_tags", False), sign_by=key):  # fmt: skip
        if quiet:
            sys.stdout.write(res.reference + "\n")
    return 0


def image_search(opts, pos, g):
    from sangja.image import search

    need(pos, "image search", 1, 1)
    try:
        limit = int(opts.get("limit", search.DEFAULT_LIMIT))
    except ValueError:
        raise UsageError(f"invalid --limit {opts['limit']!r}")
    found = search.search(pos[0], limit=limit, filters=opts.get("filter", []))
    if opts.get("format"):  # docker's fields, and Tags (not in its JSON: docker has none)
        rows = [Struct(f, {k: f[k] for k in sorted(f) if k != "Tags"})
                for f in (r.fields() for r in found)]  # fmt: skip
        return print_formatted(opts["format"], rows, search.HEADERS,
                               "{{.Name}}\t{{.Description}}\t{{.StarCount}}",
                               Struct(dict.fromkeys(search.HEADERS, "")))  # fmt: skip
    table(search.table(found, opts.get("no_trunc", False)))
    return 0


def image_prune(opts, pos, g):
    from sangja.engine.units import human_size

    need(pos, "image prune", 0, 0)
    res = _images(frees=True).prune(all=opts.get("all", False))
    deleted = res["ImagesDeleted"] or []
    if deleted:
        lines = [f"untagged: {d['Untagged']}" if "Untagged" in d else f"deleted: {d['Deleted']}"
                 for d in deleted]  # fmt: skip
        sys.stdout.write("Deleted Images:\n" + "".join(line + "\n" for line in lines) + "\n")
    sys.stdout.write(f"Total reclaimed space: {human_size(res['SpaceReclaimed'])}\n")
    return 0


def image_save(opts, pos, g):
    need(pos, "image save", 1)
    _images().save(pos, opts.get("output"), opts.get("format") or "docker-archive")
    return 0


def image_load(opts, pos, g):
    need(pos, "image load", 0, 0)
    lines = _images().load(opts.get("input"))
    if not opts.get("quiet"):
        sys.stdout.write("".join(line + "\n" for line in lines))
    return 0


def image_import(opts, pos, g):
    need(pos, "image import", 1, 2)
    image_id = _images().import_rootfs(
        pos[0], pos[1] if len(pos) > 1 else None, changes=opts.get("change", []),
        message=opts.get("message", ""), platform=opts.get("platform"),
    )  # fmt: skip
    sys.stdout.write(image_id + "\n")
    return 0


def login(opts, pos, g):
    from sangja.image import auth

    need(pos, "login", 1, 1)
    server = auth.normalize_key(pos[0])
    user = opts.get("username")
    if opts.get("password_stdin"):
        if opts.get("password"):
            raise UsageError("--password and --password-stdin are mutually exclusive")
        password = sys.stdin.read().rstrip("\n").rstrip("\r")
    else:
        password = opts.get("password")
    if not user:
        if not sys.stdin.isatty():
            raise UsageError("login: give the user name with -u (stdin is not a terminal)")
        user = input("Username: ").strip()
    if password is None:
        import getpass

        password = getpass.getpass("Password: ")
    if not user or not password:
        raise UsageError("login: user name and password must not be empty")
    from sangja.engine.images import Images

    Images.check_login(server, user, password)
    path = auth.store(server, user, password)
    sys.stdout.write(f"Login Succeeded (credentials saved in {path})\n")
    return 0


def logout(opts, pos, g):
    from sangja.image import auth

    need(pos, "logout", 1, 1)
    server = auth.normalize_key(pos[0])
    if auth.remove(server):
        sys.stdout.write(f"Removing login credentials for {server}\n")
    else:
        sys.stdout.write(f"Not logged in to {server}\n")
    return 0


LOGIN = flags(("-u", "--username", "username", V), ("-p", "--password", "password", V),
              ("--password-stdin", "password_stdin", B))  # fmt: skip

IMAGE = {
    "pull": Sub(flags(("-q", "--quiet", "quiet", B), ("--platform", "platform", V),
                      ("-a", "--all-tags", "all_tags", B),
                      ("--signature-policy", "signature_policy", V)),
                "[OPTIONS] NAME[:TAG|@DIGEST]", "download an image from a registry", image_pull),
    "ls": Sub(flags(("-q", "--quiet", "quiet", B), ("--digests", "digests", B),
                    ("--no-trunc", "no_trunc", B), ("-a", "--all", "all", B),
                    ("--format", "format", V), ("-f", "--filter", "filter", M)),
              "[OPTIONS] [REPOSITORY]", "list images", image_ls),
    "rm": Sub(flags(("-f", "--force", "force", B)), "IMAGE...",
              "remove images (untag; delete the last)", image_rm),
    "tag": Sub({}, "SOURCE TARGET", "give an image another name", image_tag),
    "inspect": Sub(flags(("-f", "--format", "format", V)), "IMAGE...",
                   "an image's details as JSON", image_inspect),
    "history": Sub(flags(("--no-trunc", "no_trunc", B), ("-q", "--quiet", "quiet", B),
                         ("-H", "--human", "human", B)),
                   "IMAGE", "the image's layers and how they were made", image_history),
    "push": Sub(flags(("-a", "--all-tags", "all_tags", B), ("-q", "--quiet", "quiet", B),
                      ("--sign-by", "--sign-by-sigstore-private-key", "sign_by", V)),
                "[OPTIONS] NAME[:TAG]", "upload an image to a registry", image_push),
    "search": Sub(flags(("--limit", "limit", V), ("--format", "format", V),
                        ("--no-trunc", "no_trunc", B), ("-f", "--filter", "filter", M)),
                  "[OPTIONS] [HOST[:PORT]/]TERM",
                  "list a registry's repositories named like TERM", image_search),
    "prune": Sub(flags(("-a", "--all", "all", B), ("-f", "--force", "force", B)),
                 "[OPTIONS]", "remove dangling (with -a: all unused) images and unnamed content",
                 image_prune),
    "save": Sub(flags(("-o", "--output", "output", V), ("--format", "format", V)),
                "[-o FILE] [--format docker-archive|oci-archive|oci-dir] IMAGE...",
                "write images to an archive (stdout by default)", image_save),
    "load": Sub(flags(("-i", "--input", "input", V), ("-q", "--quiet", "quiet", B)),
                "[-i FILE]", "load images from an archive (stdin by default)", image_load),
    "import": Sub(flags(("-c", "--change", "change", M), ("-m", "--message", "message", V),
                        ("--platform", "platform", V)),
                  "[OPTIONS] FILE|- [REPOSITORY[:TAG]]",
                  "make a one-layer image of a rootfs tarball", image_import),
}  # fmt: skip
ALIASES = {"list": "ls", "remove": "rm", "rmi": "rm"}
