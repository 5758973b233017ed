"""The conformance suite's plugin: which runtime, its fixtures, and the report.

Runtime: `CONFORMANCE_RUNTIME` (or `--runtime`): `sangja` (default: $SANGJA, `sangja` on PATH,
or build/venv/bin/sangja), `runc`, `crun` (run through an `unshare -m` wrapper that unmounts
this host's empty cgroup2 mount, which crun 1.8 cannot work with), or the path of any
runc-compatible binary. Every test is parametrized by that runtime's name.

Each test checks one requirement of the OCI runtime spec; the first line of its docstring is
`<file>#<section>: <requirement>` (with `{param}` filled in for parametrized ones). At the end
one line per requirement is printed, `PASS|FAIL|SKIP <file>#<section>: <requirement>` (a SKIP
says why this host cannot show it, a FAIL what was seen), then
`conformance: N passed, M failed, K skipped`. `CONFORMANCE_REPORT=all` (what `make
conformance` sets) prints every line; otherwise only the FAIL lines and the totals.

Exit status: against sangja, a failure listed in known.py (the requirements the README says
sangja does not meet yet) is reported as FAIL but does not fail the run (pytest counts it as
xfail), so `make test` stays green until something regresses; CONFORMANCE_STRICT=1 makes
every failure count. Against any other runtime the run is a reference report: its failures
never fail the run.
"""

import os
import re
import shutil
import subprocess
import tempfile

import pytest

from . import kit
from .known import KNOWN


def _runtime_spec(config):
    return config.getoption("--runtime", None) or os.environ.get("CONFORMANCE_RUNTIME") or "sangja"


def pytest_addoption(parser):
    g = parser.getgroup("conformance")
    g.addoption("--runtime", default=None, help="conformance: sangja, runc, crun or a path")
    g.addoption(
        "--conformance-report",
        default=None,
        choices=("all", "fail"),
        help="conformance: print every requirement (all) or only the failures (fail)",
    )


def pytest_configure(config):
    config._conformance = {"results": {}, "order": [], "runtime": None, "leftovers": []}


def pytest_generate_tests(metafunc):
    if "target" in metafunc.fixturenames:
        metafunc.parametrize("target", [_runtime_spec(metafunc.config)], indirect=True)


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def conformance_env(request):
    """The session's directory (0755: a mapped user must reach the rootfs), the shared busybox
    rootfs, and the runtime's name and binary."""
    d = tempfile.mkdtemp(prefix="sangja-conformance-", dir="/tmp")
    os.chmod(d, 0o755)
    rootfs = os.path.join(d, "rootfs")
    kit.make_rootfs(rootfs)
    name, binary = kit.resolve_runtime(_runtime_spec(request.config), d)
    request.config._conformance["runtime"] = (name, binary)
    yield {"dir": d, "rootfs": rootfs, "name": name, "binary": binary}
    if not any(m.startswith(d) for m in kit.rtkit.host_mounts()):
        shutil.rmtree(d, ignore_errors=True)


def _check_binary(env):
    if not env["binary"] or not os.path.exists(env["binary"]):
        pytest.fail(f"runtime {env['name']!r} not found (RUNTIME=sangja needs `make install`)")


@pytest.fixture
def target(request, conformance_env):
    """The runtime under test with this test's own directory and --root; at teardown every
    container it made is deleted (--force) and its helper processes killed."""
    _check_binary(conformance_env)
    workdir = tempfile.mkdtemp(prefix="t-", dir=conformance_env["dir"])
    os.chmod(workdir, 0o755)
    t = kit.Target(conformance_env["name"], conformance_env["binary"], workdir,
                   conformance_env["rootfs"])  # fmt: skip
    yield t
    problems = t.cleanup()
    _note_leftovers(request.config, t, request.node.nodeid)
    if not any(m.startswith(workdir) for m in kit.rtkit.host_mounts()):
        shutil.rmtree(workdir, ignore_errors=True)
    if problems:
        pytest.fail("cleanup: " + "; ".join(problems))


@pytest.fixture(scope="session")
def shared_source(conformance_env):
    """A tmpfs of the session's own, mounted on the host with shared propagation: the source
    for the propagation tests (this host's / is private). Unmounted at the end."""
    d = os.path.join(conformance_env["dir"], "shared-src")
    os.makedirs(d, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "conformance", d], check=True)
    try:
        subprocess.run(["mount", "--make-shared", d], check=True)
        os.makedirs(os.path.join(d, "sub"), exist_ok=True)
        yield d
    finally:
        subprocess.run(["umount", "-l", d])


# The submounts of rec_source: all flags set (and noatime), none, strictatime.
REC_SUBMOUNTS = {"set": "ro,nosuid,nodev,noexec,noatime,nodiratime,nosymfollow",
                 "plain": "rw", "strict": "strictatime"}  # fmt: skip


