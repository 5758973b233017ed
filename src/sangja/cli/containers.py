"""`sangja container ...`: Docker's container commands, their flags and output shapes.  The
work is the engine's (engine/containers.py and the modules it names); this module turns
flags into the engine's calls and prints what they return."""

from __future__ import annotations

import os
import sys

from sangja.cli.groups import Sub, dispatch, need
from sangja.cli.groups import containers as _cs
from sangja.cli.output import print_formatted, print_template, table
from sangja.cli.parse import B, M, UsageError, V, flags
from sangja.cli.runflags import RUN_FLAGS, body_from


def main(word: str, args: list[str], g: dict) -> int:
    return dispatch("container", CONTAINER, ALIASES, args, g)


def _each(pos, fn) -> int:
    """Run fn(ref) for each argument as Docker does: print the ref on success, an error line
    per failure; exit 1 if any failed."""
    from sangja.errors import SangjaError

    failed = 0
    for ref in pos:
        try:
            out = fn(ref)
            sys.stdout.write(f"{out if isinstance(out, str) else ref}\n")
        except SangjaError as e:
            sys.stderr.write(f"sangja: {e}\n")
            failed += 1
    return 1 if failed else 0


# ---- create / run / start -----------------------------------------------------------------


def _progress(opts):
    from sangja.image.progress import Progress

    return Progress(sys.stderr, quiet=bool(opts.get("quiet")))


def _cidfile(opts):
    path = opts.get("cidfile")
    if path and os.path.exists(path):
        raise UsageError(f"Container ID file found, make sure the other container isn't"
                         f" running or delete {path}")  # fmt: skip
    return path


def _write_cidfile(path, cid):
    if path:
        with open(path, "x") as f:
            f.write(cid)


def container_create(opts, pos, g):
    body = body_from(opts, pos)
    cidfile = _cidfile(opts)
    cid, warnings = _cs(g).create(
        body, opts.get("name"), pull=opts.get("pull") or "missing",
        platform=opts.get("platform"), progress=_progress(opts),
        signature_policy=opts.get("signature_policy"),
    )  # fmt: skip
    for w in warnings:
        sys.stderr.write(f"WARNING: {w}\n")
    _write_cidfile(cidfile, cid)
    sys.stdout.write(cid + "\n")
    return 0


def _warn(cs):
    for w in cs.warnings:
        sys.stderr.write(f"WARNING: {w}\n")


def container_run(opts, pos, g):
    body = body_from(opts, pos)
    cidfile = _cidfile(opts)
    cs = _cs(g)
    kw = {"pull": opts.get("pull") or "missing", "platform": opts.get("platform"),
          "progress": _progress(opts),
          "signature_policy": opts.get("signature_policy")}  # fmt: skip
    if opts.get("detach"):
        rec = cs.run(body, opts.get("name"), on_created=lambda paths: _warn(cs), **kw)
        _write_cidfile(cidfile, rec.id)
        sys.stdout.write(rec.id + "\n")
        return 0
    session = _Session(cs, body, opts)

    def on_created(paths):
        _warn(cs)  # create's warnings (a storage driver's fallback), before the output
        session.connect(paths)

    rec = cs.run(body, opts.get("name"), on_created=on_created, foreground=True, **kw)
    _write_cidfile(cidfile, rec.id)
    return session.finish(rec, remove=bool(body["HostConfig"].get("AutoRemove")))


