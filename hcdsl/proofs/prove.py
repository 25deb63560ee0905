"""hcdsl.prove(a, b): are two specs the same function of the tokens?

Method (see docs/proving.md):
1. lower both specs without the optimiser, then run the proof pipeline (exact canonicalisation
   passes, plus the passes of the assumptions being tried);
2. if the canonical IRs are isomorphic (payloads equal, layers matched by position) the specs
   are equivalent: method "isomorphism of canonical IRs";
3. else evaluate both symbolically (hcdsl.proofs.symbolic): every layer input and the head's
   input is a canonical linear combination of h0, the layer outputs T_k and norm(...) terms;
   equal layer sequences and equal forms = equivalent: method "unfolded connections".
Assumptions: first none; if that fails, all of them; if that succeeds, drop each assumption
that is not needed (greedily), so the verdict prints only the ones used. Not equivalent: the
first differing layer input (or the head's input), and a numeric witness from the reference
backend with the same weights for corresponding layers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import networkx as nx

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.passes.pipeline import run_pipeline
from hcdsl.proofs.assumptions import ASSUMPTIONS, AT_INIT, BY_NAME, Assumption, pipeline
from hcdsl.proofs.source import Source, name_of, raw_ir
from hcdsl.proofs.symbolic import Evaluation, Lin, TooLarge, evaluate, layer_position
from hcdsl.proofs.witness import Witness, numeric_witness


@dataclass
class ProofResult:
    a: str
    b: str
    equivalent: bool
    method: str
    assumptions: list[Assumption] = field(default_factory=list)
    at_init: bool = False
    difference: str = ""  # the first difference, for NOT EQUIVALENT
    witness: Witness | None = None
    tried: list[Assumption] = field(default_factory=list)  # refuted even under these
    seconds: float = 0.0

    def __bool__(self) -> bool:
        return self.equivalent

    @property
    def verdict(self) -> str:
        return "EQUIVALENT" if self.equivalent else "NOT EQUIVALENT"

    def render(self) -> str:
        lines = [f"{self.verdict}: {self.a} vs {self.b}", f"method: {self.method}"]
        used = ([AT_INIT] if self.at_init else []) + [a.text for a in self.assumptions]
        if self.equivalent and used:
            lines.append("assumptions:")
            lines += [f"  - {t}" for t in used]
        elif self.equivalent:
            lines.append("assumptions: none (holds for every choice of the layers T_k)")
        else:
            if self.at_init:
                lines.append(f"compared {AT_INIT}")
            if self.tried:
                lines.append("not equivalent even under every assumption the prover knows: "
                             + ", ".join(a.name for a in self.tried))
        if not self.equivalent:
            lines.append("first difference:")
            lines += ["  " + ln for ln in self.difference.splitlines()]
            if self.witness is not None:
                lines.append("numeric witness (reference backend, the same weights for "
                             "corresponding layers):")
                lines.append(self.witness.render())
        lines.append(f"time: {self.seconds:.2f}s")
        return "\n".join(lines)


# -- loading -------------------------------------------------------------------------------
def canonical(ir: IR, at_init: bool, assumed: tuple[Assumption, ...] = ()) -> IR:
    out = ir.copy()
    run_pipeline(out, pipeline(at_init, assumed))
    return out


# -- comparison ----------------------------------------------------------------------------
def _layer_key(ir: IR, v: str) -> tuple:
    p = ir.payload(v)
    if isinstance(p, n.Layer):  # the same function: kind, options, ports; name/init scale free
        return ("layer", layer_position(ir, v, 0), p.kind, p.args, p.dim, p.in_ports, p.extern)
    return (p.op, p)


def isomorphic(a: IR, b: IR) -> bool:
    if len(a) != len(b) or a.g.number_of_edges() != b.g.number_of_edges():
        return False
    ga, gb = a.g.copy(), b.g.copy()
    for g, ir in ((ga, a), (gb, b)):
        for v in g.nodes:
            g.nodes[v]["key"] = _layer_key(ir, v)
    return nx.is_isomorphic(
        ga, gb, node_match=lambda x, y: x["key"] == y["key"],
        edge_match=lambda x, y: sorted(d["port"] for d in x.values())
        == sorted(d["port"] for d in y.values()))


def first_difference(ea: Evaluation, eb: Evaluation) -> str | None:
    """None when the evaluations agree, else a description of the first disagreement."""
    if ea.embed != eb.embed:
        return f"embedding: A {ea.embed} vs B {eb.embed} (vocab, dim)"
    if sorted(ea.layers) != sorted(eb.layers):
        return f"layer sequence: A has {ea.L} layers, B has {eb.L}"
    for k in sorted(ea.layers):
        la, lb = ea.layers[k], eb.layers[k]
        if la.sig != lb.sig:
            return (f"layer {k}: A runs {la.sig[0]}{dict(la.sig[1]) or ''}, "
                    f"B runs {lb.sig[0]}{dict(lb.sig[1]) or ''}")
        if la.ports != lb.ports:
            ra, rb = la.raw_input, lb.raw_input
            lines = [f"input of layer {k} ({la.node} vs {lb.node}):",
                     f"  A: T{k}({la.ports[0]})", f"  B: T{k}({lb.ports[0]})"]
            if ra is not None and rb is not None:
                entry = _entry_difference(ra, rb)
                if entry:
                    lines.append(f"  connection matrix C^(0): {entry.format(k=k)}")
            return "\n".join(lines)
    if ea.head != eb.head:
        return f"head: A {ea.head} vs B {eb.head} (vocab, dim, tied)"
    if ea.final != eb.final:
        L1 = ea.L + 1
        lines = ["input of the head (after the final norm, if any):",
                 f"  A: {ea.final}", f"  B: {eb.final}"]
        if ea.final_raw is not None and eb.final_raw is not None:
            entry = _entry_difference(ea.final_raw, eb.final_raw)
            if entry:
                lines.append(f"  connection matrix C^(0): {entry.format(k=L1)} "
                             f"(row {L1} = the readout)")
        return "\n".join(lines)
    return None


def _entry_difference(a: Lin, b: Lin) -> str | None:
    """'c_{k},j: A x vs B y' for the first atom whose coefficients differ."""
    atoms = sorted(set(a.terms) | set(b.terms), key=lambda t: (t[0] != "h0", t[0] != "T",
                                                               t[1] if t[0] == "T" else 0))
    for t in atoms:
        if a.coef(t) != b.coef(t):
            j = 0 if t[0] == "h0" else t[1] if t[0] == "T" else None
            col = f"c_{{k}},{j}" if j is not None else "coefficient of a non-linear term"
            return f"{col}: A {a.coef(t)} vs B {b.coef(t)}"
    return None


def _attempt(ia: IR, ib: IR, at_init: bool, assumed: tuple[Assumption, ...]
             ) -> tuple[bool, str, str | None]:
    """(equal?, method, first difference) under one set of assumptions."""
    ca, cb = canonical(ia, at_init, assumed), canonical(ib, at_init, assumed)
    if isomorphic(ca, cb):
        return True, "isomorphism of canonical IRs", None
    ea, eb = evaluate(ca, at_init), evaluate(cb, at_init)
    diff = first_difference(ea, eb)
    exactness = "exact rational arithmetic"
    if any(not at_init and isinstance(ir.payload(v), n.LearnedCoef) for ir in (ca, cb)
           for v in ir.g.nodes):
        exactness = "symbolic in the learned entries"
    method = ("equality of unfolded connections (every layer input and the readout as a "
              f"canonical linear form over h0, T_1..T_L; {exactness})")
    return diff is None, method, diff


def prove(a: Source, b: Source, *, at_init: bool = False,
          assume: list[str] | tuple[str, ...] | None = None, witness: bool = True,
          seed: int = 0) -> ProofResult:
    """Prove or refute that specs a and b compute the same function.

    at_init: compare at the initialisation (learned matrices at init, dynamic parts zero).
    assume: the assumptions the prover may use (names of hcdsl.proofs.ASSUMPTIONS; default
    all); only those needed are reported. witness: compute a numeric counterexample.
    """
    start = time.perf_counter()
    allowed = tuple(ASSUMPTIONS if assume is None else [BY_NAME[x] for x in assume])
    ia, ib = raw_ir(a), raw_ir(b)
    result = ProofResult(name_of(a), name_of(b), False, "", at_init=at_init)
    try:
        ok, method, diff = _attempt(ia, ib, at_init, ())
        if not ok and allowed:
            ok_all, method_all, _ = _attempt(ia, ib, at_init, allowed)
            if ok_all:
                used = list(allowed)
                for cand in list(allowed):  # drop what is not needed
                    trial = tuple(x for x in used if x is not cand)
                    ok_t, method_t, _ = _attempt(ia, ib, at_init, trial)
                    if ok_t:
                        used, method_all = list(trial), method_t
                ok, method, result.assumptions = True, method_all, used
            else:
                result.tried = list(allowed)
    except TooLarge as exc:
        raise ValueError(f"the symbolic form is too large ({exc}); prove at init "
                         "(--at-init) or with fewer layers") from None
    result.equivalent, result.method = ok, method
    if not ok:
        result.difference = diff or "(no structural difference found)"
        if witness:
            result.witness = numeric_witness(a, b, at_init=at_init, seed=seed)
    result.seconds = time.perf_counter() - start
    return result
