"""Symbolic evaluation of an IR: every value is a linear form over atoms (terms.py) with
coefficients K (coefs.py), one rule per node kind in one table (SYMBOLIC).

The value of the output is one atom, head(final form), and two specs compute the same
function exactly when their output atoms are the same (atoms are hash-consed, and every
rule builds its term in normal form). The layer inputs give the unfolded connection matrix
C^(0) of HC Eqs. 20-23: c_kj is the coefficient of T_j in layer k's input (j = 0: h0).

Parameters enter through the question decided (identity.py): learned entries are symbols
tied across specs by node and configuration, or constants at init, or a checkpoint's values.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.ir.names import attr_name
from hcdsl.ir.tables import registrar
from hcdsl.lang.expr import evaluate as entry_value
from hcdsl.proofs.at_init import AT_INIT
from hcdsl.proofs.coefs import ONE, ZERO, K, Point
from hcdsl.proofs.identity import Identity
from hcdsl.proofs.norms import NormSpec, Uses, invstd_term, norm_term
from hcdsl.proofs.terms import Atom, Lin, Terms

Matrix = list[list[K]]
LAYER_ID = re.compile(r"^L(\d+)\.")


@dataclass
class LayerInfo:
    k: int  # 1-based position in the layer sequence
    node: str
    sig: tuple  # (kind, options, dim, ports, extern): equal signatures = the same function
    atom: Atom  # T_k(inputs)
    ports: tuple[Lin, ...]  # the value on each input port
    state: list[Lin] | None  # the state streams this layer's step read (for C^(i))
    raw_input: Lin | None  # its input before its own pre-norm, if it has one


@dataclass
class Evaluation:
    ir: IR
    label: str  # "A" or "B"
    layers: dict[int, LayerInfo] = field(default_factory=dict)
    output: Atom | None = None
    final: Lin | None = None  # what the head reads
    final_raw: Lin | None = None  # before the final norm
    final_state: list[Lin] | None = None  # the streams summed by the readout
    uses: Uses = field(default_factory=Uses)
    symbolic: bool = False  # a learned symbol reached a coefficient

    @property
    def L(self) -> int:
        return len(self.layers)


@dataclass
class Ctx:
    ir: IR
    terms: Terms
    point: Point
    assume: frozenset[str]
    ident: Identity
    ev: Evaluation
    values: dict[str, Any] = field(default_factory=dict)

    def pid(self, v: str, p: n.Node) -> str:
        return self.ident.pid(v, p, attr_name(v))

    def symbol(self, name: str, v: str) -> K:
        self.ev.symbolic = True
        return K.symbol(self.point, name, v.split(".")[0])

    def tensor(self, v: str, name: str) -> Any:
        """A checkpoint's tensor of node v, as nested lists of floats."""
        return self.ident.values[attr_name(v)][name]


Rule = Callable[[Ctx, str, Any, dict[str, Any]], Any]
SYMBOLIC: dict[type[n.Node], Rule] = {}


rule = registrar(SYMBOLIC, "SYMBOLIC")


def layer_position(ir: IR, node_id: str, fallback: int) -> int:
    m = LAYER_ID.match(node_id)
    return int(m.group(1)) if m else fallback


def consts(m: Any) -> Matrix:
    return [[K.const(c) for c in row] for row in m]


# -- the state: reshapes, stacks, mixes, adds ---------------------------------------------
@rule(n.Input)
def _input(c: Ctx, v: str, p: n.Input, x: dict) -> list[Lin] | None:
    """Tokens are no value of their own (the embedding is h0); a body's input is h0."""
    return [Lin.of(c.terms.atom("h0", ("input", p.width), label="h0"))] if p.width else None


@rule(n.Output)
def _output(c: Ctx, v: str, p: n.Output, x: dict) -> None:
    ev = c.ev
    if ev.output is None:  # a body (no head): its output is the final hidden state
        ev.final = ev.final_raw = x["x"][0]
        ev.output = c.terms.atom("out", (), (ev.final,), label="out")
        state = final_state_node(c.ir, c.ir.inputs(v)["x"])
        ev.final_state = c.values[state] if state is not None else None
    return None


