"""Privilege dropping, in the order that is safe: nothing inheritable or ambient unless asked,
noNewPrivileges in force, a cwd only the user may enter, no way back to a dropped capability
(capset, setuid-root and file-capability programs), LSM profiles refused where the host has
no such LSM. The checks run in the container, by tests/probe.c."""

import os
import struct

import pytest
import seckit
from rtkit import config

CAP_SYS_ADMIN = 21
CAP_NET_ADMIN = 12


def status(out):
    """`probe status` output -> {"CapEff": int, "Uid": [..], "NoNewPrivs": int, ...}."""
    res = {}
    for line in out.splitlines():
        key, _, value = line.partition(":\t")
        if key.startswith("Cap"):
            res[key] = int(value, 16)
        elif key == "Uid":
            res[key] = [int(x) for x in value.split()]
        elif key in ("NoNewPrivs", "Seccomp"):
            res[key] = int(value)
    return res


def probed(rt, cfg, script):
    cfg["process"]["args"] = ["sh", "-c", script]
    b = rt.bundle(cfg)
    seckit.add_probe(b)
    return b


def bits(names):
    from sangja.runtime.constants import CAP_NUMBERS

    return sum(1 << CAP_NUMBERS[n] for n in names)


def test_no_inheritable_or_ambient_unless_asked(rt):
    """runc's default spec asks for ambient capabilities but no inheritable ones: the
    process gets neither (an ambient capability needs an inheritable one)."""
    c = config([])
    caps = c["process"]["capabilities"]
    assert caps.get("ambient") and not caps.get("inheritable")
    st = status(rt.output(probed(rt, c, "probe status")))
    assert st["CapInh"] == 0 and st["CapAmb"] == 0, st
    assert st["CapEff"] == st["CapPrm"] == st["CapBnd"] == bits(caps["bounding"]), st


def test_inheritable_and_ambient_when_asked(rt):
    c = config([])
    c["process"]["user"] = {"uid": 1000, "gid": 1000}
    for s in ("bounding", "permitted", "inheritable", "ambient", "effective"):
        c["process"]["capabilities"][s] = ["CAP_NET_ADMIN"]
    st = status(rt.output(probed(rt, c, "probe status")))
    want = 1 << CAP_NET_ADMIN
    assert st["CapInh"] == st["CapAmb"] == st["CapEff"] == st["CapPrm"] == want, st
    assert st["Uid"] == [1000] * 4


def test_cwd_only_the_user_may_enter(rt):
    """The cwd is reached as the user when root may not (root-squashed volumes), and the
    user's groups are in place by then."""
    c = config([])
    c["process"]["user"] = {"uid": 1000, "gid": 1000}
    c["process"]["cwd"] = "/home/u"
    c["root"]["readonly"] = False
    b = probed(rt, c, "pwd; probe status")
    home = os.path.join(b.rootfs, "home/u")
    os.makedirs(home)
    os.chown(home, 1000, 1000)
    os.chmod(home, 0o700)
    out = rt.output(b)
    assert out.startswith("/home/u\n") and status(out)["Uid"] == [1000] * 4


def test_no_new_privileges_stops_setuid(rt):
    """noNewPrivileges (set early, before anything is executed): a setuid-root program run
    by a user stays the user."""
    c = config([])
    c["process"]["user"] = {"uid": 1000, "gid": 1000}
    c["process"]["noNewPrivileges"] = True
    b = probed(rt, c, "/bin/suid-probe status")
    suid = os.path.join(b.rootfs, "bin/suid-probe")
    os.link(os.path.join(b.rootfs, "bin/probe"), suid)
    os.chmod(suid, 0o4755)
    st = status(rt.output(b))
    assert st["NoNewPrivs"] == 1 and st["Uid"] == [1000] * 4 and st["CapEff"] == 0, st


