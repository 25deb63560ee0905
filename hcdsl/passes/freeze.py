"""Inference freezing: trained static coefficients become constants, which the canonical
patterns then fold (a zero weight drops a read, equal streams merge, a chain of fixed mixes
multiplies out). The values come from a trained module, so this is not a pattern of the
default pipeline: `hcdsl.compile(spec, state_dict=..., freeze=True)` calls it."""

from __future__ import annotations

from collections.abc import Mapping

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.passes.driver import Pattern, Rewriter, rewrite
from hcdsl.spec import Matrix

FREEZABLE = n.having("freezable")


def freezable(p: n.Node) -> bool:
    """A coefficient whose value does not depend on the tokens (the kind's `freezable`
    trait, refined per node by Node.is_freezable: a learned one only when static)."""
    return p.is_freezable()


def _freeze(ir: IR, v: str, rw: Rewriter) -> bool:
    values: Mapping[str, Matrix] = rw.memo["freeze"]
    if v not in values or not freezable(ir.payload(v)):
        return False
    # learned(trained value) -> const(trained value), under a new id: the trained module
    # keeps its own name (its weights stay in the state_dict)
    const = rw.add(f"{v}.frozen", n.ConstCoef(values[v]))
    rw.replace_uses(v, const)
    return True


FREEZE = Pattern("freeze-coefficients", "a trained static coefficient -> the constant of its "
                 "trained value (inference)", FREEZABLE, _freeze)


def freeze_coefficients(ir: IR, values: Mapping[str, Matrix]) -> list[str]:
    """Replace each coefficient node named in values by a constant of that value."""
    return rewrite(ir, [FREEZE], memo={"freeze": dict(values)})
