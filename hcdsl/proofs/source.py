"""What the prover, unfold and the witness accept as a spec, and its IR before any pass."""

from __future__ import annotations

from pathlib import Path

from hcdsl.compiler import Compilation
from hcdsl.ir.graph import IR
from hcdsl.schemes.program import Program
from hcdsl.spec import ModelSpec

Source = str | Path | ModelSpec | Program | IR


def name_of(src: Source) -> str:
    if isinstance(src, IR):
        return src.name
    if isinstance(src, (ModelSpec, Program)):
        return (src if isinstance(src, ModelSpec) else src.spec).name
    if isinstance(src, Path):
        return str(src)
    return "<spec text>"


def raw_ir(src: Source) -> IR:
    """The IR of a spec before any pass (a copy when given an IR, or the IR of a
    Compilation: built once, copied)."""
    if isinstance(src, IR):
        return src.copy()
    return Compilation.load(src, once=True).raw_ir()
