"""Spec texts shared by the prover's regression tests (tests/test_prove_*.py)."""

from __future__ import annotations

from helpers import attn_ffn, model_text


def spec(connect: str, *, norm: str = "", layers: str = "", body: str = "repeat 2 [attn, ffn]",
         prelude: str = "", dim: int = 16, extra: str = "") -> str:
    return model_text(connect, dim=dim, vocab=64, settings=f"{norm}\n{extra}",
                      layers=layers or attn_ffn(2, "mlp"), body=body, prelude=prelude)
