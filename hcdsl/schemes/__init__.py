"""Connection presets, desugared to the primitive form of primitive.py."""

from __future__ import annotations

from hcdsl.schemes import custom, dense, frac, hyper, mhc, residual  # noqa: F401 - register
from hcdsl.schemes.primitive import DenseScheme, Scheme
from hcdsl.schemes.registry import DESUGAR
from hcdsl.spec import ModelSpec


def desugar(spec: ModelSpec) -> Scheme | DenseScheme:
    """The primitive form of spec's connection (raises SchemeError when it cannot apply)."""
    return DESUGAR[spec.connection.kind](spec, spec.connection.options)
