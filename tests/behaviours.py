"""What a runtime does in each case of the README's "Behaviours compared" table (the cases of
issue 11), one line per case, so that the table can be measured again:

    build/venv/bin/python tests/behaviours.py [sangja|runc|crun|PATH ...]

sangja is $SANGJA (else build/venv/bin/sangja); crun runs through the wrapper this hybrid
cgroup host needs (tests/conformance/kit.py). Everything happens under a private --root and
a temporary directory, which is removed; what a runtime leaves in the host's mount table is
reported (and unmounted).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bundles  # noqa: E402
from conformance.kit import resolve_runtime  # noqa: E402

# sangja as installed (with its C parts): imported before bundles.default_config puts the
# source tree on the path
from sangja._native import seccomp as native  # noqa: E402
from sangja.runtime.seccomp import default_profile  # noqa: E402

USERNS = {"uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
          "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}  # fmt: skip


class Box:
    def __init__(self, binary, work):
        self.binary, self.work, self.n = binary, work, 0
        self.root = os.path.join(work, "root")

    def bundle(self, mutate=None, args=("true",)):
        self.n += 1
        path = os.path.join(self.work, f"b{self.n}")
        c = bundles.default_config(list(args))
        if mutate:
            mutate(c)
        bundles.make_bundle(path, config=c)
        return path

    def __call__(self, *args, env=None):
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            argv = [self.binary, "--root", self.root, *args]
            p = subprocess.run(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env,
                               timeout=60)  # fmt: skip
            out.seek(0)
            err.seek(0)
            return (
                p.returncode,
                out.read().decode(errors="replace"),
                err.read().decode(errors="replace"),
            )

    def run(self, mutate=None, args=("true",), env=None, prepare=None):
        b = self.bundle(mutate, args)
        if prepare:
            prepare(b)
        self.n += 1
        cid = f"bh{self.n}"
        r = self("run", "--bundle", b, cid, env=env)
        self("delete", "--force", cid)
        return r


def last_line(text):
    lines = [x for x in text.strip().splitlines() if x.strip()]
    return lines[-1][-110:] if lines else ""


def outcome(r):
    rc, out, err = r
    return f"rc={rc} " + (repr(out.strip()[-80:]) if rc == 0 else last_line(err))


def old_allow_list(c, nnp):
    prof = default_profile(c["process"]["capabilities"]["bounding"])
    allow = [n for n in prof["syscalls"][0]["names"] if 0 <= native.resolve_syscall(n) < 424]
    prof["syscalls"] = [{"names": allow, "action": "SCMP_ACT_ALLOW"}]
    c["linux"]["seccomp"] = prof
    c["process"]["noNewPrivileges"] = nnp


def cases(box):
    def no_ns(c):
        c["linux"]["namespaces"] = []
        del c["hostname"]
        del c["linux"]["maskedPaths"], c["linux"]["readonlyPaths"]

    yield (
        "allow-list without faccessat2, noNewPrivileges",
        outcome(box.run(lambda c: old_allow_list(c, True))),
    )
    yield (
        "allow-list without faccessat2, no noNewPrivileges",
        outcome(box.run(lambda c: old_allow_list(c, False))),
    )
    before = mounts(box.work)
    yield "linux.namespaces empty", outcome(box.run(no_ns, args=("sh", "-c", "ls / | wc -l")))
    left = mounts(box.work) - before
    yield "  mounts left after delete", str(len(left))
    unmount(left)
    rc, out, err = box("features")
    yield "features", f"rc={rc} " + ("JSON" if rc == 0 else last_line(err))
    rc, out, err = box("--log", os.path.join(box.work, "no", "such", "log"), "list")
    yield "--log in a missing directory", f"rc={rc} {last_line(err)}"

    def passwd(b):
        with open(os.path.join(b, "rootfs/etc/passwd"), "w") as f:
            f.write("root:x:0:0:root:/root:/bin/sh\nu:x:1000:1000::/home/u:/bin/sh")

    def user1000(c):
        c["process"]["user"] = {"uid": 1000, "gid": 1000}
        c["process"]["env"] = ["PATH=/bin"]

    yield (
        "HOME, passwd without final newline",
        outcome(box.run(user1000, args=("sh", "-c", "echo $HOME"), prepare=passwd)),
    )
    marker = os.path.join(box.work, "hook-env")

    def hooks(c):
        sh = f'echo "$0 ${{SJ_BEHAVIOUR:-unset}}" >> {marker}'
        stages = ("prestart", "createContainer", "poststart", "poststop")
        c["hooks"] = {s: [{"path": "/bin/sh", "args": ["sh", "-c", sh, s]}] for s in stages}

    box.run(hooks, env={**os.environ, "SJ_BEHAVIOUR": "inherited"})
    yield "hooks without env", " ".join(read(marker).split())
    yield "failing poststart hook", poststart(box)

    def userns_bind(c):
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"].update(USERNS)
        c["mounts"] = [m for m in c["mounts"] if m["destination"] not in ("/sys", "/sys/fs/cgroup")]
        for m in c["mounts"]:
            if m["destination"] == "/dev/pts":
                m["options"] = [o for o in m["options"] if o != "gid=5"]
        c["mounts"].append({"destination": "/tmp", "type": "bind", "source": locked,
                            "options": ["rbind"]})  # fmt: skip

    locked = os.path.join(box.work, "locked", "src")
    os.makedirs(locked)
    os.chmod(os.path.dirname(locked), 0o700)
    with open(os.path.join(locked, "f"), "w") as f:
        f.write("reached\n")
    yield "userns bind below a 0700 dir", outcome(box.run(userns_bind, args=("cat", "/tmp/f")))
    yield "  default devices nosuid,noexec", outcome(box.run(
        userns_bind, args=("sh", "-c", "grep -c ' /dev/null .*nosuid,.*noexec' /proc/self/mountinfo"
                           " || grep ' /dev/null ' /proc/self/mountinfo")))  # fmt: skip

    def tmpfs(c):
        c["root"]["readonly"] = False
        c["mounts"] += [{"destination": "/t1", "type": "tmpfs", "source": "tmpfs"},
                        {"destination": "/t2", "type": "tmpfs", "source": "tmpfs",
                         "options": ["mode=711"]}]  # fmt: skip

    def mkdirs(b):
        for d in ("t1", "t2"):
            os.mkdir(os.path.join(b, "rootfs", d), 0o750)
            os.chmod(os.path.join(b, "rootfs", d), 0o750)

    yield (
        "tmpfs over a 0750 dir, no mode= / mode=711",
        outcome(box.run(tmpfs, args=("stat", "-c", "%a", "/t1", "/t2"), prepare=mkdirs)),
    )
    yield "lo in a new netns", outcome(box.run(args=("cat", "/sys/class/net/lo/operstate")))
    src = os.path.join(box.work, "idsrc")
    os.mkdir(src)
    open(os.path.join(src, "f"), "w").close()
    for opt in ("idmap", "ridmap"):

        def idmap(c, opt=opt):
            m = [{"containerID": 0, "hostID": 4000, "size": 10}]
            c["mounts"].append({"destination": "/tmp", "type": "bind", "source": src,
                                "options": ["rbind", opt], "uidMappings": m,
                                "gidMappings": m})  # fmt: skip

        yield f"{opt} with mappings", outcome(box.run(idmap, args=("stat", "-c", "%u", "/tmp/f")))

    def cwd(n):
        return lambda c: c["process"].update(cwd=f"/proc/self/fd/{n}")

    yield (
        "cwd /proc/self/fd/N (N=3..7)",
        " | ".join(outcome(box.run(cwd(n), args=("pwd",)))[:60] for n in range(3, 8)),
    )
    for name, mutate in [
        ("uid 4294967295", lambda c: c["process"]["user"].update(uid=4294967295)),
        ("NUL in args", lambda c: c["process"].update(args=["true\u0000; echo x"])),
        ("mount destination \"\"", lambda c: c["mounts"].append(
            {"destination": "", "type": "tmpfs", "source": "tmpfs"})),
        ("mount destination \"/\"", lambda c: c["mounts"].append(
            {"destination": "/", "type": "tmpfs", "source": "tmpfs"})),
        ("memory -2", lambda c: c["linux"]["resources"].update(memory={"limit": -2})),
        ("swap -5", lambda c: c["linux"]["resources"].update(memory={"limit": 1 << 30,
                                                                      "swap": -5})),
        ("memory 2^63", lambda c: c["linux"]["resources"].update(memory={"limit": 2**63})),
        ("resources.devices {}", lambda c: c["linux"]["resources"].update(devices={})),
        ("memory 4096 (too low to start)", lambda c: c["linux"]["resources"].update(
            memory={"limit": 4096})),
    ]:  # fmt: skip
        yield name, outcome(box.run(mutate, args=("id", "-u")))
    yield "delete --force, poststop fails/times out", delete_force(box)


def poststart(box):
    b = box.bundle(lambda c: c.update(hooks={"poststart": [{"path": "/bin/false"}]}),
                   args=("sleep", "100"))  # fmt: skip
    cid = "bh-post"
    create = box("create", "--bundle", b, cid)
    start = box("start", cid)
    state = box("state", cid)
    status = json.loads(state[1])["status"] if state[0] == 0 else "gone"
    box("delete", "--force", cid)
    return f"create rc={create[0]}, start rc={start[0]}, then {status}"


def delete_force(box):
    b = box.bundle(lambda c: c.update(hooks={"poststop": [
        {"path": "/bin/false"}, {"path": "/bin/sleep", "args": ["sleep", "100"], "timeout": 1}]}),
        args=("sleep", "100"))  # fmt: skip
    box("create", "--bundle", b, "bh-del")
    rc, out, err = box("delete", "--force", "bh-del")
    left = os.path.exists(os.path.join(box.root, "bh-del"))
    return f"rc={rc}, state dir {'left' if left else 'gone'}"


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def mounts(prefix):
    with open("/proc/self/mountinfo") as f:
        return {line.split()[4] for line in f if line.split()[4].startswith(prefix)}


def unmount(points):
    for p in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", p], capture_output=True)


def main(argv):
    for spec in argv or ["sangja", "runc", "crun"]:
        work = tempfile.mkdtemp(prefix="sangja-behaviours-", dir="/tmp")
        os.chmod(work, 0o755)
        try:
            name, binary = resolve_runtime(spec, work)
            print(f"== {name} ({binary})")
            if not binary:
                continue
            for case, what in cases(Box(binary, work)):
                print(f"{case:48} {what}")
        finally:
            unmount(mounts(work))
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
