""".dockerignore patterns, with Docker's rules (moby/patternmatcher).

One pattern a line; `#` starts a comment line; blank lines are skipped; a leading `!`
makes an exception (the path is included again).  Patterns are cleaned as paths
(`./a//b/` is `a/b`, a leading `/` is dropped) and match paths relative to the context
root with Go's filepath.Match rules (`*` and `?` never match `/`, `[a-z]` classes, `\\`
escapes) plus `**`, which matches any number of directories (none too).  A pattern that
matches a directory matches everything under it.  The last pattern that matches a path
decides.
"""

from __future__ import annotations

import re


class Pattern:
    __slots__ = ("text", "exclusion", "regex", "ndirs")

    def __init__(self, text: str, exclusion: bool):
        self.text, self.exclusion = text, exclusion
        self.ndirs = len(text.split("/"))
        self.regex = re.compile(_to_regex(text), re.S)

    def match(self, path: str) -> bool:
        return self.regex.match(path) is not None


def _clean(p: str) -> str:
    parts: list[str] = []
    for part in p.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not parts:
                continue  # above the root: the root
            continue
        parts.append(part)
    return "/".join(parts) or "."


def _to_regex(p: str) -> str:
    out = ["^"]
    i, n = 0, len(p)
    while i < n:
        c = p[i]
        i += 1
        if c == "*":
            if i < n and p[i] == "*":
                i += 1
                if i < n and p[i] == "/":
                    i += 1
                if i >= n:
                    out.append(".*")
                else:
                    out.append("(.*/)?")
            else:
                out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\":
            if i < n:
                out.append(re.escape(p[i]))
                i += 1
            else:
                out.append("\\\\")
        elif c == "[":
            # a class, as Go writes it: [^...] or [!...] negate, \ escapes
            j = i
            cls = ["["]
            if j < n and p[j] in "^!":
                cls.append("^")
                j += 1
            while j < n and p[j] != "]":
                if p[j] == "\\" and j + 1 < n:
                    cls.append(re.escape(p[j + 1]))
                    j += 2
                    continue
                cls.append("\\\\" if p[j] == "\\" else ("\\[" if p[j] == "[" else p[j]))
                j += 1
            if j >= n:  # no closing bracket: a literal [
                out.append("\\[")
                continue
            cls.append("]")
            out.append("".join(cls))
            i = j + 1
        else:
            out.append(re.escape(c))
    out.append("$")
    return "".join(out)


class Matcher:
    def __init__(self, lines: list[str]):
        self.patterns: list[Pattern] = []
        for line in lines:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            excl = line.startswith("!")
            if excl:
                line = line[1:].strip()
            if not line:
                continue
            p = _clean(line)
            if p == ".":
                # "." (or "/") excludes the whole context, as in Docker
                p = "**"
            self.patterns.append(Pattern(p, excl))
        self.has_exceptions = any(p.exclusion for p in self.patterns)

    @classmethod
    def parse(cls, text: str | bytes) -> Matcher:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        return cls(text.splitlines())

    def __bool__(self):
        return bool(self.patterns)

    def excluded(self, rel: str) -> bool:
        """Is the context path `rel` (relative, '/'-separated) left out?"""
        rel = _clean(rel)
        if rel == ".":
            return False
        parts = rel.split("/")
        matched = False
        for p in self.patterns:
            m = p.match(rel)
            if not m and len(parts) > 1 and p.ndirs <= len(parts):
                m = p.match("/".join(parts[: p.ndirs]))
            if m:
                matched = not p.exclusion
        return matched

    def may_include_under(self, rel_dir: str) -> bool:
        """Can anything under the excluded directory `rel_dir` be included again by an
        exception?  (If not, a walk skips the directory.)"""
        if not self.has_exceptions:
            return False
        prefix = _clean(rel_dir)
        for p in self.patterns:
            if not p.exclusion:
                continue
            t = p.text
            if "**" in t or t.startswith(prefix + "/") or _wild_prefix(t, prefix):
                return True
        return False


def _wild_prefix(pattern: str, prefix: str) -> bool:
    """Could the pattern match something below `prefix` (its leading components match)?"""
    pp = pattern.split("/")
    dp = prefix.split("/")
    if len(pp) <= len(dp):
        return False
    return Pattern("/".join(pp[: len(dp)]), False).match(prefix)
