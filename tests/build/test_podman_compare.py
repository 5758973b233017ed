"""Proof against the reference: `sangja build` and `podman build` (buildah 1.28, Debian's)
from the same context give the same final file tree (types, modes, owners, contents,
link targets, xattrs, devices) and the same image config fields (Cmd, Entrypoint, Env,
WorkingDir, User, ExposedPorts, Volumes, Labels, StopSignal, Healthcheck); and images go
both ways through a registry: podman pulls and runs what sangja built and pushed, sangja
pulls and runs what podman built and pushed.

What differs on purpose, and is left out of the comparison (README, Building images):
buildah labels its images `io.buildah.version`, and makes an empty /run in an image that
has none (a mount point of its own for RUN); mtimes are not compared (each build has its
own times).
"""

import os
import shutil

import pytest
from buildkit import (
    BUSYBOX,
    DEBIAN,
    config_fields,
    dump,
    podman_tree,
    sangja_tree,
    write_context,
)
from registrykit import Podman

pytestmark = pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed")

PY_APP = {
    "requirements.txt": "flask==3.0\nrequests==2.31\n",
    "main.py": "print('hello from the app')\n",
    "app/__init__.py": "",
    "app/views.py": "VIEWS = 1\n",
    "Dockerfile": f"""
FROM {DEBIAN}
# the fixture's /bin is a symlink that podman's unpacking of it replaces (see compare)
SHELL ["/usr/bin/sh", "-c"]
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
# no network here: "installing" writes what pip would have installed
RUN mkdir -p /opt/venv/lib && while read -r req; do \\
      echo "$req" > "/opt/venv/lib/$(echo $req | cut -d= -f1).dist-info"; done < requirements.txt
COPY . .
RUN useradd --uid 10001 --no-create-home appuser && chown -R appuser /app
USER appuser
EXPOSE 8000
CMD ["sh", "-c", "ls /opt/venv/lib && cat main.py"]
""",
}  # fmt: skip

MULTI = {
    "src/main.c": "int main(void) { return 0; }\n",
    "src/VERSION": "1.2.3\n",
    "Dockerfile": f"""
FROM {DEBIAN} AS build
SHELL ["/usr/bin/sh", "-c"]
WORKDIR /src
COPY src/ .
RUN mkdir -p /out/bin /out/share && cp main.c /out/share/ && \\
    printf '#!/bin/sh\\necho built %s\\n' "$(cat VERSION)" > /out/bin/app && \\
    chmod 755 /out/bin/app && chown -R 1000:1000 /out/share

FROM {BUSYBOX} AS assets
RUN mkdir /assets && echo logo > /assets/logo.txt && chmod 600 /assets/logo.txt

FROM {BUSYBOX}
COPY --from=build /out/bin/app /usr/local/bin/app
COPY --from=build /out/share /usr/share/app
COPY --from=assets /assets /assets
COPY --from=build --chown=5:6 /out/share/main.c /owned.c
ENTRYPOINT ["/usr/local/bin/app"]
""",
}  # fmt: skip

IGNORE = {
    "keep.txt": "keep", "debug.log": "no", "sub/keep.log": "yes", "sub/drop.tmp": "no",
    "cache/big.bin": "no", "docs/a.md": "yes", "docs/b.md": "no",
    ".dockerignore": "*.log\n!sub/keep.log\n**/*.tmp\ncache\ndocs/b.md\n",
    "Dockerfile": f"FROM {BUSYBOX}\nCOPY . /ctx/\n",
}  # fmt: skip

