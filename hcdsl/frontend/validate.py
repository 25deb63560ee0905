"""Syntax tree -> ModelSpec. Every error of the file is collected, each with its span."""

from __future__ import annotations

import math
import typing
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from hcdsl.errors import ErrorSink, Span
from hcdsl.frontend import syntax as s
from hcdsl.frontend.arith import expr_text
from hcdsl.frontend.custom import check_unused, custom_connection
from hcdsl.frontend.matrices import MatrixRules
from hcdsl.frontend.numbers import SHORT, count, short
from hcdsl.frontend.options import OptionRules, did_you_mean, scalar
from hcdsl.frontend.parser import parse_syntax
from hcdsl.frontend.source import Source
from hcdsl.lang.catalog import (
    LAYER_KINDS, DropoutArgs, HeadArgs, NormArgs, NormKind, check_ports,
)
from hcdsl.lang.connections import PRESETS, has_dynamic_weights, preset_names
from hcdsl.lang.limits import MAX_CONTEXT, MAX_DIM, MAX_LAYERS, MAX_VOCAB
from hcdsl.spec import (
    ConnectionSpec, DropoutSpec, HeadSpec, LayerSpec, ModelSpec, NormSpec,
)

SETTINGS = {"dim": MAX_DIM, "vocab": MAX_VOCAB, "context": MAX_CONTEXT, "norm": 0, "pos": 0,
            "input": 0, "dropout": 0}
NORM_KINDS: tuple[str, ...] = typing.get_args(NormKind)  # ("layernorm", "rmsnorm")
CHOICES = {"pos": ("none", "learned"), "input": ("tokens", "hidden")}


@dataclass(frozen=True)
class Checked:
    """A validated spec, with what later stages need to locate their own errors."""

    spec: ModelSpec
    source: Source
    connect_span: Span | None  # the `connect` line (a preset that cannot apply is reported there)
    # where each declared name is written: "setting vocab", "layer attn", "connect"
    spans: Mapping[str, Span] = field(default_factory=dict)


ExternLayers = Collection[str] | Mapping[str, tuple[str, ...]]


