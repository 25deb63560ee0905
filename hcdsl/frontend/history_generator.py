"""Validate a `generator { ... }` block of a `state = history` connection into a
HistoryGenerator record (hcdsl/lang/history_generator.py). Every mistake is reported where it
was written, with a hint; the shapes (input against projection, heads against dim) are
checked here, so the IR never sees a generator whose weights do not fit the aggregate."""

from __future__ import annotations

import math
from typing import Any

from hcdsl.errors import ErrorSink, Span
from hcdsl.frontend import syntax as s
from hcdsl.frontend.generator import GeneratorReader
from hcdsl.lang.history_generator import (
    HIST_ACTS, MID_ACTS, HistNorm, HistoryGenerator, HistProj, HistStatic,
)
from hcdsl.lang.limits import MAX_HIDDEN

SETTINGS = ("input", "norm", "proj", "act", "static")
INPUTS = ("none", "newest", "sources")
PROJS = ("none", "linear", "query", "lowrank")
STATICS = ("none", "source", "channel")
STATIC_INITS = ("newest", "zero", "ones")
MAX_RANK = MAX_HIDDEN  # the largest rank / round a lowrank projection may ask for


class _Bad(Exception):
    """One reported error: stop reading this block's current item."""


_text = GeneratorReader.text  # a value as the message quotes it (one text for both readers)