class _Session:
    """A foreground container's stdio: attached before it starts, relayed until it ends
    (or the detach keys), then its exit code."""

    def __init__(self, cs, body, opts, stdin=None, stdout=None, stderr=None):
        cfg = body.get("Config", body)
        self.cs = cs
        self.tty = bool(cfg.get("Tty"))
        self.stdin = cfg.get("AttachStdin") if stdin is None else stdin
        self.stdout = cfg.get("AttachStdout", True) if stdout is None else stdout
        self.stderr = cfg.get("AttachStderr", True) if stderr is None else stderr
        self.stdin_once = bool(cfg.get("StdinOnce"))
        self.keys = opts.get("detach_keys")
        self.sig_proxy = opts.get("sig_proxy", True)
        self.sock = self.init_fd = self.paths = None

    def connect(self, paths):
        """Once the container exists, before it starts: its attach socket, and a pidfd of
        its init (its end is the sign to drain the output and stop)."""
        from sangja.engine import monitor

        self.paths = paths
        self.sock = monitor.AttachSocket(paths)
        self.init_fd = monitor.init_pidfd(self.cs.runtime_root, paths.id)

    def finish(self, rec, remove: bool = False) -> int:
        from sangja.engine import attach, monitor

        paths = self.paths
        mon = rec.monitor

        def exited():  # the init is gone: conmon writes the exit file within moments
            return monitor.wait_exit(paths, mon, timeout=10) is not None

        restore = self._proxy_signals(rec) if self.sig_proxy and not self.tty else None
        try:
            relay = attach.Relay(
                self.sock, tty=self.tty, stdin=bool(self.stdin), stdout=self.stdout,
                stderr=self.stderr, detach_keys=attach.parse_detach_keys(self.keys),
                exited_fd=self.init_fd, exited=exited,
                resize=lambda h, w: monitor.control(paths, monitor.WIN_RESIZE, h, w),
                close_stdin=True,
            )  # fmt: skip
            how = relay.run()
        finally:
            if restore:
                restore()
            self.sock.close()
            if self.init_fd is not None:
                os.close(self.init_fd)
        if how == "detached":
            sys.stderr.write("\n" if self.tty else "")
            return 0
        code = self.cs.wait(rec.id, teardown=not remove)
        if remove:
            from sangja.errors import SangjaError

            try:
                self.cs.remove(rec.id, force=True, volumes=True)  # --rm: anonymous ones too
            except SangjaError:
                pass  # removed by its monitor meanwhile
        return code

    def _proxy_signals(self, rec):
        import _signal

        from sangja.errors import SangjaError

        def forward(signum, _frame):
            try:
                self.cs.rt.kill(rec.id, signum)
            except SangjaError:
                pass

        saved = {}
        for s in (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT,
                  _signal.SIGUSR1, _signal.SIGUSR2):  # fmt: skip
            saved[s] = _signal.signal(s, forward)

        def restore():
            for s, h in saved.items():
                _signal.signal(s, h)

        return restore


def container_start(opts, pos, g):
    cs = _cs(g)
    if opts.get("all_restartable"):
        if pos:
            raise UsageError("--all-restartable takes no container")
        failed = 0
        for name, err in cs.start_all_restartable():
            if err:
                sys.stderr.write(f"sangja: {name}: {err}\n")
                failed += 1
            else:
                sys.stdout.write(name + "\n")
        return 1 if failed else 0
    need(pos, "container start", 1)
    if opts.get("attach") or opts.get("interactive"):
        if len(pos) > 1:
            raise UsageError("you cannot start and attach multiple containers at once")
        rec = cs.get(pos[0])
        cfg = rec.config
        session = _Session(cs, cfg, opts, stdin=bool(opts.get("interactive")
                                                     and cfg.get("OpenStdin")),
                           stdout=True, stderr=True)  # fmt: skip
        if rec.state == "running":
            raise UsageError(f"container {pos[0]} is already running (use attach)")
        rec = cs.start(rec.id, on_created=session.connect, foreground=True)
        return session.finish(rec, remove=bool(rec.host_config.get("AutoRemove")))
    return _each(pos, lambda ref: cs.start(ref) and ref)


def container_attach(opts, pos, g):
    need(pos, "container attach", 1, 1)
    cs = _cs(g)
    rec = cs.get(pos[0])
    cfg = rec.config
    session = _Session(cs, cfg, opts, stdin=bool(cfg.get("OpenStdin")) and
                       not opts.get("no_stdin"), stdout=True, stderr=True)  # fmt: skip
    session.sock = cs.attach(rec.id)
    from sangja.engine import monitor

    session.paths = cs.paths(rec.id)
    session.init_fd = monitor.init_pidfd(cs.runtime_root, rec.id)
    return session.finish(rec)


# ---- stop / kill / rm and friends ------------------------------------------------------------


def container_stop(opts, pos, g):
    need(pos, "container stop", 1)
    cs = _cs(g)
    t = _timeout(opts)
    return _each(pos, lambda ref: cs.stop(ref, t) or ref)


def _timeout(opts):
    v = opts.get("time")
    if v is None:
        return None
    try:
        return int(v)
    except ValueError:
        raise UsageError(f'invalid argument "{v}" for "-t, --time" flag: not an integer')


def container_restart(opts, pos, g):
    need(pos, "container restart", 1)
    cs = _cs(g)
    t = _timeout(opts)
    return _each(pos, lambda ref: cs.restart(ref, t) or ref)


