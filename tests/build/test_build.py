"""`sangja build`: real builds (RUN in real containers, layers in a private store), each
instruction's effect on the image, the layer cache and what breaks it, multi-stage
builds, the context and .dockerignore, RUN's mounts, and failures that leave nothing."""

import hashlib
import io
import json
import os
import re
import signal
import subprocess
import tarfile
import threading
import time

import buildkit
import pytest
from buildkit import sangja_root, write_context


def build(sj, ctx, *args, ok=True, **kw):
    r = sj("build", *args, str(ctx), **kw)
    if ok:
        assert r.rc == 0, f"build failed: {r}"
    return r


def steps(out: str) -> dict[int, bool]:
    """{step number: served from the cache} from Docker's step lines."""
    res, cur = {}, None
    for line in out.splitlines():
        m = re.match(r"(?:\[\S+\] )?Step (\d+)/\d+ : ", line)
        if m:
            cur = int(m.group(1))
            res[cur] = False
        elif cur is not None and line.endswith("---> Using cache"):
            res[cur] = True
    return res


def run_in(sj, image, *cmd):
    return sj.ok("container", "run", "--rm", image, *cmd).out


def test_instructions_set_the_config(sj, busybox, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": f"""
FROM {busybox}
MAINTAINER someone
ENV A=1 B="two words"
ENV C ${{A}}-$B
LABEL org.test.a=1 "org.test.b"="x y"
EXPOSE 80 90/udp 8000-8001
VOLUME ["/data", "/logs"]
VOLUME /more
USER 1234:5
WORKDIR /srv
WORKDIR rel
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --timeout=3s --retries=2 CMD wget -q localhost || exit 1
SHELL ["/bin/sh", "-ec"]
CMD echo hi
ONBUILD RUN echo triggered
ENTRYPOINT ["/bin/echo"]
"""})  # fmt: skip
    r = build(sj, ctx, "-t", "cfg:1")
    assert "Successfully tagged cfg:1" in r.out
    img = sj.inspect("cfg:1")
    c = img["Config"]
    assert c["Env"][1:] == ["A=1", "B=two words", "C=1-two words"]
    assert c["Labels"] == {"org.test.a": "1", "org.test.b": "x y"}
    assert c["ExposedPorts"] == {"80/tcp": {}, "90/udp": {}, "8000/tcp": {}, "8001/tcp": {}}
    assert c["Volumes"] == {"/data": {}, "/logs": {}, "/more": {}}
    assert c["User"] == "1234:5" and c["WorkingDir"] == "/srv/rel"
    assert c["StopSignal"] == "SIGINT"
    assert c["Healthcheck"] == {"Test": ["CMD-SHELL", "wget -q localhost || exit 1"],
                                "Interval": 5_000_000_000, "Timeout": 3_000_000_000,
                                "Retries": 2}  # fmt: skip
    assert c["Shell"] == ["/bin/sh", "-ec"]
    assert c["OnBuild"] == ["RUN echo triggered"]
    # ENTRYPOINT drops the Cmd of the same stage?  No: only an inherited one.
    assert c["Entrypoint"] == ["/bin/echo"] and c["Cmd"] == ["/bin/sh", "-ec", "echo hi"]
    assert img["Author"] == "someone"
    # WORKDIR made its directories (as Docker does)
    with sangja_root(sj, "cfg:1") as root:
        assert os.path.isdir(root + "/srv/rel")
    hist = sj.ok("image", "history", "--no-trunc", "cfg:1").out
    assert '/bin/sh -c #(nop)  ENV A=1 B="two words"' in hist
    assert "#(nop)  EXPOSE 80 90/udp 8000-8001" in hist


def test_entrypoint_drops_an_inherited_cmd_and_onbuild_triggers(sj, busybox, tmp_path):
    base = write_context(tmp_path / "base", {"Dockerfile": f"""
FROM {busybox}
CMD ["inherited"]
ONBUILD RUN echo from-trigger > /trig
ONBUILD ENV T=1
"""})  # fmt: skip
    build(sj, base, "-t", "base:1")
    child = write_context(tmp_path / "child", {"Dockerfile": """
FROM base:1
ENTRYPOINT ["/bin/cat"]
"""})  # fmt: skip
    r = build(sj, child, "-t", "child:1")
    assert "# Executing 2 build triggers" in r.out
    c = sj.inspect("child:1")["Config"]
    assert c.get("Cmd") is None and c["Entrypoint"] == ["/bin/cat"]
    assert "T=1" in c["Env"] and not c.get("OnBuild")
    assert sj.ok("container", "run", "--rm", "child:1", "/trig").out == "from-trigger\n"


def test_run_forms_shell_and_streamed_output(sj, busybox, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": f"""
FROM {busybox}
RUN echo shell form $HOME && echo out-$((1+1))
RUN ["/bin/echo", "exec", "$HOME"]
SHELL ["/bin/sh", "-c", "echo shell-was $0 >&2; eval \\"$0\\"" ]
RUN echo via shell
RUN ["sh", "-c", "echo a > /file; mkdir -p /d/e; echo b > /d/e/f; rm /etc/group"]
"""})  # fmt: skip
    r = build(sj, ctx, "-t", "forms:1")
    assert "shell form /root\nout-2\n" in r.out
    assert "exec $HOME\n" in r.out  # exec form: no shell, no substitution
    assert "shell-was echo via shell\nvia shell\n" in r.out
    assert re.search(r"Step 2/6 : RUN echo shell form \$HOME.*\n ---> Running in \w+\n", r.out)
    assert run_in(sj, "forms:1", "cat", "/file", "/d/e/f") == "a\nb\n"
    # a deletion in a RUN is a whiteout in its layer: the file is gone from the image
    assert sj("container", "run", "--rm", "forms:1", "test", "-e", "/etc/group").rc == 1
    hist = sj.ok("image", "history", "--no-trunc", "forms:1").out
    assert "/bin/sh -c echo shell form $HOME && echo out-$((1+1))" in hist


def test_args_scoping_and_defaults(sj, busybox, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": f"""
ARG BASE={busybox}
ARG GLOBAL=g
FROM $BASE
RUN echo "global inside: [$GLOBAL]"
ARG GLOBAL
ARG LOCAL=l-${{GLOBAL}}
ARG FROMCLI
ENV LOCAL=env-wins
RUN echo "[$GLOBAL] [$LOCAL] [$FROMCLI] [${{http_proxy:-none}}] [$TARGETARCH]"
ARG TARGETARCH
RUN echo "arch=$TARGETARCH"
"""})  # fmt: skip
    r = build(sj, ctx, "-t", "args:1", "--build-arg", "FROMCLI=cli", "--build-arg",
              "http_proxy=http://proxy.invalid:3128", "--build-arg", "UNUSED=1")  # fmt: skip
    assert "global inside: []" in r.out  # not visible in a stage until declared there
    assert "[g] [env-wins] [cli] [http://proxy.invalid:3128] []" in r.out
    assert re.search(r"arch=(amd64|arm64)", r.out)
    assert "[Warning] One or more build-args [UNUSED] were not consumed" in r.out
    c = sj.inspect("args:1")["Config"]
    assert "LOCAL=env-wins" in c["Env"] and not any(e.startswith("FROMCLI") for e in c["Env"])
    hist = sj.ok("image", "history", "--no-trunc", "args:1").out
    assert "proxy.invalid" not in hist  # the proxy args stay out of the history
    assert "FROMCLI=cli" in hist  # the declared ones are in it, as Docker shows them


def test_build_args_from_the_environment_and_in_from(sj, busybox, tmp_path):
    """`--build-arg K` alone takes K from the environment (unset: the ARG's default is
    dropped as Docker drops it); a global ARG set by --build-arg picks the base image."""
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": """
ARG BASE=nosuch.invalid/image
FROM $BASE
ARG FROMENV=default
RUN echo "fromenv=[$FROMENV]"
"""})  # fmt: skip
    args = ("--build-arg", f"BASE={busybox}", "--build-arg", "FROMENV")
    r = build(sj, ctx, *args, env={"FROMENV": "from-the-env"})
    assert "fromenv=[from-the-env]" in r.out
    r = build(sj, ctx, *args)  # not in the environment: the default
    assert "fromenv=[default]" in r.out
    r = sj("build", ctx)
    assert r.rc == 1 and "Dockerfile:3: step 1/3 (FROM $BASE): image nosuch.invalid/image" in r.err


def test_cache_is_used_and_broken_exactly_where_inputs_change(sj, busybox, tmp_path):
    ctx = write_context(tmp_path / "ctx", {
        "a.txt": "a\n", "b.txt": "b\n",
        "Dockerfile": f"""
FROM {busybox}
ARG V=1
COPY a.txt /a.txt
RUN echo $V > /v
COPY b.txt /b.txt
RUN cat /a.txt /b.txt /v > /all
""",
    })  # fmt: skip
    r = build(sj, ctx, "-t", "c:1")
    assert steps(r.out) == {1: False, 2: False, 3: False, 4: False, 5: False, 6: False}
    first_id = sj.inspect("c:1")["Id"]
    r = build(sj, ctx, "-t", "c:1")
    assert steps(r.out) == {1: False, 2: True, 3: True, 4: True, 5: True, 6: True}
    assert sj.inspect("c:1")["Id"] == first_id  # the same image, as Docker gives it
    # a source's content: from the COPY that reads it
    with open(ctx + "/b.txt", "w") as f:
        f.write("B\n")
    r = build(sj, ctx, "-t", "c:1")
    assert steps(r.out) == {1: False, 2: True, 3: True, 4: True, 5: False, 6: False}
    assert run_in(sj, "c:1", "cat", "/all") == "a\nB\n1\n"
    # touching a file (mtime only) breaks nothing
    os.utime(ctx + "/a.txt", (1, 1))
    assert all(v for k, v in steps(build(sj, ctx, "-t", "c:1").out).items() if k > 1)
    # a source's mode, then its owner: from the COPY of that file on
    os.chmod(ctx + "/a.txt", 0o600)
    r = build(sj, ctx, "-t", "c:1")
    assert steps(r.out) == {1: False, 2: True, 3: False, 4: False, 5: False, 6: False}
    assert run_in(sj, "c:1", "stat", "-c", "%a %u", "/a.txt") == "600 0\n"
    os.chown(ctx + "/a.txt", 1000, 1000)
    r = build(sj, ctx, "-t", "c:1")
    assert steps(r.out) == {1: False, 2: True, 3: False, 4: False, 5: False, 6: False}
    # a build arg: the ARG itself and the COPY before any use are still cached; the RUN
    # that sees it is not
    r = build(sj, ctx, "-t", "c:1", "--build-arg", "V=2")
    assert steps(r.out) == {1: False, 2: True, 3: True, 4: False, 5: False, 6: False}
    assert run_in(sj, "c:1", "cat", "/all") == "a\nB\n2\n"
    # the same value again: cached again
    r = build(sj, ctx, "-t", "c:1", "--build-arg", "V=2")
    assert all(v for k, v in steps(r.out).items() if k > 1)
    # --no-cache runs everything
    r = build(sj, ctx, "-t", "c:1", "--no-cache")
    assert not any(steps(r.out).values())
    sj.assert_consistent()


def test_cache_of_a_directory_copy_sees_every_change_in_it(sj, busybox, tmp_path):
    """COPY of a directory: a file added, removed or renamed in it, a symlink's target, an
    xattr, an empty dir; a .dockerignore change that lets a file in; the COPY's own
    --chown: each breaks the cache from that COPY on, and nothing else does."""
    ctx = write_context(tmp_path / "ctx", {
        "pre.txt": "pre\n", "app/a": "a\n", "app/sub/b": "b\n", "app/ln": ("link", "a"),
        "app/skip.tmp": "t\n", ".dockerignore": "app/*.tmp\n",
        "Dockerfile": f"""
FROM {busybox}
COPY pre.txt /pre
COPY app /app
RUN find /app | sort > /listing
""",
    })  # fmt: skip

    def rebuilt_from(*args):
        s = steps(build(sj, ctx, "-t", "d:1", *args).out)
        changed = [k for k, cached in s.items() if k > 1 and not cached]
        return changed[0] if changed else None

    assert rebuilt_from() == 2
    assert rebuilt_from() is None
    edits = [
        (lambda: open(ctx + "/app/sub/new", "w").close(), 3),
        # back to the first content: that step's cache entry serves it again (as Docker)
        (lambda: os.unlink(ctx + "/app/sub/new"), None),
        (lambda: os.rename(ctx + "/app/sub/b", ctx + "/app/sub/c"), 3),
        (lambda: (os.unlink(ctx + "/app/ln"), os.symlink("sub", ctx + "/app/ln")), 3),
        (lambda: os.mkdir(ctx + "/app/empty"), 3),
        (lambda: os.chmod(ctx + "/app/empty", 0o700), 3),
        (lambda: open(ctx + "/.dockerignore", "w").write("app/nothing\n"), 3),
    ]
    try:
        os.setxattr(ctx + "/pre.txt", "user.probe", b"1")
        os.removexattr(ctx + "/pre.txt", "user.probe")
        edits.append((lambda: os.setxattr(ctx + "/app/a", "user.test", b"1"), 3))
    except OSError:
        pass  # no user xattrs on this file system: that edit is not tried
    for i, (edit, want) in enumerate(edits):
        edit()
        assert rebuilt_from() == want, f"edit {i}"
        assert rebuilt_from() is None, f"edit {i}, again"
    # a file outside what any COPY reads: nothing changes
    with open(ctx + "/unread.txt", "w") as f:
        f.write("x")
    assert rebuilt_from() is None
    listing = run_in(sj, "d:1", "cat", "/listing").split()
    assert "/app/skip.tmp" in listing and "/app/sub/c" in listing and "/app/sub/b" not in listing
    # the COPY's own flags are part of its step
    with open(ctx + "/Dockerfile") as f:
        df = f.read()
    with open(ctx + "/Dockerfile", "w") as f:
        f.write(df.replace("COPY app /app", "COPY --chown=1:1 app /app"))
    assert rebuilt_from() == 3
    assert run_in(sj, "d:1", "stat", "-c", "%u", "/app/a") == "1\n"


def test_failing_run_stops_with_its_code_and_leaves_nothing(sj, busybox, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": f"""
FROM {busybox}
RUN echo kept > /kept
RUN echo partial > /partial; echo to-stderr >&2; exit 7
RUN echo never
"""})  # fmt: skip
    r = sj("build", "-t", "bad:1", str(ctx))
    assert r.rc == 7, r
    assert "to-stderr" in r.out  # the RUN's output, streamed
    assert ("sangja: Dockerfile:4: step 3/4 (RUN echo partial > /partial; echo to-stderr >&2;"
            " exit 7): The command '/bin/sh -c echo partial > /partial; echo to-stderr >&2;"
            " exit 7' returned a non-zero code: 7") in r.err  # fmt: skip
    assert "never" not in r.out
    assert "bad:1" not in sj.ok("image", "ls").out
    # no half layer: every layer dir and blob is one the database names
    sj.assert_consistent()
    # the step before the failure is cached: the next build starts from there
    r = sj("build", str(ctx))
    assert r.rc == 7 and steps(r.out)[2]


def test_errors_of_the_context(sj, busybox, tmp_path):
    write_context(tmp_path / "outside.txt", {})
    ctx = write_context(
        tmp_path / "ctx", {"a": "a", "Dockerfile": f"FROM {busybox}\nCOPY ../outside.txt /x\n"}
    )
    r = sj("build", str(ctx))
    assert r.rc == 1 and "forbidden path outside the build context: ../outside.txt" in r.err
    # a symlink in the context is resolved inside it: an absolute or ..-climbing target
    # names a path of the context, never the host's
    outside = str(tmp_path / "outside.txt")
    os.symlink(outside, ctx + "/abs-link")
    os.symlink("../../../../../../../.." + outside, ctx + "/rel-link")
    for link in ("abs-link", "rel-link"):
        with open(ctx + "/Dockerfile", "w") as f:
            f.write(f"FROM {busybox}\nCOPY {link} /x\n")
        r = sj("build", str(ctx))
        assert r.rc == 1 and f"excluded by .dockerignore: stat {link}: file does not" in r.err
    os.makedirs(os.path.dirname(ctx + outside))
    with open(ctx + outside, "w") as f:
        f.write("the context's own\n")
    with open(ctx + "/Dockerfile", "w") as f:
        f.write(f"FROM {busybox}\nCOPY abs-link /a\nCOPY rel-link /r\n")
    build(sj, ctx, "-t", "links:1")
    assert run_in(sj, "links:1", "cat", "/a", "/r") == "the context's own\n" * 2
    with open(ctx + "/Dockerfile", "w") as f:
        f.write(f"FROM {busybox}\nCOPY missing /x\n")
    r = sj("build", str(ctx))
    assert r.rc == 1 and "file not found in build context or excluded by .dockerignore" in r.err
    with open(ctx + "/Dockerfile", "w") as f:
        f.write(f"FROM {busybox}\nCOPY a a /x\n")
    r = sj("build", str(ctx))
    assert r.rc == 1 and "the destination must be a directory and end with a /" in r.err
    with open(ctx + "/Dockerfile", "w") as f:
        f.write(f"FROM {busybox}\nCOPY *.nothing /x/\n")
    r = sj("build", str(ctx))
    assert r.rc == 1 and "no source files were specified" in r.err
    with open(ctx + "/Dockerfile", "w") as f:
        f.write(f"FROM {busybox}\nRUN nosuchcommand\n")
    r = sj("build", str(ctx))
    assert r.rc == 127 and "returned a non-zero code: 127" in r.err
    r = sj("build", "--platform", "linux/s390x", str(ctx))
    assert r.rc == 1 and "sangja builds for this host's platform only" in r.err
    with open(ctx + "/Dockerfile", "w") as f:
        f.write(f"FROM {busybox}\nFROBNICATE x\n")
    r = sj("build", str(ctx))
    assert r.rc == 1 and "Dockerfile:2: unknown instruction: FROBNICATE" in r.err
    r = sj("build", str(tmp_path / "nope"))
    assert r.rc == 1 and "unable to prepare context" in r.err


@pytest.mark.parametrize("body,err", [
    # found by the parser, before anything is pulled or run
    ("RUN x\n", "Dockerfile:1: no build stage in current context"),
    ("FROM {b}\n\nFROBNICATE x\n", "Dockerfile:3: unknown instruction: FROBNICATE"),
    ("FROM {b}\nCOPY \\\n  onlyone\n", "Dockerfile:2: COPY requires at least two arguments"),
    ("FROM {b}\nRUN <<EOF\necho never ends\n", "Dockerfile:2: unterminated heredoc EOF"),
    ("FROM {b} AS a\nFROM {b} AS a\n", "Dockerfile:2: duplicate stage name 'a'"),
    ("ARG B\nFROM $B\n", "Dockerfile:2: FROM $B: the base name is empty after substitution"),
    ("FROM {b}\nRUN true\nCOPY --from=2 /x /y\n",
     "Dockerfile:3: COPY --from=2: stage 2 does not come before this one"),
    # found when the step runs: the step and its line, after the steps before it ran
    ("FROM {b}\nRUN touch /made\nEXPOSE 80/tcp abc\n",
     "Dockerfile:3: step 3/3 (EXPOSE 80/tcp abc): EXPOSE: invalid port 'abc'"),
    ("FROM {b}\nRUN touch /made\nSTOPSIGNAL SIGFOO\n",
     "Dockerfile:3: step 3/3 (STOPSIGNAL SIGFOO): STOPSIGNAL: invalid signal 'SIGFOO'"),
    ("FROM {b}\nRUN true\nRUN --bogus=1 true\n",
     "Dockerfile:3: unknown flag: bogus (RUN takes --mount, --network, --security)"),
    ("FROM {b}\nWORKDIR --x /a\n", "Dockerfile:2: unknown flag: x (WORKDIR takes none)"),
    ("FROM {b}\nRUN touch /made\nCOPY --chown=nobody:nogroup --parents a /\n",
     "Dockerfile:3: step 3/3 (COPY --chown=nobody:nogroup --parents a /): COPY --parents is not"
     " supported"),
    ("FROM {b}\nRUN touch /made\nRUN --mount=type=bogus true\n",
     "Dockerfile:3: step 3/3 (RUN --mount=type=bogus true): unsupported mount type 'bogus'"),
    ("FROM {b}\nRUN touch /made\nCOPY --chown=nosuch a /\n",
     "Dockerfile:3: step 3/3 (COPY --chown=nosuch a /): unable to convert user 'nosuch'"),
    ("FROM {b}\nRUN touch /made\nRUN \\\n  exit 3\n",
     "Dockerfile:3: step 3/3 (RUN exit 3): The command '/bin/sh -c exit 3' returned a non-zero"
     " code: 3"),
])  # fmt: skip
def test_a_bad_dockerfile_names_its_line_and_leaves_nothing(sj, busybox, tmp_path, body, err):
    ctx = write_context(tmp_path / "ctx", {"a": "a", "Dockerfile": body.format(b=busybox)})
    before = sj.store_state()
    r = sj("build", "-t", "bad:1", ctx)
    lines = r.err.strip().splitlines()
    assert r.rc == (3 if "exit 3" in body else 1), r
    assert len(lines) == 1 and lines[0].startswith("sangja: " + err), r
    assert "Successfully built" not in r.out and "bad:1" not in sj.ok("image", "ls").out
    # nothing of the failed step is kept (the fixture checks mounts, runtime state and
    # build dirs): the store holds what it held, and the steps that ran, as cache entries
    after = sj.assert_consistent()
    if "RUN touch" not in body:
        assert after == before
    assert sj.ok("image", "ls", "-q", "-a").out.count("\n") <= 1  # busybox (no images made)


def test_copy_semantics(sj, busybox, tmp_path):
    ctx = write_context(tmp_path / "ctx", {
        "f1.txt": "1", "f2.txt": "2", "x.sh": ("#!/bin/sh\n", 0o755),
        "dir/sub/deep": "deep", "dir/top": "top", "dir/link": ("link", "top"),
        "tolink": ("link", "dir/top"),
        "Dockerfile": f"""
FROM {busybox}
RUN echo "app:x:1234:1234::/home/app:/bin/sh" >> /etc/passwd && echo "grp:x:77:" >> /etc/group
COPY f1.txt /file-as-name
COPY f1.txt /into/
COPY *.txt /glob/
COPY dir /contents
COPY dir/ /contents2/
COPY tolink /followed
COPY --chown=app:grp --chmod=640 f1.txt /new/deep/owned
COPY --chown=1234 dir /chowned/
WORKDIR /w
COPY x.sh rel/
""",
    })  # fmt: skip
    build(sj, ctx, "-t", "cp:1")
    out = run_in(sj, "cp:1", "sh", "-c",
                 "cd /; for p in file-as-name into/f1.txt glob/f1.txt glob/f2.txt contents/top"
                 " contents/sub/deep contents2/top followed new/deep/owned new/deep new"
                 " chowned chowned/sub/deep w/rel/x.sh; do"
                 " stat -c '%n %F %a %u:%g' $p; done; readlink contents/link;"
                 " test -e contents/dir || echo no-dir-itself")  # fmt: skip
    assert out.splitlines() == [
        "file-as-name regular file 644 0:0",
        "into/f1.txt regular file 644 0:0",
        "glob/f1.txt regular file 644 0:0",
        "glob/f2.txt regular file 644 0:0",
        "contents/top regular file 644 0:0",
        "contents/sub/deep regular file 644 0:0",
        "contents2/top regular file 644 0:0",
        "followed regular file 644 0:0",
        "new/deep/owned regular file 640 1234:77",
        "new/deep directory 755 1234:77",  # directories made for DEST: the --chown ids
        "new directory 755 1234:77",
        "chowned directory 755 1234:1234",  # no group given: the gid is the uid
        "chowned/sub/deep regular file 644 1234:1234",
        "w/rel/x.sh regular file 755 0:0",
        "top",
        "no-dir-itself",
    ]
    # history: Docker's lines, the source named by the digest of its content
    hist = sj.ok("image", "history", "--no-trunc", "cp:1").out
    for what, dst in (("file", "/file-as-name"), ("dir", "/contents"), ("multi", "/glob/")):
        line = rf"/bin/sh -c #\(nop\) COPY {what}:[0-9a-f]{{64}} in {dst} "
        assert re.search(line, hist), (line, hist)


def test_dockerignore_and_its_exceptions(sj, busybox, tmp_path):
    ctx = write_context(tmp_path / "ctx", {
        "keep.txt": "k", "drop.log": "d", "logs/a.log": "a", "logs/keep.me": "m",
        "secret/key": "s", "node_modules/x/y.js": "y", "src/a.py": "a", "src/b.pyc": "b",
        ".dockerignore": "*.log\n**/*.pyc\nsecret\nnode_modules\nlogs\n!logs/keep.me\n"
                         "# a comment\n",
        "Dockerfile": f"FROM {busybox}\nCOPY . /ctx/\n",
    })  # fmt: skip
    build(sj, ctx, "-t", "ign:1")
    with sangja_root(sj, "ign:1") as root:
        got = sorted(os.path.relpath(os.path.join(d, f), root + "/ctx")
                     for d, _, fs in os.walk(root + "/ctx") for f in fs)  # fmt: skip
    assert got == [".dockerignore", "Dockerfile", "keep.txt", "logs/keep.me", "src/a.py"]
    # an excluded file does not exist for COPY
    with open(ctx + "/Dockerfile", "w") as f:
        f.write(f"FROM {busybox}\nCOPY drop.log /\n")
    r = sj("build", ctx)
    assert r.rc == 1 and "excluded by .dockerignore" in r.err
    # <Dockerfile>.dockerignore beside the Dockerfile wins over the context's
    os.makedirs(tmp_path / "df")
    with open(tmp_path / "df" / "app.Dockerfile", "w") as f:
        f.write(f"FROM {busybox}\nCOPY . /ctx/\n")
    with open(tmp_path / "df" / "app.Dockerfile.dockerignore", "w") as f:
        f.write("*\n!keep.txt\n")
    build(sj, ctx, "-t", "ign:2", "-f", str(tmp_path / "df" / "app.Dockerfile"))
    with sangja_root(sj, "ign:2") as root:
        assert sorted(os.listdir(root + "/ctx")) == ["keep.txt"]
    # the Dockerfile and .dockerignore may exclude themselves: the build still reads the
    # Dockerfile, COPY does not see them
    with open(ctx + "/.dockerignore", "w") as f:
        f.write("Dockerfile\n.dockerignore\n*.log\nlogs\nsecret\nnode_modules\nsrc\n")
    with open(ctx + "/Dockerfile", "w") as f:
        f.write(f"FROM {busybox}\nCOPY . /ctx/\n")
    build(sj, ctx, "-t", "ign:3")
    with sangja_root(sj, "ign:3") as root:
        assert sorted(os.listdir(root + "/ctx")) == ["keep.txt"]


def test_multistage_target_and_parallel_stages(sj, busybox, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": f"""
FROM {busybox} AS one
RUN echo 1 > /one
FROM {busybox} AS two
RUN echo 2 > /two
FROM {busybox} AS broken
RUN echo broken stage ran; exit 1
FROM one AS three
RUN cat /one > /three
FROM {busybox}
COPY --from=three /three /got/three
COPY --from=1 /two /got/two
COPY --from={busybox} /bin/busybox /got/busybox
"""})  # fmt: skip
    r = build(sj, ctx, "-t", "ms:1")
    assert "broken stage ran" not in r.out  # not needed: not built
    assert run_in(sj, "ms:1", "cat", "/got/three", "/got/two") == "1\n2\n"
    # the stages one and two run in parallel: their lines carry the stage's name
    assert "[one] Step 2/" in r.out and "[two] Step 4/" in r.out
    r = build(sj, ctx, "-t", "ms:one", "--target", "one")
    assert re.findall(r"Step \d+/(\d+)", r.out) == ["2", "2"]
    assert run_in(sj, "ms:one", "cat", "/one") == "1\n"
    r = sj("build", "--target", "nope", ctx)
    assert r.rc == 1 and "failed to reach build target nope" in r.err
    # a failing stage among parallel ones ends the build, with its code
    with open(ctx + "/Dockerfile", "a") as f:
        f.write("COPY --from=broken /x /x\n")
    r = sj("build", ctx)
    assert r.rc == 1 and "broken stage ran" in r.out and "returned a non-zero code: 1" in r.err


def test_heredocs(sj, busybox, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": f"""
FROM {busybox}
ARG WHO=world
RUN <<EOF
echo "hello $WHO" > /greeting
echo second line >> /greeting
EOF
RUN <<EOF
#!/bin/sh
echo "from a script: $0" > /script
EOF
COPY <<EOF /etc/conf.txt
who=$WHO
EOF
COPY <<'EOF' /literal.txt
who=$WHO
EOF
RUN cat <<EOF > /via-shell
shell heredoc $WHO
EOF
"""})  # fmt: skip
    build(sj, ctx, "-t", "here:1")
    out = run_in(sj, "here:1", "cat", "/greeting", "/script", "/etc/conf.txt", "/literal.txt",
                 "/via-shell")  # fmt: skip
    assert out.splitlines()[:2] == ["hello world", "second line"]
    assert out.splitlines()[2].startswith("from a script: ")
    assert out.splitlines()[3:] == ["who=world", "who=$WHO", "shell heredoc world"]


class _Server:
    """A loopback HTTP server (in the test's network namespace) for ADD of a URL."""

    def __init__(self, files):
        import http.server

        self.files = files = dict(files)

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = files.get(self.path)
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _tar(entries, mode="w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as t:
        for name, data, kw in entries:
            ti = tarfile.TarInfo(name)
            for k, v in kw.items():
                setattr(ti, k, v)
            if data is None:
                t.addfile(ti)
            else:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def test_add_local_tar_and_url(sj, busybox, tmp_path):
    tar = _tar([("pkg/", None, {"type": tarfile.DIRTYPE, "mode": 0o750, "uid": 5, "gid": 6}),
                ("pkg/file", b"in the tar\n", {"mode": 0o640, "uid": 7, "gid": 8})])  # fmt: skip
    import lzma

    xz = lzma.compress(_tar([("x.txt", b"from xz\n", {})], "w"), format=lzma.FORMAT_XZ)
    srv = _Server({"/dl/thing.txt": b"downloaded\n"})
    try:
        ctx = write_context(tmp_path / "ctx", {"a.tar.gz": tar, "b.tar.xz": xz, "Dockerfile": f"""
FROM {busybox}
ADD a.tar.gz /unpacked/
ADD b.tar.xz /xz
COPY a.tar.gz /copied/
ADD http://127.0.0.1:{srv.port}/dl/thing.txt /web/
ADD http://127.0.0.1:{srv.port}/dl/thing.txt /web-named
"""})  # fmt: skip
        build(sj, ctx, "-t", "add:1")
    finally:
        srv.close()
    out = run_in(sj, "add:1", "sh", "-c",
                 "cd /; stat -c '%n %a %u:%g' unpacked/pkg unpacked/pkg/file web/thing.txt"
                 " web-named; cat unpacked/pkg/file web/thing.txt; ls copied; cat xz/x.txt;"
                 " date -u -r web/thing.txt +%Y")  # fmt: skip
    assert out.splitlines() == ["unpacked/pkg 750 5:6", "unpacked/pkg/file 640 7:8",
                                "web/thing.txt 600 0:0", "web-named 600 0:0", "in the tar",
                                "downloaded", "a.tar.gz", "from xz", "2015"]  # fmt: skip


def test_add_url_cache_checksum_and_errors(sj, busybox, tmp_path):
    """ADD of a URL is fetched on every build and cached on what it fetched: the same
    content is served from the cache, a new content breaks it from that step; --checksum
    is verified; a URL that fails ends the build naming it, with nothing kept."""
    body = {"/f.txt": b"one\n"}
    srv = _Server(body)
    url = f"http://127.0.0.1:{srv.port}/f.txt"
    try:
        good = hashlib.sha256(b"one\n").hexdigest()
        df = (f"FROM {busybox}\nRUN echo before\nADD --checksum=sha256:{good} {url} /f\n"
              "RUN cat /f > /seen\n")  # fmt: skip
        ctx = write_context(tmp_path / "ctx", {"Dockerfile": df})
        assert steps(build(sj, ctx, "-t", "u:1").out) == {1: False, 2: False, 3: False, 4: False}
        assert steps(build(sj, ctx, "-t", "u:1").out) == {1: False, 2: True, 3: True, 4: True}
        srv.files["/f.txt"] = b"two\n"  # the same URL, another content: the checksum fails
        r = sj("build", "-t", "u:2", ctx)
        assert r.rc == 1 and f"ADD {url}: checksum mismatch: expected sha256:{good}" in r.err, r
        with open(ctx + "/Dockerfile", "w") as f:
            f.write(df.replace(f"--checksum=sha256:{good} ", ""))
        assert steps(build(sj, ctx, "-t", "u:1").out) == {1: False, 2: True, 3: False, 4: False}
        assert run_in(sj, "u:1", "cat", "/seen") == "two\n"
        with open(ctx + "/Dockerfile", "w") as f:
            f.write(df.replace("/f.txt", "/missing.txt"))
        r = sj("build", "-t", "u:3", ctx)
        assert r.rc == 1 and "Dockerfile:3: step 3/4 (ADD" in r.err and "404" in r.err, r
    finally:
        srv.close()
    assert "u:2" not in sj.ok("image", "ls").out and "u:3" not in sj.ok("image", "ls").out
    sj.assert_consistent()


@pytest.mark.parametrize("case,why", [
    ("dotdot", '"{up}{victim}": path escapes the layer root (".." component)'),
    ("symlink", '"link/victim": path escapes the layer root (through a symlink)'),
    ("relsymlink", '"rel/victim": path escapes the layer root (through a symlink)'),
    ("hardlink", '"hl": path escapes the layer root (".." component)'),
    ("absolute", '"/{victim}": path escapes the layer root (absolute name)'),
])  # fmt: skip
def test_add_of_a_hostile_tar_is_confined(sj, busybox, tmp_path, case, why):
    """ADD unpacks a local tar as a pulled layer is unpacked: an entry that would land
    outside the destination (.., an absolute name, through a symlink the tar made, a
    hardlink to a file outside) fails the step, and nothing is written anywhere."""
    victim = tmp_path / "victim"
    rel = str(victim).lstrip("/")
    up = "../" * 12
    entries = {
        "dotdot": [(up + rel, b"escaped", {})],
        "symlink": [("link", None, {"type": tarfile.SYMTYPE, "linkname": str(tmp_path)}),
                    ("link/victim", b"escaped", {})],
        "relsymlink": [("rel", None, {"type": tarfile.SYMTYPE, "linkname": up + str(tmp_path)}),
                       ("rel/victim", b"escaped", {})],
        "hardlink": [("hl", None, {"type": tarfile.LNKTYPE, "linkname": up + rel})],
        "absolute": [("/" + rel, b"escaped", {})],
    }[case]  # fmt: skip
    if case == "hardlink":
        victim.write_bytes(b"original")
    ctx = write_context(tmp_path / "ctx", {
        "ok.txt": "fine", "evil.tar.gz": _tar([("ok", b"fine", {})] + entries),
        "Dockerfile": f"FROM {busybox}\nCOPY ok.txt /\nADD evil.tar.gz /x/\n",
    })  # fmt: skip
    before = sj.store_state()
    r = sj("build", "-t", "evil:1", ctx)
    assert r.rc == 1, r
    assert r.err == ("sangja: Dockerfile:3: step 3/3 (ADD evil.tar.gz /x/): unpack"
                     f" evil.tar.gz: layer entry {why.format(victim=rel, up=up)}\n"), r  # fmt: skip
    if case == "hardlink":
        assert victim.read_bytes() == b"original" and victim.stat().st_nlink == 1
    else:
        assert not victim.exists()
    assert "evil:1" not in sj.ok("image", "ls").out
    after = sj.assert_consistent()
    # what the step had unpacked is gone; only the COPY before it is new in the store
    assert len(after["layers"]) == len(before["layers"]) + 1


def test_run_mounts_cache_secret_bind(sj, busybox, tmp_path):
    secret = tmp_path / "token"
    secret.write_text("s3cr3t\n")
    ctx = write_context(tmp_path / "ctx", {"data/in.txt": "from the context\n", "Dockerfile": f"""
FROM {busybox}
ARG N
RUN --mount=type=cache,target=/cache echo "run $N" >> /cache/log && cat /cache/log
RUN --mount=type=secret,id=tok cat /run/secrets/tok > /seen && ls -l /run/secrets/tok
RUN --mount=type=bind,source=data,target=/mnt cat /mnt/in.txt > /copied && \
    (touch /mnt/new 2>/dev/null && echo writable || echo read-only)
RUN --mount=type=tmpfs,target=/scratch touch /scratch/x && ls /scratch
"""})  # fmt: skip
    r = build(sj, ctx, "-t", "mnt:1", "--secret", f"id=tok,src={secret}", "--build-arg", "N=1")
    assert "run 1\n" in r.out and "read-only" in r.out
    assert "-r--------    1 root     root" in r.out
    r = build(sj, ctx, "-t", "mnt:1", "--secret", f"id=tok,src={secret}", "--build-arg", "N=2")
    assert "run 1\nrun 2\n" in r.out  # the cache directory outlives the build
    out = run_in(sj, "mnt:1", "sh", "-c", "cat /seen /copied; ls -a /cache /scratch /run/secrets"
                 " 2>&1 | wc -l")  # fmt: skip
    assert out.splitlines()[:2] == ["s3cr3t", "from the context"]
    with sangja_root(sj, "mnt:1") as root:  # none of the mounts is part of the image
        for p in ("cache", "scratch", "run/secrets", "mnt"):
            assert not os.path.exists(os.path.join(root, p)), p
    hist = sj.ok("image", "history", "--no-trunc", "mnt:1").out
    assert "s3cr3t" not in hist
    assert "s3cr3t" not in json.dumps(sj.inspect("mnt:1"))
    r = sj("build", "-f", "-", ctx, input=f"FROM {busybox}\nRUN --mount=type=secret,id=x,required"
           " true\n")  # fmt: skip
    assert r.rc == 1 and "secret x is required" in r.err


def test_stdin_contexts_quiet_iidfile_labels(sj, busybox, tmp_path):
    # a Dockerfile alone on stdin
    r = sj("build", "-q", "--iidfile", str(tmp_path / "iid"), "--label", "k=v", "-t", "s:1",
           "-", input=f"FROM {busybox}\nRUN echo quiet\n")  # fmt: skip
    assert r.rc == 0, r
    img = sj.inspect("s:1")
    assert r.out == img["Id"] + "\n"  # -q: the id and nothing else
    assert (tmp_path / "iid").read_text() == img["Id"]
    assert img["Config"]["Labels"] == {"k": "v"}
    # a tar context on stdin
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in (("Dockerfile", f"FROM {busybox}\nCOPY f /f\n".encode()),
                           ("f", b"from the tar\n")):  # fmt: skip
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    argv = [sj_binary(), "--root", sj.run_root, "build", "-t", "s:2", "-"]
    p = subprocess.run(argv, input=buf.getvalue(), capture_output=True, env=sj.env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert run_in(sj, "s:2", "cat", "/f") == "from the tar\n"


def test_network_pull_platform_and_directives(sj, busybox, tmp_path):
    from registrykit import PLAIN

    # RUN --network= for one step: host (the test's namespace, where the registry listens
    # on 127.0.0.1), none (a loopback of its own); --network for every step
    probe = f"wget -q -O /dev/null http://{PLAIN}/v2/ && echo reachable || echo unreachable"
    df = f"FROM {busybox}\nRUN --network=host {probe}\nRUN --network=none {probe}\n"
    ctx = write_context(tmp_path / "net", {"Dockerfile": df})
    r = build(sj, ctx)
    assert "reachable\n" in r.out and "unreachable\n" in r.out
    df = f"FROM {busybox}\nRUN {probe}\n"
    ctx = write_context(tmp_path / "net2", {"Dockerfile": df})
    r = build(sj, ctx, "--network", "none", "--no-cache")
    assert "reachable\n" not in r.out.replace("unreachable\n", "")
    assert "reachable\n" in build(sj, ctx, "--network", "host").out
    r = sj("build", "--network", "container:x", ctx)
    assert r.rc == 1 and "network mode 'container:x' is not supported by build" in r.err
    # --pull: the base is pulled again though the store has an image under its name
    import trustkit

    trustkit.marker_image(sj, tmp_path, busybox)  # the store's name: another image now
    ctx = write_context(tmp_path / "pull", {"Dockerfile": f"FROM {busybox}\nRUN test -e /marker"
                                                          " && echo on-marker || echo on-busybox"
                                                          "\n"})  # fmt: skip
    assert "on-marker" in build(sj, ctx).out
    r = build(sj, ctx, "--pull")
    assert "on-busybox" in r.out and "Pulling from test/busybox" in r.out
    # FROM --platform: this host's (by the predefined ARG) builds; another is an error
    ctx = write_context(tmp_path / "plat", {"Dockerfile": f"""
FROM --platform=$BUILDPLATFORM {busybox} AS b
ARG TARGETOS
RUN echo "os=$TARGETOS"
FROM --platform=linux/s390x {busybox}
"""})  # fmt: skip
    r = build(sj, ctx, "--target", "b")
    assert "os=linux\n" in r.out
    r = sj("build", ctx)
    assert r.rc == 1 and r.err.startswith(
        "sangja: Dockerfile:5: FROM --platform linux/s390x:"
        " sangja builds for this host's platform only"
    ), r
    assert "Step " not in r.out  # found before any step ran
    # directives: # escape= changes the escape character; # syntax= is noted and ignored;
    # COPY --link is accepted (its layer is built as any COPY's)
    df = f"""# syntax=docker/dockerfile:1
# escape=`
FROM {busybox}
RUN echo one `
    two > /joined
COPY --link ["a b.txt", "/c:\\\\path/"]
"""
    ctx = write_context(tmp_path / "dir", {"a b.txt": "spaced\n", "Dockerfile": df})
    r = build(sj, ctx, "-t", "dir:1")
    assert "[Note] # syntax=docker/dockerfile:1: sangja builds with its own frontend" in r.out
    assert run_in(sj, "dir:1", "cat", "/joined", "/c:\\path/a b.txt") == "one two\nspaced\n"


def sj_binary():
    from registrykit import sangja_binary

    return sangja_binary()


def test_builder_prune(sj, busybox, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": f"FROM {busybox}\nRUN echo x > /x\n"})
    build(sj, ctx, "-t", "p:1")
    sj.ok("image", "rm", "p:1")
    r = sj.ok("builder", "prune", "-f")
    assert "Deleted build cache objects:" in r.out and "Total reclaimed space:" in r.out
    r = build(sj, ctx, "-t", "p:1")
    assert not steps(r.out)[2]  # the cache of that RUN is gone
    r = build(sj, ctx, "-t", "p:1")
    assert steps(r.out)[2]
    sj.ok("builder", "prune", "-a", "-f")
    assert not steps(build(sj, ctx).out)[2]
    sj.assert_consistent()


def test_cache_usage_for_system_df(sj, busybox, tmp_path):
    """What `system df` shows of the cache (cache.usage, cache.df_records: Docker's
    BuildCache items): the entries, the bytes of their layers, and what `builder prune`
    would free -- nothing while an image uses the layers, all of it once none does."""
    from sangja.engine.build import cache
    from sangja.image.store import Store

    ctx = write_context(tmp_path / "ctx", {"f": "x" * 10000, "Dockerfile": f"""
FROM {busybox}
ENV A=1
RUN head -c 300000 /dev/zero > /zeros
COPY f /f
"""})  # fmt: skip
    build(sj, ctx, "-t", "df:1")

    def look():
        st = Store(sj.root)
        try:
            return cache.usage(st), cache.df_records(st)
        finally:
            st.close()

    use, items = look()
    assert use["count"] == 3 and len(items) == 3
    env, run = (next(i for i in items if w in i["Description"]) for w in ("ENV A=1", "head"))
    assert run["Size"] >= 300000 and run["Shared"] and run["Type"] == "regular"
    assert env["Size"] == 0  # a config-only step
    assert run["Parent"] == env["ID"]  # the step below it, by its id
    assert use["size"] == sum(i["Size"] for i in items) and use["reclaimable"] == 0
    assert all(re.match(r"\d{4}-\d\d-\d\dT.*Z$", i["LastUsedAt"]) for i in items)
    sj.ok("image", "rm", "df:1")
    use, items = look()
    assert use["reclaimable"] == use["size"] and not any(i["Shared"] for i in items)
    sj.ok("builder", "prune", "-f")  # the entries with layers go; ENV's (none) stays
    use, items = look()
    assert use == {"count": 1, "size": 0, "reclaimable": 0, "active": 0}
    assert [i["ID"] for i in items] == [env["ID"]]
    sj.ok("builder", "prune", "-a", "-f")
    assert look() == ({"count": 0, "size": 0, "reclaimable": 0, "active": 0}, [])


def test_a_killed_build_is_cleaned_up_by_the_next(sj, busybox, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": f"FROM {busybox}\nRUN echo started;"
                                                         " sleep 60\n"})  # fmt: skip
    p = subprocess.Popen([sj_binary(), "--root", sj.run_root, "build", ctx], env=sj.env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        seen = b""
        while b"\nstarted\n" not in seen:
            chunk = p.stdout.read1(4096)
            assert chunk, seen
            seen += chunk
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
    # the RUN's container runs on without its builder: the next build deletes it, with
    # everything else the killed one left (its snapshot mount, its working dir)
    work = os.path.join(sj.root, "build", "work")
    assert os.listdir(work)
    build(sj, write_context(tmp_path / "ctx2", {"Dockerfile": f"FROM {busybox}\n"}))
    deadline = time.monotonic() + 30
    while buildkit.runtime_state(sj) and time.monotonic() < deadline:
        time.sleep(0.1)  # a hang guard: delete --force kills and waits
    assert not os.listdir(work)
    sj.assert_consistent()
    sj.ok("image", "rm", busybox)  # the killed build's hold on its base image is gone too


def _kill_when(sj, ctx, marker: bytes) -> bytes:
    """Start `sangja build ctx`, SIGKILL it as soon as its output shows `marker`."""
    p = subprocess.Popen([sj_binary(), "--root", sj.run_root, "build", ctx], env=sj.env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    seen = b""
    try:
        while marker not in seen:
            chunk = p.stdout.read1(4096)
            assert chunk, seen  # the build ended before the marker: nothing was killed
            seen += chunk
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
    return seen


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signalled_build_cleans_up_itself(sj, busybox, tmp_path, sig, cgroup_parent):
    """Ctrl-C, SIGTERM or SIGHUP during a RUN: the build ends at once with 128+signal and
    leaves nothing (its RUN container killed and deleted, its cgroup -- under the engine's
    cgroup parent -- removed, its snapshot unmounted, its working dir removed) without
    waiting for another build to clean up."""
    from buildkit import cgroups_under

    ctx = write_context(tmp_path / "ctx", {"Dockerfile": f"FROM {busybox}\nRUN echo started;"
                                                         " sleep 60\n"})  # fmt: skip
    p = subprocess.Popen([sj_binary(), "--root", sj.run_root, "build", ctx], env=sj.env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        seen = b""
        while b"\nstarted\n" not in seen:
            chunk = p.stdout.read1(4096)
            assert chunk, seen
            seen += chunk
        assert [c for c in cgroups_under(cgroup_parent) if "/build-" in c]
        p.send_signal(sig)
        p.stdout.read()
        assert p.wait(timeout=60) == 128 + sig
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
    assert not os.listdir(os.path.join(sj.root, "build", "work"))
    assert not buildkit.runtime_state(sj)
    sj.assert_consistent()
    sj.ok("image", "rm", busybox)  # its hold on the base image is gone


@pytest.mark.parametrize("where", ["copy", "layer"])
def test_a_build_killed_while_it_writes_leaves_nothing_half_made(sj, busybox, tmp_path, where):
    """SIGKILL while a COPY reads a big source (hashing, copying or packing it), or right
    after a RUN wrote a big file (its container stopping, its layer being packed or
    unpacked into the store): whatever it had written is gone after the next build, the
    store holds only what its rows name, and the steps that finished are served from the
    cache while the killed one is built again."""
    if where == "copy":
        with open(tmp_path / "big.bin", "wb") as f:
            f.write(os.urandom(48 << 20))
        files = {"Dockerfile": f"FROM {busybox}\nRUN echo first > /first\nCOPY big.bin /big\n"}
        marker = b"Step 3/3 : COPY"
    else:
        files = {"Dockerfile": f"FROM {busybox}\nRUN echo first > /first\nRUN head -c 40000000"
                               " /dev/urandom > /big && echo written-all\n"}  # fmt: skip
        marker = b"\nwritten-all\n"
    ctx = write_context(tmp_path / "ctx", files)
    if where == "copy":
        os.rename(tmp_path / "big.bin", os.path.join(ctx, "big.bin"))
    _kill_when(sj, ctx, marker)
    work = os.path.join(sj.root, "build", "work")
    assert os.listdir(work)  # killed mid-build: its working dir is left for the next
    r = build(sj, ctx, "-t", "after:1")
    assert steps(r.out) == {1: False, 2: True, 3: False}
    assert run_in(sj, "after:1", "wc", "-c", "/big").split()[0] in ("50331648", "40000000")
    deadline = time.monotonic() + 30
    while buildkit.runtime_state(sj) and time.monotonic() < deadline:
        time.sleep(0.1)  # a hang guard: a RUN container is deleted with --force
    assert not os.listdir(work)
    sj.assert_consistent()  # no blob or layer dir that no row names (tmp: the fixture)


@pytest.mark.parametrize("dockerfile", ['FROM scratch\nCOPY f /f\nCMD ["/f"]\n'])
def test_from_scratch(sj, tmp_path, dockerfile):
    ctx = write_context(tmp_path / "ctx", {"f": "x", "Dockerfile": dockerfile})
    build(sj, ctx, "-t", "scr:1")
    img = sj.inspect("scr:1")
    assert len(img["RootFS"]["Layers"]) == 1 and img["Config"]["Cmd"] == ["/f"]
    with sangja_root(sj, "scr:1") as root:
        assert os.listdir(root) == ["f"]
