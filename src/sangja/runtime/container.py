"""The container lifecycle over the C launch path: create, start, state, kill, delete, run,
exec.

This is the runtime's Python API (the engine calls it directly, the CLI wraps it). The
Runtime owns the resources of a launch (the state dir, the exec fifo, the cgroup
directories, the fds the plan names) and the one sync loop create and exec share; what is
launched is the plan compiled by plan.py.
"""

import _signal as signal  # the C module: `signal` pulls in enum (~1 ms)
import os
import select
import time

from sangja import OCI_VERSION
from sangja.errors import ExecError, LaunchError, NotFound, SangjaError, StateError, errno_text
from sangja.log import now_rfc3339
from sangja.runtime import state as st

# A container prepared for the front end's `create` (Runtime.prepare; csrc/front/create.c
# reads it): the magic, then six sections, each its 4-byte little-endian length and bytes.
PREPARED_FILE = "launch.plan"
PREPARED_MAGIC = b"SJPREP1\n"


def _write_atomic(path, text):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def _write_maps(pid, id_maps):
    for name, text in zip(("uid_map", "gid_map"), id_maps, strict=True):
        path = f"/proc/{pid}/{name}"
        try:
            with open(path, "w") as f:
                f.write(text)
        except OSError as e:
            raise SangjaError(f"write {path}: {e.strerror}", errno=e.errno, path=path)


def _check_console(terminal, have_socket, detach):
    if terminal and not have_socket and detach:
        raise SangjaError(
            "cannot allocate tty if sangja will detach without setting console socket"
        )
    if have_socket and not terminal:
        raise SangjaError("cannot use console socket if sangja will not allocate tty")


