"""The Dockerfile parser, variable substitution and .dockerignore rules, against the
behaviour Docker documents (no containers: these run anywhere)."""

import pytest

from sangja.engine.build import dockerfile as D
from sangja.engine.build import stages
from sangja.engine.build import words as W
from sangja.engine.build.ignore import Matcher


def test_directives_continuations_comments():
    df = D.parse(
        "# syntax=docker/dockerfile:1\n# escape=`\n\n"
        "FROM busybox\n"
        "# a comment\n"
        "RUN echo a `\n"
        "  # a comment inside is skipped\n"
        "    b `\n"
        "c\n"
        "ENV A=1\n"
    )
    assert df.directives == {"syntax": "docker/dockerfile:1", "escape": "`"}
    assert df.escape == "`"
    run = df.stages[0].instructions[0]
    assert run.cmd == "run" and run.args == ["echo a     b c"]
    assert run.original == "RUN echo a     b c"


def test_directive_after_a_comment_is_a_comment():
    df = D.parse("# hello\n# escape=`\nFROM x\nRUN a \\\n b\n")
    assert df.escape == "\\" and df.directives == {}
    assert df.stages[0].instructions[0].args == ["a  b"]


def test_exec_and_shell_forms_and_flags():
    df = D.parse('FROM --platform=linux/amd64 busybox AS Build\n'
                 'RUN ["echo", "a b"]\n'
                 'RUN --mount=type=cache,target=/c --network=none echo hi\n'
                 'CMD [not json\n'
                 'COPY --from=build --chown=1:2 a b /dst/\n'
                 'COPY ["a b", "/x y"]\n')  # fmt: skip
    s = df.stages[0]
    assert s.name == "build" and s.platform == "linux/amd64" and s.base == "busybox"
    r1, r2, c, cp, cpj = s.instructions
    assert r1.json and r1.args == ["echo", "a b"]
    assert r2.flag_all("mount") == ["type=cache,target=/c"] and r2.flag("network") == "none"
    assert r2.args == ["echo hi"] and not r2.json
    assert c.args == ["[not json"] and not c.json
    assert cp.flag("from") == "build" and cp.flag("chown") == "1:2"
    assert cp.args == ["a", "b", "/dst/"]
    assert cpj.args == ["a b", "/x y"]


def test_env_label_arg_forms():
    df = D.parse('FROM x\nENV A B C\nENV a=1 b="2 3" c=4\\ 5\nLABEL "k 1"=v\nARG X Y=2\n')
    e1, e2, lb, arg = df.stages[0].instructions
    assert e1.pairs == [("A", "B C")]  # the legacy form: the rest of the line
    assert e2.pairs == [("a", "1"), ("b", '"2 3"'), ("c", "4\\ 5")]
    assert lb.pairs == [('"k 1"', "v")]
    assert arg.pairs == [("X", None), ("Y", "2")]
    env = {}
    assert [W.word(v, env) for _, v in e2.pairs] == ["1", "2 3", "4 5"]


def test_heredocs():
    df = D.parse("FROM x\nRUN <<EOF\necho one\necho two\nEOF\n"
                 "COPY <<-'A' <<B /dst/\n\tliteral $X\n\tA\nb $X\nB\nENV Z=1\n")  # fmt: skip
    run, copy, env = df.stages[0].instructions
    assert [(h.name, h.content, h.expand) for h in run.heredocs] == [
        ("EOF", "echo one\necho two\n", True)]  # fmt: skip
    assert [(h.name, h.content, h.expand, h.chomp) for h in copy.heredocs] == [
        ("A", "literal $X\n", False, True), ("B", "b $X\n", True, False)]  # fmt: skip
    assert env.pairs == [("Z", "1")]


def test_stages_and_meta_args():
    df = D.parse("ARG V=1\nFROM busybox:${V} AS a\nFROM a\nCOPY --from=0 /x /y\nFROM scratch\n")
    assert [s.name for s in df.stages] == ["a", None, None]
    assert df.meta_args[0].pairs == [("V", "1")]
    p = stages.plan(df, {"V": "2"}, None, "\\")
    assert [s.index for s in p.needed] == [2]  # the last stage needs nothing else
    p = stages.plan(df, {"V": "2"}, None, "\\")
    p2 = stages.plan(D.parse("FROM busybox AS a\nFROM busybox AS b\nFROM a\nCOPY --from=b /x /y\n"),
                     {}, None, "\\")  # fmt: skip
    assert [s.index for s in p2.needed] == [0, 1, 2] and p2.width == 2
    p3 = stages.plan(D.parse("FROM busybox AS a\nFROM busybox AS b\nFROM a\n"), {}, "b", "\\")
    assert [s.index for s in p3.needed] == [1]
    with pytest.raises(stages.StageError, match="failed to reach build target nope"):
        stages.plan(df, {}, "nope", "\\")


