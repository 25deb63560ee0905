"""The default pipeline, read top to bottom. Each step runs until nothing changes."""

from __future__ import annotations

from collections.abc import Iterable

from hcdsl.ir.graph import IR
from hcdsl.ir.verify import verify
from hcdsl.passes.registry import get

CANONICALIZE = [
    "fold-const-slice",   # a mix of a slice of a constant M reads a constant of the slice
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


def run_pipeline(ir: IR, passes: Iterable[str] = DEFAULT, disable: Iterable[str] = (),
                 check: bool = False, max_rounds: int = 50) -> list[str]:
    """Apply the passes in order, each until it changes nothing (a rewrite may enable the
    same rewrite one layer further on), repeating the list until a fixed point; return the
    names of the passes that changed something, in order."""
    skip = set(disable)
    steps = [get(name) for name in passes if name not in skip]
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
