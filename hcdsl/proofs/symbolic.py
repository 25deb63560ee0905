"""Symbolic evaluation of an IR: every stream is a linear combination of atoms.

Atoms are the embedding h0, the layer outputs T_k (an uninterpreted function per layer
position k, 1-based), and the non-linear wrappers norm(...) and invstd(...) of a linear
combination. Coefficients are polynomials with exact rational coefficients (Fraction): a
constant for ConstCoef (and LearnedCoef at init), a symbol per learned entry otherwise, and a
symbol per (entry, state) for a dynamic entry (an uninterpreted function of the state).

Canonical forms are frozensets, so two evaluations compare with ==, and the layer inputs give
the unfolded connection matrix C^(0) of HC Eqs. 20-23 directly: c_kj is the coefficient of
T_j in layer k's input (j = 0: the embedding).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from fractions import Fraction

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR

MAX_TERMS = 20_000  # a polynomial coefficient larger than this: give up (use --at-init)


class TooLarge(Exception):
    """The symbolic form grew past MAX_TERMS (learned matrices multiplied over many layers)."""


def exact(x: float | int | Fraction) -> Fraction:
    """A float as the rational it was written as (0.1 -> 1/10, not the binary expansion)."""
    if isinstance(x, Fraction):
        return x
    return Fraction(repr(float(x))) if isinstance(x, float) else Fraction(x)


class Poly:
    """A polynomial in named symbols with Fraction coefficients: {monomial: coef}."""

    __slots__ = ("terms",)

    def __init__(self, terms: dict[tuple[str, ...], Fraction] | None = None) -> None:
        self.terms = {m: c for m, c in (terms or {}).items() if c != 0}
        if len(self.terms) > MAX_TERMS:
            raise TooLarge(f"a coefficient has {len(self.terms)} terms")

    @staticmethod
    def const(c: float | Fraction) -> "Poly":
        return Poly({(): exact(c)})

    @staticmethod
    def symbol(name: str) -> "Poly":
        return Poly({(name,): Fraction(1)})

    def __add__(self, other: "Poly") -> "Poly":
        out = dict(self.terms)
        for m, c in other.terms.items():
            out[m] = out.get(m, Fraction(0)) + c
        return Poly(out)

    def __mul__(self, other: "Poly") -> "Poly":
        if not self.terms or not other.terms:
            return Poly()
        if len(other.terms) == 1 and () in other.terms:
            k = other.terms[()]
            return Poly({m: c * k for m, c in self.terms.items()})
        if len(self.terms) == 1 and () in self.terms:
            return other * self
        out: dict[tuple[str, ...], Fraction] = {}
        for m1, c1 in self.terms.items():
            for m2, c2 in other.terms.items():
                m = tuple(sorted(m1 + m2))
                out[m] = out.get(m, Fraction(0)) + c1 * c2
        return Poly(out)

    def is_zero(self) -> bool:
        return not self.terms

    def constant(self) -> Fraction | None:
        """The value when the polynomial is a constant, else None."""
        if not self.terms:
            return Fraction(0)
        if len(self.terms) == 1 and () in self.terms:
            return self.terms[()]
        return None

    def key(self) -> frozenset:
        return frozenset(self.terms.items())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Poly) and self.terms == other.terms

    def __hash__(self) -> int:
        return hash(self.key())

    def __str__(self) -> str:
        c = self.constant()
        if c is not None:
            return fmt_fraction(c)
        parts = []
        for m, k in sorted(self.terms.items()):
            mono = "*".join(m)
            parts.append(mono if k == 1 and m else f"{fmt_fraction(k)}" + (f"*{mono}" if m else ""))
        return "(" + " + ".join(parts) + ")"


def fmt_fraction(c: Fraction) -> str:
    if c.denominator == 1:
        return str(c.numerator)
    f = float(c)
    return f"{c.numerator}/{c.denominator}" if c.denominator < 1000 else f"{f:.6g}"


# -- linear combinations of atoms ----------------------------------------------------------
# atom forms: ("h0",) | ("T", k) | ("norm", kind, affine, eps, width, lin) | ("invstd", width, lin)
#             | ("slice", i, parts, atom) | ("concat", (lin, ...)) ; lin = frozenset of
#             (atom, poly key)


class Lin:
    """sum_a c_a * a, with c_a a Poly; an immutable value with a canonical key."""

    __slots__ = ("terms", "_key")

    def __init__(self, terms: dict[tuple, Poly] | None = None) -> None:
        self.terms = {a: c for a, c in (terms or {}).items() if not c.is_zero()}
        self._key: frozenset | None = None

    @staticmethod
    def atom(a: tuple) -> "Lin":
        return Lin({a: Poly.const(1)})

    def __add__(self, other: "Lin") -> "Lin":
        out = dict(self.terms)
        for a, c in other.terms.items():
            out[a] = out[a] + c if a in out else c
        return Lin(out)

    def scale(self, c: Poly) -> "Lin":
        if c.is_zero():
            return Lin()
        return Lin({a: k * c for a, k in self.terms.items()})

    def key(self) -> frozenset:
        if self._key is None:
            self._key = frozenset((a, c.key()) for a, c in self.terms.items())
        return self._key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Lin) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def coef(self, a: tuple) -> Poly:
        return self.terms.get(a, Poly())

    def __str__(self) -> str:
        return render_lin(self.key())


def _atom_order(a: tuple) -> tuple:
    if a[0] == "h0":
        return (0, 0, "")
    if a[0] == "T":
        return (1, a[1], "")
    return (2, 0, render_atom(a))


def render_atom(a: tuple) -> str:
    kind = a[0]
    if kind == "h0":
        return "h0"
    if kind == "T":
        return f"T{a[1]}"
    if kind == "norm":
        return f"{a[1]}({render_lin(a[5])})"
    if kind == "invstd":
        return f"invstd({render_lin(a[2])})"
    if kind == "slice":
        return f"{render_atom(a[3])}[{a[1] + 1}/{a[2]}]"
    if kind == "concat":
        return "concat(" + ", ".join(render_lin(x) for x in a[1]) + ")"
    return str(a)


def render_lin(key: frozenset) -> str:
    if not key:
        return "0"
    items = sorted(((a, Poly(dict(c))) for a, c in key), key=lambda t: _atom_order(t[0]))
    out = []
    for a, c in items:
        k = c.constant()
        name = render_atom(a)
        if k == 1:
            term = name
        elif k == -1:
            term = "-" + name
        else:
            term = f"{c}·{name}"
        out.append(term)
    return " + ".join(out).replace("+ -", "- ")


def _lin_from_key(key: frozenset) -> Lin:
    return Lin({a: Poly(dict(c)) for a, c in key})


def _slice(lin: Lin, i: int, parts: int) -> Lin:
    return Lin({("slice", i, parts, a): c for a, c in lin.terms.items()})


def _concat(streams: list[Lin]) -> Lin:
    """concat(slice_0(x), ..., slice_{S-1}(x)) = x, per atom with equal coefficients."""
    S = len(streams)
    base: dict[tuple, Poly] | None = None
    for i, s in enumerate(streams):
        stripped = {}
        for a, c in s.terms.items():
            if a[0] != "slice" or a[1] != i or a[2] != S:
                return Lin.atom(("concat", tuple(x.key() for x in streams)))
            stripped[a[3]] = c
        if base is None:
            base = stripped
        elif base != stripped:
            return Lin.atom(("concat", tuple(x.key() for x in streams)))
    return Lin(base or {})


# -- evaluation ----------------------------------------------------------------------------
LAYER_ID = re.compile(r"^L(\d+)\.")


@dataclass
class LayerInfo:
    k: int  # 1-based position in the layer sequence
    node: str
    sig: tuple  # (kind, args, dim, ports, extern): equal signatures = the same function
    ports: tuple[Lin, ...]  # the value on each input port
    state: list[Lin] | None  # the state streams this layer's step read (for C^(i))
    raw_input: Lin | None  # its input before its own pre-norm, if it has one


@dataclass
class Evaluation:
    ir: IR
    layers: dict[int, LayerInfo] = field(default_factory=dict)
    head: tuple = ()
    embed: tuple = ()
    final: Lin | None = None  # what the head reads
    final_raw: Lin | None = None  # before the final norm
    final_state: list[Lin] | None = None  # the streams summed by the readout

    @property
    def L(self) -> int:
        return len(self.layers)


def layer_position(ir: IR, node_id: str, fallback: int) -> int:
    m = LAYER_ID.match(node_id)
    return int(m.group(1)) if m else fallback


def state_before(ir: IR, v: str) -> str | None:
    """The state a read mix of layer input v reads (through norm, merge, split)."""
    seen = 0
    while seen < 8:
        p = ir.payload(v)
        if isinstance(p, n.Mix):
            return ir.inputs(v)["x"]
        if isinstance(p, (n.Norm, n.Merge, n.Split)):
            v = ir.inputs(v)["x"]
            seen += 1
            continue
        return v if isinstance(p, (n.Add, n.Stack)) else None
    return None


def final_state_node(ir: IR, v: str) -> str | None:
    """The state the readout reads: through the final norm and merge; the input of the
    readout's sum when the state has several streams (ids as hcdsl.ir.build names them)."""
    while isinstance(ir.payload(v), (n.Norm, n.Merge)):
        v = ir.inputs(v)["x"]
    if v.startswith("readout.sum") and isinstance(ir.payload(v), n.Mix):
        return ir.inputs(v)["x"]
    return v


