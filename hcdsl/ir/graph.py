"""The IR container: a MultiDiGraph whose nodes carry one payload under the key 'op'.

Edges run from a producer to a consumer and carry the consumer's port name (also the edge
key, so a node reading one value on two ports has two parallel edges).

Every change goes through the methods below, which keep a cache of each node's type: a
changed node is marked dirty and re-typed when a type is next asked for; when its type
changes, its users are re-typed too. So a pass asks `type_of(v)` freely and the cost of
typing stays proportional to what changed, not to the size of the graph.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import networkx as nx

from hcdsl.ir import nodes as n
from hcdsl.ir.types import IRTypeError, Type


def natural_key(node_id: str) -> tuple:
    """'L10.attn' sorts after 'L2.attn'."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", node_id))


class IR:
    def __init__(self, name: str = "model") -> None:
        self.name = name
        self.g = nx.MultiDiGraph()
        self._types: dict[str, Type] = {}
        self._dirty: set[str] = set()

    # -- building ------------------------------------------------------------------------
    def add(self, node_id: str, payload: n.Node, **inputs: str) -> str:
        if node_id in self.g:
            raise ValueError(f"IR node id '{node_id}' used twice")
        self.g.add_node(node_id, op=payload)
        for port, src in inputs.items():
            self.connect(src, node_id, port)
        self._dirty.add(node_id)
        return node_id

    def connect(self, src: str, dst: str, port: str) -> None:
        if src not in self.g:
            raise ValueError(f"IR node '{dst}' reads unknown node '{src}'")
        self.g.add_edge(src, dst, key=port, port=port)
        self._dirty.add(dst)

    # -- reading -------------------------------------------------------------------------
    def payload(self, node_id: str) -> n.Node:
        return self.g.nodes[node_id]["op"]

    # the readers below go to networkx's adjacency dicts (_pred, _succ: {neighbour: {key:
    # data}}) directly: the edge views cost more than the passes themselves
    def inputs(self, node_id: str) -> dict[str, str]:
        """port -> producer, in the payload's port order."""
        found = {port: u for u, keys in self.g._pred[node_id].items() for port in keys}
        order = self.payload(node_id).ports()
        if len(found) == len(order) and all(p in found for p in order):
            return {p: found[p] for p in order}
        return {p: found[p] for p in order if p in found} | {
            p: u for p, u in found.items() if p not in order}

    def users(self, node_id: str) -> list[tuple[str, str]]:
        """(consumer, port) pairs."""
        return sorted((v, port) for v, keys in self.g._succ[node_id].items() for port in keys)

    def producers(self, node_id: str) -> list[str]:
        return list(self.g._pred[node_id])

    def readers(self, node_id: str) -> list[str]:
        """The nodes that read node_id (each once)."""
        return list(self.g._succ[node_id])

    def order(self) -> list[str]:
        """A deterministic topological order (ties broken by natural node-id order)."""
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
        outs = [v for v in self.g.nodes if isinstance(self.payload(v), n.Output)]
        if len(outs) != 1:
            raise ValueError(f"IR has {len(outs)} output nodes, expected 1")
        return outs[0]

    # -- types ---------------------------------------------------------------------------
    def type_of(self, node_id: str) -> Type:
        self._flush()
        if node_id not in self._types:
            self._retype(node_id)
        return self._types[node_id]

    def types(self) -> dict[str, Type]:
        """Every node's type (IRTypeError names the first node whose inputs disagree)."""
        self._flush()
        for v in self.order():
            if v not in self._types:
                self._retype(v)
        return dict(self._types)

    def _retype(self, v: str) -> bool:
        """Type v from its inputs' types (typing untyped producers first, without
        recursion: chains are thousands of nodes deep); True when v's type changed."""
        stack = [v]
        while stack:
            u = stack[-1]
            missing = [w for w in self.producers(u) if w not in self._types and w != u]
            if missing:
                stack.extend(missing)
                continue
            stack.pop()
            if u != v and u in self._types:
                continue
            ins = {port: self._types[w] for port, w in self.inputs(u).items()}
            new = self.payload(u).infer(ins)
            if u == v:
                changed = self._types.get(v) != new
                self._types[v] = new
                return changed
            self._types[u] = new
        raise AssertionError("unreachable")  # pragma: no cover

    def _flush(self) -> None:
        """Re-type the dirty nodes (dirty producers first); the users of a node whose type
        changed become dirty in turn. A node may be typed while an ancestor further up is
        still stale: if that fails, it is retried once the changes have propagated, and
        the error stands only when a whole round changes nothing."""
        failed: dict[str, IRTypeError] = {}
        while True:
            progress = self._flush_round(failed)
            if not failed:
                return
            if not progress:
                raise next(iter(failed.values()))
            self._dirty.update(failed)
            failed.clear()

    def _flush_round(self, failed: dict[str, IRTypeError]) -> bool:
        progress = False
        while self._dirty:
            stack = [next(iter(self._dirty))]
            while stack:
                u = stack[-1]
                if u not in self._dirty:
                    stack.pop()
                    continue
                if u not in self.g:
                    self._dirty.discard(u)
                    continue
                first = [w for w in self.producers(u) if w in self._dirty]
                if first:
                    stack.extend(first)
                    continue
                stack.pop()
                self._dirty.discard(u)
                had = u in self._types
                try:
                    changed = self._retype(u)
                except IRTypeError as exc:
                    failed[u] = exc
                    continue
                failed.pop(u, None)
                if changed:
                    progress = True
                    if had:
                        self._dirty.update(self.g._succ[u])
        return progress

    # -- rewriting -----------------------------------------------------------------------
    def set_payload(self, node_id: str, payload: n.Node) -> None:
        self.g.nodes[node_id]["op"] = payload
        self._dirty.add(node_id)

    def replace_uses(self, old: str, new: str) -> None:
        """Every consumer of `old` reads `new` instead (on the same port)."""
        for v, port in self.users(old):
            self.g.remove_edge(old, v, key=port)
            self.g.add_edge(new, v, key=port, port=port)
            self._dirty.add(v)

    def rewire(self, node_id: str, port: str, src: str) -> None:
        old = self.inputs(node_id)[port]
        self.g.remove_edge(old, node_id, key=port)
        self.g.add_edge(src, node_id, key=port, port=port)
        self._dirty.add(node_id)

    def disconnect(self, node_id: str) -> list[str]:
        """Remove every input edge of node_id; returns the producers it read."""
        edges = list(self.g.in_edges(node_id, keys=True))
        self.g.remove_edges_from(edges)
        self._dirty.add(node_id)
        return [u for u, _, _ in edges]

    def remove(self, node_id: str) -> None:
        self._dirty.update(self.g._succ[node_id])
        self.g.remove_node(node_id)
        self._types.pop(node_id, None)
        self._dirty.discard(node_id)

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
        out._types = dict(self._types)
        out._dirty = set(self._dirty)
        return out
