"""How long `hcdsl prove` takes with depth: 2, 8, 32 and 64 layers of [attention, mlp]
(d = 128), HC x4 static and dynamic, with and without --at-init, each spec against itself
(EQUIVALENT) and against Pre-Norm. The proof only: no witness, one thread.

    .venv/bin/python benchmarks/prove_times.py
"""

from __future__ import annotations

import time

import torch

from hcdsl.proofs.prove import prove


def spec(layers: int, connect: str) -> str:
    return (f"model m {{\n  dim = 128\n  vocab = 256\n  layer attn = attention(heads=4)\n"
            f"  layer ffn = mlp\n  body = repeat {layers // 2} [attn, ffn]\n"
            f"  connect {connect}\n}}\n")


def timed(a: str, b: str, at_init: bool) -> tuple[str, float]:
    start = time.perf_counter()
    result = prove(a, b, at_init=at_init, witness=False)
    return result.verdict, time.perf_counter() - start


def main() -> None:
    torch.set_num_threads(1)
    print(f"{'layers':>6} {'connection':22} {'question':8} {'self':>22} {'vs Pre-Norm':>26}")
    for layers in (2, 8, 32, 64):
        for connect in ("hyper(n=4, static)", "hyper(n=4, dynamic)"):
            for at_init in (False, True):
                a = spec(layers, connect)
                same, t_same = timed(a, a, at_init)
                other, t_other = timed(spec(layers, "residual"), a, at_init)
                print(f"{layers:>6} {connect:22} {'init' if at_init else 'learned':8} "
                      f"{same:>12} {t_same:7.2f} s {other:>16} {t_other:7.2f} s", flush=True)


if __name__ == "__main__":
    main()
