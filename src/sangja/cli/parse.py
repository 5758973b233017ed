"""Flag parsing for every command of the CLI (runc's verbs and the engine's words).

A small table-driven parser: argparse alone costs more to import than a warm `runc state`.
Every flag takes `--flag v` and `--flag=v`; Go-style `-flag` works too, as in runc; short
boolean flags combine as Docker's do (`-it`, `-dit`).
"""

# A flag table maps each spelling to (key, kind): kind "v" takes a value, "b" is a boolean,
# "m" takes a value and repeats (a list).
V, B, M = "v", "b", "m"


class UsageError(Exception):
    """A bad command line: the message is printed as is; exit 1 (125 for run/create)."""


def flags(*specs):
    """('-q', '--quiet', 'quiet', B), ... -> the parser's table."""
    table = {}
    for *names, key, kind in specs:
        for n in names:
            table[n] = (key, kind)
    return table


def _bundle(name, table):
    """'-it' -> [('-i', spec), ('-t', spec)] when every letter is a short boolean (or the
    last one takes a value, as in `-ec CMD`); None otherwise."""
    if name.startswith("--") or len(name) < 3:
        return None
    out = []
    for i, c in enumerate(name[1:]):
        spec = table.get("-" + c)
        if spec is None or (spec[1] != B and i != len(name) - 2):
            return None
        out.append(("-" + c, spec))
    return out


def parse(argv, table, stop_at_positional=False):
    """-> (opts, positionals). Flags may follow positionals unless `stop_at_positional`."""
    opts, pos = {}, []
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            pos.extend(argv[i:])
            break
        if not a.startswith("-") or a == "-":
            pos.append(a)
            if stop_at_positional:
                pos.extend(argv[i:])
                break
            continue
        name, eq, val = a.partition("=")
        spec = table.get(name)
        if spec is None and not eq:
            combined = _bundle(name, table)
            if combined:
                for _short, (key, _kind) in combined[:-1]:
                    opts[key] = True
                name, spec = combined[-1]
        if spec is None and not name.startswith("--") and len(name) > 2:
            spec = table.get("-" + name)  # Go's flag package: -bundle == --bundle
        if spec is None:
            raise UsageError(f"flag provided but not defined: {name}")
        key, kind = spec
        if kind == B:
            if eq:
                if val.lower() not in ("true", "false", "1", "0"):
                    raise UsageError(f"invalid boolean value {val!r} for {name}")
                opts[key] = val.lower() in ("true", "1")
            else:
                opts[key] = True
            continue
        if not eq:
            if i >= len(argv):
                raise UsageError(f"flag needs an argument: {name}")
            val = argv[i]
            i += 1
        if kind == M:
            opts.setdefault(key, []).append(val)
        else:
            opts[key] = val
    return opts, pos
