"""Output helpers of the engine's commands: Docker's tables, ages and `--format` templates."""

from __future__ import annotations

import sys
import time


def age(ts) -> str:
    """'3 minutes ago' from Unix seconds or an RFC 3339 time (image and container ages)."""
    from sangja.engine.units import human_duration

    if not ts:
        return "N/A"
    if isinstance(ts, str):
        from sangja.engine.units import parse_timestamp

        try:
            ts = parse_timestamp(ts)
        except ValueError:
            return ts
    d = time.time() - ts
    if d < 0:
        return "Less than a second ago"
    return f"{human_duration(d)} ago"


def table(rows) -> None:
    """Columns separated by three spaces, as Docker's tabwriter does."""
    from sangja.cli.gotemplate import tabulate

    sys.stdout.write(tabulate([[str(c) for c in r] for r in rows]))


def print_template(fmt: str, items) -> int:
    """`--format` of inspect: a Go template per item, as written ('json': each item as a
    JSON line)."""
    if fmt == "json":
        return _json_lines(items)
    sys.stdout.write("".join(o + "\n" for o in _render(fmt, items)))
    return 0


def print_formatted(fmt: str, items, titles=None, default_table: str = "", sample=None) -> int:
    """`--format` of the listing commands (ps, stats, image search), as Docker's
    cli/command/formatter does it: 'json' prints each item as a JSON line; 'table TEMPLATE'
    a header row (`titles`: field -> column title, or an object whose attributes are the
    titles) and a row per item, in columns as Docker's tabwriter sets them ('table' alone:
    `default_table`); anything else is a Go template per item.  `\t` and `\n` in the text
    are a tab and a newline.  Items are dicts (Go maps) or objects (Go structs: `Struct`);
    `sample`, an item of their kind, checks the template when there are none."""
    from sangja.cli.gotemplate import tabulate

    if fmt.strip() == "json":
        return _json_lines(items)
    is_table = fmt.startswith("table")
    if is_table:
        fmt = fmt[len("table") :].strip() or default_table
    fmt = fmt.replace("\\t", "\t").replace("\\n", "\n")
    if sample is not None and not items:
        _render(fmt, [sample])  # an unknown field is an error, whatever matched
    if not is_table:
        sys.stdout.write("".join(o + "\n" for o in _render(fmt, items)))
        return 0
    if titles is None or isinstance(titles, dict):
        titles = _Titles(titles or {})
    lines = _render(fmt, [titles, *items])
    sys.stdout.write(tabulate([line.split("\t") for line in lines]))
    return 0


def _render(fmt: str, items) -> list[str]:
    from sangja.cli.gotemplate import Template, TemplateError
    from sangja.cli.parse import UsageError

    try:
        t = Template(fmt)
        return [t.render(i) for i in items]
    except TemplateError as e:
        raise UsageError(str(e))


def _json_lines(items) -> int:
    import json

    sys.stdout.write("".join(json.dumps(i.as_json() if hasattr(i, "as_json") else i,
                                        separators=(",", ":")) + "\n"
                             for i in items))  # fmt: skip
    return 0


class Struct:
    """A result as Docker's formatters hand it to a template: a Go struct, its fields as
    attributes (a field it lacks is an error, as in Go); `json` is what `{{json .}}` and
    `--format json` print (the fields by default)."""

    def __init__(self, fields: dict, json: dict | None = None):
        self.__dict__.update(fields)
        self._json = fields if json is None else json

    def as_json(self) -> dict:
        return self._json


class _Titles:
    """The header row of a `table` format: each field's column title (its name in capitals
    when the table has none for it)."""

    def __init__(self, titles: dict):
        self._titles = titles

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self._titles.get(name, name.upper())


def size(n: float) -> str:
    """go-units HumanSize: 1000-based, 4 significant digits ('16.43MB', '0B')."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.4g}{unit}"
        n /= 1000
    return f"{n}B"


def confirm(warning: str) -> bool:
    """Docker's prompt: anything but y/yes (an empty stdin too) is a no."""
    sys.stdout.write(f"{warning}\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")
