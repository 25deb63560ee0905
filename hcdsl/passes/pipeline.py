"""The default pipeline, read top to bottom (hcdsl/compiler.py runs it on a spec's IR).

Two stages, each run by the rewrite driver to its fixed point: canonicalisation (exact
rewrites that give every spec one normal form: what the prover starts from too), then
optimisation (rewrites into cheaper operations, which would hide patterns canonicalisation
still folds); both again until neither changes anything.
"""

from __future__ import annotations

from collections.abc import Iterable

import hcdsl.passes  # noqa: F401 - registers every pattern
from hcdsl.ir.graph import IR
from hcdsl.passes.driver import FixedPointError, rewrite
from hcdsl.passes.registry import get

CANONICALIZE = [
    "fold-const-slice",     # a mix of a slice of a constant M reads a constant of the slice
    "drop-zero-rows",       # mix(stack(T, H), [[0], [M]]) -> mix(H, M): unread outputs leave
    "fold-const-chain",     # mix(mix(x, A), B) with constant A, B -> mix(x, A B)
    "drop-identity-mix",    # mix(x, I) -> x  (n = 1 reads and writes of Pre-Norm)
    "drop-split-merge",     # merge(split(x)) -> x
    "merge-equal-streams",  # equal streams -> one stream (HC's sequential arrangement)
    "cse",                  # equal pure nodes on equal inputs -> one node
]  # and dead nodes go: the driver prunes what no longer reaches the output
OPTIMIZE = [
    "mix-to-add",             # all-ones constant mix of single streams -> add (h + T(h))
    "ones-mix",               # mix(h, [[1, 1, ...]]) -> copy; mix(H, ones column) -> sum
    "squeeze-single-stream",  # add/norm of split(x, 1) -> split(add/norm of x)
    "split-stack-mix",        # mix(stack(T, H), M) -> mix(T, M_out) + mix(H, M_res): no stack
    "merge-sibling-mixes",    # mix(H, [A_m]), mix(H, [A_r]) -> one mix of H by [A_m | A_r]
    "fuse-parallel-inputs",   # attn(x), mlp(x) -> one matmul for q, k, v and W1 of x
]
DEFAULT = CANONICALIZE + OPTIMIZE


def stages(passes: Iterable[str]) -> list[list[str]]:
    """Consecutive passes of the same set (canonicalisation, optimisation) form one stage."""
    out: list[list[str]] = []
    for name in passes:
        get(name)  # an unknown name fails here, before anything runs
        stage = name in OPTIMIZE
        if out and (out[-1][0] in OPTIMIZE) == stage:
            out[-1].append(name)
        else:
            out.append([name])
    return out


def run_pipeline(ir: IR, passes: Iterable[str] = DEFAULT, disable: Iterable[str] = (),
                 check: bool = False, max_rounds: int = 20) -> list[str]:
    """Run each stage to its fixed point, in order, and the stages again until none changes
    anything; return the names of the patterns that fired, in order."""
    skip = set(disable)
    for name in skip:
        get(name)
    plan = [[get(name) for name in stage]
            for stage in stages(name for name in passes if name not in skip)]
    log: list[str] = []
    for _ in range(max_rounds):
        fired = 0
        for stage in plan:
            done = rewrite(ir, stage, check=check)
            fired += len(done)
            log += done
        if not fired:
            return log
    raise FixedPointError(f"stages did not reach a fixed point in {max_rounds} rounds")