# one Dockerfile per instruction (on busybox; WORKDIR's directory is used by a later step,
# the one case where buildah makes it only then)
PER_INSTRUCTION = {
    "run": "RUN mkdir -p /r/d && echo x > /r/d/f && chmod 4750 /r/d/f && ln -s d/f /r/l"
           " && mknod /r/fifo p && rm /etc/group",
    "run-exec": 'RUN ["/bin/sh", "-c", "echo exec > /e"]',
    "cmd": 'CMD ["echo", "hi"]',
    "cmd-shell": "CMD echo hi $HOME",
    "entrypoint": 'ENTRYPOINT ["/bin/sh", "-c"]\nCMD ["echo hi"]',
    "entrypoint-shell": "CMD [\"inherited\"]\nENTRYPOINT exec top -b",
    "env": 'ENV A=1 B="two words" C=${A}x\nENV D $B',
    "arg": "ARG X=1\nARG Y\nRUN echo $X$Y > /argfile",
    "label": 'LABEL a=1 "b c"="d e"\nLABEL f=${A:-dflt}',
    "expose": "EXPOSE 80 443/tcp 53/udp",
    "copy": "COPY --chown=7:8 files/ /dst/\nCOPY --chmod=700 files/one /one\nCOPY files/* /glob/",
    "add": "ADD archive.tar /unpacked/\nADD files/one /added-one",
    "workdir": "WORKDIR /w/x\nWORKDIR y\nRUN touch here",
    "user": "USER 1000:1000\nRUN (id -u; id -g) > /tmp/id",
    "volume": 'VOLUME /data ["/logs"]\nVOLUME ["/x", "/y"]',
    "stopsignal": "STOPSIGNAL SIGUSR1",
    "healthcheck": "HEALTHCHECK --interval=30s --timeout=5s --retries=4 CMD wget -q -O- localhost",
    "healthcheck-none": "HEALTHCHECK NONE",
    "onbuild": "ONBUILD RUN echo later",
    # (Docker's SHELL also makes CMD and ENTRYPOINT's shell form; buildah 1.28's does not:
    # test_build checks Docker's)
    "shell": 'SHELL ["/bin/sh", "-ec"]\nRUN echo $0 > /shell',
}  # fmt: skip


def _archive() -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data, mode, owner in (("t/", None, 0o750, (3, 4)), ("t/in.txt", b"tarred\n",
                                        0o640, (5, 6))):  # fmt: skip
            ti = tarfile.TarInfo(name)
            ti.mode, (ti.uid, ti.gid) = mode, owner
            if data is None:
                ti.type = tarfile.DIRTYPE
                t.addfile(ti)
            else:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def pm(sj, tmp_path):
    p = Podman(tmp_path)
    base = list(p.base)
    p.base = base + ["--cgroup-manager", "cgroupfs"]
    yield p
    p.close()


def podman_config(pm, ref):
    info = pm.inspect(ref)
    c = dict(info.get("Config") or {})
    if info.get("Healthcheck") and not c.get("Healthcheck"):
        c["Healthcheck"] = info["Healthcheck"]  # podman shows it beside Config
    labels = dict(c.get("Labels") or {})
    labels.pop("io.buildah.version", None)
    c["Labels"] = labels or None
    return config_fields(c)


def _diff(a, b):
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def compare(sj, pm, ctx, tag, bases=(BUSYBOX,)):
    sj.ok("build", "-t", f"sj-{tag}", ctx)
    pm("build", "--format", "docker", "--network", "none", "--layers", "-t", f"pm-{tag}",
       "--tls-verify=false", ctx)  # fmt: skip
    a = sangja_tree(sj, f"sj-{tag}")
    b = podman_tree(pm, f"pm-{tag}")
    if "run" in b and "run" not in a and b["run"]["type"] == "d":
        del b["run"]  # buildah's own mount point
    # where the two tools unpack a base image differently already (the debian fixture's
    # third layer writes through the symlink /bin -> usr/bin of the first; c/storage
    # replaces the symlink with a directory, sangja's extractor writes through it, as the
    # merged view has it), the build is not what is compared
    known = set()
    for base in bases:
        pm("pull", "-q", "--tls-verify=false", base)
        known |= set(_diff(sangja_tree(sj, base), podman_tree(pm, base)))
    diff = {k: v for k, v in _diff(a, b).items()
            if k not in known and not any(k.startswith(p + "/") for p in known)}  # fmt: skip
    assert not diff, f"file trees differ (sangja, podman): {dump(diff)}"
    ca = config_fields(sj.inspect(f"sj-{tag}")["Config"])
    cb = podman_config(pm, f"pm-{tag}")
    assert ca == cb, f"configs differ:\nsangja {dump(ca)}\npodman {dump(cb)}"
    return a


