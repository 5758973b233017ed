"""Variable substitution in Dockerfile words, as Docker's shell lexer does it.

    words.word('"$A"/${B:-x}', env)    -> one word, quotes removed, variables replaced
    words.words('$A b', env)            -> the words, split at unquoted blanks (a value
                                           from a variable is split too)

Rules (moby's frontend/dockerfile/shell): 'single quotes' are literal; in "double
quotes" only `$` is expanded and the escape character escapes `"`, `$` and itself;
elsewhere the escape character (`\\`, or `` ` `` with `# escape=`) makes the next
character literal.  `$NAME`, `${NAME}`, `${NAME:-word}` (unset or empty: word),
`${NAME-word}` (unset: word), `${NAME:+word}` (set and not empty: word), `${NAME+word}`
(set: word), `${NAME:?msg}` / `${NAME?msg}` (an error when unset or empty / unset).
The word after the modifier is processed the same way (nested variables).  A `$` not
followed by a name is a literal `$`.
"""

from __future__ import annotations

from sangja.errors import SangjaError

_SPECIAL = set("@*#?-$!0")


class SubstitutionError(SangjaError):
    pass


class _Scan:
    __slots__ = ("s", "i", "esc", "env", "used")

    def __init__(self, s: str, esc: str, env):
        self.s, self.i, self.esc, self.env = s, 0, esc, env
        self.used: set[str] = set()

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def next(self) -> str:
        c = self.peek()
        self.i += 1
        return c

    def lookup(self, name: str) -> tuple[str, bool]:
        self.used.add(name)
        v = self.env.get(name)
        return ("", False) if v is None else (v, True)


class _Words:
    """Word splitting as it goes: unquoted blanks (and blanks in expanded values) end a
    word; quoted text never does."""

    def __init__(self):
        self.words: list[str] = []
        self.cur: list[str] = []
        self.in_word = False

    def char(self, c: str, raw: bool = False):
        if not raw and c in " \t\n":
            self.end()
        else:
            self.cur.append(c)
            self.in_word = True

    def raw(self, s: str):
        self.cur.append(s)
        self.in_word = True

    def expanded(self, s: str):
        for c in s:
            self.char(c)

    def end(self):
        if self.in_word:
            self.words.append("".join(self.cur))
        self.cur, self.in_word = [], False

    def result(self) -> list[str]:
        self.end()
        return self.words


def _process(sc: _Scan, stop: str = "", words: _Words | None = None) -> str:
    out: list[str] = []
    while sc.i < len(sc.s):
        c = sc.peek()
        if stop and c == stop:
            sc.next()
            return "".join(out)
        if c == "$":
            v = _dollar(sc)
            out.append(v)
            if words is not None:
                words.expanded(v)
        elif c == "'":
            v = _single(sc)
            out.append(v)
            if words is not None:
                words.raw(v)
        elif c == '"':
            v = _double(sc)
            out.append(v)
            if words is not None:
                words.raw(v)
        else:
            c = sc.next()
            raw = False
            if c == sc.esc:
                if sc.i >= len(sc.s):
                    break  # an escape at the very end is dropped
                c = sc.next()
                raw = True
            out.append(c)
            if words is not None:
                words.char(c, raw)
    if stop:
        raise SubstitutionError("syntax error: missing '}'")
    return "".join(out)


def _single(sc: _Scan) -> str:
    sc.next()
    start = sc.i
    end = sc.s.find("'", start)
    if end < 0:
        raise SubstitutionError(
            "unexpected end of statement while looking for matching single-quote"
        )
    sc.i = end + 1
    return sc.s[start:end]


def _double(sc: _Scan) -> str:
    sc.next()
    out: list[str] = []
    while True:
        c = sc.peek()
        if c == "":
            raise SubstitutionError(
                "unexpected end of statement while looking for matching double-quote"
            )
        if c == '"':
            sc.next()
            return "".join(out)
        if c == "$":
            out.append(_dollar(sc))
            continue
        c = sc.next()
        if c == sc.esc:
            n = sc.peek()
            if n == "":
                continue
            if n in ('"', "$", sc.esc):
                c = sc.next()
        out.append(c)


def _name(sc: _Scan) -> str:
    c = sc.peek()
    if c.isdigit():
        start = sc.i
        while sc.peek().isdigit():
            sc.next()
        return sc.s[start : sc.i]
    if c in _SPECIAL and c:
        return sc.next()
    start = sc.i
    while True:
        c = sc.peek()
        if not c or not (c.isalnum() or c == "_"):
            break
        sc.next()
    return sc.s[start : sc.i]


def _dollar(sc: _Scan) -> str:
    sc.next()  # $
    if sc.peek() != "{":
        name = _name(sc)
        if not name:
            return "$"
        return sc.lookup(name)[0]
    sc.next()  # {
    c = sc.peek()
    if c == "":
        raise SubstitutionError("syntax error: missing '}'")
    if c in "{}:":
        raise SubstitutionError("syntax error: bad substitution")
    name = _name(sc)
    c = sc.next()
    if c == "":
        raise SubstitutionError("syntax error: missing '}'")
    if c == "}":
        return sc.lookup(name)[0]
    colon = c == ":"
    if colon:
        c = sc.next()
    if c not in ("-", "+", "?"):
        raise SubstitutionError(f"unsupported modifier ({c or 'EOF'}) in substitution")
    word = _process(sc, "}")
    value, is_set = sc.lookup(name)
    present = is_set and (value != "" or not colon)
    if c == "-":
        return value if present else word
    if c == "+":
        return word if present else ""
    if not present:  # ?
        raise SubstitutionError(f"{name}: {word or 'is not allowed to be unset'}")
    return value


def word(s: str, env, escape: str = "\\") -> str:
    """One word: quotes removed, variables substituted, blanks kept."""
    return _process(_Scan(s, escape, env))


def word_used(s: str, env, escape: str = "\\") -> tuple[str, set[str]]:
    """word(), and the names of the variables it looked up."""
    sc = _Scan(s, escape, env)
    return _process(sc), sc.used


def words(s: str, env, escape: str = "\\") -> list[str]:
    """The words of `s` after substitution (split at unquoted blanks)."""
    w = _Words()
    _process(_Scan(s, escape, env), words=w)
    return w.result()
