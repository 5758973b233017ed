"""OCI hooks run by the runtime process: prestart, createRuntime, poststart, poststop (the
runtime namespace). createContainer and startContainer run in the container, from the init
(csrc/launch/hooks.c, the same runner): plan.py puts them in the launch plan as `entries`
makes them.

Each hook gets the state JSON on stdin, only its own `env`, and is killed with its process
group after `timeout` seconds.
"""

from sangja import jsonio
from sangja.errors import SangjaError

# Stages in the order of the lifecycle, and where they run.
RUNTIME_STAGES = ("prestart", "createRuntime", "poststart", "poststop")
CONTAINER_STAGES = ("createContainer", "startContainer")


def entries(items):
    """config.json hooks of one stage -> [(path, args, env, timeout)] for the C runner; env
    None when the hook has none (it gets the runtime's environment, as with runc)."""
    out = []
    for h in items or ():
        env = h.get("env")
        timeout = h.get("timeout") or 0
        if not isinstance(timeout, int) or not 0 <= timeout < 1 << 31:
            timeout = 0  # a state.json from before timeouts were checked
        out.append((h["path"], list(h.get("args") or ()), None if env is None else list(env),
                    timeout))  # fmt: skip
    return out


def run_stage(hooks, stage, state, fatal, log=None):
    """Run every hook of `stage` in order. A failure raises if `fatal`, else is logged and
    the next hook still runs (as the spec says for poststart and poststop)."""
    items = entries(hooks.get(stage))
    if not items:
        return
    from sangja._native import launch

    state_json = jsonio.dumps(state).encode()
    for path, args, env, timeout in items:
        try:
            launch.run_hook(path, args, env, timeout, state_json)
        except SangjaError as e:
            if fatal:
                raise SangjaError(f"{stage} {e}", errno=e.errno)
            if log:
                log.warn(f"{stage} {e}")
