"""The cgroup v2 driver's resource-to-file mapping and device program, WITHOUT A KERNEL.

This host's cgroup2 mount has no controllers but hugetlb, so memory.max, cpu.max, io.max,
pids.max... cannot be written here: these tests check what the driver would write (files,
values, order, the v1 -> v2 conversions runc and crun make), and run the device BPF program
in a small interpreter of the instructions it uses. What the kernel does with them is tested
where it can be (test_cgroups.py: cgroup.procs, cgroup.freeze, cgroup.kill, hugetlb and the
device program, on /sys/fs/cgroup/unified).
"""

import pytest
from rtkit import UNSET_RESOURCES

from sangja.errors import ConfigError
from sangja.runtime.cgroups import devices, v2


def writes(res, has=None, current=None):
    warnings = []
    ws = v2.writes(
        res,
        has or (lambda f: True),
        current or (lambda f: None),
        warnings.append,
    )
    assert all(w.controller == "" for w in ws)
    return [(w.file, w.value) for w in ws], warnings


# -- conversions ----------------------------------------------------------------------------


@pytest.mark.parametrize("shares,weight", [(0, 0), (2, 1), (512, 20), (1024, 39), (262144, 10000)])
def test_cpu_weight_from_shares(shares, weight):
    assert v2.cpu_weight(shares) == weight


@pytest.mark.parametrize("blkio,io", [(0, 0), (10, 1), (100, 910), (500, 4950), (1000, 10000)])
def test_io_weight_from_blkio_weight(blkio, io):
    assert v2.io_weight(blkio) == io


@pytest.mark.parametrize(
    "limit,swap,want",
    [
        (100, 200, 100),  # memory+swap -> swap alone
        (100, 100, 0),  # no swap at all
        (100, -1, -1),  # unlimited swap
        (-1, 0, -1),  # unlimited memory, swap unset: unlimited both
        (100, 0, None),  # swap unset: leave it
        (0, 0, None),
    ],
)
def test_swap_max(limit, swap, want):
    assert v2.swap_max(swap, limit) == want


def test_swap_without_memory_limit_is_an_error():
    with pytest.raises(ConfigError, match="without a memory limit"):
        v2.swap_max(200, 0)


# -- the mapping ----------------------------------------------------------------------------


def test_memory():
    ws, _ = writes({"memory": {"limit": 100 << 20, "swap": 300 << 20, "reservation": 50 << 20}})
    assert ws == [
        ("memory.swap.max", str(200 << 20)),
        ("memory.max", str(100 << 20)),
        ("memory.low", str(50 << 20)),
    ]


def test_memory_unlimited_and_swap_off():
    assert writes({"memory": {"limit": -1}})[0] == [
        ("memory.swap.max", "max"),
        ("memory.max", "max"),
    ]
    assert writes({"memory": {"limit": 64, "swap": 64}})[0] == [
        ("memory.swap.max", "0"),
        ("memory.max", "64"),
    ]


def test_swap_below_memory_is_an_error():
    with pytest.raises(ConfigError, match="memory.swap .* must not be below"):
        writes({"memory": {"limit": 200, "swap": 100}})


def test_memory_fields_v2_lacks_are_warned_about():
    ws, warnings = writes(
        {
            "memory": {
                "kernel": 1 << 20,
                "kernelTCP": 1 << 20,
                "swappiness": 10,
                "disableOOMKiller": True,
                "useHierarchy": True,
            }
        }
    )
    assert ws == []
    text = " ".join(warnings)
    for f in ("kernel", "kernelTCP", "swappiness", "disableOOMKiller"):
        assert f"memory.{f}:" in text


