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
    """`--format`: a Go template per item ('json': the item as JSON)."""
    from sangja.cli.gotemplate import Template, TemplateError
    from sangja.cli.parse import UsageError

    if fmt == "json":
        import json

        sys.stdout.write("".join(json.dumps(i, separators=(",", ":")) + "\n" for i in items))
        return 0
    try:
        t = Template(fmt)
        out = [t.render(i) for i in items]
    except TemplateError as e:
        raise UsageError(str(e))
    sys.stdout.write("".join(o + "\n" for o in out))
    return 0
