"""`hcdsl bench A.hc [B.hc ...]`: what a connection costs against Pre-Norm with the same layers.

Each spec runs beside its baseline, the same spec with `connect residual` and the same layer
weights, eager and `torch.compile`d, one training step (forward, cross-entropy, backward) and
one inference forward, in interleaved rounds; the result is the ratio to Pre-Norm (median,
min-max over rounds) and the memory of one training step relative to Pre-Norm. With the
`hyper-connections` package installed, its DHC, FC and mHC run the same way beside hcdsl's.

    models.py   the spec, its baseline, weight sharing
    package.py  the hyper-connections package's models (lucidrains, PyPI `hyper-connections`)
    measure.py  step functions, clocks, memory (saved tensors, kept bytes, profiler peak)
    runner.py   the interleaved rounds and the report
    text.py     the printed report (the command is hcdsl/cli/bench.py)
"""

from typing import Any

__all__ = ["BenchReport", "Settings", "run_bench"]


def __getattr__(name: str) -> Any:  # the runner imports torch: only on first use
    if name in __all__:
        from hcdsl.bench import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'hcdsl.bench' has no attribute {name!r}")