@rule(n.Dropout)
def _dropout(c: Ctx, v: str, p: n.Dropout, x: dict) -> Any:
    return x["x"]  # proofs are about the model in eval mode: dropout is the identity


@rule(n.Split)
def _split(c: Ctx, v: str, p: n.Split, x: dict) -> list[Lin]:
    h = x["x"][0] if len(x["x"]) == 1 else _concat(c, x["x"])
    if p.parts == 1:
        return [h]
    return [_slice(c, h, i, p.parts) for i in range(p.parts)]


def _slice(c: Ctx, h: Lin, i: int, parts: int) -> Lin:
    """Fraction i of h: linear, so one slice atom per atom of h."""
    out = Lin()
    for a, k in h.terms.items():
        atom = c.terms.atom("slice", (i, parts), (Lin.of(a),), label=f"slice{i + 1}/{parts}")
        out = out + Lin.of(atom, k)
    return out


def _concat(c: Ctx, streams: list[Lin]) -> Lin:
    """concat(slice_0(x), ..., slice_{S-1}(x)) = x, when every stream is that slice of the
    same atoms with the same coefficients; else an atom of its own."""
    S = len(streams)
    base: dict[Atom, K] | None = None
    for i, s in enumerate(streams):
        stripped: dict[Atom, K] = {}
        for a, k in s.terms.items():
            if a.kind != "slice" or a.fields != (i, S):
                return Lin.of(c.terms.atom("concat", (), tuple(streams), label="concat"))
            (inner,) = a.children[0].terms
            stripped[inner] = k
        if base is None:
            base = stripped
        elif Lin(base) != Lin(stripped):
            return Lin.of(c.terms.atom("concat", (), tuple(streams), label="concat"))
    return Lin(base or {})


@rule(n.Merge)
def _merge(c: Ctx, v: str, p: n.Merge, x: dict) -> list[Lin]:
    s = x["x"]
    return [s[0] if len(s) == 1 else _concat(c, s)]


@rule(n.Stack)
def _stack(c: Ctx, v: str, p: n.Stack, x: dict) -> list[Lin]:
    return [s for port in p.ports() for s in x[port]]


@rule(n.Take)
def _take(c: Ctx, v: str, p: n.Take, x: dict) -> list[Lin]:
    return x["x"][p.start:p.stop]


@rule(n.Copy)
def _copy(c: Ctx, v: str, p: n.Copy, x: dict) -> list[Lin]:
    return [x["x"][0]] * p.n


@rule(n.SumStreams)
def _sum(c: Ctx, v: str, p: n.SumStreams, x: dict) -> list[Lin]:
    return [sum(x["x"][1:], x["x"][0])]


@rule(n.Add)
def _add(c: Ctx, v: str, p: n.Add, x: dict) -> list[Lin]:
    streams = [x[port] for port in p.ports()]
    return [sum(col[1:], col[0]) for col in zip(*streams)]


@rule(n.Mix)
def _mix(c: Ctx, v: str, p: n.Mix, x: dict) -> list[Lin]:
    m, h = x["coef"], x["x"]
    (r0, r1), (c0, c1) = p.rows, p.cols
    out = []
    for col in range(c0, c1):
        acc = Lin()
        for s in range(r1 - r0):
            acc = acc + h[s].scale(m[r0 + s][col])
        out.append(acc)
    return out


# -- coefficients ----------------------------------------------------------------------------
@rule(n.ConstCoef)
def _const(c: Ctx, v: str, p: n.ConstCoef, x: dict) -> Matrix:
    return consts(p.value)


