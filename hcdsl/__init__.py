"""hcdsl: a declarative architecture compiler for the connections between layers."""

from hcdsl.api import compile, lower, parse  # noqa: A004
from hcdsl.errors import CompileError, HcError

__all__ = ["CompileError", "HcError", "compile", "lower", "parse", "stats"]
__version__ = "0.1.0"


def stats(spec, **kwargs):  # noqa: ANN001, ANN201 - re-exported lazily (imports torch meta)
    """Parameter counts of a spec, computed on the meta device (see hcdsl.stats)."""
    from hcdsl.stats import stats as _stats

    return _stats(spec, **kwargs)
