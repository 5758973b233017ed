"""How `-v`, `--mount`, `--volumes-from`, `--tmpfs` and an image's VOLUME read, Docker's
rules and error texts (engine/mounts.py, cli/mountflag.py).  What they do in a running
container is in test_volume_containers.py."""

import pytest


def bind(raw):
    from sangja.engine.mounts import parse_bind

    return parse_bind(raw)


def err(fn, *a):
    from sangja.errors import SangjaError

    with pytest.raises((SangjaError, Exception)) as e:
        fn(*a)
    return str(e.value)


def test_v_forms():
    p = bind("data:/srv/data")
    assert (p.type, p.name, p.destination, p.rw, p.copy) == ("volume", "data", "/srv/data",
                                                             True, True)  # fmt: skip
    p = bind("data:/srv/data:ro,nocopy")
    assert (p.rw, p.copy, p.mode) == (False, False, "ro,nocopy")
    p = bind("/host/dir/:/in//here/:ro,rshared,Z")
    assert (p.type, p.source, p.destination, p.rw, p.propagation) == (
        "bind",
        "/host/dir",
        "/in/here",
        False,
        "rshared",
    )
    assert bind("/host:/c").propagation == "rprivate"
    p = bind("/anon")
    assert (p.type, p.anonymous, p.name) == ("volume", True, "")
    for spec, msg in [
        ("/c:ro", "invalid volume specification: '/c:ro'"),  # a destination and a mode only
        ("a:b:c:d", "invalid volume specification: 'a:b:c:d'"),
        (":/x", "invalid volume specification: ':/x'"),
        ("data:/x:bogus", "invalid mode: bogus"),
        ("data:/x:ro,rw", "invalid mode: ro,rw"),
        ("data:relative", "mount path must be absolute"),
        ("data:/", "destination can't be '/'"),
        ("./rel:/x", "includes invalid characters for a local volume name"),
        ("rel/dir:/x", "If you intended to pass a host directory, use absolute path"),
        ("/host:/x:nocopy", "nocopy is for volumes"),
        ("vol:/x:rshared", "propagation is for bind mounts"),
    ]:
        assert msg in err(bind, spec), spec


def test_mount_flag_to_api_objects():
    from sangja.cli.mountflag import parse_mount

    assert parse_mount("src=data,dst=/d") == {"Type": "volume", "Source": "data", "Target": "/d"}
    assert parse_mount("type=bind,source=/h,target=/c,readonly,bind-propagation=rslave") == {
        "Type": "bind", "Source": "/h", "Target": "/c", "ReadOnly": True,
        "BindOptions": {"Propagation": "rslave"}}  # fmt: skip
    m = parse_mount('type=volume,src=v,dst=/v,volume-nocopy,volume-label=a=b,'
                    '"volume-opt=o=size=1m,uid=5",volume-opt=type=tmpfs,'
                    'volume-opt=device=tmpfs')  # fmt: skip
    assert m["VolumeOptions"] == {"NoCopy": True, "Labels": {"a": "b"}, "DriverConfig": {
        "Options": {"o": "size=1m,uid=5", "type": "tmpfs", "device": "tmpfs"}}}  # fmt: skip
    m = parse_mount("type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1770")
    assert m["TmpfsOptions"] == {"SizeBytes": 64 << 20, "Mode": 0o1770}
    assert parse_mount("type=bind,src=/h,dst=/c,bind-recursive=disabled")["BindOptions"] == {
        "NonRecursive": True}  # fmt: skip
    for value, msg in [
        ("src=data", "target is required"),
        ("dst=/x,bogus=1", "unexpected key 'bogus' in 'bogus=1'"),
        ("dst=/x,justaword", "invalid field 'justaword' must be a key=value pair"),
        ("type=bind,src=/h,dst=/c,volume-nocopy", "cannot mix 'volume-*' options with mount"
         " type 'bind'"),
        ("type=volume,dst=/c,tmpfs-size=1m", "cannot mix 'tmpfs-*' options"),
        ("dst=/c,readonly=maybe", "invalid value for readonly: maybe"),
        ("type=tmpfs,dst=/c,tmpfs-size=lots", "invalid value for tmpfs-size"),
    ]:  # fmt: skip
        assert msg in err(parse_mount, value), value


