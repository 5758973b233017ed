"""A fuzzer of config.json (hypothesis, derandomized: the same examples every run).

Each example is runc's default config with one to three fields set to a hostile value: a
number at or past the edge of its type (uid 4294967295, 2^63, -1), null where a value is
expected, a string with a NUL or a lone surrogate, an array or object where a string is,
JSON nested far deeper than any config. The example goes through `create` (and `start`
when that succeeds) and `delete --force`; every failure must be one line (`sangja: ...`,
exit 1, no traceback), delete must succeed, and nothing may be left: state dir, cgroups,
processes, mounts (the same checks as the env fixture, per example).

SANGJA_FUZZ_EXAMPLES sets how many (default 200: ~12 s here).
"""

import copy
import json
import os
import secrets

import pytest
from rtkit import config, container_processes, host_mounts, wait_for

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

EXAMPLES = int(os.environ.get("SANGJA_FUZZ_EXAMPLES", "200"))
STATS = os.environ.get("SANGJA_FUZZ_STATS")  # a file: one line per example, its outcome
DEEP = "@@deep@@"  # replaced by JSON nested DEPTH deep once the config is dumped
DEPTH = 20000

INTS = [-1, 0, 1, 7, 4096, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63 - 1,
        2**63, 2**64 - 1, 2**64, -(2**63) - 1, 10**30, -(10**30)]  # fmt: skip
STRS = ["", "/", ".", "..", "\u0000", "a\u0000b", "\ud800", "x\udfff y", "/proc/self/fd/3",
        "a" * 5000, "relative", "/dev/null", "SCMP_ACT_ALLOW", "rbind", "-1"]  # fmt: skip
# Where a real value could reach the host (a rootfs of / or of the bundle's parent, a hook
# to run, a cgroup that is not the container's): only values that must be refused.
GUARDED = {"root.path", "linux.cgroupsPath", "hooks", "source"}
REFUSED_STRS = ["", "\u0000", "a\u0000b", "\ud800", "/nonexistent-\udcff", "relative-none"]
REFUSED_CGROUPS = ["/", "..", "a/../..", "."]  # the root cgroup, or above ours

hostile = st.recursive(
    st.one_of(
        st.sampled_from(INTS),
        st.sampled_from(STRS),
        st.none(),
        st.booleans(),
        st.sampled_from([0.5, -1.5, 1e308, float("inf")]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(STRS), inner, max_size=2)
    ),
    max_leaves=4,
)
refused = st.one_of(st.sampled_from(REFUSED_STRS), st.sampled_from(INTS[:4]), st.none(),
                    st.lists(st.sampled_from(REFUSED_STRS), max_size=2))  # fmt: skip

# Fields beyond runc's default config, set as a whole (then their parts get fuzzed too).
EXTRA = {
    "process.user.additionalGids": [10, 20],
    "process.user.umask": 0o22,
    "process.oomScoreAdj": 10,
    "process.consoleSize": {"height": 24, "width": 80},
    "linux.uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
    "linux.devices": [{"path": "/dev/fuzz", "type": "c", "major": 1, "minor": 3,
                       "fileMode": 0o666, "uid": 0, "gid": 0}],
    "linux.sysctl": {"net.ipv4.ip_forward": "1"},
    "linux.resources.memory": {"limit": 64 << 20, "swap": 128 << 20, "reservation": 0},
    "linux.resources.cpu": {"shares": 512, "quota": 10000, "period": 100000, "cpus": "0"},
    "linux.resources.pids": {"limit": 50},
    "linux.timeOffsets": {"boottime": {"secs": 1, "nanosecs": 0}},
    "linux.personality": {"domain": "LINUX"},
    "linux.seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                      "syscalls": [{"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO",
                                    "errnoRet": 1, "args": [{"index": 0, "value": 1,
                                                             "op": "SCMP_CMP_EQ"}]}]},
    "hooks": {"poststop": [{"path": "/nonexistent-hook", "args": ["x"], "env": ["A=1"],
                            "timeout": 5}]},
    "annotations": {"k": "v"},
    "domainname": "example.test",
    "mounts.+": {"destination": "/fuzz", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "mode=755"]},
}  # fmt: skip


