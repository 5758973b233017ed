"""The Dockerfile parser: text -> directives, global ARGs and stages of instructions.

As Docker's (BuildKit's frontend/dockerfile/parser): parser directives (`# escape=`,
`# syntax=`, `# check=`) only on the first lines, before any comment, blank line or
instruction; comments are lines whose first non-blank character is `#`; a line ending in
the escape character (then only blanks) goes on on the next line (comment lines and
blank lines inside are skipped); the first word is the instruction (any case); leading
`--name=value` words are its flags; heredocs (`<<EOF`, `<<-EOF`, `<<"EOF"`) follow RUN,
COPY and ADD lines.  Arguments are kept as written: substitution happens when a step is
run (engine/build/words.py), because it needs the stage's environment.
"""

from __future__ import annotations

import json
import re

from sangja.errors import SangjaError

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_KNOWN_DIRECTIVES = ("escape", "syntax", "check")
_HEREDOC = re.compile(r"^(\d*)<<(-?)(.*)$")
_HEREDOC_CMDS = ("run", "copy", "add")

INSTRUCTIONS = (
    "add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from", "healthcheck",
    "label", "maintainer", "onbuild", "run", "shell", "stopsignal", "user", "volume",
    "workdir",
)  # fmt: skip


class DockerfileError(SangjaError):
    """The Dockerfile cannot be parsed; the text names the line."""


class Heredoc:
    __slots__ = ("name", "content", "expand", "chomp", "fd")

    def __init__(self, name, content, expand=True, chomp=False, fd=None):
        self.name, self.content, self.expand, self.chomp, self.fd = name, content, expand, chomp, fd

    def __repr__(self):
        return f"Heredoc({self.name!r}, {self.content!r})"


class Instruction:
    """One instruction.  cmd: lower case ('run'); original: the logical line as written
    (continuations joined); rest: what follows the keyword and the flags; args: the
    parsed arguments (exec/JSON form: the list; shell form: [rest] for RUN, CMD,
    ENTRYPOINT, SHELL; words for COPY/ADD/VOLUME/EXPOSE/FROM; see parse_args); json:
    the JSON form was used; flags: [(name, value or None)]; heredocs: [Heredoc]."""

    __slots__ = ("cmd", "original", "rest", "args", "json", "flags", "heredocs", "line",
                 "pairs", "sub")  # fmt: skip

    def __init__(self, cmd, original, rest, line, flags=(), heredocs=()):
        self.cmd, self.original, self.rest, self.line = cmd, original, rest, line
        self.flags = list(flags)
        self.heredocs = list(heredocs)
        self.args: list[str] = []
        self.json = False
        self.pairs: list[tuple[str, str | None]] = []  # ENV, LABEL, ARG
        self.sub: Instruction | None = None  # ONBUILD's instruction

    def flag(self, name: str, default=None):
        """The last value of --name (True for a bare --name)."""
        out = default
        for n, v in self.flags:
            if n == name:
                out = True if v is None else v
        return out

    def flag_all(self, name: str) -> list[str]:
        return [v for n, v in self.flags if n == name and v is not None]

    def __repr__(self):
        return f"Instruction({self.original!r} @ {self.line})"


class Stage:
    __slots__ = ("index", "name", "base", "platform", "instructions", "from_instr")

    def __init__(self, index, name, base, platform, from_instr):
        self.index, self.name, self.base, self.platform = index, name, base, platform
        self.from_instr = from_instr
        self.instructions: list[Instruction] = []

    def __repr__(self):
        return f"Stage({self.index}, {self.name!r}, {self.base!r})"


class Dockerfile:
    __slots__ = ("directives", "escape", "meta_args", "stages", "warnings")

    def __init__(self):
        self.directives: dict[str, str] = {}
        self.escape = "\\"
        self.meta_args: list[Instruction] = []  # ARGs before the first FROM
        self.stages: list[Stage] = []
        self.warnings: list[str] = []


# ---- lines -> instructions ---------------------------------------------------------------


