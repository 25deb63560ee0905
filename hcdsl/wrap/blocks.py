"""An nn.ModuleList of your own pre-norm blocks (a ViT, a custom decoder), by protocol.

Each block computes x <- x + T_j(Norm_j(x)) for its sub-layers j in order, and says which
they are in one of three ways (tried in this order):

1. a method `hc_sublayers()` returning [(norm, layer), ...];
2. attributes `norm1, attn, norm2, mlp` (timm's ViT Block; also `ls1`/`ls2` LayerScale and
   `drop_path1`/`drop_path2`, applied to the layer's output, when present);
3. the block itself is a sequence of (norm, layer) pairs, e.g.
   nn.ModuleList([nn.ModuleList([norm, attn]), nn.ModuleList([norm, mlp])]).

A layer is called with one tensor (batch, time, dim) and returns one of that shape. A block
with a forward of its own (forms 1 and 2) is run once on random hidden states and compared
with the Pre-Norm reading of its parts, x <- x + T_j(Norm_j(x)) in order: a block that
computes something else (Post-Norm x <- Norm(x + T(x)), a parallel block, another order) is
refused with an error naming it, never wrapped as a different model. Form 2 must pass this
check (attribute names say nothing about the order); form 1 is trusted when its forward
cannot run on hidden states alone (it needs a mask, say).

The wrapped ModuleList is a body: hidden states in, hidden states out (`input = hidden`);
your model's embedding, final norm and head stay yours.
"""

from __future__ import annotations

import torch
from torch import nn

from hcdsl.errors import CompileError
from hcdsl.nn.extern import close, eval_mode, probe_input
from hcdsl.wrap.recognise import Recognised, Sublayer, one_norm


class Branch(nn.Module):
    """A layer followed by its LayerScale and DropPath (timm): drop_path(ls(layer(x)))."""

    def __init__(self, layer: nn.Module, scale: nn.Module | None,
                 drop: nn.Module | None) -> None:
        super().__init__()
        self.layer, self.scale, self.drop = layer, scale, drop

    def forward(self, x):  # noqa: ANN001, ANN201 - a tensor in, a tensor out
        y = self.layer(x)
        if self.scale is not None:
            y = self.scale(y)
        return self.drop(y) if self.drop is not None else y


def _branch(block: nn.Module, layer: nn.Module, i: int) -> nn.Module:
    scale = getattr(block, f"ls{i}", None)
    drop = getattr(block, f"drop_path{i}", None)
    scale = None if isinstance(scale, nn.Identity) else scale
    drop = None if isinstance(drop, nn.Identity) else drop
    return layer if scale is None and drop is None else Branch(layer, scale, drop)


def _has_attributes(block: nn.Module) -> bool:
    return all(hasattr(block, a) for a in ("norm1", "attn", "norm2", "mlp"))


def _pairs(block: nn.Module, index: int) -> list[tuple[str, nn.Module, nn.Module]]:
    """(role, norm, layer) of one block, by the protocol above."""
    if callable(getattr(block, "hc_sublayers", None)):
        return [("layer", norm, layer) for norm, layer in block.hc_sublayers()]
    if _has_attributes(block):
        return [("attn", block.norm1, _branch(block, block.attn, 1)),
                ("mlp", block.norm2, _branch(block, block.mlp, 2))]
    if isinstance(block, (nn.ModuleList, nn.Sequential)) and len(block) and all(
            isinstance(p, (nn.ModuleList, nn.Sequential)) and len(p) == 2 for p in block):
        return [("layer", pair[0], pair[1]) for pair in block]
    raise CompileError(
        f"hcdsl.wrap does not recognise block {index} ({type(block).__name__}): a block has "
        "a method hc_sublayers() giving (norm, layer) pairs, or attributes norm1, attn, "
        "norm2, mlp, or is itself a sequence of (norm, layer) pairs (docs/wrap.md)")


READINGS = {  # what a block of (norm, layer) pairs may compute, by name
    "Pre-Norm x <- x + T(Norm(x))": lambda x, subs: _fold(
        x, subs, lambda h, s: h + s.module(s.norm(h))),
    "Post-Norm x <- Norm(x + T(x))": lambda x, subs: _fold(
        x, subs, lambda h, s: s.norm(h + s.module(h))),
    "a parallel block x <- x + sum_j T_j(Norm_j(x))": lambda x, subs: x + sum(
        s.module(s.norm(x)) for s in subs),
}