def evaluate(ir: IR, at_init: bool = False) -> Evaluation:
    """Evaluate every node of ir symbolically (see the module docstring)."""
    ev = Evaluation(ir)
    val: dict[str, object] = {}
    layer_count = 0
    for v in ir.order():
        p = ir.payload(v)
        ins = ir.inputs(v)
        x = {port: val[src] for port, src in ins.items()}
        if isinstance(p, n.Input):
            val[v] = None
        elif isinstance(p, n.Embed):
            ev.embed = (p.vocab, p.dim)
            val[v] = [Lin.atom(("h0",))]
        elif isinstance(p, n.Split):
            (h,) = x["x"] if len(x["x"]) == 1 else (_concat(x["x"]),)
            val[v] = [h] if p.parts == 1 else [_slice(h, i, p.parts) for i in range(p.parts)]
        elif isinstance(p, n.Merge):
            s = x["x"]
            val[v] = [s[0] if len(s) == 1 else _concat(s)]
        elif isinstance(p, n.Stack):
            val[v] = [s for port in p.ports() for s in x[port]]
        elif isinstance(p, n.Add):
            streams = [x[port] for port in p.ports()]
            val[v] = [sum(col[1:], col[0]) for col in zip(*streams)]
        elif isinstance(p, n.ConstCoef):
            val[v] = [[Poly.const(c) for c in row] for row in p.value]
        elif isinstance(p, n.LearnedCoef):
            val[v] = _learned(v, p, x.get("x"), at_init)
        elif isinstance(p, n.Mix):
            m, h = x["coef"], x["x"]
            (r0, r1), (c0, c1) = p.rows, p.cols
            out = []
            for c in range(c0, c1):
                acc = Lin()
                for s in range(r1 - r0):
                    acc = acc + h[s].scale(m[r0 + s][c])
                out.append(acc)
            val[v] = out
        elif isinstance(p, n.Norm):
            # rmsnorm(0) = 0 and an un-shifted layernorm(0) = 0 (x / sqrt(0 + eps) = 0);
            # a layernorm with a learned bias gives that bias: kept as an atom
            zero_to_zero = p.kind == "rmsnorm" or not p.affine
            val[v] = [Lin() if zero_to_zero and not s.terms else
                      Lin.atom(("norm", p.kind, p.affine, p.eps, p.width, s.key()))
                      for s in x["x"]]
        elif isinstance(p, n.InvStd):
            val[v] = [Lin.atom(("invstd", p.width, s.key())) for s in x["x"]]
        elif isinstance(p, n.Layer):
            layer_count += 1
            k = layer_position(ir, v, layer_count)
            ports = tuple(x[port][0] for port in p.ports())
            first = ins[p.ports()[0]]
            raw = None
            if isinstance(ir.payload(first), n.Norm):
                raw = val[ir.inputs(first)["x"]][0]
            state = state_before(ir, first)
            ev.layers[k] = LayerInfo(
                k, v, (p.kind, p.args, p.dim, p.in_ports, p.extern), ports,
                val[state] if state is not None else None, raw)
            val[v] = [Lin.atom(("T", k))]
        elif isinstance(p, n.Unembed):
            ev.head = (p.vocab, p.dim, p.tied)
            ev.final = x["x"][0]
            src = ins["x"]
            ev.final_raw = (val[ir.inputs(src)["x"]][0]
                            if isinstance(ir.payload(src), n.Norm) else ev.final)
            state = final_state_node(ir, src)
            ev.final_state = val[state] if state is not None else None
            val[v] = None
        elif isinstance(p, n.Output):
            val[v] = None
        else:
            why = {
                "manifold": "mHC's coefficients are a nonlinear function of the state (with "
                            "init=identity they are constant at init: use --at-init)",
                "dense": "a dynamic depth-wise aggregate is a nonlinear function of the state "
                         "(its value at init is constant: use --at-init)",
                "template": "learned scalars of a user-defined connection (use --at-init)",
            }.get(p.op, "this operation is not linear in the layer outputs")
            raise NotImplementedError(f"prover: no symbolic rule for IR node '{p.op}' ({v}): "
                                      f"{why}")
    return ev


def _learned(v: str, p: n.LearnedCoef, state: list[Lin] | None, at_init: bool) -> list[list[Poly]]:
    """M of a LearnedCoef: the init at init; otherwise a symbol per learned entry."""
    init = p.init
    rows, cols = len(init), len(init[0])
    if at_init:
        return [[Poly.const(c) for c in row] for row in init]
    F, S = p.fractions, rows - p.fractions
    R = cols - S
    tag = ""
    if p.dynamic and state is not None:
        cfg = (p.tanh, p.scale_init, p.norm, p.norm_affine, p.norm_eps,
               tuple(s.key() for s in state))
        tag = "@" + hashlib.sha1(repr(cfg).encode()).hexdigest()[:8]
    name = v.split(".")[0]
    out = [[Poly() for _ in range(cols)] for _ in range(rows)]
    for r in range(rows):
        for c in range(cols):
            if r < F:  # OUT: a row of gains (HC's B) or a diagonal (FC)
                if c < R or (p.gain == "diag" and c - R != r):
                    continue
            entry = Poly.symbol(f"{name}.M[{r},{c}]")
            if p.dynamic:
                entry = entry + Poly.symbol(f"{name}.dyn[{r},{c}]{tag}")
            out[r][c] = entry
    return out
