"""The models `hcdsl bench` compares: a spec and its Pre-Norm baseline.

The baseline is the same spec with its connection replaced by Pre-Norm residual (HC paper,
arXiv 2409.19606, Eq. 15), as hcdsl/stats.py counts extra parameters:
`spec.model_copy(update={"connection": ConnectionSpec(kind="residual")})`. Both are built with
the same seed, and the baseline then receives every tensor of the spec's model that has the
same name and shape (embedding, norms, attention and MLP weights, head), so the layers are
identical and only the connection differs (HC's 1/sqrt(n) init of output projections, for
instance, is copied over too).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pathlib import Path

import hcdsl
from hcdsl.compiler import Compilation
from hcdsl.spec import ConnectionSpec, ModelSpec


def baseline_spec(spec: ModelSpec) -> ModelSpec:
    """The same layers, norms and head, connected by Pre-Norm residual."""
    return spec.model_copy(update={"connection": ConnectionSpec(kind="residual")})


def baseline_key(spec: ModelSpec) -> str:
    """Specs whose baselines are equal (up to the model's name) share one baseline model."""
    return baseline_spec(spec).model_copy(update={"name": "baseline"}).model_dump_json()


def family(spec: ModelSpec) -> str:
    """'DHC x4', 'mHC x4', 'pre-norm', ... (the desugared scheme's family)."""
    return Compilation.load(spec).scheme.family


def common_tensors(src: nn.Module, dst: nn.Module) -> dict[str, torch.Tensor]:
    """src's state_dict entries that dst has under the same name and shape."""
    theirs = dst.state_dict()
    return {k: v for k, v in src.state_dict().items()
            if k in theirs and theirs[k].shape == v.shape}


def share_weights(src: nn.Module, dst: nn.Module) -> int:
    """Copy every tensor of src's state_dict into dst where dst has the same name and shape;
    the number of tensors copied."""
    shared = common_tensors(src, dst)
    dst.load_state_dict(shared, strict=False)
    return len(shared)


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@dataclass
class Built:
    """A spec's model and its baseline (possibly shared with other specs)."""

    path: str
    spec: ModelSpec
    family: str
    model: nn.Module
    base: nn.Module
    shared_tensors: int  # tensors the model and the baseline have in common (same name, shape)


def build_pairs(paths: list[str], device: torch.device, seed: int = 0,
                recompute: bool | str = False, disable: tuple[str, ...] = (),
                recompute_every: int = 0) -> list[Built]:
    """Parse and build each spec and its Pre-Norm baseline; equal baselines are built once.
    recompute: the specs' connections are recomputed in backward (the baseline, Pre-Norm,
    has nothing worth recomputing); "layers": recomputation across layers for the specs, k =
    recompute_every (0: the memory model's), the baselines plain, so a ratio is against plain
    Pre-Norm. disable: passes left out, for the specs and the baselines. Raises HcError / CompileError for a bad spec."""
    bases: dict[str, nn.Module] = {}
    out = []
    for path in paths:
        comp = Compilation.load(Path(path), once=True)  # a path (hcdsl.parse takes a str as .hc text)
        spec = comp.spec
        every = recompute_every or None
        model = hcdsl.compile(comp, seed=seed, device=device, recompute=recompute,
                              recompute_every=every, disable=disable)
        key = baseline_key(spec)
        if key not in bases:  # the first spec's layer weights go into the shared baseline
            bases[key] = hcdsl.compile(comp.baseline(), seed=seed, device=device,
                                       disable=disable)
            share_weights(model, bases[key])
        copied = len(common_tensors(model, bases[key]))
        out.append(Built(path, spec, comp.scheme.family, model, bases[key], copied))
    return out
