"""Validate a user-defined `connection NAME { ... }` block into a ConnectionSpec.

The block's settings are CustomOptions (hcdsl/schemes/custom.py); `param NAME = 1` or
`param NAME = scalar(init=1, bound=double)` declares a learned scalar that matrix entries and
`value_residual` may name; matrix rules use the selectors of literal HC matrices. A param
nothing names is a located error (check_params_used).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

from pydantic import ValidationError

from hcdsl.errors import ErrorSink, Span
from hcdsl.frontend import syntax as s
from hcdsl.frontend.numbers import Capped, short, weight_problem
from hcdsl.frontend.arith import expr_text, expr_tree
from hcdsl.frontend.generator import GeneratorReader
from hcdsl.frontend.history_generator import HistoryGeneratorReader
from hcdsl.frontend.options import pydantic_problem, value_hint
from hcdsl.lang.connections import CustomOptions, Param
from hcdsl.lang.expr import evaluate, names, render
from hcdsl.lang.limits import MAX_STREAMS
from hcdsl.spec import ConnectionSpec, Template


class Context(Protocol):
    """What a connection block needs of the model's validator."""

    err: ErrorSink

    def select(self, sel: s.Selector, n: int) -> list[int]: ...

    def text(self, value: s.Value) -> str: ...


BOUND_RANGE = {"none": None, "unit": (0.0, 1.0), "double": (0.0, 2.0), "exp": (0.0, math.inf)}
STREAM_LISTS = ("post_streams", "readout_norm")  # 1-based stream numbers
# the settings only one kind of state reads (the other would silently ignore them)
STREAM_ONLY = ("streams", "fractions", "init", "prenorm", "post", "post_streams", "lowrank",
               "value_residual", "readout", "readout_norm", "out_scale", "maps")
HISTORY_ONLY = ("granularity", "weights", "ways", "keep")
WEIGHT_LISTS = ("init", "readout", "value_residual")  # numbers that become weights
INTERNAL = ("name", "params", "generator", "readout_generator",  # not written as settings
            "history_generator")


def _bounded(raw: float, bound: str) -> float:
    """A param's value from its raw (stored) value: bound none, unit (σ) or double (2σ)."""
    if bound == "none":
        return float(raw)
    if bound == "exp":
        return math.exp(raw)
    sig = 1.0 / (1.0 + math.exp(-raw)) if raw >= 0 else math.exp(raw) / (1.0 + math.exp(raw))
    return sig if bound == "unit" else 2.0 * sig


def _number_text(value: s.Value, key: str = "init") -> str:
    """The text of a param's init as written (`param a = 1e999`, `scalar(init=...)`)."""
    if isinstance(value, s.Number):
        return value.text
    if isinstance(value, s.Call):
        for arg in value.args:
            if arg.name == key and isinstance(arg.value, s.Number):
                return arg.value.text
    return "?"


def _plain(value: s.Value) -> object:
    """A syntax value as Python: numbers, names (true/false as bools), tuples for lists."""
    if isinstance(value, s.Number):
        return value.value
    if isinstance(value, s.Name):
        return {"true": True, "false": False}.get(value.value, value.value)
    if isinstance(value, s.String):
        return value.value
    if isinstance(value, s.ListValue):
        return tuple(_plain(v) for v in value.items)
    if isinstance(value, s.Expr):
        return expr_text(value)  # pydantic reports it where a number is expected
    return None


def _model_dim(v: Context) -> int | None:
    """The model's `dim` as written (a history generator's heads must divide it)."""
    for st in getattr(getattr(v, "syn", None), "settings", ()):
        if st.name == "dim" and isinstance(st.value, s.Number) and \
                float(st.value.value).is_integer() and st.value.value > 0:
            return int(st.value.value)
    return None


