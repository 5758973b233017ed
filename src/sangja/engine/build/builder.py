"""`sangja build`: a Dockerfile and a context -> an image in the store.

    img = Builder(Options(context=".", tags=["app:1"]), store).build()

The Dockerfile is parsed (dockerfile.py), the stages the target needs are found
(stages.py) and built -- independent stages on threads of their own --, each
instruction after the other on the state of the one before (layers.State).  Every step
has a cache key (cache.py): the key of the state below, the instruction after
substitution with the build args it sees, and for COPY/ADD the digest of its sources; a
key the cache knows is not built again.  RUN runs a container (run.py) on an overlay
snapshot whose upper dir becomes the layer; COPY/ADD write into a snapshot the same way
(copier.py); the other instructions only change the config (instructions.py).

Output is Docker's classic builder's: `Step N/M : INSTRUCTION`, ` ---> Using cache`,
` ---> Running in ID`, the RUN's output as it comes, ` ---> ID`, then `Successfully
built ID` and `Successfully tagged NAME`.  A failure names the step and ends the build:
a failing RUN with its exit code, and nothing of it is kept (its container is deleted,
its snapshot unmounted and removed, no half layer enters the store).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading

from sangja.engine.build import cache, layers
from sangja.engine.build import instructions as I
from sangja.engine.build import words as W
from sangja.engine.build.dockerfile import Instruction
from sangja.errors import SangjaError

PROXY_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
              "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")  # fmt: skip
NETWORKS = ("default", "bridge", "host", "none")  # bridge: the default (Docker's)


class BuildError(SangjaError):
    pass


class Cancelled(BuildError):
    """Another stage failed: this one stops."""


class Options:
    def __init__(self, context: str = ".", dockerfile: str | None = None, tags=(),
                 build_args: dict | None = None, target: str | None = None,
                 no_cache: bool = False, pull: bool = False, labels: dict | None = None,
                 platform: str | None = None, quiet: bool = False, iidfile: str | None = None,
                 network: str = "default", secrets: dict | None = None,
                 runtime_root: str = "/run/sangja", log=None,
                 signature_policy: str | None = None, stdin=None,
                 registry_auth: dict | None = None):  # fmt: skip
        self.context, self.dockerfile, self.tags = context, dockerfile, list(tags)
        self.build_args = dict(build_args or {})
        self.target, self.no_cache, self.pull = target, no_cache, pull
        self.labels = dict(labels or {})
        self.platform, self.quiet, self.iidfile = platform, quiet, iidfile
        self.network = network
        self.secrets = dict(secrets or {})
        self.runtime_root, self.log = runtime_root, log
        self.signature_policy = signature_policy
        self.stdin = stdin
        # registry host -> (user, password) for FROM's pulls (the API's X-Registry-Config);
        # None: the stored credentials (sangja login)
        self.registry_auth = dict(registry_auth or {})


class Printer:
    """The build's output on a dup of stdout (so that the fd swaps around a RUN's clone
    never catch it); lines are whole even when stages run in parallel."""

    def __init__(self, quiet: bool, stream=None):
        self.quiet = quiet
        self.lock = threading.Lock()
        self.local = threading.local()
        if stream is None:
            self.fd = os.dup(1)
            os.set_inheritable(self.fd, False)
            self.own = True
        else:
            self.fd = stream
            self.own = False

    def line(self, text: str) -> None:
        if not self.quiet:
            self.write((self.prefix() + text + "\n").encode())

    def prefix(self) -> str:
        """[stage] before each line while stages run in parallel (set per thread)."""
        return getattr(self.local, "prefix", "")

    def write(self, b: bytes) -> None:
        with self.lock:
            view = memoryview(b)
            while view:
                n = os.write(self.fd, view)
                view = view[n:]

    def result(self, image_id: str) -> None:
        """The image is made (before `Successfully built`): nothing to print here."""

    def kept(self, text: str) -> None:
        """A failed RUN's output under -q: on stderr, with the error."""
        import sys

        sys.stderr.write(text)

    def close(self):
        if self.own and self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def stream(self):
        """A text stream for pull's progress."""
        p = self

        class _S:
            def write(self, s):
                p.write(s.encode())
                return len(s)

            def flush(self):
                pass

            def isatty(self):
                return False

        return _S()


class CallbackPrinter(Printer):
    """The output given to `send(text)` (whole lines) instead of an fd: the API service
    streams it as Docker's JSON messages; `on_result(image_id)` hears of the image."""

    def __init__(self, quiet: bool, send, on_result=None):
        super().__init__(quiet, stream=-1)
        self.send, self.on_result = send, on_result

    def write(self, b: bytes) -> None:
        with self.lock:
            self.send(b.decode("utf-8", "replace"))

    def result(self, image_id: str) -> None:
        if self.on_result is not None:
            with self.lock:
                self.on_result(image_id)

    def kept(self, text: str) -> None:
        # the docker CLI prints a quiet build's stream on stderr when it fails
        with self.lock:
            self.send(text)


