"""Learning-rate multipliers for torch.optim.lr_scheduler.LambdaLR.

- cosine: linear warm-up, then half a cosine from 1 down to min_ratio at the last step.
- wsd (warmup-stable-decay, arXiv 2404.06395 §4.1 "MiniCPM"): warm-up, constant 1, then a
  linear decay to min_ratio over the last `decay_fraction` of the steps.
- constant: warm-up, then 1.
The multiplier of step s (0-based) is applied to the update that step makes.
"""

from __future__ import annotations

import math
from collections.abc import Callable


def multiplier(schedule: str, steps: int, warmup: int, min_ratio: float,
               decay_fraction: float = 0.2) -> Callable[[int], float]:
    warmup = min(warmup, steps // 2)
    decay_start = max(warmup, int(round(steps * (1 - decay_fraction))))

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if schedule == "constant":
            return 1.0
        if schedule == "cosine":
            t = (step - warmup) / max(steps - 1 - warmup, 1)
            return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
        if schedule == "wsd":
            if step < decay_start:
                return 1.0
            t = (step - decay_start + 1) / max(steps - decay_start, 1)
            return 1.0 - (1 - min_ratio) * min(t, 1.0)
        raise ValueError(f"unknown schedule {schedule!r}")

    return f
