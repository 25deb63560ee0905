"""Every IR node kind, with each stage's meaning of it, found through one table.

    KIND       ports, type rule, parameter count   hcdsl/ir/nodes/  (the payload class)
    module     its nn.Module (None: none)          hcdsl/nn/modules.py       MODULES
    fx         its torch.fx lowering               backends/fx.py            FX
    reference  its eager evaluation (the oracle)   backends/reference.py     EVAL
    symbolic   its rule in the prover              hcdsl/proofs/symbolic.py  SYMBOLIC
    at init    its value at init (parameters only) hcdsl/proofs/at_init.py   AT_INIT

Adding a node kind is one entry in each; tests/ir/test_kinds.py fails until every kind has
every entry it needs. What a kind *is* (pure, a view, freezable, holds a module, ...) are
traits of its payload class (hcdsl/ir/nodes/base.py: TRAITS), checked by
tests/ir/test_kind_tables.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hcdsl.backends.fx import FX
from hcdsl.backends.reference import EVAL
from hcdsl.ir import nodes as n
from hcdsl.nn.modules import MODULES
from hcdsl.proofs.at_init import AT_INIT
from hcdsl.proofs.symbolic import SYMBOLIC


@dataclass(frozen=True)
class Kind:
    payload: type[n.Node]
    module: Callable[..., Any] | None
    fx: Callable[..., Any] | None
    reference: Callable[..., Any] | None
    symbolic: Callable[..., Any] | None
    at_init: Callable[..., Any] | None


def table() -> dict[str, Kind]:
    """op name -> every stage's entry for it (None where a stage has none)."""
    return {k.op: Kind(k, MODULES.get(k), FX.get(k), EVAL.get(k), SYMBOLIC.get(k),
                       AT_INIT.get(k)) for k in n.KINDS}


def missing() -> list[str]:
    """'op: what' for every entry a kind needs and lacks (empty when complete)."""
    out = []
    for op, kind in table().items():
        if kind.payload not in MODULES:
            out.append(f"{op}: no entry in MODULES (None if it has no module)")
        for stage in ("fx", "reference", "symbolic"):
            if getattr(kind, stage) is None:
                out.append(f"{op}: no {stage} rule")
        if kind.payload.has_module and kind.at_init is None:
            out.append(f"{op}: holds parameters but has no value at init")
        if kind.payload.has_module and MODULES.get(kind.payload) is None:
            out.append(f"{op}: has_module but its MODULES entry is None")
        elif kind.payload.builds_module and MODULES.get(kind.payload) is None:
            out.append(f"{op}: builds_module but its MODULES entry is None")
        if not kind.payload.builds_module and MODULES.get(kind.payload) is not None:
            out.append(f"{op}: has a module factory but its class says builds_module = False")
    return out
