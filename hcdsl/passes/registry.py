"""The one table of IR passes. A pass is a small named object: apply(ir) -> changed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from hcdsl.ir.graph import IR


@dataclass(frozen=True)
class Pass:
    name: str  # kebab-case
    apply: Callable[[IR], bool]
    doc: str

    def __call__(self, ir: IR) -> bool:
        return self.apply(ir)


PASSES: dict[str, Pass] = {}


def register(name: str, doc: str) -> Callable[[Callable[[IR], bool]], Pass]:
    def wrap(fn: Callable[[IR], bool]) -> Pass:
        if name in PASSES:
            raise ValueError(f"pass '{name}' registered twice")
        PASSES[name] = Pass(name, fn, doc)
        return PASSES[name]

    return wrap


def get(name: str) -> Pass:
    from hcdsl.passes import load_all

    load_all()
    if name not in PASSES:
        raise KeyError(f"unknown pass '{name}'; passes are: {', '.join(sorted(PASSES))}")
    return PASSES[name]
