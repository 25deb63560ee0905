"""Validate a `generator [readout] { ... }` block of a connection into a Generator record
(hcdsl/lang/generator.py). Every mistake is reported where it was written, with a hint; the
shapes are checked against the connection's stream count here, so the IR never sees a
generator whose outputs do not fit M."""

from __future__ import annotations

import math
from typing import Any

from hcdsl.errors import ErrorSink, Span
from hcdsl.frontend.parser import parse_syntax
from hcdsl.frontend import syntax as s
from hcdsl.lang.generator import (
    ACTS, ROLES_READOUT, ROLES_STEP, Constraint, GenNorm, GenOut, GenProj, Generator,
)

MAX_PERMUTATION_STREAMS = 6  # n! logits: 720 at n = 6
CONSTRAINTS = ("sinkhorn", "permutations", "kronecker")
OUT_KEYS = ("act", "axis", "div", "scale", "bias", "affine", "add", "per", "source", "combine",
            "constraint", "std", "rank", "mid", "mid_div")
READ_ONLY = ("source", "combine")


class _Bad(Exception):
    """One reported error: stop reading this block's current item."""


class GeneratorReader:
    def __init__(self, err: ErrorSink, what: str, streams: int, fractions: int = 1) -> None:
        self.err, self.what, self.n = err, what, streams
        self.fractions = fractions  # m > 1: a split state (FC), m read columns

    def fail(self, message: str, span: Span, hint: str | None = None) -> None:
        self.err.error(f"{self.what}: {message}", span, hint)
        raise _Bad

    # -- values ---------------------------------------------------------------------------
    def number(self, v: s.Value | None, key: str, span: Span, lo: float | None = None,
               positive: bool = False) -> float:
        if not isinstance(v, s.Number) or not math.isfinite(v.value):
            self.fail(f"'{key}' needs a finite number", span, f"e.g. {key}=1")
        x = float(v.value)
        if positive and x <= 0 or lo is not None and x < lo:
            bound = "> 0" if positive else f">= {lo:g}"
            self.fail(f"'{key}' must be {bound}, got {v.text}", v.span,
                      f"choose {key} {bound}")
        return x

    def numbers(self, v: s.ListValue, key: str, span: Span) -> tuple[float, ...]:
        if not v.items:
            self.fail(f"'{key}' needs at least one number", span, f"e.g. {key}=[1, 0]")
        return tuple(self.number(item, key, item.span) for item in v.items)

    def integer(self, v: s.Value | None, key: str, span: Span, lo: int) -> int:
        x = self.number(v, key, span)
        if not x.is_integer() or x < lo:
            self.fail(f"'{key}' must be a whole number >= {lo}, got {self.text(v)}",
                      v.span if v is not None else span, f"e.g. {key}={lo}")
        return int(x)

    def word(self, v: s.Value | None, key: str, span: Span, choices: tuple[str, ...]) -> str:
        if not isinstance(v, s.Name) or v.value not in choices:
            got = self.text(v)
            self.fail(f"'{key}' must be one of {', '.join(choices)}, got '{got}'",
                      v.span if v is not None else span, f"write {key}={choices[0]}")
        return v.value

    @staticmethod
    def text(v: s.Value | None) -> str:
        if v is None:
            return "(nothing)"
        if isinstance(v, (s.Name, s.String)):
            return v.value
        if isinstance(v, s.Number):
            return v.text
        if isinstance(v, s.Call):
            return v.name + "(...)"
        return "[...]"

    # -- the block ------------------------------------------------------------------------
    def read(self, g: s.GeneratorSyntax) -> Generator | None:
        roles = ROLES_READOUT if g.name == "readout" else ROLES_STEP
        values: dict[str, Any] = {}
        outputs: list[GenOut] = []
        seen: dict[str, Span] = {}
        ok = True
        for st in g.settings:
            try:
                if st.name in seen:
                    self.fail(f"duplicate setting '{st.name}' in the generator", st.span,
                              "write each setting once")
                seen[st.name] = st.span
                if st.name == "input":
                    values["input"] = self.word(st.value, "input", st.span, ("flat", "each"))
                elif st.name == "norm":
                    values["norm"] = self.norm(st.value, st.span)
                elif st.name in roles:
                    outputs.append(self.output(st.name, st.value, st.span))
                else:
                    other = ROLES_STEP if g.name == "readout" else ROLES_READOUT
                    hint = ("settings are: input, norm, " + ", ".join(roles))
                    if st.name in other:
                        hint = ("`readout` belongs in `generator readout { ... }`"
                                if st.name == "readout" else
                                f"`{st.name}` belongs in the layers' `generator {{ ... }}`")
                    self.fail(f"unknown setting '{st.name}' in the generator", st.span, hint)
            except _Bad:
                ok = False
        if not ok:
            return None
        gen = Generator(**values, outputs=tuple(outputs), fractions=self.fractions)
        try:
            self.check(gen, g, seen)
        except _Bad:
            return None
        return gen

    def check(self, gen: Generator, g: s.GeneratorSyntax, spans: dict[str, Span]) -> None:
        """The checks that need the whole block (input mode against the outputs)."""
        if g.name == "readout" and gen.output("readout") is None:
            self.fail("a readout generator needs `readout = ...`", g.span,
                      "e.g. readout = linear(act=sigmoid)")
        if not gen.outputs:
            self.fail("the generator makes no weights", g.span,
                      "give at least one of: " + ", ".join(
                          ROLES_READOUT if g.name == "readout" else ROLES_STEP))
        each = gen.input == "each"
        if gen.fractions > 1:
            self.split(gen, g, spans)
        if each and gen.norm is not None and gen.norm.per_stream:
            self.fail("`groups=streams` normalises the streams of a flat input apart; with "
                      "input = each every stream is normalised on its own already",
                      spans["norm"], "drop groups=streams, or write input = flat")
        for o in gen.outputs:
            if each and o.constraint is not None and o.constraint.kind != "sinkhorn":
                self.fail(f"{o.role}: a {o.constraint.kind} constraint mixes over all n x n "
                          "entries at once, but input = each makes one row of RES per stream",
                          spans[o.role], "write input = flat")
            if o.scale_of is not None:
                self.shared_scale(gen, o, spans[o.role])
            if isinstance(o.bias, tuple):
                want = (o.bias_count(self.n, 0, not each, gen.fractions) if o.per == "stream"
                        else None)
                if want is None or len(o.bias) != want:
                    self.fail(f"{o.role}: bias=[...] gives {len(o.bias)} initial values, but "
                              f"the output has {want if want is not None else 'C per stream'}"
                              f" biases", spans[o.role],
                              "one per logit, row-major (input = each: stream by stream); "
                              "or one number for all" if want is not None else
                              "per=channel: write one number for all")
            if o.source == "normed" and gen.norm is None:
                self.fail(f"{o.role}: source=normed reads the normalised state, but the "
                          "generator has norm = none", spans[o.role],
                          "give a norm, or write source=state")

    def split(self, gen: Generator, g: s.GeneratorSyntax, spans: dict[str, Span]) -> None:
        """A split state (`fractions = m`, FC): every fraction makes its own m read values,
        its write on OUT's diagonal and its row of RES, from itself (input = each)."""
        m = gen.fractions
        if gen.input != "each":
            self.fail(f"fractions = {m}: each fraction makes its own weights from itself, "
                      "but input = flat reads all of them", spans.get("input", g.span),
                      "write input = each")
        missing = [r for r in ROLES_STEP if gen.output(r) is None]
        if missing:
            self.fail(f"fractions = {m}: give {', '.join(missing)} too (the split state's M "
                      "has no constant default for them)", g.span,
                      "e.g. as specs/custom/frac_written.hc: read, write and res")
        for o in gen.outputs:
            if o.per == "channel" or o.source == "normed":
                self.fail(f"{o.role}: fractions = {m} weighs each fraction by a number "
                          "(per=channel and source=normed do not apply to a split state)",
                          spans[o.role], "drop per=channel / source=normed")

    def shared_scale(self, gen: Generator, o: GenOut, span: Span) -> None:
        """`scale=read`: the learned scalar of another output (one parameter for both)."""
        owner = gen.output(o.scale_of)
        if o.scale_of == o.role:
            self.fail(f"{o.role}: scale={o.scale_of} names this output itself", span,
                      "write scale=0.01 for a scalar of its own")
        if owner is None or owner.scale is None:
            self.fail(f"{o.role}: scale={o.scale_of} shares the learned scalar of "
                      f"`{o.scale_of}`, which " + ("is not generated" if owner is None
                                                     else "has no scale"), span,
                      f"give {o.scale_of} = linear(..., scale=0.01), or a number here")

    def norm(self, v: s.Value, span: Span) -> GenNorm | None:
        if isinstance(v, s.Name) and v.value == "none":
            return None
        kind = v.name if isinstance(v, s.Call) else v.value if isinstance(v, s.Name) else None
        if kind not in ("rmsnorm", "layernorm"):
            self.fail(f"norm must be rmsnorm(...), layernorm(...) or none, got "
                      f"'{self.text(v)}'", v.span, "e.g. norm = rmsnorm(weight=none, eps=1e-6)")
        fields: dict[str, Any] = {"kind": kind}
        for arg in v.args if isinstance(v, s.Call) else ():
            if arg.name == "weight":
                fields["weight"] = self.word(arg.value, "weight", arg.span,
                                             ("none", "scale", "offset", "affine"))
            elif arg.name == "eps":
                fields["eps"] = self.number(arg.value, "eps", arg.span, positive=True)
            elif arg.name == "groups":
                self.word(arg.value, "groups", arg.span, ("streams",))
                fields["per_stream"] = True
            else:
                self.fail(f"norm: unknown option '{arg.name}'", arg.span,
                          "options: weight=none|scale|offset|affine, eps=1e-6, "
                          "groups=streams")
        return GenNorm(**fields)

    def output(self, role: str, v: s.Value, span: Span) -> GenOut:
        if not isinstance(v, (s.Call, s.Name)) or (
                (v.name if isinstance(v, s.Call) else v.value) not in ("linear", "lowrank")):
            self.fail(f"{role} must be a projection, linear(...) or lowrank(rank=R, ...), got "
                      f"'{self.text(v)}'", v.span,
                      f"e.g. {role} = linear(act=sigmoid, scale=1, bias=0)")
        kind = v.name if isinstance(v, s.Call) else v.value
        args = {a.name: a for a in (v.args if isinstance(v, s.Call) else ())}
        out: dict[str, Any] = {"role": role}
        proj: dict[str, Any] = {"kind": kind}
        for name, arg in args.items():
            val = arg.value
            if name not in OUT_KEYS:
                self.fail(f"{role}: unknown option '{name}'", arg.span,
                          "options: " + ", ".join(OUT_KEYS))
            if name == "per" and role == "res":
                self.fail("res: 'per' is an option of read and write weights", arg.span,
                          "RES is n x n, one weight per pair of streams")
            if name in READ_ONLY and role not in ("read", "readout"):
                self.fail(f"{role}: '{name}' is an option of read weights only", arg.span,
                          "write weights multiply the layer output, not the state"
                          if role == "write" else
                          "RES is n x n, one weight per pair of streams")
            if name == "constraint" and role != "res":
                self.fail(f"{role}: a constraint applies to the residual mix (res) only",
                          arg.span, "drop it, or move it to res = ...")
            if name in ("rank", "mid", "mid_div") and kind != "lowrank":
                self.fail(f"{role}: '{name}' is an option of lowrank(...), not linear(...)",
                          arg.span, f"write {role} = lowrank(rank=16, mid=silu, ...)")
            if name == "act":
                out["act"] = self.word(val, "act", arg.span, ACTS)
            elif name == "axis":
                out["axis"] = self.word(val, "axis", arg.span, (
                    ("rows", "cols") if role == "res" else ("streams", "channels")))
            elif name == "mid":
                proj["mid"] = self.word(val, "mid", arg.span, ACTS)
            elif name == "rank":
                proj["rank"] = self.integer(val, "rank", arg.span, 1)
            elif name == "mid_div":
                proj["mid_div"] = self.number(val, "mid_div", arg.span, positive=True)
            elif name == "std":
                proj["init_std"] = self.number(val, "std", arg.span, lo=0)
            elif name == "div":
                out["div"] = self.number(val, "div", arg.span, positive=True)
            elif name == "scale" and isinstance(val, s.Name):  # another output's scalar
                out["scale_of"] = self.word(val, "scale", arg.span, ROLES_STEP)
            elif name == "bias" and isinstance(val, s.ListValue):  # one init per value
                out["bias"] = self.numbers(val, "bias", arg.span)
            elif name in ("scale", "bias", "add"):
                out[name] = self.number(val, name, arg.span)
            elif name == "affine":
                out["affine"] = self.word(val, "affine", arg.span, ("before_act", "after_act"))
            elif name == "per":
                out["per"] = self.word(val, "per", arg.span, ("stream", "channel"))
            elif name == "source":
                out["source"] = self.word(val, "source", arg.span, ("state", "normed"))
            elif name == "combine":
                out["combine"] = self.word(val, "combine", arg.span, ("sum", "mean"))
            elif name == "constraint":
                out["constraint"] = self.constraint(val, arg.span)
        if "axis" in out and out.get("act") != "softmax":
            self.fail(f"{role}: 'axis' says what a softmax normalises, and act is "
                      f"{out.get('act', 'identity')}", args["axis"].span,
                      "write act=softmax, or drop axis")
        if out.get("axis") == "channels" and out.get("per", "stream") != "channel":
            self.fail(f"{role}: axis=channels needs per=channel (one weight per stream only "
                      "has the streams to normalise over)", args["axis"].span,
                      "write per=channel, or axis=streams")
        if kind == "lowrank" and "rank" not in proj:
            self.fail(f"{role}: lowrank(...) needs its rank", v.span,
                      f"write {role} = lowrank(rank=16, mid=silu, ...)")
        if out.get("constraint") is not None and out.get("affine") == "after_act":
            self.fail(f"{role}: a constraint takes the logits scale * proj + bias; "
                      "affine=after_act has no activation to come after", args["affine"].span,
                      "drop affine")
        if out.get("constraint") is not None and out.get("act", "identity") != "identity":
            self.fail(f"{role}: a constraint makes the weights from the logits itself; "
                      f"act={out['act']} would be ignored", args["act"].span,
                      "drop act (sinkhorn's order says whether it starts with exp or softmax)")
        return GenOut(**out, proj=GenProj(**proj))

    def constraint(self, v: s.Value | None, span: Span) -> Constraint:
        kind = v.name if isinstance(v, s.Call) else v.value if isinstance(v, s.Name) else None
        if kind not in CONSTRAINTS:
            self.fail(f"res: unknown constraint '{self.text(v)}'", v.span if v else span,
                      "constraints: sinkhorn(order=paper|softmax_rows, iters=20, eps=1e-6), "
                      "permutations, kronecker(factors=[2, 2]); none: leave it out")
        fields: dict[str, Any] = {"kind": kind}
        for arg in v.args if isinstance(v, s.Call) else ():
            if kind == "sinkhorn" and arg.name == "order":
                fields["order"] = self.word(arg.value, "order", arg.span,
                                            ("paper", "softmax_rows"))
            elif kind == "sinkhorn" and arg.name == "iters":
                fields["iters"] = self.integer(arg.value, "iters", arg.span, 1)
            elif kind == "sinkhorn" and arg.name == "eps":
                fields["eps"] = self.number(arg.value, "eps", arg.span, lo=0)
            elif kind == "kronecker" and arg.name == "factors":
                fields["factors"] = self.factors(arg.value, arg.span)
            else:
                self.fail(f"{kind}: unknown option '{arg.name}'", arg.span, {
                    "sinkhorn": "options: order=paper|softmax_rows, iters=20, eps=1e-6",
                    "permutations": "permutations takes no options",
                    "kronecker": "options: factors=[2, 2]"}[kind])
        if kind == "permutations" and self.n > MAX_PERMUTATION_STREAMS:
            self.fail(f"permutations mixes all n! permutation matrices: {self.n}! = "
                      f"{math.factorial(self.n):,} logits per token", v.span,
                      f"use it for streams <= {MAX_PERMUTATION_STREAMS}, or "
                      "kronecker(factors=[...]) for more streams")
        if kind == "kronecker" and "factors" not in fields:
            self.fail("kronecker needs its factor sizes", v.span,
                      f"e.g. kronecker(factors=[{', '.join(['2'] * max(1, int(math.log2(max(self.n, 2)))))}])")
        return Constraint(**fields)

    def factors(self, v: s.Value | None, span: Span) -> tuple[int, ...]:
        if not isinstance(v, s.ListValue) or not v.items:
            self.fail("kronecker: factors must be a list of sizes", span,
                      "e.g. factors=[2, 2] for 4 streams")
        sizes = tuple(self.integer(item, "factor", item.span, 2) for item in v.items)
        if any(f > MAX_PERMUTATION_STREAMS for f in sizes):
            self.fail(f"kronecker: a factor of size > {MAX_PERMUTATION_STREAMS} has too many "
                      "permutations", v.span, "split it into smaller factors")
        if math.prod(sizes) != self.n:
            self.fail(f"kronecker: the factors {list(sizes)} multiply to "
                      f"{math.prod(sizes)}, but the connection has {self.n} streams", v.span,
                      "their product must equal `streams`")
        return sizes


def read_generator_text(settings: list[str], streams: int, name: str = "",
                        fractions: int = 1) -> Generator:
    """A generator record from its settings as `generator_lines` writes them (the IR dump's
    short form `input = each; norm = ...; read = linear(...)`), checked as in a spec;
    HcError (located in this small text) when a setting is wrong."""
    head = f"generator {name} {{" if name else "generator {"
    split = [f"  fractions = {fractions}"] if fractions != 1 else []
    source = "\n".join([f"connection c {{", f"  streams = {streams}", *split, f"  {head}"]
                       + [f"    {line}" for line in settings] + ["  }", "}",
                                                                  "model m { dim = 1 }", ""])
    tree = parse_syntax(source, "<generator>")
    err = ErrorSink()
    rec = GeneratorReader(err, "generator", streams, fractions).read(
        tree.connections[0].generators[0])
    err.raise_if_any("<generator>", source)
    assert rec is not None  # every failure reported an error
    return rec