def container_kill(opts, pos, g):
    need(pos, "container kill", 1)
    cs = _cs(g)
    sig = opts.get("signal") or "KILL"
    return _each(pos, lambda ref: cs.kill(ref, sig) or ref)


def container_rm(opts, pos, g):
    need(pos, "container rm", 1)
    if opts.get("link"):
        raise UsageError("--link: links are not supported")
    cs = _cs(g)
    return _each(pos, lambda ref: cs.remove(ref, force=bool(opts.get("force")),
                                            volumes=bool(opts.get("volumes"))) and ref)  # fmt: skip


def container_pause(opts, pos, g):
    need(pos, "container pause", 1)
    cs = _cs(g)
    return _each(pos, lambda ref: cs.pause(ref) or ref)


def container_unpause(opts, pos, g):
    need(pos, "container unpause", 1)
    cs = _cs(g)
    return _each(pos, lambda ref: cs.unpause(ref) or ref)


def container_wait(opts, pos, g):
    need(pos, "container wait", 1)
    cs = _cs(g)
    return _each(pos, lambda ref: str(cs.wait(ref)))


def container_rename(opts, pos, g):
    need(pos, "container rename", 2, 2)
    _cs(g).rename(pos[0], pos[1])
    return 0


def container_prune(opts, pos, g):
    from sangja.engine.units import human_size

    need(pos, "container prune", 0, 0)
    res = _cs(g).prune(opts.get("filter") or [])
    ids = res["ContainersDeleted"] or []
    if ids:
        sys.stdout.write("Deleted Containers:\n" + "".join(i + "\n" for i in ids) + "\n")
    sys.stdout.write(f"Total reclaimed space: {human_size(res['SpaceReclaimed'])}\n")
    return 0


def container_update(opts, pos, g):
    from sangja.cli import runflags

    need(pos, "container update", 1)
    ch = {}
    for key, field in (("memory", "Memory"), ("memory_reservation", "MemoryReservation"),
                       ("kernel_memory", "KernelMemory")):  # fmt: skip
        if opts.get(key) is not None:
            ch[field] = runflags._size(opts, key)
    if opts.get("memory_swap") is not None:
        ch["MemorySwap"] = runflags._size(opts, "memory_swap", allow_unlimited=True)
    for key, field in (("cpu_shares", "CpuShares"), ("cpu_period", "CpuPeriod"),
                       ("cpu_quota", "CpuQuota"), ("cpu_rt_period", "CpuRealtimePeriod"),
                       ("cpu_rt_runtime", "CpuRealtimeRuntime"), ("pids_limit", "PidsLimit"),
                       ("blkio_weight", "BlkioWeight")):  # fmt: skip
        if opts.get(key) is not None:
            ch[field] = runflags._int(opts, key)
    for key, field in (("cpuset_cpus", "CpusetCpus"), ("cpuset_mems", "CpusetMems")):
        if opts.get(key) is not None:
            ch[field] = opts[key]
    if opts.get("cpus") is not None:
        try:
            ch["NanoCpus"] = int(round(float(opts["cpus"]) * 1e9))
        except ValueError:
            raise UsageError(f'invalid argument "{opts["cpus"]}" for "--cpus" flag')
    if opts.get("restart") is not None:
        ch["RestartPolicy"] = runflags._restart(opts["restart"])
    if not ch:
        raise UsageError("you must provide one or more flags when using this command")
    cs = _cs(g)
    return _each(pos, lambda ref: cs.update(ref, ch) and ref or ref)


def container_healthcheck(opts, pos, g):
    """Run the health check now (exit 0 healthy, 1 not); --loop: be the container's
    checker process (started with the container, not for users)."""
    need(pos, "container healthcheck", 1, 1)
    cs = _cs(g)
    if opts.get("loop"):
        from sangja.engine import health

        health.loop(cs, pos[0])
        return 0
    st = cs.healthcheck(pos[0])
    sys.stdout.write(st["Status"] + "\n")
    return 0 if st["Status"] == "healthy" else 1