def test_dropped_capability_never_comes_back(rt):
    """capset cannot raise anything outside the sets given, no ambient capability can be
    raised; a setuid-root program (no noNewPrivileges) becomes root with the bounding set
    only; a program with CAP_SYS_ADMIN in its file capabilities does not get it (the kernel
    refuses to run it)."""
    c = config([])
    c["process"]["user"] = {"uid": 1000, "gid": 1000}
    c["process"]["noNewPrivileges"] = False
    c["root"]["readonly"] = False
    bounding = bits(c["process"]["capabilities"]["bounding"])
    script = (
        "probe caps-raise; echo ==; /bin/suid-probe status; echo ==; "
        "/bin/fcap-probe status || echo refused"
    )
    b = probed(rt, c, script)
    suid = os.path.join(b.rootfs, "bin/suid-probe")
    fcap = os.path.join(b.rootfs, "bin/fcap-probe")
    for p in (suid, fcap):
        with open(os.path.join(b.rootfs, "bin/probe"), "rb") as f, open(p, "wb") as g:
            g.write(f.read())
    os.chmod(suid, 0o4755)
    os.chmod(fcap, 0o755)
    # security.capability, VFS_CAP_REVISION_2 with the effective bit: CAP_SYS_ADMIN permitted
    os.setxattr(fcap, "security.capability",
                struct.pack("<IIIII", 0x02000001, 1 << CAP_SYS_ADMIN, 0, 0, 0))  # fmt: skip
    raised, setuid, fcaps = rt.output(b).split("==\n")
    assert "capset all = -1 errno 1" in raised and "ambient raised 0" in raised, raised
    st = status(setuid)
    assert st["Uid"][1] == 0 and st["CapEff"] & ~bounding == 0, st  # euid 0, no more caps
    # The kernel refuses to run a program whose file capabilities the bounding set cuts
    # (EPERM); if it ran, it would be without them.
    if "refused" not in fcaps:
        st = status(fcaps)
        assert not (st["CapEff"] | st["CapPrm"]) & (1 << CAP_SYS_ADMIN), st


def test_exec_drops_privileges_the_same_way(rt):
    c = config(["sleep", "1000"])
    b = rt.bundle(c)
    seckit.add_probe(b)
    cid = rt.new_id()
    rt("run", "-d", "--bundle", b.path, cid).ok()
    rt.pids.add(rt.state(cid)["pid"])
    out = rt("exec", "--user", "1000:1000", cid, "probe", "status").ok().out
    st = status(out)
    assert st["CapInh"] == st["CapAmb"] == 0 and st["Uid"] == [1000] * 4, st
    assert st["CapEff"] == 0 and st["NoNewPrivs"] == 1, st


def apparmor_on_host():
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            return f.read(1) == "Y"
    except OSError:
        return False


@pytest.mark.parametrize("verb", ["run", "exec"])
def test_apparmor_profile_without_apparmor_is_an_error(rt, verb):
    """Asked for, a profile must confine the process: on a host without AppArmor that is
    an error with a reason, never a container that runs unconfined."""
    if apparmor_on_host():
        pytest.skip("this host has AppArmor")
    if verb == "run":
        c = config(["true"])
        c["process"]["apparmorProfile"] = "docker-default"
        cid = rt.new_id()
        r = rt("run", "--bundle", rt.bundle(c).path, cid)
        assert r.rc == 1 and "apparmor" in r.err.lower(), r
        rt.assert_nothing_left(cid)
    else:
        b = rt.bundle(config(["sleep", "1000"]))
        cid = rt.new_id()
        rt("run", "-d", "--bundle", b.path, cid).ok()
        rt.pids.add(rt.state(cid)["pid"])
        r = rt("exec", "--apparmor", "docker-default", cid, "true")
        assert r.rc == 255 and "apparmor" in r.err.lower(), r


def test_selinux_label_without_selinux_is_an_error(rt):
    if os.path.exists("/sys/fs/selinux/enforce"):
        pytest.skip("this host has SELinux")
    c = config(["true"])
    c["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0"
    r = rt.run(c)
    assert r.rc == 1 and "selinux" in r.err.lower(), r