def test_cpu():
    ws, _ = writes(
        {"cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 1000, "idle": 1}}
    )
    assert ws == [
        ("cpu.idle", "1"),
        ("cpu.weight", "39"),
        ("cpu.max", "50000 100000"),
        ("cpu.max.burst", "1000"),
    ]


def test_cpu_quota_alone_and_unlimited():
    assert writes({"cpu": {"quota": 20000}})[0] == [("cpu.max", "20000")]
    assert writes({"cpu": {"quota": -1, "period": 50000}})[0] == [("cpu.max", "max 50000")]


def test_cpu_period_alone_keeps_the_quota():
    current = {"cpu.max": "30000 100000"}.get
    assert writes({"cpu": {"period": 250000}}, current=current)[0] == [("cpu.max", "30000 250000")]
    assert writes({"cpu": {"period": 250000}})[0] == [("cpu.max", "max 250000")]


def test_cpuset():
    assert writes({"cpu": {"cpus": "0-3", "mems": "0"}})[0] == [
        ("cpuset.cpus", "0-3"),
        ("cpuset.mems", "0"),
    ]


def test_realtime_is_an_error():
    with pytest.raises(ConfigError, match="realtime"):
        writes({"cpu": {"realtimeRuntime": 1000}})


def test_pids():
    assert writes({"pids": {"limit": 100}})[0] == [("pids.max", "100")]
    assert writes({"pids": {"limit": -1}})[0] == [("pids.max", "max")]


def test_io_with_and_without_bfq():
    res = {
        "blockIO": {
            "weight": 500,
            "weightDevice": [{"major": 8, "minor": 0, "weight": 200}],
            "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1 << 20}],
            "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2 << 20}],
            "throttleReadIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}],
            "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 200}],
        }
    }
    throttles = [
        ("io.max", "8:0 rbps=1048576"),
        ("io.max", "8:0 wbps=2097152"),
        ("io.max", "8:16 riops=100"),
        ("io.max", "8:16 wiops=200"),
    ]
    bfq, _ = writes(res, has=lambda f: f == "io.bfq.weight")
    assert bfq == [("io.bfq.weight", "500"), ("io.bfq.weight", "8:0 200"), *throttles]
    plain, _ = writes(res, has=lambda f: False)
    assert plain == [("io.weight", "4950"), ("io.weight", "8:0 1920"), *throttles]


def test_leaf_weight_is_warned_about():
    ws, warnings = writes({"blockIO": {"leafWeight": 300}})
    assert ws == [] and "leafWeight" in warnings[0]


def test_hugetlb_with_reservations_when_there():
    res = {"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}]}
    assert writes(res, has=lambda f: False)[0] == [("hugetlb.2MB.max", str(4 << 20))]
    assert writes(res)[0] == [
        ("hugetlb.2MB.max", str(4 << 20)),
        ("hugetlb.2MB.rsvd.max", str(4 << 20)),
    ]


def test_hugetlb_bad_page_size():
    with pytest.raises(ConfigError, match=r"hugepageLimits\[0\].pageSize"):
        writes({"hugepageLimits": [{"pageSize": "2M", "limit": 1}]})


def test_rdma():
    res = {"rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}, "mlx4_0": {"hcaHandles": 1}}}
    assert writes(res)[0] == [
        ("rdma.max", "mlx5_1 hca_handle=3 hca_object=10000"),
        ("rdma.max", "mlx4_0 hca_handle=1"),
    ]


def test_network_is_warned_about():
    ws, warnings = writes(
        {"network": {"classID": 1, "priorities": [{"name": "eth0", "priority": 5}]}}
    )
    assert ws == [] and "network" in warnings[0]


def test_unified_is_written_last_and_wins():
    ws, _ = writes(
        {"memory": {"limit": 100}, "unified": {"memory.max": "200", "io.weight": "default 50"}}
    )
    assert ws == [("memory.max", "100"), ("memory.max", "200"), ("io.weight", "default 50")]


@pytest.mark.parametrize("key", ["../escape", "a/b", "nodot", ""])
def test_unified_key_must_be_a_file_name(key):
    with pytest.raises(ConfigError, match="linux.resources.unified"):
        writes({"unified": {key: "1"}})


def test_zero_values_write_nothing():
    assert writes(UNSET_RESOURCES) == ([], [])
    assert writes(None) == ([], [])


def test_wrong_types_name_the_field():
    with pytest.raises(ConfigError, match=r"linux.resources.cpu.shares must be an integer"):
        writes({"cpu": {"shares": "1024"}})
    with pytest.raises(ConfigError, match=r"linux.resources.memory must be an object"):
        writes({"memory": 5})
    with pytest.raises(ConfigError, match=r"linux.resources.unified.memory.max must be a string"):
        writes({"unified": {"memory.max": 5}})


# -- the device program ----------------------------------------------------------------------


DEFAULT_RULES = devices.rules({"resources": {"devices": [{"allow": False, "access": "rwm"}]}})


def expected(rules, dev, access):
    """The decision of the v1 model (the emulator): what both drivers must enforce."""
    default_allow, exceptions = devices.reduce(rules)
    typ, major, minor = dev
    for r in exceptions:
        covers = r.major in (devices.WILDCARD, major) and r.minor in (devices.WILDCARD, minor)
        if r.type == typ and covers and set(access) <= set(r.access):
            return int(r.allow)
    return int(default_allow)


PROBES = [
    (("c", 1, 3), "rw"),  # /dev/null
    (("c", 1, 3), "m"),
    (("c", 4, 0), "r"),  # /dev/tty0
    (("c", 4, 0), "m"),  # mknod of any char device is allowed
    (("b", 8, 0), "r"),
    (("b", 8, 0), "m"),
    (("c", 136, 7), "rw"),  # a pts
    (("c", 5, 2), "rwm"),  # ptmx
    (("c", 10, 200), "rw"),  # tun
    (("c", 10, 229), "rw"),  # fuse: denied
]


def interpret(insns, dev, access):
    typ, major, minor = dev
    acc = sum(devices._ACC[c] for c in access)
    dt = devices.DEV_CHAR if typ == "c" else devices.DEV_BLOCK
    ctx = [(acc << 16) | dt, major, minor]
    reg = {1: "ctx"}
    pc = 0
    while True:
        code, dst, src, off, imm = insns[pc]
        pc += 1
        if code == devices.LDX_MEM_W:
            assert reg[src] == "ctx"
            reg[dst] = ctx[off // 4]
        elif code == devices.ALU32_AND_K:
            reg[dst] &= imm
        elif code == devices.ALU32_RSH_K:
            reg[dst] >>= imm
        elif code == devices.ALU32_MOV_K:
            reg[dst] = imm
        elif code == devices.ALU32_MOV_X:
            reg[dst] = reg[src]
        elif code == devices.JNE_K:
            pc += off if reg[dst] != imm else 0
        elif code == devices.JNE_X:
            pc += off if reg[dst] != reg[src] else 0
        elif code == devices.EXIT:
            return reg[0]
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
        assert 0 <= pc < len(insns), "a jump out of the program"


@pytest.mark.parametrize(
    "rules",
    [
        DEFAULT_RULES,
        devices.rules({}),  # no rules: allow all (runc's extra allows change nothing)
        devices.rules(
            {
                "resources": {
                    "devices": [
                        {"allow": False, "access": "rwm"},
                        {"allow": True, "type": "c", "major": 4, "access": "r"},
                        {"allow": False, "type": "b", "major": 8, "minor": 0, "access": "m"},
                    ]
                }
            }
        ),
        devices.rules(
            {
                "resources": {
                    "devices": [
                        {"allow": False, "type": "c", "major": 4, "minor": 0, "access": "rw"}
                    ]
                }
            }  # fmt: skip
        ),
    ],
    ids=["default", "none", "mixed", "allow-all-but-tty0"],
)
def test_program_decides_as_the_v1_model(rules):
    default_allow, exceptions = devices.reduce(rules)
    insns = devices.program_insns(default_allow, exceptions)
    for dev, access in PROBES:
        assert interpret(insns, dev, access) == expected(rules, dev, access), (dev, access)


def test_default_program_denies_tty0_allows_null():
    insns = devices.program_insns(*devices.reduce(DEFAULT_RULES))
    assert interpret(insns, ("c", 4, 0), "r") == 0
    assert interpret(insns, ("c", 4, 0), "w") == 0
    assert interpret(insns, ("c", 1, 3), "rw") == 1
    assert interpret(insns, ("c", 1, 3), "r") == 1


def test_program_encoding():
    code, allow_all = devices.program(DEFAULT_RULES)
    assert not allow_all
    assert len(code) % 8 == 0
    # r2 = *(u32 *)(r1 + 0): opcode 0x61, dst 2 in the low nibble, src 1 in the high one
    assert code[:8] == bytes([0x61, 0x12, 0, 0, 0, 0, 0, 0])
    # the program ends "r0 = 0 (deny); exit"
    assert code[-16:] == bytes([0xB4, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0])
    assert devices.encode([(devices.JNE_K, 4, 0, -1, 136)]) == bytes(
        [0x55, 0x04, 0xFF, 0xFF, 136, 0, 0, 0]
    )


def test_allow_all_needs_no_program():
    assert devices.program(devices.rules({}))[1] is True
