"""Spec texts shared by the prover's regression tests (tests/test_prove_*.py)."""

from __future__ import annotations


def spec(connect: str, *, norm: str = "", layers: str = "", body: str = "repeat 2 [attn, ffn]",
         prelude: str = "", dim: int = 16, extra: str = "") -> str:
    layers = layers or "layer attn = attention(heads=2)\n  layer ffn = mlp"
    return (f"{prelude}\nmodel m {{\n  dim = {dim}\n  vocab = 64\n  {norm}\n  {extra}\n"
            f"  {layers}\n  body = {body}\n  connect {connect}\n}}\n")
