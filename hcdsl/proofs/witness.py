"""A numeric counterexample that really differs: both specs on the reference backend in
float64, the same tokens, layers shared by position and every tied parameter equal, each
spec's own untied connection parameters: its init (at init), the checkpoint's values, or,
for the "learned" question, a point moved off the init (tied parameters moved together).
A witness that shows no difference is no witness: the verdict is then UNKNOWN."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hcdsl.ir.graph import IR
from hcdsl.proofs.identity import Identity
from hcdsl.proofs.numeric import Pair, input_of, model_input, tied_pair

LAYER_GAIN = 10.0  # layer weights x10 from their init, so the layers' outputs are O(1)
THRESHOLD = 1e-9  # float64: a difference above this is not rounding


@dataclass
class Witness:
    tokens: list[int]
    out_a: list[float]  # a few logits of A at the last position
    out_b: list[float]
    max_diff: float
    note: str = ""

    @property
    def differs(self) -> bool:
        return self.max_diff > THRESHOLD

    def render(self) -> str:
        fmt = lambda xs: "[" + ", ".join(f"{x:+.6f}" for x in xs) + ", ...]"  # noqa: E731
        what = "logits" if self.tokens or not self.out_a else "outputs"
        first = (f"  input tokens: {self.tokens}" if self.tokens or not self.out_a else
                 "  input: random hidden states (float64), 2 x 8 x dim")
        lines = [
            first,
            f"  A {what}[-1, :4]: {fmt(self.out_a)}",
            f"  B {what}[-1, :4]: {fmt(self.out_b)}",
            f"  max |A - B| over all {what}: {self.max_diff:.3e}",
        ]
        if self.note:
            lines.append(f"  ({self.note})")
        return "\n".join(lines)


def _run(pair: Pair, x: torch.Tensor, note: str) -> Witness:
    with torch.no_grad():
        ya, yb = pair.a(x), pair.b(x)
    diff = float((ya - yb).abs().max()) if ya.shape == yb.shape else float("inf")
    if ya.shape != yb.shape:
        note = f"outputs of different shapes {tuple(ya.shape)} vs {tuple(yb.shape)}; {note}"
    shown = x[0].tolist() if not x.is_floating_point() else []
    return Witness(shown, ya[0, -1, :4].tolist(), yb[0, -1, :4].tolist(), diff, note)


def numeric_witness(ia: IR, ib: IR, ident_a: Identity, ident_b: Identity, seed: int = 0,
                    pair: Pair | None = None) -> Witness:
    """The first of a few tries that shows a difference (or the last try)."""
    kind_a, size_a = input_of(ia)
    kind_b, size_b = input_of(ib)
    if kind_a != kind_b or kind_a == "hidden" and size_a != size_b:
        return Witness([], [], [], float("inf"), "the inputs differ: "
                       f"{input_of(ia)} vs {input_of(ib)}")
    small = ia if kind_a == "hidden" or size_a <= size_b else ib  # tokens both vocabs hold
    x = model_input(small, seed)
    if pair is not None:  # the checkpoints' own weights
        return _run(pair, x, "the checkpoints' weights")
    learned = ident_a.question == "learned"
    tries = [(False, "each spec's own init")] if not learned else []
    tries += [(True, "connection and norm parameters moved off their init, tied ones "
                     "together")] if learned else []
    best = None
    for attempt in range(3):
        for perturb, what in tries:
            # the built layers first; then generic ones (the layers are any functions)
            stand_ins = attempt == 2
            layers = ("generic layers (small MLPs with biases)" if stand_ins
                      else f"layers' weights x{LAYER_GAIN:g}")
            pair_ = tied_pair(ia, ib, ident_a, ident_b, seed + attempt, perturb,
                              1.0 if stand_ins else LAYER_GAIN, stand_ins)
            w = _run(pair_, model_input(small, seed + attempt),
                     f"{what}; layers shared by position, {layers}")
            if w.differs:
                return w
            best = w
    assert best is not None
    return best
