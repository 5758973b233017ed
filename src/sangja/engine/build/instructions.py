"""What the metadata instructions do to an image config, as Docker does it: pure
functions from an instruction (already parsed) and the stage's environment to the
config changes and the instruction's text after substitution (which names its cache
entry and its history line).

    ENV, LABEL          pairs; each key and value substituted with the environment
                        from before the instruction (ENV a=1 b=$a: b is the old $a)
    CMD, ENTRYPOINT     exec form as given; shell form: the stage's SHELL + [text];
                        ENTRYPOINT drops a Cmd that this stage did not set
    SHELL               the JSON form only
    WORKDIR             substituted; relative to the previous WorkingDir; cleaned
    USER, STOPSIGNAL    substituted
    VOLUME, EXPOSE      substituted words; ports as "80/tcp" ("8000-8002" is three)
    HEALTHCHECK         Test, Interval, Timeout, StartPeriod, StartInterval (ns), Retries
    ONBUILD             the trigger's text, kept in OnBuild
    MAINTAINER          the config's author
"""

from __future__ import annotations

import re

from sangja.engine.build import words as W
from sangja.errors import SangjaError

DEFAULT_SHELL = ["/bin/sh", "-c"]


class InstructionError(SangjaError):
    pass


def env_dict(conf_env) -> dict[str, str]:
    out = {}
    for e in conf_env or ():
        k, _, v = e.partition("=")
        out[k] = v
    return out


def set_env(conf_env: list[str] | None, key: str, value: str) -> list[str]:
    out = list(conf_env or ())
    for i, e in enumerate(out):
        if e.partition("=")[0] == key:
            out[i] = f"{key}={value}"
            return out
    out.append(f"{key}={value}")
    return out


def _q(s: str) -> str:
    """A value as Docker writes it in history: quoted when it has blanks or quotes."""
    if s == "" or re.search(r"[\s\"'\\$]", s):
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return s


def pairs(instr, env: dict, esc: str) -> list[tuple[str, str]]:
    out = []
    for k, v in instr.pairs:
        kk = W.word(k, env, esc)
        if not kk:
            raise InstructionError(f"{instr.cmd.upper()} names can not be blank")
        out.append((kk, W.word(v or "", env, esc)))
    return out


def env(instr, rc: dict, env_: dict, esc: str) -> tuple[dict, str]:
    new = list(rc.get("Env") or [])
    done = pairs(instr, env_, esc)
    for k, v in done:
        new = set_env(new, k, v)
    return {"Env": new}, "ENV " + " ".join(f"{k}={_q(v)}" for k, v in done)


def label(instr, rc: dict, env_: dict, esc: str, extra: dict | None = None) -> tuple[dict, str]:
    labels = dict(rc.get("Labels") or {})
    done = pairs(instr, env_, esc) if instr is not None else list((extra or {}).items())
    for k, v in done:
        labels[k] = v
    return {"Labels": labels}, "LABEL " + " ".join(f"{_q(k)}={_q(v)}" for k, v in done)


def shell_of(rc: dict) -> list[str]:
    return list(rc.get("Shell") or DEFAULT_SHELL)


def command(instr, rc: dict) -> list[str]:
    if instr.json:
        return list(instr.args)
    return shell_of(rc) + [instr.args[0]]


def cmd(instr, rc: dict) -> tuple[dict, str]:
    c = command(instr, rc)
    return {"Cmd": c}, f"CMD {_json(c)}"


def entrypoint(instr, rc: dict, cmd_set: bool) -> tuple[dict, str]:
    ep = command(instr, rc)
    if not instr.json and instr.args[0].strip() == "":
        ep = []
    changes = {"Entrypoint": ep or None}
    if not cmd_set:
        changes["Cmd"] = None  # an inherited Cmd goes with a new Entrypoint
    return changes, f"ENTRYPOINT {_json(ep)}"


def shell(instr) -> tuple[dict, str]:
    if not instr.args:
        raise InstructionError("SHELL requires at least one argument")
    return {"Shell": list(instr.args)}, f"SHELL {_json(instr.args)}"


def _json(v) -> str:
    import json

    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def workdir(instr, rc: dict, env_: dict, esc: str) -> tuple[dict, str, str]:
    from sangja.engine.build.rootfs import clean

    p = W.word(instr.args[0], env_, esc)
    if not p:
        raise InstructionError("WORKDIR requires exactly one argument")
    if not p.startswith("/"):
        p = (rc.get("WorkingDir") or "/").rstrip("/") + "/" + p
    p = clean(p)
    return {"WorkingDir": p}, f"WORKDIR {p}", p


