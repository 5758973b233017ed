"""The container lifecycle over the C launch path: create, start, state, kill, delete, run.

This is the runtime's Python API (the engine calls it directly, the CLI wraps it).
"""

import _signal as signal  # the C module: `signal` pulls in enum (~1 ms)
import os
import select
import time

from sangja import OCI_VERSION
from sangja.errors import LaunchError, NotFound, SangjaError, StateError
from sangja.log import now_rfc3339
from sangja.runtime import state as st
from sangja.runtime.constants import CLONE_NEWUSER, NS_PROC_NAMES


def _write_atomic(path, text):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def _write_maps(pid, linux):
    for key, name in (("uidMappings", "uid_map"), ("gidMappings", "gid_map")):
        maps = linux.get(key) or ()
        text = "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in maps)
        path = f"/proc/{pid}/{name}"
        try:
            with open(path, "w") as f:
                f.write(text)
        except OSError as e:
            raise SangjaError(f"write {path}: {e.strerror}", errno=e.errno, path=path)


def _pidfd_for(state):
    """A pidfd for the container's init, or None if that process is gone (pid reuse safe)."""
    pid = state.get("pid", 0)
    if not pid:
        return None
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    # The pid may have been reused between our read and pidfd_open: check the start time.
    if st.proc_start_time(pid) != state.get("pid_start"):
        os.close(fd)
        return None
    return fd


def _wait_pidfd(fd, timeout):
    p = select.poll()
    p.register(fd, select.POLLIN)
    return bool(p.poll(None if timeout is None else int(timeout * 1000)))


def parse_signal(s):
    """'9', 'KILL', 'SIGKILL' -> 9."""
    s = str(s).strip()
    if s.isdigit():
        n = int(s)
        if not 0 < n < 65:
            raise SangjaError(f"invalid signal {s!r}")
        return n
    name = s.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    n = getattr(signal, name, None)
    if not isinstance(n, int) or name.startswith("SIG_"):
        raise SangjaError(f"unknown signal {s!r}")
    return n


class _SignalForwarder:
    """Foreground run: every catchable signal goes to the container's init."""

    SKIP = {signal.SIGCHLD, signal.SIGKILL, signal.SIGSTOP, signal.SIGWINCH}

    def __init__(self):
        self.pid = None
        self.pending = []
        self.saved = {}
        for s in signal.valid_signals():
            if s not in self.SKIP and s < signal.SIGRTMIN:
                try:
                    self.saved[s] = signal.signal(s, self._handle)
                except (OSError, ValueError):
                    pass

    def _handle(self, signum, _frame):
        if self.pid is None:
            self.pending.append(signum)
            return
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass

    def attach(self, pid):
        self.pid = pid
        while self.pending:
            self._handle(self.pending.pop(0), None)

    def restore(self):
        for s, h in self.saved.items():
            try:
                signal.signal(s, h)
            except (OSError, ValueError, TypeError):
                pass
        self.saved = {}


