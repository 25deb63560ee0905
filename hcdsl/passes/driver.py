"""The rewrite driver: patterns are rules on one node; the driver owns everything else.

A pattern (registry.Pattern) looks at one root node and, if it matches, rewrites the graph
through a Rewriter and returns True. The driver (in the style of xDSL's
PatternRewriteWalker and tinygrad's graph_rewrite) keeps a worklist seeded with every node
in topological order; after a rewrite it re-queues what the rewrite touched and their
users and producers, prunes nodes nobody reads any more, and stops at the fixed point.
Types are cached by the IR and re-inferred only where a rewrite changed something. With
`check=True` (the tests) the IR is verified after every rewrite and a broken IR names the
pattern that broke it. Cost: proportional to the number of rewrites and the size of the
neighbourhoods they touch, so lowering is linear in depth.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Callable

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.ir.verify import verify


class FixedPointError(RuntimeError):
    """The patterns kept rewriting each other's output (a compiler bug)."""


class Rewriter:
    """Changes the IR on behalf of one pattern application and records what it touched."""

    def __init__(self, ir: IR, memo: dict) -> None:
        self.ir = ir
        self.memo = memo  # per-run state a pattern may keep (e.g. CSE's table), by its name
        self.touched: set[str] = set()  # new nodes, and nodes whose inputs or readers changed
        self.changed: set[str] = set()  # nodes whose operation changed: their readers too
        self.released: list[str] = []  # nodes that lost a reader: pruned if now dead

    def add(self, base: str, payload: n.Node, **inputs: str) -> str:
        node = self.ir.add(self.ir.fresh_id(base), payload, **inputs)
        self.touched.add(node)
        return node

    def set_payload(self, node: str, payload: n.Node) -> None:
        self.ir.set_payload(node, payload)
        self.changed.add(node)

    def rewire(self, node: str, port: str, src: str) -> None:
        self.released.append(self.ir.inputs(node)[port])
        self.ir.rewire(node, port, src)
        self.touched.update((node, src))

    def replace_uses(self, old: str, new: str) -> None:
        """Every reader of old reads new; old is pruned once nobody reads it."""
        self.touched.update(v for v, _ in self.ir.users(old))
        self.ir.replace_uses(old, new)
        self.touched.add(new)
        self.released.append(old)

    def replace_inputs(self, node: str, payload: n.Node, **inputs: str) -> None:
        """node gets a new payload and exactly these inputs (its old ones released)."""
        self.released.extend(self.ir.disconnect(node))
        self.ir.set_payload(node, payload)
        for port, src in inputs.items():
            self.ir.connect(src, node, port)
        self.touched.update(inputs.values())
        self.changed.add(node)

    def revisit(self) -> set[str]:
        """What the driver looks at again: what changed, the readers of a changed
        operation, and the surviving producers of what was pruned."""
        out = self.touched | self.changed | self.prune()
        for v in self.changed:
            if v in self.ir:
                out.update(self.ir.readers(v))
        return {v for v in out if v in self.ir}

    def prune(self) -> set[str]:
        """Remove every released node nobody reads, then its producers likewise; returns
        the surviving producers of what was removed (their reader count changed)."""
        work, survivors = list(self.released), set()
        while work:
            v = work.pop()
            if v not in self.ir:
                continue
            if self.ir.readers(v) or isinstance(self.ir.payload(v), n.Output):
                survivors.add(v)
                continue
            work.extend(self.ir.producers(v))
            self.ir.remove(v)
        self.released.clear()
        return {v for v in survivors if v in self.ir}


Rule = Callable[[IR, str, Rewriter], bool]


@dataclass(frozen=True)
class Pattern:
    """A rule on one root node, tried only on roots whose payload is one of `kinds`."""

    name: str  # kebab-case
    doc: str
    kinds: tuple[type[n.Node], ...]
    match_and_rewrite: Rule

    def __call__(self, ir: IR, check: bool = False) -> bool:
        """This pattern alone, to its fixed point: True when it fired (tests use this)."""
        return bool(rewrite(ir, [self], check=check, prune_first=False))


def prune_dead(ir: IR) -> int:
    """Remove every node whose value never reaches the output; returns how many."""
    alive, work = set(), [ir.output()]
    while work:
        v = work.pop()
        if v not in alive:
            alive.add(v)
            work.extend(ir.producers(v))
    dead = [v for v in ir.g.nodes if v not in alive]
    for v in dead:
        ir.remove(v)
    return len(dead)


def rewrite(ir: IR, patterns: Iterable[Pattern], check: bool = False, budget: int = 64,
            prune_first: bool = True, memo: dict | None = None) -> list[str]:
    """Apply the patterns until none matches anywhere; returns the names of the patterns
    that fired, in order. `budget` bounds rewrites per node of the initial graph."""
    by_kind: dict[type, list[Pattern]] = {}
    for pat in patterns:
        for kind in pat.kinds:
            by_kind.setdefault(kind, []).append(pat)
    memo = {} if memo is None else memo  # what patterns keep, or are given, for this run
    log: list[str] = []
    if prune_first and prune_dead(ir):
        log.append("dce")
    work = deque(ir.order())
    queued = set(work)
    limit = budget * (len(ir) + 1)
    while work:
        v = work.popleft()
        queued.discard(v)
        if v not in ir:
            continue
        for pat in by_kind.get(type(ir.payload(v)), ()):
            rw = Rewriter(ir, memo)
            if not pat.match_and_rewrite(ir, v, rw):
                continue
            log.append(pat.name)
            if len(log) > limit:
                raise FixedPointError(f"no fixed point after {len(log)} rewrites; the last: "
                                      f"{log[-8:]}")
            again = rw.revisit() | ({v} if v in ir else set())
            if check:
                verify(ir, after=pat.name)
            for w in again:
                if w not in queued:
                    queued.add(w)
                    work.append(w)
            break
    return log
