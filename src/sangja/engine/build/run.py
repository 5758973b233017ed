"""RUN: one step as a container, through the runtime's Python API, in this process.

The container's root is an overlay snapshot of the stage's layers; what the command
writes lands in the snapshot's upper dir, which the caller turns into a layer.  Its
spec is the image config's (sangja.image.runspec: user, working dir, env, Docker's
capabilities) with the step's command, the build args in the environment, /etc/hosts,
/etc/hostname and /etc/resolv.conf bind-mounted (never part of the layer) and the
step's `--mount`s.  Its network: `default` (or `bridge`) an endpoint on the engine's
default bridge, set up and torn down with the step by the engine's own network code
(engine/containernet.py step_begin/step_end); `host` the host's; `none` lo only.
Its stdout and stderr are a pipe the build reads line by line, its stdin /dev/null.
Whatever happens, the container is deleted (its network released) and the snapshot
unmounted; mount points the runtime had to create (for a bind-mount or /proc in an image
without one) are removed from the upper dir when nothing else was written there.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import threading

from sangja.errors import LaunchError, SangjaError

_EXEC_CODES = {2: 127, 13: 126, 8: 126}  # ENOENT, EACCES, ENOEXEC: as a shell says it


class RunFailed(SangjaError):
    """The command of a RUN exited non-zero: the build ends with its code."""

    def __init__(self, msg, code):
        super().__init__(msg)
        self.exit_code = code


class Container:
    """One RUN's container; `kill()` may be called from another thread."""

    def __init__(self):
        self.pidfd = None
        self.done = False

    def kill(self):
        import signal

        if self.pidfd is not None and not self.done:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)


def _hosts(path: str, hostname: str, host_network: bool) -> None:
    text = None
    if host_network:
        with contextlib.suppress(OSError), open("/etc/hosts") as f:
            text = f.read()
    if text is None:
        text = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                f"127.0.1.1\t{hostname}\n")  # fmt: skip
    with open(path, "w") as f:
        f.write(text)


def run(*, ws, snap, conf: dict, args: list[str], env: list[str], runtime_root: str, log,
        network: str, extra_mounts: list[dict], output, ctl: Container | None = None,
        hostname: str | None = None, store=None) -> int:  # fmt: skip
    """Run `args` in the snapshot; `output(bytes)` gets its output as it comes.
    -> the exit code (128+N for a signal).  Raises SangjaError if it could not start."""
    from sangja.image import runspec
    from sangja.runtime.container import Runtime

    cid = "build-" + secrets.token_hex(8)
    hostname = hostname or cid[6:18]
    bundle = snap.dir
    rootfd = os.open(snap.merged, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    bridge = network in ("default", "bridge")
    released = not bridge
    try:
        spec = runspec.build(conf, snap.merged, command=args, entrypoint=[], env=env,
                             hostname=hostname)  # fmt: skip
        spec["root"] = {"path": snap.merged, "readonly": False}
        spec["process"]["terminal"] = False
        # under the engine's cgroup parent, as its containers are (not the hierarchy's root)
        from sangja.image.config import cgroup_parent

        parent = cgroup_parent().rstrip("/")
        spec["linux"]["cgroupsPath"] = f"{'' if parent.startswith('/') else '/'}{parent}/{cid}"
        # Docker's 1048576 open files, or as many as we may give (no CAP_SYS_RESOURCE)
        import resource

        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        n = 1048576 if hard == resource.RLIM_INFINITY else min(hard, 1048576)
        spec["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": n, "soft": n}]
        host_net = network == "host"
        if host_net:
            spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"]
                                           if n["type"] != "network"]  # fmt: skip
        files = os.path.join(bundle, "files")
        os.mkdir(files, 0o755)
        binds = [("/etc/hostname", os.path.join(files, "hostname")),
                 ("/etc/hosts", os.path.join(files, "hosts"))]  # fmt: skip
        if bridge:
            from sangja.engine import containernet

            ws.note_container(cid, runtime_root)  # before anything is leased: swept if killed
            sb = containernet.step_begin(store, runtime_root, cid, hostname)
            spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"]
                                           if n["type"] != "network"]  # fmt: skip
            spec["linux"]["namespaces"].append({"type": "network", "path": sb.netns})
            for name, text in (("hostname", sb.hostname), ("hosts", sb.hosts),
                               ("resolv.conf", sb.resolv)):  # fmt: skip
                with open(os.path.join(files, name), "w") as f:
                    f.write(text)
            binds.append(("/etc/resolv.conf", os.path.join(files, "resolv.conf")))
        else:
            with open(os.path.join(files, "hostname"), "w") as f:
                f.write(hostname + "\n")
            _hosts(os.path.join(files, "hosts"), hostname, host_net)
        if host_net and os.path.exists("/etc/resolv.conf"):
            binds.append(("/etc/resolv.conf", os.path.realpath("/etc/resolv.conf")))
        for dst, src in binds:
            ro = "ro" if dst == "/etc/resolv.conf" else "rw"
            spec["mounts"].append({"destination": dst, "type": "bind", "source": src,
                                   "options": ["rbind", "rprivate", ro]})  # fmt: skip
        spec["mounts"].extend(extra_mounts)
        # what existed before: mount points made for this run only are not the step's
        targets = {m["destination"] for m in spec["mounts"]}
        targets.add(spec["process"]["cwd"])
        absent = _absent(rootfd, targets)
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(spec, f)
        ws.note_container(cid, runtime_root)
        code = _execute(Runtime(root=runtime_root, log=log), cid, bundle, spec, output, ctl)
        return code
    finally:
        if not released:  # the container is deleted: its network goes
            from sangja.engine import containernet

            try:
                for w in containernet.step_end(store, runtime_root, cid):
                    output(f"warning: {w}\n".encode())
                released = True
            except (SangjaError, OSError):
                pass  # its ctr- note stays: the workspace's clean-up tries again
        with contextlib.suppress(SangjaError):
            snap.unmount()
        os.close(rootfd)
        if "absent" in locals():
            _drop_mount_points(snap.upper, absent)
        if released:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(ws.dir, f"ctr-{cid}"))


