"""The default pipeline, read top to bottom: first the canonicalisation passes together until
nothing changes (a canonical IR: what the prover also starts from), then the optimisation
passes together until nothing changes, and both again until neither changes anything. Each
pass runs until it changes nothing."""

from __future__ import annotations

from collections.abc import Iterable

from hcdsl.ir.graph import IR
from hcdsl.ir.verify import verify
from hcdsl.passes.registry import get

CANONICALIZE = [
    "fold-const-slice",   # a mix of a slice of a constant M reads a constant of the slice
    "drop-zero-rows",     # mix(stack(T, H), [[0], [M]]) -> mix(H, M): unread outputs leave
    "fold-const-chain",   # mix(mix(x, A), B) with constant A, B -> mix(x, A B)
    "drop-identity-mix",  # mix(x, I) -> x  (n = 1 reads and writes of Pre-Norm)
    "drop-split-merge",   # merge(split(x)) -> x
    "cse",                # equal pure nodes on equal inputs -> one node
    "dce",                # nodes that do not reach the output -> gone
]
OPTIMIZE = [
    "mix-to-add",         # all-ones constant mix of single streams -> add (h + T(h))
    "ones-mix",           # mix(h, [[1, 1, ...]]) -> copy; mix(H, ones column) -> sum
    "squeeze-single-stream",  # add/norm of split(x, 1) -> split(add/norm of x): no stream axis
]
DEFAULT = CANONICALIZE + OPTIMIZE


def stages(passes: Iterable[str]) -> list[list[str]]:
    """Consecutive passes of the same set (canonicalisation, optimisation) form one stage:
    optimising rewrites (copy, sum, add) would hide patterns canonicalisation still folds."""
    out: list[list[str]] = []
    for name in passes:
        stage = name in OPTIMIZE
        if out and (out[-1][0] in OPTIMIZE) == stage:
            out[-1].append(name)
        else:
            out.append([name])
    return out


def run_pipeline(ir: IR, passes: Iterable[str] = DEFAULT, disable: Iterable[str] = (),
                 check: bool = False, max_rounds: int = 50) -> list[str]:
    """Run each stage (see `stages`) to its fixed point, in order, and the stages again until
    none changes anything (an optimisation may leave a split/merge pair to drop); return the
    names of the passes that changed something, in order."""
    skip = set(disable)
    plan = stages(name for name in passes if name not in skip)
    log: list[str] = []
    for _ in range(max_rounds):
        done = len(log)
        for stage in plan:
            log += _fixed_point(ir, stage, check, max_rounds)
        if len(log) == done:
            return log
    raise RuntimeError(f"stages did not reach a fixed point in {max_rounds} rounds")


def _fixed_point(ir: IR, names: list[str], check: bool, max_rounds: int) -> list[str]:
    """Apply the passes in order, each until it changes nothing (a rewrite may enable the
    same rewrite one layer further on), repeating the list until nothing changes."""
    steps = [get(name) for name in names]
    log = []
    for _ in range(max_rounds):
        changed = False
        for step in steps:
            for _ in range(len(ir) + 1):  # every call removes or rewrites at least one node
                if not step(ir):
                    break
                changed = True
                log.append(step.name)
                if check:
                    verify(ir, after=step.name)
        if not changed:
            return log
    raise RuntimeError(f"passes did not reach a fixed point in {max_rounds} rounds: {log[-10:]}")