def test_python_style_app(sj, pm, tmp_path):
    sj.ok("image", "pull", "-q", DEBIAN)
    ctx = write_context(tmp_path / "ctx", PY_APP)
    tree = compare(sj, pm, ctx, "py", bases=(DEBIAN,))
    assert tree["opt/venv/lib/flask.dist-info"]["size"] == len("flask==3.0\n")
    assert tree["app/main.py"]["owner"] == (10001, 0)
    # the point of requirements-before-code: a code change reuses the install step
    with open(os.path.join(ctx, "main.py"), "a") as f:
        f.write("print('changed')\n")
    out = sj.ok("build", "-t", "sj-py", ctx).out
    assert out.count("---> Using cache") == 5  # SHELL, ENV, WORKDIR, COPY requirements, RUN


def test_multi_stage(sj, pm, tmp_path):
    sj.ok("image", "pull", "-q", DEBIAN)
    sj.ok("image", "pull", "-q", BUSYBOX)
    tree = compare(sj, pm, write_context(tmp_path / "ctx", MULTI), "ms", bases=(DEBIAN, BUSYBOX))
    assert tree["usr/share/app/main.c"]["owner"] == (1000, 1000)  # --from keeps owners
    assert tree["owned.c"]["owner"] == (5, 6)


def test_dockerignore(sj, pm, tmp_path):
    sj.ok("image", "pull", "-q", BUSYBOX)
    tree = compare(sj, pm, write_context(tmp_path / "ctx", IGNORE), "ign")
    got = sorted(k[4:] for k, v in tree.items() if k.startswith("ctx/") and v["type"] == "-")
    assert got == [".dockerignore", "Dockerfile", "docs/a.md", "keep.txt", "sub/keep.log"]


@pytest.mark.parametrize("name", sorted(PER_INSTRUCTION))
def test_each_instruction(sj, pm, tmp_path, name):
    sj.ok("image", "pull", "-q", BUSYBOX)
    ctx = write_context(tmp_path / "ctx", {
        "files/one": ("one\n", 0o640), "files/two": "two\n", "files/sub/three": "three\n",
        "archive.tar": _archive(),
        "Dockerfile": f"FROM {BUSYBOX}\n{PER_INSTRUCTION[name]}\n",
    })  # fmt: skip
    compare(sj, pm, ctx, name)


def test_podman_runs_what_sangja_pushed_and_back(sj, pm, push_registry, tmp_path):
    from pushkit import podman_run

    sj.ok("image", "pull", "-q", BUSYBOX)
    reg = push_registry("plain")
    ctx = write_context(tmp_path / "ctx", {"msg": "built by sangja\n", "Dockerfile": f"""
FROM {BUSYBOX}
COPY msg /msg
RUN cat /msg > /copy && echo ran >> /copy
CMD ["cat", "/copy"]
"""})  # fmt: skip
    dst = f"{reg.addr}/built/by-sangja:1"
    sj.ok("build", "-t", dst, ctx)
    sj.ok("image", "push", dst)
    pm("pull", "-q", "--tls-verify=false", dst)
    assert podman_run(pm, dst) == "built by sangja\nran\n"
    # podman builds, pushes; sangja pulls and runs
    ctx2 = write_context(tmp_path / "ctx2", {"msg": "built by podman\n", "Dockerfile": f"""
FROM {BUSYBOX}
COPY msg /msg
RUN cat /msg > /copy && echo ran >> /copy
CMD ["cat", "/copy"]
"""})  # fmt: skip
    dst2 = f"{reg.addr}/built/by-podman:1"
    pm("build", "--network", "none", "-t", dst2, "--tls-verify=false", ctx2)
    pm("push", "-q", "--tls-verify=false", dst2)
    sj.ok("image", "pull", "-q", dst2)
    assert sj.ok("container", "run", "--rm", dst2).out == "built by podman\nran\n"
