"""The IR verifier: run between passes in tests; its errors name the pass that broke the IR."""

from __future__ import annotations

import networkx as nx

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.ir.types import IRTypeError


class IRVerifyError(Exception):
    pass


def verify(ir: IR, after: str = "build") -> None:
    """Acyclic; every port wired exactly; types and stream counts agree; all reach the output."""

    def fail(msg: str) -> None:
        raise IRVerifyError(f"IR invalid after '{after}': {msg}")

    if not nx.is_directed_acyclic_graph(ir.g):
        fail(f"cycle through {nx.find_cycle(ir.g)}")
    for v in ir.g.nodes:
        if "op" not in ir.g.nodes[v] or not isinstance(ir.payload(v), n.Node):
            fail(f"node '{v}' has no payload")
        want = set(ir.payload(v).ports())
        have = [d["port"] for _, _, d in ir.g.in_edges(v, data=True)]
        if sorted(have) != sorted(want):
            fail(f"node '{v}' ({ir.payload(v).op}) is wired on ports {sorted(have)}, "
                 f"expects {sorted(want)}")
    outputs = ir.of_type(n.Output)
    if len(outputs) != 1:
        fail(f"{len(outputs)} output nodes, expected 1")
    try:
        ir.types()
    except IRTypeError as exc:
        fail(str(exc))
    live = nx.ancestors(ir.g, outputs[0]) | {outputs[0]}
    dead = sorted(set(ir.g.nodes) - live)
    if dead:
        fail(f"nodes that never reach the output: {dead}")