@rule(n.LearnedCoef)
def _learned(c: Ctx, v: str, p: n.LearnedCoef, x: dict) -> Matrix:
    """M = [[0, OUT], [READ, RES]]: OUT a row of gains (HC's B) or a diagonal (FC); every
    entry a learned static value (the dynamic forms are generators)."""
    if c.ident.question == "init":
        return consts(AT_INIT[n.LearnedCoef](p))
    rows, cols = len(p.init), len(p.init[0])
    F, S = p.fractions, rows - p.fractions
    R = cols - S
    static = _hyper_static(c, v, p) if c.ident.question == "checkpoint" else None
    pid = c.pid(v, p)
    out = [[ZERO] * cols for _ in range(rows)]
    for r in range(rows):
        for col in range(cols):
            if r < F and (col < R or (p.gain == "diag" and col - R != r)):
                continue  # structurally zero: the corner, and off the diagonal of diag(B)
            out[r][col] = (static[r][col] if static is not None
                           else c.symbol(f"{pid}.M[{r},{col}]", v))
    return out


def _hyper_static(c: Ctx, v: str, p: n.LearnedCoef) -> Matrix:
    """The static part of a checkpoint's HyperCoef: B and [A_m | A_r]."""
    gains, mix = c.tensor(v, "static_gain"), c.tensor(v, "static_mix")
    rows, cols = len(p.init), len(p.init[0])
    F, S = p.fractions, rows - p.fractions
    R = cols - S
    out = [[ZERO] * cols for _ in range(rows)]
    for s in range(cols - R):
        out[0 if p.gain == "row" else s][R + s] = K.const(gains[s])
    for r in range(S):
        out[F + r] = [K.const(e) for e in mix[r]]
    return out


def _uninterpreted(c: Ctx, v: str, p: n.Node, shape: tuple[int, int], what: str,
                   inputs: list[Lin], zeros: set[tuple[int, int]] = frozenset()) -> Matrix:
    """Every entry an uninterpreted function of the inputs (a generator's output)."""
    pid = c.pid(v, p)
    tag = "|".join(s.digest() for s in inputs)
    return [[ZERO if (r, col) in zeros else c.symbol(f"{pid}.{what}[{r},{col}]@{tag}", v)
             for col in range(shape[1])] for r in range(shape[0])]


@rule(n.GeneratorCoef)
def _generator(c: Ctx, v: str, p: n.GeneratorCoef, x: dict) -> Any:
    """A generator (a user's, or dynamic HC's and mHC's): at init, a constant when every
    projection starts at 0; otherwise every output an uninterpreted function of the state,
    the same function for the same parameters (pid) on the same inputs (the read it
    computes itself is an atom of the state, like a layer's output)."""
    if p.role == "readout":
        return [Lin.of(c.terms.atom("gen", (c.pid(v, p), "readout"), tuple(x["x"]),
                                    label=f"{v}.readout"))]
    if c.ident.question == "init" and AT_INIT[n.GeneratorCoef](p) is not None:
        return consts(AT_INIT[n.GeneratorCoef](p))  # every projection 0 at init: constant
    r = p.spec.fractions  # a split state (FC): r read columns, OUT = a diagonal over r rows
    zeros = {(i, j) for i in range(r) for j in range(r + p.n) if j < r or (r > 1 and j - r != i)}
    m = _uninterpreted(c, v, p, (p.n + r, p.n + r), "gen", x["x"], zeros)
    if not p.spec.inline_read():
        return m
    read = Lin.of(c.terms.atom("gen", (c.pid(v, p), "read"), tuple(x["x"]), label=f"{v}.read"))
    if not p.spec.channel_write():
        return [read, m]
    weights = [Lin.of(c.terms.atom("gen", (c.pid(v, p), "write", s), tuple(x["x"]),
                                   label=f"{v}.write{s}")) for s in range(p.n)]
    return [read, m, weights]


@rule(n.ChannelWrite)
def _channel_write(c: Ctx, v: str, p: n.ChannelWrite, x: dict) -> list[Lin]:
    """w_t ⊙ o per new stream: an atom of the output and the stream's weights."""
    return [Lin.of(c.terms.atom("cw", (t,), (x["o"][0], w), label=f"{v}[{t}]"))
            for t, w in enumerate(x["w"])]