def _is_comment(line: str) -> bool:
    return line.lstrip(" \t").startswith("#")


def _continues(line: str, esc: str) -> tuple[str, bool]:
    """(line without a trailing escape, True if it goes on): the escape character, then
    only blanks, ends the line (as Docker's regexp, even when it is doubled)."""
    stripped = line.rstrip(" \t\r")
    if stripped.endswith(esc):
        return stripped[:-1], True
    return line.rstrip("\r"), False


def parse(text: str | bytes, name: str = "Dockerfile") -> Dockerfile:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    df = Dockerfile()
    lines = text.split("\n")
    i = 0
    # directives: the first lines only
    while i < len(lines):
        m = _DIRECTIVE.match(lines[i].rstrip("\r"))
        if not m:
            break
        key, value = m.group(1).lower(), m.group(2)
        if key not in _KNOWN_DIRECTIVES:
            break  # an ordinary comment: directives end here
        if key in df.directives:
            raise DockerfileError(f"{name}:{i + 1}: only one {key} parser directive can be used")
        df.directives[key] = value
        i += 1
    esc = df.directives.get("escape", "\\")
    if esc not in ("\\", "`"):
        raise DockerfileError(f"{name}: invalid escape token '{esc}' does not match ` or \\")
    df.escape = esc
    instrs: list[Instruction] = []
    while i < len(lines):
        raw = lines[i]
        start = i + 1
        i += 1
        if not raw.strip() or _is_comment(raw):
            continue
        text_, more = _continues(raw, esc)
        parts = [text_]
        while more and i < len(lines):
            nxt = lines[i]
            i += 1
            if _is_comment(nxt):
                continue
            if not nxt.strip():
                df.warnings.append(f"{name}:{i}: empty continuation line")
                continue
            text_, more = _continues(nxt, esc)
            parts.append(text_)
        logical = "".join(parts).strip()
        instr = _instruction(logical, start, esc, name)
        if instr.cmd in _HEREDOC_CMDS:
            i = _read_heredocs(instr, lines, i, esc, name)
        instrs.append(instr)
    _stages(df, instrs, name)
    return df


def _read_heredocs(instr: Instruction, lines, i, esc, name) -> int:
    marks = []
    for w in _raw_words(instr.rest, esc):
        m = _HEREDOC.match(w)
        if not m or not m.group(3):
            continue
        word = m.group(3)
        expand = True
        if len(word) >= 2 and word[0] == word[-1] and word[0] in "'\"":
            word, expand = word[1:-1], False
        marks.append(Heredoc(word, "", expand, m.group(2) == "-", m.group(1) or None))
    for h in marks:
        body = []
        while True:
            if i >= len(lines):
                raise DockerfileError(f"{name}:{instr.line}: unterminated heredoc {h.name}")
            ln = lines[i].rstrip("\r")
            i += 1
            check = ln.lstrip("\t") if h.chomp else ln
            if check == h.name:
                break
            body.append(check if h.chomp else ln)
        h.content = "\n".join(body) + "\n" if body else ""
        instr.heredocs.append(h)
    return i


def _raw_words(s: str, esc: str) -> list[str]:
    """Words split at blanks outside quotes; quotes and escapes kept (moby's parseWords)."""
    out, cur, quote, in_word = [], [], "", False
    k = 0
    while k < len(s):
        c = s[k]
        if not quote and c in " \t":
            if in_word:
                out.append("".join(cur))
                cur, in_word = [], False
            k += 1
            continue
        in_word = True
        if c == esc and k + 1 < len(s) and quote != "'":
            cur.append(c + s[k + 1])
            k += 2
            continue
        if quote and c == quote:
            quote = ""
        elif not quote and c in "'\"":
            quote = c
        cur.append(c)
        k += 1
    if in_word:
        out.append("".join(cur))
    return out


# the flags each instruction has (Docker's and BuildKit's); any other is a parse error.
# Some are known but not done (COPY --parents, --exclude): the step says so.
FLAGS = {
    "from": ("platform",),
    "run": ("mount", "network", "security"),
    "copy": ("from", "chown", "chmod", "link", "parents", "exclude"),
    "add": ("chown", "chmod", "link", "checksum", "keep-git-dir", "exclude"),
    "healthcheck": ("interval", "timeout", "start-period", "start-interval", "retries"),
}


