"""The IR container: a MultiDiGraph whose nodes carry one payload under the key 'op'.

Edges run from a producer to a consumer and carry the consumer's port name (also the edge
key, so a node reading one value on two ports has two parallel edges).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import networkx as nx

from hcdsl.ir import nodes as n
from hcdsl.ir.types import Type


def natural_key(node_id: str) -> tuple:
    """'L10.attn' sorts after 'L2.attn'."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", node_id))


class IR:
    def __init__(self, name: str = "model") -> None:
        self.name = name
        self.g = nx.MultiDiGraph()

    # -- building ------------------------------------------------------------------------
    def add(self, node_id: str, payload: n.Node, **inputs: str) -> str:
        if node_id in self.g:
            raise ValueError(f"IR node id '{node_id}' used twice")
        self.g.add_node(node_id, op=payload)
        for port, src in inputs.items():
            self.connect(src, node_id, port)
        return node_id

    def connect(self, src: str, dst: str, port: str) -> None:
        if src not in self.g:
            raise ValueError(f"IR node '{dst}' reads unknown node '{src}'")
        self.g.add_edge(src, dst, key=port, port=port)

    # -- reading -------------------------------------------------------------------------
    def payload(self, node_id: str) -> n.Node:
        return self.g.nodes[node_id]["op"]

    def inputs(self, node_id: str) -> dict[str, str]:
        """port -> producer, in the payload's port order."""
        found = {d["port"]: u for u, _, d in self.g.in_edges(node_id, data=True)}
        order = self.payload(node_id).ports()
        return {p: found[p] for p in order if p in found} | {
            p: u for p, u in found.items() if p not in order}

    def users(self, node_id: str) -> list[tuple[str, str]]:
        """(consumer, port) pairs."""
        return sorted((v, d["port"]) for _, v, d in self.g.out_edges(node_id, data=True))

    def order(self) -> list[str]:
        return list(nx.lexicographical_topological_sort(self.g, key=natural_key))

    def __iter__(self) -> Iterator[str]:
        return iter(self.order())

    def __len__(self) -> int:
        return self.g.number_of_nodes()

    def __contains__(self, node_id: str) -> bool:
        return node_id in self.g

    def of_type(self, kind: type) -> list[str]:
        return [v for v in self.order() if isinstance(self.payload(v), kind)]

    def output(self) -> str:
        outs = self.of_type(n.Output)
        if len(outs) != 1:
            raise ValueError(f"IR has {len(outs)} output nodes, expected 1")
        return outs[0]

    def types(self) -> dict[str, Type]:
        out: dict[str, Type] = {}
        for v in self.order():
            out[v] = self.payload(v).infer({p: out[u] for p, u in self.inputs(v).items()})
        return out

    # -- rewriting -----------------------------------------------------------------------
    def set_payload(self, node_id: str, payload: n.Node) -> None:
        self.g.nodes[node_id]["op"] = payload

    def replace_uses(self, old: str, new: str) -> None:
        """Every consumer of `old` reads `new` instead (on the same port)."""
        for v, port in self.users(old):
            self.g.remove_edge(old, v, key=port)
            self.g.add_edge(new, v, key=port, port=port)

    def rewire(self, node_id: str, port: str, src: str) -> None:
        old = self.inputs(node_id)[port]
        self.g.remove_edge(old, node_id, key=port)
        self.g.add_edge(src, node_id, key=port, port=port)

    def remove(self, node_id: str) -> None:
        self.g.remove_node(node_id)

    def fresh_id(self, base: str) -> str:
        if base not in self.g:
            return base
        i = 2
        while f"{base}{i}" in self.g:
            i += 1
        return f"{base}{i}"

    def copy(self) -> "IR":
        out = IR(self.name)
        out.g = self.g.copy()
        return out
