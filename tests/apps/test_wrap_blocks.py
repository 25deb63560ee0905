"""hcdsl.wrap on an nn.ModuleList of your own pre-norm blocks (a ViT's, say): the three
forms of the protocol, equal at init for the families whose init is Pre-Norm, a body from
hidden states to hidden states, and clear errors for what is not recognised."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hcdsl
from hcdsl.errors import CompileError, HcError
from tests.helpers import assert_same

DIM = 16


class SelfAttention(nn.Module):
    """Bidirectional attention (a ViT's): one input."""

    def __init__(self, dim: int, heads: int = 2) -> None:
        super().__init__()
        self.heads, self.qkv, self.proj = heads, nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, d = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.proj(y.transpose(1, 2).reshape(B, T, d))


def mlp(dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))


class LayerScale(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), 0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class ViTBlock(nn.Module):
    """timm's Block: x + ls1(attn(norm1(x))), then x + ls2(mlp(norm2(x)))."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm1, self.attn, self.ls1 = nn.LayerNorm(dim), SelfAttention(dim), LayerScale(dim)
        self.norm2, self.mlp, self.ls2 = nn.LayerNorm(dim), mlp(dim), LayerScale(dim)
        self.drop_path1 = self.drop_path2 = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class Sublayers(nn.Module):
    """A block that lists its (norm, layer) pairs: three sub-layers here."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.n1, self.a, self.n2, self.b, self.n3, self.c = (
            nn.RMSNorm(dim), SelfAttention(dim), nn.RMSNorm(dim), mlp(dim), nn.RMSNorm(dim),
            mlp(dim))

    def hc_sublayers(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.n1, self.a), (self.n2, self.b), (self.n3, self.c)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for norm, layer in self.hc_sublayers():
            x = x + layer(norm(x))
        return x


def pairs(dim: int) -> nn.ModuleList:
    return nn.ModuleList([nn.ModuleList([nn.LayerNorm(dim), SelfAttention(dim)]),
                          nn.ModuleList([nn.LayerNorm(dim), mlp(dim)])])


