"""What hcdsl's generated code costs against hand-written PyTorch for the same architecture.

    .venv/bin/python benchmarks/speed.py            # 2 CPU cores: ~3 min (warm inductor cache), ~7.5 cold
    .venv/bin/python benchmarks/speed.py --quick    # ~15 s check: 2 blocks, seq 64, eager only

Model: d = 256, 4 blocks of [attention(heads=4), mlp(hidden=1024)], vocab 4096, LayerNorm,
batch 8 x seq 128, fp32 (all flags). Each candidate is timed as one training step without the
optimizer: forward, cross-entropy on random tokens (the same tokens for every candidate) and
backward. Each runs eager and as `torch.compile(loss_fn, fullgraph=True)`.

Candidates:
  hcdsl Pre-Norm        `connect residual`
  hand Pre-Norm         nanoGPT-style Block (x += attn(ln_1(x)); x += mlp(ln_2(x))) built from
                        hcdsl's own layer modules, weights copied from the hcdsl model
  hcdsl DHC x4          `connect hyper(n=4, dynamic)`
  hand DHC x4           the HC paper's Algorithm 2 (App. H: width_connection / depth_connection),
                        same layer modules, weights copied from the hcdsl model
  hcdsl mHC x4          `connect mhc(n=4)`   (no hand-written counterpart)
  hcdsl MUDD            `connect mudd`       (no hand-written counterpart)
Hand-written models get the hcdsl model's weights, so their logits must match (checked to
1e-5 and printed): only the wiring differs.

The machine may be noisy, so the result is RATIOS taken in one run: the candidates are timed
round-robin (N steps each, R rounds), each candidate's figure is the median over the rounds of
its mean ms/step, and every ratio is to the hand-written Pre-Norm in the same mode. The
hcdsl-vs-hand-written ratios are also given paired: the median over rounds of the ratio of the
two candidates' times in that round (neighbours in time see the same machine load).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

import hcdsl
from hcdsl.bench.measure import sync, train_step
from hcdsl.nn.layers import MLP, Attention, Embedding, Unembed, make_norm

SPEC = """
model bench {{
  dim = {dim}
  vocab = {vocab}
  norm = layernorm
  layer attn = attention(heads={heads})
  layer ffn  = mlp(hidden={hidden})
  body = repeat {blocks} [attn, ffn]
  connect {connect}
}}
"""


# ---------------------------------------------------------------- hand-written models

class Block(nn.Module):
    """nanoGPT's Pre-Norm block, with hcdsl's layer modules."""

    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.ln_1 = make_norm("layernorm", dim, True, 1e-5)
        self.attn = Attention(dim, heads)
        self.ln_2 = make_norm("layernorm", dim, True, 1e-5)
        self.mlp = MLP(dim, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln_1(x)
        x = x + self.attn(h, h, h)
        x = x + self.mlp(self.ln_2(x))
        return x


class HandPreNorm(nn.Module):
    def __init__(self, dim: int, vocab: int, heads: int, hidden: int, blocks: int) -> None:
        super().__init__()
        self.wte = Embedding(vocab, dim)
        self.h = nn.ModuleList(Block(dim, heads, hidden) for _ in range(blocks))
        self.ln_f = make_norm("layernorm", dim, True, 1e-5)
        self.lm_head = Unembed(vocab, dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.wte(tokens)
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


class HyperConnection(nn.Module):
    """HC paper (arXiv 2409.19606) Appendix H, Algorithm 2, dynamic variant, as printed
    (LayerNorm for the dynamic branch; tanh)."""

    def __init__(self, dim: int, rate: int, layer_id: int) -> None:
        super().__init__()
        self.rate, self.layer_id = rate, layer_id
        self.static_beta = nn.Parameter(torch.ones((rate,)))
        init_alpha0 = torch.zeros((rate, 1))
        init_alpha0[layer_id % rate, 0] = 1.0
        self.static_alpha = nn.Parameter(torch.cat([init_alpha0, torch.eye(rate)], dim=1))
        self.dynamic_alpha_fn = nn.Parameter(torch.zeros((dim, rate + 1)))
        self.dynamic_alpha_scale = nn.Parameter(torch.ones(1) * 0.01)
        self.dynamic_beta_fn = nn.Parameter(torch.zeros((dim,)))
        self.dynamic_beta_scale = nn.Parameter(torch.ones(1) * 0.01)
        self.layer_norm = make_norm("layernorm", dim, True, 1e-5)

    def width_connection(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        norm_h = self.layer_norm(h)
        wc_weight = torch.tanh(norm_h @ self.dynamic_alpha_fn)
        alpha = wc_weight * self.dynamic_alpha_scale + self.static_alpha[None, None, ...]
        dc_weight = torch.tanh(norm_h @ self.dynamic_beta_fn)
        beta = dc_weight * self.dynamic_beta_scale + self.static_beta[None, None, ...]
        mix_h = alpha.transpose(-1, -2) @ h  # (B, L, n+1, D)
        return mix_h, beta

    def depth_connection(self, mix_h: torch.Tensor, h_o: torch.Tensor,
                         beta: torch.Tensor) -> torch.Tensor:
        return torch.einsum("blh,bln->blnh", h_o, beta) + mix_h[..., 1:, :]


class HCLayer(nn.Module):
    """One layer with its hyper-connection: the layer is Pre-Norm inside (norm then T)."""

    def __init__(self, dim: int, rate: int, layer_id: int, layer: nn.Module) -> None:
        super().__init__()
        self.hc = HyperConnection(dim, rate, layer_id)
        self.norm = make_norm("layernorm", dim, True, 1e-5)
        self.layer = layer

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        mix_h, beta = self.hc.width_connection(h)
        x = self.norm(mix_h[..., 0, :])
        out = self.layer(x, x, x) if isinstance(self.layer, Attention) else self.layer(x)
        return self.hc.depth_connection(mix_h, out, beta)


class HandDHC(nn.Module):
    def __init__(self, dim: int, vocab: int, heads: int, hidden: int, blocks: int,
                 rate: int = 4) -> None:
        super().__init__()
        self.rate = rate
        self.wte = Embedding(vocab, dim)
        layers: list[nn.Module] = []
        for b in range(blocks):
            layers.append(HCLayer(dim, rate, 2 * b, Attention(dim, heads)))
            layers.append(HCLayer(dim, rate, 2 * b + 1, MLP(dim, hidden)))
        self.layers = nn.ModuleList(layers)
        self.ln_f = make_norm("layernorm", dim, True, 1e-5)
        self.lm_head = Unembed(vocab, dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.wte(tokens)
        h = x.unsqueeze(-2).expand(-1, -1, self.rate, -1)  # n copies of the embedding
        for layer in self.layers:
            h = layer(h)
        return self.lm_head(self.ln_f(h.sum(-2)))  # readout: the sum of the streams


# ---------------------------------------------------------------- weight mapping

def _copy(dst: dict, src: dict, pairs: list[tuple[str, str]]) -> None:
    for d, s in pairs:
        for k, v in src.items():
            if k == s or k.startswith(s + "."):
                dst[d + k[len(s):]] = v


def prenorm_from_hcdsl(sd: dict, blocks: int) -> dict:
    out: dict = {}
    pairs = [("wte", "embed"), ("ln_f", "final_norm"), ("lm_head", "head")]
    for b in range(blocks):
        a, m = 2 * b + 1, 2 * b + 2
        pairs += [(f"h.{b}.ln_1", f"L{a}_norm"), (f"h.{b}.attn", f"L{a}_attn"),
                  (f"h.{b}.ln_2", f"L{m}_norm"), (f"h.{b}.mlp", f"L{m}_ffn")]
    _copy(out, sd, pairs)
    return out


def dhc_from_hcdsl(sd: dict, blocks: int) -> dict:
    out: dict = {}
    pairs = [("wte", "embed"), ("ln_f", "final_norm"), ("lm_head", "head")]
    for i in range(2 * blocks):
        k = i + 1
        layer = f"L{k}_attn" if i % 2 == 0 else f"L{k}_ffn"
        pairs += [(f"layers.{i}.norm", f"L{k}_norm"), (f"layers.{i}.layer", layer),
                  (f"layers.{i}.hc.layer_norm", f"L{k}_coef.norm")]
        c = f"L{k}_coef"
        out[f"layers.{i}.hc.static_beta"] = sd[f"{c}.static_gain"]
        out[f"layers.{i}.hc.static_alpha"] = sd[f"{c}.static_mix"]
        out[f"layers.{i}.hc.dynamic_beta_fn"] = sd[f"{c}.w_gain"]
        out[f"layers.{i}.hc.dynamic_alpha_fn"] = sd[f"{c}.w_mix"]
        out[f"layers.{i}.hc.dynamic_beta_scale"] = sd[f"{c}.s_gain"].reshape(1)
        out[f"layers.{i}.hc.dynamic_alpha_scale"] = sd[f"{c}.s_mix"].reshape(1)
    _copy(out, sd, pairs)
    return out


# ---------------------------------------------------------------- timing

@dataclass
class Candidate:
    name: str
    mode: str  # eager | compiled
    model: nn.Module
    step: Callable[[], float] = field(repr=False, default=None)  # type: ignore[assignment]
    times: list[float] = field(default_factory=list)  # ms/step, one per round


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def add_model_args(ap: argparse.ArgumentParser) -> None:
    """The model's shape and the timed batch (profile_connections.py takes the same)."""
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--blocks", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    add_model_args(ap)
    ap.add_argument("--steps", "-N", type=int, default=10, help="timed steps per round")
    ap.add_argument("--repeats", "-R", type=int, default=5, help="round-robin rounds")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per candidate")
    ap.add_argument("--no-compile", action="store_true", help="eager candidates only")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    ap.add_argument("--skip", default="", help="comma-separated: mhc, mudd (mHC compiles in "
                    "~15-45 s cold on 2 cores; skipping it saves that)")
    ap.add_argument("--quick", action="store_true",
                    help="1-minute check: 2 blocks, seq 64, 5 steps x 5 rounds, no compile")
    args = ap.parse_args()
    if args.quick:
        args.blocks, args.seq, args.steps, args.repeats, args.warmup = 2, 64, 5, 5, 1
        args.no_compile = True
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    t_start = time.perf_counter()

    print("command: " + " ".join([sys.executable.rsplit("/", 1)[-1]] + sys.argv))
    print(f"torch {torch.__version__}, python {platform.python_version()}, "
          f"{platform.machine()}, device {device}, threads {torch.get_num_threads()}")
    print(f"model: d={args.dim}, {args.blocks} blocks of [attention(heads={args.heads}), "
          f"mlp(hidden={args.hidden})], vocab {args.vocab}, layernorm, fp32")
    print(f"tokens: batch {args.batch} x seq {args.seq}; timing: {args.steps} steps x "
          f"{args.repeats} rounds, round-robin, warm-up {args.warmup} step(s) "
          f"(+ compile) per candidate")

    dims = {"dim": args.dim, "vocab": args.vocab, "heads": args.heads,
            "hidden": args.hidden, "blocks": args.blocks}
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, args.vocab, (args.batch, args.seq), generator=g).to(device)
    targets = torch.randint(0, args.vocab, (args.batch, args.seq), generator=g).to(device)

    def hc(connect: str) -> nn.Module:
        return hcdsl.compile(SPEC.format(connect=connect, **dims), device=device)

    models: list[tuple[str, nn.Module]] = []
    pre = hc("residual")
    hand_pre = HandPreNorm(**dims)
    hand_pre.load_state_dict(prenorm_from_hcdsl(pre.state_dict(), args.blocks), strict=True)
    hand_pre.to(device)
    dhc = hc("hyper(n=4, dynamic)")
    hand_dhc = HandDHC(**dims)
    hand_dhc.load_state_dict(dhc_from_hcdsl(dhc.state_dict(), args.blocks), strict=True)
    hand_dhc.to(device)
    skip = {s.strip().lower() for s in args.skip.split(",") if s.strip()}
    assert skip <= {"mhc", "mudd"}, f"--skip takes mhc, mudd; got {sorted(skip)}"
    models = [("hand Pre-Norm", hand_pre), ("hcdsl Pre-Norm", pre),
              ("hand DHC x4", hand_dhc), ("hcdsl DHC x4", dhc)]
    if "mhc" not in skip:
        models.append(("hcdsl mHC x4", hc("mhc(n=4)")))
    if "mudd" not in skip:
        models.append(("hcdsl MUDD", hc("mudd")))
    for name, m in models:
        n = sum(p.numel() for p in m.parameters())
        print(f"  {name:15s} {n:>12,} params")

    # the hand-written models must compute the same function
    with torch.no_grad():
        for (hn, hm), (cn, cm) in [(models[0], models[1]), (models[2], models[3])]:
            diff = (hm(tokens) - cm(tokens)).abs().max().item()
            assert diff <= 1e-5, f"{hn} vs {cn}: max |logits diff| {diff:.2e} > 1e-5"
            print(f"logits: {hn} == {cn} (max abs diff {diff:.1e})")

    modes = ["eager"] if args.no_compile else ["eager", "compiled"]
    cands: list[Candidate] = []
    for name, m in models:
        for mode in modes:
            c = Candidate(name, mode, m)
            c.step = train_step(m, tokens, targets, compiled=(mode == "compiled"))
            cands.append(c)

    # warm-up (compiles forward and backward); compiled loss must equal eager loss
    eager_loss: dict[str, float] = {}
    for c in cands:
        t0 = time.perf_counter()
        for _ in range(args.warmup):
            loss = float(c.step())
        sync(device)
        dt = time.perf_counter() - t0
        if c.mode == "eager":
            eager_loss[c.name] = loss
        else:
            d = abs(loss - eager_loss[c.name])
            assert d < 1e-4, f"{c.name}: compiled loss {loss} != eager {eager_loss[c.name]}"
        print(f"warm-up {c.name:15s} {c.mode:8s} {dt:6.1f} s  loss {loss:.4f}", flush=True)

    for r in range(args.repeats):
        for c in cands:
            sync(device)
            t0 = time.perf_counter()
            for _ in range(args.steps):
                c.step()
            sync(device)
            c.times.append(1e3 * (time.perf_counter() - t0) / args.steps)
        print(f"round {r + 1}/{args.repeats}: " +
              ", ".join(f"{c.name} {c.mode[0]} {c.times[-1]:.0f}" for c in cands), flush=True)

    by = {(c.name, c.mode): c for c in cands}
    med = {k: median(c.times) for k, c in by.items()}

    def paired(a: str, b: str, mode: str) -> tuple[float, float, float]:
        rs = [x / y for x, y in zip(by[(a, mode)].times, by[(b, mode)].times)]
        return median(rs), min(rs), max(rs)

    def spread(k: tuple[str, str]) -> str:
        t = by[k].times
        return f"{med[k]:.1f} ({min(t):.0f}-{max(t):.0f})"

    print()
    print(f"ms/step: median over {args.repeats} rounds (min-max); "
          "ratios: to hand-written Pre-Norm in the same mode")
    print()
    head = "| candidate | eager ms/step | compiled ms/step | eager ratio | compiled ratio |"
    print(head)
    print("|---|---:|---:|---:|---:|")
    for name, _ in models:
        row = [name, spread((name, "eager"))]
        if "compiled" in modes:
            row.append(spread((name, "compiled")))
        else:
            row.append("-")
        row.append(f"{med[(name, 'eager')] / med[('hand Pre-Norm', 'eager')]:.3f}")
        if "compiled" in modes:
            row.append(f"{med[(name, 'compiled')] / med[('hand Pre-Norm', 'compiled')]:.3f}")
        else:
            row.append("-")
        print("| " + " | ".join(row) + " |")

    print()
    print("hcdsl / hand-written (ratio of medians; paired: median of per-round ratios, min-max)")
    print()
    print("| pair | mode | ratio of medians | paired ratio |")
    print("|---|---|---:|---:|")
    pairs = [("Pre-Norm", "hcdsl Pre-Norm", "hand Pre-Norm"),
             ("DHC x4", "hcdsl DHC x4", "hand DHC x4"),
             ("DHC x4 vs Pre-Norm", "hcdsl DHC x4", "hcdsl Pre-Norm"),
             ("mHC x4 vs Pre-Norm", "hcdsl mHC x4", "hcdsl Pre-Norm"),
             ("MUDD vs Pre-Norm", "hcdsl MUDD", "hcdsl Pre-Norm")]
    for label, a, b in pairs:
        if (a, "eager") not in by:
            continue
        for mode in modes:
            p, lo, hi = paired(a, b, mode)
            print(f"| {label} (hcdsl{'' if 'vs' in label else ' / hand'}) | {mode} | "
                  f"{med[(a, mode)] / med[(b, mode)]:.3f} | {p:.3f} ({lo:.3f}-{hi:.3f}) |")
    print()
    print(f"total wall time {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