def container_cleanup(opts, pos, g):
    """The monitor's exit command (not for users): stderr goes to the container's dir.
    `--unless-alive PID:START`: nothing to do while that process (the foreground run that
    waits for the container) lives; checked before anything is loaded."""
    need(pos, "container cleanup", 1, 1)
    waiter = opts.get("unless_alive")
    if waiter:
        pid, _, start = waiter.partition(":")
        try:
            with open(f"/proc/{int(pid)}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            if fields[0] not in (b"Z", b"X") and fields[19].decode() == start:
                return 0
        except (OSError, ValueError, IndexError):
            pass
    run = opts.get("run")
    cs = _cs(g)
    paths = cs.paths(pos[0])
    try:
        fd = os.open(os.path.join(paths.monitor, "cleanup.err"),
                     os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)  # fmt: skip
        os.dup2(fd, 2)
        os.close(fd)
    except OSError:
        pass
    cs.cleanup(pos[0], int(run) if run is not None else None)
    return 0


# ---- looking at containers ---------------------------------------------------------------------


def _quote_command(cmd: str, trunc: bool) -> str:
    if trunc and len(cmd) > 20:
        cmd = cmd[:19] + "…"
    return f'"{cmd}"'


class _PsRow:
    """The fields `ps --format` templates see (Docker's names)."""

    def __init__(self, s: dict, trunc: bool):
        import time as _t

        from sangja.engine.units import human_size

        self._s = s
        self.ID = s["Id"][:12] if trunc else s["Id"]
        self.Image = s["Image"]
        self.Command = _quote_command(s["Command"], trunc)
        self.CreatedAt = _t.strftime("%Y-%m-%d %H:%M:%S %z %Z", _t.localtime(s["Created"]))
        from sangja.cli.output import age

        self.RunningFor = age(s["Created"])
        from sangja.engine.containernet import ports_column

        self.Ports = ports_column(s.get("Ports") or [])
        self.State = s["State"]
        self.Status = s["Status"]
        self.Names = ",".join(n.lstrip("/") for n in s["Names"])
        self.Labels = ",".join(f"{k}={v}" for k, v in sorted((s["Labels"] or {}).items()))
        self.Mounts = ""
        self.Networks = ",".join(s["NetworkSettings"]["Networks"])
        self.LocalVolumes = "0"
        self.Size = ""
        if "SizeRw" in s:
            self.Size = f"{human_size(s['SizeRw'])} (virtual {human_size(s['SizeRootFs'])})"

    def Label(self, name):  # noqa: N802 (Docker's template method name)
        return (self._s["Labels"] or {}).get(name, "")

    def as_json(self) -> dict:
        return {k: getattr(self, k) for k in ("Command", "CreatedAt", "ID", "Image", "Labels",
                                              "LocalVolumes", "Mounts", "Names", "Networks",
                                              "Ports", "RunningFor", "Size", "State",
                                              "Status")}  # fmt: skip


_PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
               "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS",
               "State": "STATE", "Status": "STATUS", "Size": "SIZE", "Names": "NAMES",
               "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
               "LocalVolumes": "LOCAL VOLUMES"}  # fmt: skip


class _Header:
    def __getattr__(self, name):
        return _PS_HEADERS.get(name, name.upper())

    def Label(self, name):  # noqa: N802
        return "LABEL"


def container_ps(opts, pos, g):
    need(pos, "container ps", 0, 0)
    n = -1
    if opts.get("last") is not None:
        try:
            n = int(opts["last"])
        except ValueError:
            raise UsageError(f'invalid argument "{opts["last"]}" for "-n, --last" flag')
    if opts.get("latest"):
        n = 1
    items = _cs(g).summaries(all=bool(opts.get("all")), filters=opts.get("filter") or [],
                             limit=n, size=bool(opts.get("size")))  # fmt: skip
    trunc = not opts.get("no_trunc")
    if opts.get("quiet"):
        sys.stdout.write("".join((i["Id"][:12] if trunc else i["Id"]) + "\n" for i in items))
        return 0
    rows = [_PsRow(i, trunc) for i in items]
    fmt = opts.get("format")
    if fmt:
        return print_formatted(fmt, rows, _Header())
    head = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    if opts.get("size"):
        head.append("SIZE")
    out = [head]
    for r in rows:
        out.append([r.ID, r.Image, r.Command, r.RunningFor, r.Status, r.Ports, r.Names]
                   + ([r.Size] if opts.get("size") else []))  # fmt: skip
    table(out)
    return 0