def test_mount_objects_checked_as_docker_checks_them(tmp_path):
    from sangja.cli.mountflag import parse_mount
    from sangja.engine.mounts import oci_mount, parse_spec

    spec = lambda s: parse_spec(parse_mount(s))  # noqa: E731
    p = spec(f"type=bind,src={tmp_path},dst=/c,ro")
    want = {"destination": "/c", "type": "bind", "source": str(tmp_path),
            "options": ["rbind", "ro", "rro", "rprivate"]}  # fmt: skip
    assert oci_mount(p, str(tmp_path)) == want
    p = spec(f"type=bind,src={tmp_path},dst=/c,ro,bind-recursive=writable")
    assert oci_mount(p, "/s")["options"] == ["rbind", "ro", "rprivate"]
    p = spec(f"type=bind,src={tmp_path},dst=/c,bind-nonrecursive,bind-propagation=shared")
    assert oci_mount(p, "/s")["options"] == ["bind", "shared"]
    p = spec("type=tmpfs,dst=/run/t,tmpfs-size=1048576,tmpfs-mode=700")
    assert oci_mount(p, "")["options"] == ["nosuid", "nodev", "noexec", "mode=700", "size=1m"]
    p = spec("type=volume,dst=/anon")
    assert p.anonymous and p.copy
    for value, msg in [
        ("type=bind,src=/no/such/dir,dst=/c", "bind source path does not exist: /no/such/dir"),
        ("type=bind,src=rel,dst=/c", "'rel' mount path must be absolute"),
        ("type=bind,dst=/c", "field Source must not be empty"),
        ("type=tmpfs,src=x,dst=/c", "field Source must not be specified"),
        ("type=volume,dst=/c,ro", "must not set ReadOnly mode when using anonymous volumes"),
        ("type=volume,src=bad/name,dst=/c", "includes invalid characters"),
        ("type=nfs,src=x,dst=/c", 'invalid mount config for type "nfs": mount type unknown'),
        (f"type=bind,src={tmp_path},dst=/c,bind-propagation=weird", "invalid propagation"),
        ("type=volume,src=v,dst=/", "destination can't be '/'"),
    ]:
        assert msg in err(spec, value), value


def test_plan_precedence_and_conflicts():
    from sangja.engine.mounts import MountPoint, plan

    other = [MountPoint(type="volume", name="shared", destination="/data"),
             MountPoint(type="bind", source="/h", destination="/cfg", rw=False),
             MountPoint(type="volume", name="x" * 64, destination="/cache",
                        anonymous=True)]  # fmt: skip
    got = plan({"Volumes": {"/vol1": {}, "/data": {}}},
               {"VolumesFrom": ["src:ro"], "Binds": ["/host:/cfg"],
                "Mounts": [{"Type": "tmpfs", "Target": "/scratch"}],
                "Tmpfs": {"/cache": "size=1m"}},
               image_volumes=["/vol1", "/img"], volumes_from=lambda ref: other)  # fmt: skip
    by = {p.destination: p for p in got}
    assert set(by) == {"/data", "/cfg", "/scratch", "/vol1", "/img"}
    assert by["/data"].name == "shared" and by["/data"].rw is False  # from src, made ro
    assert by["/data"].anonymous is False
    assert by["/cfg"].source == "/host" and by["/cfg"].rw  # -v replaces the one from src
    assert by["/vol1"].anonymous and by["/img"].anonymous
    # /cache: --tmpfs wins over the other container's volume (the tmpfs is in the spec)
    for hc, msg in [({"Binds": ["a1:/x", "/h:/x"]}, "Duplicate mount point: /x"),
                    ({"Binds": ["a1:/x"], "Mounts": [{"Type": "volume", "Target": "/x"}]},
                     "Duplicate mount point: /x"),
                    ({"Binds": ["a1:/x"], "Tmpfs": {"/x": ""}}, "Duplicate mount point: /x"),
                    ({"VolumesFrom": ["c:nocopy"]}, "invalid mode: nocopy"),
                    ({"VolumesFrom": ["c:rshared"]}, "invalid mode: rshared")]:  # fmt: skip
        assert msg in err(plan, {}, hc, (), lambda ref: [])