class _Connection:
    def __init__(self, v: Context, defn: s.ConnectionSyntax) -> None:
        self.v, self.defn = v, defn
        self.what = f"connection '{defn.name}'"

    def params(self) -> dict[str, Param]:
        out: dict[str, Param] = {}
        for pd in self.defn.params:
            if pd.name in out:
                self.v.err.error(f"duplicate param '{pd.name}' in {self.what}", pd.name_span,
                                 "give each param its own name")
                continue
            param = self.param(pd)
            if param is not None:
                out[pd.name] = param
        return out

    def param(self, pd: s.ParamDef) -> Param | None:
        init, bound, tied, span = None, "none", False, pd.value.span
        raw: float | None = None
        kind = "scalar"
        if isinstance(pd.value, s.Number):
            init = pd.value.value
        elif isinstance(pd.value, s.Call) and pd.value.name in ("scalar", "vector"):
            kind = pd.value.name
            for arg in pd.value.args:
                if arg.name == "init" and isinstance(arg.value, s.Number):
                    init = arg.value.value
                elif arg.name == "raw" and isinstance(arg.value, s.Number):
                    raw = arg.value.value  # the stored value before the bound (a logit)
                elif arg.name == "bound" and isinstance(arg.value, s.Name):
                    bound = arg.value.value
                elif arg.name == "tied" and isinstance(arg.value, s.Name) and \
                        arg.value.value in ("true", "false"):
                    tied = arg.value.value == "true"
                else:
                    self.v.err.error(f"param '{pd.name}': unknown or bad option '{arg.name}'",
                                     arg.span, f"write {pd.value.name}(init=1, bound=none|unit|"
                                     "double|exp, tied=false|true), or raw=LOGIT instead of "
                                     "init")
                    return None
        if raw is not None and init is not None:
            self.v.err.error(f"param '{pd.name}': both init and raw given", span,
                             "give one: init (the value) or raw (the logit before the bound)")
            return None
        if raw is not None:
            problem = weight_problem(raw, _number_text(pd.value, "raw"), f"param '{pd.name}': raw")
            if problem:
                self.v.err.error(problem, span, "a raw value is a logit; choose a small one")
                return None
            if bound in BOUND_RANGE:
                init = _bounded(raw, bound)
        if init is not None and (problem := weight_problem(init, _number_text(pd.value),
                                                           f"param '{pd.name}': init")):
            self.v.err.error(problem, span, "a param's init is a weight; choose a small one")
            return None
        if bound not in BOUND_RANGE:
            self.v.err.error(f"param '{pd.name}': unknown bound '{bound}'", span,
                             "bounds: none (any value), unit (sigmoid, 0..1), double (2 "
                             "sigmoid, 0..2), exp (exp, above 0)")
            return None
        if init is None:
            self.v.err.error(f"param '{pd.name}' needs an initial value", span,
                             "write `param NAME = 1` or `param NAME = scalar(init=1, "
                             "bound=double)`")
            return None
        lo_hi = BOUND_RANGE[bound]
        if lo_hi and not lo_hi[0] < init < lo_hi[1]:
            self.v.err.error(f"param '{pd.name}': init {init:g} is outside the open range "
                             f"{lo_hi} of bound={bound}", span,
                             f"bound={bound} reaches {lo_hi[0]:g} and {lo_hi[1]:g} only in the "
                             f"limit: choose an init strictly between them, e.g. "
                             f"{(lo_hi[0] + lo_hi[1]) / 2:g}")
            return None
        return Param(name=pd.name, init=float(init), bound=bound, tied=tied, kind=kind)

    def options(self, params: dict[str, Param]) -> CustomOptions | None:
        values: dict[str, object] = {"name": self.defn.name, "params": tuple(params.values())}
        spans: dict[str, Span] = {}
        texts: dict[str, str] = {}
        for st in self.defn.settings:
            if st.name in spans:
                self.v.err.error(f"duplicate setting '{st.name}' in {self.what}", st.span)
                continue
            if st.name not in CustomOptions.model_fields or st.name in INTERNAL:
                names = sorted(set(CustomOptions.model_fields) - set(INTERNAL))
                self.v.err.error(f"unknown setting '{st.name}' in {self.what}", st.span,
                                 "settings are: " + ", ".join(names))
                continue
            if st.name in WEIGHT_LISTS and not self.weights(st):
                spans[st.name] = st.span
                continue
            if st.name == "maps":
                spans[st.name] = st.span
                maps = self.maps(st, params)
                if maps is not None:
                    values[st.name] = maps
                continue
            values[st.name], spans[st.name] = _plain(st.value), st.span
            texts[st.name] = self.v.text(st.value)
        vres = values.get("value_residual")
        if isinstance(vres, tuple) and len(vres) != 2:
            self.v.err.error(f"{self.what}: 'value_residual' needs two entries [λ1, λ2] "
                             f"(V <- λ1 V_first + λ2 V), got {len(vres)}",
                             spans["value_residual"], "e.g. value_residual = [0.5, 0.5]")
            return None
        f = values.get("fractions")
        if "streams" not in values and isinstance(f, (int, float)) and not isinstance(f, bool) \
                and float(f).is_integer() and f >= 1:  # m fractions are m streams (a bad m
            values["streams"] = int(f)  # is reported once, at `fractions`)
        if any(key in spans and key not in values for key in (*WEIGHT_LISTS, "maps")):
            return None  # reported by weights() or maps()
        try:
            opts = CustomOptions.model_validate(values)
        except ValidationError as exc:
            for e in exc.errors():
                key = str(e["loc"][0]) if e["loc"] else ""
                got = texts.get(key, str(e.get("input")))
                self.v.err.error(f"{self.what}: setting '{key}' "
                                 f"{pydantic_problem(e, CustomOptions, got)}",
                                 spans.get(key, self.defn.name_span), value_hint(e, got))
            return None
        return opts if self.check(opts, params, spans) else None

    MAP_HELP = ("write maps = [lowrank(rank=8, source=2, target=1, weight=g, start=2)]: "
                "H'_target += weight · B A H_source from layer `start` on (weight: a number "
                "or a declared param); linear(source=..., target=...) for a full w x w map")

    def maps(self, st: s.Setting, params: dict[str, Param]) -> tuple[dict, ...] | None:
        """`maps = [lowrank(rank=r, source=s, target=t, weight=w, start=k), ...]`: each item a
        low-rank map of one old stream into one new stream; None after reporting."""
        items = st.value.items if isinstance(st.value, s.ListValue) else None
        if items is None:
            self.v.err.error(f"{self.what}: 'maps' is a list of low-rank maps, got "
                             f"'{short(self.v.text(st.value))}'", st.value.span, self.MAP_HELP)
            return None
        out, capped, quiet_failure = [], Capped(self.v.err), False
        declared = {pd.name for pd in self.defn.params}
        ints = ("rank", "source", "target", "start")
        for i, item in enumerate(items, start=1):
            if not isinstance(item, s.Call) or item.name not in ("lowrank", "linear"):
                capped.error(f"{self.what}: map {i} is not a `lowrank(...)` or `linear(...)` "
                             f"call: '{short(self.v.text(item))}'", item.span, self.MAP_HELP)
                continue
            record: dict[str, object] = {"kind": item.name}
            if item.name == "linear" and any(a.name == "rank" for a in item.args):
                arg = next(a for a in item.args if a.name == "rank")
                capped.error(f"{self.what}: map {i}: linear(...) is a full w x w map and "
                             "takes no rank", arg.span,
                             "drop rank=..., or write lowrank(rank=..., ...)")
                continue
            for arg in item.args:
                val = arg.value
                if arg.name in record:
                    capped.error(f"{self.what}: map {i}: '{arg.name}' given twice", arg.span,
                                 "give each option once")
                elif arg.name in ints and isinstance(val, s.Number) and val.text.isdigit():
                    record[arg.name] = int(val.text)
                elif arg.name == "weight" and isinstance(val, s.Number):
                    problem = weight_problem(val.value, val.text, f"map {i}: weight")
                    if problem:
                        capped.error(f"{self.what}: {problem}", val.span)
                    record["weight"] = float(val.value)
                elif arg.name == "weight" and isinstance(val, s.Name) and val.value in params \
                        and params[val.value].kind == "vector":
                    capped.error(f"{self.what}: map {i}: weight '{val.value}' is a vector "
                                 "param; a map's weight is one number", val.span,
                                 f"declare {val.value} as scalar(...)")
                elif arg.name == "weight" and isinstance(val, s.Name) and val.value in params:
                    record["weight"] = val.value
                elif arg.name == "weight" and isinstance(val, s.Name) and val.value in declared:
                    quiet_failure = True  # its `param` line has the error
                elif arg.name == "weight" and isinstance(val, s.Name):
                    capped.error(f"{self.what}: map {i}: weight names '{short(val.value)}', "
                                 "which is not a declared param", val.span,
                                 f"declare it in the connection: param {short(val.value)} = 1")
                elif arg.name in ints or arg.name == "weight":
                    want = "a number or a param" if arg.name == "weight" else "a whole number"
                    capped.error(f"{self.what}: map {i}: '{arg.name}' must be {want}, got "
                                 f"'{short(self.v.text(val)) if val else arg.name}'",
                                 arg.span, self.MAP_HELP)
                else:
                    capped.error(f"{self.what}: map {i}: unknown option '{arg.name}'",
                                 arg.span, "options: rank, source, target, weight, start")
            needed = ("rank", "source", "target") if item.name == "lowrank" else (
                "source", "target")
            missing = [key for key in needed if key not in record]
            if missing and not any(a.name in missing for a in item.args) and \
                    not any(a.name not in (*ints, "weight") for a in item.args):
                capped.error(f"{self.what}: map {i} needs {', '.join(missing)}", item.span,
                             self.MAP_HELP)
            out.append(record)
        capped.close("maps with problems")
        return tuple(out) if capped.ok and not quiet_failure else None

    def weights(self, st: s.Setting) -> bool:
        """The numbers of a weight list (init, readout, value_residual) are finite and within
        the limit 'weight', and the list is no longer than a connection has streams."""
        if not isinstance(st.value, s.ListValue):
            return True  # pydantic says what it should be
        if len(st.value.items) > MAX_STREAMS:
            self.v.err.error(f"{self.what}: '{st.name}' has {len(st.value.items):,} entries, "
                             f"over the limit of {MAX_STREAMS} streams (limit 'streams')",
                             st.span, "one weight per stream")
            return False
        capped = Capped(self.v.err)
        for i, item in enumerate(st.value.items):
            if isinstance(item, s.Expr):
                capped.error(f"{self.what}: '{st.name}' entry {i + 1} is an expression; "
                             "arithmetic is allowed in matrix entries only", item.span,
                             "write a number (or, in value_residual, a param's name)")
            if isinstance(item, s.Number):
                problem = weight_problem(item.value, item.text, f"'{st.name}' entry {i + 1}")
                if problem:
                    capped.error(f"{self.what}: {problem}", item.span)
        capped.close("entries too large")
        return capped.ok

    def split_check(self, o: CustomOptions, bad: Callable[..., None]) -> None:
        """`fractions = m` (FC's split state): m streams, per-token weights from a generator,
        the fractions concatenated at the readout."""
        m = o.fractions
        if o.state == "history":
            return  # reported with the other stream-only settings
        if o.streams != m:
            bad("fractions", f"fractions = {m} splits h into {m} streams, but streams = "
                f"{o.streams}", f"write streams = {m}, or drop `streams`")
        elif not any(c.name == "" for c in self.defn.generators):
            bad("fractions", f"fractions = {m} needs a `generator {{ ... }}` block (the split "
                "state's per-token weights: m read columns, OUT on the diagonal)",
                "add a generator, e.g. as specs/custom/frac_written.hc, or drop fractions")
        if any(c.name == "readout" for c in self.defn.generators):
            bad("fractions", f"a `generator readout` weighs whole streams, but fractions = {m} "
                "concatenates the fractions at the readout",
                "drop the readout generator, or drop fractions")
        for key in ("init", "readout", "readout_norm"):
            if key in o.model_fields_set:
                bad(key, f"'{key}' weighs whole streams, but fractions = {m} splits h and "
                    "concatenates the fractions at the readout",
                    f"drop '{key}', or drop fractions")

    def check(self, o: CustomOptions, params: dict[str, Param], spans: dict[str, Span]) -> bool:
        ok = True

        def bad(key: str, message: str, hint: str | None = None) -> None:
            nonlocal ok
            ok = False
            self.v.err.error(f"{self.what}: {message}", spans.get(key, self.defn.name_span),
                             hint)

        if o.fractions > 1:
            self.split_check(o, bad)
        for key in ("init", "readout"):
            if getattr(o, key) is not None and len(getattr(o, key)) != o.streams:
                bad(key, f"'{key}' needs one weight per stream ({o.streams}), got "
                    f"{len(getattr(o, key))}", f"write {o.streams} numbers, e.g. "
                    f"{key} = [" + ", ".join(["1"] * o.streams) + "]")
        for key in STREAM_LISTS:
            for k in getattr(o, key) or ():
                if not 1 <= k <= o.streams:
                    bad(key, f"'{key}' names stream {k}; streams are 1..{o.streams}",
                        "streams are numbered from 1")
        declared = {pd.name for pd in self.defn.params}  # invalid ones were reported
        for key in ("value_residual", "readout"):
            for entry in getattr(o, key) or ():
                if isinstance(entry, str) and entry not in declared:
                    bad(key, f"{key} names '{entry}', which is not a declared param",
                        f"declare it: param {entry} = 0.5")
                elif isinstance(entry, str) and entry not in params:
                    ok = False
                elif isinstance(entry, str) and params[entry].kind == "vector":
                    bad(key, f"{key} names '{entry}', a vector param; {key} takes one "
                        "number per entry", f"declare it as scalar(...), or use '{entry}' "
                        "in a matrix entry (a per-channel weight)")
        for i, mp in enumerate(o.maps, start=1):
            for key in ("source", "target"):
                if getattr(mp, key) > o.streams:
                    bad("maps", f"map {i}: {key} = {getattr(mp, key)} names a stream that "
                        f"does not exist; streams are 1..{o.streams}",
                        "streams are numbered from 1")
        if o.state == "history":
            if self.defn.rules:
                ok = False
                self.v.err.error(f"{self.what}: a history connection takes no matrices (its "
                                 "weights are aggregates over earlier outputs)",
                                 self.defn.rules[0].span,
                                 "drop the matrices, or drop `state = history`")
            for key in STREAM_ONLY:
                if key in o.model_fields_set:
                    bad(key, f"'{key}' is a setting of stream state; a history connection "
                        "does not read it", "drop it, or drop `state = history`")
            keep = o.keep or ("outputs" if o.weights == "softmax" else "states")
            if o.ways != "x" and keep == "outputs":
                bad("ways", f"ways = {o.ways} feeds q, k and v from the history, but it keeps "
                    "raw layer outputs (keep = outputs), whose layers read one value",
                    "write keep = states (MUDD: ways = qkvr) or keep = updates (DCA: ways = "
                    "qkv)")
            elif o.ways == "qkv" and keep == "states":
                bad("ways", "ways = qkv has no residual way: its residual is q, and a history "
                    "of states (keep = states) would add the residual twice",
                    "write keep = updates (DCA), or ways = qkvr (MUDD)")
            for pd in self.defn.params:
                ok = False
                self.v.err.error(f"{self.what}: a history connection has no params to "
                                 f"use '{pd.name}'", pd.name_span,
                                 "its weights are built in: weights = static | softmax")
        else:
            for key in HISTORY_ONLY:
                if key in o.model_fields_set:
                    bad(key, f"'{key}' is a setting of history state, and this connection "
                        "has stream state", "add `state = history`, or drop it")
        return ok

    def generators(self, o: CustomOptions) -> CustomOptions | None:
        """The `generator [readout] { ... }` blocks, validated against the stream count."""
        found: dict[str, object] = {}
        spans: dict[str, Span] = {}
        ok = True
        for g in self.defn.generators:
            if g.name not in ("", "readout"):
                ok = False
                self.v.err.error(f"{self.what}: unknown generator '{g.name}'", g.name_span,
                                 "write `generator { ... }` for the layers' weights, or "
                                 "`generator readout { ... }` for the readout's")
                continue
            key = "readout_generator" if g.name == "readout" else "generator"
            if key in spans:
                ok = False
                self.v.err.error(f"{self.what}: a second `generator{' readout' if g.name else ''}`"
                                 " block", g.span, "a connection has one of each")
                continue
            spans[key] = g.span
            if o.state == "history":
                hist = self.history_generator(o, g)
                ok = ok and hist is not None
                found["history_generator"] = hist
                continue
            rec = GeneratorReader(self.v.err, self.what, o.streams,
                                  1 if g.name else o.fractions).read(g)
            if rec is None:
                ok = False
            else:
                found[key] = rec
        if "generator" in spans and self.defn.rules:
            ok = False
            self.v.err.error(f"{self.what}: matrix rules and a generator both give M; a "
                             "generator's weights not generated are constant (read 1, "
                             "write 1, res the identity)", self.defn.rules[0].span,
                             "drop the matrix rules, or the generator")
        if "readout_generator" in spans:
            for key in ("readout", "readout_norm"):
                if key in o.model_fields_set:
                    ok = False
                    self.v.err.error(f"{self.what}: '{key}' and `generator readout` both "
                                     "give the readout", spans["readout_generator"],
                                     f"drop '{key}', or the readout generator")
        return o.model_copy(update=found) if ok else None

    def history_generator(self, o: CustomOptions, g: s.GeneratorSyntax) -> object:
        """A `generator { ... }` of a history connection: the weights of its aggregates."""
        if g.name == "readout":
            self.v.err.error(f"{self.what}: a history connection reads out with its last "
                             "aggregate, made by the same generator", g.name_span,
                             "drop `readout`: write `generator { ... }`")
            return None
        if "weights" in o.model_fields_set:
            self.v.err.error(f"{self.what}: 'weights' and a generator both make the "
                             "aggregates' weights", g.span,
                             "drop `weights = ...` (the generator replaces it)")
            return None
        return HistoryGeneratorReader(self.v.err, self.what, _model_dim(self.v)).read(g)

    def matrices(self, o: CustomOptions, params: dict[str, Param],
                 n_layers: int) -> tuple[tuple[int, Template], ...]:
        size = o.streams + 1
        out: dict[int, Template] = {}
        for rule in self.defn.rules:
            template = self.template(rule.value, size, params)
            for k in self.v.select(rule.selector, n_layers):
                if template is not None:
                    out[k] = template  # a later rule overrides an earlier one
        return tuple(sorted(out.items()))

    def check_rules(self, o: CustomOptions, params: dict[str, Param], n_layers: int) -> None:
        """Every matrix rule checked (shapes, entries, selectors), nothing kept."""
        for rule in self.defn.rules:
            self.template(rule.value, o.streams + 1, params)
            self.v.select(rule.selector, n_layers)

    def template(self, value: s.Value, size: int, params: dict[str, Param]) -> Template | None:
        expect = (f"expected a {size}x{size} matrix for streams={size - 1} (M = [[0, OUT], "
                  "[READ, RES]])")
        rows = value.items if isinstance(value, s.ListValue) else None
        if rows is None or len(rows) != size or not all(
                isinstance(r, s.ListValue) and len(r.items) == size for r in rows):
            self.v.err.error(f"{self.what}: {expect}", value.span,
                             "write a matrix as a list of rows: [[0, 1], [1, 1]]")
            return None
        out, ok = [], True
        capped = Capped(self.v.err)
        declared = {pd.name for pd in self.defn.params}  # invalid ones were reported
        for i, row in enumerate(rows):
            entries: list[float | str] = []
            for j, e in enumerate(row.items):
                if isinstance(e, s.Number):
                    problem = weight_problem(e.value, e.text, f"matrix entry ({i + 1}, {j + 1})")
                    if problem:
                        capped.error(problem, e.span)
                    entries.append(e.value)
                elif isinstance(e, s.Name) and e.value in params and (i, j) == (0, 0) and \
                        params[e.value].kind == "vector":
                    ok = False
                    capped.error(f"matrix entry (1, 1) names the vector param '{e.value}'; "
                                 "it is M's corner (no read of the layer's own output)",
                                 e.span, "write 0 there: M = [[0, OUT], [READ, RES]]")
                elif isinstance(e, s.Name) and e.value in params:
                    entries.append(e.value)
                elif isinstance(e, s.Name) and e.value in declared:
                    ok = False  # its `param` line has the error
                elif isinstance(e, s.Expr):
                    entry = self.expression(e, (i + 1, j + 1), params, declared, capped)
                    if (i, j) == (0, 0) and isinstance(entry, str) and any(
                            params[u].kind == "vector" for u in names(entry)):
                        capped.error(f"matrix entry (1, 1) is over vector params: "
                                     f"'{self.v.text(e)}'; it is M's corner (no read of the "
                                     "layer's own output)", e.span,
                                     "write 0 there: M = [[0, OUT], [READ, RES]]")
                        entry = None
                    if entry is None:
                        ok = False
                    else:
                        entries.append(entry)
                else:
                    text = short(e.value) if isinstance(e, s.Name) else self.v.text(e)
                    capped.error(f"matrix entry ({i + 1}, {j + 1}) is neither a number nor "
                                 f"a declared param: '{text}'", e.span,
                                 f"declare it in the connection: param {text} = 1"
                                 if isinstance(e, s.Name) else
                                 "an entry is a number, a param or arithmetic (+ - * /) over "
                                 "them; no calls: for σ, 2σ or e^ of a param give it "
                                 "bound=unit, double or exp")
            out.append(tuple(entries))
        capped.close("entries that are not numbers, params or small enough")
        return tuple(out) if ok and capped.ok else None


    def expression(self, e: s.Expr, at: tuple[int, int], params: dict[str, Param],
                   declared: set[str], capped: Capped) -> float | str | None:
        """An arithmetic entry (`1 - g`): its canonical text, or its number when it names no
        param; None after reporting what is wrong."""
        tree = expr_tree(e)
        if tree is None:
            capped.error(f"matrix entry {at} is an expression of something other than numbers "
                         f"and params: '{self.v.text(e)}'", e.span,
                         "an entry is arithmetic (+ - * /) over numbers and declared params, "
                         "e.g. 1 - g")
            return None
        used = names(render(tree))
        unknown = sorted(used - declared)
        if unknown:
            capped.error(f"matrix entry {at} names '{unknown[0]}', which is not a declared "
                         "param", e.span, f"declare it in the connection: param {unknown[0]} = 1")
            return None
        if used - set(params):
            return None  # its `param` line has the error
        vectors = sorted(u for u in used if params[u].kind == "vector")
        scalars = sorted(u for u in used if params[u].kind == "scalar")
        if vectors and scalars:
            capped.error(f"matrix entry {at} mixes the vector param '{vectors[0]}' with the "
                         f"scalar param '{scalars[0]}': '{self.v.text(e)}'", e.span,
                         "an entry over vectors is arithmetic of vectors and numbers only; "
                         f"declare '{scalars[0]}' as vector(...) (one value per channel)")
            return None
        init = {name: params[name].init for name in used}
        try:
            at_init = float(evaluate(render(tree), init, float))
        except ZeroDivisionError:
            capped.error(f"matrix entry {at} divides by zero"
                         + (" at init" if used else "") + f": '{self.v.text(e)}'", e.span,
                         "a divisor must not be 0" + (
                             "; give the params it names inits that keep it away from 0, or "
                             "a positive bound (unit, double, exp)" if used else ""))
            return None
        if not used:  # numbers only: fold to one number
            value = at_init
            problem = weight_problem(value, self.v.text(e), f"matrix entry {at}")
            if problem:
                capped.error(problem, e.span, "a matrix entry is a weight; choose a small one")
                return None
            return value
        return render(tree)


