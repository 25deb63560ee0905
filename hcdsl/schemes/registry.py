"""What each connection preset of the language means: its desugaring to the primitive form.

The presets themselves (names, options, flags, matrix shapes) are the language's
(hcdsl.lang.connections); a preset module here registers one function per name.
"""

from __future__ import annotations

from typing import Callable

from hcdsl.lang.connections import Options
from hcdsl.schemes.primitive import DenseScheme, Scheme
from hcdsl.spec import ModelSpec

Desugar = Callable[[ModelSpec, Options], "Scheme | DenseScheme"]
DESUGAR: dict[str, Desugar] = {}


class SchemeError(ValueError):
    """A preset that cannot apply to this model (reported at the `connect` line)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def register(name: str) -> Callable[[Desugar], Desugar]:
    def wrap(fn: Desugar) -> Desugar:
        if name in DESUGAR:
            raise ValueError(f"preset '{name}' desugared twice")
        DESUGAR[name] = fn
        return fn

    return wrap
