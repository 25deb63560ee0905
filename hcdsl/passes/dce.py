import networkx as nx

from hcdsl.ir.graph import IR
from hcdsl.passes.registry import register


@register("dce", "dead code: nodes whose value never reaches the output are removed")
def dce(ir: IR) -> bool:
    out = ir.output()
    dead = set(ir.g.nodes) - nx.ancestors(ir.g, out) - {out}
    ir.g.remove_nodes_from(dead)
    return bool(dead)