def _names(value: object) -> set[str]:
    """Every name written in a value (a list, a call's arguments, arithmetic), recursively."""
    if isinstance(value, s.Name):
        return {value.value}
    if isinstance(value, (s.ListValue, s.Expr)):
        items = value.items if isinstance(value, s.ListValue) else value.args
        return set().union(*(_names(x) for x in items))
    if isinstance(value, s.Call):
        return set().union(*(_names(a.value) for a in value.args))
    return set()


def check_params_used(v: Context, defn: s.ConnectionSyntax, params: dict[str, Param]) -> None:
    """A `param` no matrix entry, `readout`, `value_residual`, map weight or generator setting
    names is a located error: it would be a learned weight that changes nothing (hcdsl stats
    would count it, the optimizer would decay it). History connections take no params at
    all (reported where they are read); a param with its own error is not reported twice."""
    written = [st.value for st in defn.settings] + [r.value for r in defn.rules]
    written += [st.value for g in defn.generators for st in g.settings]
    if any(st.name == "state" and isinstance(st.value, s.Name) and st.value.value == "history"
           for st in defn.settings):
        return
    used = set().union(*(_names(x) for x in written))
    for pd in defn.params:
        if pd.name in params and pd.name not in used:
            hint = (f"remove it, or use it in a matrix entry (e.g. all = [[0, 1], [1, "
                    f"{pd.name}]]), `readout`, `value_residual` or a map's weight")
            if defn.generators:
                hint = ("remove it: a generator learns its own weights (its settings name no "
                        "params); or use it in `value_residual` or a map's weight")
            v.err.error(f"connection '{defn.name}': param '{pd.name}' is declared but never "
                        "used", pd.name_span, hint)