def user(instr, env_: dict, esc: str) -> tuple[dict, str]:
    u = W.word(instr.args[0], env_, esc)
    return {"User": u}, f"USER {u}"


_SIGNALS = None


def _signals() -> set:
    global _SIGNALS
    if _SIGNALS is None:
        import signal

        _SIGNALS = {s.name for s in signal.Signals} | {s.name[3:] for s in signal.Signals}
    return _SIGNALS


def stopsignal(instr, env_: dict, esc: str) -> tuple[dict, str]:
    s = W.word(instr.args[0], env_, esc)
    ok = (
        s.isdigit()
        and 0 < int(s) < 65
        or s.upper() in _signals()
        or re.fullmatch(r"(SIG)?RTM(IN|AX)([+-]\d+)?", s.upper())
    )
    if not ok:
        raise InstructionError(f"STOPSIGNAL: invalid signal {s!r}")
    return {"StopSignal": s}, f"STOPSIGNAL {s}"


def volume(instr, rc: dict, env_: dict, esc: str) -> tuple[dict, str]:
    vols = dict(rc.get("Volumes") or {})
    done = []
    for a in instr.args:
        v = W.word(a, env_, esc).strip()
        if not v:
            raise InstructionError("VOLUME specified can not be an empty string")
        vols[v] = {}
        done.append(v)
    return {"Volumes": vols}, f"VOLUME {_json(done)}"


def _ports(spec: str) -> list[str]:
    port, _, proto = spec.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise InstructionError(f"EXPOSE: invalid proto {proto!r} in {spec!r}")
    if ":" in port:
        raise InstructionError(f"EXPOSE: {spec!r}: no host port may be given here")
    lo, dash, hi = port.partition("-")
    try:
        a = int(lo)
        b = int(hi) if dash else a
    except ValueError:
        raise InstructionError(f"EXPOSE: invalid port {spec!r}")
    if not (0 < a <= 65535 and a <= b <= 65535):
        raise InstructionError(f"EXPOSE: invalid port {spec!r}")
    return [f"{p}/{proto}" for p in range(a, b + 1)]


def expose(instr, rc: dict, env_: dict, esc: str) -> tuple[dict, str]:
    ports = dict(rc.get("ExposedPorts") or {})
    done = []
    for a in instr.args:
        for w in W.words(a, env_, esc):
            for p in _ports(w):
                ports[p] = {}
            done.append(w)
    return {"ExposedPorts": ports}, "EXPOSE " + " ".join(done)


_DUR = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
         "m": 60_000_000_000, "h": 3_600_000_000_000}  # fmt: skip


def duration(s: str, flag: str) -> int:
    """A Go duration ("30s", "1m30s", "500ms") -> nanoseconds."""
    if s == "0":
        return 0
    pos, total = 0, 0.0
    if not s:
        raise InstructionError(f"HEALTHCHECK --{flag}: empty duration")
    while pos < len(s):
        m = _DUR.match(s, pos)
        if not m:
            raise InstructionError(f"HEALTHCHECK --{flag}: invalid duration {s!r}")
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    return int(total)


def healthcheck(instr) -> tuple[dict, str]:
    if instr.args == ["NONE"]:
        return {"Healthcheck": {"Test": ["NONE"]}}, "HEALTHCHECK NONE"
    hc: dict = {"Test": list(instr.args)}
    names = {"interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod",
             "start-interval": "StartInterval"}  # fmt: skip
    for flag, value in instr.flags:
        if flag in names:
            d = duration(value or "", flag)
            if d and d < 1_000_000:
                raise InstructionError(f"HEALTHCHECK --{flag} cannot be less than 1ms")
            if d:
                hc[names[flag]] = d
        elif flag == "retries":
            try:
                r = int(value or "")
            except ValueError:
                raise InstructionError(f"HEALTHCHECK --retries: invalid number {value!r}")
            if r < 0:
                raise InstructionError("HEALTHCHECK --retries cannot be negative")
            if r:
                hc["Retries"] = r
        else:
            raise InstructionError(f"HEALTHCHECK: unknown flag --{flag}")
    flags = " ".join(f"--{k}={v}" for k, v in instr.flags)
    return {"Healthcheck": hc}, f"HEALTHCHECK {flags + ' ' if flags else ''}{_json(hc['Test'])}"


def onbuild(instr, rc: dict) -> tuple[dict, str]:
    trig = instr.rest.strip()
    # the keyword in upper case, as Docker stores it
    head, _, tail = trig.partition(" ")
    trig = head.upper() + (" " + tail if tail else "")
    return {"OnBuild": list(rc.get("OnBuild") or []) + [trig]}, f"ONBUILD {trig}"
