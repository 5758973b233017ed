"""The launch plan compiler (runtime/plan.py) on plain dicts, without a container: what
`create` and `exec` would hand the C init. Compiling opens no fd and makes nothing; it reads
only the bundle (the rootfs, a bind mount's source) and the runtime's own bounding set."""

import json
import os

import pytest

from sangja.errors import ConfigError, SangjaError
from sangja.runtime import constants as K
from sangja.runtime.plan import (
    compile_create,
    compile_exec,
    exec_cgroups,
    exec_process,
    merge_env,
    namespace_paths,
    sysctl_path,
)

PROCESS = {"args": ["sh"], "cwd": "/", "env": ["PATH=/bin", "A=1", "A=2"], "user": {"uid": 0}}
V1 = {
    "paths": {"cpu,cpuacct": "/cg/cpu,cpuacct/c", "memory": "/cg/memory/c", "": "/cg/unified/c"},
    "unified": False,
    "clone_into": "/cg/unified/c",
    "join": ["/cg/cpu,cpuacct/c", "/cg/memory/c"],
}
V2 = {"paths": {"": "/cg/c"}, "unified": True, "clone_into": "/cg/c", "join": []}


@pytest.fixture
def bundle(tmp_path):
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "data").mkdir()
    return str(tmp_path)


def config(**over):
    c = {
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "process": dict(PROCESS),
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]},
    }
    c.update(over)
    return c


def create(bundle, cfg=None, **kw):
    warnings = []
    plan = compile_create(cfg or config(), bundle, "c1", warn=warnings.append, **kw)
    return plan, warnings


# -- create -----------------------------------------------------------------------------


def test_create_plan_is_data(bundle):
    plan, _ = create(bundle, preserve_fds=2, log_fd=7)
    assert plan.clone_flags == K.CLONE_NEWPID | K.CLONE_NEWNS
    assert plan.namespaces == {"pid": None, "mount": None}
    assert plan.rootfs == os.path.realpath(f"{bundle}/rootfs")
    assert plan.args == ["sh"] and plan.cwd == "/"
    assert plan.env == ["PATH=/bin", "A=2"] and plan.path_env == "/bin"
    assert plan.preserve_fds == 2 and plan.log_fd == 7
    assert plan.session_keyring == "c1"
    # no fd opened: the Runtime opens what the plan names
    fds = ("exec_fifo_fd", "console_fd", "cgroup_fd", "exec_pidfd", "exec_root_fd")
    assert all(getattr(plan, f) == -1 for f in fds)
    # /dev is not bound from the host: the default devices and links
    assert [d.path for d in plan.devices][:2] == ["/dev/null", "/dev/zero"]
    assert any(m.kind == K.MOUNT_SYMLINK and m.target == "/dev/ptmx" for m in plan.mounts)
    assert plan.seccomp_bpf is None and plan.seccomp is None
    assert not plan.hook_sync and plan.hook_state is None
    assert plan.id_maps is None
    assert plan.cgroup_dir is None and plan.cgroup_join == [] and plan.parent_cgroup_joins == []


def test_no_new_keyring(bundle):
    plan, _ = create(bundle, no_new_keyring=True)
    assert plan.session_keyring is None


def test_cgroups_joined_by_the_init(bundle):
    plan, _ = create(bundle, cgroups=V1)
    assert plan.cgroup_dir == "/cg/unified/c"  # cloned into (CLONE_INTO_CGROUP)
    assert plan.cgroup_join == ["/cg/cpu,cpuacct/c/tasks", "/cg/memory/c/tasks"]
    assert plan.parent_cgroup_joins == []


def test_user_namespace(bundle):
    linux = {
        "namespaces": [{"type": "user"}, {"type": "mount"}],
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 10}],
        "gidMappings": [{"containerID": 0, "hostID": 2000, "size": 1}],
    }
    plan, _ = create(bundle, config(linux=linux), cgroups=V1)
    assert plan.id_maps == ("0 1000 10\n", "0 2000 1\n")
    # the init may not write the v1 `tasks` files: the runtime moves it
    assert plan.cgroup_join == []
    assert plan.parent_cgroup_joins == ["/cg/cpu,cpuacct/c", "/cg/memory/c"]
    assert all(d.bind_from_host for d in plan.devices)


def test_joined_namespaces(bundle):
    linux = {"namespaces": [{"type": "network", "path": "/run/netns/x"}, {"type": "mount"}]}
    plan, _ = create(bundle, config(linux=linux))
    assert plan.joins == [(K.NAMESPACES["network"], "/run/netns/x")]
    assert plan.clone_flags == K.CLONE_NEWNS
    assert namespace_paths(plan.namespaces, 42) == {
        "network": "/run/netns/x",
        "mount": "/proc/42/ns/mnt",
    }


