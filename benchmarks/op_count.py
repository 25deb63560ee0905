"""Aten ops in one forward + backward of a tiny model per connection (the issue's "presets
within 2%" criterion for written specs vs presets, and the generator fast path's op count).

    .venv/bin/python benchmarks/op_count.py            # every connection below
    .venv/bin/python benchmarks/op_count.py "frac(m=2, dynamic)"

Counts every aten op dispatched (TorchDispatchMode) in model(tokens) -> logits.sum().backward(),
on CPU, float32, tokens (2, 9). A count, not a timing: reproducible on any load.
"""

from __future__ import annotations

import sys

import torch
from torch.utils._python_dispatch import TorchDispatchMode

import hcdsl

MODEL = """
model m {{
  dim = 64
  vocab = 256
  norm = rmsnorm(affine=true)
  layer attn = attention(heads=4)
  layer ffn = mlp(hidden=256, act=swiglu)
  body = repeat 2 [attn, ffn]
  connect {conn}
}}
"""
CONNECTIONS = ["hyper(n=4, dynamic)", "frac(m=2, dynamic)", "frac(m=4, dynamic)"]


class Count(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        self.n += 1
        return func(*args, **(kwargs or {}))


def count(spec: str) -> int:
    model = hcdsl.compile(spec, seed=0)
    tokens = torch.randint(0, 256, (2, 9), generator=torch.Generator().manual_seed(0))
    with Count() as c:
        out = model(tokens)
        (out if isinstance(out, torch.Tensor) else out[0]).sum().backward()
    return c.n


def main() -> None:
    conns = sys.argv[1:] or CONNECTIONS
    for conn in conns:
        print(f"{conn:28s} {count(MODEL.format(conn=conn)):6d} aten ops fwd+bwd")
    written = open("specs/custom/frac_written.hc").read()
    if not sys.argv[1:]:
        print(f"{'specs/custom/frac_written.hc':28s} {count(written):6d} aten ops fwd+bwd")


if __name__ == "__main__":
    main()
