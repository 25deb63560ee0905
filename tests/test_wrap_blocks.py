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