@pytest.mark.parametrize("text,err", [
    ("RUN x\n", "no build stage in current context"),
    ("FROM x\nFOO y\n", "unknown instruction: FOO"),
    ("FROM x\nCOPY a\n", "COPY requires at least two arguments"),
    ("FROM x\nSHELL sh -c\n", "SHELL requires the arguments to be in JSON form"),
    ("FROM x\nENV a=1 b\n", "can't find = in 'b'"),
    ("FROM x\nONBUILD FROM y\n", "FROM isn't allowed as an ONBUILD trigger"),
    ("FROM x AS 1a\n", "invalid name for build stage"),
    ("FROM x AS a\nFROM y AS a\n", "duplicate stage name"),
    ("FROM x\nRUN <<EOF\nno end\n", "unterminated heredoc EOF"),
    ("", "file with no instructions"),
    ("FROM x\nRUN --bogus true\n", "Dockerfile:2: unknown flag: bogus"),
    ("FROM --pull=always x\n", "Dockerfile:1: unknown flag: pull"),
    ("FROM x\nONBUILD COPY --frm=a b c\n", "unknown flag: frm"),
])  # fmt: skip
def test_parse_errors(text, err):
    with pytest.raises(D.DockerfileError, match=err):
        D.parse(text)


ENV = {"A": "a", "E": "", "SP": "x y"}


@pytest.mark.parametrize("src,want", [
    ("$A", "a"), ("${A}", "a"), ("${A}b", "ab"), ("$Ab", ""), ("${N:-d}", "d"), ("${E:-d}", "d"),
    ("${E-d}", ""), ("${N-d}", "d"), ("${A:+x}", "x"), ("${E:+x}", ""), ("${E+x}", "x"),
    ("${N+x}", ""), ("${N:-$A}", "a"), ("'$A'", "$A"), ('"$A"', "a"), ("\\$A", "$A"),
    ('"\\$A"', "$A"), ('"a\\b"', "a\\b"), ("a\\ b", "a b"), ("$", "$"), ("$ x", "$ x"),
    ("${A:-}", "a"), ('"${N:-a b}"', "a b"),
])  # fmt: skip
def test_substitution(src, want):
    assert W.word(src, ENV) == want


def test_substitution_words_and_errors():
    assert W.words("$SP 'q r' s", ENV) == ["x", "y", "q r", "s"]
    assert W.words('"$SP" z', ENV) == ["x y", "z"]
    assert W.word("`$A", ENV, escape="`") == "$A"
    with pytest.raises(W.SubstitutionError, match="missing '}'"):
        W.word("${A", ENV)
    with pytest.raises(W.SubstitutionError, match="bad substitution"):
        W.word("${:}", ENV)
    with pytest.raises(W.SubstitutionError, match="N: must be set"):
        W.word("${N:?must be set}", ENV)
    with pytest.raises(W.SubstitutionError, match="double-quote"):
        W.word('"open', ENV)


@pytest.mark.parametrize("lines,path,excluded", [
    (["*.md"], "README.md", True),
    (["*.md"], "docs/README.md", False),  # * stays in one directory
    (["**/*.md"], "docs/a/README.md", True),
    (["**/*.md"], "README.md", True),
    (["docs"], "docs/a/b.txt", True),  # a directory's contents go with it
    (["docs", "!docs/keep.txt"], "docs/keep.txt", False),
    (["docs", "!docs/keep.txt"], "docs/drop.txt", True),
    (["*.txt", "!a.txt", "a.txt"], "a.txt", True),  # the last match decides
    (["/build/"], "build/x", True),
    (["./tmp//x"], "tmp/x", True),
    (["a?c"], "abc", True),
    (["a?c"], "a/c", False),
    (["[a-c]x"], "bx", True),
    (["[!a-c]x"], "bx", False),
    (["# comment", ""], "# comment", False),
    (["."], "anything", True),
    (["temp?"], "temp1/inner", True),
])  # fmt: skip
def test_dockerignore(lines, path, excluded):
    assert Matcher(lines).excluded(path) is excluded


def test_dockerignore_exceptions_reach_into_excluded_dirs():
    m = Matcher(["docs", "!docs/keep/**"])
    assert m.excluded("docs/x") and not m.excluded("docs/keep/y")
    assert m.may_include_under("docs")
    assert not Matcher(["docs"]).may_include_under("docs")


def test_commit_changes():
    from sangja.engine.build import changes

    base = {"Env": ["PATH=/bin", "A=1"], "Cmd": ["sh"], "WorkingDir": "/srv"}
    got = changes.apply(base, ['CMD ["app", "--flag"]', "ENV B=${A}2", "EXPOSE 8080 53/udp",
                               "LABEL a=b", "WORKDIR sub", "USER app:app",
                               'VOLUME ["/data"]', "STOPSIGNAL SIGTERM",
                               "HEALTHCHECK --interval=1s CMD true", "ONBUILD RUN x"])  # fmt: skip
    assert got == {
        "Env": ["PATH=/bin", "A=1", "B=12"], "Cmd": ["app", "--flag"], "WorkingDir": "/srv/sub",
        "ExposedPorts": {"8080/tcp": {}, "53/udp": {}}, "Labels": {"a": "b"}, "User": "app:app",
        "Volumes": {"/data": {}}, "StopSignal": "SIGTERM", "OnBuild": ["RUN x"],
        "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 1_000_000_000},
    }  # fmt: skip
    assert base["Cmd"] == ["sh"]  # not changed in place
    assert "Cmd" not in changes.apply(base, ["ENTRYPOINT /x"])  # drops an inherited Cmd
    with pytest.raises(changes.ChangeError, match="RUN is not a valid change command"):
        changes.apply(base, ["RUN true"])
    with pytest.raises(changes.ChangeError, match="invalid signal"):
        changes.apply(base, ["STOPSIGNAL NOPE"])
