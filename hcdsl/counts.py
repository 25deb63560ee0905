"""Parameter counts of a spec, without allocating a single weight (and without torch).

Every IR node kind knows how many parameters its module holds (`param_count`, from shapes);
only extern layers, whose modules come from the caller's factories, are built, on torch's
meta device. The connection's cost is measured against the same spec with its connection
replaced by Pre-Norm residual (HC paper Eq. 15), the baseline every paper reports its extra
parameters over:

    extra = params(spec) - params(spec with `connect residual`)
"""

from __future__ import annotations

import warnings

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from hcdsl.compiler import Compilation
from hcdsl.ir.graph import IR
from hcdsl.schemes.primitive import DenseScheme
from hcdsl.schemes.program import Program, SpecLike
from hcdsl.spec import Matrix


class StepMatrix(BaseModel):
    """The static matrix M of one step at init (HC: [[0, B], [A_m, A_r]], Eq. 1)."""

    model_config = ConfigDict(frozen=True)
    layers: tuple[int, ...]  # 1-based layer numbers the step runs (several: in parallel)
    matrix: Matrix
    learn: bool  # learned (True) or a constant buffer (False)
    dynamic: bool  # plus the data-dependent part of HC Eqs. 10-13


class Stats(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    family: str  # e.g. "pre-norm", "SHC x4", "DHC x4"
    dim: int
    vocab: int
    layers: int  # attention and FFN count one each, as in the HC paper
    blocks: int
    streams: int  # n of HC; 1 for residual connections; history size (L + 1) for dense ones
    params: int  # every trainable parameter, tied weights counted once
    baseline_params: int  # the same spec with Pre-Norm residual connections
    extra_params: int  # params - baseline_params (negative when cheaper, e.g. a shared norm)
    extra_percent: float  # 100 * extra_params / baseline_params
    matrices: tuple[StepMatrix, ...]  # one per step, in order

    def matrix_groups(self) -> list[tuple[str, StepMatrix]]:
        """Steps with equal matrices grouped, each group described like a .hc selector."""
        groups: dict[Matrix, list[StepMatrix]] = {}
        for step in self.matrices:
            groups.setdefault(step.matrix, []).append(step)
        out = []
        for steps in groups.values():
            numbers = [k for s in steps for k in s.layers]
            out.append((describe_layers(numbers, self.layers), steps[0]))
        return out


def describe_layers(numbers: list[int], total: int) -> str:
    """[1, 3, 5] of 6 -> 'odd'; [2, 3, 4] -> 'layers 2..4'; [1, 5, 9] -> 'every 4 from 1'."""
    ks = sorted(numbers)
    if len(ks) == 1:
        return f"layer {ks[0]}"
    if ks == list(range(1, total + 1)):
        return "all"
    if ks == list(range(1, total + 1, 2)):
        return "odd"
    if ks == list(range(2, total + 1, 2)):
        return "even"
    step = ks[1] - ks[0]
    if ks == list(range(ks[0], ks[-1] + 1, step)):
        if step == 1:
            return f"layers {ks[0]}..{ks[-1]}"
        if ks[-1] + step > total:  # the progression runs to the end, as `every` does
            return f"every {step} from {ks[0]}"
    return "layers " + ", ".join(map(str, ks))


def count_params(spec: SpecLike | Program, layers: Mapping[str, Any] | None = None) -> int:
    """Trainable parameters of the model. Counted on the IR as built (no passes): passes
    rewrite how values flow, never which modules hold weights."""
    factories = dict(layers or {})
    ir = Compilation.load(spec, factories, once=True).raw_ir()
    total, externs = 0, []
    for v in ir.g.nodes:
        count = ir.payload(v).param_count()
        if count is None:
            externs.append(v)
        else:
            total += count
    return total + (_extern_params(ir, externs, factories) if externs else 0)


def _extern_params(ir: IR, nodes: list[str], factories: Mapping[str, Any]) -> int:
    """Parameters of the caller's layers: built on the meta device (shapes only)."""
    import torch

    from hcdsl.nn.extern import extern_layer

    seen: set[int] = set()  # a module shared by two layers counts once
    total = 0
    # shapes only: the out_scale rule's warning is for the modules that will train
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        built = [extern_layer(ir.payload(v), factories) for v in nodes]  # all alive: ids
        for module in built:  # of freed tensors are reused, and would count as shared
            for p in module.parameters():
                if p.requires_grad and id(p) not in seen:
                    seen.add(id(p))
                    total += p.numel()
    return total


def stats(spec: SpecLike | Program, layers: Mapping[str, Any] | None = None) -> Stats:
    """Parameter counts and static connection matrices of a spec (.hc text, a Path or a
    ModelSpec). `layers` maps extern layer names to factories, as in hcdsl.compile."""
    factories = dict(layers or {})
    program = Compilation.load(spec, factories, once=True)
    model, scheme = program.spec, program.scheme
    params = count_params(program, factories)
    baseline = count_params(program.baseline(), factories)
    extra = params - baseline
    # a history state (dense families) holds the embedding and every block output
    dense = isinstance(scheme, DenseScheme)
    return Stats(
        name=model.name, family=scheme.family, dim=model.dim, vocab=model.vocab,
        layers=len(model.sequence), blocks=len(model.body),
        streams=len(scheme.blocks) + 1 if dense else scheme.streams,
        params=params, baseline_params=baseline, extra_params=extra,
        extra_percent=100.0 * extra / baseline if baseline else 0.0,
        matrices=tuple(
            StepMatrix(layers=tuple(k + 1 for k in step.layers), matrix=step.coef.init,
                       learn=step.coef.learn, dynamic=step.coef.dynamic)
            for step in (() if dense else scheme.steps)
        ),
    )