def test_hooks(bundle):
    hook = {"path": "/bin/true", "args": ["true", "x"], "timeout": 5}
    cfg = config(
        hooks={"prestart": [hook], "createContainer": [hook], "startContainer": [{"path": "/h"}]},
        annotations={"a": "b"},
    )
    plan, _ = create(bundle, cfg)
    assert plan.hook_sync  # the init stops for the runtime's prestart
    assert plan.create_container_hooks == [("/bin/true", ["true", "x"], None, 5)]
    assert plan.start_container_hooks == [("/h", [], None, 0)]
    state = json.loads("{" + plan.hook_state + "}")
    assert state == {"ociVersion": "1.2.0", "id": "c1", "bundle": bundle, "annotations": {"a": "b"}}


def test_seccomp_is_compiled_into_the_plan(bundle):
    linux = dict(config()["linux"])
    linux["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}],
    }
    plan, _ = create(bundle, config(linux=linux))
    assert plan.seccomp_bpf and len(plan.seccomp_bpf) % 8 == 0  # struct sock_filter[]
    assert plan.seccomp == {"flags": 0, "listenerPath": None, "listenerMetadata": None}


def test_seccomp_notify_names_its_listener(bundle):
    linux = dict(config()["linux"])
    linux["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/listener.sock",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}],
    }
    plan, _ = create(bundle, config(linux=linux))
    assert plan.seccomp_flags & 8  # SECCOMP_FILTER_FLAG_NEW_LISTENER
    assert plan.seccomp["listenerPath"] == "/run/listener.sock"


def test_cgroup_mount_v2(bundle):
    mount = {"destination": "/sys/fs/cgroup", "type": "cgroup", "options": ["ro"]}
    plan, _ = create(bundle, config(mounts=[mount]), cgroups=V2)
    m = plan.mounts[0]
    assert (m.kind, m.source) == (K.MOUNT_BIND, "/cg/c")
    assert m.attr_set & K.MOUNT_ATTR_RDONLY
    linux = {"namespaces": [{"type": "mount"}, {"type": "cgroup"}]}
    plan, _ = create(bundle, config(mounts=[mount], linux=linux), cgroups=V2)
    assert (plan.mounts[0].kind, plan.mounts[0].fstype) == (K.MOUNT_FS, "cgroup2")


def test_cgroup_mount_v1(bundle):
    mount = {"destination": "/sys/fs/cgroup", "type": "cgroup", "options": ["ro"]}
    plan, _ = create(bundle, config(mounts=[mount]), cgroups=V1)
    got = [(m.kind, m.target, m.source) for m in plan.mounts if m.target.startswith("/sys")]
    assert got == [
        (K.MOUNT_FS, "/sys/fs/cgroup", "tmpfs"),
        (K.MOUNT_BIND, "/sys/fs/cgroup/cpu,cpuacct", "/cg/cpu,cpuacct/c"),
        (K.MOUNT_SYMLINK, "/sys/fs/cgroup/cpu", "cpu,cpuacct"),
        (K.MOUNT_SYMLINK, "/sys/fs/cgroup/cpuacct", "cpu,cpuacct"),
        (K.MOUNT_BIND, "/sys/fs/cgroup/memory", "/cg/memory/c"),
        (K.MOUNT_REMOUNT, "/sys/fs/cgroup", None),  # read-only once they are in place
    ]


def test_bind_mount_source_is_read(bundle):
    mounts = [
        {"destination": "/data", "source": "data", "options": ["rbind", "ro"]},
        {"destination": "/f", "source": "/etc/hostname", "type": "bind"},
    ]
    plan, _ = create(bundle, config(mounts=mounts))
    data, f = plan.mounts[:2]
    assert data.source == f"{bundle}/data" and data.target_is_dir and data.recursive
    assert data.attr_set & K.MOUNT_ATTR_RDONLY
    assert not f.target_is_dir


@pytest.mark.parametrize(
    "cfg,words",
    [
        (config(process=None), "process is required"),
        (config(root={"path": "nowhere"}), "does not exist"),
        (config(mounts=[{"destination": "/x", "source": "missing", "type": "bind"}]), "missing"),
        (
            config(process={**PROCESS, "rlimits": [{"type": "RLIMIT_X", "soft": 1, "hard": 1}]}),
            "unknown rlimit",
        ),
    ],
)
def test_create_refuses(bundle, cfg, words):
    with pytest.raises(SangjaError, match=words):
        create(bundle, cfg)


def test_unknown_capability_is_a_warning(bundle):
    cfg = config(process={**PROCESS, "capabilities": {"bounding": ["CAP_CHOWN", "CAP_NOPE"]}})
    plan, warnings = create(bundle, cfg)
    assert plan.cap_bounding == 1 << K.CAP_NUMBERS["CAP_CHOWN"]
    assert warnings == ["config.json: bounding: unknown capability 'CAP_NOPE', ignored"]


# -- exec -------------------------------------------------------------------------------

