"""The part of Go's text/template that `--format` uses in Docker's CLI: `{{.Field.Sub}}`,
`{{.}}`, pipelines (`{{.Names | upper}}`), the functions json, index, join, split, lower,
upper, title, len, printf, println, truncate, pad, and `{{if}}`/`{{else}}`/`{{range}}`/
`{{with}}`...`{{end}}` (with `{{-`/`-}}` trimming).  Values print as Go prints them
(a map as `map[k:v]`, a list as `[a b]`, a missing key as `<no value>`).  A dict is a Go
map; any other object is a Go struct: a field it lacks is an error, as in Go, and
`{{json .}}` of it is what its `as_json()` returns."""

from __future__ import annotations

import json
import re
import shlex

_ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.S)


class TemplateError(Exception):
    pass


class _Missing:
    def __str__(self):
        return "<no value>"


MISSING = _Missing()


def go_str(v) -> str:
    if v is None:
        return "<nil>"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{go_str(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(go_str(x) for x in v) + "]"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _field(obj, name):
    if isinstance(obj, dict):
        return obj.get(name, MISSING)
    attr = getattr(obj, name, MISSING)
    if attr is MISSING or name.startswith("_"):
        raise TemplateError(f"can't evaluate field {name} in type {type(obj).__name__}")
    return attr


def _json(v) -> str:
    def struct(o):
        if hasattr(o, "as_json"):
            return o.as_json()
        raise TypeError(f"{type(o).__name__} is not JSON")

    return json.dumps(v, separators=(",", ":"), default=struct)


def _path(obj, expr: str):
    if expr == ".":
        return obj
    cur = obj
    for part in expr.lstrip(".").split("."):
        if cur is MISSING or cur is None:
            return MISSING
        cur = _field(cur, part)
    return cur


def _index(obj, *keys):
    for k in keys:
        if isinstance(obj, dict):
            obj = obj.get(k, None)
        elif isinstance(obj, (list, tuple)):
            obj = obj[int(k)]
        else:
            raise TemplateError(f"can't index item of type {type(obj).__name__}")
    return obj


def _printf(fmt, *args):
    out = fmt.replace("%v", "%s").replace("%q", "%r")
    return out % tuple(go_str(a) if isinstance(a, (dict, list, bool)) or a is None else a
                       for a in args)  # fmt: skip


FUNCS = {
    "json": _json,
    "index": _index,
    "join": lambda v, sep: sep.join(go_str(x) for x in (v or [])),
    "split": lambda v, sep: str(v).split(sep),
    "lower": lambda v: go_str(v).lower(),
    "upper": lambda v: go_str(v).upper(),
    "title": lambda v: go_str(v).title(),
    "len": lambda v: len(v),
    "printf": _printf,
    "println": lambda *a: " ".join(go_str(x) for x in a) + "\n",
    "print": lambda *a: "".join(go_str(x) for x in a),
    "truncate": lambda v, n: go_str(v)[: int(n)],
    "pad": lambda v, left, right: " " * int(left) + go_str(v) + " " * int(right),
}


def _arg(tok: str, dot):
    if tok.startswith('"') or tok.startswith("`"):
        return tok[1:-1]
    if tok.startswith("."):
        return _path(dot, tok)
    if re.fullmatch(r"-?\d+", tok):
        return int(tok)
    if tok in ("true", "false"):
        return tok == "true"
    if tok == "nil":
        return None
    raise TemplateError(f'function "{tok}" not defined')


def _call(words: list[str], dot, piped=None):
    has_piped = piped is not None
    head = words[0]
    if head in FUNCS:
        args = [_arg(w, dot) for w in words[1:]]
        if has_piped:
            args.append(piped[0])
        try:
            return FUNCS[head](*args)
        except TypeError as e:
            raise TemplateError(f"wrong arguments for {head}: {e}")
    value = _arg(head, dot)
    if callable(value):
        return value(*[_arg(w, dot) for w in words[1:]])
    if len(words) > 1:
        raise TemplateError(f"can't give arguments to non-function {head}")
    return value


def _eval(expr: str, dot):
    value = None
    first = True
    for stage in _split_pipe(expr):
        words = _words(stage)
        if not words:
            raise TemplateError("missing value for command")
        value = _call(words, dot, None if first else (value,))
        first = False
    return value


def _split_pipe(expr: str) -> list[str]:
    out, cur, q = [], "", None
    for c in expr:
        if q:
            cur += c
            if c == q:
                q = None
        elif c in '"`':
            q = c
            cur += c
        elif c == "|":
            out.append(cur)
            cur = ""
        else:
            cur += c
    out.append(cur)
    return out


def _words(s: str) -> list[str]:
    lex = shlex.shlex(s, posix=False)
    lex.whitespace_split = True
    lex.quotes = '"`'
    return list(lex)


def _truthy(v) -> bool:
    return not (v is None or v is False or v is MISSING or v == 0 or v == "" or v == [] or
                v == {})  # fmt: skip


def _parse(text: str):
    """-> a tree: list of str | ("expr", e) | ("if"|"range"|"with", e, body, else)."""
    tokens = []
    pos = 0
    for m in _ACTION.finditer(text):
        chunk = text[pos : m.start()]
        if m.group(1):
            chunk = chunk.rstrip()
        if tokens and isinstance(tokens[-1], tuple) and tokens[-1][0] == "trim":
            chunk = chunk.lstrip()
            tokens.pop()
        tokens.append(chunk)
        tokens.append(("act", m.group(2)))
        if m.group(3):
            tokens.append(("trim",))
        pos = m.end()
    tail = text[pos:]
    if tokens and isinstance(tokens[-1], tuple) and tokens[-1][0] == "trim":
        tail = tail.lstrip()
        tokens.pop()
    tokens.append(tail)
    tokens = [t for t in tokens if not (isinstance(t, tuple) and t[0] == "trim")]
    if any(isinstance(t, str) and "{{" in t for t in tokens):
        raise TemplateError("unclosed action")

    def block(i, ends):
        out = []
        while i < len(tokens):
            t = tokens[i]
            if isinstance(t, str):
                if t:
                    out.append(t)
                i += 1
                continue
            a = t[1]
            word = a.split(None, 1)[0] if a else ""
            if word in ends:
                return out, i, word
            if word in ("if", "range", "with"):
                body, i, end = block(i + 1, ("else", "end"))
                other = []
                if end == "else":
                    other, i, end = block(i + 1, ("end",))
                if end != "end":
                    raise TemplateError(f"unexpected EOF in {word}")
                out.append((word, a.split(None, 1)[1] if " " in a else "", body, other))
                i += 1
                continue
            if a.startswith("/*"):
                i += 1
                continue
            out.append(("expr", a))
            i += 1
        if ends:
            raise TemplateError("unexpected EOF")
        return out, i, None

    tree, _, _ = block(0, ())
    return tree


def _render(tree, dot, out: list):
    for node in tree:
        if isinstance(node, str):
            out.append(node)
        elif node[0] == "expr":
            out.append(go_str(_eval(node[1], dot)))
        else:
            kind, expr, body, other = node
            v = _eval(expr, dot)
            if kind == "if":
                _render(body if _truthy(v) else other, dot, out)
            elif kind == "with":
                _render(body if _truthy(v) else other, v if _truthy(v) else dot, out)
            else:  # range
                items = list(v.values()) if isinstance(v, dict) else list(v or [])
                if not items:
                    _render(other, dot, out)
                for item in items:
                    _render(body, item, out)


class Template:
    def __init__(self, text: str):
        self.text = text
        try:
            self.tree = _parse(text)
        except TemplateError as e:
            raise TemplateError(f"template parsing error: {e}")

    def render(self, dot) -> str:
        out: list[str] = []
        try:
            _render(self.tree, dot, out)
        except (TemplateError, KeyError, IndexError, ValueError, TypeError) as e:
            raise TemplateError(f"template: executing: {e}")
        return "".join(out)


def tabulate(rows: list[list[str]], pad: int = 3) -> str:
    """Go's tabwriter as Docker sets it (minwidth 20? no: padding 3, cells left-aligned)."""
    if not rows:
        return ""
    n = max(len(r) for r in rows)
    widths = [0] * n
    for r in rows:
        for i, c in enumerate(r[:-1]):
            widths[i] = max(widths[i], len(c))
    lines = []
    for r in rows:
        cells = [c.ljust(widths[i] + pad) if i < len(r) - 1 else c for i, c in enumerate(r)]
        lines.append("".join(cells).rstrip() + "\n")
    return "".join(lines)