@pytest.fixture(scope="session")
def rec_source(conformance_env):
    """A host tree with submounts for the recursive (r*) options: a tmpfs with, under it, a
    tmpfs with every flag set (`set`), one with none (`plain`) and one `strictatime`."""
    d = os.path.join(conformance_env["dir"], "rec-src")
    os.makedirs(d, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "conformance", d], check=True)
    try:
        for sub, opts in REC_SUBMOUNTS.items():
            os.makedirs(os.path.join(d, sub))
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size=1m,{opts}", "conformance",
                            os.path.join(d, sub)], check=True)  # fmt: skip
        yield d
    finally:
        subprocess.run(["umount", "-R", "-l", d])


def _note_leftovers(config, t, who):
    """What `delete --force` left (cgroups, state): noted for the report, then removed."""
    left = t.remove_leftovers()
    if left:
        config._conformance["leftovers"].append(f"{who}: {', '.join(left)}")


@pytest.fixture(scope="session")
def shared(request, conformance_env):
    """A runtime for the probes that several tests read (one container, many checks)."""
    _check_binary(conformance_env)
    workdir = os.path.join(conformance_env["dir"], "shared")
    os.makedirs(workdir, mode=0o755, exist_ok=True)
    t = kit.Target(conformance_env["name"], conformance_env["binary"], workdir,
                   conformance_env["rootfs"])  # fmt: skip
    yield t
    t.cleanup()
    _note_leftovers(request.config, t, "the shared probes")


# -- the report -----------------------------------------------------------------------------


def label_of(item):
    doc = (getattr(item, "obj", None).__doc__ or "").strip().splitlines()
    text = doc[0].strip() if doc else item.name
    params = dict(getattr(getattr(item, "callspec", None), "params", {}) or {})
    params.pop("target", None)
    try:
        return text.format(**params)
    except (KeyError, IndexError, ValueError):
        return text


def _short(text, limit=240):
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _failure_text(call):
    if call.excinfo is None:
        return ""
    exc = call.excinfo.value
    msg = str(exc) if str(exc) else call.excinfo.exconly()
    m = re.match(
        r"expected success: <(\S+) --root \S+ (\S+).* rc=(\d+) out=.* err=(.*)>", msg, re.S
    )
    if m:  # rtkit's Result.ok(): the runtime's verb, exit status and stderr say it all
        err = m.group(4).strip("'\"").replace("\\n", " ").strip()
        return _short(f"{m.group(2)} failed (exit {m.group(3)}): {err}")
    lines = [ln.strip() for ln in msg.splitlines() if ln.strip()]
    # pytest's rewritten asserts: the message, then "assert ..." and "where ..." lines: the
    # message alone when there is one, else the comparison
    return _short(lines[0] if lines else call.excinfo.typename)


def _is_conformance(item):
    return item.nodeid.split("::")[0].startswith(("tests/conformance/", "conformance/"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not _is_conformance(item):
        return
    state = item.config._conformance
    label = label_of(item)
    if item.nodeid not in state["results"]:
        state["order"].append(item.nodeid)
        state["results"][item.nodeid] = ["PASS", label, ""]
    entry = state["results"][item.nodeid]
    if rep.skipped and not hasattr(rep, "wasxfail"):
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        entry[0], entry[2] = "SKIP", _short(reason.removeprefix("Skipped: "))
    elif rep.failed:
        where = "" if rep.when == "call" else f"{rep.when}: "
        if entry[0] != "FAIL":
            entry[0], entry[2] = "FAIL", where + _failure_text(call)
        name = (state["runtime"] or ("?",))[0]
        strict = os.environ.get("CONFORMANCE_STRICT") == "1"
        if not strict and (name != "sangja" or label in KNOWN):
            why = "reference run" if name != "sangja" else "known, see README"
            entry.append(why)
            rep.outcome = "skipped"
            rep.wasxfail = f"{why}: {entry[2]}"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    state = config._conformance
    if not state["order"]:
        return
    mode = config.getoption("--conformance-report", None) or os.environ.get("CONFORMANCE_REPORT")
    mode = mode or "fail"
    name, binary = state["runtime"] or ("?", "?")
    tr = terminalreporter
    tr.write_sep("=", f"OCI runtime-spec conformance of {name} ({binary})")
    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    passing_known = []
    files = ["runtime.md", "runtime-linux.md", "config.md", "config-linux.md"]

    def spec_order(item):
        i, nodeid = item
        f = state["results"][nodeid][1].split("#")[0]
        return (files.index(f) if f in files else len(files), i)

    for _, nodeid in sorted(enumerate(state["order"]), key=spec_order):
        status, label, detail, *known = state["results"][nodeid]
        counts[status] += 1
        if status == "PASS" and label in KNOWN and name == "sangja":
            passing_known.append(label)
        if mode == "all" or status == "FAIL":
            line = f"{status} {label}"
            if detail:
                line += f" -- {detail}"
            if known:
                line += f" [{known[0]}]"
            tr.write_line(line)
    if passing_known:
        tr.write_line(
            f"NOTE {len(passing_known)} requirement(s) listed in known.py now pass: remove "
            "them there and from the README" + (":" if mode == "all" else "")
        )
        if mode == "all":
            for label in passing_known:
                tr.write_line(f"NOTE   {label}")
    for left in state["leftovers"]:
        tr.write_line(f"NOTE left behind after delete --force (removed by the suite): {left}")
    tr.write_line(
        f"conformance: {counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped"
    )
