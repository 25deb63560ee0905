"""Lowerings of the IR: `fx` (the product) and `reference` (the eager oracle)."""

from hcdsl.backends.fx import lower_fx
from hcdsl.backends.reference import ReferenceModel

BACKENDS = ("fx", "reference")

__all__ = ["BACKENDS", "ReferenceModel", "lower_fx"]