class HistoryGeneratorReader:
    def __init__(self, err: ErrorSink, what: str, dim: int | None) -> None:
        self.err, self.what, self.dim = err, what, dim

    def fail(self, message: str, span: Span, hint: str | None = None) -> None:
        self.err.error(f"{self.what}: {message}", span, hint)
        raise _Bad

    # -- values ---------------------------------------------------------------------------
    def word(self, v: s.Value | None, key: str, span: Span, choices: tuple[str, ...]) -> str:
        if not isinstance(v, s.Name) or v.value not in choices:
            self.fail(f"'{key}' must be one of {', '.join(choices)}, got '{_text(v)}'",
                      v.span if v is not None else span, f"write {key} = {choices[0]}")
        return v.value

    def integer(self, v: s.Value | None, key: str, span: Span, lo: int, hi: int) -> int:
        if not isinstance(v, s.Number) or not math.isfinite(v.value) or \
                not float(v.value).is_integer() or not lo <= v.value <= hi:
            self.fail(f"'{key}' must be a whole number from {lo} to {hi:,}, got '{_text(v)}'",
                      v.span if v is not None else span, f"e.g. {key}={lo}")
        return int(v.value)

    def call(self, v: s.Value, key: str, kinds: tuple[str, ...]) -> tuple[str, dict[str, s.Arg]]:
        """NAME or NAME(args): the name (one of `kinds`) and its arguments by name."""
        if isinstance(v, s.Name):
            name, args = v.value, ()
        elif isinstance(v, s.Call):
            name, args = v.name, v.args
        else:
            name, args = _text(v), ()
        if name not in kinds:
            self.fail(f"'{key}' must be one of {', '.join(kinds)}, got '{name}'", v.span,
                      f"write {key} = {kinds[0]}")
        found: dict[str, s.Arg] = {}
        for arg in args:
            if arg.name in found:
                self.fail(f"'{key}': duplicate argument '{arg.name}'", arg.span,
                          "write each argument once")
            found[arg.name] = arg
        return name, found

    def no_args(self, args: dict[str, s.Arg], allowed: tuple[str, ...], key: str,
                name: str) -> None:
        for arg in args.values():
            if arg.name not in allowed:
                hint = (f"{name} takes: {', '.join(allowed)}" if allowed
                        else f"{name} takes no arguments")
                self.fail(f"'{key} = {name}' has no option '{arg.name}'", arg.span, hint)

    # -- the settings ---------------------------------------------------------------------
    def norm(self, v: s.Value) -> HistNorm | None:
        if isinstance(v, (s.Name, s.Call)) and (v.name if isinstance(v, s.Call) else v.value) \
                == "layernorm":
            self.fail("a history generator normalises with rmsnorm (MUDD, attention "
                      "residuals and DCA all do)", v.span, "write norm = rmsnorm(weight=none)")
        name, args = self.call(v, "norm", ("none", "rmsnorm"))
        self.no_args(args, ("weight",) if name == "rmsnorm" else (), "norm", name)
        if name == "none":
            return None
        w = args.get("weight")
        weight = self.word(w.value, "weight", w.span, ("none", "scale")) if w else "none"
        return HistNorm(weight=weight)

    def proj(self, v: s.Value) -> HistProj:
        name, args = self.call(v, "proj", PROJS)
        allowed = {"query": ("heads",), "lowrank": ("rank", "round", "rank_ways", "mid")}
        self.no_args(args, allowed.get(name, ()), "proj", name)
        values: dict[str, Any] = {"kind": name}
        if "heads" in args:
            values["heads"] = self.integer(args["heads"].value, "heads", args["heads"].span,
                                           1, self.dim or MAX_RANK)
        if "rank" in args and not (isinstance(args["rank"].value, s.Name)
                                   and args["rank"].value.value == "auto"):
            values["rank"] = self.integer(args["rank"].value, "rank", args["rank"].span, 1,
                                          MAX_RANK)
        if "round" in args:
            values["round"] = self.integer(args["round"].value, "round", args["round"].span,
                                           1, MAX_RANK)
        if "rank_ways" in args:
            a = args["rank_ways"]
            values["rank_ways"] = self.integer(a.value, "rank_ways", a.span, 1, 4)
        if "mid" in args:
            values["mid"] = self.word(args["mid"].value, "mid", args["mid"].span, MID_ACTS)
        return HistProj(**values)

    def static(self, v: s.Value) -> HistStatic | None:
        name, args = self.call(v, "static", STATICS)
        self.no_args(args, ("init",) if name != "none" else (), "static", name)
        if name == "none":
            return None
        i = args.get("init")
        init = self.word(i.value, "init", i.span, STATIC_INITS) if i else "newest"
        return HistStatic(per=name, init=init)

    # -- the block ------------------------------------------------------------------------
    def read(self, g: s.GeneratorSyntax) -> HistoryGenerator | None:
        values: dict[str, Any] = {}
        seen: dict[str, s.Setting] = {}
        ok = True
        for st in g.settings:
            try:
                if st.name in seen:
                    self.fail(f"duplicate setting '{st.name}' in the generator", st.span,
                              "write each setting once")
                seen[st.name] = st
                if st.name == "input":
                    values["input"] = self.word(st.value, "input", st.span, INPUTS)
                elif st.name == "norm":
                    values["norm"] = self.norm(st.value)
                elif st.name == "proj":
                    values["proj"] = self.proj(st.value)
                elif st.name == "act":
                    values["act"] = self.word(st.value, "act", st.span, HIST_ACTS)
                elif st.name == "static":
                    values["static"] = self.static(st.value)
                else:
                    hint = "a history generator's settings are: " + ", ".join(SETTINGS)
                    if st.name in ("read", "write", "res", "readout"):
                        hint = (f"`{st.name}` is an output of a stream generator (drop "
                                "`state = history` for one); " + hint)
                    self.fail(f"unknown setting '{st.name}' in the generator", st.span, hint)
            except _Bad:
                ok = False
        if not ok:
            return None
        gen = HistoryGenerator(**values)
        try:
            self.check(gen, g, seen)
        except _Bad:
            return None
        return gen

    def check(self, gen: HistoryGenerator, g: s.GeneratorSyntax,
              seen: dict[str, s.Setting]) -> None:
        """The checks that need the whole block: what the input feeds, shapes, axes."""
        def at(key: str) -> Span:
            return seen[key].value.span if key in seen else g.span

        p = gen.proj
        if not gen.dynamic and gen.static is None:
            self.fail("the generator makes no weights (no projection and static = none)",
                      at("static"), "give a projection (proj = linear | query | lowrank) or "
                      "static weights (static = source)")
        if gen.input == "none" and gen.dynamic:
            self.fail(f"proj = {p.kind} needs an input to project", at("proj"),
                      "write input = newest (MUDD: the newest output) or input = sources "
                      "(attention residuals, DCA: every source)")
        if gen.input != "none" and not gen.dynamic:
            self.fail(f"input = {gen.input} is read by nothing: there is no projection",
                      at("input"), "add proj = linear | query | lowrank, or drop the input")
        if gen.norm is not None and gen.input == "none":
            self.fail("the norm has no input to normalise", at("norm"),
                      "drop the norm, or give an input")
        if not gen.dynamic and gen.act != "identity":
            self.fail(f"act = {gen.act} applies to the projection, and there is none",
                      at("act"), "drop act, or add a projection")
        if p.kind == "query" and gen.input != "sources":
            self.fail("a query scores every source against its own key: it reads "
                      f"input = sources, not input = {gen.input}", at("input"),
                      "write input = sources")
        if p.kind == "lowrank" and gen.input != "newest":
            self.fail("lowrank makes the weights of every source and way from one vector "
                      f"(MUDD Eq. 6): it reads input = newest, not input = {gen.input}",
                      at("input"), "write input = newest, or proj = linear for one value "
                      "per source")
        if p.heads > 1 and self.dim and self.dim % p.heads:
            divisors = [h for h in range(1, min(self.dim, 64) + 1) if self.dim % h == 0]
            self.fail(f"heads = {p.heads} must divide dim = {self.dim} (each head weighs "
                      f"dim / heads channels)", at("proj"),
                      f"choose heads among {divisors}")
        if p.kind != "lowrank" and (p.round or p.rank_ways):
            self.fail("round and rank_ways are options of lowrank", at("proj"),
                      "drop them")
