"""The one table of rewrite patterns. A pattern is a small named object: a rule on one root
node, `match_and_rewrite(ir, node, rewriter) -> bool`, tried only on roots whose payload is
one of its `kinds`. The optimiser's patterns register here (hcdsl/passes/patterns/); the
prover's assumption patterns register into the same table from hcdsl/proofs/."""

from __future__ import annotations

from typing import Callable

from hcdsl.errors import CompileError
from hcdsl.ir import nodes as n
from hcdsl.passes.driver import Pattern, Rule

PATTERNS: dict[str, Pattern] = {}


class UnknownPass(CompileError, KeyError):
    """A pass name that is not in the table (the message lists the table)."""

    def __str__(self) -> str:
        return self.args[0]


def pattern(name: str, doc: str, *kinds: type[n.Node]) -> Callable[[Rule], Pattern]:
    """Register a rule as the pattern `name`, tried on roots of the given kinds."""
    def wrap(fn: Rule) -> Pattern:
        if name in PATTERNS:
            raise ValueError(f"pattern '{name}' registered twice")
        PATTERNS[name] = Pattern(name, doc, kinds, fn)
        return PATTERNS[name]

    return wrap


def get(name: str) -> Pattern:
    if name not in PATTERNS:
        raise UnknownPass(f"unknown pass '{name}'; passes are: {', '.join(sorted(PATTERNS))}")
    return PATTERNS[name]