def reserve_preserved_fds(n):
    """--preserve-fds N hands fds 3..N+2 to the process as they are. Fill any that is not
    open with /dev/null before we open anything, so that none of our own fds (exec fifo,
    log, console socket) can take that number and leak into the container."""
    for fd in range(3, 3 + n):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)  # the lowest free number: this one
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def _same_userns(pid, namespaces):
    """Is the container's user namespace the runtime's own? (setns refuses to join that.)"""
    if "user" not in namespaces:
        return False
    return os.stat(f"/proc/{pid}/ns/user").st_ino == os.stat("/proc/self/ns/user").st_ino


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

    def warn(self, msg):
        """A warning, to --log when there is one (as runc)."""
        if self.log:
            self.log.warn(msg)

    def open(self, cid, shared=False):
        """The container `cid`, locked (shared: others may read it meanwhile): its record
        and status (state.Container; a context manager)."""
        return st.Container.load(self.root, cid, shared=shared)

    # -- create ------------------------------------------------------------------------
    def create(self, cid, bundle=".", pid_file=None, console_socket=None, no_pivot=False,
               no_new_keyring=False, preserve_fds=0, exec_fifo=True, detach=True,
               config=None, console_fd=None, stdio=None):  # fmt: skip
        """Set the container up; its init waits for `start`. Returns (pid, pidfd).

        `console_fd`: instead of `console_socket`, a connected socket the pty master is sent
        to (the caller keeps and closes it; see tty.ConsoleRelay).  `stdio`: three fds
        (None: inherit ours) the init gets as 0, 1, 2 instead of ours, which never change
        (a threaded caller cannot swap its own without every thread's children seeing it)."""
        st.check_id(cid)
        self._discard_prepared(cid)
        bundle = os.path.abspath(bundle)
        if config is None:
            from sangja.runtime import spec

            config = spec.load(bundle)
        process = config.get("process") or {}
        terminal = bool(process.get("terminal"))
        _check_console(terminal, console_socket or console_fd is not None, detach)
        cg, plan = self._compile(cid, bundle, config, no_pivot=no_pivot,
                                 no_new_keyring=no_new_keyring, preserve_fds=preserve_fds,
                                 log_fd=self.log.fileno() if self.log else -1)  # fmt: skip
        if stdio is not None:
            plan.stdio_fds = tuple(-1 if fd is None else fd for fd in stdio)
        hooks = config.get("hooks") or {}

        cdir, state = self._make(cid, bundle, config, plan, cg, no_new_keyring, exec_fifo)
        fds = []
        pid = pidfd = None
        try:
            if exec_fifo:
                plan.exec_fifo_fd = os.open(cdir.fifo, os.O_PATH | os.O_CLOEXEC)
                fds.append(plan.exec_fifo_fd)
            if terminal and console_fd is not None:
                plan.console_fd = console_fd
            elif terminal:
                plan.console_fd = self._console_fd(console_socket)
                fds.append(plan.console_fd)
            self._open_plan_fds(plan, fds)
            from sangja._native import launch

            pid, pidfd, sync_fd = launch.spawn(plan)
            fds.append(sync_fd)
            state["pid"] = pid
            if plan.id_maps:  # maps first: the child waits for them
                _write_maps(pid, plan.id_maps)
            cg.started(pid)
            state["cgroups"] = cg.to_json()  # the systemd driver may have learnt more
            if plan.parent_cgroup_joins:
                cg.add(pid, plan.parent_cgroup_joins)

            def run_hooks():  # prestart and createRuntime, in the runtime namespace
                from sangja.runtime import hooks as hk

                hs = st.spec_state(state, "creating")
                for stage in ("prestart", "createRuntime"):
                    hk.run_stage(hooks, stage, hs, fatal=True)

            linux = config.get("linux") or {}
            self._sync(sync_fd, pid, state, "creating", on_hooks=run_hooks,
                       on_died=lambda: self._why_init_died(cg, linux))  # fmt: skip
            state["pid_start"] = st.proc_start_time(pid)
            if state["pid_start"] is None:
                raise SangjaError("container init exited during setup")
            from sangja.runtime.plan import namespace_paths

            state["namespaces"] = namespace_paths(plan.namespaces, pid)
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
            self._unmake(cdir, state, cg)
            if pid is not None:  # the container existed: destroyed, then poststop (the spec)
                self._hooks(state, "poststop", "stopped")
            raise
        finally:
            for fd in fds:
                os.close(fd)
        cdir.close()
        return pid, pidfd

    def reserve(self, cid):
        """The state dir of a container to `prepare`, made and locked now: a `create` of it
        (conmon's, started meanwhile) waits for the lock, then finds the plan, or, if
        prepare declined or failed, no state and does it all in Python. -> the dir, for
        prepare(reserved=)."""
        return st.ContainerDir.make(self.root, cid)

    def prepare(self, cid, bundle, config, reserved=None):
        """The first half of `create`, done in the caller's process (the engine's, which has
        Python running already): `config` (the dict of the bundle's config.json) compiled,
        the state dir, state.json, the exec fifo and the cgroups made, and the plan left in
        the state dir (`launch.plan`) for the front end's `create` (csrc/front/create.c) to
        spawn and lead to READY without starting Python. Until then the container is
        `creating`, its creator the caller: `delete --force` removes it like any create
        that did not finish.  Returns False, having made nothing, for a container that
        needs what only the Python create does (hooks, a user namespace's maps, a seccomp
        listener, mounts of the host's or its own namespace, the systemd driver): the
        caller's `create` then does it all.  `reserved`: the state dir from reserve(),
        used, then unlocked (removed if nothing was prepared)."""
        try:
            return self._prepare(cid, bundle, config, reserved)
        except BaseException:
            if reserved is not None and reserved.fd >= 0:
                reserved.remove()
            raise

    def _prepare(self, cid, bundle, config, reserved):
        from sangja.runtime import spec

        st.check_id(cid)
        bundle = os.path.abspath(bundle)
        spec.validate(config)  # as the create that reads config.json would
        prepared = not self.systemd_cgroup and not any((config.get("hooks") or {}).values())
        if prepared:
            cg, plan = self._compile(cid, bundle, config)
            prepared = not (plan.id_maps or plan.parent_cgroup_joins or not plan.own_mntns
                            or any(m.host_tree for m in plan.mounts)
                            or (plan.seccomp or {}).get("listenerPath"))  # fmt: skip
        if not prepared:
            if reserved is not None:
                reserved.remove()  # the create waiting for it makes it all
            return False
        process = config.get("process") or {}
        from sangja import jsonio
        from sangja._native import launch
        from sangja.runtime.constants import NS_PROC_NAMES

        block = launch.pack(plan)
        cdir, state = self._make(cid, bundle, config, plan, cg, False, True, reserved)
        try:
            head = {k: v for k, v in state.items() if k not in ("pid", "pid_start", "creator")}
            namespaces = "".join(f"{t}\t{p or ''}\t{NS_PROC_NAMES[t]}\n"
                                 for t, p in plan.namespaces.items())  # fmt: skip
            parts = (
                block, bundle.encode(), jsonio.dumps(head)[:-1].encode(), namespaces.encode(),
                (plan.cgroup_dir or "").encode(), b"1" if process.get("terminal") else b"0",
            )  # fmt: skip
            # 0600: the process's environment is in it (secrets, for some)
            cdir.write_file(PREPARED_FILE, PREPARED_MAGIC + b"".join(
                len(p).to_bytes(4, "little") + p for p in parts), mode=0o600)  # fmt: skip
        except BaseException:
            self._unmake(cdir, state, cg)
            raise
        cdir.close()
        return True

    def _discard_prepared(self, cid):
        """A container reserved or prepared for the front end's `create` that reached this
        one instead (SANGJA_PYTHON=1, options the plan did not foresee): once its
        reservation's lock is released, a prepared one is undone, to be made again."""
        path = os.path.join(self.root, cid)
        if not os.path.isdir(path):
            return
        try:  # waits while the engine prepares it
            st.ContainerDir.open(self.root, cid, orphan_ok=True).close()
        except NotFound:
            return  # removed meanwhile: declined, or failed
        if os.path.exists(os.path.join(path, PREPARED_FILE)):
            self.delete(cid, force=True)

    def _compile(self, cid, bundle, config, **options):
        from sangja.runtime import cgroups
        from sangja.runtime.plan import compile_create

        cg = cgroups.for_spec(config, cid, systemd=self.systemd_cgroup)
        plan = compile_create(config, bundle, cid, cgroups=cg.layout(), warn=self.warn,
                              seccomp_cache=st.seccomp_cache_dir(), **options)  # fmt: skip
        return cg, plan

    @staticmethod
    def _record(cid, bundle, config, plan, cg, no_new_keyring):
        """state.json while the init is made: its creator is this process. If it dies
        half-way (an engine killed it), `delete --force` still finds and removes all."""
        process = config.get("process") or {}
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
            "hooks": config.get("hooks") or {},
            "console": bool(process.get("terminal")),
            "no_new_keyring": bool(no_new_keyring),
            "creator": [os.getpid(), st.proc_start_time(os.getpid())],
        }
        if plan.seccomp:
            state["seccomp"] = plan.seccomp
        return state

    def _make(self, cid, bundle, config, plan, cg, no_new_keyring, exec_fifo, cdir=None):
        """What the init needs before it is spawned: the state dir (locked; `cdir`: made
        already) with state.json and the files exec reads, the exec fifo, the cgroups with
        their limits (the init joins them limited). -> (cdir, state); on an error nothing
        of it stays."""
        if cdir is None:
            cdir = st.ContainerDir.make(self.root, cid)
        state = None
        made = False
        try:
            state = self._record(cid, bundle, config, plan, cg, no_new_keyring)
            if not plan.own_mntns and plan.rootfs != "/":
                # Our mounts will be in our own mount namespace, below a bind of the rootfs
                # onto itself: what was there before is not ours to detach (mounttrees).
                from sangja.runtime import mounttrees

                before = mounttrees.mount_ids_at(plan.rootfs)
                state["host_mounts"] = {"path": plan.rootfs, "before": before}
            cdir.write(state)
            # What exec needs of the container, as compiled now (never the bundle again).
            from sangja import jsonio

            process = jsonio.dumps(config.get("process") or {}).encode()
            cdir.write_file(st.PROCESS_FILE, process)
            if plan.seccomp_bpf:
                cdir.write_file(st.SECCOMP_FILE, plan.seccomp_bpf)
            if exec_fifo:
                os.mkfifo(cdir.fifo, 0o622)
                os.chmod(cdir.fifo, 0o622)  # whatever our umask says
            cg.create()
            made = True
            cg.apply(config.get("linux") or {}, warn=self.warn)
        except BaseException:
            self._unmake(cdir, state, cg, made)
            raise
        return cdir, state

    def _unmake(self, cdir, state, cg, cgroups_made=True):
        """Undo _make: the cgroups, our mounts below the rootfs, the state dir."""
        if cgroups_made:
            try:
                cg.destroy()
            except SangjaError as e:
                self.warn(f"cleanup: {e}")
        if state and state.get("host_mounts"):
            self._release_host_mounts(state["host_mounts"])
        cdir.remove()

    @staticmethod
    def _open_plan_fds(plan, fds):
        """The fds the plan names by path: the cgroup it is cloned into, the init's root
        (exec), the detached trees of its mounts. Each is appended to `fds` (the caller
        closes them once the process is spawned: it inherits them)."""
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
        if plan.cgroup_dir is not None:
            plan.cgroup_fd = os.open(plan.cgroup_dir, flags)
            fds.append(plan.cgroup_fd)
        if plan.exec_root is not None:
            plan.exec_root_fd = os.open(plan.exec_root, os.O_PATH | flags)
            fds.append(plan.exec_root_fd)
        if any(m.host_tree for m in plan.mounts):
            from sangja.runtime import mounttrees

            fds += mounttrees.open_trees(plan)

    def _sync(self, sync_fd, pid, state, status, on_hooks=None, on_died=None, exec_=False):
        """Lead a spawned process through the sync protocol (csrc/launch/sync.h): GO, then
        its messages until it is READY (create: it waits on the exec fifo now) or, for
        exec, until it has called execve (the socket closes). HOOKS: `on_hooks()` runs the
        runtime's hooks; SECCOMP: the notify fd goes to the listener. Anything else is the
        error the process sent, raised (`on_died()` first, when it died without a word)."""
        from sangja._native import launch

        launch.send(sync_fd, launch.MSG_GO)
        ready = False
        while True:
            kind, err, text, value = launch.recv(sync_fd)
            if kind == launch.MSG_SECCOMP:  # the notify listener: to listenerPath
                self._send_listener(state["seccomp"], value, pid, state, status)
            elif kind == launch.MSG_HOOKS and on_hooks and not ready:
                on_hooks()
            elif kind == launch.MSG_READY and not ready:
                if not exec_:
                    return
                ready = True  # the process keeps the socket until execve
                continue
            elif kind == launch.MSG_CLOSED and ready:
                return  # closed after READY: execve ran
            else:
                if kind == launch.MSG_CLOSED and on_died:  # killed: by the OOM killer, say so
                    on_died()
                raise LaunchError(err, text)
            launch.send(sync_fd, launch.MSG_GO)

    def _release_host_mounts(self, hm):
        from sangja.runtime import mounttrees

        why = mounttrees.release(hm["path"], set(hm.get("before") or ()))
        if why:
            self.warn(f"cleanup: {why}")

    @staticmethod
    def _why_init_died(cg, linux):
        """The init died before it was ready, with no word: if the OOM killer did it, the
        memory limit is too low for it to start at all. Raises the error runc gives."""
        try:
            kills = cg.oom_kills()
        except (OSError, ValueError, AttributeError):
            return
        if not kills:
            return
        mem = ((linux or {}).get("resources") or {}).get("memory") or {}
        usage, peak = cg.memory_usage()
        limit = mem.get("limit")
        what = f"memory limit to {limit}" if limit else "the memory limit"
        raise SangjaError(
            f"unable to set {what} (current usage: {usage}, peak usage: {peak}): the kernel "
            "OOM-killed the container's init before it was ready"
        )

    def _send_listener(self, sc, fd, pid, state, status):
        """linux.seccomp.listenerPath gets the notify fd and the container process state."""
        from sangja.runtime.seccomp import send_listener

        try:
            send_listener(sc.get("listenerPath"), sc.get("listenerMetadata"), fd, pid,
                          st.spec_state(state, status))  # fmt: skip
        finally:
            os.close(fd)

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

    # -- queries -----------------------------------------------------------------------
    def state(self, cid):
        with self.open(cid, shared=True) as c:
            return st.oci_state(c.record, c.status)

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
        with self.open(cid) as c:
            if c.status == "stopped":
                raise StateError("cannot start a container that has stopped")
            if c.status != "created":
                raise StateError(f"cannot start an already {c.status} container")
            failed = self._release(c, c.record)
            if failed:
                # A startContainer hook failed: the spec has the container destroyed and
                # the poststop hooks run, as a delete would.
                self._destroy(c, c.record, "stopped")
                raise SangjaError(failed)
        self._hooks(c.record, "poststart", "running")

    def _release(self, cdir, state):
        """Open the exec fifo: the init, blocked on its write end, runs the startContainer
        hooks and goes on to execve. Returns why it did not (a hook's error), or None."""
        pidfd = st.pidfd_for(state)
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
                    # "0": going to execve; "1<why>": a startContainer hook failed (the
                    # init ran them first, and exits). One write each, read whole.
                    said = os.read(fd, 4096)
                    if said:
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
        if said[:1] != b"0":
            return said[1:].decode(errors="replace") or "container init failed"
        return None

    # -- kill / delete ------------------------------------------------------------------
    def kill(self, cid, sig=signal.SIGTERM, all=False):
        with self.open(cid) as c:
            if c.status == "stopped" and not all:  # --all: whatever is left in the cgroup (runc)
                raise StateError("container not running")
            sig = parse_signal(sig)
            if all:
                from sangja.runtime import cgroups

                cgroups.load(c.record["cgroups"]).signal_all(sig)
                return
            if not st.signal_init(c.record, sig):
                raise StateError("container not running")

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
            try:
                state, status = cdir.read()
            except SangjaError as e:
                if not force:
                    raise
                # unreadable (damaged by hand, a full disk): nothing in it can be found
                self.warn(f"{e}: removing the state dir of {cid} as it is")
                cdir.remove()
                return
            try:
                if status is None:  # damaged where the status rule reads
                    raise ValueError("its status cannot be told")
                if status in ("running", "paused") and not force:
                    raise StateError(f"cannot delete container {cid} that is not stopped: {status}")
                self._destroy(cdir, state, status)
            except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
                if not force:
                    raise
                # a state.json damaged where _destroy reads it: what it names is lost
                self.warn(f"state of {cid} is damaged ({type(e).__name__}: {e}): removing "
                           "its state dir as it is")  # fmt: skip
                cdir.remove()

    def _destroy(self, cdir, state, status):
        """Kill, remove the cgroups and our mounts, run poststop, remove the state dir last:
        nothing a hook does (fail, hang past its timeout) keeps the state dir."""
        from sangja.runtime import cgroups

        cg = cgroups.load(state["cgroups"])
        pidfd = st.pidfd_for(state)
        if pidfd is not None:
            try:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                if status == "paused":
                    self._thaw(cg)  # a frozen process dies only once thawed
                if not st.wait_pidfd(pidfd, 10):
                    self.warn(f"container {state['id']}: init did not exit after SIGKILL")
            except ProcessLookupError:
                pass
            finally:
                os.close(pidfd)
        cg.destroy()
        if state.get("host_mounts"):
            self._release_host_mounts(state["host_mounts"])
        self._hooks(state, "poststop", "stopped")
        cdir.remove()

    def _hooks(self, state, stage, status):
        """Run a non-fatal stage (poststart, poststop): whatever goes wrong is a warning (the
        spec). The hooks module loads only if needed."""
        hooks = state.get("hooks") or {}
        if not isinstance(hooks, dict) or not hooks.get(stage):
            return
        from sangja.runtime import hooks as hk

        try:
            hk.run_stage(hooks, stage, st.spec_state(state, status), fatal=False, log=self.log)
        except Exception as e:  # a state.json from an older sangja: never stop a delete
            self.warn(f"{stage} hooks: {e}")

    @staticmethod
    def _thaw(cg):
        try:
            cg.thaw()
        except SangjaError:
            pass

    # -- pause / resume / update / events / ps: runtime/control.py ----------------------
    def pause(self, cid):
        from sangja.runtime import control

        control.pause(self, cid)

    def resume(self, cid):
        from sangja.runtime import control

        control.resume(self, cid)

    def update(self, cid, resources):
        """`resources`: a LinuxResources dict (zero values leave a limit as it is)."""
        from sangja.runtime import control

        control.update(self, cid, resources)

    def events(self, cid, interval=5.0, stats_only=False, emit=None):
        """Call `emit(event dict)` for each event (runc's JSON), until the container's
        cgroup goes; with `stats_only`, once."""
        from sangja.runtime import control

        control.events(self, cid, interval, stats_only, emit)

    def ps(self, cid):
        """The host pids of the container's processes."""
        from sangja.runtime import control

        return control.ps(self, cid)

    # -- exec --------------------------------------------------------------------------
    def exec(self, cid, args=(), process=None, tty=None, detach=False, pid_file=None,
             console_socket=None, cwd=None, env=(), user=None, additional_gids=(), caps=(),
             no_new_privs=None, preserve_fds=0, ignore_paused=False, cgroup=(),
             process_label=None, apparmor=None):  # fmt: skip
        """Run a process in the container, as runc exec. `process` is a process.json path
        (then the other process options are not used); else the container's config.json
        process with `args` and the overrides. Detached: returns 0 once the process runs
        (it is a child of ours: our caller, a subreaper, reaps it). Foreground: forwards
        signals and returns its exit code (128+N if killed by signal N).

        Any failure before the process runs raises ExecError (exit 255); the container is
        left as it was."""
        forwarder = relay = None
        if not detach:
            forwarder = _SignalForwarder()  # from the first moment, as in run
        try:
            try:
                pid, relay = self._exec_start(
                    cid, args, process, tty, detach, console_socket, cwd, env, user,
                    additional_gids, caps, no_new_privs, preserve_fds, ignore_paused, cgroup,
                    process_label, apparmor,
                )  # fmt: skip
                if pid_file:
                    _write_atomic(os.path.abspath(pid_file), str(pid))
            except SangjaError as e:
                raise ExecError(f"exec failed: {e}", errno=e.errno, path=e.path) from None
            except OSError as e:
                where = f" {e.filename}" if e.filename else ""
                raise ExecError(f"exec failed: {errno_text(e)}{where}", errno=e.errno or 0,
                                path=e.filename) from None  # fmt: skip
            if detach:
                return 0
            forwarder.attach(pid)
            return self._wait_foreground(pid, relay)
        finally:
            if relay:
                relay.close()
            if forwarder:
                forwarder.restore()

    def _exec_start(self, cid, args, process, tty, detach, console_socket, cwd, env, user,
                    additional_gids, caps, no_new_privs, preserve_fds, ignore_paused, cgroup,
                    process_label, apparmor):  # fmt: skip
        """Launch the exec'd process, holding the container's lock shared (a delete waits).
        -> (pid, ConsoleRelay or None) once it has called execve."""
        from sangja.runtime.plan import compile_exec, exec_process
        from sangja.runtime.spec import load_process

        c = self.open(cid, shared=True)
        state, status = c.record, c.status
        fds = []
        pid = None
        relay = None
        try:
            if status == "stopped":
                raise StateError("cannot exec in a stopped container")
            if status == "creating":
                raise StateError("cannot exec in a container that is being created")
            if status == "paused" and not ignore_paused:
                raise StateError(
                    "cannot exec in a paused container (use --ignore-paused to override)"
                )
            if process:
                proc = load_process(process)
            else:
                from sangja import jsonio

                try:
                    base = jsonio.loads(c.read_file(st.PROCESS_FILE))
                except FileNotFoundError:  # made by a sangja that did not record it
                    raise StateError(f"container {cid} has no recorded process: use --process")
                proc = exec_process(base, args, tty, cwd, env, user, additional_gids, caps,
                                    no_new_privs, process_label, apparmor)  # fmt: skip
            terminal = bool(proc.get("terminal"))
            _check_console(terminal, bool(console_socket), detach)
            pidfd = st.pidfd_for(state)
            if pidfd is None:
                raise StateError("cannot exec in a stopped container")
            fds.append(pidfd)
            plan = compile_exec(
                state, proc, cgroup=cgroup, preserve_fds=preserve_fds,
                log_fd=self.log.fileno() if self.log else -1,
                seccomp_bpf=c.read_file(st.SECCOMP_FILE) if state.get("seccomp") else None,
                join_userns=not _same_userns(state["pid"], state.get("namespaces") or {}),
                warn=self.warn,
            )  # fmt: skip
            plan.exec_pidfd = pidfd
            self._open_plan_fds(plan, fds)
            if terminal and console_socket:
                plan.console_fd = self._console_fd(console_socket)
                fds.append(plan.console_fd)
            elif terminal:
                from sangja.runtime.tty import ConsoleRelay

                relay = ConsoleRelay()
                plan.console_fd = relay.child_fd
            from sangja._native import launch

            pid, child_pidfd, sync_fd = launch.spawn(plan)
            fds += [child_pidfd, sync_fd]
            self._sync(sync_fd, pid, state, status, exec_=True)
            if relay:
                relay.accept()
            return pid, relay
        except BaseException:
            if relay:
                relay.close()
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGKILL)  # our unreaped child: the pid is still its
                except ProcessLookupError:
                    pass
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
            raise
        finally:
            for fd in fds:
                os.close(fd)
            c.close()

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
        try:
            pid, pidfd = self.create(
                cid, bundle, pid_file=pid_file, console_socket=console_socket,
                no_pivot=no_pivot, no_new_keyring=no_new_keyring, preserve_fds=preserve_fds,
                detach=detach, config=config, console_fd=tty.child_fd if tty else None,
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
            if tty:
                tty.close()
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
        """Wait for our child `pid`; its exit code, or 128+signal."""
        if tty:
            status = tty.relay_until_exit(pid)
        else:
            _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            return 128 + os.WTERMSIG(status)
        return os.WEXITSTATUS(status)