def _instruction(logical: str, line: int, esc: str, name: str) -> Instruction:
    m = re.match(r"(\S+)\s*(.*)$", logical, re.S)
    cmd = m.group(1).lower()
    rest = m.group(2)
    if cmd not in INSTRUCTIONS:
        raise DockerfileError(f"{name}:{line}: unknown instruction: {m.group(1)}")
    flags = []
    if cmd not in ("env", "label", "arg", "maintainer", "onbuild"):
        rest, flags = _flags(rest, esc)
        known = FLAGS.get(cmd, ())
        for f, _ in flags:
            if f not in known:
                takes = ", ".join("--" + k for k in known) or "none"
                raise DockerfileError(f"{name}:{line}: unknown flag: {f} ({cmd.upper()} takes"
                                      f" {takes})")  # fmt: skip
    instr = Instruction(cmd, logical, rest, line, flags)
    parse_args(instr, esc, name)
    return instr


def _flags(rest: str, esc: str) -> tuple[str, list]:
    flags = []
    while rest.startswith("--"):
        words = _raw_words(rest, esc)
        if not words:
            break
        w = words[0]
        if w == "--":
            rest = rest[2:].lstrip()
            break
        key, eq, val = w[2:].partition("=")
        if eq and len(val) >= 2 and val[0] == val[-1] and val[0] in "'\"":
            val = val[1:-1]
        flags.append((key.lower(), val if eq else None))
        rest = rest[len(w) :].lstrip()
    return rest, flags


def _json_list(rest: str):
    s = rest.strip()
    if not s.startswith("["):
        return None
    try:
        v = json.loads(s)
    except ValueError:
        return None
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return v
    return None


def _name_vals(instr: Instruction, esc: str, name: str, legacy_ok: bool = True):
    words = _raw_words(instr.rest, esc)
    if not words:
        raise DockerfileError(
            f"{name}:{instr.line}: {instr.cmd.upper()} requires at least one argument"
        )
    if "=" not in words[0]:
        if not legacy_ok:
            raise DockerfileError(
                f"{name}:{instr.line}: {instr.cmd.upper()} names can not be blank"
            )
        # legacy form: NAME VALUE (the rest of the line is the value)
        key = words[0]
        value = instr.rest[len(key) :].strip()
        if not value and instr.cmd != "arg":
            raise DockerfileError(
                f"{name}:{instr.line}: {instr.cmd.upper()} must have two arguments"
            )
        return [(key, value)]
    out = []
    for w in words:
        k, eq, v = w.partition("=")
        if not eq:
            raise DockerfileError(f"{name}:{instr.line}: Syntax error - can't find = in {w!r}."
                                  " Must be of the form: name=value")  # fmt: skip
        if not k:
            raise DockerfileError(
                f"{name}:{instr.line}: {instr.cmd.upper()} names can not be blank"
            )
        out.append((k, v))
    return out


