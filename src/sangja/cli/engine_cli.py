"""The engine's words: `sangja image ...`, `sangja container ...`, `sangja login/logout`.

Loaded by cli/main.py only when one of these words is the command, so the runtime verbs
never pay for it (nor for sqlite3, http.client, ssl).  Flags parse as the runtime's do.
"""

from __future__ import annotations

import os
import sys

from sangja.cli.main import UsageError, parse

WORDS = ("image", "container", "login", "logout")

_V, _B, _M = "v", "b", "m"


def _flags(*specs):
    """('-q', '--quiet', 'quiet', 'b') ... -> the parser's table."""
    table = {}
    for *names, key, kind in specs:
        for n in names:
            table[n] = (key, kind)
    return table


IMAGE = {
    "pull": (_flags(("-q", "--quiet", "quiet", _B), ("--platform", "platform", _V),
                    ("-a", "--all-tags", "all_tags", _B),
                    ("--signature-policy", "signature_policy", _V)),
             "[OPTIONS] NAME[:TAG|@DIGEST]", "download an image from a registry"),
    "ls": (_flags(("-q", "--quiet", "quiet", _B), ("--digests", "digests", _B),
                  ("--no-trunc", "no_trunc", _B), ("-a", "--all", "all", _B),
                  ("--format", "format", _V)),
           "[OPTIONS]", "list images"),
    "rm": (_flags(("-f", "--force", "force", _B)), "IMAGE...",
           "remove images (untag; delete the last)"),
    "tag": ({}, "SOURCE TARGET", "give an image another name"),
    "inspect": ({}, "IMAGE...", "an image's details as JSON"),
    "history": (_flags(("--no-trunc", "no_trunc", _B), ("-q", "--quiet", "quiet", _B),
                       ("-H", "--human", "human", _B)),
                "IMAGE", "the image's layers and how they were made"),
    "push": (_flags(("-a", "--all-tags", "all_tags", _B), ("-q", "--quiet", "quiet", _B),
                    ("--sign-by", "--sign-by-sigstore-private-key", "sign_by", _V)),
             "[OPTIONS] NAME[:TAG]", "upload an image to a registry"),
    "search": (_flags(("--limit", "limit", _V), ("--format", "format", _V),
                      ("--no-trunc", "no_trunc", _B), ("-f", "--filter", "filter", _M)),
               "[OPTIONS] [HOST[:PORT]/]TERM", "list a registry's repositories named like TERM"),
    "prune": (_flags(("-a", "--all", "all", _B), ("-f", "--force", "force", _B)),
              "[OPTIONS]", "remove dangling (with -a: all unused) images and unnamed content"),
    "save": (_flags(("-o", "--output", "output", _V), ("--format", "format", _V)),
             "[-o FILE] [--format docker-archive|oci-archive|oci-dir] IMAGE...",
             "write images to an archive (stdout by default)"),
    "load": (_flags(("-i", "--input", "input", _V), ("-q", "--quiet", "quiet", _B)),
             "[-i FILE]", "load images from an archive (stdin by default)"),
    "import": (_flags(("-c", "--change", "change", _M), ("-m", "--message", "message", _V),
                      ("--platform", "platform", _V)),
               "[OPTIONS] FILE|- [REPOSITORY[:TAG]]", "make a one-layer image of a rootfs tarball"),
}  # fmt: skip
IMAGE_ALIASES = {"list": "ls", "remove": "rm", "rmi": "rm"}

CONTAINER = {
    "run": (_flags(("--rm", "rm", _B), ("-i", "--interactive", "interactive", _B),
                   ("-t", "--tty", "tty", _B), ("-it", "-ti", "it", _B),
                   ("-e", "--env", "env", _M), ("-w", "--workdir", "workdir", _V),
                   ("-u", "--user", "user", _V), ("--name", "name", _V),
                   ("--entrypoint", "entrypoint", _V), ("-h", "--hostname", "hostname", _V),
                   ("--platform", "platform", _V), ("--pull", "pull", _V),
                   ("--signature-policy", "signature_policy", _V)),
            "[OPTIONS] IMAGE [COMMAND [ARG...]]", "run a command in a new container (foreground)"),
    "ls": (_flags(("-a", "--all", "all", _B), ("-q", "--quiet", "quiet", _B)), "[OPTIONS]",
           "list containers"),
    "rm": (_flags(("-f", "--force", "force", _B)), "CONTAINER...", "remove containers"),
}  # fmt: skip
CONTAINER_ALIASES = {"list": "ls", "ps": "ls", "remove": "rm"}

