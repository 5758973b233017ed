"""Which stages a build needs, and what each waits for.

A stage depends on the stage its FROM names, and on those its `COPY --from`, `ADD
--from` and `RUN --mount=from=` name (by name, or by number); a name that is no earlier
stage is an image.  Only the target (`--target`, else the last stage) and what it
depends on, transitively, are built; `width` is how many could run at once (the widest
level of the graph), so independent stages get threads of their own.  Values in FROM
and --from are substituted with the global ARGs (those before the first FROM), as
BuildKit does.
"""

from __future__ import annotations

from sangja.engine.build import words as W
from sangja.engine.build.dockerfile import Dockerfile
from sangja.errors import SangjaError


class StageError(SangjaError):
    pass


class Plan:
    def __init__(self, df: Dockerfile):
        self.df = df
        self.names = {s.name: s.index for s in df.stages if s.name}
        self.bases: dict[int, int | str] = {}  # stage -> stage index or image name
        self.deps: dict[int, set[int]] = {}
        self.needed = []
        self.target = None
        self.width = 1

    def stage_ref(self, name: str, before: int | None = None) -> int | None:
        """A stage named by name or number (None: it is an image)."""
        if name.isdigit():
            i = int(name)
            if i >= len(self.df.stages) or (before is not None and i >= before):
                raise StageError(f"invalid stage index {name}: there is no such earlier stage")
            return i
        i = self.names.get(name.lower())
        if i is not None and (before is None or i < before):
            return i
        return None


def _defined(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


def plan(df: Dockerfile, meta: dict, target: str | None, esc: str,
         name: str = "Dockerfile") -> Plan:  # fmt: skip
    """The stages the target needs; errors name the Dockerfile's line (`name`:N:)."""
    p = Plan(df)
    env = _defined(meta)
    for s in df.stages:
        at = f"{name}:{s.from_instr.line}"
        base = W.word(s.base, env, esc)
        if not base:
            raise StageError(f"{at}: FROM {s.base}: the base name is empty after substitution")
        ref = p.stage_ref(base, s.index) if not base.isdigit() else None
        if ref is not None:
            p.bases[s.index] = ref
        else:
            if base.lower() in p.names and p.names[base.lower()] >= s.index:
                raise StageError(f"{at}: FROM {base}: a stage can only use stages before it")
            p.bases[s.index] = base
        deps = {ref} if ref is not None else set()
        for ins in s.instructions:
            froms = []
            if ins.cmd in ("copy", "add") and isinstance(ins.flag("from"), str):
                froms.append(ins.flag("from"))
            if ins.cmd == "run":
                for m in ins.flag_all("mount"):
                    for f in m.split(","):
                        k, _, v = f.partition("=")
                        if k.strip().lower() == "from" and v:
                            froms.append(v)
            at = f"{name}:{ins.line}: {ins.cmd.upper()}"
            for f in froms:
                ref = W.word(f, env, esc)
                if ref.isdigit() and int(ref) >= s.index:
                    raise StageError(f"{at} --from={ref}: stage {ref} does not come before"
                                     " this one")  # fmt: skip
                i = p.stage_ref(ref, s.index)
                if i is not None:
                    deps.add(i)
                elif ref.lower() == (s.name or ""):
                    raise StageError(f"{at} --from={ref}: a stage cannot copy from itself")
        p.deps[s.index] = deps
    if target:
        t = p.names.get(target.lower())
        if t is None:
            raise StageError(f"failed to reach build target {target} in Dockerfile")
    else:
        t = len(df.stages) - 1
    need: set[int] = set()
    stack = [t]
    while stack:
        i = stack.pop()
        if i in need:
            continue
        need.add(i)
        stack.extend(p.deps[i])
    p.needed = [s for s in df.stages if s.index in need]
    p.target = df.stages[t]
    # width: stages on the same level of the dependency graph
    level: dict[int, int] = {}
    for s in p.needed:
        level[s.index] = 1 + max((level[d] for d in p.deps[s.index]), default=0)
    counts: dict[int, int] = {}
    for v in level.values():
        counts[v] = counts.get(v, 0) + 1
    p.width = max(counts.values(), default=1)
    return p
