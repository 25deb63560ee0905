"""Connection presets, desugared to the primitive form of primitive.py."""

from __future__ import annotations

from hcdsl.schemes.primitive import DenseScheme, Scheme
from hcdsl.spec import ModelSpec


def load_all() -> None:
    """Import every preset module once, so each registers itself."""
    from hcdsl.schemes import custom, dense, frac, hyper, mhc, residual  # noqa: F401


def desugar(spec: ModelSpec) -> Scheme | DenseScheme:
    from hcdsl.schemes.registry import preset

    chosen = preset(spec.connection.kind)
    options = chosen.options(**dict(spec.connection.options))
    return chosen.desugar(spec, options)