LOGIN = _flags(("-u", "--username", "username", _V), ("-p", "--password", "password", _V),
               ("--password-stdin", "password_stdin", _B))  # fmt: skip


def _help(word, table):
    lines = [f"usage: sangja {word} COMMAND [options]", ""]
    for name, (_, args, doc) in table.items():
        lines.append(f"  {name:8} {args:45} {doc}")
    return "\n".join(lines) + "\n"


def main(word: str, args: list[str], g: dict) -> int:
    from sangja.log import Log

    try:
        log = Log(g.get("log"), g.get("log_format", "text"), g.get("debug", False))
    except ValueError as e:
        raise UsageError(str(e))
    if word == "login":
        return login(args)
    if word == "logout":
        return logout(args)
    table, aliases = (IMAGE, IMAGE_ALIASES) if word == "image" else (CONTAINER, CONTAINER_ALIASES)
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(_help(word, table))
        return 0 if args else 1
    sub = aliases.get(args[0], args[0])
    if sub not in table:
        raise UsageError(f"unknown command {word} {args[0]!r}")
    flags = dict(table[sub][0], **{"--help": ("help", _B)})
    stop = word == "container" and sub == "run"
    opts, pos = parse(args[1:], flags, stop_at_positional=stop)
    if opts.get("help"):
        by_key: dict[str, list[str]] = {}
        for name, (key, _) in table[sub][0].items():
            by_key.setdefault(key, []).append(name)
        flags = "".join(f"  {', '.join(names)}\n" for names in by_key.values())
        sys.stdout.write(f"usage: sangja {word} {sub} {table[sub][1]}\n{table[sub][2]}\n{flags}")
        return 0
    fn = globals()[f"{word}_{sub}"]
    return fn(opts, pos, g, log)


def _store():
    from sangja.image.store import Store

    return Store()


def _n(pos, cmd, lo, hi=None):
    if len(pos) < lo:
        raise UsageError(f"{cmd}: requires at least {lo} argument{'s' if lo > 1 else ''}")
    if hi is not None and len(pos) > hi:
        raise UsageError(f"{cmd}: too many arguments")


# ---- image --------------------------------------------------------------------------------


def image_pull(opts, pos, g, log):
    from sangja.image.progress import Progress
    from sangja.image.pull import pull

    _n(pos, "image pull", 1, 1)
    p = Progress(sys.stdout, quiet=opts.get("quiet", False))
    res = pull(pos[0], platform=opts.get("platform"), progress=p,
               all_tags=opts.get("all_tags", False),
               signature_policy=opts.get("signature_policy"))  # fmt: skip
    sys.stdout.write(res.reference + "\n")
    return 0


