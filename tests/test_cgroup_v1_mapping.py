"""The cgroup v1 driver's resource-to-file mapping and the device rule model, without a kernel
(the same settings are written to this host's real hierarchies in test_cgroups.py)."""

import pytest

from sangja.errors import ConfigError
from sangja.runtime.cgroups import devices, v1


def writes(res, has=None, current=None):
    return [
        w.key() for w in v1.writes(res, has or (lambda c, f: True), current or (lambda c, f: None))
    ]


def test_memory_and_swap_order_follows_the_current_limit():
    res = {"memory": {"limit": 200, "swap": 400}}
    raise_both = writes(res, current=lambda c, f: "100")
    assert raise_both == [
        ("memory", "memory.memsw.limit_in_bytes", "400"),
        ("memory", "memory.limit_in_bytes", "200"),
    ]
    lower_both = writes(res, current=lambda c, f: "1000")
    assert lower_both == [
        ("memory", "memory.limit_in_bytes", "200"),
        ("memory", "memory.memsw.limit_in_bytes", "400"),
    ]


def test_unlimited_memory_takes_swap_along():
    assert writes({"memory": {"limit": -1}}) == [
        ("memory", "memory.memsw.limit_in_bytes", "-1"),
        ("memory", "memory.limit_in_bytes", "-1"),
    ]
    no_swap_accounting = writes({"memory": {"limit": -1}}, has=lambda c, f: "memsw" not in f)
    assert no_swap_accounting == [("memory", "memory.limit_in_bytes", "-1")]


def test_memory_other_fields():
    res = {
        "memory": {
            "kernel": 1024,
            "kernelTCP": 2048,
            "reservation": 10,
            "swappiness": 0,
            "disableOOMKiller": True,
            "useHierarchy": True,
        }
    }
    assert writes(res) == [
        ("memory", "memory.kmem.limit_in_bytes", "1024"),
        ("memory", "memory.kmem.tcp.limit_in_bytes", "2048"),
        ("memory", "memory.soft_limit_in_bytes", "10"),
        ("memory", "memory.oom_control", "1"),
        ("memory", "memory.swappiness", "0"),  # 0 is a value here
        ("memory", "memory.use_hierarchy", "1"),
    ]
    assert writes({"memory": {"swappiness": -1}}) == []
    with pytest.raises(ConfigError, match="swappiness must be 0 to 100"):
        writes({"memory": {"swappiness": 101}})


def test_cpu_and_cpuset():
    res = {
        "cpu": {
            "shares": 512,
            "period": 100000,
            "quota": 50000,
            "burst": 0,
            "idle": 1,
            "realtimePeriod": 1000000,
            "realtimeRuntime": 950,
            "cpus": "1",
            "mems": "0",
        }
    }
    assert writes(res) == [
        ("cpuset", "cpuset.cpus", "1"),
        ("cpuset", "cpuset.mems", "0"),
        ("cpu", "cpu.shares", "512"),
        ("cpu", "cpu.cfs_period_us", "100000"),
        ("cpu", "cpu.cfs_burst_us", "0"),
        ("cpu", "cpu.cfs_quota_us", "50000"),
        ("cpu", "cpu.idle", "1"),
        ("cpu", "cpu.rt_period_us", "1000000"),
        ("cpu", "cpu.rt_runtime_us", "950"),
    ]
    assert writes({"cpu": {"quota": -1}}) == [("cpu", "cpu.cfs_quota_us", "-1")]


