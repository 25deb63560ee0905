"""The Python API: parse, lower, compile, stats."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import nn

from hcdsl.errors import CompileError
from hcdsl.frontend.load import load
from hcdsl.ir.build import build
from hcdsl.ir.graph import IR
from hcdsl.ir.verify import verify
from hcdsl.nn.parts import LayerFactory, build_parts
from hcdsl.passes.pipeline import DEFAULT, run_pipeline
from hcdsl.schemes import desugar
from hcdsl.spec import ModelSpec

SpecLike = str | Path | ModelSpec


def parse(spec: str | Path, layers: Iterable[str] = ()) -> ModelSpec:
    """Parse and validate a spec (a path or .hc text). Raises HcError with every error."""
    return load(spec, extern_layers=tuple(layers))[0]


def _spec(spec: SpecLike, layers: Iterable[str] = ()) -> ModelSpec:
    return spec if isinstance(spec, ModelSpec) else parse(spec, layers)


def lower(spec: SpecLike, passes: Iterable[str] | None = DEFAULT, disable: Iterable[str] = (),
          layers: Iterable[str] = ()) -> IR:
    """Spec -> primitive scheme -> verified IR, after the pass pipeline (None: no passes)."""
    model = _spec(spec, layers)
    ir = build(model, desugar(model))
    verify(ir, after="build")
    if passes is not None:
        run_pipeline(ir, passes, disable)
        verify(ir, after="pipeline")
    return ir


def compile(  # noqa: A001 - the package's verb
    spec: SpecLike,
    *,
    layers: Mapping[str, LayerFactory] | None = None,
    backend: str = "fx",
    passes: Iterable[str] | None = DEFAULT,
    disable: Iterable[str] = (),
    seed: int = 0,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> nn.Module:
    """Compile a spec to a module mapping tokens (B, T) to logits (B, T, vocab).

    `layers` maps extern layer names of the spec to factories: factory(dim=..., **options)
    returns an nn.Module. The weights depend only on `seed` and the IR node ids.
    """
    from hcdsl.backends import ReferenceModel, lower_fx

    factories = dict(layers or {})
    ir = lower(spec, passes, disable, layers=factories)
    parts = build_parts(ir, factories, seed=seed)
    if backend == "fx":
        module: nn.Module = lower_fx(ir, parts)
    elif backend == "reference":
        module = ReferenceModel(ir, parts)
    else:
        raise CompileError(f"unknown backend '{backend}': choose 'fx' or 'reference'")
    module.hc_ir = ir  # type: ignore[attr-defined]
    return module.to(device=device, dtype=dtype)