@rule(n.DenseCoef)
def _dense(c: Ctx, v: str, p: n.DenseCoef, x: dict) -> Matrix | list[Lin]:
    rows, cols = len(p.init), len(p.init[0])
    gen = p.spec
    if p.grouped():  # weights per channel group: every way an opaque function of its inputs
        ins = tuple(x["src"]) + tuple(x.get("x", ()))
        return [Lin.of(c.terms.atom("dense", (c.pid(v, p), w), ins, label=f"{v}[{w}]"))
                for w in range(cols)]
    if c.ident.question == "init" and AT_INIT[n.DenseCoef](p) is not None:
        return consts(AT_INIT[n.DenseCoef](p))
    what = "softmax" if gen.act == "softmax" else "mudd" if gen.proj.kind == "lowrank" else \
        f"{gen.proj.kind}_{gen.act}"
    if gen.static is None or gen.act == "softmax":  # a function of the generator's input
        return _uninterpreted(c, v, p, (rows, cols), what, x["x"])
    if c.ident.question == "checkpoint":
        static = consts(c.tensor(v, "static"))
    else:
        pid = c.pid(v, p)
        static = [[c.symbol(f"{pid}.a[{r},{col}]", v) for col in range(cols)]
                  for r in range(rows)]
    if gen.dynamic:  # + act(proj(norm(input))), a function of the generator's input
        dyn = _uninterpreted(c, v, p, (rows, cols), what, x["x"])
        static = [[a + b for a, b in zip(ra, rb)] for ra, rb in zip(static, dyn)]
    return static


@rule(n.TemplateCoef)
def _template(c: Ctx, v: str, p: n.TemplateCoef, x: dict) -> Matrix:
    if c.ident.question == "init":
        return consts(AT_INIT[n.TemplateCoef](p))
    if c.ident.question == "checkpoint":
        values = {name: K.const(c.tensor(v, f"value:{name}")) for name, _, _ in p.params}
        values.update({name: K.const(c.tensor(owner, f"value:{name}"))
                       for name, owner, _, _ in p.shared})
    else:
        pid = c.pid(v, p)
        values = {name: c.symbol(f"{pid}.{name}", v) for name, _, _ in p.params}
        for name, owner, _, _ in p.shared:  # a tied scalar: the owner's symbol
            values[name] = c.symbol(f"{c.pid(owner, c.ir.payload(owner))}.{name}", owner)
    return [[entry_value(e, values, K.const) for e in row] for row in p.template]


# -- norms and the other per-stream maps -----------------------------------------------------
def _norm_spec(c: Ctx, v: str, p: n.Norm | n.NormStreams) -> NormSpec:
    gain, pid = ONE, None
    if p.affine and "no-affine" not in c.assume:
        if c.ident.question == "init":
            gain = K.const(AT_INIT[type(p)](p)[0][0])  # gain at its init, bias 0
        elif c.ident.question == "checkpoint" and c.ident.values[attr_name(v)].get("uniform"):
            gain = K.const(c.ident.values[attr_name(v)]["uniform"])
        else:
            pid = c.pid(v, p)
    return NormSpec(v, p.kind, p.eps, pid, gain)


@rule(n.Norm)
def _norm(c: Ctx, v: str, p: n.Norm, x: dict) -> list[Lin]:
    spec = _norm_spec(c, v, p)
    return [norm_term(c.terms, c.assume, c.ev.uses, spec, s) for s in x["x"]]


@rule(n.NormStreams)
def _norm_streams(c: Ctx, v: str, p: n.NormStreams, x: dict) -> list[Lin]:
    spec = _norm_spec(c, v, p)
    return [norm_term(c.terms, c.assume, c.ev.uses, spec, s) if i in p.which else s
            for i, s in enumerate(x["x"])]