def check_unused(v: Context, defn: s.ConnectionSyntax, n_layers: int) -> None:
    """A connection block the model does not use: every error reported, nothing built (a
    file of thousands of blocks costs their checks, not thousands of connection specs)."""
    c = _Connection(v, defn)
    before = len(v.err.diagnostics)
    params = c.params()
    opts = c.options(params)
    if opts is not None:
        c.check_rules(opts, params, n_layers)
        c.generators(opts)
    if len(v.err.diagnostics) == before:  # no cascade after the block's own errors
        check_params_used(v, defn, params)


def custom_connection(v: Context, defn: s.ConnectionSyntax, cd: s.ConnectDef,
                      n_layers: int) -> ConnectionSpec:
    """The ConnectionSpec of `connect NAME` where NAME is a connection defined in the file."""
    c = _Connection(v, defn)
    before = len(v.err.diagnostics)
    if cd.call.args or cd.rules:
        v.err.error(f"{c.what} is defined in this file and takes no options or matrices here",
                    cd.call.span, f"set them inside `connection {defn.name} {{ ... }}`")
    params = c.params()
    opts = c.options(params)
    if opts is not None:
        opts = c.generators(opts)
    if opts is None:
        return ConnectionSpec(kind="residual")  # the errors are reported
    matrices = c.matrices(opts, params, n_layers)
    if len(v.err.diagnostics) == before:  # no cascade after the block's own errors
        check_params_used(v, defn, params)
    return ConnectionSpec(kind="custom", options=opts, matrices=matrices)
