"""config.json's validation (runtime/spec.py) on plain dicts: every refusal names the field,
and nothing that passes can surprise the plan compiler or C. (The same refusals through the
CLI, with exit codes and nothing left behind: test_errors.py and the fuzzer.)"""

import pytest

from sangja.errors import ConfigError
from sangja.runtime.spec import check_strings, load, load_process, maybe_bad_strings, validate


def config(**over):
    c = {
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "process": {"args": ["sh"], "cwd": "/"},
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]},
    }
    c.update(over)
    return c


def process(**over):
    return {**config()["process"], **over}


def linux(**over):
    return {**config()["linux"], **over}


def test_a_valid_config_is_returned_as_it_is():
    c = config(hostname="h", linux=linux(namespaces=[{"type": "uts"}]))
    assert validate(c) is c


@pytest.mark.parametrize(
    "cfg,words",
    [
        ([], "the top level must be an object"),
        ({"root": {"path": "r"}}, "ociVersion is required"),
        (config(root={"path": ""}), "root.path is required"),
        (config(root={"path": 1}), "root.path must be a string"),
        (config(process=process(args=[])), "process.args must not be empty"),
        (config(process=process(cwd="rel")), "process.cwd must be an absolute path"),
        (config(process=process(user={"uid": 1 << 31})), "process.user.uid must be 0 to"),
        (config(process=process(user={"uid": True})), "process.user.uid must be an integer"),
        (config(process=process(oomScoreAdj=1001)), "process.oomScoreAdj must be -1000 to 1000"),
        (
            config(process=process(rlimits=[{"type": "RLIMIT_NOFILE", "soft": 1}])),
            "process.rlimits[0].hard is required",
        ),
        (config(mounts=[{"destination": "/"}]), "mounts[0].destination must name a path"),
        (config(annotations={"a": 1}), "annotations.a must be a string"),
        (config(hooks={"prestart": [{"path": ""}]}), "hooks.prestart[0].path is required"),
        (
            config(linux=linux(namespaces=[{"type": "pid"}, {"type": "pid"}])),
            "duplicate namespace type 'pid'",
        ),
        (config(linux=linux(namespaces=[{"type": "nope"}])), "unknown namespace type 'nope'"),
        (config(hostname="h"), "hostname without a private UTS namespace"),
        (
            config(linux=linux(namespaces=[{"type": "user"}])),
            "a new user namespace needs uidMappings and gidMappings",
        ),
        (config(linux=linux(sysctl={"kernel.panic": "1"})), "'kernel.panic' is not a namespaced"),
        (
            config(linux=linux(sysctl={"net.ipv4.ip_forward": "1"})),
            "'net.ipv4.ip_forward' needs a new network namespace",
        ),
        (config(linux=linux(resources={"devices": {}})), "linux.resources.devices must be an"),
        (config(linux=linux(devices=[{"path": "/dev/x", "type": "c"}])), "major and minor are"),
        (config(linux=linux(timeOffsets={"boottime": {}})), "timeOffsets need a time namespace"),
    ],
)
def test_refusals_name_the_field(cfg, words):
    with pytest.raises(ConfigError, match="config.json") as e:
        validate(cfg)
    assert words in str(e.value)


def test_strings_that_cannot_reach_c():
    with pytest.raises(ConfigError, match=r"process.args\[0\] must not contain NUL"):
        check_strings(config(process=process(args=["a\0b"])))
    with pytest.raises(ConfigError, match="lone surrogate"):
        check_strings(config(hostname="\udcff"))
    check_strings(config(annotations={"free": "a\0b"}))  # annotations only go out as JSON
    assert maybe_bad_strings(b'{"a": "\\u0000"}') and not maybe_bad_strings(b'{"a": "b"}')


def test_load_reads_the_bundle(tmp_path):
    with pytest.raises(ConfigError, match="config.json not found in bundle"):
        load(str(tmp_path))
    (tmp_path / "config.json").write_text('{"ociVersion": "1.2.0", "root": {"path": "r"}')
    with pytest.raises(ConfigError, match="config.json: invalid JSON"):
        load(str(tmp_path))
    (tmp_path / "config.json").write_text('{"ociVersion": "1.2.0", "root": {"path": "\\u0000"}}')
    with pytest.raises(ConfigError, match="root.path must not contain NUL"):
        load(str(tmp_path))


def test_load_process_names_its_file(tmp_path):
    path = tmp_path / "process.json"
    with pytest.raises(ConfigError, match=f"open {path}: no such file or directory"):
        load_process(str(path))
    path.write_text('{"args": ["sh"], "cwd": "x"}')
    with pytest.raises(ConfigError, match=f"{path}: cwd must be an absolute path"):
        load_process(str(path))
    path.write_text('{"args": ["sh"], "cwd": "/"}')
    assert load_process(str(path)) == {"args": ["sh"], "cwd": "/"}
