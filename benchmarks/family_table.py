"""The README's family table: every connection family on one reference model.

    .venv/bin/python benchmarks/family_table.py [--vocab 50304]

Reference model: d = 512, 12 blocks of [attention(heads=8), mlp], vocab 50304, layernorm.
For each family: extra parameters over Pre-Norm (hcdsl.stats, meta device), and the measured
max |logits - Pre-Norm logits| at init with every shared layer weight copied from the Pre-Norm
model (random tokens, batch 2 x 16). "yes" means equal up to float rounding (<= 5e-6), "eps"
that the hidden states are equal and the logits differ only by the final norm's eps (HC's
sum readout makes the final hidden n x h; LayerNorm(n h; eps) = LayerNorm(h; eps / n^2);
tests/test_init.py checks this exactly), "no" otherwise.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import hcdsl
from hcdsl.spec import ConnectionSpec

BASE = """{prelude}
model reference {{
  dim = 512
  vocab = {vocab}
  layer attn = attention(heads=8)
  layer ffn = mlp(hidden=2048)
  body = repeat 12 [attn, ffn]
  connect {connect}
}}
"""
CUSTOM = Path(__file__).resolve().parents[1] / "specs" / "custom"


def defined(name: str) -> str:
    """The `connection` block of specs/custom/NAME.hc (everything before its model)."""
    text = (CUSTOM / f"{name}.hc").read_text()
    return text[: text.index("\nmodel ")]

FAMILIES: list[tuple[str, str, str]] = [
    ("Pre-Norm", "residual", ""),
    ("Post-Norm", "residual(post)", ""),
    ("parallel block (GPT-J)", "parallel(shared)", ""),
    ("parallel block (NeoX)", "parallel(separate)", ""),
    ("parallel, residual per layer (HC App. F)", "parallel(separate, residual=each)", ""),
    ("SHC x4", "hyper(n=4, static)", ""),
    ("DHC x4", "hyper(n=4, dynamic)", ""),
    ("SFC x4", "frac(m=4, static)", ""),
    ("DFC x4", "frac(m=4, dynamic)", ""),
    ("mHC x4 (paper init)", "mhc(n=4)", ""),
    ("mHC x4 (identity init)", "mhc(n=4, identity, readout=mean)", ""),
    ("MUDD", "mudd", ""),
    ("MUDD static", "mudd(static)", ""),
    ("DDFormer", "mudd(ways=1)", ""),
    ("DenseFormer 1x1", "denseformer", ""),
    ("DenseFormer 4x5", "denseformer(k=4, p=5)", ""),
    ("attention residuals", "attnres", ""),
    ("Block AttnRes", "attnres(block)", ""),
    ("LAuReL-RW (user-defined)", "laurel_rw", defined("laurel_rw")),
    ("LAuReL-LR, r = 8 (user-defined)", "laurel_lr", defined("laurel_lr")),
    ("value residual (user-defined)", "value_residual", defined("value_residual")),
    ("ResiDual (user-defined)", "residual_dual", defined("residual_dual")),
    ("attention residuals (user-defined)", "attention_residuals", defined("attention_residuals")),
]


def spec_text(connect: str, prelude: str, vocab: int) -> str:
    return BASE.format(connect=connect, prelude=prelude, vocab=vocab)


def init_difference(text: str, pre: torch.nn.Module, tokens: torch.Tensor) -> float:
    model = hcdsl.compile(text)
    own = model.state_dict()
    shared = {k: v for k, v in pre.state_dict().items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(shared, strict=False)
    with torch.no_grad():
        return (model(tokens) - pre(tokens)).abs().max().item()


def verdict(diff: float, eps_only: bool) -> str:
    if diff <= 5e-6:
        return f"yes ({diff:.1e})"
    return f"eps ({diff:.1e})" if eps_only else f"no ({diff:.1e})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocab", type=int, default=50304)
    args = ap.parse_args()
    torch.manual_seed(0)
    tokens = torch.randint(0, args.vocab, (2, 16))
    pre = hcdsl.compile(spec_text("residual", "", args.vocab))
    print("| family | connect | extra params | extra % | equals Pre-Norm at init (max abs diff) |")
    print("|---|---|---:|---:|---|")
    for name, connect, prelude in FAMILIES:
        text = spec_text(connect, prelude, args.vocab)
        st = hcdsl.stats(text)
        diff = init_difference(text, pre, tokens)
        # the sum readouts of HC and mHC: equal but for the final norm's eps (checked: eps=0)
        eps_only = diff < 1e-3 and ("hyper" in connect or "readout=sum" in connect)
        print(f"| {name} | `{connect}` | {st.extra_params:,} | {st.extra_percent:+.3f}% | "
              f"{verdict(diff, eps_only)} |")


if __name__ == "__main__":
    main()
