"""The syntax tree of a .hc file: what was written, with spans, before any checking."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from hcdsl.errors import Span


@dataclass(frozen=True)
class Number:
    value: float
    text: str
    span: Span


@dataclass(frozen=True)
class Name:
    value: str
    span: Span


@dataclass(frozen=True)
class String:
    value: str
    span: Span


@dataclass(frozen=True)
class ListValue:
    items: tuple["Value", ...]
    span: Span


@dataclass(frozen=True)
class Arg:
    name: str
    value: "Value | None"  # None: a bare flag such as `dynamic`
    span: Span


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Arg, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Expr:
    """Arithmetic in a list item: op is + - * (two args) or neg (one)."""

    op: str
    args: tuple["Value", ...]
    span: Span


Value = Union[Number, Name, String, ListValue, Call, Expr]


@dataclass(frozen=True)
class Setting:
    name: str
    value: Value
    span: Span


@dataclass(frozen=True)
class LayerDef:
    name: str
    call: Call
    extern: bool
    span: Span
    name_span: Span


@dataclass(frozen=True)
class BlockRef:
    names: tuple[tuple[str, Span], ...]
    repeat: int
    span: Span


@dataclass(frozen=True)
class BodyDef:
    parts: tuple[BlockRef, ...]
    span: Span


@dataclass(frozen=True)
class Selector:
    kind: str  # all | odd | even | layer | range | every
    args: tuple[int, ...]
    span: Span


@dataclass(frozen=True)
class Rule:
    selector: Selector
    value: Value
    span: Span


@dataclass(frozen=True)
class ConnectDef:
    call: Call
    rules: tuple[Rule, ...]
    span: Span


@dataclass(frozen=True)
class HeadDef:
    call: Call
    span: Span


@dataclass(frozen=True)
class ParamDef:
    name: str
    value: "Value"
    span: Span
    name_span: Span


@dataclass(frozen=True)
class GeneratorSyntax:
    """A `generator [NAME] { settings }` block inside a connection."""

    name: str  # "" for the layers' generator, "readout" for the readout's
    settings: tuple["Setting", ...]
    span: Span
    name_span: Span


@dataclass
class ConnectionSyntax:
    """A `connection NAME { settings, params, matrix rules }` block."""

    name: str
    span: Span
    name_span: Span
    settings: list[Setting] = field(default_factory=list)
    params: list[ParamDef] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    generators: list[GeneratorSyntax] = field(default_factory=list)


@dataclass
class ModelSyntax:
    name: str
    span: Span
    name_span: Span
    settings: list[Setting] = field(default_factory=list)
    layers: list[LayerDef] = field(default_factory=list)
    bodies: list[BodyDef] = field(default_factory=list)
    connects: list[ConnectDef] = field(default_factory=list)
    heads: list[HeadDef] = field(default_factory=list)
    connections: list[ConnectionSyntax] = field(default_factory=list)  # defined in the file
