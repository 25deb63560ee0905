"""`hcdsl stats SPEC --pp N`: the pipeline stages of a spec (hcdsl/ir/stages.py), without
torch: what each cut sends per token (the tensors and their bytes) and each stage's
layers, parameters, forward FLOPs per token and activation memory (hcdsl/memory.py's rule,
over the stage's own nodes)."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from rich.table import Table

from hcdsl.compiler import Compilation
from hcdsl.errors import CompileError
from hcdsl.ir.graph import IR
from hcdsl.ir.stages import Plan, Stage, plan
from hcdsl.memory import activation_elements, fmt_bytes
from hcdsl.passes.pipeline import DEFAULT


@dataclass(frozen=True)
class StageView:
    """A stage's nodes as hcdsl.memory reads an IR (its nodes, their types and payloads)."""

    ir: IR
    stage: Stage

    @property
    def g(self) -> SimpleNamespace:
        return SimpleNamespace(nodes=self.stage.nodes)

    def type_of(self, v: str) -> object:
        return self.ir.type_of(v)

    def payload(self, v: str) -> object:
        return self.ir.payload(v)


def parse_split(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise CompileError(f"--pp-split {text}: give layer counts per stage separated by "
                           "commas, e.g. 3,5") from None


def stage_plan(program: Compilation, stages: int, split: str | None, seq: int) -> tuple[IR, Plan]:
    ir = program.ir(DEFAULT)
    counts = parse_split(split)
    if counts is not None and len(counts) != stages:
        raise CompileError(f"--pp-split {split} gives {len(counts)} stages; --pp {stages} "
                           f"asks for {stages}")
    try:
        return ir, plan(ir, None if counts else stages, counts, seq)
    except CompileError as exc:
        raise CompileError(f"--pp {stages}{f' --pp-split {split}' if split else ''}: "
                           f"{exc}") from None


def as_json(ir: IR, p: Plan, batch: int, seq: int, dtype_bytes: int) -> dict:
    return {
        "stages": [{"index": s.index, "layers": list(s.layers), "params": s.params,
                    "flops_per_token": s.flops,
                    "activation_bytes": activation_elements(StageView(ir, s), batch, seq)
                    * dtype_bytes} for s in p.stages],
        "cuts": [{"after_layer": c.after, "elements_per_token": c.elements,
                  "bytes_per_token": c.elements * dtype_bytes,
                  "tensors": [{"value": v, "type": t, "elements": w}
                              for v, t, w in zip(c.values, c.types, c.widths)]}
                 for c in p.cuts],
        "batch": batch, "seq": seq, "dtype_bytes": dtype_bytes}


def tables(ir: IR, p: Plan, batch: int, seq: int, dtype_bytes: int) -> tuple[Table, Table]:
    stages = Table("stage", "layers", "params", "FLOPs / token",
                   f"activations ({batch} x {seq} tokens)")
    for s in p.stages:
        acts = activation_elements(StageView(ir, s), batch, seq) * dtype_bytes
        stages.add_row(str(s.index), f"{s.layers[0] + 1}..{s.layers[1]}", f"{s.params:,}",
                       f"{s.flops:,}", fmt_bytes(acts))
    cuts = Table("cut after layer", "sends per token", "tensors")
    for c in p.cuts:
        tensors = ", ".join(f"{v} {t}" for v, t in zip(c.values, c.types))
        cuts.add_row(str(c.after), f"{c.elements:,} elements = {c.elements * dtype_bytes:,} B",
                     tensors)
    return stages, cuts
