"""fx backend vs the reference interpreter on every runnable bundled spec.

    .venv/bin/python benchmarks/fx_vs_reference.py

Every parameter is perturbed off its init (tests/helpers.perturb), the same weights are
loaded into both backends, and the script prints the largest forward difference and the
largest gradient difference (relative to the gradient's largest entry when that is above 1),
with the five specs where the forward differs most. Specs over 50M parameters are skipped.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

import hcdsl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from helpers import grads, perturb  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    rows = []
    for path in sorted((ROOT / "specs").rglob("*.hc")):
        st = hcdsl.stats(path)
        if st.params > 50_000_000:
            continue
        fx = hcdsl.compile(path)
        ref = hcdsl.compile(path, backend="reference")
        perturb(fx, 3, const=0.3)
        ref.load_state_dict(fx.state_dict())
        tokens = torch.randint(0, st.vocab, (2, 9), generator=torch.Generator().manual_seed(0))
        probe = torch.randn(2, 9, st.vocab, generator=torch.Generator().manual_seed(1))
        a, ga = grads(fx, tokens, probe)
        b, gb = grads(ref, tokens, probe)
        forward = (a - b).abs().max().item()
        grad = max(((ga[k] - gb[k]).abs().max() / max(1.0, gb[k].abs().max().item())).item()
                   for k in ga)
        rows.append((path.relative_to(ROOT / "specs").as_posix(), forward, grad))
    print(f"{len(rows)} specs; max forward diff {max(r[1] for r in rows):.2e}; "
          f"max relative grad diff {max(r[2] for r in rows):.2e}")
    for name, forward, grad in sorted(rows, key=lambda r: -r[1])[:5]:
        print(f"  {name}: forward {forward:.2e}, grad {grad:.2e}")


if __name__ == "__main__":
    main()