def _age(ts) -> str:
    import time

    if not ts:
        return "N/A"
    if isinstance(ts, str):
        import datetime

        try:
            ts = datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")[:26] + "+00:00"
                                                 if "." in ts else ts.replace("Z", "+00:00")
                                                 ).timestamp()  # fmt: skip
        except ValueError:
            return ts
    d = time.time() - ts
    for unit, secs in (("year", 365 * 86400), ("month", 30 * 86400), ("week", 7 * 86400),
                       ("day", 86400), ("hour", 3600), ("minute", 60)):  # fmt: skip
        if d >= secs * (2 if unit != "minute" else 1):
            n = int(d // secs)
            return f"{n} {unit}{'s' if n > 1 else ''} ago"
    return "Less than a minute ago" if d >= 0 else "in the future"


def _table(rows):
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        cells = (str(c).ljust(w) for c, w in zip(r, widths, strict=True))
        sys.stdout.write("   ".join(cells).rstrip() + "\n")


def image_ls(opts, pos, g, log):
    from sangja.image.progress import human
    from sangja.image.reference import familiar, split_name

    _n(pos, "image ls", 0, 1)
    store = _store()
    images = store.images()
    if pos:
        from sangja.image.reference import parse

        want = parse(pos[0]).name
        images = [i for i in images if any(split_name(t)[0] == want for t in i.tags + i.digests)]
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
            row += [trunc(i.id), _age(i.created), human(i.size)]
            rows.append(row)
    _table(rows)
    return 0


def image_tag(opts, pos, g, log):
    from sangja.image.reference import parse

    _n(pos, "image tag", 2, 2)
    store = _store()
    image_id = store.resolve(pos[0])
    ref = parse(pos[1])
    if ref.digest:
        raise UsageError("image tag: the target must be a tag, not a digest")
    store.tag(image_id, ref.tagged)
    return 0


def image_rm(opts, pos, g, log):
    from sangja.errors import SangjaError
    from sangja.image import reference
    from sangja.image.progress import human

    _n(pos, "image rm", 1)
    store = _store()
    failed = 0
    for s in pos:
        try:
            with store.lock():
                image_id = store.resolve(s)
                refs = store.refs_of(image_id)
                name = _full(s)
                if name not in dict(refs):
                    name = None  # asked by id
                tags = [n for n, k in refs if k == "tag"]
                if name is not None and [n for n in tags if n != name]:
                    store.untag(name)  # other names remain: only this one goes
                    sys.stdout.write(f"Untagged: {reference.familiar(name)}\n")
                    continue
                users = store.holders(image_id)
                if users and not opts.get("force"):
                    raise SangjaError(
                        f"conflict: unable to remove {s} (image {image_id[7:19]}): it is used by"
                        f" container {users[0][:12]} (remove the container first, or use -f)"
                    )
                if name is None and len(tags) > 1 and not opts.get("force"):
                    raise SangjaError(
                        f"conflict: unable to delete {image_id[7:19]} (must be forced): the image"
                        f" is referenced in {len(tags)} repositories"
                    )
                for n, _ in refs:
                    sys.stdout.write(f"Untagged: {reference.familiar(n)}\n")
                if users:  # -f: its names go, the image stays for its containers (as docker)
                    for n, _ in refs:
                        store.untag(n)
                    continue
                chains, freed = store.delete_image(image_id)
                sys.stdout.write(f"Deleted: {image_id}\n")
                for c in chains:
                    sys.stdout.write(f"Deleted: sha256:{c}\n")
                if freed:
                    log.debug(f"freed {human(freed)}")
        except SangjaError as e:
            sys.stderr.write(f"sangja: {e}\n")
            failed += 1
    return 1 if failed else 0


def _full(s: str) -> str | None:
    from sangja.image import reference

    try:
        ref = reference.parse(s)
    except reference.ReferenceError:
        return None
    return ref.with_digest(ref.digest) if ref.digest else ref.tagged


def image_inspect(opts, pos, g, log):
    from sangja.image import inspect
    from sangja.jsonio import dumps_indent

    _n(pos, "image inspect", 1)
    store = _store()
    out = [inspect.inspect(store, store.resolve(s)) for s in pos]
    sys.stdout.write(dumps_indent(out) + "\n")
    return 0


def image_history(opts, pos, g, log):
    from sangja.image import inspect
    from sangja.image.progress import human

    _n(pos, "image history", 1, 1)
    store = _store()
    rows = [("IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT")]
    hist = inspect.history(store, store.resolve(pos[0]))
    if opts.get("quiet"):
        sys.stdout.write("".join(h["id"] + "\n" for h in hist))
        return 0
    humane = opts.get("human", True)
    for h in hist:
        by = h["created_by"].replace("\t", " ")  # as docker shows it
        if not opts.get("no_trunc") and len(by) > 45:
            by = by[:44] + "…"
        ident = h["id"] if h["id"] == "<missing>" or opts.get("no_trunc") else h["id"][7:19]
        created = _age(h["created"]) if humane else h["created"] or ""
        size = human(h["size"]) if humane else str(h["size"])
        rows.append((ident, created, by, size, h["comment"]))
    _table(rows)
    return 0


def image_push(opts, pos, g, log):
    from sangja.image.progress import Progress
    from sangja.image.push import push

    _n(pos, "image push", 1, 1)
    quiet = opts.get("quiet", False)
    key = None
    if opts.get("sign_by"):  # content trust: the key is opened before anything is pushed
        from sangja.cli.trust_cli import load_signing_key

        key = load_signing_key(opts["sign_by"])
    for res in push(pos[0], progress=Progress(sys.stdout, quiet=quiet),
                    all_tags=opts.get("all_tags", False), sign_by=key):  # fmt: skip
        if quiet:
            sys.stdout.write(res.reference + "\n")
    return 0


def image_search(opts, pos, g, log):
    from sangja.image import search

    _n(pos, "image search", 1, 1)
    try:
        limit = int(opts.get("limit", search.DEFAULT_LIMIT))
    except ValueError:
        raise UsageError(f"invalid --limit {opts['limit']!r}")
    found = search.search(pos[0], limit=limit, filters=opts.get("filter", []))
    if opts.get("format"):
        sys.stdout.write("".join(line + "\n" for line in search.render(found, opts["format"])))
    else:
        _table(search.table(found, opts.get("no_trunc", False)))
    return 0


def image_prune(opts, pos, g, log):
    from sangja.image.progress import human

    _n(pos, "image prune", 0, 0)
    store = _store()
    deleted, freed = [], 0
    with store.lock():
        for img in store.images():
            unused = not store.holders(img.id)
            if unused and (not img.tags or opts.get("all")):
                for n in img.tags + img.digests:
                    deleted.append(f"untagged: {n}")
                _, f = store.delete_image(img.id)
                deleted.append(f"deleted: {img.id}")
                freed += f
        freed += store.collect_garbage()
    if deleted:
        sys.stdout.write("Deleted Images:\n" + "".join(d + "\n" for d in deleted) + "\n")
    sys.stdout.write(f"Total reclaimed space: {human(freed)}\n")
    return 0


def image_save(opts, pos, g, log):
    from sangja.image import archive

    _n(pos, "image save", 1)
    archive.save(_store(), pos, opts.get("output"), opts.get("format") or "docker-archive")
    return 0


def image_load(opts, pos, g, log):
    from sangja.image import archive

    _n(pos, "image load", 0, 0)
    lines = archive.load(_store(), opts.get("input"))
    if not opts.get("quiet"):
        sys.stdout.write("".join(line + "\n" for line in lines))
    return 0


def image_import(opts, pos, g, log):
    from sangja.image import archive

    _n(pos, "image import", 1, 2)
    image_id = archive.import_rootfs(
        _store(), pos[0], pos[1] if len(pos) > 1 else None, changes=opts.get("change", []),
        message=opts.get("message", ""), platform=opts.get("platform"),
    )  # fmt: skip
    sys.stdout.write(image_id + "\n")
    return 0


# ---- container ----------------------------------------------------------------------------


def _containers(g, log):
    from sangja.engine.container import Containers

    return Containers(runtime_root=g.get("root") or "/run/sangja", log=log)


def container_run(opts, pos, g, log):
    from sangja.engine.container import RunOptions

    if not pos:
        raise UsageError("container run: requires an image (sangja container run IMAGE [CMD...])")
    ep = opts.get("entrypoint")
    env = []
    for e in opts.get("env", []):
        if "=" not in e:  # -e NAME: take it from our environment, as docker does
            if e in os.environ:
                env.append(f"{e}={os.environ[e]}")
            continue
        env.append(e)
    o = RunOptions(
        image=pos[0], command=pos[1:], rm=opts.get("rm", False),
        interactive=opts.get("interactive", False) or opts.get("it", False),
        tty=opts.get("tty", False) or opts.get("it", False), env=env,
        workdir=opts.get("workdir"), user=opts.get("user"), name=opts.get("name"),
        entrypoint=[ep] if ep else ([] if ep == "" else None), hostname=opts.get("hostname"),
        platform=opts.get("platform"), pull=opts.get("pull", "missing"),
        signature_policy=opts.get("signature_policy"),
    )  # fmt: skip
    return _containers(g, log).run(o)


def container_ls(opts, pos, g, log):
    import json

    _n(pos, "container ls", 0, 0)
    cs = _containers(g, log)
    rows = [("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES")]
    for c in cs.list():
        if not opts.get("all") and c["status"] != "running":
            continue
        if opts.get("quiet"):
            sys.stdout.write(c["id"][:12] + "\n")
            continue
        status = c["status"]
        if status == "exited":
            status = f"Exited ({c['exit_code']})"
        cmd = " ".join(json.loads(c["command"])) or "(image default)"
        rows.append(
            (c["id"][:12], c["ref"], f'"{cmd[:20]}"', _age(c["created"]), status, c["name"])
        )
    if not opts.get("quiet"):
        _table(rows)
    return 0


def container_rm(opts, pos, g, log):
    from sangja.errors import SangjaError

    _n(pos, "container rm", 1)
    cs = _containers(g, log)
    failed = 0
    for s in pos:
        try:
            sys.stdout.write(cs.remove(s, force=opts.get("force", False)) + "\n")
        except SangjaError as e:
            sys.stderr.write(f"sangja: {e}\n")
            failed += 1
    return 1 if failed else 0


# ---- login --------------------------------------------------------------------------------


def login(args):
    from sangja.image import auth, registry

    opts, pos = parse(args, LOGIN)
    _n(pos, "login", 1, 1)
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
    c = registry.Client(server, credentials=(user, password))
    try:
        c.check_login()
    finally:
        c.close()
    path = auth.store(server, user, password)
    sys.stdout.write(f"Login Succeeded (credentials saved in {path})\n")
    return 0


def logout(args):
    from sangja.image import auth

    opts, pos = parse(args, {})
    _n(pos, "logout", 1, 1)
    server = auth.normalize_key(pos[0])
    if auth.remove(server):
        sys.stdout.write(f"Removing login credentials for {server}\n")
    else:
        sys.stdout.write(f"Not logged in to {server}\n")
    return 0
