from enginekit import BUSYBOX


def test_smoke(api):
    print(api.ok("version"))
    print(api.ok("pull", BUSYBOX))
    print(api.ok("images"))
    r = api.docker("run", "--rm", BUSYBOX, "echo", "hello")
    print(r)
    assert r.out == "hello\n"
