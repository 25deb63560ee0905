"""An nn.ModuleList of your own pre-norm blocks (a ViT, a custom decoder), by protocol.

Each block computes x <- x + T_j(Norm_j(x)) for its sub-layers j in order, and says which
they are in one of three ways (tried in this order):

1. a method `hc_sublayers()` returning [(norm, layer), ...];
2. attributes `norm1, attn, norm2, mlp` (timm's ViT Block; also `ls1`/`ls2` LayerScale and
   `drop_path1`/`drop_path2`, applied to the layer's output, when present);
3. the block itself is a sequence of (norm, layer) pairs, e.g.
   nn.ModuleList([nn.ModuleList([norm, attn]), nn.ModuleList([norm, mlp])]).

A layer is called with one tensor (batch, time, dim) and returns one of that shape. The
wrapped ModuleList is a body: hidden states in, hidden states out (`input = hidden`); your
model's embedding, final norm and head stay yours.
"""

from __future__ import annotations

from torch import nn

from hcdsl.errors import CompileError
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


def _pairs(block: nn.Module, index: int) -> list[tuple[str, nn.Module, nn.Module]]:
    """(role, norm, layer) of one block, by the protocol above."""
    if callable(getattr(block, "hc_sublayers", None)):
        return [("layer", norm, layer) for norm, layer in block.hc_sublayers()]
    if all(hasattr(block, a) for a in ("norm1", "attn", "norm2", "mlp")):
        return [("attn", block.norm1, _branch(block, block.attn, 1)),
                ("mlp", block.norm2, _branch(block, block.mlp, 2))]
    if isinstance(block, (nn.ModuleList, nn.Sequential)) and len(block) and all(
            isinstance(p, (nn.ModuleList, nn.Sequential)) and len(p) == 2 for p in block):
        return [("layer", pair[0], pair[1]) for pair in block]
    raise CompileError(
        f"hcdsl.wrap does not recognise block {index} ({type(block).__name__}): a block has "
        "a method hc_sublayers() giving (norm, layer) pairs, or attributes norm1, attn, "
        "norm2, mlp, or is itself a sequence of (norm, layer) pairs (docs/wrap.md)")


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
    return Recognised(what=f"ModuleList of {len(out)} blocks", name="blocks",
                      dim=dims.pop(), norm=norm, blocks=out)
