"""OCI hooks run by the runtime process: prestart, createRuntime, poststart, poststop (the
runtime namespace). createContainer and startContainer run in the container, from the init
(csrc/hooks.c, the same runner): see plan.hook_entries and Runtime.create.

Each hook gets the state JSON on stdin, only its own `env`, and is killed with its process
group after `timeout` seconds.
"""

from sangja import jsonio
from sangja.errors import SangjaError
from sangja.runtime.plan import hook_entries

# Stages in the order of the lifecycle, and where they run.
RUNTIME_STAGES = ("prestart", "createRuntime", "poststart", "poststop")
CONTAINER_STAGES = ("createContainer", "startContainer")


def run_stage(hooks, stage, state, fatal, log=None):
    """Run every hook of `stage` in order. A failure raises if `fatal`, else is logged and
    the next hook still runs (as the spec says for poststart and poststop)."""
    items = hook_entries(hooks.get(stage))
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