def test_blkio_cfq_and_bfq_files():
    res = {
        "blockIO": {
            "weight": 300,
            "leafWeight": 200,
            "weightDevice": [{"major": 8, "minor": 0, "weight": 100, "leafWeight": 50}],
            "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}],
            "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 10}],
        }
    }
    assert writes(res) == [
        ("blkio", "blkio.weight", "300"),
        ("blkio", "blkio.leaf_weight", "200"),
        ("blkio", "blkio.weight_device", "8:0 100"),
        ("blkio", "blkio.leaf_weight_device", "8:0 50"),
        ("blkio", "blkio.throttle.read_bps_device", "8:0 1000"),
        ("blkio", "blkio.throttle.write_iops_device", "8:0 10"),
    ]
    bfq = writes(
        {"blockIO": {"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 9}]}},
        has=lambda c, f: f != "blkio.weight",
    )
    assert bfq == [
        ("blkio", "blkio.bfq.weight", "300"),
        ("blkio", "blkio.bfq.weight_device", "8:0 9"),
    ]


def test_pids_hugetlb_network_rdma():
    res = {
        "pids": {"limit": -1},
        "hugepageLimits": [{"pageSize": "1GB", "limit": 1 << 30}],
        "network": {"classID": 0x100001, "priorities": [{"name": "eth0", "priority": 5}]},
        "rdma": {"mlx5_1": {"hcaObjects": 7}},
    }
    assert writes(res, has=lambda c, f: "rsvd" not in f) == [
        ("pids", "pids.max", "max"),
        ("hugetlb", "hugetlb.1GB.limit_in_bytes", str(1 << 30)),
        ("net_cls", "net_cls.classid", str(0x100001)),
        ("net_prio", "net_prio.ifpriomap", "eth0 5"),
        ("rdma", "rdma.max", "mlx5_1 hca_object=7"),
    ]


def test_unified_is_refused():
    with pytest.raises(ConfigError, match="unified"):
        writes({"unified": {"memory.max": "1"}})


def test_zero_and_absent_write_nothing():
    assert writes(None) == []
    assert writes({"memory": {"limit": 0}, "cpu": {"shares": 0, "cpus": ""}, "pids": {}}) == []


# -- device rules -----------------------------------------------------------------------------


def rule_list(*spec_rules, linux_devices=()):
    return devices.rules(
        {"resources": {"devices": list(spec_rules)}, "devices": list(linux_devices)}
    )


DENY_ALL = {"allow": False, "access": "rwm"}


def test_default_rules_v1_lines():
    lines = devices.v1_writes(rule_list(DENY_ALL))
    assert lines[0] == ("devices.deny", "a")
    assert set(lines[1:]) == {
        ("devices.allow", x)
        for x in (
            "c *:* m",
            "b *:* m",
            "c 1:3 rwm",
            "c 1:8 rwm",
            "c 1:7 rwm",
            "c 5:0 rwm",
            "c 1:5 rwm",
            "c 1:9 rwm",
            "c 136:* rwm",
            "c 5:2 rwm",
            "c 10:200 rwm",
        )
    }


def test_no_rules_allow_all_and_write_nothing():
    assert devices.v1_writes(rule_list()) == []
    assert devices.v1_writes(rule_list(), currently_allow_all=False) == [("devices.allow", "a")]


def test_allow_all_then_deny_one():
    rules = rule_list(
        {"allow": True, "access": "rwm"},
        {"allow": False, "type": "c", "major": 4, "minor": 0, "access": "rw"},
    )
    assert devices.v1_writes(rules) == [("devices.deny", "c 4:0 rw")]


def test_later_rules_take_access_back():
    rules = rule_list(
        DENY_ALL,
        {"allow": True, "type": "c", "major": 4, "minor": 0, "access": "rwm"},
        {"allow": False, "type": "c", "major": 4, "minor": 0, "access": "rm"},
    )
    default_allow, exc = devices.reduce(rules)
    assert not default_allow
    assert exc[0] == devices.Rule(True, "c", 4, 0, "w")


def test_hole_in_a_wildcard_is_an_error():
    with pytest.raises(ConfigError, match="punch a hole"):
        devices.reduce(
            rule_list(
                DENY_ALL,
                {"allow": True, "type": "c", "access": "rwm"},
                {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "w"},
            )
        )


def test_a_spec_device_replaces_the_default_rule_of_its_path():
    rules = rule_list(
        DENY_ALL, linux_devices=[{"path": "/dev/null", "type": "c", "major": 1, "minor": 3}]
    )
    assert devices.Rule(True, "c", 1, 3, "rwm") not in rules
    assert devices.Rule(True, "c", 1, 5, "rwm") in rules


@pytest.mark.parametrize(
    "bad,msg",
    [
        ({"access": "rwm"}, "allow is required"),
        ({"allow": True, "access": ""}, "access must not be empty"),
        ({"allow": True, "access": "rx"}, "made of r, w and m"),
        ({"allow": True, "type": "p", "access": "r"}, "type must be"),
    ],
)
def test_bad_rules_name_the_field(bad, msg):
    with pytest.raises(ConfigError, match=r"linux.resources.devices\[0\]"):
        rule_list(bad)
    with pytest.raises(ConfigError, match=msg):
        rule_list(bad)