class _Validator(OptionRules, MatrixRules):
    def __init__(self, syntax: s.ModelSyntax, extern_layers: ExternLayers) -> None:
        self.syn = syntax
        self.extern = set(extern_layers)
        # the ports each extern factory declares (its `ports` attribute), when known
        self.declared: dict[str, tuple[str, ...]] = (
            {k: tuple(v) for k, v in extern_layers.items() if v}
            if isinstance(extern_layers, Mapping) else {})
        self.err = ErrorSink()

    # -- options of calls (layers, connections, heads, norms) ---------------------------
    def run(self) -> ModelSpec | None:
        settings = self.settings()
        dim = settings.get("dim")
        layers = self.layers(dim if isinstance(dim, int) else None)
        body = self.body({l.name for l in layers})
        connection = self.connection(body)
        head = self.head()
        hidden = settings.get("input") == "hidden"
        for key in ("dim",) if hidden else ("dim", "vocab"):
            if key not in settings and not any(st.name == key for st in self.syn.settings):
                self.err.error(f"model '{self.syn.name}' has no '{key}' setting",
                               self.syn.name_span, f"add `{key} = ...` inside the model block"
                               + (", e.g. dim = 512" if key == "dim" else ", e.g. vocab = 50304"))
        self.model_io(settings, connection)
        if self.err.diagnostics:
            return None
        return ModelSpec(
            name=self.syn.name, dim=settings["dim"], vocab=settings.get("vocab", 0),
            context=settings.get("context"), norm=settings.get("norm", NormSpec()),
            layers=tuple(layers), body=body, connection=connection, head=head,
            input=settings.get("input", "tokens"), pos=settings.get("pos", "none"),
            dropout=settings.get("dropout", DropoutSpec()),
        )

    def model_io(self, settings: dict[str, object], connection: ConnectionSpec) -> None:
        """What `input`, `pos` and `dropout` need of the rest of the model."""
        span = {st.name: st.span for st in self.syn.settings}
        if settings.get("input") == "hidden":
            for key in ("vocab", "pos"):
                if key in span:
                    self.err.error(f"a model with input = hidden has no embedding: remove "
                                   f"'{key}'", span[key], "input = hidden maps hidden states "
                                   "(batch, time, dim) to hidden states")
            for head in self.syn.heads[:1]:
                self.err.error("a model with input = hidden has no head", head.span,
                               "its output is the connection's readout; remove the head")
        if settings.get("pos") == "learned" and "context" not in span:
            self.err.error("pos = learned needs the size of its table", span["pos"],
                           "add `context = T`, the longest sequence the model reads")
        drop = settings.get("dropout")
        if isinstance(drop, DropoutSpec) and drop.coef and not has_dynamic_weights(
                connection.kind, connection.options):
            self.err.error(f"dropout coef = {drop.coef} applies to a connection's dynamic "
                           f"weights, and connect {connection.kind} has none",
                           span["dropout"], "use a dynamic connection (e.g. hyper(n=4, "
                           "dynamic), frac(m=4, dynamic), mhc, mudd, attnres) or coef = 0")

    def settings(self) -> dict[str, object]:
        out: dict[str, object] = {}
        first: dict[str, Span] = {}
        for st in self.syn.settings:
            if st.name not in SETTINGS:
                self.err.error(f"unknown setting '{st.name}'", st.span,
                               did_you_mean(st.name, SETTINGS, "settings are"))
                continue
            if st.name in first:
                self.err.error(f"duplicate setting '{st.name}': it is already set on line "
                               f"{first[st.name].line}", st.span,
                               "each setting is given once per model; remove one")
                continue
            first[st.name] = st.span
            if st.name == "norm":
                norm = self.norm(st.value)
                if norm is not None:
                    out["norm"] = norm
                continue
            if st.name in CHOICES:
                value = scalar(st.value)
                if value not in CHOICES[st.name]:
                    self.err.error(f"'{st.name}' is one of {', '.join(CHOICES[st.name])}, got "
                                   f"'{self.text(st.value)}'", st.value.span,
                                   did_you_mean(str(value), CHOICES[st.name], "choices are"))
                else:
                    out[st.name] = value
                continue
            if st.name == "dropout":
                drop = self.dropout(st.value)
                if drop is not None:
                    out["dropout"] = drop
                continue
            value = scalar(st.value)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                self.err.error(f"'{st.name}' must be a positive integer, got "
                               f"'{self.text(st.value)}'", st.value.span)
                continue
            if value > SETTINGS[st.name]:
                self.err.error(f"'{st.name}' = {short(self.text(st.value))} is over the limit "
                               f"of {SETTINGS[st.name]:,} (limit '{st.name}')", st.value.span,
                               "the limits are listed in docs/security.md")
                continue
            out[st.name] = value
        return out

    def norm(self, value: s.Value) -> NormSpec | None:
        call = value if isinstance(value, s.Call) else None
        if isinstance(value, s.Name):
            call = s.Call(value.value, (), value.span, value.span)
        if call is None or call.name not in NORM_KINDS:
            self.err.error(f"unknown norm '{self.text(value)}'", value.span,
                           "norm is layernorm(...) or rmsnorm(...), e.g. "
                           "norm = layernorm(affine=false)")
            return None
        args = self.options(call, NormArgs, call.name)
        return None if args is None else NormSpec(kind=call.name, **args.model_dump())

    def dropout(self, value: s.Value) -> DropoutSpec | None:
        """`dropout = p` (embedding, attention and branches) or `dropout = rates(...)`."""
        if isinstance(value, s.Call) and value.name == "rates":
            args = self.options(value, DropoutArgs, "dropout rates")
            return None if args is None else DropoutSpec(**args.model_dump())
        p = scalar(value)
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            self.err.error(f"dropout is a rate in [0, 1) or rates(...), got "
                           f"'{self.text(value)}'", value.span,
                           "e.g. dropout = 0.1 (embedding, attention and every layer's "
                           "output), or dropout = rates(embed=0.1, attn=0, branch=0.1, coef=0)")
            return None
        return DropoutSpec(embed=float(p), attn=float(p), branch=float(p))

    def layers(self, dim: int | None) -> list[LayerSpec]:
        out: dict[str, LayerSpec] = {}
        first: dict[str, Span] = {}
        for ld in self.syn.layers:
            if ld.name in first:
                self.err.error(f"duplicate layer name '{ld.name}': a layer '{ld.name}' is "
                               f"already defined on line {first[ld.name].line}",
                               ld.name_span, "every layer needs its own name; rename one")
                continue
            first[ld.name] = ld.name_span
            spec = self.layer(ld, dim)
            if spec is not None:
                out[ld.name] = spec
        return list(out.values())

    def layer(self, ld: s.LayerDef, dim: int | None) -> LayerSpec | None:
        kind = ld.call.name
        if ld.extern and kind in LAYER_KINDS:  # the schemes would take it for the built-in
            self.err.error(f"extern layer '{kind}' has the name of a built-in layer kind",
                           ld.call.name_span, f"name your module differently, e.g. `layer "
                           f"{ld.name} = extern my_{kind}(...)` with layers={{'my_{kind}': "
                           "factory}, or drop `extern` for the built-in")
            return None
        if ld.extern or (kind not in LAYER_KINDS and kind in self.extern):
            return self.extern_layer(ld)
        if kind not in LAYER_KINDS:
            self.err.error(f"unknown layer kind '{kind}'", ld.call.name_span,
                           did_you_mean(kind, LAYER_KINDS, "built-in layers are")
                           + f"; for your own module write `layer {ld.name} = extern "
                           f"{kind}(...)` and pass layers={{'{kind}': factory}}")
            return None
        args = self.options(ld.call, LAYER_KINDS[kind], f"layer '{ld.name}' ({kind})")
        if args is None:
            return None
        heads = getattr(args, "heads", None)
        if heads and dim and dim % heads:
            span = next((a.span for a in ld.call.args if a.name == "heads"), ld.call.span)
            self.err.error(f"dim = {dim} is not divisible by heads = {heads}", span,
                           f"choose heads among {[h for h in range(1, 65) if dim % h == 0]}")
            return None
        if heads and dim and getattr(args, "rope", False) and (dim // heads) % 2:
            span = next((a.span for a in ld.call.args if a.name == "heads"), ld.call.span)
            self.err.error(f"rotary embeddings need an even head size, but dim / heads = "
                           f"{dim} / {heads} = {dim // heads}", span,
                           "choose heads so that dim / heads is even, or write rope=false")
            return None
        full = args.normalised(dim) if dim else args
        return LayerSpec(name=ld.name, kind=kind, args=tuple(
            (k, v) for k, v in full.model_dump().items() if v is not None))

    def extern_layer(self, ld: s.LayerDef) -> LayerSpec:
        """An extern layer: its options go to the factory as written, except `ports`,
        which declares its input ports (also declared by the factory's `ports`)."""
        kind = ld.call.name
        args: list[tuple[str, object]] = []
        ports: tuple[str, ...] = ()
        declared = self.declared.get(kind, ())
        for a in ld.call.args:
            v = True if a.value is None else scalar(a.value)
            if a.name == "ports":
                ports, problem = check_ports(v)
                if problem is None and declared and ports != declared:
                    problem = (f"the factory '{kind}' declares ports {list(declared)}, but "
                               f"the spec says {list(ports)}")
                if problem is not None:
                    self.err.error(f"option 'ports' of extern layer '{kind}': {problem}",
                                   a.span, "write ports=qkv (q, k, v), ports=[a, b], or leave "
                                   "it out for one port x")
                continue
            if v is None or isinstance(v, list):
                self.err.error(f"option '{a.name}' of extern layer '{kind}' must be a "
                               "number, name or string", a.span)
                continue
            if isinstance(a.value, s.Number) and not math.isfinite(a.value.value):
                self.err.error(f"option '{a.name}' of extern layer '{kind}' = "
                               f"{short(a.value.text)} is too large for a number", a.span,
                               "numbers are at most about 1.8e308")
                continue
            args.append((a.name, v))
        return LayerSpec(name=ld.name, kind=kind, args=tuple(args), extern=True,
                         ports=ports or declared)

    def body(self, known: set[str]) -> tuple[tuple[str, ...], ...]:
        if not self.syn.bodies:
            self.err.error(f"model '{self.syn.name}' has no body", self.syn.name_span,
                           "add e.g. `body = repeat 4 [attn, ffn]`")
            return ()
        for extra in self.syn.bodies[1:]:
            self.err.error("duplicate body", extra.span, "a model has one body; join the parts "
                           "with commas: body = repeat 2 [a, b], [a]")
        blocks: list[tuple[str, ...]] = []
        layers = 0
        defined = {ld.name for ld in self.syn.layers}
        for part in self.syn.bodies[0].parts:
            if part.repeat < 1:
                self.err.error(f"repeat count must be at least 1, got {part.repeat}",
                               part.span, "write e.g. repeat 2 [attn, ffn]")
                continue
            if part.repeat > MAX_LAYERS:
                self.err.error(f"repeat count {count(part.repeat)} is over the limit of "
                               f"{MAX_LAYERS:,} (limit 'layers')", part.span,
                               f"a body has at most {MAX_LAYERS:,} layers")
                continue
            layers += part.repeat * len(part.names)
            if layers > MAX_LAYERS:
                self.err.error(f"the body has {layers:,} layers so far, over the limit of "
                               f"{MAX_LAYERS:,} (limit 'layers')", part.span,
                               "attention and FFN layers count one each")
                return tuple(blocks)
            if not part.names:
                self.err.error("empty body block: a block needs at least one layer", part.span,
                               "write e.g. [attn, ffn]")
            for name, span in part.names:
                if name not in known and name not in defined:
                    self.err.error(f"unknown layer '{name}'", span,
                                   did_you_mean(name, defined, "defined layers are"))
            blocks.extend([tuple(n for n, _ in part.names)] * max(part.repeat, 0))
        return tuple(blocks)

    def connection(self, body: tuple[tuple[str, ...], ...]) -> ConnectionSpec:
        defined = self.definitions()
        n_layers = sum(len(b) for b in body)
        used = self.syn.connects[0].call.name if self.syn.connects else None
        for name, defn in defined.items():  # every block is checked, used or not
            if name != used:
                check_unused(self, defn, n_layers)
        if not self.syn.connects:
            return ConnectionSpec(kind="residual")
        for extra in self.syn.connects[1:]:
            self.err.error("duplicate connect", extra.span, "a model has one connection scheme")
        cd = self.syn.connects[0]
        if cd.call.name in defined:  # a connection written in this file
            return custom_connection(self, defined[cd.call.name], cd, n_layers)
        if cd.call.name not in preset_names():
            self.err.error(f"unknown connection '{cd.call.name}'", cd.call.name_span,
                           did_you_mean(cd.call.name, [*preset_names(), *defined],
                                        "connections are"))
            return ConnectionSpec(kind="residual")
        return self.preset_connection(cd, n_layers)

    def definitions(self) -> dict[str, s.ConnectionSyntax]:
        """The file's `connection NAME { ... }` blocks by name (duplicates reported)."""
        defined: dict[str, s.ConnectionSyntax] = {}
        for c in self.syn.connections:
            if c.name in defined:
                self.err.error(f"duplicate connection '{c.name}'", c.name_span,
                               "give each connection block its own name")
            elif c.name in PRESETS:
                self.err.error(f"connection '{c.name}' has the name of a built-in preset",
                               c.name_span, "choose another name")
            else:
                defined[c.name] = c
        return defined

    def preset_connection(self, cd: s.ConnectDef, n_layers: int) -> ConnectionSpec:
        chosen = PRESETS[cd.call.name]
        dims = [st.value for st in self.syn.settings if st.name == "dim"]
        dim = scalar(dims[0]) if dims else None
        opts = self.options(cd.call, chosen.options, f"connection '{chosen.name}'",
                            chosen.flags, context={"dim": dim if isinstance(dim, int) else None})
        if opts is None:
            return ConnectionSpec(kind="residual")
        matrices = self.matrices(cd, chosen, opts, n_layers)
        return ConnectionSpec(kind=chosen.name, options=opts, matrices=matrices)

    def head(self) -> HeadSpec:
        if not self.syn.heads:
            return HeadSpec()
        for extra in self.syn.heads[1:]:
            self.err.error("duplicate head", extra.span, "a model has one head")
        call = self.syn.heads[0].call
        if call.name != "unembed":
            self.err.error(f"unknown head '{call.name}'", call.name_span,
                           "the head is unembed(tied=..., final_norm=...)")
            return HeadSpec()
        args = self.options(call, HeadArgs, "head unembed")
        return HeadSpec(**args.model_dump()) if args is not None else HeadSpec()

    def text(self, value: s.Value) -> str:
        """A value as written, cut short (a message quotes at most a line of it)."""
        if isinstance(value, s.Number):
            return short(value.text)
        if isinstance(value, (s.Name, s.String)):
            return short(value.value)
        if isinstance(value, s.ListValue):
            parts: list[str] = []
            for v in value.items:
                parts.append(self.text(v))
                if sum(map(len, parts)) > SHORT:
                    return "[" + ", ".join(parts) + ", ...]"
            return "[" + ", ".join(parts) + "]"
        if isinstance(value, s.Expr):
            return short(expr_text(value) or "(an expression)")
        return value.name + "(...)"


def validate(syntax: s.ModelSyntax, source: Source,
             extern_layers: ExternLayers = ()) -> Checked:
    """The ModelSpec of a syntax tree, or an HcError with every mistake of the file."""
    v = _Validator(syntax, extern_layers)
    spec = v.run()
    v.err.raise_if_any(source.filename, source.text)
    assert spec is not None
    span = syntax.connects[0].span if syntax.connects else None
    return Checked(spec, source, span, span_index(syntax))


def span_index(syntax: s.ModelSyntax) -> dict[str, Span]:
    """Where each setting, layer and the connect line of a file is written (the first
    of each, as the validator reads them)."""
    out: dict[str, Span] = {}
    for st in syntax.settings:
        out.setdefault(f"setting {st.name}", st.span)
    for layer in syntax.layers:
        out.setdefault(f"layer {layer.name}", layer.name_span)
    if syntax.connects:
        out["connect"] = syntax.connects[0].span
    return out


def check(source: Source, extern_layers: ExternLayers = ()) -> Checked:
    """Parse and validate spec text: the whole front end."""
    return validate(parse_syntax(source.text, source.filename), source, extern_layers)