class _Lines:
    """A RUN's output, passed on whole lines at a time (and kept, for -q's error)."""

    def __init__(self, printer: Printer, keep: bool):
        self.p, self.buf, self.keep, self.all = printer, b"", keep, []

    def __call__(self, b: bytes):
        if self.keep:
            self.all.append(b)
        if self.p.quiet:
            return
        self.buf += b
        if b"\n" in self.buf:
            head, _, self.buf = self.buf.rpartition(b"\n")
            pre = self.p.prefix().encode()
            if pre:
                head = b"\n".join(pre + ln for ln in head.split(b"\n"))
            self.p.write(head + b"\n")

    def flush(self):
        if self.buf and not self.p.quiet:
            self.p.write(self.p.prefix().encode() + self.buf + b"\n")
        self.buf = b""

    def text(self) -> str:
        return b"".join(self.all).decode("utf-8", "replace")


def _now() -> str:
    from sangja.log import now_rfc3339

    return now_rfc3339()


class StageRun:
    """What one stage knows while it is built."""

    def __init__(self, stage, first_step: int):
        self.stage = stage
        self.step = first_step
        self.args: dict[str, str | None] = {}  # ARGs declared in the stage -> value
        self.cmd_set = False
        self.state: layers.State | None = None


class Builder:
    def __init__(self, opts: Options, store, printer: Printer | None = None):
        self.o = opts
        self.store = store
        self.p = printer or Printer(opts.quiet)
        self.ws = None
        self.ctx = None
        self.df = None
        self.failed = threading.Event()
        self.running: set = set()  # run.Container of RUNs in progress
        self.holds: list[str] = []
        self.used_args: set[str] = set()
        self.results: dict[int, object] = {}  # stage index -> Future
        self.total = 0
        self.sde = None
        self._tls = threading.local()
        self._home = threading.current_thread()  # the thread that uses self.store

    def cancel(self) -> None:
        """Stop from another thread (the API's client went away): the RUNs in progress are
        killed and no step starts; build() raises and cleans up as on a failure."""
        self.failed.set()
        for c in list(self.running):
            c.kill()

    # ---- the whole build ----------------------------------------------------------------
    def build(self) -> str:
        from sangja.engine.build import context as C
        from sangja.engine.build import dockerfile, stages
        from sangja.engine.build.workspace import Workspace
        from sangja.image import manifest as mf
        from sangja.image import reference

        o = self.o
        for t in o.tags:
            try:
                r = reference.parse(t)
            except reference.ReferenceError as e:
                raise BuildError(f"invalid tag {t!r}: {e}")
            if r.digest:
                raise BuildError(f"invalid tag {t!r}: a tag may not name a digest")
        if o.network not in NETWORKS:
            raise BuildError(f"network mode {o.network!r} is not supported by build (want"
                             " default, bridge, host or none)")  # fmt: skip
        host = mf.host_platform()
        self.native = f"{host.os}/{host.architecture}" + (
            f"/{host.variant}" if host.variant else ""
        )
        if o.platform:
            self._check_platform(o.platform, "--platform")
        sde = o.build_args.get("SOURCE_DATE_EPOCH") or os.environ.get("SOURCE_DATE_EPOCH")
        if sde:
            try:
                self.sde = int(sde)
            except ValueError:
                raise BuildError(f"SOURCE_DATE_EPOCH={sde!r}: want a number of seconds")
        self.ws = Workspace(self.store)
        try:
            if o.context == "-":
                self.ctx = C.from_stdin(self.ws.subdir("ctx-") + "/in", o.dockerfile, o.stdin)
            else:
                self.ctx = C.from_dir(o.context, o.dockerfile, o.stdin)
            self.df = dockerfile.parse(self.ctx.dockerfile, self.ctx.dockerfile_name)
            for w in self.df.warnings:
                self.p.line(f"[Warning] {w}")
            if "syntax" in self.df.directives:
                self.p.line(f"[Note] # syntax={self.df.directives['syntax']}: sangja builds with"
                            " its own frontend; the directive is ignored")  # fmt: skip
            self.esc = self.df.escape
            self.meta = self._meta_args()
            self.plan = stages.plan(
                self.df, self.meta, o.target, self.esc, self.ctx.dockerfile_name
            )
            self.total = sum(1 + len(s.instructions) for s in self.plan.needed)
            for s in self.plan.needed:  # before any step runs: no emulation for another
                if s.platform:
                    try:
                        self._check_platform(W.word(s.platform, _defined(self.meta), self.esc),
                                             "FROM --platform")  # fmt: skip
                    except BuildError as e:
                        raise BuildError(f"{self.ctx.dockerfile_name}:{s.from_instr.line}: {e}")
            state = self._run_stages()
            if o.labels:
                state = self._labels(state)
            unused = sorted(k for k in o.build_args if k not in self.used_args
                            and k not in PROXY_ARGS and k != "SOURCE_DATE_EPOCH")  # fmt: skip
            if unused:
                self.p.line(f"[Warning] One or more build-args [{' '.join(unused)}] were not"
                            " consumed")  # fmt: skip
            image_id = layers.to_image(self.store, state, o.tags)
        finally:
            self._cleanup()
        self.p.result(image_id)
        self.p.line(f"Successfully built {image_id.split(':', 1)[1][:12]}")
        for t in o.tags:
            self.p.line(f"Successfully tagged {reference.familiar(reference.parse(t).tagged)}")
        if o.quiet:
            self.p.write((image_id + "\n").encode())
        if o.iidfile:
            with open(o.iidfile, "w") as f:
                f.write(image_id)
        return image_id

    def _cleanup(self):
        for c in list(self.running):
            c.kill()
        if self.holds:
            with contextlib.suppress(Exception), self.store.transaction() as db:
                for h in self.holds:
                    db.execute("DELETE FROM holds WHERE holder=?", (h,))
        if self.ctx is not None:
            self.ctx.close()
        if self.ws is not None:
            self.ws.close()

    def _check_platform(self, p: str, what: str) -> None:
        from sangja.image import manifest as mf

        want = mf.parse_platform(p)
        host = mf.host_platform()
        if (want.os, want.architecture) != (host.os, host.architecture) or (
            want.variant and host.variant and want.variant != host.variant
        ):
            raise BuildError(f"{what} {p}: sangja builds for this host's platform only"
                             f" ({self.native}); no emulation is set up for others")  # fmt: skip

    # ---- ARGs -------------------------------------------------------------------------------
    def _platform_args(self) -> dict[str, str]:
        from sangja.image import manifest as mf

        h = mf.host_platform()
        out = {}
        for pre in ("BUILD", "TARGET"):
            out[pre + "PLATFORM"] = self.native
            out[pre + "OS"] = h.os
            out[pre + "ARCH"] = h.architecture
            out[pre + "VARIANT"] = h.variant or ""
        return out

    def _meta_args(self) -> dict[str, str | None]:
        env: dict[str, str | None] = dict(self._platform_args())
        for ins in self.df.meta_args:
            for k, default in ins.pairs:
                v = self._build_arg(k)
                if v is None and default is not None:
                    v = W.word(default, _defined(env), self.esc)
                env[k] = v
        return env

    def _build_arg(self, k: str) -> str | None:
        """--build-arg's value for k (marked used); `--build-arg K` alone: K from the
        environment.  None: not given (or not in the environment: the default holds, as
        Docker has it)."""
        if k not in self.o.build_args:
            return None
        self.used_args.add(k)
        v = self.o.build_args[k]
        if v is None:
            return os.environ.get(k)
        return v

    # ---- stages -------------------------------------------------------------------------------
    def _run_stages(self) -> layers.State:
        from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

        needed = self.plan.needed
        first = 1
        runs = {}
        for s in needed:
            runs[s.index] = StageRun(s, first)
            first += 1 + len(s.instructions)
        if len(needed) == 1:
            return self._stage(runs[needed[0].index], main=True)
        workers = max(1, min(len(needed), self.plan.width, 4))
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stage")
        try:
            for s in needed:
                self.results[s.index] = pool.submit(self._stage, runs[s.index])
            target = self.results[self.plan.target.index]
            try:
                wait(self.results.values(), return_when=FIRST_EXCEPTION)
                if all(f.done() and not f.exception() for f in self.results.values()):
                    return target.result()
            except BaseException:
                pass  # Ctrl-C: the stages are stopped below, and it goes on up
            # a stage failed (or we were interrupted): the others stop, their RUNs killed
            self.failed.set()
            for c in list(self.running):
                c.kill()
            wait(self.results.values())
            # the first real failure, not a stage that stopped because of it
            for s in needed:
                f = self.results[s.index]
                if f.exception() and not isinstance(f.exception(), Cancelled):
                    raise f.exception()
            return target.result()
        finally:
            self.failed.set()
            for c in list(self.running):
                c.kill()
            pool.shutdown(wait=True, cancel_futures=True)

    def _stage_state(self, index: int) -> layers.State:
        f = self.results.get(index)
        if f is None:
            raise BuildError(f"stage {index} was not built")
        return f.result()

    def _from_cache(self, st, k: str, state):
        """The step's result from the build cache, said as Docker says it (" ---> Using
        cache"), or None: not cached, or --no-cache."""
        if self.o.no_cache:
            return None
        e = cache.lookup(st, k)
        if e is None:
            return None
        self.p.line(" ---> Using cache")
        self.p.line(f" ---> {k[:12]}")
        return layers.from_entry(e, state)

    def _store(self):
        """A Store of this thread's own (SQLite connections are per thread)."""
        if threading.current_thread() is self._home:
            return self.store
        st = getattr(self._tls, "store", None)
        if st is None:
            from sangja.image.store import Store

            st = self._tls.store = Store(self.store.root)
        return st

    def _stage(self, sr: StageRun, main: bool = False) -> layers.State:
        if not main and self.plan.width > 1:
            self.p.local.prefix = f"[{sr.stage.name or sr.stage.index}] "
        try:
            return self._stage_inner(sr)
        finally:
            if not main:
                st = getattr(self._tls, "store", None)
                if st is not None:
                    st.close()
                    self._tls.store = None

    def _step_line(self, sr: StageRun, text: str):
        self.p.line(f"Step {sr.step}/{self.total} : {text}")

    def _stage_inner(self, sr: StageRun) -> layers.State:
        s = sr.stage
        self._step_line(sr, s.from_instr.original)
        if self.failed.is_set():
            raise Cancelled("cancelled")
        with self._step_errors(sr, s.from_instr):
            state = self._base(sr)
        sr.step += 1
        triggers = list(state.run_config.get("OnBuild") or [])
        if triggers:
            state.config = json.loads(json.dumps(state.config))
            state.run_config.pop("OnBuild", None)
            n = len(triggers)
            self.p.line(f"# Executing {n} build trigger{'s' if n > 1 else ''}")
            from sangja.engine.build.dockerfile import _instruction

            for t in triggers:
                ins = _instruction(t, s.from_instr.line, self.esc, "ONBUILD")
                with self._step_errors(sr, ins):
                    state = self._dispatch(sr, ins, state, trigger=True)
        for ins in s.instructions:
            if self.failed.is_set():
                raise Cancelled("cancelled")
            self._step_line(sr, ins.original)
            with self._step_errors(sr, ins):
                state = self._dispatch(sr, ins, state)
            sr.step += 1
        sr.state = state
        return state

    def _base(self, sr: StageRun) -> layers.State:
        """The state FROM starts the stage with: an earlier stage's, scratch, an image's."""
        s = sr.stage
        base = self.plan.bases[s.index]
        if s.platform:
            self._check_platform(W.word(s.platform, _defined(self.meta), self.esc),
                                 "FROM --platform")  # fmt: skip
        if isinstance(base, int):
            state = self._stage_state(base)
            state = layers.State(state.key, state.config, list(state.layers), state.base,
                                 state.platform)  # fmt: skip
            self.p.line(f" ---> {state.key[:12]}")
        elif base.lower() == "scratch":
            state = layers.scratch(None)
            self.p.line(" ---> (scratch)")
        else:
            image_id = self._image(base)
            state = layers.from_image(self._store(), image_id, cache.key("image", image_id))
            self.p.line(f" ---> {image_id.split(':', 1)[1][:12]}")
        return state

    @contextlib.contextmanager
    def _step_errors(self, sr: StageRun, ins: Instruction):
        """A step's failure as one line naming the Dockerfile's line and the step (a RUN's
        exit code kept); a stage stopped because another failed goes on up as it is."""
        try:
            yield
        except Cancelled:
            raise
        except SangjaError as e:
            from sangja.engine.build.run import RunFailed

            err = BuildError(f"{self._where(sr, ins)}: {e}", errno=e.errno, path=e.path)
            if isinstance(e, RunFailed):
                err.exit_code = e.exit_code
            raise err
        except OSError as e:
            name = f" {e.filename}" if e.filename else ""
            raise BuildError(f"{self._where(sr, ins)}: {e.strerror or e}{name}", errno=e.errno)

    def _where(self, sr: StageRun, ins: Instruction) -> str:
        return (f"{self.ctx.dockerfile_name}:{ins.line}: step {sr.step}/{self.total}"
                f" ({_short(ins.original)})")  # fmt: skip

    def _image(self, ref: str) -> str:
        """The image FROM (or --from) names, pulled when missing (or with --pull) and,
        with content trust on, checked as `container run` checks it."""
        from sangja.image import trust
        from sangja.image.store import ImageNotFound

        st = self._store()
        if not self.o.pull:
            try:
                image_id = st.resolve(ref)
            except ImageNotFound:
                image_id = None
            if image_id is not None and trust.check_local(st, ref, image_id,
                                                          self.o.signature_policy):  # fmt: skip
                self._hold(st, image_id)
                return image_id
        from sangja.image import reference

        if reference.looks_like_id(ref):
            raise BuildError(f"no such image: {ref}")
        from sangja.image.progress import Progress
        from sangja.image.pull import pull

        try:
            res = pull(ref, store=st, progress=Progress(self.p.stream(), tty=False,
                                                        quiet=self.o.quiet),
                       signature_policy=self.o.signature_policy,
                       credentials=self._credentials(ref))  # fmt: skip
        except trust.Refused:
            raise
        except SangjaError as e:
            raise BuildError(f"image {ref}: {e}", errno=e.errno)
        self._hold(st, res.image_id)
        return res.image_id

    def _credentials(self, ref: str):
        if not self.o.registry_auth:
            return None
        from sangja.image import reference

        try:
            domain = reference.parse(ref).domain
        except reference.ReferenceError:
            return None
        return self.o.registry_auth.get(domain)

    def _hold(self, st, image_id: str) -> None:
        holder = f"build-{self.ws.id}-{len(self.holds)}"
        st.hold(holder, image_id)
        self.holds.append(holder)

    # ---- one instruction ----------------------------------------------------------------------
    def _env(self, sr: StageRun, state: layers.State) -> dict:
        env = _defined(sr.args)
        env.update(I.env_dict(state.run_config.get("Env")))
        return env

    def _meta_step(self, sr, state, text: str, changes: dict, shell: list | None = None):
        """A step that only changes the config (cached like any other step)."""
        k = cache.key(state.key, text)
        created_by = " ".join((shell or ["/bin/sh", "-c"]) + [f"#(nop)  {text}"])
        st = self._store()
        if (hit := self._from_cache(st, k, state)) is not None:
            return hit
        new = state.derive(k, created_by, self._created(), changes)
        layers.record_meta(st, state, new)
        self.p.line(f" ---> {k[:12]}")
        return new

    def _created(self) -> str:
        if self.sde is not None:
            import time

            return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.sde))
        return _now()

    def _dispatch(self, sr: StageRun, ins: Instruction, state: layers.State,
                  trigger: bool = False) -> layers.State:  # fmt: skip
        cmd = ins.cmd
        rc = state.run_config
        env = self._env(sr, state)
        esc = self.esc
        if cmd == "env":
            changes, text = I.env(ins, rc, env, esc)
        elif cmd == "label":
            changes, text = I.label(ins, rc, env, esc)
        elif cmd == "cmd":
            changes, text = I.cmd(ins, rc)
            sr.cmd_set = True
        elif cmd == "entrypoint":
            changes, text = I.entrypoint(ins, rc, sr.cmd_set)
        elif cmd == "shell":
            changes, text = I.shell(ins)
        elif cmd == "user":
            changes, text = I.user(ins, env, esc)
        elif cmd == "stopsignal":
            changes, text = I.stopsignal(ins, env, esc)
        elif cmd == "volume":
            changes, text = I.volume(ins, rc, env, esc)
        elif cmd == "expose":
            changes, text = I.expose(ins, rc, env, esc)
        elif cmd == "healthcheck":
            changes, text = I.healthcheck(ins)
        elif cmd == "onbuild":
            changes, text = I.onbuild(ins, rc)
        elif cmd == "maintainer":
            return self._maintainer(sr, state, W.word(ins.args[0], env, esc))
        elif cmd == "arg":
            return self._arg(sr, ins, state)
        elif cmd == "workdir":
            return self._workdir(sr, ins, state, env)
        elif cmd == "run":
            return self._run(sr, ins, state, env)
        elif cmd in ("copy", "add"):
            return self._copy(sr, ins, state, env)
        else:
            raise BuildError(f"{cmd.upper()} is not allowed here")
        return self._meta_step(sr, state, text, changes)

    def _maintainer(self, sr, state, who: str):
        k = cache.key(state.key, f"MAINTAINER {who}")
        st = self._store()
        if (hit := self._from_cache(st, k, state)) is not None:
            return hit
        new = state.derive(k, f"/bin/sh -c #(nop)  MAINTAINER {who}", self._created())
        new.config["author"] = who
        layers.record_meta(st, state, new)
        self.p.line(f" ---> {k[:12]}")
        return new

    def _arg(self, sr, ins, state):
        texts = []
        for k, default in ins.pairs:
            env = self._env(sr, state)
            v = self._build_arg(k)
            if v is not None:
                pass
            elif default is not None:
                v = W.word(default, env, self.esc)
            elif k in self.meta:
                v = self.meta[k]  # a global ARG brought into the stage
            else:
                v = None
            self.used_args.add(k)
            sr.args[k] = v
            texts.append(k if default is None else f"{k}={default}")
        # the cache key has the ARG as written: a new value breaks the cache where it is
        # used (RUN sees every ARG in its environment), not here
        return self._meta_step(sr, state, "ARG " + " ".join(texts), {})

    def _labels(self, state: layers.State) -> layers.State:
        changes, text = I.label(None, state.run_config, {}, self.esc, extra=self.o.labels)
        k = cache.key(state.key, text)
        st = self.store
        e = None if self.o.no_cache else cache.lookup(st, k)
        if e is not None:
            return layers.from_entry(e, state)
        new = state.derive(k, f"/bin/sh -c #(nop)  {text}", self._created(), changes)
        layers.record_meta(st, state, new)
        return new

    # ---- WORKDIR --------------------------------------------------------------------------
    def _workdir(self, sr, ins, state, env):
        from sangja.engine.build import rootfs

        changes, text, path = I.workdir(ins, state.run_config, env, self.esc)
        k = cache.key(state.key, text)
        st = self._store()
        if (hit := self._from_cache(st, k, state)) is not None:
            return hit
        snap = self.ws.snapshot(state.lowers(st))
        try:
            fd = os.open(snap.merged, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                made: list = []
                os.close(rootfs.mkdir_all(fd, path, made=made))
            finally:
                os.close(fd)
            snap.unmount()
            created_by = f"/bin/sh -c #(nop) {text}"
            if not made:
                new = state.derive(k, created_by, self._created(), changes)
                layers.record_meta(st, state, new)
            else:
                new = layers.commit_layer(st, state, k, snap.upper, created_by, self._created(),
                                          self.sde)  # fmt: skip
                new.config.setdefault("config", {}).update(changes)
                with st.lock(), st.transaction() as db:
                    db.execute("UPDATE build_cache SET config=? WHERE key=?",
                               (json.dumps(new.config, separators=(",", ":")), k))  # fmt: skip
        finally:
            snap.remove()
        self.p.line(f" ---> {k[:12]}")
        return new

    # ---- RUN --------------------------------------------------------------------------------
    def _run(self, sr, ins, state, env):
        from sangja.engine.build import mounts as M
        from sangja.engine.build import run as R

        rc = state.run_config
        conf_env = I.env_dict(rc.get("Env"))
        argenv = [f"{k}={v}" for k, v in sr.args.items() if v is not None and k not in conf_env]
        proxies = []
        for k in PROXY_ARGS:
            if k in self.o.build_args and k not in sr.args:
                v = self._build_arg(k)
                if v is not None:
                    proxies.append(f"{k}={v}")
        args, script = self._run_args(ins, rc, env)
        mnts = [M.parse(W.word(m, env, self.esc)) for m in ins.flag_all("mount")]
        for m in mnts:
            if not m.target.startswith("/") or m.target == "/":
                raise BuildError(f"--mount target {m.target!r} must be an absolute path below /")
        network = ins.flag("network") or self.o.network
        if network not in NETWORKS:
            raise BuildError(f"RUN --network={network}: not supported (want default, bridge,"
                             " host or none)")  # fmt: skip
        network = "default" if network == "bridge" else network  # one cache key
        if ins.flag("security") not in (None, "sandbox"):
            raise BuildError("RUN --security=insecure is not supported")
        prefix = f"|{len(argenv)} {' '.join(argenv)} " if argenv else ""
        created_by = prefix + " ".join(args)
        k = cache.key(state.key, "RUN", json.dumps(args), json.dumps(argenv),
                      json.dumps([m.key() for m in mnts]), network, script or "")  # fmt: skip
        st = self._store()
        if (hit := self._from_cache(st, k, state)) is not None:
            return hit
        snap = self.ws.snapshot(state.lowers(st))
        views = []
        ctl = R.Container()
        lines = _Lines(self.p, keep=self.o.quiet)
        try:
            extra = self._mounts(mnts, state, st, snap, views)
            if script is not None:
                sdir = self.ws.subdir("script-")
                spath = os.path.join(sdir, "script")
                with open(spath, "w") as f:
                    f.write(script)
                os.chmod(spath, 0o755)
                extra.append({"destination": "/dev/.sangja-heredoc", "type": "bind",
                              "source": spath, "options": ["rbind", "ro"]})  # fmt: skip
            hostname = os.urandom(6).hex()
            self.p.line(f" ---> Running in {hostname}")
            self.running.add(ctl)
            if self.failed.is_set():
                raise Cancelled("cancelled")
            try:
                code = R.run(ws=self.ws, snap=snap, conf=state.config, args=args,
                             env=argenv + proxies, runtime_root=self.o.runtime_root,
                             log=self.o.log, network=network, extra_mounts=extra,
                             output=lines, ctl=ctl, hostname=hostname, store=st)  # fmt: skip
            finally:
                self.running.discard(ctl)
                lines.flush()
            if code != 0:
                if self.failed.is_set():
                    raise Cancelled("cancelled")
                if self.o.quiet and lines.all:
                    self.p.kept(lines.text())
                raise R.RunFailed(f"The command '{created_by}' returned a non-zero code: {code}",
                                  code)  # fmt: skip
            self.p.line(f"Removing intermediate container {hostname}")
            new = layers.commit_layer(st, state, k, snap.upper, created_by, self._created(),
                                      self.sde)  # fmt: skip
        finally:
            for v in views:
                with contextlib.suppress(SangjaError):
                    v.remove()
            snap.remove()
        self.p.line(f" ---> {k[:12]}")
        return new

    def _run_args(self, ins, rc, env) -> tuple[list[str], str | None]:
        """The RUN's argv, and a heredoc script to run as a file (one with #!)."""
        if ins.heredocs:
            first = ins.args[0].strip() if ins.args else ""
            only = first.startswith("<<") and len(first.split()) == 1
            if only and len(ins.heredocs) == 1:
                body = ins.heredocs[0].content
                if body.startswith("#!"):
                    return ["/dev/.sangja-heredoc"], body
                return I.shell_of(rc) + [body], None
            # heredocs the shell reads itself (`RUN python3 <<EOF`): give it all
            text = ins.args[0] if ins.args else ""
            for h in ins.heredocs:
                text += "\n" + h.content + h.name
            return I.shell_of(rc) + [text], None
        return I.command(ins, rc), None

    def _mounts(self, mnts, state, st, snap, views) -> list[dict]:
        """RUN --mount -> spec mounts (their sources set up)."""
        from sangja.engine.build import rootfs
        from sangja.engine.build.cache import mounts_dir

        out = []
        for m in mnts:
            if m.type == "tmpfs":
                opts = ["nosuid", "nodev"] + ([f"size={m.size}"] if m.size else [])
                out.append({"destination": m.target, "type": "tmpfs", "source": "tmpfs",
                            "options": opts})  # fmt: skip
            elif m.type == "cache":
                import hashlib

                d = os.path.join(mounts_dir(st), hashlib.sha256(m.id.encode()).hexdigest()[:32])
                if not os.path.isdir(d):
                    os.makedirs(d, mode=0o755, exist_ok=True)
                    os.chown(d, m.uid or 0, m.gid or 0)
                    os.chmod(d, m.mode if m.mode is not None else 0o755)
                if m.sharing == "locked":
                    import fcntl

                    lk = os.open(d + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                    fcntl.flock(lk, fcntl.LOCK_EX)
                    views.append(_Closer(lk))
                out.append({"destination": m.target, "type": "bind", "source": d,
                            "options": ["rbind", "ro" if m.readonly else "rw"]})  # fmt: skip
            elif m.type == "secret":
                src = self.o.secrets.get(m.id)
                if src is None:
                    if m.required:
                        raise BuildError(f"secret {m.id} is required but was not given"
                                         " (build --secret id=…)")  # fmt: skip
                    continue
                sdir = self.ws.subdir("secret-")
                path = os.path.join(sdir, "secret")
                if src.startswith("env:"):
                    data = os.environ.get(src[4:], "").encode()
                else:
                    with open(src, "rb") as f:
                        data = f.read()
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o400)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.chown(path, m.uid or 0, m.gid or 0)
                os.chmod(path, m.mode if m.mode is not None else 0o400)
                out.append({"destination": m.target, "type": "bind", "source": path,
                            "options": ["rbind", "ro"]})  # fmt: skip
            elif m.type == "bind":
                if m.from_:
                    src_state = self._from_state(m.from_)
                    view = self.ws.snapshot(src_state.lowers(st))
                    views.append(view)
                    tree_root = view.merged
                else:
                    tree_root = self.ctx.tree.root
                rel = m.source or "."
                from sangja.engine.build.context import rel_clean

                rel = rel_clean(rel)
                rfd = os.open(tree_root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    fd = rootfs.open_in(rfd, rel, os.O_PATH)
                    try:
                        real = os.readlink(f"/proc/self/fd/{fd}")
                    finally:
                        os.close(fd)
                finally:
                    os.close(rfd)
                if not m.from_ and self.ctx.tree.excluded(rel):
                    raise BuildError(f"--mount source {m.source}: excluded by .dockerignore")
                ro = m.readonly if m.readonly is not None else True
                if not ro and not m.from_:
                    # writes must not reach the context: a throw-away overlay over it
                    view = self.ws.snapshot([real]) if os.path.isdir(real) else None
                    if view is not None:
                        views.append(view)
                        real = view.merged
                out.append({"destination": m.target, "type": "bind", "source": real,
                            "options": ["rbind", "ro" if ro else "rw"]})  # fmt: skip
        return out

    # ---- COPY / ADD -------------------------------------------------------------------------
    def _from_state(self, name: str) -> layers.State:
        """--from=: a stage (by name or number) or an image."""
        idx = self.plan.stage_ref(name)
        if idx is not None:
            return self._stage_state(idx)
        image_id = self._image(name)
        return layers.from_image(self._store(), image_id, cache.key("image", image_id))

    def _copy(self, sr, ins, state, env):
        from sangja.engine.build import copier, fetch, rootfs
        from sangja.engine.build.context import Tree

        cmd = ins.cmd.upper()
        esc = self.esc
        for f, _ in ins.flags:
            if f not in ("from", "chown", "chmod", "link", "checksum", "keep-git-dir"):
                raise BuildError(f"{cmd} --{f} is not supported")
            if cmd == "COPY" and f in ("checksum", "keep-git-dir"):
                raise BuildError(f"COPY --{f} is not supported (ADD only)")
        args = [W.word(a, env, esc) if not a.startswith("<<") else a for a in ins.args]
        srcs, dest = args[:-1], args[-1]
        if not dest:
            raise BuildError(f"{cmd}: an empty destination")
        wd = state.run_config.get("WorkingDir") or "/"
        trailing = dest.endswith("/") or dest in (".", "..") or dest.endswith("/.")
        if not dest.startswith("/"):
            dest = wd.rstrip("/") + "/" + dest
        dest_clean = rootfs.clean(dest) + ("/" if trailing and dest.rstrip("/") else "")
        chown = ins.flag("chown")
        chown = W.word(chown, env, esc) if isinstance(chown, str) else None
        chmod = ins.flag("chmod")
        mode = None
        if isinstance(chmod, str):
            try:
                mode = int(W.word(chmod, env, esc), 8)
                if not 0 <= mode <= 0o7777:
                    raise ValueError
            except ValueError:
                raise BuildError(f"{cmd} --chmod={chmod}: want an octal mode (e.g. 755)")
        from_ = ins.flag("from")
        from_ = W.word(from_, env, esc) if isinstance(from_, str) else None
        st = self._store()
        views = []
        tree = None
        try:
            if from_:
                src_state = self._from_state(from_)
                view = self.ws.snapshot(src_state.lowers(st))
                views.append(view)
                tree = Tree(view.merged, None, label=f"stage or image {from_!r}")
            else:
                tree = self.ctx.tree
            # the sources: heredocs, URLs (ADD), paths in the tree
            parts = []  # (kind, value): ('tree', [rels]) | ('url', (...)) | ('heredoc', h)
            key_parts = [cmd, json.dumps(sorted((k, v if isinstance(v, str) else "")
                                                for k, v in ins.flags if k != "from"))]  # fmt: skip
            heredocs = {h.name: h for h in ins.heredocs}
            nsrc = 0
            for s in srcs:
                if s.startswith("<<"):
                    name = s.lstrip("<-").strip("'\"")
                    h = heredocs.get(name)
                    if h is None:
                        raise BuildError(f"{cmd}: no heredoc {name}")
                    body = h.content
                    if h.expand:
                        body = _expand_heredoc(h.content, env, esc)
                    parts.append(("heredoc", (name, body)))
                    key_parts.append("heredoc:" + name + ":" + body)
                    nsrc += 1
                elif cmd == "ADD" and fetch.is_git(s):
                    raise BuildError(f"ADD {s}: git sources are not supported")
                elif cmd == "ADD" and fetch.is_url(s) and not from_:
                    d = self.ws.subdir("add-")
                    path, digest, mtime, size = fetch.download(s, d, ins.flag("checksum"))
                    parts.append(("url", (s, path, mtime, size)))
                    key_parts.append(f"url:{s}:{digest}")
                    nsrc += 1
                else:
                    rels = tree.sources(s, cmd)
                    parts.append(("tree", rels))
                    key_parts.append("tree:" + "\0".join(rels) + ":" +
                                     copier.digest_sources(tree, rels))  # fmt: skip
                    nsrc += len(rels)
            if from_:
                key_parts.append("from:" + from_)
            key_parts.append("dest:" + dest_clean)
            k = cache.key(state.key, *key_parts)
            summary = cache.key("", *key_parts[2:])
            kind = "file"
            if nsrc > 1:
                kind = "multi"
            elif parts and parts[0][0] == "tree" and rootfs.stat_in(tree.fd, parts[0][1][0]) \
                    and _is_dir_rel(tree, parts[0][1][0]):  # fmt: skip
                kind = "dir"
            created_by = f"/bin/sh -c #(nop) {cmd} {kind}:{summary} in {dest_clean} "
            if (hit := self._from_cache(st, k, state)) is not None:
                return hit
            snap = self.ws.snapshot(state.lowers(st))
            try:
                rfd = os.open(snap.merged, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    if chown:
                        uid, gid = rootfs.chown_ids(rfd, chown)
                        opts = copier.Options(uid, gid, mode)
                    elif from_:
                        opts = copier.Options(None, None, mode)
                    else:
                        opts = copier.Options(0, 0, mode)
                    into = copier.dest_is_dir(dest_clean, nsrc, rfd, cmd)
                    for kind_, val in parts:
                        if kind_ == "tree":
                            self._copy_tree(
                                cmd, tree, val, rfd, dest_clean, opts, into, bool(from_)
                            )
                        elif kind_ == "heredoc":
                            name, body = val
                            target = dest_clean.rstrip("/") + "/" + name if into else dest_clean
                            self._write_bytes(rfd, target, body.encode(), opts,
                                              mode if mode is not None else 0o644)  # fmt: skip
                        else:
                            url, path, mtime, size = val
                            if into:
                                fname = fetch.filename(url)
                                if not fname:
                                    raise BuildError(f"ADD {url}: cannot determine a file name"
                                                     " from the URL: end the destination"
                                                     " without a /")  # fmt: skip
                                target = dest_clean.rstrip("/") + "/" + fname
                            else:
                                target = dest_clean
                            with open(path, "rb") as f:
                                copier.write_file(rfd, target, f.fileno(), size,
                                                  mode if mode is not None else 0o600,
                                                  opts.dir_uid if opts.uid is not None else 0,
                                                  opts.dir_gid if opts.gid is not None else 0,
                                                  mtime, (opts.dir_uid, opts.dir_gid))  # fmt: skip
                finally:
                    os.close(rfd)
                snap.unmount()
                new = layers.commit_layer(st, state, k, snap.upper, created_by, self._created(),
                                          self.sde)  # fmt: skip
            finally:
                snap.remove()
        finally:
            for v in views:
                with contextlib.suppress(SangjaError):
                    v.remove()
            if tree is not None and tree is not self.ctx.tree:
                tree.close()
        self.p.line(f" ---> {k[:12]}")
        return new

    def _copy_tree(self, cmd, tree, rels, rfd, dest, opts, into, from_stage):
        from sangja.engine.build import archive, copier, rootfs
        from sangja.engine.build.context import Tree

        if cmd == "ADD" and not from_stage:
            plain = []
            for rel in rels:
                st = rootfs.stat_in(tree.fd, rel)
                if st is not None and not _is_dir_rel(tree, rel):
                    fd = tree.open_file(rel)
                    try:
                        head = os.pread(fd, 64 << 10, 0)
                    finally:
                        os.close(fd)
                    if archive.kind(head) is not None:
                        # a local tar: unpacked (confined) into DEST, owners as in the tar
                        d = self.ws.subdir("untar-")
                        src = os.path.join(d, os.path.basename(rel) or "archive")
                        fd = tree.open_file(rel)
                        try:
                            with open(src, "wb") as out:
                                copier.copy_data(fd, out.fileno(), st.st_size)
                        finally:
                            os.close(fd)
                        root = os.path.join(d, "root")
                        os.mkdir(root, 0o755)
                        archive.unpack(src, root)
                        t = Tree(root)
                        try:
                            copier.copy(t, ["."], rfd, dest, copier.Options(None, None, None),
                                        cmd, as_dir=True)  # fmt: skip
                        finally:
                            t.close()
                        continue
                plain.append(rel)
            rels = plain
        if rels:
            copier.copy(tree, rels, rfd, dest, opts, cmd, as_dir=into)

    def _write_bytes(self, rfd, target, data: bytes, opts, mode):
        import tempfile

        from sangja.engine.build import copier

        with tempfile.TemporaryFile(dir=self.ws.dir) as f:
            f.write(data)
            f.flush()
            f.seek(0)
            uid = opts.uid if opts.uid is not None else 0
            gid = opts.gid if opts.gid is not None else 0
            copier.write_file(rfd, target, f.fileno(), len(data), mode, uid, gid, None,
                              (opts.dir_uid, opts.dir_gid))  # fmt: skip


class _Closer:
    """A lock fd among the views a RUN drops when it ends."""

    def __init__(self, fd):
        self.fd = fd

    def remove(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _is_dir_rel(tree, rel: str) -> bool:
    import stat as _stat

    from sangja.engine.build import rootfs

    st = rootfs.stat_in(tree.fd, rel)
    return st is not None and _stat.S_ISDIR(st.st_mode)


def _expand_heredoc(content: str, env: dict, esc: str) -> str:
    """A heredoc's body with its variables substituted (quotes are text here)."""
    out = []
    for line in content.split("\n"):
        out.append(W.word(line.replace("'", "\x00").replace('"', "\x01"), env, esc)
                   .replace("\x00", "'").replace("\x01", '"'))  # fmt: skip
    return "\n".join(out)


def _defined(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


def _short(s: str, n: int = 60) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1] + "…"
