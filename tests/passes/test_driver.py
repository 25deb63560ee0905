"""The rewrite driver (hcdsl/passes/driver.py): worklist, fixed point, pruning, the type
cache, verification naming the pattern, and work linear in depth."""

from __future__ import annotations

import pytest

import hcdsl
from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.ir.verify import IRVerifyError
from hcdsl.passes.driver import FixedPointError, Pattern, Rewriter, rewrite
from hcdsl.passes.pipeline import DEFAULT, run_pipeline
from hcdsl.passes.registry import get
from helpers import attn_ffn, model_text


def spec(blocks: int, connect: str = "residual") -> str:
    return model_text(connect, layers=attn_ffn(2, "mlp"), body=f"repeat {blocks} [attn, ffn]")


def raw(text: str) -> IR:
    return hcdsl.lower(text, passes=None)


def test_a_rewrite_reseeds_its_neighbours() -> None:
    """fold-const-slice on one mix enables drop-identity-mix on it: the driver revisits the
    node it changed, so one call reaches the fixed point of both."""
    ir = raw(spec(2))
    fired = rewrite(ir, [get("fold-const-slice"), get("drop-identity-mix")])
    assert "fold-const-slice" in fired and "drop-identity-mix" in fired
    assert not rewrite(ir, [get("fold-const-slice"), get("drop-identity-mix")])  # fixed point


def test_dead_nodes_are_pruned_by_the_driver() -> None:
    ir = raw(spec(1))
    before = len(ir)
    rewrite(ir, [get("fold-const-slice"), get("drop-identity-mix"), get("drop-split-merge")])
    assert len(ir) < before
    assert all(ir.readers(v) or isinstance(ir.payload(v), n.Output) for v in ir.g.nodes)


def test_a_broken_pattern_is_named() -> None:
    def vandal(ir: IR, v: str, rw: Rewriter) -> bool:
        if v != "L1.read":
            return False
        rw.set_payload(v, n.Mix((0, 1), (0, 3)))  # more columns than its matrix has
        return True

    bad = Pattern("vandal", "breaks the IR", (n.Mix,), vandal)
    with pytest.raises(IRVerifyError, match="after 'vandal'"):
        rewrite(raw(spec(1)), [bad], check=True)


def test_patterns_that_undo_each_other_stop_with_an_error() -> None:
    def flip(ir: IR, v: str, rw: Rewriter) -> bool:
        p = ir.payload(v)
        rw.set_payload(v, n.Norm(p.kind, not p.affine, p.eps, p.width))
        return True

    with pytest.raises(FixedPointError, match="no fixed point"):
        rewrite(raw(spec(1)), [Pattern("flip", "toggles affine", (n.Norm,), flip)])


def test_types_follow_the_rewrites() -> None:
    """The IR's type cache: after the pipeline every cached type is what a fresh inference
    gives."""
    ir = raw(spec(2, "hyper(n=2, fixed)"))
    run_pipeline(ir, DEFAULT)
    cached = ir.types()
    fresh = ir.copy()
    fresh._types.clear()
    fresh._dirty = set(fresh.g.nodes)
    assert fresh.types() == cached


@pytest.mark.parametrize("connect", ["residual", "hyper(n=4, dynamic)", "mudd",
                                     "hyper(n=2, fixed)"])
def test_work_is_linear_in_depth(connect: str) -> None:
    """Rewrites (not seconds: those are benchmarks/engine.py's) for 16 and 32 blocks: twice
    the depth, twice the work, up to a constant."""
    def work(blocks: int) -> int:
        ir = raw(spec(blocks, connect))
        return len(run_pipeline(ir, DEFAULT))

    small, large = work(16), work(32)
    assert large <= 2 * small + 40