def run_pairs(block: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    for norm, layer in block:
        x = x + layer(norm(x))
    return x


FORMS = {
    "vit": (lambda: ViTBlock(DIM), lambda b, x: b(x)),
    "hc_sublayers": (lambda: Sublayers(DIM), lambda b, x: b(x)),
    "pairs": (lambda: pairs(DIM), run_pairs),
}
AT_INIT = ["residual", "frac(m=4, dynamic)", "denseformer", "mudd(ways=1)",
           "mhc(n=4, identity, readout=mean)"]


def hidden(seed: int = 0) -> torch.Tensor:
    return torch.randn(2, 7, DIM, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("connection", AT_INIT)
def test_equal_at_init(form: str, connection: str, one_thread: None) -> None:
    make, run = FORMS[form]
    torch.manual_seed(0)
    blocks = nn.ModuleList([make() for _ in range(3)])
    x = hidden()
    want = x
    for b in blocks:
        want = run(b, want)
    wrapped = hcdsl.wrap(blocks, connection)
    with torch.no_grad():
        assert (wrapped(x) - want).abs().max() <= 1e-5


def test_a_body_of_blocks(one_thread: None) -> None:
    """Hidden states in and out; HC's readout is n·h (your final norm follows it); both
    backends agree; the text says input = hidden."""
    torch.manual_seed(0)
    blocks = nn.ModuleList([ViTBlock(DIM) for _ in range(2)])
    pre = hcdsl.wrap(blocks, "residual")
    hc = hcdsl.wrap(blocks, "hyper(n=2)")
    x = hidden()
    with torch.no_grad():
        assert (hc(x) - 2 * pre(x)).abs().max() <= 1e-5
    assert "input = hidden" in hc.hc_text and "ls1" not in hc.hc_text
    assert_same(hcdsl.wrap(blocks, "hyper(n=2, dynamic)", seed=0),
                hcdsl.wrap(blocks, "hyper(n=2, dynamic)", seed=0, backend="reference"), x)
    out = pre(x, return_hidden=True)
    assert len(out.hidden) == 4 and torch.equal(out.hidden[0], x)


def test_unrecognised_blocks_are_named() -> None:
    with pytest.raises(CompileError, match=r"does not recognise block 1 \(Linear\): a block "
                                           r"has a method hc_sublayers\(\)"):
        hcdsl.wrap(nn.ModuleList([ViTBlock(DIM), nn.Linear(DIM, DIM)]), "residual")
    with pytest.raises(CompileError, match="the ModuleList is empty"):
        hcdsl.wrap(nn.ModuleList(), "residual")


def test_norms_hcdsl_cannot_state_are_errors() -> None:
    odd = ViTBlock(DIM)
    odd.norm2 = nn.BatchNorm1d(DIM)
    with pytest.raises(CompileError, match=r"does not recognise the norm of block 0 mlp: "
                                           r"BatchNorm1d"):
        hcdsl.wrap(nn.ModuleList([odd]), "residual")
    other = ViTBlock(DIM)
    other.norm2 = nn.LayerNorm(DIM, eps=1e-6)
    with pytest.raises(CompileError, match=r"the norm of block 0 mlp \(layernorm, eps 1e-06"):
        hcdsl.wrap(nn.ModuleList([other]), "residual")


def test_mudd_needs_q_k_v_layers() -> None:
    with pytest.raises(HcError, match="whose input ports are \\(x\\)"):
        hcdsl.wrap(nn.ModuleList([ViTBlock(DIM)]), "mudd")


# --- the arrangement a block computes, read from its forward ---------------------------------


class PostNormBlock(ViTBlock):
    """The original Transformer's order with a ViT's attribute names: x <- norm(x + T(x))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.ls1(self.attn(x)))
        return self.norm2(x + self.ls2(self.mlp(x)))


class ParallelBlock(ViTBlock):
    """GPT-J's parallel block with two norms: x + attn(norm1(x)) + mlp(norm2(x))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.ls1(self.attn(self.norm1(x))) + self.ls2(self.mlp(self.norm2(x)))


class SwappedBlock(ViTBlock):
    """Pre-Norm, but the MLP runs before the attention."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls2(self.mlp(self.norm2(x)))
        return x + self.ls1(self.attn(self.norm1(x)))


class MaskedBlock(ViTBlock):
    """A forward that needs more than the hidden states."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return super().forward(x)


def post_norm_reference(blocks: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    """Post-Norm written out by hand, independent of the blocks' forward."""
    for b in blocks:
        x = F.layer_norm(x + b.attn(x) * b.ls1.gamma, (DIM,), b.norm1.weight, b.norm1.bias)
        x = F.layer_norm(x + b.mlp(x) * b.ls2.gamma, (DIM,), b.norm2.weight, b.norm2.bias)
    return x


def test_pre_norm_blocks_are_checked_against_a_hand_written_pre_norm() -> None:
    """The check passes a real Pre-Norm block (with dropout on while training: the probe runs
    in eval mode) and the wrapped model equals Pre-Norm written by hand."""
    torch.manual_seed(0)
    blocks = nn.ModuleList([ViTBlock(DIM) for _ in range(2)])
    blocks[0].drop_path1 = nn.Dropout(0.5)
    wrapped = hcdsl.wrap(blocks, "residual").eval()
    x = hidden()
    want = x
    for b in blocks:
        want = want + b.attn(F.layer_norm(want, (DIM,), b.norm1.weight, b.norm1.bias)) * 0.5
        want = want + b.mlp(F.layer_norm(want, (DIM,), b.norm2.weight, b.norm2.bias)) * 0.5
    with torch.no_grad():
        assert (wrapped(x) - want).abs().max() <= 1e-5
    assert blocks[0].drop_path1.training  # the caller's modes are left as they were


def test_post_norm_blocks_are_refused_naming_the_block() -> None:
    """norm1/attn/norm2/mlp in the Post-Norm order: wrapping them as Pre-Norm gave a
    different model (max difference 3.13); now an error names the block and what it
    computes."""
    torch.manual_seed(0)
    blocks = nn.ModuleList([ViTBlock(DIM), PostNormBlock(DIM)])
    x = hidden()
    with torch.no_grad():  # the oracle: the block really is Post-Norm
        assert (blocks[1](x) - post_norm_reference(blocks[1:], x)).abs().max() <= 1e-5
    with pytest.raises(CompileError, match=r"hcdsl.wrap: block 1 \(PostNormBlock\) computes "
                                           r"Post-Norm x <- Norm\(x \+ T\(x\)\), with \(norm, "
                                           r"layer\) = \(LayerNorm, attn\), \(LayerNorm, mlp\);"
                                           r" .* wraps Pre-Norm blocks only"):
        hcdsl.wrap(blocks, "residual")


@pytest.mark.parametrize("block, what", [
    (ParallelBlock, r"computes a parallel block x <- x \+ sum_j T_j\(Norm_j\(x\)\)"),
    (SwappedBlock, r"computes neither the Pre-Norm nor the Post-Norm reading of its parts "
                   r"\(max difference [0-9.e+-]+ from Pre-Norm\)"),
])
def test_blocks_in_another_order_are_refused(block: type[nn.Module], what: str) -> None:
    torch.manual_seed(0)
    with pytest.raises(CompileError, match=rf"block 0 \({block.__name__}\) {what}"):
        hcdsl.wrap(nn.ModuleList([block(DIM)]), "residual")


def test_a_block_whose_forward_cannot_run_alone() -> None:
    """Attribute names alone cannot tell the order: refused, with the way out; a block that
    declares hc_sublayers() is taken at its word."""
    with pytest.raises(CompileError, match=r"cannot tell how block 0 \(MaskedBlock\) connects "
                                           r"norm1, attn, norm2, mlp: .*TypeError.*give it a "
                                           r"method hc_sublayers\(\)"):
        hcdsl.wrap(nn.ModuleList([MaskedBlock(DIM)]), "residual")

    class Declared(MaskedBlock):
        def hc_sublayers(self) -> list[tuple[nn.Module, nn.Module]]:
            return [(self.norm1, nn.Sequential(self.attn, self.ls1)),
                    (self.norm2, nn.Sequential(self.mlp, self.ls2))]

    torch.manual_seed(0)
    block = Declared(DIM)
    x = hidden()
    with torch.no_grad():
        assert (hcdsl.wrap(nn.ModuleList([block]), "residual")(x)
                - ViTBlock.forward(block, x)).abs().max() <= 1e-5


def test_a_declared_block_whose_forward_disagrees_is_refused() -> None:
    class Liar(PostNormBlock):
        def hc_sublayers(self) -> list[tuple[nn.Module, nn.Module]]:
            return [(self.norm1, nn.Sequential(self.attn, self.ls1)),
                    (self.norm2, nn.Sequential(self.mlp, self.ls2))]

    with pytest.raises(CompileError, match=r"block 0 \(Liar\) computes Post-Norm"):
        hcdsl.wrap(nn.ModuleList([Liar(DIM)]), "residual")
