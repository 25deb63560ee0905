"""The Python API: parse, load, lower, compile.

A `str` is always spec text and a `pathlib.Path` a file to read (`load` reads a path given
as a str). Nothing here imports torch until a module is built (`compile`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hcdsl.errors import CompileError
from hcdsl.ir.graph import IR
from hcdsl.ir.verify import verify
from hcdsl.passes.freeze import freezable, freeze_coefficients
from hcdsl.passes.pipeline import DEFAULT, lower_program, run_pipeline
from hcdsl.schemes.program import Program, SpecLike, load_program
from hcdsl.spec import ModelSpec

if TYPE_CHECKING:  # torch is imported by compile() only
    import torch
    from torch import nn


def parse(spec: str | Path, layers: Iterable[str] = ()) -> ModelSpec:
    """Parse and validate .hc text, or the file at a pathlib.Path (a str is always text;
    `load` takes a path as a str too). Raises HcError with every mistake, each located.
    `layers` names the extern layers you will pass to `compile`, so `layer a = myattn(...)`
    may omit the word `extern`."""
    if not isinstance(spec, (str, Path)):
        raise TypeError(f"parse takes .hc text (str) or a pathlib.Path, got "
                        f"{type(spec).__name__}")
    return load_program(spec, tuple(layers)).spec


def load(path: str | Path, layers: Iterable[str] = ()) -> ModelSpec:
    """Read, parse and validate a .hc file."""
    return load_program(Path(path), tuple(layers)).spec


def lower(spec: SpecLike, passes: Iterable[str] | None = DEFAULT, disable: Iterable[str] = (),
          layers: Iterable[str] = ()) -> IR:
    """Spec -> primitive scheme -> verified IR, after the pass pipeline (None: no passes)."""
    return lower_program(load_program(spec, tuple(layers)), passes, disable)


def compile(  # noqa: A001 - the package's verb
    spec: SpecLike | Program,
    *,
    layers: Mapping[str, Any] | None = None,
    backend: str = "fx",
    passes: Iterable[str] | None = DEFAULT,
    disable: Iterable[str] = (),
    seed: int | None = None,
    device: "str | torch.device | None" = None,
    dtype: "torch.dtype | None" = None,
    recompute: bool = False,
    state_dict: "Mapping[str, torch.Tensor] | None" = None,
    freeze: bool = False,
) -> "nn.Module":
    """Compile a spec to a module mapping tokens (B, T) to logits (B, T, vocab); called as
    model(tokens, mask=None, return_hidden=False, targets=None) (hcdsl.nn.io: a padding or
    attention mask, the per-layer hidden states, the next-token loss). A body (`input =
    hidden`) maps hidden states (B, T, dim) to hidden states.

    `layers` maps extern layer names of the spec to factories: factory(dim=..., **options)
    returns an nn.Module (a `ports` attribute declares its input ports; hcdsl/nn/extern.py
    says how the connection's out_scale reaches it). Weights follow torch's global generator
    (torch.manual_seed) unless `seed` is given; then they depend only on `seed` and the IR
    node ids, so a module before and after a pass can be compared directly. `recompute`: the
    connection's operations between layers are recomputed in backward instead of stored,
    where that keeps less (MUDD's generator, norms over the streams; HC, FC and mHC already
    keep only their state): less memory, a little more time; fx backend. `state_dict`: trained weights, loaded
    strictly. `freeze`: the trained static coefficients (HC/FC static, DenseFormer, user
    params) become constants that the passes fold: for inference.

    The modules are those of the IR before the passes (the passes never rename a node that
    holds parameters), so a state_dict loads whatever passes ran.
    """
    from hcdsl.backends import ReferenceModel, lower_fx
    from hcdsl.nn.modules import attr_name, build_parts, load_weights

    if backend not in ("fx", "reference"):
        raise CompileError(f"unknown backend '{backend}': choose 'fx' or 'reference'")
    factories = dict(layers or {})
    raw = lower_program(load_program(spec, factories), passes=None)
    parts = build_parts(raw, factories, seed=seed, dtype=dtype)
    if state_dict is not None:
        load_weights(parts, state_dict)
    ir = raw.copy()
    if freeze:
        freeze_coefficients(ir, {v: matrix_of(getattr(parts, attr_name(v))) for v in ir.g.nodes
                                 if freezable(ir.payload(v))})
    if passes is not None:
        run_pipeline(ir, passes, disable)
        verify(ir, after="pipeline")
    build_parts(ir, factories, seed=seed, dtype=dtype, into=parts)  # nodes the passes made
    module = lower_fx(ir, parts, recompute) if backend == "fx" else ReferenceModel(ir, parts)
    if freeze:
        module.requires_grad_(False)
    module.hc_ir = ir  # type: ignore[attr-defined]
    return module.to(device=device, dtype=dtype)


def matrix_of(module: "nn.Module") -> tuple[tuple[float, ...], ...]:
    """The matrix a static coefficient module produces, as exact floats."""
    import torch

    with torch.no_grad():
        return tuple(tuple(float(x) for x in row) for row in module().double().tolist())
