"""Network namespaces the engine makes for its containers, each bind-mounted on a file under
the engine's run dir (`<runtime root>/@net/netns/<container id>`), so it outlives the process
that made it and the runtime joins it by path (a `path` namespace in config.json).

A namespace is made in a thread of its own (unshare(CLONE_NEWNET) changes only the calling
thread; the thread ends once the namespace is mounted), so this process never changes its own
network namespace.  Its loopback is brought up there (Docker's `none` has a working lo).
Removal is idempotent: a lazy unmount, then the file; a file that was never mounted (a
command killed between the two steps) is just removed.
"""

from __future__ import annotations

import errno
import os

from sangja.engine.neterrors import NetworkError

CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MNT_DETACH = 2
NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 0x3): the namespace type of an nsfs fd
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


class RunDirs:
    """What the engine keeps for networks under the runtime's root (a tmpfs: gone at boot,
    as the namespaces and the firewall rules are), in a directory whose name no runtime
    container id can have ('@' is not allowed in one):
        @net/                netavark's --config: aardvark-dns/ (its config and pid file)
        @net/netns/<id>      the containers' network namespaces (bind mounts)
        @net/netavark.lock   serializes netavark's calls (its firewall chains)
        @net/netavark-fw/<id>  the container's firewall is netavark's (engine/firewall.py)
        @net/pending/<id>    the set-up processes (netavark, iptables-restore) a run
                             started and has not waited for yet: "pid:start time" lines"""

    NAME = "@net"

    def __init__(self, runtime_root: str):
        self.base = os.path.join(os.path.abspath(runtime_root), self.NAME)
        self.netns_dir = os.path.join(self.base, "netns")
        self.lock = os.path.join(self.base, "netavark.lock")
        self.aardvark = os.path.join(self.base, "aardvark-dns")

    def netns(self, cid: str) -> str:
        return os.path.join(self.netns_dir, cid)

    def firewall_mark(self, cid: str) -> str:
        return os.path.join(self.base, "netavark-fw", cid)

    def pending(self, cid: str) -> str:
        return os.path.join(self.base, "pending", cid)


def is_netns(path: str) -> bool:
    """Is `path` a network namespace (an nsfs file, i.e. our bind mount is there)?"""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return fcntl.ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWNET
    except OSError:
        return False
    finally:
        os.close(fd)


def create(path: str) -> None:
    """A new network namespace with lo up, bind-mounted on `path` (made here).  An existing
    namespace at `path` is an error (the caller tears the old run down first)."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    if is_netns(path):
        raise NetworkError(f"network namespace {path} exists already", errno=errno.EEXIST)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
    except OSError as e:
        raise NetworkError(f"cannot create {path}: {e.strerror}", errno=e.errno, path=path)
    import threading

    err: list[BaseException] = []
    t = threading.Thread(target=_make, args=(path, err), name="netns")
    t.start()
    t.join()
    if err:
        remove(path)
        e = err[0]
        if isinstance(e, OSError):
            raise NetworkError(f"network namespace {path}: {e.strerror or e}", errno=e.errno or 0,
                             path=path)  # fmt: skip
        raise e


def _make(path: str, err: list) -> None:
    """In a thread of its own: unshare, lo up, bind-mount.  The thread then ends, taking
    the namespace change with it."""
    import threading

    from sangja._native import launch  # mount, unshare: no ctypes (its import is ~3 ms)

    try:
        try:
            launch.unshare(CLONE_NEWNET)
        except OSError as e:
            raise OSError(e.errno, f"unshare(CLONE_NEWNET): {e.strerror}")
        _lo_up()
        src = f"/proc/self/task/{threading.get_native_id()}/ns/net".encode()
        try:
            launch.mount(src, path.encode(), None, MS_BIND, None)
        except OSError as e:
            raise OSError(e.errno, f"bind mount on {path}: {e.strerror}")
    except BaseException as e:  # handed to the caller's thread
        err.append(e)


def _lo_up() -> None:
    import _socket  # the C module: `socket` pulls in enum, selectors, array
    import fcntl
    import struct

    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    try:
        req = struct.pack("16sh22x", b"lo", 0)
        flags = struct.unpack("16sh22x", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", flags | IFF_UP))
    finally:
        s.close()


def remove(path: str) -> None:
    """Unmount (lazily: a process still in the namespace keeps it alive, not the mount) and
    remove the file.  Nothing there is fine."""
    from sangja._native import launch

    while True:
        try:
            launch.umount(path, True)  # MNT_DETACH
        except OSError as e:
            n = e.errno
            break
        # mounted twice (a repeated bind): each layer goes
    if n not in (errno.EINVAL, errno.ENOENT):
        raise NetworkError(f"unmount {path}: {os.strerror(n)}", errno=n, path=path)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        raise NetworkError(f"remove {path}: {e.strerror}", errno=e.errno, path=path)


def run_in(path: str, fn):
    """fn() in a thread that joins the namespace at `path` (sockets it makes live there);
    -> its result.  This thread never leaves its own namespace."""
    import threading

    from sangja._native import launch

    out: list = []
    err: list = []

    def go():
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                try:
                    launch.setns(fd, CLONE_NEWNET)
                except OSError as e:
                    raise OSError(e.errno, f"setns {path}: {e.strerror}")
            finally:
                os.close(fd)
            out.append(fn())
        except BaseException as e:
            err.append(e)

    t = threading.Thread(target=go, name="netns-run")
    t.start()
    t.join()
    if err:
        if isinstance(err[0], OSError):
            raise NetworkError(f"network namespace {path}: {err[0]}")
        raise err[0]
    return out[0]


def links(path: str) -> list[str]:
    """The interfaces in the namespace at `path`."""
    import socket

    return run_in(path, lambda: [name for _, name in socket.if_nameindex()])


def ino(path: str) -> int:
    """The namespace's inode (two paths name the same namespace when these are equal)."""
    return os.stat(path).st_ino
