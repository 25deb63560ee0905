"""Differential testing of the compiler: a random small valid spec, built four ways (fx and
reference backends, with and without the pass pipeline) from one state_dict, must give the
same logits and the same gradients; the oracle is the reference interpreter without passes.

Specs come from the prover's soundness generator (tests/soundness.py: residual, Post-Norm,
parallel, fixed/literal/learned HC, FC, mHC, DenseFormer, MUDD, attention residuals, a user
connection) and a few more families and options (dynamic HC and FC with several streams,
MUDD's variants, DenseFormer's dilation and period, block attention residuals, LAuReL-LR,
the value residual).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import torch

import hcdsl
from hcdsl.passes.pipeline import DEFAULT
from helpers import perturb
from soundness import Base, base_spec

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}
EXTRA = ["hyper(n=3, dynamic)", "frac(m=2, static)", "frac(m=4, dynamic, tanh=false)",
         "mudd", "mudd(static)", "mudd(k=2, p=2)", "mudd(window=1, prepost)",
         "denseformer(k=2, p=2)", "attnres(block)", "mhc(n=3, identity, readout=mean)",
         "laurel_lr", "value_res"]
PRELUDES = {
    "laurel_lr": "connection laurel_lr {\n  lowrank = 2\n  param a = scalar(init=1, "
                 "bound=double)\n  all = [[0, a], [1, 1]]\n}\n",
    "value_res": "connection value_res {\n  param l = scalar(init=0.5, bound=unit)\n"
                 "  value_residual = [l, 0.5]\n  all = [[0, 1], [1, 1]]\n}\n",
}
WAYS = [("fx", DEFAULT), ("fx", None), ("reference", DEFAULT)]  # each against the oracle


def random_spec(seed: int) -> str:
    """A random small valid spec (module doc), reproducible from the seed."""
    rng = random.Random(seed)
    base = base_spec(rng)
    if rng.random() < 0.4:
        connect = rng.choice(EXTRA)
        base = base.copy(connect=connect, prelude=PRELUDES.get(connect, ""))
        if connect.startswith("mudd") or connect == "value_res":
            base = _attention_first(base)  # MUDD's q/k/v ways and V residuals need one
    if "attention" in str(base.layers) and rng.random() < 0.3:
        base = base.copy(layers=[(n, c.replace("attention(heads=2)", "attention(heads=2, "
                                               "bias=true)")) for n, c in base.layers])
    return base.text()


def _attention_first(base: Base) -> Base:
    """base with an attention layer leading every block (added when it has none)."""
    layers = list(base.layers)
    attn = next((n for n, c in layers if c.startswith("attention")), None)
    if attn is None:
        attn = "attn"
        layers.insert(0, (attn, "attention(heads=2)"))
    body = [[attn] + [x for x in block if x != attn] for block in base.body]
    if len(body) < 2:
        body = body * 2  # a value residual mixes the first attention into later ones
    return base.copy(layers=layers, body=body)


@dataclass
class Difference:
    way: str  # e.g. "fx, passes" vs the oracle
    logits: float  # max |difference| of the logits
    grads: float  # max over parameters of |difference| / max(1, |oracle gradient|)
    worst: str  # the parameter with the largest gradient difference
    tol: float

    @property
    def ok(self) -> bool:
        return self.logits <= self.tol and self.grads <= self.tol


def _grads(model: torch.nn.Module, tokens: torch.Tensor, probe: torch.Tensor):
    model.zero_grad(set_to_none=True)
    out = model(tokens)
    (out * probe).sum().backward()
    return out.detach(), {n: p.grad for n, p in model.named_parameters()}


def compare(text: str, dtype: torch.dtype, seed: int = 0,
            build: Callable[..., torch.nn.Module] = hcdsl.compile) -> list[Difference]:
    """The three ways of building `text` against the oracle, in dtype (module doc); `build`
    builds the three (the test that the comparison can fail passes a broken one)."""
    oracle = hcdsl.compile(text, backend="reference", passes=None, seed=seed, dtype=dtype)
    perturb(oracle, seed=seed + 1)  # gates and mixes off their init (zero at init hides)
    state = oracle.state_dict()
    vocab = oracle.hc_ir.payload("head").vocab
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, vocab, (2, 7), generator=g)
    probe = torch.randn(2, 7, vocab, generator=g, dtype=dtype)
    out, want = _grads(oracle, tokens, probe)
    tol = TOL[dtype]
    diffs = []
    for backend, passes in WAYS:
        model = build(text, backend=backend, passes=passes, seed=seed + 7, dtype=dtype)
        model.load_state_dict(state, strict=True)  # any pass setting: the same state_dict
        got_out, got = _grads(model, tokens, probe)
        worst, worst_name = 0.0, ""
        for name, w in want.items():
            h = got[name]
            w = torch.zeros_like(state[name]) if w is None else w  # unused: no gradient
            h = torch.zeros_like(state[name]) if h is None else h
            d = ((h - w).abs().max() / max(1.0, w.abs().max().item())).item()
            if d > worst:
                worst, worst_name = d, name
        diffs.append(Difference(f"{backend}, {'passes' if passes else 'no passes'}",
                                (got_out - out).abs().max().item(), worst, worst_name, tol))
    return diffs
