"""Containers as engine objects: create, start, stop, restart, kill, pause, unpause, remove,
wait, rename, update, prune, and what the monitor's exit command does (`cleanup`).

The engine's Python API for containers: the CLI and the HTTP API (issue 18) call these
methods with Docker's shapes (the ContainerCreate body in, Docker's JSON out: see
inspect.py) and print or send what they return.

How a container lives:
  create   a row in `containers` (state `creating`, `owner` = this process) and a hold on
           its image, in one transaction; its directory (engine/paths.py) with its init
           layer; then `created`.
  start    under the container's lock: the overlay mounted, config.json written (ocispec),
           conmon started (it runs the runtime's `create` and stays, engine/monitor.py),
           the runtime's `start` in-process, the row `running` with the init's and
           conmon's pids.
  exit     conmon writes the exit code and runs `sangja container cleanup --run N ID`,
           which records it (`exited`), deletes the runtime's state, unmounts, and then
           removes the container (--rm) or restarts it (restart policy, with Docker's
           back-off).  So a container that ends while no CLI runs is recorded by its monitor.
Each step is ordered so that a `kill -9` of any command leaves what the next one repairs:
a row is only ever shown after it was checked against the runtime and the monitor
(`observe`): `creating` whose creator is gone is removed, `running` whose runtime says
stopped becomes `exited` with conmon's exit code (or 255 if the monitor died too), and so on.
Commands on one container take its lock (flock on its directory); different containers
never wait for each other; reading (ps, inspect) takes no lock.

Where later parts plug in (each a call in `_start_locked` / `_teardown_run` / `_destroy`):
  networks (issue 15)  before config.json is written: make the netns, run netavark, and put
                       the netns path into the spec (`_network_setup`); undone in
                       `_teardown_run` (`_network_teardown`);
  volumes (issue 16)   at create the mount points are resolved and their volumes made
                       (engine/mounts.py ContainerMounts.create); before config.json the
                       volumes are mounted into the spec (`_volume_mounts`), released in
                       `_teardown_run`; `remove(volumes=True)` and --rm remove the
                       anonymous ones;
  storage (issue 16)   the root is made by the storage driver the container was created
                       with (image/snapshot.py: overlay or vfs, `storage-driver` in its
                       directory);
  events (issue 16)    each action appends Docker's event (engine/events.py);
  health (Healthcheck) after the start (`_health_start`): see engine/health.py.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time

from sangja import jsonio
from sangja.engine import monitor, names
from sangja.engine.errors import (
    Conflict,
    EngineError,
    InvalidArgument,
    NoSuchContainer,
    NotRunning,
)
from sangja.engine.failpoints import failpoint
from sangja.engine.paths import ContainerPaths, containers_dir, sangja_binary
from sangja.engine.records import ACTIVE, Record, Records, alive, proc_id
from sangja.errors import SangjaError

STOP_KILL_WAIT = 30.0  # after SIGKILL: how long to wait for the exit (a hang guard)
TRASH = ".removing-"  # a removed container's directory, until it is deleted


class Containers:
    def __init__(self, store=None, runtime_root: str = "/run/sangja", log=None, watch=None):
        """`watch`: an attach.StartWatch shared by the callers of one process (the API
        service): whoever waits there for a container's start is called once its monitor
        runs and before its process does (an attach made before `start`)."""
        if store is None:
            from sangja.image.store import Store

            store = Store()
        self.store = store
        self.root = store.root
        self.records = Records(store)
        self.runtime_root = os.path.abspath(runtime_root)
        self.log = log
        self.watch = watch
        self._rt = None
        self._images = None
        self._mounts = None
        self.warnings: list[str] = []  # of the last create (the storage driver's fallback)

    # ---- helpers ------------------------------------------------------------------------
    @property
    def rt(self):
        """The runtime's Python API, for what the engine does in-process (start, kill,
        delete, pause, exec ...); conmon runs the runtime's CLI for `create`."""
        if self._rt is None:
            from sangja.runtime.container import Runtime

            self._rt = Runtime(root=self.runtime_root, log=self.log)
        return self._rt

    @property
    def images(self):
        if self._images is None:
            from sangja.engine.images import Images

            self._images = Images(self.store, lambda store: collect_dead(store, self))
        return self._images

    def paths(self, cid: str) -> ContainerPaths:
        return ContainerPaths(self.root, cid)

    @property
    def mounts(self):
        """The containers' volumes and mounts (engine/mounts.py)."""
        if self._mounts is None:
            from sangja.engine.mounts import ContainerMounts

            self._mounts = ContainerMounts(self.store)
        return self._mounts

    def storage(self, cid: str):
        """The storage driver that made this container's root (image/snapshot.py)."""
        from sangja.image import snapshot

        try:
            with open(self.paths(cid).storage_driver) as f:
                name = f.read().strip()
        except FileNotFoundError:
            name = "overlay"  # containers made before there was a choice
        return snapshot.DRIVERS.get(name, snapshot.Overlay)()

    def _live(self, cid: str) -> bool:
        """Does this container still hold what its run took (a volume's mount)?"""
        rec = self.records.get(cid)
        return rec is not None and rec.state not in ("exited", "dead", "removing")

    def event(self, rec: Record, action: str, **extra) -> None:
        """Docker's container event: the image, the name and the labels as attributes."""
        from sangja.engine import events

        attrs = {**(rec.config.get("Labels") or {}), "image": rec.image_ref, "name": rec.name}
        attrs.update({k: str(v) for k, v in extra.items()})
        events.emit("container", action, rec.id, attrs, root=self.root)

    @contextlib.contextmanager
    def _locked(self, cid: str, blocking: bool = True):
        """The container's lock (flock on its directory); NoSuchContainer once it is gone."""
        try:
            fd = os.open(self.paths(cid).dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NoSuchContainer(f"No such container: {cid}")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            yield
        finally:
            os.close(fd)

    def _fresh(self, cid: str) -> Record:
        rec = self.records.get(cid)
        if rec is None:
            raise NoSuchContainer(f"No such container: {cid}")
        return rec

    def resolve(self, ref: str) -> Record:
        return self.records.resolve(ref)

    def get(self, ref: str) -> Record:
        """The container as the runtime and its monitor confirm it."""
        rec = self.observe(self.resolve(ref))
        if rec is None:
            raise NoSuchContainer(f"No such container: {ref}")
        return rec

    def list(self) -> list[Record]:
        """Every container, checked (and repaired) as `observe` does, newest first."""
        collect_dead(self.store, self)
        out = []
        for rec in self.records.all():
            rec = self.observe(rec)
            if rec is not None:
                out.append(rec)
        return out

    def counts(self) -> dict:
        """{total, running, paused, stopped} (/info's)."""
        out = {"total": 0, "running": 0, "paused": 0, "stopped": 0}
        for rec in self.list():
            out["total"] += 1
            if rec.state in ("running", "restarting"):
                out["running"] += 1
            elif rec.state == "paused":
                out["paused"] += 1
            else:
                out["stopped"] += 1
        return out

    # ---- what the runtime and the monitor confirm --------------------------------------
    def runtime_status(self, cid: str) -> str:
        """creating | created | running | paused | stopped | absent, read from the runtime's
        state without its lock (state.json is replaced atomically)."""
        from sangja.runtime import state as st

        try:
            got = st.peek(self.runtime_root, cid)
        except (OSError, ValueError):
            return "stopped"
        if got is None:
            return "absent"
        if got[1] == "stopped" and isinstance(got[0], dict) and got[0].get("pid") == 0:
            return "absent"  # a create that ended before it spawned (one only prepared)
        return got[1] or "stopped"  # a record damaged where the rule reads

    def observe(self, rec: Record, settle: float = 2.0) -> Record | None:
        """The record checked against the runtime and the monitor, fixed in the database if
        it claimed more than they confirm.  None if the container turned out not to exist
        (a `creating` row whose creator is gone is removed here)."""
        state = rec.state
        if state == "creating":
            if alive(rec.owner):
                return rec
            self._collect(rec)
            return None
        if state == "restarting":
            if alive(rec.owner):
                return rec
            state = "running"  # its restarter died: what does the runtime say?
        if state not in ("created", "running", "paused"):
            return rec
        status = self.runtime_status(rec.id)
        if status == "paused" and os.path.exists(os.path.join(self.paths(rec.id).dir,
                                                              "commit-pause")):  # fmt: skip
            from sangja.engine.commit import resume_orphaned

            if resume_orphaned(self, rec):
                status = "running"  # paused by a commit killed before it resumed it
        if status in ("running", "paused"):
            if rec.state != status:
                values = {"state": status}
                if rec.state == "created":  # a start killed after the process ran: adopt it
                    values.update(self._adopt(rec))
                self.records.update(rec.id, expect=(rec.state,), **values)
                for k, v in values.items():
                    setattr(rec, k, v)
            return rec
        if status in ("created", "creating") or (rec.state == "created" and status == "absent"):
            return rec  # made, not started (or being started under the lock)
        # the runtime says the container is gone: conmon has (or will have) its exit code
        paths = self.paths(rec.id)
        got = monitor.exit_status(paths)
        if got is None and alive(rec.monitor) and settle:
            got = self._wait_exit(rec, settle)
        error = ""
        if got is None:
            got, error = (255, time.time()), "the container's monitor (conmon) is gone"
        code, when = got
        oom = monitor.oom_killed(paths)
        if self.records.update(rec.id, expect=(rec.state,), state="exited", exit_code=code,
                               finished=when, pid=0, oom_killed=int(oom), error=error,
                               owner="" if rec.state == "restarting" else rec.owner):  # fmt: skip
            rec.state, rec.exit_code, rec.finished, rec.pid = "exited", code, when, 0
            rec.oom_killed, rec.error = int(oom), error
            self._exited(rec, code, oom)
        else:
            rec = self.records.get(rec.id)
        return rec

    def _exited(self, rec: Record, code: int, oom: bool) -> None:
        """The one process that recorded a run's end (a compare-and-set on the row) says
        so: `oom` first when the kernel killed it for memory, then `die`."""
        if oom:
            self.event(rec, "oom")
        self.event(rec, "die", exitCode=code)

    def _adopt(self, rec: Record) -> dict:
        """The fields a start killed before it recorded them: the init's pid (the
        runtime's), conmon's (its pid file), the time."""
        from sangja.runtime import state as st

        out: dict = {"started": time.time()}
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            out["pid"] = st.peek(self.runtime_root, rec.id)[0]["pid"]
        pid_file = self.paths(rec.id).conmon_pid_file
        with contextlib.suppress(OSError, ValueError), open(pid_file) as f:
            mpid = int(f.read().strip())
            out["monitor"] = proc_id(mpid)
            with open(f"/proc/{mpid}/cmdline", "rb") as g:  # its exit command's run number
                args = g.read().split(b"\0")
            for i, a in enumerate(args[:-2]):
                if a == b"--run" and args[i + 1] == b"--exit-command-arg":
                    out["run"] = int(args[i + 2])
        return out

    def _wait_exit(self, rec: Record, timeout: float | None):
        """(exit code, time) once the container's monitor recorded its exit; None if
        `timeout` passed or the monitor is gone without a word (monitor.wait_exit)."""
        fd = monitor.init_pidfd(self.runtime_root, rec.id)
        try:
            return monitor.wait_exit(self.paths(rec.id), rec.monitor, timeout, init_fd=fd)
        finally:
            if fd is not None:
                os.close(fd)

    def _collect(self, rec: Record) -> None:
        """Remove a container whose creating command died (if no one else is at it)."""
        try:
            with self._locked(rec.id, blocking=False):
                cur = self.records.get(rec.id)
                if cur is not None and cur.state == "creating" and not alive(cur.owner):
                    self._destroy(cur, volumes=True)  # its anonymous volumes were for it
        except (BlockingIOError, NoSuchContainer):
            pass
        if not os.path.isdir(self.paths(rec.id).dir):
            with contextlib.suppress(SangjaError):
                self.mounts.db  # noqa: B018
                used = self.records.delete(rec.id, also=self.mounts.forget)
                self.mounts.remove_anonymous(used)  # its directory never existed or is gone

    # ---- create -------------------------------------------------------------------------
    def create(self, body: dict, name: str | None = None, *, pull: str = "missing",
               platform: str | None = None, progress=None,
               signature_policy: str | None = None) -> tuple[str, list[str]]:  # fmt: skip
        """ContainerCreate: -> (id, warnings).  Nothing is left behind if it fails.
        `signature_policy`: content trust's policy file (sangja.image.trust)."""
        body, fd, rec = self._new(body, name, pull, platform, progress, signature_policy)
        try:
            self.records.update(rec.id, state="created", owner="")
        finally:
            os.close(fd)
        return rec.id, list(self.warnings)

    def _new(self, body, name, pull, platform, progress, signature_policy):
        """create's and run's first part: the body checked and given its defaults and
        network settings, the image found (pulled as `pull` says), the row and directory
        made.  -> (the body, the lock's fd, held, the row)."""
        from sangja.engine import containernet
        from sangja.engine.createconfig import normalize

        body = containernet.prepare(self, normalize(body))
        image_id = self.images.for_container(body["Config"]["Image"], pull, platform, progress,
                                             signature_policy)  # fmt: skip
        fd, rec = self._create(body, image_id, name)
        return body, fd, rec

    def _create(self, body: dict, image_id: str, name: str | None) -> tuple[int, Record]:
        """The row (state creating) and the directory; -> (the lock's fd, held; the row)."""
        from sangja.engine import ocispec

        given = names.check(name) if name else None
        cid = os.urandom(32).hex()
        paths = self.paths(cid)
        os.makedirs(containers_dir(self.root), mode=0o711, exist_ok=True)
        os.mkdir(paths.dir, 0o711)
        fd = os.open(paths.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_EX)
        rec = Record(id=cid, name=given or names.generate(), image=image_id,
                     image_ref=body["Config"]["Image"], created=time.time(),
                     body=jsonio.dumps(body), state="creating", owner=proc_id())  # fmt: skip
        try:
            self._insert(rec, given)
            from sangja.engine import containernet

            containernet.attach(self, rec)
            failpoint("create:row")
            lowers = self._image_lowers(image_id)
            ocispec.make_init_layer(paths.init, lowers)
            os.mkdir(paths.monitor, 0o700)
            self._make_root(paths, lowers)
            self._create_mounts(rec)
            failpoint("create:mounts")
        except BaseException:
            with contextlib.suppress(SangjaError, OSError):
                self._destroy(rec, volumes=True, quiet=True)
            os.close(fd)
            raise
        self.event(rec, "create")
        return fd, rec

    def _make_root(self, paths, lowers: list[str]) -> None:
        """The container's root by the storage driver in force (recorded in its directory:
        every later step uses the same one); a fallback to vfs is a warning of create's."""
        from sangja.image import snapshot

        drv, warning = snapshot.driver(self.root)
        self.warnings = [warning] if warning else []
        with open(paths.storage_driver, "w") as f:
            f.write(drv.name + "\n")
        drv.create([paths.init] + lowers, paths.dir)

    def _create_mounts(self, rec: Record) -> None:
        """The container's volumes and mounts, resolved now (engine/mounts.py): named
        volumes made if missing, anonymous ones for -v /path and the image's VOLUMEs,
        --volumes-from's points taken from the other container."""
        cfg, hc = rec.config, rec.host_config
        image_volumes = (self._image_conf(rec.image).get("config") or {}).get("Volumes") or {}

        def volumes_from(ref):
            return self.mounts.points(self.resolve(ref).id)

        self.mounts.create(rec.id, cfg, hc, list(image_volumes), volumes_from)

    def _insert(self, rec: Record, given: str | None) -> None:
        """The row; a generated name that is taken is drawn again, a given one is an error
        (unless the container holding it was left by a killed create: collected first)."""
        for _ in range(50):
            try:
                self.records.insert(rec)
                return
            except Conflict:
                if given is None:
                    rec.name = names.generate()
                    continue
                try:
                    holder = self.records.resolve(given)
                except NoSuchContainer:
                    continue  # removed meanwhile
                if holder.id == rec.id or not self._is_dead(holder):
                    raise
        raise EngineError("cannot find a free container name")

    def _is_dead(self, rec: Record) -> bool:
        if rec.state == "creating" and not alive(rec.owner):
            self._collect(rec)
            return self.records.get(rec.id) is None
        return False

    def _image_lowers(self, image_id: str) -> list[str]:
        layers = self.store.layers_of(image_id)
        return [self.store.layer_path(ly.chain_id) for ly in reversed(layers)]

    # ---- start --------------------------------------------------------------------------
    def run(self, body: dict, name: str | None = None, *, pull: str = "missing",
            platform: str | None = None, progress=None, on_created=None,
            foreground: bool = False, signature_policy: str | None = None) -> Record:  # fmt: skip
        """create + start in one hold of the container's lock: until the container runs
        the row stays `creating`, so a run killed half-way leaves nothing the next command
        does not remove.  `on_created(paths)`: called once the container exists and before
        it starts (a foreground run attaches there).  `foreground`: this process waits for
        the container (with --rm, it removes it)."""
        body, fd, rec = self._new(body, name, pull, platform, progress, signature_policy)
        try:
            try:
                # made just now under the lock we hold: no run of it to tear down
                return self._start_locked(rec, on_created, foreground, fresh=True)
            except BaseException:
                if body["HostConfig"].get("AutoRemove"):
                    with contextlib.suppress(SangjaError, OSError):
                        self._destroy(self._fresh(rec.id), volumes=True)
                else:
                    with contextlib.suppress(SangjaError):
                        self.records.update(rec.id, expect=("creating",), state="created",
                                            owner="")  # fmt: skip
                raise
        finally:
            os.close(fd)

    def start(self, ref: str, on_created=None, foreground: bool = False) -> Record:
        """ContainerStart: a no-op for a running container (as Docker)."""
        rec = self.resolve(ref)
        with self._locked(rec.id):
            rec = self.observe(self._fresh(rec.id))
            if rec is None:
                raise NoSuchContainer(f"No such container: {ref}")
            if rec.state == "running":
                return rec
            if rec.state == "paused":
                raise Conflict("cannot start a paused container, try unpause instead")
            if rec.state in ("removing", "dead"):
                raise Conflict(f"container {rec.id[:12]} is marked for removal and cannot be"
                               " started")  # fmt: skip
            try:
                return self._start_locked(rec, on_created, foreground)
            except SangjaError:
                # as dockerd: an AutoRemove (--rm) container that cannot start is removed
                # (the docker CLI creates, then starts it through the API)
                if rec.host_config.get("AutoRemove"):
                    with contextlib.suppress(SangjaError, OSError):
                        self._destroy(self._fresh(rec.id))
                raise

    def _start_locked(self, rec: Record, on_created=None, foreground: bool = False,
                      fresh: bool = False) -> Record:  # fmt: skip
        """`fresh`: the container was made by this process under the lock it holds (run),
        so no earlier run left anything (a start killed half-way, before it recorded its
        run and monitor, may have: `_teardown_run` for any other)."""
        from sangja.engine import ocispec

        paths = self.paths(rec.id)
        if not fresh:
            self._teardown_run(rec)
        drv = self.storage(rec.id)
        self._network_begin(rec)  # netavark works while the rest is made
        try:
            drv.mount([paths.init] + self._image_lowers(rec.image), paths.dir)
        except BaseException:
            with contextlib.suppress(SangjaError, OSError):
                self._network_teardown(rec)
            raise
        failpoint("start:mounted")
        started = log_fifo = reserved = None
        try:
            body = rec.spec
            cfg, hc = body["Config"], body["HostConfig"]
            # the image's config as create read it (content-addressed: it cannot change)
            conf = self.__dict__.get("_confs", {}).get(rec.image) or self.store.config_of(rec.image)
            spec = ocispec.build(body, conf, cid=rec.id,
                                 name=rec.name, paths=paths, rootfs=paths.rootfs)  # fmt: skip
            self._network_setup(rec, spec)  # the etc files too
            self._volume_mounts(rec, spec)
            tmp = paths.config + ".tmp"
            with open(tmp, "w") as f:
                f.write(jsonio.dumps(spec))
            os.rename(tmp, paths.config)
            run = rec.run + 1  # recorded with the start below: an exit command of this
            # run that comes sooner waits for our lock, one of a run killed before then
            # finds an older number and leaves the repair to the next command
            lc = hc.get("LogConfig") or {}
            from sangja.engine.createconfig import log_limits

            max_size, max_file = log_limits(lc.get("Config") or {})
            if max_file > 1 and lc.get("Type") != "none":
                # conmon cannot keep older files: it writes to the log writer's FIFO
                from sangja.engine import logfiles

                logfiles.start(paths, max_size, max_file)
                log_fifo, max_size = paths.log_fifo, 0
                failpoint("start:logwriter")
            exit_command = [sangja_binary(), "--root", self.runtime_root, "container",
                            "cleanup", "--run", str(run)]  # fmt: skip
            if foreground and (hc.get("RestartPolicy") or {}).get("Name", "no") == "no":
                # this process waits and does the clean-up itself: the exit command has
                # nothing to do while it lives (and does it all if it was killed)
                exit_command += ["--unless-alive", proc_id()]
            # The runtime's create, half done here where Python runs already, while conmon
            # starts: its `sangja create` waits for the state dir's lock, then spawns the
            # init from the plan in C (runtime/container.py reserve, prepare).
            reserved = self.rt.reserve(rec.id)
            failpoint("start:reserved")
            failed = []

            def meanwhile():
                try:
                    self.rt.prepare(rec.id, paths.dir, spec, reserved=reserved)
                except BaseException as e:  # nothing prepared: conmon's create says why too
                    failed.append(e)
                self._preload(foreground)

            try:
                started = monitor.create(
                    paths, rec.id, rec.name, runtime_root=self.runtime_root,
                    tty=bool(cfg.get("Tty")), stdin=bool(cfg.get("OpenStdin")),
                    stdin_once=bool(cfg.get("StdinOnce")), log_size_max=max_size,
                    log_driver=lc.get("Type") or "k8s-file", log_path=log_fifo,
                    exit_command=exit_command + [rec.id], env={"SANGJA_ROOT": self.root},
                    meanwhile=meanwhile,
                )  # fmt: skip
            except BaseException:
                if failed:  # the first word on it, not the fallback create's
                    raise failed[0] from None
                raise
            failpoint("start:created")
            if on_created is not None:
                on_created(paths)
            self._network_finish(rec)
            if self.watch is not None:
                self.watch.fire(rec.id, paths)
            self.rt.start(rec.id)
            failpoint("start:started")
        except BaseException as e:
            if reserved is not None and reserved.fd >= 0:  # (our lock: delete would wait)
                with contextlib.suppress(SangjaError):
                    reserved.remove()
            if started is not None:
                monitor.kill(started.monitor)
            if log_fifo is not None:  # a writer whose conmon never came ends
                from sangja.engine import logfiles

                logfiles.release(paths)
            with contextlib.suppress(SangjaError):
                self.rt.delete(rec.id, force=True)
            with contextlib.suppress(SangjaError, OSError):
                self.mounts.stop(rec.id, self._live)
            with contextlib.suppress(SangjaError, OSError):
                self._network_teardown(rec)
            with contextlib.suppress(SangjaError):
                drv.unmount(paths.dir)
            if isinstance(e, SangjaError):
                with contextlib.suppress(SangjaError):
                    self.records.update(rec.id, error=str(e),
                                        exit_code=getattr(e, "exit_code", 125))  # fmt: skip
                if not isinstance(e, EngineError):
                    from sangja.engine.errors import command_error

                    raise command_error(str(e), e.errno) from None
            raise
        now = time.time()
        self.records.update(rec.id, state="running", pid=started.pid, monitor=started.monitor,
                            started=now, exit_code=0, error="", oom_killed=0, run=run,
                            owner=proc_id() if foreground else "")  # fmt: skip
        self.event(rec, "start")
        rec = self._fresh(rec.id)
        return self._fresh(rec.id) if self._health_start(rec) else rec

    def _preload(self, foreground: bool) -> None:
        """While the runtime creates the container: the modules the rest of the start
        (the runtime's Python API for `start`) and a foreground run's relay import."""
        self.rt  # noqa: B018
        if foreground:
            import sangja.engine.attach  # noqa: F401

    def _network_begin(self, rec: Record) -> None:
        """The container's network namespace made, addresses and ports leased, netavark
        started on it (engine/containernet.py)."""
        from sangja.engine import containernet

        self.__dict__.setdefault("_net_pending", {})[rec.id] = containernet.begin(self, rec)

    def _network_setup(self, rec: Record, spec: dict) -> None:
        """The namespace's path into the spec; /etc/hostname, /etc/hosts, /etc/resolv.conf
        written."""
        from sangja.engine import containernet

        sb = self.__dict__.get("_net_pending", {}).get(rec.id)
        containernet.setup(self, rec, spec, self.paths(rec.id), sb)

    def _network_finish(self, rec: Record) -> None:
        """netavark done, names answered: before the runtime lets the process run."""
        from sangja.engine import containernet

        containernet.finish(self, rec, self.__dict__.get("_net_pending", {}).pop(rec.id, None))

    def _volume_mounts(self, rec: Record, spec: dict) -> None:
        """Bind mounts, named and anonymous volumes, --mount tmpfs, in the spec's mounts
        (engine/mounts.py): volumes with options mounted, empty volumes filled from the
        image first (copy-up), bind sources resolved on the host."""
        spec["mounts"] = self.mounts.start(rec.id, self.paths(rec.id).rootfs,
                                           spec.get("mounts") or [], self._live)  # fmt: skip

    def _health_start(self, rec: Record) -> bool:
        """A container with a health check (Config.Healthcheck, or the image's) gets its
        checker process and State.Health "starting" (engine/health.py).  -> whether the
        record changed."""
        hc = rec.config.get("Healthcheck") or (
            (self._image_conf(rec.image).get("config") or {}).get("Healthcheck"))  # fmt: skip
        if not hc or not hc.get("Test") or hc["Test"][0] == "NONE":
            if rec.health:
                self.records.update(rec.id, health="")
                return True
            return False
        from sangja.engine import health

        self.records.update(rec.id, health=jsonio.dumps(
            {"Status": "starting", "FailingStreak": 0, "Log": []}))  # fmt: skip
        health.start_checker(self, rec)
        return True

    def _teardown_run(self, rec: Record) -> None:
        """What a run leaves: the runtime's state and cgroups, the overlay mount, the
        volumes it held mounted, a monitor that lost its container.  Idempotent; called
        with the lock held."""
        paths = self.paths(rec.id)
        if (
            rec.monitor
            and alive(rec.monitor)
            and self.runtime_status(rec.id) in ("created", "creating", "running", "paused")
        ):
            monitor.kill(rec.monitor)  # a start that died half-way: begin again
        if rec.health:
            from sangja.engine import health

            health.stop_checker(paths)
        with contextlib.suppress(SangjaError):
            self.rt.delete(rec.id, force=True)
        self._network_teardown(rec)
        self.mounts.stop(rec.id, self._live)
        self.storage(rec.id).unmount(paths.dir)

    def _network_teardown(self, rec: Record, forget: bool = False) -> None:
        """The run's network: netavark teardown, the namespace, the addresses and ports;
        `forget` (the container is removed): its endpoints too, in the same pass."""
        from sangja.engine import containernet

        self.__dict__.get("_net_pending", {}).pop(rec.id, None)
        undo = containernet.forget if forget else containernet.teardown
        for w in undo(self, rec):
            if self.log is not None:
                with contextlib.suppress(OSError):
                    self.log.warn(f"container {rec.id[:12]}: {w}")

    # ---- wait / stop / kill -------------------------------------------------------------
    def wait(self, ref: str, condition: str = "not-running", teardown: bool = False,
             cancelled=None, ready=None) -> int:  # fmt: skip
        """ContainerWait: the exit code once the container is not running (condition
        `not-running`; `next-exit` waits for the next exit even of a stopped container,
        `removed` until it is gone: its last exit code).  `teardown`: also do at once what
        the monitor's exit command will do first (the runtime's state deleted, the overlay
        unmounted), so the caller (a foreground run) returns with the container fully
        stopped.  `cancelled()`: polled while waiting (a caller that went away).
        `ready()`: called once what is awaited is fixed (the API answers the request's
        headers then: the docker CLI starts the container only after that)."""
        if condition not in ("not-running", "next-exit", "removed"):
            raise InvalidArgument(f"invalid condition {condition!r}")
        rec = self.get(ref)
        cid = rec.id
        if ready is not None:
            ready()
        if condition in ("next-exit", "removed") and rec.state not in ACTIVE:
            # not started yet (or stopped): wait until it runs, exits, or goes
            runs = rec.run
            while rec is not None and rec.state not in ACTIVE and rec.run == runs:
                if condition == "removed" and rec.state in ("exited", "dead") and (
                        not rec.host_config.get("AutoRemove") or rec.run):  # fmt: skip
                    break  # it ran and stopped: now only its removal is awaited
                self._pause(cancelled, 0.005)  # a short poll: `run --rm` waits on it
                rec = self.records.get(cid)
                if rec is not None and rec.state == "running":
                    rec = self.observe(rec)
        code = rec.exit_code if rec is not None else 0
        while rec is not None and rec.state in ACTIVE:
            if rec.state == "restarting":
                self._pause(cancelled, 0.05)
            else:
                # conmon's exit file: read at once (an --rm container's record and files
                # may be gone by the time we look at the record again)
                got = self._wait_exit(rec, None if cancelled is None else 0.5)
                if got is not None:
                    code = got[0]
                elif cancelled is not None and cancelled():
                    raise EngineError("wait cancelled")
            cur = self.records.get(cid)
            rec = self.observe(cur) if cur is not None else None
            if rec is not None and rec.state not in ACTIVE:
                code = rec.exit_code
        if teardown and rec is not None and rec.state == "exited":
            with contextlib.suppress(NoSuchContainer), self._locked(rec.id):
                cur = self.records.get(rec.id)
                if cur is not None and cur.state == "exited":
                    self._teardown_run(cur)
        if (condition == "removed" and rec is not None and rec.state == "exited"
                and rec.host_config.get("AutoRemove")):  # fmt: skip
            # removed here, as dockerd removes it, rather than awaited from the monitor's
            # exit command (a Python start later); whichever comes second finds it gone
            with contextlib.suppress(NoSuchContainer, Conflict):
                self.remove(cid)
        if condition == "removed":
            while (cur := self.records.get(cid)) is not None:
                code = cur.exit_code
                self._pause(cancelled, 0.005)
        return code

    @staticmethod
    def _pause(cancelled, seconds: float) -> None:
        if cancelled is not None and cancelled():
            raise EngineError("wait cancelled")
        time.sleep(seconds)

    def stop(self, ref: str, timeout: int | None = None) -> bool:
        """ContainerStop: the stop signal (Config.StopSignal, the image's, else SIGTERM),
        then SIGKILL after `timeout` seconds (Config.StopTimeout, else 10).  Never
        restarted by its policy afterwards.  -> False if it was not running."""
        rec = self.resolve(ref)
        with self._locked(rec.id):
            rec = self.observe(self._fresh(rec.id))
            if rec is None:
                raise NoSuchContainer(f"No such container: {ref}")
            if rec.state == "restarting":
                self.records.update(rec.id, state="exited", manually_stopped=1, owner="")
                return True
            if rec.state not in ("running", "paused"):
                return False
            self.records.update(rec.id, manually_stopped=1)
            cfg = rec.config
            if timeout is None:
                timeout = cfg.get("StopTimeout")
            if timeout is None:
                timeout = 10
            sig = self._stop_signal(rec)
            note = None if rec.host_config.get("AutoRemove") else self._handling(rec)
            try:
                got = None
                if timeout != 0:
                    self._signal(rec, sig)
                    self.event(rec, "kill", signal=sig)
                    failpoint("stop:signalled")
                    got = self._wait_exit(rec, None if timeout < 0 else timeout)
                if got is None:
                    self._signal(rec, 9)
                    got = self._wait_gone(rec)
                self._finish(rec, got)
            except BaseException:
                # not done: the exit command does it (this process may live on: the API)
                if note is not None:
                    with contextlib.suppress(OSError):
                        os.unlink(note)
                raise
            self.event(rec, "stop")
            return True

    def _handling(self, rec: Record) -> str:
        """Before `stop` ends the run: this process will record its end and tear it down,
        and no policy restarts a stopped container, so the monitor's exit command has
        nothing to do while this process lives (as `--unless-alive` says for a foreground
        run).  The front end (csrc/front/) reads the note, `monitor/handled`: "RUN
        PID:START", and answers without starting Python; a stop killed half-way leaves a
        dead process there and the exit command does it all.  Written whole (renamed
        into place); a note of an older run or process is no note.  -> its path."""
        path = os.path.join(self.paths(rec.id).monitor, "handled")
        with contextlib.suppress(OSError):
            with open(path + ".tmp", "w") as f:
                f.write(f"{rec.run} {proc_id()}")
            os.rename(path + ".tmp", path)
        return path

    def _stop_signal(self, rec: Record) -> int:
        from sangja.runtime.container import parse_signal

        sig = rec.config.get("StopSignal")
        if not sig:
            icfg = self.store.config_of(rec.image).get("config") or {}
            sig = icfg.get("StopSignal") or "SIGTERM"
        try:
            return parse_signal(sig)
        except SangjaError:
            return 15

    def _signal(self, rec: Record, sig: int) -> None:
        """The signal to the container's init; a paused container is thawed after it (so it
        can act on it), as Docker does."""
        with contextlib.suppress(SangjaError):
            self.rt.kill(rec.id, sig)
        if self.runtime_status(rec.id) == "paused":
            with contextlib.suppress(SangjaError):
                self.rt.resume(rec.id)

    def _wait_gone(self, rec: Record):
        got = self._wait_exit(rec, STOP_KILL_WAIT)
        if got is None and self.runtime_status(rec.id) in ("running", "paused"):
            raise EngineError(f"container {rec.id[:12]} did not exit after SIGKILL")
        return got

    def _finish(self, rec: Record, got) -> None:
        """Record an exit we waited for, and tear the run down (lock held)."""
        paths = self.paths(rec.id)
        code, when = got if got else (255, time.time())
        oom = monitor.oom_killed(paths)
        if self.records.update(rec.id, expect=("running", "paused", "restarting"),
                               state="exited", exit_code=code, finished=when, pid=0,
                               oom_killed=int(oom)):  # fmt: skip
            self._exited(rec, code, oom)
        self._teardown_run(rec)

    def kill(self, ref: str, sig="KILL") -> None:
        """ContainerKill.  Like Docker, a kill with the stop signal or SIGKILL means the
        restart policy no longer applies."""
        from sangja.runtime.container import parse_signal

        try:
            signum = parse_signal(sig)
        except SangjaError:
            raise InvalidArgument(f"invalid signal: {sig}")
        rec = self.resolve(ref)
        with self._locked(rec.id):
            rec = self.observe(self._fresh(rec.id))
            if rec is None or rec.state not in ("running", "paused", "restarting"):
                raise NotRunning(f"Cannot kill container: {ref}: Container "
                                 f"{(rec or self.resolve(ref)).id} is not running")  # fmt: skip
            if signum in (9, self._stop_signal(rec)):
                self.records.update(rec.id, manually_stopped=1)
            if rec.state == "restarting":
                self.records.update(rec.id, state="exited", owner="")
                return
            try:
                self.rt.kill(rec.id, signum)
            except SangjaError as e:
                raise NotRunning(f"Cannot kill container: {ref}: {e}")
            self.event(rec, "kill", signal=signum)

    def restart(self, ref: str, timeout: int | None = None) -> None:
        """ContainerRestart: stop (if running), then start; the restart policy applies
        again afterwards, as in Docker."""
        self.stop(ref, timeout)
        rec = self.resolve(ref)
        self.records.update(rec.id, manually_stopped=0)
        self.start(ref)
        self.event(rec, "restart")

    # ---- pause --------------------------------------------------------------------------
    def pause(self, ref: str) -> None:
        rec = self.resolve(ref)
        with self._locked(rec.id):
            rec = self.observe(self._fresh(rec.id))
            if rec is None or rec.state == "paused":
                raise Conflict(f"Container {rec.id if rec else ref} is already paused")
            if rec.state != "running":
                raise NotRunning(f"Container {rec.id} is not running")
            self.rt.pause(rec.id)
            self.records.update(rec.id, state="paused")
            self.event(rec, "pause")

    def unpause(self, ref: str) -> None:
        rec = self.resolve(ref)
        with self._locked(rec.id):
            rec = self.observe(self._fresh(rec.id))
            if rec is None or rec.state != "paused":
                raise Conflict(f"Container {rec.id if rec else ref} is not paused")
            self.rt.resume(rec.id)
            self.records.update(rec.id, state="running")
            self.event(rec, "unpause")

    # ---- remove -------------------------------------------------------------------------
    def remove(self, ref: str, force: bool = False, volumes: bool = False) -> str:
        """ContainerDelete: -> the id.  A running container needs `force` (it is killed).
        `volumes`: its anonymous volumes too (never named ones, nor one another container
        still uses)."""
        rec = self.resolve(ref)
        with self._locked(rec.id):
            rec = self._fresh(rec.id)
            if rec.state != "creating" or not alive(rec.owner):
                rec = self.observe(rec, settle=0) or rec
            if not force and (rec.state in ACTIVE or rec.state == "creating"):
                raise Conflict(
                    f"You cannot remove a {rec.state} container {rec.id}. Stop the container"
                    " before attempting removal or force remove"
                )
            self._destroy(rec, volumes=volumes)
        return rec.id

    def _destroy(self, rec: Record, volumes: bool = False, quiet: bool = False) -> None:
        """Everything of the container: its process and monitor, the runtime's state and
        cgroups, the overlay, the volumes it held mounted, its directory, its row, its
        image hold and its volume references (with the row, in one transaction);
        `volumes` (rm -v, --rm): then its anonymous volumes.  The lock is held (by the
        caller).  `quiet`: no event (a create that failed never announced the container)."""
        from sangja.image.store import remove_tree

        paths = self.paths(rec.id)
        if rec.state not in ("exited", "created", "dead"):  # killing it may take a while
            with contextlib.suppress(SangjaError):
                self.records.update(rec.id, state="removing")
        with contextlib.suppress(SangjaError):
            self.rt.delete(rec.id, force=True)  # kills the init, waits, removes its cgroups
        if rec.monitor:
            monitor.kill(rec.monitor)  # no exit command for a container being removed
        if os.path.exists(paths.logwriter_pid):
            from sangja.engine import logfiles

            logfiles.kill(paths)
        if rec.health:
            from sangja.engine import health

            health.stop_checker(paths)
        failpoint("rm:killed")
        self._network_teardown(rec, forget=True)
        try:
            self.mounts.stop(rec.id, self._live)
            self.storage(rec.id).unmount(paths.dir)
        except (OSError, SangjaError) as e:
            with contextlib.suppress(SangjaError):
                self.records.update(rec.id, state="dead", error=f"removal failed: {e}")
            raise EngineError(f"unable to remove container {rec.id[:12]}: {e}")
        self.mounts.db  # noqa: B018 (its tables exist before the row's transaction)
        used = self.records.delete(rec.id, also=self.mounts.forget)
        failpoint("rm:row")
        if not quiet:
            self.event(rec, "destroy")
        if volumes and used:
            self.mounts.remove_anonymous(used)
        # Out of the way first (a late writer, e.g. the monitor's exit command, finds no
        # path), then removed; what a kill leaves here the next listing removes.
        trash = os.path.join(containers_dir(self.root), TRASH + rec.id)
        try:
            os.rename(paths.dir, trash)
        except FileNotFoundError:
            return
        with contextlib.suppress(OSError):
            remove_tree(trash)

    # ---- the monitor's exit command ------------------------------------------------------
    def cleanup(self, cid: str, run: int | None = None) -> None:
        """What conmon runs when the container ended: record the exit, tear the run down,
        then remove (AutoRemove) or restart (policy) it.  A late or repeated call (another
        run, a container already handled or removed) does nothing."""
        from sangja.engine import restart

        if self.records.get(cid) is None:
            return
        try:
            with self._locked(cid):
                rec = self.records.get(cid)
                if rec is None or (run is not None and rec.run != run):
                    return
                rec = self.observe(rec)
                if rec is None or rec.state != "exited":
                    return  # still running (a stale call), or already restarting
                self._teardown_run(rec)
                hc = rec.host_config
                if hc.get("AutoRemove"):
                    if not alive(rec.owner):  # else the foreground run removes it
                        self._destroy(rec, volumes=True)
                    return
                ran = (rec.finished or time.time()) - (rec.started or 0)
                if not restart.should_restart(
                    hc.get("RestartPolicy") or {},
                    rec.exit_code,
                    rec.restart_count,
                    bool(rec.manually_stopped),
                ):
                    return  # fmt: skip
                delay = restart.next_delay(rec.restart_delay, ran)
                self.records.update(cid, state="restarting", owner=proc_id(),
                                    restart_delay=delay)  # fmt: skip
        except NoSuchContainer:
            return
        time.sleep(delay)  # the back-off, outside the lock: stop/kill/rm may end it
        try:
            with self._locked(cid):
                rec = self.records.get(cid)
                if rec is None or rec.state != "restarting" or rec.owner != proc_id():
                    return
                self.records.update(cid, restart_count=rec.restart_count + 1, owner="")
                rec = self._fresh(cid)
                try:
                    self._start_locked(rec)
                except SangjaError as e:
                    self.records.update(cid, state="exited", error=str(e))
        except NoSuchContainer:
            return

    def start_all_restartable(self) -> list[tuple[str, str | None]]:
        """`container start --all-restartable` (the boot unit): every container whose
        policy is `always`, or `unless-stopped` and not stopped by the user, that is not
        running.  -> [(name, error or None)]."""
        from sangja.engine import restart

        out = []
        for rec in self.list():
            hc = rec.host_config
            if rec.state not in ("exited", "created"):
                continue
            if not restart.restart_at_boot(hc.get("RestartPolicy") or {},
                                           bool(rec.manually_stopped)):  # fmt: skip
                continue
            try:
                self.start(rec.id)
                out.append((rec.name, None))
            except SangjaError as e:
                out.append((rec.name, str(e)))
        return out

    # ---- networks (engine/endpoints.py does the work) ------------------------------------
    def network_connect(self, net: str, ref: str, endpoint: dict | None = None) -> None:
        """NetworkConnect: set up at once on a running container, at its next start on a
        stopped one."""
        from sangja.engine import containernet

        rec = self.resolve(ref)
        with self._locked(rec.id):
            rec = self.observe(self._fresh(rec.id)) or rec
            if rec.state == "paused":
                raise Conflict(f"Container {rec.id} is paused: unpause it first")
            mode = rec.host_config.get("NetworkMode")
            containernet.endpoints(self).connect(rec.id, rec.name, net, endpoint, mode=mode,
                                                 host_config=rec.host_config)  # fmt: skip
            containernet.refresh_files(self, rec)

    def network_disconnect(self, net: str, ref: str) -> None:
        from sangja.engine import containernet

        rec = self.resolve(ref)
        with self._locked(rec.id):
            containernet.endpoints(self).disconnect(rec.id, rec.name, net)
            containernet.refresh_files(self, rec)

    def ports(self, ref: str) -> dict:
        """The container's NetworkSettings.Ports (`container port`)."""
        from sangja.engine import containernet

        return containernet.settings(self, self.get(ref))["Ports"]

    # ---- rename / update / prune ----------------------------------------------------------
    def rename(self, ref: str, new: str) -> None:
        new = names.check(new)
        rec = self.resolve(ref)
        with self._locked(rec.id):
            rec = self._fresh(rec.id)
            if rec.name == new:
                raise Conflict("Renaming a container with the same name as its current name")
            self.records.rename(rec.id, new)
            old, rec.name = rec.name, new
            self.event(rec, "rename", oldName="/" + old)

    def update(self, ref: str, changes: dict) -> list[str]:
        """ContainerUpdate: resources (and RestartPolicy) of a container; a running one gets
        the new limits at once.  -> warnings."""
        from sangja.engine.createconfig import RESOURCE_DEFAULTS, _check_host
        from sangja.engine.ocispec import resources

        allowed = set(RESOURCE_DEFAULTS) | {"RestartPolicy"}
        bad = [k for k in changes if k not in allowed]
        if bad:
            raise InvalidArgument(f"update: {', '.join(bad)} cannot be changed")
        rec = self.resolve(ref)
        with self._locked(rec.id):
            rec = self.observe(self._fresh(rec.id))
            body = rec.spec
            hc = dict(body["HostConfig"])
            hc.update({k: v for k, v in changes.items() if v is not None})
            new_mem = changes.get("Memory") and not changes.get("MemorySwap")
            if new_mem and 0 < hc.get("MemorySwap", 0) < hc["Memory"]:
                hc["MemorySwap"] = 0  # as Docker: the old swap would be below the new limit
            _check_host(hc)
            if rec.state in ("running", "paused"):
                res = resources({k: hc.get(k) for k in RESOURCE_DEFAULTS})
                try:
                    self.rt.update(rec.id, res)
                except SangjaError as e:
                    raise EngineError(f"Cannot update container {rec.id}: {e}")
            body["HostConfig"] = hc
            self.records.update(rec.id, body=jsonio.dumps(body))
        return []

    def prune(self, filters=None) -> dict:
        """ContainerPrune: every stopped container (created, exited, dead); `filters`
        (Docker's: until=TIME, label=K[=V], label!=K[=V]; a dict or ["k=v", ...]).
        -> {"ContainersDeleted": [ids], "SpaceReclaimed": bytes}."""
        from sangja.engine.filters import label_match, parse_prune
        from sangja.image.store import _du

        until, labels, not_labels = parse_prune(filters)
        deleted, freed = [], 0
        for rec in self.list():
            if rec.state in ACTIVE or rec.state in ("creating", "removing"):
                continue
            if until is not None and rec.created >= until:
                continue
            have = rec.config.get("Labels") or {}
            if labels and not all(label_match(have, f) for f in labels):
                continue
            if any(label_match(have, f) for f in not_labels):
                continue
            size = _du(self.storage(rec.id).changes(self.paths(rec.id).dir))
            try:
                self.remove(rec.id)
            except (NoSuchContainer, Conflict):
                continue
            deleted.append(rec.id)
            freed += size
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": freed}

    # ---- views and I/O (Docker's shapes; the work is in the modules named) ------------------
    def inspect(self, ref: str, size: bool = False, docker_names: bool = False) -> dict:
        """ContainerInspect (engine/inspect.py).  `docker_names` (the Engine API's): the
        log driver k8s-file is called json-file, the name Docker's clients know: docker-py
        and docker-compose read a container's output only from a json-file or journald
        one (podman's compat API does the same); the engine reads either name's log."""
        from sangja.engine import inspect as view

        rec = self.get(ref)
        paths = self.paths(rec.id)
        sz = view.sizes(paths, self._image_size(rec.image), self._rw_size(rec)) if size else None
        out = view.inspect(rec, self._image_conf(rec.image), paths,
                           self._image_lowers(rec.image), sz, self.storage(rec.id).name,
                           self._mounts_api(rec.id))  # fmt: skip
        from sangja.engine import containernet

        out["NetworkSettings"] = containernet.settings(self, rec)
        lc = (out.get("HostConfig") or {}).get("LogConfig")
        if docker_names and lc and lc.get("Type") == "k8s-file":
            out["HostConfig"] = dict(out["HostConfig"], LogConfig=dict(lc, Type="json-file"))
        return out

    def _mounts_api(self, cid: str, points=None) -> list[dict]:
        """Docker's Mounts entries of a container (inspect, ps)."""
        vdir = self.mounts.volumes.dir
        if points is None:
            points = self.mounts.points(cid)
        return [p.api(vdir) for p in points if p.type != "tmpfs"] + [
            p.api(vdir) for p in points if p.type == "tmpfs"]  # fmt: skip

    def _rw_size(self, rec: Record) -> int | None:
        """The writable layer's bytes: overlay's upper (None: inspect measures it); for
        vfs the files that differ from the image (its root is a whole copy)."""
        if self.storage(rec.id).name != "vfs":
            return None
        paths = self.paths(rec.id)
        from sangja.image import treecopy

        lowers = [paths.init] + self._image_lowers(rec.image)
        total = 0
        for p, kind in treecopy.diff(lowers, paths.rootfs):
            if kind != 2:
                with contextlib.suppress(OSError):
                    st = os.lstat(paths.rootfs + p)
                    total += st.st_size if not os.path.isdir(paths.rootfs + p) else 0
        return total

    def summaries(self, all: bool = False, filters=None, limit: int = -1,
                  size: bool = False) -> list[dict]:  # fmt: skip
        """ContainerList (/containers/json): newest first; `all` includes stopped ones,
        `limit` > 0 the newest N of any state (as `ps -n`)."""
        from sangja.engine import containernet
        from sangja.engine import filters as flt
        from sangja.engine import inspect as view

        f = flt.parse(filters or {})
        match = flt.Matcher(f, self.images.resolve, self.resolve)
        all_points = self.mounts.all_points()
        match.mounts_of = lambda rec: all_points.get(rec.id, [])
        match.net_view = lambda rec: containernet.settings(self, rec)
        out = []
        for rec in self.list():
            if not all and limit <= 0 and rec.state not in ("running", "paused", "restarting"):
                continue
            conf = self._image_conf(rec.image)
            cfg_labels = {**((conf.get("config") or {}).get("Labels") or {}),
                          **(rec.config.get("Labels") or {})}  # fmt: skip
            if f and not match(rec, view.status_word(rec), cfg_labels, view._health(rec)):
                continue
            sz = None
            if size:
                sz = view.sizes(self.paths(rec.id), self._image_size(rec.image),
                                self._rw_size(rec))  # fmt: skip
            item = view.summary(rec, conf, sz, self._mounts_api(rec.id, all_points.get(rec.id, [])))
            ns = containernet.settings(self, rec)
            item["Ports"] = containernet.summary_ports(ns)
            item["NetworkSettings"] = {"Networks": ns["Networks"]}
            out.append(item)
            if 0 < limit <= len(out):
                break
        return out

    def _image_conf(self, image_id: str) -> dict:
        cache = self.__dict__.setdefault("_confs", {})
        if image_id not in cache:
            try:
                cache[image_id] = self.store.config_of(image_id)
            except SangjaError:
                cache[image_id] = {}
        return cache[image_id]

    def _image_size(self, image_id: str) -> int:
        row = self.store.db.execute("SELECT size FROM images WHERE id=?", (image_id,)).fetchone()
        return row[0] if row else 0

    def logs(self, ref: str, *, stdout: bool = True, stderr: bool = True,
             timestamps: bool = False, since: float | None = None, until: float | None = None,
             tail: int | None = None, follow: bool = False, cancelled=None):  # fmt: skip
        """ContainerLogs: yields (1 stdout | 2 stderr, bytes) (engine/logs.py).  With
        `follow`, `cancelled()` is asked at each wake-up (at least every second): a reader
        that went away ends the follow."""
        from sangja.engine import logs

        rec = self.get(ref)
        paths = self.paths(rec.id)
        if (rec.host_config.get("LogConfig") or {}).get("Type") == "none":
            raise EngineError('configured logging driver does not support reading ("none")')
        waiter = None
        if follow:
            from sangja.engine.inotify import IN_CLOSE_WRITE, IN_MODIFY, IN_MOVED_TO, Inotify

            ino = Inotify()
            ino.watch(paths.dir, IN_MODIFY | IN_MOVED_TO | IN_CLOSE_WRITE)
            with contextlib.suppress(OSError):
                ino.watch(paths.monitor, IN_MOVED_TO | IN_CLOSE_WRITE)

            def waiter(timeout):
                import select

                p = select.poll()
                p.register(ino.fd, select.POLLIN)
                p.poll(int(timeout * 1000))
                ino.read()

        def written():
            """A log writer (max-file > 1) has written all the ended container said."""
            if os.path.exists(paths.logwriter_pid):
                from sangja.engine import logfiles

                logfiles.wait_done(paths)

        def running():
            if cancelled is not None and cancelled():
                return False
            cur = self.records.get(rec.id)
            live = (cur is not None and cur.state in ACTIVE and monitor.exit_status(paths) is None
                    and (cur.state == "restarting" or alive(cur.monitor)))  # fmt: skip
            if not live:
                written()
            return live

        if rec.state not in ACTIVE:
            written()
        try:
            yield from logs.read(paths.log, stdout=stdout, stderr=stderr,
                                 timestamps=timestamps, since=since, until=until, tail=tail,
                                 follow=follow and rec.state in ACTIVE, running=running,
                                 wait_change=waiter)  # fmt: skip
        finally:
            if follow:
                ino.close()

    def attach(self, ref: str) -> monitor.AttachSocket:
        """A connection to the container's attach socket (engine/attach.py relays it)."""
        rec = self.get(ref)
        if rec.state not in ("running", "paused"):
            raise Conflict("You cannot attach to a stopped container, start it first")
        return monitor.AttachSocket(self.paths(rec.id))

    def attach_at_start(self, ref: str, connected) -> tuple[Record, object]:
        """Attach now if the container runs, else at its next start (before its process
        runs: it loses nothing).  Needs a `watch` (one process: the API service).
        `connected(sock)` is called with the attach socket (or an exception) from the
        thread that connects.  -> (record, a token for `watch.cancel`, or None if already
        attached)."""
        if self.watch is None:
            raise EngineError("attach before start needs a start watch (the API service)")
        rec = self.get(ref)

        def fire(paths):
            try:
                connected(monitor.AttachSocket(paths))
            except Exception as e:  # noqa: BLE001 (handed to the waiter)
                connected(e)

        if rec.state in ("running", "paused"):
            fire(self.paths(rec.id))
            return rec, None
        if rec.state in ("removing", "dead"):
            raise Conflict(f"container {rec.id[:12]} is marked for removal")
        token = self.watch.add(rec.id, fire)
        # started meanwhile (between our read and the registration)?
        cur = self.records.get(rec.id)
        if cur is not None and cur.state in ("running", "paused") and self.watch.cancel(token):
            fire(self.paths(rec.id))
            return cur, None
        return rec, token

    @property
    def execs(self):
        """Exec instances (engine/execs.py)."""
        from sangja.engine.execs import Execs

        return Execs(self)

    def resize(self, ref: str, height: int, width: int) -> None:
        rec = self.get(ref)
        if not rec.config.get("Tty"):
            return
        monitor.control(self.paths(rec.id), monitor.WIN_RESIZE, height, width)

    def top(self, ref: str, ps_args: str = "-ef") -> dict:
        from sangja.engine import stats

        return stats.top(self, self.get(ref), ps_args)

    def stats(self, ref: str, previous: dict | None = None) -> dict:
        """One ContainerStats sample; `previous` (the last one) gives precpu_stats."""
        from sangja.engine import stats

        return stats.with_previous(stats.sample(self, self.get(ref)), previous)

    def healthcheck(self, ref: str) -> dict:
        """Run the container's health check now: -> its State.Health after it."""
        from sangja.engine import health

        rec = self.get(ref)
        hc = health.config(rec, self._image_conf(rec.image))
        if hc is None:
            raise InvalidArgument(f"container {rec.name} has no health check")
        if rec.state != "running":
            raise NotRunning(f"Container {rec.id} is not running")
        return health.record(self, rec, hc, health.run_once(self, rec, hc))

    def changes(self, ref: str) -> list[dict]:
        from sangja.engine import files

        rec = self.get(ref)
        paths = self.paths(rec.id)
        lowers = [paths.init] + self._image_lowers(rec.image)
        drv = self.storage(rec.id)
        if drv.name == "vfs":  # no upper directory: the copy against the image's layers
            from sangja.image import treecopy

            return [{"Path": p, "Kind": k} for p, k in treecopy.diff(lowers, paths.rootfs)]
        return files.changes(paths.upper, self._image_lowers(rec.image))

    def exec(self, ref: str, body: dict) -> int:
        """Exec in the foreground on our stdio (engine/execs.py): -> its exit code."""
        from sangja.engine import execs

        return execs.run(self, ref, body)

    def exec_detached(self, ref: str, body: dict) -> str:
        from sangja.engine import execs

        return execs.run_detached(self, ref, body)

    @contextlib.contextmanager
    def _files(self, ref: str):
        """The container, locked if it is stopped (its overlay is mounted for the copy)."""
        rec = self.get(ref)
        if rec.state in ("running", "paused"):
            yield rec
            return
        with self._locked(rec.id):
            yield self.observe(self._fresh(rec.id)) or rec

    def archive_stat(self, ref: str, path: str) -> dict:
        from sangja.engine import files

        with self._files(ref) as rec:
            info = files.stat_path(self, rec, path)
        info.pop("_dir", None)
        return info

    def archive_get(self, ref: str, path: str, out, follow: bool = False) -> dict:
        """A tar of `path` written to `out` -> its PathStat (GET /containers/ID/archive)."""
        from sangja.engine import files

        with self._files(ref) as rec:
            return files.get_archive(self, rec, path, follow, out=out)

    def archive_put(self, ref: str, path: str, stream, copy_uidgid: bool = False) -> None:
        """Extract a tar into the directory `path` (PUT /containers/ID/archive)."""
        from sangja.engine import files

        with self._files(ref) as rec:
            files.put_archive(self, rec, path, stream, copy_uidgid)

    def copy_from(self, ref: str, src: str, dest: str, archive: bool = False,
                  follow: bool = False, stdout=None) -> None:  # fmt: skip
        from sangja.engine import files

        with self._files(ref) as rec:
            files.copy_from(self, rec, src, dest, archive, follow, stdout)

    def copy_to(self, ref: str, src: str, dest: str, archive: bool = False,
                follow: bool = False, stdin=None) -> None:  # fmt: skip
        from sangja.engine import files

        with self._files(ref) as rec:
            files.copy_to(self, rec, src, dest, archive, follow, stdin)


def collect_dead(store, containers: Containers | None = None) -> None:
    """Remove what killed commands left: `creating` rows whose creator is gone, and exited
    --rm containers no one removed (their foreground run was killed before the monitor's
    exit command ran).  Any command that lists containers or frees images calls this."""
    cs = containers or Containers(store)
    _collect_dirs(cs)
    for rec in cs.records.all():
        if rec.state == "creating" and not alive(rec.owner):
            cs._collect(rec)
        elif (rec.state == "exited" and rec.host_config.get("AutoRemove")
              and not alive(rec.owner) and not alive(rec.monitor)):  # fmt: skip
            try:
                with cs._locked(rec.id, blocking=False):
                    cur = cs.records.get(rec.id)
                    if cur is not None and cur.state == "exited" and not alive(cur.owner):
                        cs._destroy(cur, volumes=True)
            except (BlockingIOError, NoSuchContainer, EngineError):
                pass


def _collect_dirs(cs: Containers) -> None:
    """Directories no row names: a removal killed after the row went (`.removing-*`), or a
    create killed between its mkdir and its row (unlocked: a create in progress holds
    the lock)."""
    from sangja.image.snapshot import unmount
    from sangja.image.store import remove_tree

    d = containers_dir(cs.root)
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return
    known = None
    for n in names:
        p = os.path.join(d, n)
        if n.startswith(TRASH):
            with contextlib.suppress(OSError, SangjaError):
                unmount(os.path.join(p, "rootfs"))
                remove_tree(p)
            continue
        if len(n) != 64:
            continue
        if known is None:
            known = {r[0] for r in cs.records.db.execute("SELECT id FROM containers")}
        if n in known:
            continue
        try:
            with cs._locked(n, blocking=False):
                if cs.records.get(n) is None:
                    with contextlib.suppress(SangjaError):
                        cs.rt.delete(n, force=True)
                    unmount(os.path.join(p, "rootfs"))
                    os.rename(p, os.path.join(d, TRASH + n))
                    remove_tree(os.path.join(d, TRASH + n))
        except (BlockingIOError, NoSuchContainer, OSError, SangjaError):
            continue
