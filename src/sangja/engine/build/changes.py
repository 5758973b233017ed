"""`container commit -c INSTRUCTION`: Dockerfile instructions applied to an image config,
as Docker applies them (the same parser and the same rules as `build`).

Allowed, as in Docker: CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD,
STOPSIGNAL, USER, VOLUME, WORKDIR.  Values are substituted with the config's Env.

    config = changes.apply(config, ['CMD ["app"]', "ENV MODE=prod", "EXPOSE 8080"])
"""

from __future__ import annotations

import copy

from sangja.engine.build import instructions as I
from sangja.errors import SangjaError

ALLOWED = ("cmd", "entrypoint", "env", "expose", "healthcheck", "label", "onbuild",
           "stopsignal", "user", "volume", "workdir")  # fmt: skip


class ChangeError(SangjaError):
    pass


def apply(config: dict | None, changes: list[str], escape: str = "\\") -> dict:
    """The container config (`config` of an image config) with the changes applied."""
    from sangja.engine.build.dockerfile import DockerfileError, _instruction

    rc = copy.deepcopy(config or {})
    cmd_set = False
    for text in changes:
        text = text.strip()
        if not text:
            continue
        word = text.split(None, 1)[0].lower()
        if word not in ALLOWED:
            raise ChangeError(f"{text.split(None, 1)[0]} is not a valid change command")
        try:
            ins = _instruction(text, 1, escape, "--change")
        except DockerfileError as e:
            raise ChangeError(str(e).replace("--change:1: ", "--change: "))
        env = I.env_dict(rc.get("Env"))
        try:
            if ins.cmd == "env":
                ch, _ = I.env(ins, rc, env, escape)
            elif ins.cmd == "label":
                ch, _ = I.label(ins, rc, env, escape)
            elif ins.cmd == "cmd":
                ch, _ = I.cmd(ins, rc)
                cmd_set = True
            elif ins.cmd == "entrypoint":
                ch, _ = I.entrypoint(ins, rc, cmd_set)
            elif ins.cmd == "expose":
                ch, _ = I.expose(ins, rc, env, escape)
            elif ins.cmd == "healthcheck":
                ch, _ = I.healthcheck(ins)
            elif ins.cmd == "onbuild":
                ch, _ = I.onbuild(ins, rc)
            elif ins.cmd == "stopsignal":
                ch, _ = I.stopsignal(ins, env, escape)
            elif ins.cmd == "user":
                ch, _ = I.user(ins, env, escape)
            elif ins.cmd == "volume":
                ch, _ = I.volume(ins, rc, env, escape)
            else:
                ch, _, _ = I.workdir(ins, rc, env, escape)
        except SangjaError as e:
            raise ChangeError(f"--change {text!r}: {e}")
        for k, v in ch.items():
            if v is None:
                rc.pop(k, None)
            else:
                rc[k] = v
    return rc