def parse_args(instr: Instruction, esc: str = "\\", name: str = "Dockerfile") -> None:
    cmd, rest = instr.cmd, instr.rest
    where = f"{name}:{instr.line}"
    if cmd in ("run", "cmd", "entrypoint", "shell"):
        lst = _json_list(rest)
        if lst is not None:
            instr.args, instr.json = lst, True
        elif cmd == "shell":
            raise DockerfileError(f"{where}: SHELL requires the arguments to be in JSON form")
        else:
            instr.args = [rest] if rest.strip() or cmd != "run" else []
        if cmd == "run" and not instr.args and not instr.heredocs:
            raise DockerfileError(f"{where}: RUN requires at least one argument")
    elif cmd in ("copy", "add", "volume"):
        lst = _json_list(rest)
        if lst is not None:
            instr.args, instr.json = lst, True
        else:
            instr.args = rest.split()
        if cmd == "volume" and not instr.args:
            raise DockerfileError(f"{where}: VOLUME requires at least one argument")
        if cmd in ("copy", "add") and len(instr.args) < 2:
            raise DockerfileError(
                f"{where}: {cmd.upper()} requires at least two arguments, but only one was"
                " provided. Destination could not be determined"
            )
    elif cmd in ("from", "expose"):
        instr.args = rest.split()
        if not instr.args:
            raise DockerfileError(f"{where}: {cmd.upper()} requires at least one argument")
    elif cmd in ("workdir", "user", "maintainer", "stopsignal"):
        if not rest.strip():
            raise DockerfileError(f"{where}: {cmd.upper()} requires exactly one argument")
        instr.args = [rest.strip()]
    elif cmd in ("env", "label"):
        instr.pairs = _name_vals(instr, esc, name)
    elif cmd == "arg":
        words = _raw_words(rest, esc)
        if not words:
            raise DockerfileError(f"{where}: ARG requires at least one argument")
        for w in words:
            k, eq, v = w.partition("=")
            if not k:
                raise DockerfileError(f"{where}: ARG names can not be blank")
            instr.pairs.append((k, v if eq else None))
    elif cmd == "healthcheck":
        words = rest.split(None, 1)
        if not words:
            raise DockerfileError(f"{where}: HEALTHCHECK requires an argument")
        typ = words[0].upper()
        if typ == "NONE":
            if len(words) > 1:
                raise DockerfileError(f"{where}: HEALTHCHECK NONE takes no arguments")
            instr.args = ["NONE"]
        elif typ == "CMD":
            body = words[1] if len(words) > 1 else ""
            lst = _json_list(body)
            if lst is not None:
                instr.args, instr.json = ["CMD", *lst], True
            elif body.strip():
                instr.args = ["CMD-SHELL", body.strip()]
            else:
                raise DockerfileError(f"{where}: HEALTHCHECK CMD requires a command")
        else:
            raise DockerfileError(f"{where}: Unknown type {words[0]!r} in HEALTHCHECK"
                                  " (try CMD)")  # fmt: skip
    elif cmd == "onbuild":
        if not rest.strip():
            raise DockerfileError(f"{where}: ONBUILD requires at least one argument")
        sub = _instruction(rest.strip(), instr.line, esc, name)
        if sub.cmd in ("onbuild", "from", "maintainer"):
            raise DockerfileError(f"{where}: {sub.cmd.upper()} isn't allowed as an ONBUILD trigger")
        instr.sub = sub


def _stages(df: Dockerfile, instrs: list[Instruction], name: str) -> None:
    cur: Stage | None = None
    for ins in instrs:
        if ins.cmd == "from":
            args = ins.args
            stage_name = None
            if len(args) == 3 and args[1].lower() == "as":
                stage_name = args[2].lower()
                if not re.fullmatch(r"[a-z][a-z0-9-_.]*", stage_name):
                    raise DockerfileError(f"{name}:{ins.line}: invalid name for build stage:"
                                          f" {args[2]!r}, name can't start with a number or"
                                          " contain symbols")  # fmt: skip
            elif len(args) != 1:
                raise DockerfileError(f"{name}:{ins.line}: FROM requires either one or three"
                                      " arguments")  # fmt: skip
            for s in df.stages:
                if stage_name and s.name == stage_name:
                    raise DockerfileError(f"{name}:{ins.line}: duplicate stage name {args[2]!r}")
            cur = Stage(len(df.stages), stage_name, args[0], ins.flag("platform"), ins)
            df.stages.append(cur)
        elif cur is None:
            if ins.cmd != "arg":
                raise DockerfileError(f"{name}:{ins.line}: no build stage in current context"
                                      f" ({ins.cmd.upper()} before the first FROM)")  # fmt: skip
            df.meta_args.append(ins)
        else:
            cur.instructions.append(ins)
    if not df.stages:
        raise DockerfileError(f"{name}: file with no instructions" if not instrs
                              else f"{name}: no FROM instruction")  # fmt: skip