def paths(obj, prefix=""):
    """Every path into `obj` ('process.user.uid', 'mounts[2].options[0]')."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            p = f"{prefix}.{k}" if prefix else k
            out.append(p)
            out += paths(v, p)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            p = f"{prefix}[{i}]"
            out.append(p)
            out += paths(v, p)
    return out


def _split(path):
    parts = []
    for piece in path.split("."):
        while "[" in piece:
            head, _, rest = piece.partition("[")
            if head:
                parts.append(head)
            idx, _, piece = rest.partition("]")
            parts.append(int(idx))
        if piece:
            parts.append(piece)
    return parts


def put(c, path, value):
    """Set `path` in `c` (making the objects on the way), or delete it for value KeyError."""
    if path == "mounts.+":
        c.setdefault("mounts", []).append(copy.deepcopy(value))
        return
    *parents, last = _split(path)
    d = c
    for p in parents:
        if isinstance(d, dict):
            d = d.setdefault(p, {})
        elif isinstance(d, list) and isinstance(p, int) and p < len(d):
            d = d[p]
        else:
            return  # the way there was fuzzed away already
        if not isinstance(d, dict | list):
            return
    if isinstance(d, dict):
        if value is KeyError:
            d.pop(last, None)
        else:
            d[last] = value
    elif isinstance(d, list) and isinstance(last, int) and last < len(d):
        if value is KeyError:
            del d[last]
        else:
            d[last] = value


def get(c, path):
    d = c
    for p in _split(path):
        try:
            d = d[p]
        except (KeyError, IndexError, TypeError):
            return None
    return d


def same_type(value):
    """Hostile values of the type `value` has: they pass the type checks and go on to the
    range checks, the launch and the kernel."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.sampled_from(INTS)
    if isinstance(value, str):
        return st.sampled_from(STRS)
    if isinstance(value, list):
        return st.lists(st.one_of(st.sampled_from(STRS), st.sampled_from(INTS)), max_size=3)
    return hostile


def guarded(path):
    return path in GUARDED or path.startswith("hooks") or path.endswith(".source")


@st.composite
def fuzzed_config(draw):
    c = config(["true"])
    for path in draw(st.lists(st.sampled_from(sorted(EXTRA)), max_size=2)):
        put(c, path, copy.deepcopy(EXTRA[path]))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(sorted(paths(c)) + ["linux.namespaces", "root.path",
                                                          "linux.cgroupsPath"]))  # fmt: skip
        kind = draw(st.integers(0, 19))
        if kind == 0:
            put(c, path, KeyError)
        elif kind == 1:
            put(c, path, DEEP)
        else:
            if path == "linux.cgroupsPath" and draw(st.booleans()):
                put(c, path, draw(st.sampled_from(REFUSED_CGROUPS)))
            elif guarded(path):
                put(c, path, draw(refused))
            else:  # half the time of the type the field has
                put(c, path, draw(same_type(get(c, path)) if draw(st.booleans()) else hostile))
    return c


def dump(c):
    """JSON text of `c`, DEEP markers replaced by arrays nested DEPTH deep."""
    text = json.dumps(c)  # lone surrogates and NUL come out as \\u escapes
    return text.replace(json.dumps(DEEP), "[" * DEPTH + "]" * DEPTH)


def one_line_error(r):
    assert "Traceback" not in r.err, r
    assert r.rc == 1, r
    assert r.err.startswith("sangja: ") and r.err.count("\n") == 1, f"not one line: {r!r}"


@pytest.mark.sangja_only("the one-line errors and what is left are sangja's promises")
def test_fuzzed_configs(rt, env):
    rt.bundle(config(["true"]), name="fuzz")  # one rootfs for every example
    bundle = os.path.join(rt.workdir, "fuzz")

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), print_blob=True)  # fmt: skip
    @given(fuzzed_config())
    def check(c):
        with open(os.path.join(bundle, "config.json"), "w") as f:
            f.write(dump(c))
        linux = c.get("linux") if isinstance(c.get("linux"), dict) else {}
        cgp = linux.get("cgroupsPath")
        cid = f"sjt-fz-{secrets.token_hex(4)}"
        rt.ids[cid] = None  # where its cgroups are: known once create took the path
        mounts_before = {m for m in host_mounts() if m.startswith(rt.workdir)}
        # with --log, as engines call it: warnings (a failing poststop hook) go there
        log = os.path.join(rt.workdir, "fuzz.log")
        r = rt("--log", log, "create", "--bundle", bundle, cid)
        if r.rc == 0:
            rt.ids[cid] = cgp
            s = rt("--log", log, "start", cid)
            assert s.rc in (0, 1) and "Traceback" not in s.err, s
            if s.rc:
                one_line_error(s)
            outcome = "created, then started" if s.rc == 0 else f"start refused: {s.err}"
        else:
            one_line_error(r)
            outcome = f"create refused: {r.err}"
        if STATS:
            with open(STATS, "a") as f:
                f.write(outcome.strip() + "\n")
        d = rt("--log", log, "delete", "--force", cid)
        assert d.rc == 0 and "Traceback" not in d.err, d
        assert rt.leftovers(cid) == [], (cid, rt.leftovers(cid))
        wait_for(lambda: not container_processes(set(), set(), rt.workdir, [cid]),
                 f"the processes of {cid} are gone", guard=10)  # fmt: skip
        after = {m for m in host_mounts() if m.startswith(rt.workdir)}
        assert after <= mounts_before, f"mounts left: {sorted(after - mounts_before)}"
        del rt.ids[cid]

    check()
