"""Syntax tree -> ModelSpec. Every error of the file is collected, each with its span."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable

from pydantic import BaseModel, ValidationError

from hcdsl.errors import ErrorSink, Span
from hcdsl.frontend import syntax as s
from hcdsl.frontend.connections import custom_connection
from hcdsl.nn.catalog import LAYER_KINDS, HeadArgs, NormArgs
from hcdsl.schemes import desugar
from hcdsl.schemes.registry import SchemeError, Preset, preset, preset_names
from hcdsl.spec import ConnectionSpec, HeadSpec, LayerSpec, Matrix, ModelSpec, NormSpec, Scalar

MAX_REPEAT = 10_000  # more layers than any model has; guards against `repeat 10**12`
SETTINGS = ("dim", "vocab", "context", "norm")
NORM_KINDS = ("layernorm", "rmsnorm")


def _did_you_mean(word: str, choices: Iterable[str], what: str) -> str:
    choices = sorted(choices)
    close = difflib.get_close_matches(word, choices, n=1)
    listing = ", ".join(choices) if choices else "none"
    return (f"did you mean '{close[0]}'? " if close else "") + f"{what}: {listing}"


def _expected_value(e: dict) -> str:
    """What a pydantic error says the value should have been, in .hc words."""
    ctx = e.get("ctx") or {}
    kind = e["type"]
    if kind.startswith("int") or kind == "int_from_float":
        return "must be an integer"
    if kind.startswith("float"):
        return "must be a number"
    if kind.startswith("bool"):
        return "must be true or false"
    if kind.startswith("string") or kind.startswith("str"):
        return "must be a name or a string"
    if kind == "literal_error":
        return f"must be {ctx.get('expected', '')}".replace("'", "")
    bounds = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=",
              "less_than": "<"}
    if kind in bounds:
        limit = next(iter(ctx.values()), "?")
        return f"must be {bounds[kind]} {limit}"
    return e["msg"].removeprefix("Value error, ").replace("Input should", "should")


def _value_hint(e: dict, got: str) -> str | None:
    if e["type"] == "literal_error":
        choices = [c.strip(" '") for c in str(e["ctx"]["expected"]).replace(" or ", ",")
                   .split(",")]
        close = difflib.get_close_matches(got, choices, n=1)
        return f"did you mean '{close[0]}'?" if close else None
    if e["type"].startswith("int") and got.replace(".", "", 1).isdigit():
        return "write a whole number such as 4"
    if e["type"].startswith("int") and got.isalpha():
        return "write the number in digits, e.g. 2"
    return None


def scalar(value: s.Value) -> Scalar | list | None:
    """A syntax value as plain Python (lists stay nested); calls give None."""
    if isinstance(value, s.Number):
        is_int = value.value.is_integer() and not any(c in value.text for c in ".eE")
        return int(value.value) if is_int else value.value
    if isinstance(value, s.Name):
        return {"true": True, "false": False}.get(value.value, value.value)
    if isinstance(value, s.String):
        return value.value
    if isinstance(value, s.ListValue):
        return [scalar(v) for v in value.items]
    return None


class _Validator:
    def __init__(self, syntax: s.ModelSyntax, extern_layers: Collection[str]) -> None:
        self.syn = syntax
        self.extern = set(extern_layers)
        self.err = ErrorSink()

    # -- options of calls (layers, connections, heads, norms) ---------------------------
    def options(self, call: s.Call, model: type[BaseModel], what: str,
                flags: dict[str, tuple[str, object]] | None = None,
                context: dict[str, object] | None = None) -> BaseModel | None:
        flags = flags or {}
        fields = model.model_fields
        values: dict[str, object] = {}
        spans: dict[str, Span] = {}
        texts: dict[str, str] = {}
        reported = False  # an option was already reported: a missing one is likely that one
        for arg in call.args:
            if arg.value is None:
                if arg.name in flags:
                    key, val = flags[arg.name]
                elif arg.name in fields and fields[arg.name].annotation is bool:
                    key, val = arg.name, True
                else:
                    self.unknown_option(arg, model, what, flags)
                    reported = True
                    continue
            else:
                if arg.name not in fields:
                    self.unknown_option(arg, model, what, flags)
                    reported = True
                    continue
                if isinstance(arg.value, s.Call):
                    self.err.error(f"option '{arg.name}' of {what} takes a value, not a call "
                                   f"'{self.text(arg.value)}'", arg.value.span)
                    reported = True
                    continue
                key, val = arg.name, scalar(arg.value)
            if key in spans:
                via = f" ('{arg.name}' sets {key})" if arg.name != key else ""
                self.err.error(f"option '{key}' of {what} is given twice{via}", arg.span,
                               "give each option once")
                continue
            values[key] = val
            spans[key] = arg.span
            texts[key] = self.text(arg.value) if arg.value is not None else arg.name
        try:
            # strict: `heads=true` is not 1, `affine=1` is not true
            return model.model_validate(values, context=context, strict=True)
        except ValidationError as exc:
            for e in exc.errors(include_url=False):
                field = str(e["loc"][0]) if e["loc"] else ""
                if e["type"] == "missing":
                    if reported:
                        continue
                    self.err.error(f"{what} needs option '{field}'", call.span,
                                   f"write {call.name}({field}=...)")
                elif field:
                    got = texts.get(field, str(e.get("input")))
                    self.err.error(f"option '{field}' of {what} {_expected_value(e)}, "
                                   f"got '{got}'", spans.get(field, call.span),
                                   _value_hint(e, got))
                else:
                    self.err.error(f"{what}: {e['msg'].removeprefix('Value error, ')}",
                                   call.span)
            return None

    def unknown_option(self, arg: s.Arg, model: type[BaseModel], what: str,
                       flags: dict[str, tuple[str, object]]) -> None:
        names = set(model.model_fields) | set(flags)
        self.err.error(f"unknown option '{arg.name}' for {what}", arg.span,
                       _did_you_mean(arg.name, names, f"{what} takes"))

    # -- the model --------------------------------------------------------------------
    def run(self) -> ModelSpec | None:
        settings = self.settings()
        dim = settings.get("dim")
        layers = self.layers(dim if isinstance(dim, int) else None)
        body = self.body({l.name for l in layers})
        connection = self.connection(body)
        head = self.head()
        for key in ("dim", "vocab"):
            if key not in settings and not any(st.name == key for st in self.syn.settings):
                self.err.error(f"model '{self.syn.name}' has no '{key}' setting",
                               self.syn.name_span, f"add `{key} = ...` inside the model block"
                               + (", e.g. dim = 512" if key == "dim" else ", e.g. vocab = 50304"))
        if self.err.diagnostics:
            return None
        return ModelSpec(
            name=self.syn.name, dim=settings["dim"], vocab=settings["vocab"],
            context=settings.get("context"), norm=settings.get("norm", NormSpec()),
            layers=tuple(layers), body=body, connection=connection, head=head,
        )

    def settings(self) -> dict[str, object]:
        out: dict[str, object] = {}
        first: dict[str, Span] = {}
        for st in self.syn.settings:
            if st.name not in SETTINGS:
                self.err.error(f"unknown setting '{st.name}'", st.span,
                               _did_you_mean(st.name, SETTINGS, "settings are"))
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
            value = scalar(st.value)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                self.err.error(f"'{st.name}' must be a positive integer, got "
                               f"'{self.text(st.value)}'", st.value.span)
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
        if ld.extern or (kind not in LAYER_KINDS and kind in self.extern):
            args = []
            for a in ld.call.args:
                v = True if a.value is None else scalar(a.value)
                if v is None or isinstance(v, list):
                    self.err.error(f"option '{a.name}' of extern layer '{kind}' must be a "
                                   "number, name or string", a.span)
                    continue
                args.append((a.name, v))
            return LayerSpec(name=ld.name, kind=kind, args=tuple(args), extern=True)
        if kind not in LAYER_KINDS:
            self.err.error(f"unknown layer kind '{kind}'", ld.call.name_span,
                           _did_you_mean(kind, LAYER_KINDS, "built-in layers are")
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
        set_args = tuple((k, v) for k, v in args.model_dump(exclude_unset=True).items())
        return LayerSpec(name=ld.name, kind=kind, args=set_args)

    def body(self, known: set[str]) -> tuple[tuple[str, ...], ...]:
        if not self.syn.bodies:
            self.err.error(f"model '{self.syn.name}' has no body", self.syn.name_span,
                           "add e.g. `body = repeat 4 [attn, ffn]`")
            return ()
        for extra in self.syn.bodies[1:]:
            self.err.error("duplicate body", extra.span, "a model has one body; join the parts "
                           "with commas: body = repeat 2 [a, b], [a]")
        blocks: list[tuple[str, ...]] = []
        for part in self.syn.bodies[0].parts:
            if part.repeat < 1 or part.repeat > MAX_REPEAT:
                self.err.error(f"repeat count must be between 1 and {MAX_REPEAT}, got "
                               f"{part.repeat}", part.span)
                continue
            if not part.names:
                self.err.error("empty body block: a block needs at least one layer", part.span,
                               "write e.g. [attn, ffn]")
            defined = {ld.name for ld in self.syn.layers}
            for name, span in part.names:
                if name not in known and name not in defined:
                    self.err.error(f"unknown layer '{name}'", span,
                                   _did_you_mean(name, defined, "defined layers are"))
            blocks.extend([tuple(n for n, _ in part.names)] * max(part.repeat, 0))
        return tuple(blocks)

    def connection(self, body: tuple[tuple[str, ...], ...]) -> ConnectionSpec:
        if not self.syn.connects:
            return ConnectionSpec(kind="residual")
        for extra in self.syn.connects[1:]:
            self.err.error("duplicate connect", extra.span, "a model has one connection scheme")
        cd = self.syn.connects[0]
        defined: dict[str, s.ConnectionSyntax] = {}
        for c in self.syn.connections:
            if c.name in defined:
                self.err.error(f"duplicate connection '{c.name}'", c.name_span,
                               "give each connection block its own name")
            elif c.name in preset_names():
                self.err.error(f"connection '{c.name}' has the name of a built-in preset",
                               c.name_span, "choose another name")
            else:
                defined[c.name] = c
        if cd.call.name in defined:  # a connection written in this file
            return custom_connection(self, defined[cd.call.name], cd, sum(map(len, body)))
        if cd.call.name not in preset_names():
            self.err.error(f"unknown connection '{cd.call.name}'", cd.call.name_span,
                           _did_you_mean(cd.call.name, [*preset_names(), *defined],
                                         "connections are"))
            return ConnectionSpec(kind="residual")
        chosen = preset(cd.call.name)
        dims = [st.value for st in self.syn.settings if st.name == "dim"]
        dim = scalar(dims[0]) if dims else None
        opts = self.options(cd.call, chosen.options, f"connection '{chosen.name}'",
                            chosen.flags, context={"dim": dim if isinstance(dim, int) else None})
        if opts is None:
            return ConnectionSpec(kind=chosen.name)
        n_layers = sum(len(b) for b in body)
        matrices = self.matrices(cd, chosen, opts, n_layers)
        options = tuple(opts.model_dump(exclude_unset=True).items())
        return ConnectionSpec(kind=chosen.name, options=options, matrices=matrices)

    def matrices(self, cd: s.ConnectDef, chosen: Preset, opts: BaseModel,
                 n_layers: int) -> tuple[tuple[int, Matrix], ...]:
        if not cd.rules:
            return ()
        if chosen.matrix_shape is None:
            self.err.error(f"connection '{chosen.name}' takes no literal matrices",
                           cd.rules[0].span, "literal matrices are for hyper-connections")
            return ()
        shape = chosen.matrix_shape(opts)
        out: dict[int, Matrix] = {}
        for rule in cd.rules:
            matrix = self.matrix(rule.value, shape, chosen, opts)
            for k in self.select(rule.selector, n_layers):
                if matrix is not None:
                    out[k] = matrix  # a later rule overrides an earlier one
        return tuple(sorted(out.items()))

    def select(self, sel: s.Selector, n: int) -> list[int]:
        def check(k: int) -> bool:
            if 1 <= k <= n:
                return True
            self.err.error(f"layer {k} does not exist: the body has {n} layers", sel.span,
                           f"layers are numbered from 1 to {n}" if n else None)
            return False

        if sel.kind == "all":
            return list(range(1, n + 1))
        if sel.kind in ("odd", "even"):
            return list(range(1 if sel.kind == "odd" else 2, n + 1, 2))
        if sel.kind == "layer":
            return [sel.args[0]] if check(sel.args[0]) else []
        if sel.kind == "range":
            lo, hi = sel.args
            if lo > hi:
                self.err.error(f"empty range {lo}..{hi}", sel.span, "write low..high")
                return []
            return list(range(lo, hi + 1)) if check(lo) and check(hi) else []
        step, start = sel.args[0], (sel.args[1] if len(sel.args) > 1 else 1)
        if step < 1:
            self.err.error("'every' needs a step of at least 1", sel.span)
            return []
        return list(range(start, n + 1, step)) if check(start) else []

    def matrix(self, value: s.Value, shape: tuple[int, int], chosen: Preset,
               opts: BaseModel) -> Matrix | None:
        rows, cols = shape
        # the integer options fix the shape (n for hyper); flags like `dynamic` do not
        context = ", ".join(f"{k}={v}" for k, v in opts.model_dump().items()
                            if isinstance(v, int) and not isinstance(v, bool))
        expect = f"expected a {rows}x{cols} matrix for {context}"
        shape_help = chosen.matrix_help or None
        if not isinstance(value, s.ListValue) or not all(
                isinstance(r, s.ListValue) for r in value.items):
            self.err.error(f"{expect}, got '{self.text(value)}'", value.span,
                           "write a matrix as a list of rows, e.g. [[0, 1], [1, 1]]"
                           + (f"; {shape_help}" if shape_help else ""))
            return None
        if len(value.items) != rows:
            self.err.error(f"{expect}, got {len(value.items)} rows", value.span, shape_help)
            return None
        ok = True
        out = []
        for i, row in enumerate(value.items):
            if len(row.items) != cols:
                self.err.error(f"{expect}, got {len(row.items)} entries in row {i + 1}",
                               row.span, shape_help)
                ok = False
                continue
            nums = []
            for j, entry in enumerate(row.items):
                if not isinstance(entry, s.Number):
                    self.err.error(f"matrix entry ({i + 1}, {j + 1}) is not a number: "
                                   f"'{self.text(entry)}'", entry.span,
                                   "matrix entries are numbers such as 0, 1, -0.5, 1e-3")
                    ok = False
                    continue
                nums.append(entry.value)
            out.append(tuple(nums))
        return tuple(out) if ok else None

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
        if isinstance(value, s.Number):
            return value.text
        if isinstance(value, (s.Name, s.String)):
            return value.value
        if isinstance(value, s.ListValue):
            return "[" + ", ".join(self.text(v) for v in value.items) + "]"
        return value.name + "(...)"


def validate(syntax: s.ModelSyntax, filename: str, source: str,
             extern_layers: Collection[str] = ()) -> ModelSpec:
    v = _Validator(syntax, extern_layers)
    spec = v.run()
    v.err.raise_if_any(filename, source)
    assert spec is not None
    try:  # a preset may not fit this model (e.g. mudd needs blocks that start with attention)
        desugar(spec)
    except SchemeError as exc:
        v.err.error(str(exc), syntax.connects[0].span if syntax.connects else syntax.span,
                    exc.hint)
        v.err.raise_if_any(filename, source)
    return spec