def container_inspect(opts, pos, g):
    from sangja.jsonio import dumps_indent

    need(pos, "container inspect", 1)
    cs = _cs(g)
    out, failed = [], 0
    from sangja.errors import SangjaError

    for ref in pos:
        try:
            out.append(cs.inspect(ref, size=bool(opts.get("size"))))
        except SangjaError as e:
            sys.stderr.write(f"sangja: {e}\n")
            failed += 1
    if opts.get("format"):
        print_template(opts["format"], out)
    else:
        sys.stdout.write(dumps_indent(out) + "\n")
    return 1 if failed else 0


def container_logs(opts, pos, g):
    from sangja.engine.units import parse_timestamp

    need(pos, "container logs", 1, 1)
    since = until = tail = None
    try:
        if opts.get("since"):
            since = parse_timestamp(opts["since"])
        if opts.get("until"):
            until = parse_timestamp(opts["until"])
    except ValueError as e:
        raise UsageError(str(e))
    t = opts.get("tail")
    if t not in (None, "all"):
        try:
            tail = int(t)
        except ValueError:
            raise UsageError(f'invalid argument "{t}" for "-n, --tail" flag')
    fds = {1: sys.stdout.buffer, 2: sys.stderr.buffer}
    follow = bool(opts.get("follow"))
    for stream, data in _cs(g).logs(
        pos[0],
        timestamps=bool(opts.get("timestamps")),
        since=since,
        until=until,
        tail=tail,
        follow=follow,
    ):
        f = fds[stream]
        f.write(data)
        if follow:
            f.flush()
    return 0


def container_exec(opts, pos, g):
    from sangja.cli import runflags

    if len(pos) < 2:
        raise UsageError('"container exec" requires at least 2 arguments: CONTAINER COMMAND')
    env = runflags._env({"env": opts.get("env", []), "env_file": opts.get("env_file", [])})
    body = {"AttachStdin": bool(opts.get("interactive")), "Tty": bool(opts.get("tty")),
            "Env": env or None, "Cmd": pos[1:], "WorkingDir": opts.get("workdir") or "",
            "User": opts.get("user") or "", "Privileged": bool(opts.get("privileged")),
            "DetachKeys": opts.get("detach_keys") or ""}  # fmt: skip
    if body["Tty"]:
        body["ConsoleSize"] = runflags.console_size()
    cs = _cs(g)
    if opts.get("detach"):
        cs.exec_detached(pos[0], body)
        return 0
    return cs.exec(pos[0], body)


def container_top(opts, pos, g):
    need(pos, "container top", 1)
    res = _cs(g).top(pos[0], " ".join(pos[1:]) or "-ef")
    table([res["Titles"]] + res["Processes"])
    return 0


def container_port(opts, pos, g):
    from sangja.engine import ports as pmod

    need(pos, "container port", 1, 2)
    published = _cs(g).ports(pos[0])
    lines = pmod.port_lines(published, pos[1] if len(pos) > 1 else None)
    if len(pos) > 1 and not lines:
        want = pos[1] if "/" in pos[1] else pos[1] + "/tcp"
        raise UsageError(f"No public port '{want}' published for {pos[0]}")
    sys.stdout.write("".join(line + "\n" for line in lines))
    return 0


def container_diff(opts, pos, g):
    need(pos, "container diff", 1, 1)
    kinds = {0: "C", 1: "A", 2: "D"}
    sys.stdout.write("".join(f"{kinds[c['Kind']]} {c['Path']}\n"
                             for c in _cs(g).changes(pos[0])))  # fmt: skip
    return 0


def container_cp(opts, pos, g):
    need(pos, "container cp", 2, 2)
    src, dest = pos
    sref, _, spath = src.partition(":") if ":" in src and not src.startswith(("/", ".")) \
        else ("", "", src)  # fmt: skip
    dref, _, dpath = dest.partition(":") if ":" in dest and not dest.startswith(("/", ".")) \
        else ("", "", dest)  # fmt: skip
    if bool(sref) == bool(dref):
        raise UsageError("copying between containers is not supported" if sref else
                         "must specify at least one container source")  # fmt: skip
    cs = _cs(g)
    archive, follow = bool(opts.get("archive")), bool(opts.get("follow_link"))
    if sref:
        cs.copy_from(sref, spath, dpath, archive, follow, stdout=sys.stdout.buffer)
    else:
        cs.copy_to(dref, spath, dpath, archive, follow, stdin=sys.stdin.buffer)
    return 0


