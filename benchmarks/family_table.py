"""The README's family table: every connection family on one reference model.

    .venv/bin/python benchmarks/family_table.py [--vocab 50304]

Reference model: d = 512, 12 blocks of [attention(heads=8), mlp], vocab 50304, layernorm.
For each family: extra parameters over Pre-Norm (hcdsl.stats, meta device); the prover's
verdict at init against Pre-Norm (`hcdsl prove pre.hc fam.hc --at-init`: "yes", "yes, up to
scale" when it needs "norm is scale-invariant", i.e. the states are a positive multiple of
Pre-Norm's, "no", or "-" where the prover has no rule); and the measured max |logits -
Pre-Norm logits| at init with every shared layer weight copied from the Pre-Norm model
(random tokens, batch 2 x 16): up to scale, the logits differ through the norms' eps only.
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
    model = hcdsl.compile(text, seed=0)
    own = model.state_dict()
    shared = {k: v for k, v in pre.state_dict().items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(shared, strict=False)
    with torch.no_grad():
        return (model(tokens) - pre(tokens)).abs().max().item()


def proven(pre: str, text: str) -> str:
    r = hcdsl.prove(pre, text, at_init=True)
    if r.verdict == "UNKNOWN":
        return "unknown"
    if not r.equivalent:
        refused = [x.split(":")[0] for x in r.refused if "side condition fails" in x]
        return "no" + (f" ({refused[0]}: ε not negligible)" if refused else "")
    return "yes, up to scale" if r.assumptions else "yes"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocab", type=int, default=50304)
    args = ap.parse_args()
    torch.manual_seed(0)
    tokens = torch.randint(0, args.vocab, (2, 16))
    pre = hcdsl.compile(spec_text("residual", "", args.vocab), seed=0)
    pre_text = spec_text("residual", "", args.vocab)
    print("| family | connect | extra params | extra % | = Pre-Norm at init (prover) "
          "| max abs diff of logits at init |")
    print("|---|---|---:|---:|---|---:|")
    for name, connect, prelude in FAMILIES:
        text = spec_text(connect, prelude, args.vocab)
        st = hcdsl.stats(text)
        diff = init_difference(text, pre, tokens)
        print(f"| {name} | `{connect}` | {st.extra_params:,} | {st.extra_percent:+.3f}% | "
              f"{proven(pre_text, text)} | {diff:.1e} |")


if __name__ == "__main__":
    main()
