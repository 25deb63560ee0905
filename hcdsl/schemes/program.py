"""A Program: a validated spec and its connection desugared, with the source it came from
(hcdsl/compiler.py's Compilation is one, and runs the stages that make it), and the rules
for the ports of extern layers that a caller's factories declare."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from hcdsl.errors import CompileError
from hcdsl.frontend.source import Source
from hcdsl.lang.catalog import check_ports
from hcdsl.schemes.primitive import DenseScheme, Scheme
from hcdsl.spec import ModelSpec

SpecLike = str | Path | ModelSpec


@dataclass(frozen=True)
class Program:
    spec: ModelSpec
    scheme: Scheme | DenseScheme
    source: Source | None  # None: built from a ModelSpec in Python


def declared_ports(layers: Collection[str] | Mapping[str, object]) -> dict[str, tuple[str, ...]]:
    """The input ports each extern factory declares with a `ports` attribute (e.g. a class
    attribute ports = ("q", "k", "v")); names without a factory, or factories that declare
    none, map to ()."""
    if not isinstance(layers, Mapping):
        return {name: () for name in layers}
    out: dict[str, tuple[str, ...]] = {}
    for name, factory in layers.items():
        raw = getattr(factory, "ports", None)
        if raw is None:
            out[name] = ()
            continue
        ports, problem = check_ports(raw)
        if problem is not None:
            raise CompileError(f"factory '{name}' declares ports = {raw!r}: {problem}")
        out[name] = ports
    return out


def with_ports(spec: ModelSpec, ports: dict[str, tuple[str, ...]]) -> ModelSpec:
    """A ModelSpec built in Python gets its extern layers' ports from their factories."""
    layers = []
    for layer in spec.layers:
        declared = ports.get(layer.kind, ()) if layer.extern else ()
        if declared and layer.ports and layer.ports != declared:
            raise CompileError(f"layer '{layer.name}': the factory '{layer.kind}' declares "
                               f"ports {list(declared)}, but the spec says {list(layer.ports)}")
        layers.append(layer.model_copy(update={"ports": declared}) if declared
                      and not layer.ports else layer)
    return spec if tuple(layers) == spec.layers else spec.model_copy(
        update={"layers": tuple(layers)})
