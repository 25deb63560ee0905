"""A Program: a validated spec and its connection desugared once, with the source it came
from. Every command and API call goes through `load_program`, so the front end runs once and
a preset that cannot apply to the model is reported at its `connect` line."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from hcdsl.errors import CompileError, Diagnostic, HcError
from hcdsl.frontend.source import Source, read_path, text_source
from hcdsl.frontend.validate import Checked, check
from hcdsl.lang.catalog import LAYER_KINDS, check_ports
from hcdsl.schemes import desugar
from hcdsl.schemes.primitive import DenseScheme, Scheme
from hcdsl.schemes.registry import SchemeError
from hcdsl.spec import ModelSpec

SpecLike = str | Path | ModelSpec


@dataclass(frozen=True)
class Program:
    spec: ModelSpec
    scheme: Scheme | DenseScheme
    source: Source | None  # None: built from a ModelSpec in Python


def source_of(spec: str | Path) -> Source:
    """A str is spec text; a Path is a file to read."""
    if isinstance(spec, Path):
        return read_path(spec)
    return text_source(spec)


def from_checked(checked: Checked) -> Program:
    try:
        return Program(checked.spec, desugar(checked.spec), checked.source)
    except SchemeError as exc:
        src = checked.source
        raise HcError([Diagnostic(str(exc), checked.connect_span, exc.hint)], src.filename,
                      src.text) from None


def from_spec(spec: ModelSpec) -> Program:
    clash = [layer.name for layer in spec.layers if layer.extern and layer.kind in LAYER_KINDS]
    if clash:  # the schemes would take it for the built-in (its ports, its taps)
        raise HcError([Diagnostic(f"extern layer '{clash[0]}' has the kind of a built-in "
                                  f"layer ('{spec.layer(clash[0]).kind}')", None,
                                  "give the extern layer's kind another name")],
                      spec.name, "")
    try:
        return Program(spec, desugar(spec), None)
    except SchemeError as exc:
        raise HcError([Diagnostic(f"connection {spec.connection.kind}: {exc}", None,
                                  exc.hint)], spec.name, "") from None


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


def _with_ports(spec: ModelSpec, ports: dict[str, tuple[str, ...]]) -> ModelSpec:
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


def load_program(spec: SpecLike | Program,
                 extern_layers: Collection[str] | Mapping[str, object] = ()) -> Program:
    """Text, a file (Path), a ModelSpec or a Program -> a Program (HcError on any mistake).
    extern_layers: the names of extern layers (so `extern` may be left out), or the
    factories by name, whose `ports` attributes declare their input ports."""
    ports = declared_ports(extern_layers)
    if isinstance(spec, Program):
        fixed = _with_ports(spec.spec, ports)
        return spec if fixed is spec.spec else Program(fixed, _desugar(fixed), spec.source)
    if isinstance(spec, ModelSpec):
        return from_spec(_with_ports(spec, ports))
    if not isinstance(spec, (str, Path)):
        raise TypeError(f"a spec is .hc text (str), a pathlib.Path or a ModelSpec, got "
                        f"{type(spec).__name__}")
    return from_checked(check(source_of(spec), ports))


def _desugar(spec: ModelSpec) -> Scheme | DenseScheme:
    return from_spec(spec).scheme