def container_stats(opts, pos, g):
    import time as _t

    from sangja.engine import stats as st
    from sangja.engine.units import bytes_size, human_size
    from sangja.errors import SangjaError

    cs = _cs(g)
    trunc = not opts.get("no_trunc")
    stream = not opts.get("no_stream")
    fmt = opts.get("format")

    def targets():
        if pos:
            return [cs.get(r) for r in pos]
        return [r for r in cs.list() if opts.get("all") or r.state in ("running", "paused")]

    prev: dict[str, dict] = {}

    def take():
        rows = []
        for rec in targets():
            try:
                s = st.with_previous(st.sample(cs, rec), prev.get(rec.id))
            except SangjaError:
                s = None
            if s is not None:
                prev[rec.id] = s
            rows.append((rec, s))
        return rows

    def line(rec, s):
        if s is None:
            return [rec.id[:12] if trunc else rec.id, rec.name, "--", "-- / --", "--",
                    "--", "--", "--"]  # fmt: skip
        used, limit = st.memory_used(s), s["memory_stats"]["limit"]
        r, w = st.block_io(s)
        return [rec.id[:12] if trunc else rec.id, rec.name, f"{st.cpu_percent(s):.2f}%",
                f"{bytes_size(used)} / {bytes_size(limit)}",
                f"{used / limit * 100 if limit else 0:.2f}%", "0B / 0B",
                f"{human_size(r)} / {human_size(w)}", str(s["pids_stats"]["current"])]  # fmt: skip

    head = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O",
            "BLOCK I/O", "PIDS"]  # fmt: skip
    take()  # a first sample: CPU % is the use between two samples
    _t.sleep(0.5)
    while True:
        rows = take()
        if fmt:
            items = []
            for rec, s in rows:
                cells = line(rec, s)
                items.append(dict(zip(("ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO",
                                       "BlockIO", "PIDs"), cells, strict=True),
                                  Container=rec.name))  # fmt: skip
            print_formatted(fmt, items, _STATS_TITLES)
        else:
            if stream:
                sys.stdout.write("\x1b[2J\x1b[H")
            table([head] + [line(rec, s) for rec, s in rows])
        sys.stdout.flush()
        if not stream:
            return 0
        _t.sleep(1.0)


_STATS_TITLES = {"ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
                 "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O",
                 "BlockIO": "BLOCK I/O", "PIDs": "PIDS", "Container": "CONTAINER"}  # fmt: skip


# ---- the table -------------------------------------------------------------------------------

_START = flags(("-a", "--attach", "attach", B), ("-i", "--interactive", "interactive", B),
               ("--detach-keys", "detach_keys", V),
               ("--all-restartable", "all_restartable", B))  # fmt: skip
_UPDATE = flags(
    ("--blkio-weight", "blkio_weight", V), ("--cpu-period", "cpu_period", V),
    ("--cpu-quota", "cpu_quota", V), ("--cpu-rt-period", "cpu_rt_period", V),
    ("--cpu-rt-runtime", "cpu_rt_runtime", V), ("-c", "--cpu-shares", "cpu_shares", V),
    ("--cpus", "cpus", V), ("--cpuset-cpus", "cpuset_cpus", V),
    ("--cpuset-mems", "cpuset_mems", V), ("--kernel-memory", "kernel_memory", V),
    ("-m", "--memory", "memory", V), ("--memory-reservation", "memory_reservation", V),
    ("--memory-swap", "memory_swap", V), ("--pids-limit", "pids_limit", V),
    ("--restart", "restart", V),
)  # fmt: skip
_EXEC = flags(("-i", "--interactive", "interactive", B), ("-t", "--tty", "tty", B),
              ("-d", "--detach", "detach", B), ("-e", "--env", "env", M),
              ("--env-file", "env_file", M), ("-w", "--workdir", "workdir", V),
              ("-u", "--user", "user", V), ("--privileged", "privileged", B),
              ("--detach-keys", "detach_keys", V))  # fmt: skip
_PS = flags(("-a", "--all", "all", B), ("-q", "--quiet", "quiet", B),
            ("-s", "--size", "size", B), ("-n", "--last", "last", V),
            ("-l", "--latest", "latest", B), ("--no-trunc", "no_trunc", B),
            ("-f", "--filter", "filter", M), ("--format", "format", V))  # fmt: skip