@rule(n.InvStd)
def _invstd(c: Ctx, v: str, p: n.InvStd, x: dict) -> list[Lin]:
    return [invstd_term(c.terms, c.assume, c.ev.uses, v, s) for s in x["x"]]


@rule(n.LowRank)
def _lowrank(c: Ctx, v: str, p: n.LowRank, x: dict) -> list[Lin]:
    """B A x per stream: linear, so one atom per atom of x; zero at init (B = 0)."""
    if c.ident.question == "init" or (c.ident.question == "checkpoint"
                                      and c.ident.values[attr_name(v)].get("zero")):
        return [Lin() for _ in x["x"]]
    pid = c.pid(v, p)
    out = []
    for s in x["x"]:
        acc = Lin()
        for a, k in s.terms.items():
            acc = acc + Lin.of(c.terms.atom("lowrank", (pid,), (Lin.of(a),), label="BA"), k)
        out.append(acc)
    return out


@rule(n.ChannelGain)
def _gain(c: Ctx, v: str, p: n.ChannelGain, x: dict) -> list[Lin]:
    """e ⊙ x per stream: where every vector it names is uniform (at init; or so in a
    checkpoint) the entry's number; otherwise linear and opaque, one atom per atom of x for
    the entry over its vectors, named by their owners (equal entries over the same vectors
    are one map)."""
    holders = {name: v for name, _, _ in p.params}
    holders.update({name: owner for name, owner, _, _ in p.shared})
    values: dict[str, K] = {}
    if c.ident.question == "init":
        values = {name: K.const(init) for name, init, _ in p.params}
        values.update({name: K.const(init) for name, _, init, _ in p.shared})
    elif c.ident.question == "checkpoint":
        for name, owner in holders.items():
            uniform = c.ident.values[attr_name(owner)].get(f"uniform:{name}")
            if uniform is not None:
                values[name] = K.const(uniform)
    if len(values) == len(holders):
        factor = entry_value(p.entry, values, K.const)
        return [s.scale(factor) for s in x["x"]]
    key = (p.entry,) + tuple(f"{name}@{c.pid(owner, c.ir.payload(owner))}"
                             for name, owner in sorted(holders.items()))
    out = []
    for s in x["x"]:
        acc = Lin()
        for a, k in s.terms.items():
            acc = acc + Lin.of(c.terms.atom("gain", key, (Lin.of(a),), label=p.entry), k)
        out.append(acc)
    return out


# -- the model: embedding, layers, head ------------------------------------------------------
@rule(n.Embed)
def _embed(c: Ctx, v: str, p: n.Embed, x: dict) -> list[Lin]:
    return [Lin.of(c.terms.atom("h0", (c.pid(v, p),), label="h0"))]


def signature(p: n.Layer) -> tuple:
    """What makes two layers the same function (the init scale of the output projection and
    the taps do not; nor does the order options are written in)."""
    return (p.kind, tuple(sorted(p.args, key=lambda kv: kv[0])), p.dim, p.in_ports, p.extern)


@rule(n.Layer)
def _layer(c: Ctx, v: str, p: n.Layer, x: dict) -> Any:
    k = layer_position(c.ir, v, len(c.ev.layers) + 1)
    if "vmix" in x and [e.exact for e in x["vmix"][0]] == [0, 1]:
        # V = 0·V_1 + 1·v_proj(v): the value residual reads nothing, the plain layer
        p = dataclasses.replace(p, in_ports=tuple(q for q in p.in_ports
                                                  if q not in ("vres", "vmix")))
        x = {q: x[q] for q in p.ports()}
    sig = signature(p)
    pid = c.pid(v, p) if c.ident.question == "checkpoint" else None
    ports = tuple(x[port][0] for port in p.ports() if port != "vmix")
    extra = tuple(tuple(e.key for e in row) for row in x["vmix"]) if "vmix" in x else ()
    atom = c.terms.atom("T", (k, sig, pid, extra), ports, label=f"T{k}")
    ir = c.ir
    raw, state = None, None
    if v in ir:  # (a layer inside a fused ParallelLayers node has no node of its own)
        first = ir.inputs(v)[p.ports()[0]]
        if isinstance(ir.payload(first), n.Norm):
            raw = c.values[ir.inputs(first)["x"]][0]
        state = state_before(ir, first)
    c.ev.layers[k] = LayerInfo(k, v, sig, atom, ports,
                               c.values[state] if state is not None else None, raw)
    out = Lin.of(atom)
    if not p.taps:
        return [out]
    # the projected values of its v input (the value residual reads them)
    value = c.terms.atom("V", (k, sig, pid), (x["v"][0],), label=f"V{k}")
    return (out, Lin.of(value))