STATE = {
    "id": "c1",
    "pid": 4242,
    "namespaces": {"pid": "/proc/4242/ns/pid", "user": "/proc/4242/ns/user"},
    "cgroups": {"paths": {"memory": "/cg/memory/c", "": "/cg/unified/c"}, "unified": False},
    "seccomp": {"flags": 1, "listenerPath": None, "listenerMetadata": None},
}


def test_exec_plan_from_the_record():
    plan = compile_exec(STATE, dict(PROCESS), preserve_fds=1, log_fd=5, seccomp_bpf=b"x" * 8)
    assert plan.exec_nstypes == K.NAMESPACES["pid"] | K.NAMESPACES["user"]
    assert plan.exec_root == "/proc/4242/root"  # no mount namespace: the init's chroot
    assert plan.cgroup_dir == "/cg/unified/c" and plan.cgroup_join == ["/cg/memory/c/tasks"]
    assert (plan.seccomp_bpf, plan.seccomp_flags) == (b"x" * 8, 1)
    assert plan.session_keyring == "c1" and plan.preserve_fds == 1 and plan.log_fd == 5
    assert plan.clone_flags == 0 and plan.joins == [] and plan.mounts == []
    assert plan.env == ["PATH=/bin", "A=2"]


def test_exec_own_user_namespace_is_not_joined():
    plan = compile_exec({**STATE, "no_new_keyring": True}, dict(PROCESS), join_userns=False)
    assert plan.exec_nstypes == K.NAMESPACES["pid"]
    assert plan.session_keyring is None


def test_exec_with_a_mount_namespace_has_no_root():
    state = {**STATE, "namespaces": {"mount": "/proc/4242/ns/mnt"}, "seccomp": None}
    plan = compile_exec(state, dict(PROCESS))
    assert plan.exec_root is None and plan.seccomp_bpf is None


def test_exec_cgroups_below_the_container(tmp_path):
    (tmp_path / "mem" / "sub").mkdir(parents=True)
    (tmp_path / "uni" / "sub").mkdir(parents=True)
    cg = {"paths": {"memory": f"{tmp_path}/mem", "": f"{tmp_path}/uni"}}
    assert exec_cgroups(cg, ["memory:sub"]) == (f"{tmp_path}/uni", [f"{tmp_path}/mem/sub/tasks"])
    assert exec_cgroups(cg, ["sub"]) == (f"{tmp_path}/uni/sub", [f"{tmp_path}/mem/sub/tasks"])
    with pytest.raises(SangjaError, match="not inside the container's cgroup"):
        exec_cgroups(cg, ["../x"])
    with pytest.raises(SangjaError, match="does not exist"):
        exec_cgroups(cg, ["memory:none"])


def test_exec_process_applies_the_command_line():
    base = {**PROCESS, "capabilities": {"bounding": ["CAP_KILL"], "inheritable": []}}
    proc = exec_process(base, ["ls", "-l"], tty=True, cwd="/tmp", env=["B=1"], user="5:6",
                        additional_gids=["7"], caps=["CAP_CHOWN"], no_new_privs=True)  # fmt: skip
    assert proc["args"] == ["ls", "-l"] and proc["terminal"] and proc["cwd"] == "/tmp"
    assert proc["env"] == ["PATH=/bin", "A=1", "A=2", "B=1"]
    assert proc["user"] == {"uid": 5, "gid": 6, "additionalGids": [7]}
    assert proc["capabilities"]["bounding"] == ["CAP_KILL", "CAP_CHOWN"]
    assert proc["capabilities"]["ambient"] == ["CAP_CHOWN"]  # the config has inheritable
    assert proc["noNewPrivileges"] is True
    assert base["args"] == ["sh"]  # the record is left as it was


@pytest.mark.parametrize(
    "kw,words",
    [
        ({"args": []}, "args cannot be empty"),
        ({"args": ["x"], "user": "me"}, "invalid user"),
        ({"args": ["x"], "additional_gids": ["g"]}, "invalid --additional-gids"),
        ({"args": ["x"], "cwd": "rel"}, "must be an absolute path"),
    ],
)
def test_exec_process_refuses(kw, words):
    args = kw.pop("args")
    with pytest.raises(SangjaError, match=words):
        exec_process(dict(PROCESS), args, **kw)


# -- small parts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key,path",
    [
        ("net.ipv4.ip_forward", "net/ipv4/ip_forward"),
        ("net/ipv4/conf/eth0.100/forwarding", "net/ipv4/conf/eth0.100/forwarding"),
        ("net.ipv4.conf.eth0/100.forwarding", "net/ipv4/conf/eth0.100/forwarding"),
    ],
)
def test_sysctl_path(key, path):
    assert sysctl_path(key) == path


def test_merge_env_keeps_the_first_place():
    assert merge_env(["A=1", "B=2", "A=3"]) == ["A=3", "B=2"]


def test_config_error_is_a_config_error(bundle):
    with pytest.raises(ConfigError):
        create(bundle, config(linux={"namespaces": [], "intelRdt": {}}))
