"""Parameter counts of a spec, without allocating a single weight.

The IR's modules are built on torch's meta device (shapes only), so a 7B-size spec answers
in about a second. The connection's cost is measured against the same spec with its
connection replaced by Pre-Norm residual (HC paper Eq. 15), the baseline every paper
reports its extra parameters over:

    extra = params(spec) - params(spec with `connect residual`)
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from pydantic import BaseModel, ConfigDict

from hcdsl.api import SpecLike, _spec, lower
from hcdsl.nn.parts import LayerFactory, build_parts
from hcdsl.schemes import desugar
from hcdsl.schemes.primitive import DenseScheme
from hcdsl.spec import ConnectionSpec, Matrix, ModelSpec


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


def count_params(spec: ModelSpec, layers: Mapping[str, LayerFactory] | None = None) -> int:
    """Trainable parameters of the model, built on the meta device. Counted on the IR as
    built (no passes): passes rewrite how values flow, never which modules hold weights."""
    factories = dict(layers or {})
    ir = lower(spec, passes=None, layers=factories)
    with torch.device("meta"):
        parts = build_parts(ir, factories)
    # parameters() yields a shared (tied) tensor once
    return sum(p.numel() for p in parts.parameters() if p.requires_grad)


def stats(spec: SpecLike, layers: Mapping[str, LayerFactory] | None = None) -> Stats:
    """Parameter counts and static connection matrices of a spec (a path, .hc text or
    ModelSpec). `layers` maps extern layer names to factories, as in hcdsl.compile."""
    factories = dict(layers or {})
    model = _spec(spec, factories)
    scheme = desugar(model)
    params = count_params(model, factories)
    baseline = count_params(
        model.model_copy(update={"connection": ConnectionSpec(kind="residual")}), factories)
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