@rule(n.ParallelLayers)
def _parallel_layers(c: Ctx, v: str, p: n.ParallelLayers, x: dict) -> tuple[Lin, ...]:
    """Each layer as if it read x on its own (the fusion changes no function)."""
    outs = []
    for node, layer in zip(p.ids, p.layers):
        ports = {q: x["x"] for q in layer.ports()}
        outs.append(_layer(c, node, layer, ports)[0])
    return tuple(outs)


@rule(n.Tap)
def _tap(c: Ctx, v: str, p: n.Tap, x: dict) -> Any:
    item = x["x"][p.index]
    return item if isinstance(item, list) else [item]  # a matrix (a generator's M) as is


@rule(n.Unembed)
def _unembed(c: Ctx, v: str, p: n.Unembed, x: dict) -> None:
    ir, ev = c.ir, c.ev
    embed = next(u for u in ir.g.nodes if isinstance(ir.payload(u), n.Embed))
    pid = c.pid(embed, ir.payload(embed)) if p.tied else c.pid(v, p)
    ev.final = x["x"][0]
    ev.output = c.terms.atom("head", (pid, p.vocab, p.dim, p.tied), (ev.final,), label="head")
    src = ir.inputs(v)["x"]
    ev.final_raw = (c.values[ir.inputs(src)["x"]][0]
                    if isinstance(ir.payload(src), n.Norm) else ev.final)
    state = final_state_node(ir, src)
    ev.final_state = c.values[state] if state is not None else None
    return None


# -- locating the state a layer or the readout reads (for C^(i)) ---------------------------
def state_before(ir: IR, v: str) -> str | None:
    """The state a read mix of layer input v reads (through norm, merge, split)."""
    for _ in range(8):
        p = ir.payload(v)
        if isinstance(p, n.Mix):
            return ir.inputs(v)["x"]
        if not isinstance(p, (n.Norm, n.Merge, n.Split)):
            return v if isinstance(p, (n.Add, n.Stack)) else None
        v = ir.inputs(v)["x"]
    return None


def final_state_node(ir: IR, v: str) -> str | None:
    """The state the readout reads: through the final norm and merge; the input of the
    readout's sum when the state has several streams (ids as hcdsl.ir builds them)."""
    while isinstance(ir.payload(v), (n.Norm, n.Merge)):
        v = ir.inputs(v)["x"]
    if v.startswith("readout.sum") and isinstance(ir.payload(v), n.Mix) or \
            isinstance(ir.payload(v), n.GeneratorCoef):  # or a generator readout's weights
        return ir.inputs(v)["x"]
    return v


def evaluate(ir: IR, terms: Terms, point: Point, ident: Identity,
             assume: frozenset[str] = frozenset(), label: str = "A") -> Evaluation:
    """Evaluate every node of ir symbolically, in order."""
    ev = Evaluation(ir, label)
    c = Ctx(ir, terms, point, assume, ident, ev)
    for v in ir.order():
        p = ir.payload(v)
        x = {port: c.values[src] for port, src in ir.inputs(v).items()}
        c.values[v] = SYMBOLIC[type(p)](c, v, p, x)
    return ev
