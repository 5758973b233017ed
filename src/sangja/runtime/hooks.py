"""OCI hooks: run a stage's hooks with the container state on stdin."""

import subprocess

from sangja import jsonio
from sangja.errors import SangjaError


def run_hook(hook, state_json):
    args = hook.get("args") or [hook["path"]]
    env = {}
    for e in hook.get("env") or ():
        k, _, v = e.partition("=")
        env[k] = v
    try:
        p = subprocess.run(
            args, executable=hook["path"], input=state_json, env=env,
            capture_output=True, timeout=hook.get("timeout"), close_fds=True,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise SangjaError(f"hook {hook['path']}: timed out after {hook.get('timeout')}s")
    except OSError as e:
        raise SangjaError(f"hook {hook['path']}: {e.strerror}", errno=e.errno, path=hook["path"])
    if p.returncode != 0:
        detail = (p.stderr or p.stdout).decode(errors="replace").strip().splitlines()
        why = f": {detail[-1]}" if detail else ""
        raise SangjaError(f"hook {hook['path']}: exit status {p.returncode}{why}")


def run_stage(hooks, stage, state, fatal, log=None):
    """Run every hook of `stage` in order. A failure raises if `fatal`, else is logged."""
    items = hooks.get(stage) or ()
    if not items:
        return
    state_json = jsonio.dumps(state).encode()
    for hook in items:
        try:
            run_hook(hook, state_json)
        except SangjaError as e:
            if fatal:
                raise SangjaError(f"{stage} {e}")
            if log:
                log.warn(f"{stage} {e}")