CONTAINER = {
    "create": Sub(RUN_FLAGS, "[OPTIONS] IMAGE [COMMAND] [ARG...]", "create a new container",
                  container_create, stop_at_positional=True, error_code=125),
    "run": Sub(RUN_FLAGS, "[OPTIONS] IMAGE [COMMAND] [ARG...]",
               "create and start a container (-d: in the background)", container_run,
               stop_at_positional=True, error_code=125),
    "start": Sub(_START, "[OPTIONS] CONTAINER...", "start stopped containers",
                 container_start),
    "stop": Sub(flags(("-t", "--time", "time", V)), "[-t SECONDS] CONTAINER...",
                "stop running containers (the stop signal, then SIGKILL)", container_stop),
    "restart": Sub(flags(("-t", "--time", "time", V)), "[-t SECONDS] CONTAINER...",
                   "restart containers", container_restart),
    "kill": Sub(flags(("-s", "--signal", "signal", V)), "[-s SIGNAL] CONTAINER...",
                "send a signal (default SIGKILL)", container_kill),
    "rm": Sub(flags(("-f", "--force", "force", B), ("-v", "--volumes", "volumes", B),
                    ("-l", "--link", "link", B)),
              "[-f] [-v] CONTAINER...", "remove containers", container_rm),
    "pause": Sub({}, "CONTAINER...", "freeze every process of containers", container_pause),
    "unpause": Sub({}, "CONTAINER...", "thaw paused containers", container_unpause),
    "ps": Sub(_PS, "[OPTIONS]", "list containers", container_ps),
    "logs": Sub(flags(("-f", "--follow", "follow", B), ("-t", "--timestamps", "timestamps", B),
                      ("--since", "since", V), ("--until", "until", V),
                      ("-n", "--tail", "tail", V), ("--details", "details", B)),
                "[OPTIONS] CONTAINER", "a container's output (stdout and stderr apart)",
                container_logs),
    "attach": Sub(flags(("--no-stdin", "no_stdin", B), ("--sig-proxy", "sig_proxy", B),
                        ("--detach-keys", "detach_keys", V)),
                  "[OPTIONS] CONTAINER", "attach to a running container's stdio",
                  container_attach),
    "exec": Sub(_EXEC, "[OPTIONS] CONTAINER COMMAND [ARG...]",
                "run a command in a running container", container_exec,
                stop_at_positional=True),
    "top": Sub({}, "CONTAINER [ps OPTIONS]", "a container's processes", container_top,
               stop_at_positional=True),
    "stats": Sub(flags(("-a", "--all", "all", B), ("--no-stream", "no_stream", B),
                       ("--no-trunc", "no_trunc", B), ("--format", "format", V)),
                 "[OPTIONS] [CONTAINER...]", "live resource use", container_stats),
    "port": Sub({}, "CONTAINER [PRIVATE_PORT[/PROTO]]", "published ports", container_port),
    "rename": Sub({}, "CONTAINER NEW_NAME", "rename a container", container_rename),
    "cp": Sub(flags(("-a", "--archive", "archive", B), ("-L", "--follow-link", "follow_link", B)),
              "[-a] [-L] CONTAINER:SRC DEST | SRC CONTAINER:DEST",
              "copy files between a container and the host ('-': a tar stream)", container_cp),
    "diff": Sub({}, "CONTAINER", "changes to the container's files (A, C, D)", container_diff),
    "wait": Sub({}, "CONTAINER...", "wait until containers stop; print their exit codes",
                container_wait),
    "inspect": Sub(flags(("-f", "--format", "format", V), ("-s", "--size", "size", B)),
                   "[OPTIONS] CONTAINER...", "details as JSON (Docker's shape)",
                   container_inspect),
    "update": Sub(_UPDATE, "[OPTIONS] CONTAINER...", "change resources and restart policy",
                  container_update),
    "prune": Sub(flags(("-f", "--force", "force", B), ("--filter", "filter", M)),
                 "[OPTIONS]", "remove all stopped containers", container_prune),
    "healthcheck": Sub(flags(("--loop", "loop", B)), "CONTAINER",
                       "run the container's health check now", container_healthcheck),
    "cleanup": Sub(flags(("--run", "run", V), ("--unless-alive", "unless_alive", V)),
                   "--run N [--unless-alive PID:START] CONTAINER", "", container_cleanup),
}  # fmt: skip
# container commit / export (issue 17): cli/commit.py
from sangja.cli.commit import SUBS as _COMMIT_SUBS  # noqa: E402

CONTAINER.update(_COMMIT_SUBS)
ALIASES = {"ls": "ps", "list": "ps", "remove": "rm"}