def _execute(rt, cid, bundle, spec, output, ctl) -> int:
    r, w = os.pipe2(os.O_CLOEXEC)
    reader = threading.Thread(target=_pump, args=(r, output), daemon=True)
    created = False
    pid = pidfd = None
    try:
        null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        try:  # the step's stdio is the init's alone: ours never change (the API service
            # runs builds in threads beside others that spawn processes)
            pid, pidfd = rt.create(cid, bundle, config=spec, exec_fifo=True,
                                   stdio=(null, w, w))  # fmt: skip
            created = True
        finally:
            os.close(null)
        os.close(w)
        w = -1
        if ctl is not None:
            ctl.pidfd = pidfd
        reader.start()
        rt.start(cid)
        _, status = os.waitpid(pid, 0)
        if ctl is not None:
            ctl.done = True
        reader.join()
        if os.WIFSIGNALED(status):
            return 128 + os.WTERMSIG(status)
        return os.WEXITSTATUS(status)
    except LaunchError as e:
        code = _EXEC_CODES.get(e.errno)
        if code is not None:
            output(f"{e}\n".encode())
            return code
        raise
    finally:
        if w >= 0:
            os.close(w)
        if pidfd is not None:
            if ctl is not None:
                ctl.done = True
            os.close(pidfd)
        if created:
            with contextlib.suppress(SangjaError):
                rt.delete(cid, force=True)
        if reader.is_alive():
            reader.join(timeout=5)
        with contextlib.suppress(OSError):
            os.close(r)


def _pump(fd: int, output) -> None:
    while True:
        try:
            b = os.read(fd, 65536)
        except OSError:
            return
        if not b:
            return
        output(b)


def _absent(rootfd: int, paths) -> list[str]:
    """The paths (and their parents) that do not exist in the root, deepest first."""
    from sangja.engine.build import rootfs

    out: set[str] = set()
    for p in paths:
        p = rootfs.clean(p)
        while p != "/":
            if rootfs.lstat_in(rootfd, p) is not None:
                break
            out.add(p)
            p = rootfs.split(p)[0]
    return sorted(out, key=lambda s: (-s.count("/"), s))


def _drop_mount_points(upper: str, absent: list[str]) -> None:
    """Remove what the runtime made for mount points from the upper dir, when it is still
    empty (an empty file or directory): the step did not make it."""
    import stat as _stat

    for p in absent:
        path = upper + p
        try:
            st = os.lstat(path)
        except OSError:
            continue
        with contextlib.suppress(OSError):
            if _stat.S_ISDIR(st.st_mode):
                os.rmdir(path)  # only when empty
            elif _stat.S_ISREG(st.st_mode) and st.st_size == 0:
                os.unlink(path)