def _fold(x: torch.Tensor, subs: list[Sublayer], step) -> torch.Tensor:  # noqa: ANN001
    for s in subs:
        x = step(x, s)
    return x


def check_pre_norm(block: nn.Module, subs: list[Sublayer], index: int, dim: int,
                   declared: bool) -> None:
    """The block's forward computes the Pre-Norm reading of its sub-layers, or a CompileError
    naming the block and what it computes instead (see the module doc)."""
    name = f"block {index} ({type(block).__name__})"
    param = next(block.parameters(), None)
    if param is not None and param.device.type == "meta":
        return  # shapes only: nothing to run
    x = probe_input(dim, block)
    with eval_mode(block), torch.no_grad():
        try:
            got = block(x)
        except Exception as exc:  # noqa: BLE001 - user code: any failure means "cannot tell"
            if declared:
                return  # its hc_sublayers() says what it computes
            raise CompileError(
                f"hcdsl.wrap cannot tell how {name} connects norm1, attn, norm2, mlp: its "
                f"forward fails on hidden states (batch, time, dim) = {tuple(x.shape)} alone "
                f"({type(exc).__name__}: {exc}); if it is a Pre-Norm block, give it a method "
                "hc_sublayers() returning [(norm1, attn), (norm2, mlp)] (docs/wrap.md)"
            ) from None
        if not isinstance(got, torch.Tensor) or got.shape != x.shape:
            seen = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise CompileError(f"hcdsl.wrap: {name} maps hidden states {tuple(x.shape)} to "
                               f"{seen}; a block maps (batch, time, dim) to the same shape")
        readings = {what: read(x, subs) for what, read in READINGS.items()}
    pre = next(iter(readings))
    if close(got, readings[pre]):
        return
    found = next((what for what, want in readings.items() if close(got, want)), None)
    parts = ", ".join(f"({type(s.norm).__name__}, {s.role})" for s in subs)
    computes = (f"computes {found}" if found else
                "computes neither the Pre-Norm nor the Post-Norm reading of its parts (max "
                f"difference {float((got - readings[pre]).abs().max()):.3g} from Pre-Norm)")
    raise CompileError(
        f"hcdsl.wrap: {name} {computes}, with (norm, layer) = {parts}; hcdsl.wrap keeps "
        "each block's norms as its layers' pre-norms, so it wraps Pre-Norm blocks only, "
        "x <- x + T_j(Norm_j(x)) for each sub-layer in order; wrapping this block would be "
        "a different model (docs/wrap.md)")


def _width(norm: nn.Module, where: str) -> int:
    shape = getattr(norm, "normalized_shape", None)
    if shape is not None:
        return int(shape[-1])
    weight = getattr(norm, "weight", None)
    if weight is not None:
        return int(weight.shape[-1])
    raise CompileError(f"hcdsl.wrap cannot tell the width of {where}: a norm without "
                       "normalized_shape or weight")


def recognise_blocks(blocks: nn.ModuleList) -> Recognised:
    if len(blocks) == 0:
        raise CompileError("hcdsl.wrap: the ModuleList is empty: no blocks to connect")
    out = [[Sublayer(role, norm, layer) for role, norm, layer in _pairs(b, i)]
           for i, b in enumerate(blocks)]
    for i, b in enumerate(out):
        if not b:
            raise CompileError(f"hcdsl.wrap: block {i} has no sub-layers")
    norm = one_norm([(f"block {i} {s.role}", s.norm) for i, b in enumerate(out) for s in b])
    dims = {_width(s.norm, f"block {i} {s.role}") for i, b in enumerate(out) for s in b}
    if len(dims) != 1:
        raise CompileError(f"hcdsl.wrap: the blocks' norms have different widths "
                           f"{sorted(dims)}: a spec has one width")
    dim = dims.pop()
    for i, (block, subs) in enumerate(zip(blocks, out)):
        declared = callable(getattr(block, "hc_sublayers", None))
        if declared or _has_attributes(block):  # form 3, pairs, has no forward of its own
            check_pre_norm(block, subs, i, dim, declared)
    return Recognised(what=f"ModuleList of {len(out)} blocks", name="blocks",
                      dim=dim, norm=norm, blocks=out)
