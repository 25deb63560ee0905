"""hcdsl: a declarative architecture compiler for the connections between layers.

`import hcdsl` is cheap: the functions below load their modules (and torch) on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from hcdsl.errors import CompileError, HcError

__version__ = "0.1.0"

_LAZY = {
    "parse": "hcdsl.api", "load": "hcdsl.api", "lower": "hcdsl.api", "compile": "hcdsl.api",
    "stats": "hcdsl.counts", "Stats": "hcdsl.counts", "prove": "hcdsl.proofs.prove",
    "param_groups": "hcdsl.nn.groups", "wrap": "hcdsl.wrap", "generate": "hcdsl.nn.decode",
    "pipeline": "hcdsl.backends.pipeline",
}
__all__ = ["CompileError", "HcError", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hcdsl' has no attribute '{name}'")
