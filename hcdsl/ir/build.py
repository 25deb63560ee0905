"""A Program (spec + desugared scheme) -> IR, by the kind of state its connection keeps."""

from __future__ import annotations

from hcdsl.ir.build_dense import build_dense
from hcdsl.ir.build_streams import build_streams
from hcdsl.ir.graph import IR
from hcdsl.schemes.primitive import DenseScheme, Scheme
from hcdsl.spec import ModelSpec


def build(spec: ModelSpec, scheme: Scheme | DenseScheme) -> IR:
    """The IR of a spec and its desugared connection, before any pass."""
    if isinstance(scheme, DenseScheme):
        return build_dense(spec, scheme)
    return build_streams(spec, scheme)
