"""hcdsl: a declarative architecture compiler for the connections between layers."""

from hcdsl.api import compile, lower, parse  # noqa: A004
from hcdsl.errors import CompileError, HcError
from hcdsl.stats import Stats, stats  # after the submodule import, so `stats` is the function

__all__ = ["CompileError", "HcError", "Stats", "compile", "lower", "parse", "prove", "stats"]
__version__ = "0.1.0"


def prove(a, b, **kwargs):  # noqa: ANN001, ANN201 - re-exported lazily
    """Prove or refute that two specs compute the same function (see hcdsl.proofs.prove)."""
    from hcdsl.proofs.prove import prove as _prove

    return _prove(a, b, **kwargs)
