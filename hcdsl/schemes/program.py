"""A Program: a validated spec and its connection desugared once, with the source it came
from. Every command and API call goes through `load_program`, so the front end runs once and
a preset that cannot apply to the model is reported at its `connect` line."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from hcdsl.errors import Diagnostic, HcError
from hcdsl.frontend.source import Source, read_path, text_source
from hcdsl.frontend.validate import Checked, check
from hcdsl.lang.catalog import LAYER_KINDS
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


def load_program(spec: SpecLike | Program, extern_layers: Collection[str] = ()) -> Program:
    """Text, a file (Path), a ModelSpec or a Program -> a Program (HcError on any mistake)."""
    if isinstance(spec, Program):
        return spec
    if isinstance(spec, ModelSpec):
        return from_spec(spec)
    if not isinstance(spec, (str, Path)):
        raise TypeError(f"a spec is .hc text (str), a pathlib.Path or a ModelSpec, got "
                        f"{type(spec).__name__}")
    return from_checked(check(source_of(spec), extern_layers))