class Runtime:
    """All containers under one --root."""

    def __init__(self, root=st.DEFAULT_ROOT, log=None, systemd_cgroup=False):
        self.root = root
        self.log = log
        self.systemd_cgroup = systemd_cgroup

    def _warn(self, msg):
        if self.log:
            self.log.warn(msg)

    # -- create ------------------------------------------------------------------------
    def create(self, cid, bundle=".", pid_file=None, console_socket=None, no_pivot=False,
               no_new_keyring=False, preserve_fds=0, exec_fifo=True, detach=True,
               config=None):  # fmt: skip
        """Set the container up; its init waits for `start`. Returns (pid, pidfd)."""
        from sangja.runtime import cgroups, spec
        from sangja.runtime.plan import compile_plan

        st.check_id(cid)
        bundle = os.path.abspath(bundle)
        if config is None:
            config = spec.load(bundle)
        if self.systemd_cgroup:
            raise SangjaError("--systemd-cgroup: systemd is not running on this host")
        process = config.get("process") or {}
        terminal = bool(process.get("terminal"))
        if terminal and not console_socket and detach:
            raise SangjaError(
                "cannot allocate tty if sangja will detach without setting console socket"
            )
        if console_socket and not terminal:
            raise SangjaError("cannot use console socket if sangja will not allocate tty")
        cg = cgroups.for_spec(config, cid)
        plan = compile_plan(config, bundle, cgroup_paths=cg, no_pivot=no_pivot, warn=self._warn)
        plan.preserve_fds = preserve_fds
        plan.log_fd = self.log.fileno() if self.log else -1
        hooks = config.get("hooks") or {}
        plan.hook_sync = bool(
            hooks.get("prestart") or hooks.get("createRuntime") or hooks.get("createContainer")
        )
        if not no_new_keyring:
            plan.session_keyring = cid

        cdir = st.ContainerDir.make(self.root, cid)
        fds = []
        pid = pidfd = None
        cg_made = False
        try:
            state = {
                "ociVersion": OCI_VERSION,
                "id": cid,
                "pid": 0,
                "pid_start": None,
                "bundle": bundle,
                "rootfs": plan.rootfs,
                "created": now_rfc3339(),
                "owner": "",
                "annotations": config.get("annotations") or {},
                "cgroups": cg.to_json(),
                "hooks": hooks,
                "console": bool(terminal),
                # Until the init is ready: who is creating it. If that process dies half-way
                # (an engine killed it), `delete --force` still finds and removes everything.
                "creator": [os.getpid(), st.proc_start_time(os.getpid())],
            }
            cdir.write(state)
            if exec_fifo:
                os.mkfifo(cdir.fifo, 0o622)
                os.chmod(cdir.fifo, 0o622)  # whatever our umask says
                plan.exec_fifo_fd = os.open(cdir.fifo, os.O_PATH | os.O_CLOEXEC)
                fds.append(plan.exec_fifo_fd)
            if terminal:
                plan.console_fd = self._console_fd(console_socket)
                fds.append(plan.console_fd)
            cg.create()
            cg_made = True
            userns = plan.clone_flags & CLONE_NEWUSER or any(
                f == CLONE_NEWUSER for f, _ in plan.joins
            )
            parent_joins = False
            if cg.unified:
                plan.cgroup_fd = os.open(
                    cg.unified_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
                )
                fds.append(plan.cgroup_fd)
            elif userns:  # the init is not host root: it cannot write the host's cgroup files
                parent_joins = True
            else:
                plan.cgroup_join = [f"{p}/tasks" for p in cg.paths.values()]
            from sangja._native import launch

            pid, pidfd, sync_fd = launch.spawn(plan)
            fds.append(sync_fd)
            state["pid"] = pid
            linux = config.get("linux") or {}
            if plan.clone_flags & CLONE_NEWUSER:  # maps first: the child waits for them
                _write_maps(pid, linux)
            if parent_joins:
                cg.add(pid)
            launch.send(sync_fd, launch.MSG_GO)
            while True:
                kind, err, text = launch.recv(sync_fd)
                if kind == launch.MSG_READY:
                    break
                if kind == launch.MSG_HOOKS:
                    from sangja.runtime import hooks as hk

                    hs = dict(state, status="creating")
                    for stage in ("prestart", "createRuntime", "createContainer"):
                        hk.run_stage(hooks, stage, hs, fatal=True)
                    launch.send(sync_fd, launch.MSG_GO)
                    continue
                raise LaunchError(err, text)
            state["pid_start"] = st.proc_start_time(pid)
            if state["pid_start"] is None:
                raise SangjaError("container init exited during setup")
            state["namespaces"] = self._ns_paths(pid, config)
            del state["creator"]
            cdir.write(state)
            if pid_file:
                _write_atomic(os.path.abspath(pid_file), str(pid))
        except BaseException:
            if pidfd is not None:
                try:
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
                os.close(pidfd)
            if cg_made:
                try:
                    cg.destroy()
                except SangjaError as e:
                    self._warn(f"cleanup: {e}")
            cdir.remove()
            raise
        finally:
            for fd in fds:
                os.close(fd)
        cdir.close()
        return pid, pidfd

    def _console_fd(self, path):
        import socket

        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
        except OSError as e:
            s.close()
            raise SangjaError(f"connect console socket {path}: {e.strerror}", errno=e.errno,
                              path=path)  # fmt: skip
        return s.detach()

    @staticmethod
    def _ns_paths(pid, config):
        return {
            ns["type"]: ns.get("path") or f"/proc/{pid}/ns/{NS_PROC_NAMES[ns['type']]}"
            for ns in (config.get("linux") or {}).get("namespaces") or ()
        }

    # -- queries -----------------------------------------------------------------------
    def _load(self, cid, shared=False):
        cdir = st.ContainerDir.open(self.root, cid, shared=shared)
        try:
            return cdir, cdir.read()
        except BaseException:
            cdir.close()
            raise

    @staticmethod
    def oci_state(state, status):
        out = {
            "ociVersion": state["ociVersion"],
            "id": state["id"],
            "pid": state["pid"] if status != "stopped" else 0,
            "status": status,
            "bundle": state["bundle"],
            "rootfs": state["rootfs"],
            "created": state["created"],
            "owner": state.get("owner", ""),
        }
        if state.get("annotations"):
            out["annotations"] = state["annotations"]
        return out

    def state(self, cid):
        cdir, state = self._load(cid, shared=True)
        with cdir:
            return self.oci_state(state, st.status_of(state, cdir.fifo))

    def list(self):
        out = []
        for cid in st.list_ids(self.root):
            try:
                out.append(self.state(cid))
            except NotFound:
                continue
        return out

    # -- start -------------------------------------------------------------------------
    def start(self, cid):
        cdir, state = self._load(cid)
        with cdir:
            status = st.status_of(state, cdir.fifo)
            if status == "stopped":
                raise StateError("cannot start a container that has stopped")
            if status != "created":
                raise StateError(f"cannot start an already {status} container")
            self._release(cdir, state)
        self._hooks(state, "poststart", "running")

    def _release(self, cdir, state):
        """Open the exec fifo: the init, blocked on its write end, goes on to execve."""
        pidfd = _pidfd_for(state)
        if pidfd is None:
            raise StateError("cannot start a container that has stopped")
        try:
            fd = os.open(cdir.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            os.close(pidfd)
            raise StateError("cannot start an already running container")
        try:
            p = select.poll()
            p.register(fd, select.POLLIN)
            p.register(pidfd, select.POLLIN)
            while True:
                events = dict(p.poll())
                if fd in events:
                    if os.read(fd, 1):
                        break
                    if pidfd not in events:  # no writer yet; wait for one
                        time.sleep(0.0005)
                        continue
                if pidfd in events:
                    raise StateError("container init exited before it was started")
        finally:
            os.close(fd)
            os.close(pidfd)
        os.unlink(cdir.fifo)

    # -- kill / delete ------------------------------------------------------------------
    def kill(self, cid, sig=signal.SIGTERM, all=False):
        cdir, state = self._load(cid)
        with cdir:
            status = st.status_of(state, cdir.fifo)
            if status == "stopped":
                raise StateError("container not running")
            sig = parse_signal(sig)
            if all:
                from sangja.runtime.cgroups import Cgroups

                Cgroups.from_json(state["cgroups"]).signal_all(sig)
                return
            pidfd = _pidfd_for(state)
            if pidfd is None:
                raise StateError("container not running")
            try:
                signal.pidfd_send_signal(pidfd, sig)
            finally:
                os.close(pidfd)

    def delete(self, cid, force=False):
        try:
            cdir = st.ContainerDir.open(self.root, cid, orphan_ok=force)
        except NotFound:
            if force:
                return
            raise
        with cdir:
            if not os.path.exists(os.path.join(cdir.path, st.STATE_FILE)):
                cdir.remove()  # the leftover of a killed create: nothing else was made
                return
            state = cdir.read()
            status = st.status_of(state, cdir.fifo)
            if status in ("running", "paused") and not force:
                raise StateError(f"cannot delete container {cid} that is not stopped: {status}")
            self._destroy(cdir, state, status)

    def _destroy(self, cdir, state, status):
        from sangja.runtime.cgroups import Cgroups

        cg = Cgroups.from_json(state["cgroups"])
        pidfd = _pidfd_for(state)
        if pidfd is not None:
            try:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                if status == "paused":
                    self._thaw(cg)
                if not _wait_pidfd(pidfd, 10):
                    self._warn(f"container {state['id']}: init did not exit after SIGKILL")
            except ProcessLookupError:
                pass
            finally:
                os.close(pidfd)
        cg.destroy()
        self._hooks(state, "poststop", "stopped")
        cdir.remove()

    def _hooks(self, state, stage, status):
        """Run a non-fatal stage (poststart, poststop); the hooks module loads only if needed."""
        hooks = state.get("hooks") or {}
        if hooks.get(stage):
            from sangja.runtime import hooks as hk

            hk.run_stage(hooks, stage, self.oci_state(state, status), fatal=False, log=self.log)

    @staticmethod
    def _thaw(cg):
        paths = cg.paths
        try:
            if cg.unified:
                with open(f"{paths['']}/cgroup.freeze", "w") as f:
                    f.write("0")
            elif "freezer" in paths:
                with open(f"{paths['freezer']}/freezer.state", "w") as f:
                    f.write("THAWED")
        except OSError:
            pass

    # -- run ---------------------------------------------------------------------------
    def run(self, cid, bundle=".", pid_file=None, console_socket=None, detach=False,
            keep=False, no_pivot=False, no_new_keyring=False, preserve_fds=0):  # fmt: skip
        """create + start; in the foreground, wait and return the exit code (128+N)."""
        from sangja.runtime import spec as spec_mod

        config = spec_mod.load(os.path.abspath(bundle))
        tty = None
        forwarder = None
        if not detach:
            # From the first moment: a signal that arrives while the container is being
            # made is forwarded once its init exists, never lost or fatal to us.
            forwarder = _SignalForwarder()
            if not console_socket and (config.get("process") or {}).get("terminal"):
                from sangja.runtime.tty import ConsoleRelay

                tty = ConsoleRelay()
                console_socket = tty.socket_path
        try:
            pid, pidfd = self.create(
                cid, bundle, pid_file=pid_file, console_socket=console_socket,
                no_pivot=no_pivot, no_new_keyring=no_new_keyring, preserve_fds=preserve_fds,
                detach=detach or tty is not None, config=config,
            )  # fmt: skip
        except BaseException:
            if tty:
                tty.close()
            if forwarder:
                forwarder.restore()
            raise
        os.close(pidfd)
        try:
            if tty:
                tty.accept()
            self.start(cid)
        except BaseException:
            if forwarder:
                forwarder.restore()
            self.delete(cid, force=True)
            raise
        if detach:
            return 0
        forwarder.attach(pid)
        try:
            code = self._wait_foreground(pid, tty)
        finally:
            forwarder.restore()
        if not keep:
            self.delete(cid, force=True)
        return code

    @staticmethod
    def _wait_foreground(pid, tty):
        """Wait for the init; its exit code, or 128+signal."""
        if tty:
            status = tty.relay_until_exit(pid)
        else:
            _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            return 128 + os.WTERMSIG(status)
        return os.WEXITSTATUS(status)
