"""The prover's rules for norms (the table is hcdsl/proofs/rules.py: pattern, premise, side
condition and argument of each), applied as each norm term is made (innermost first, so every
term is built in normal form; a rule fires only when its guard holds). Each use of a rule
with a side condition is recorded (Use) with the node and the scales on every side of the
rewrite, so side.py can measure it there:

exact, always: norm-zero, norm-scale, norm-odd, norm-gain, invstd-scale, norm-idempotent,
and norm-sign (a learned leading coefficient, where ε = 0);
under an assumption: scale-invariant (and scale-invariant-invstd), no-eps, mean-zero (only
for inputs built from centred parts), no-affine (symbolic.py: one norm function),
embed-normalised.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from hcdsl.proofs.coefs import ONE, K, exact, fmt_fraction
from hcdsl.proofs.terms import Atom, Lin, Terms


@dataclass(frozen=True)
class Use:
    """One use of a rule with a side condition at a norm node. The sides it measures: the
    norm's input (its statistic s), that input at the other scale (s / scale2), and, when
    `via` names an InvStd node (scale-invariant-invstd), the input y of that node itself."""

    assumption: str
    node: str
    eps: float
    scale2: Fraction  # c² of the scale dropped (1 when none)
    rule: str = ""
    via: str | None = None  # the InvStd node whose input is the other side


class Uses(list):
    """The uses of one spec's evaluation, and where its invstd atoms were made (atom id ->
    this spec's InvStd node: atoms are shared by both specs, nodes are not)."""

    def __init__(self) -> None:
        super().__init__()
        self.origin: dict[int, str] = {}


@dataclass(frozen=True)
class NormSpec:
    """One norm as the prover sees it."""

    node: str
    kind: str  # layernorm | rmsnorm
    eps: float
    pid: str | None  # identity of a learned gain and bias; None: no learned affine part
    gain: K  # a known constant gain (1 without affine; its init value at init)


def _single(x: Lin) -> Atom | None:
    """The atom of x when x is 1 · atom (a learned coefficient equal to 1 too: x/c after
    norm-sign)."""
    if len(x.terms) == 1:
        (a, c), = x.terms.items()
        if c.same(ONE):
            return a
    return None


def centred(terms: Terms, x: Lin) -> bool:
    """x is built only from parts the mean-zero premise makes centred: h0 (the embedding),
    layer outputs T_k, norms without a learned affine part of centred inputs (a layernorm's
    output always), x/std(x) of a centred x, concatenations of centred parts. A low-rank
    map B·A·h, a slice, a bias or a value projection is not centred."""
    return all(_centred_atom(terms, a) for a in x.terms)


def _centred_atom(terms: Terms, a: Atom) -> bool:
    known = terms.centred.get(a.id)
    if known is not None:
        return known
    if a.kind == "h0":
        out = a.fields[0] != "input"  # the embedding (a body's input is not covered)
    elif a.kind == "T":
        out = True
    elif a.kind == "norm":
        kind, _eps, pid = a.fields
        out = pid is None and (kind == "layernorm" or centred(terms, a.children[0]))
    elif a.kind in ("invstd", "concat"):
        out = all(centred(terms, c) for c in a.children)
    else:
        out = False
    terms.centred[a.id] = out
    return out


def norm_term(terms: Terms, assume: frozenset[str], uses: Uses, spec: NormSpec,
              x: Lin, via: str | None = None) -> Lin:
    """The term of norm(x), built by the rules; via: the InvStd node whose input x is, when
    x reached here through scale-invariant-invstd (its uses then measure that input)."""
    kind = spec.kind
    if "mean-zero" in assume and kind == "layernorm" and spec.pid is None \
            and centred(terms, x):
        kind = "rmsnorm"
    if not x:
        if spec.pid is not None and kind == "layernorm":  # a learned bias survives
            return Lin.of(terms.atom("bias", (spec.pid,), label=f"bias[{spec.node}]"))
        return Lin()
    sign, scale2 = K.const(1), Fraction(1)
    lead = x.lead()
    assert lead is not None
    c = lead[1]
    if c.exact is not None and c.exact != 1:
        if c.exact < 0 and spec.pid is None:  # odd: norm(-x) = -norm(x)
            sign, x = K.const(-1), x.scale(c.inverse())
        else:
            x = x.scale(K.const(abs(c.exact)).inverse())
        scale2 = c.exact * c.exact
    eps = exact(spec.eps)
    eps_key: Fraction = eps / scale2
    if scale2 != 1 and "scale-invariant" in assume:
        eps_key = eps
        uses.append(Use("scale-invariant", spec.node, spec.eps, scale2, "scale-invariant", via))
    if "no-eps" in assume and eps_key != 0:
        eps_key = Fraction(0)
        uses.append(Use("no-eps", spec.node, spec.eps, scale2, "no-eps", via))
    if c.exact is None and eps_key == 0 and spec.pid is None:
        sign_c = c.sign()
        if sign_c is not None:  # norm-sign: norm(c·x; 0) = sign(c)·norm(x; 0)
            sign, x = sign_c, x.scale(c.inverse())
    inner = _single(x)
    if inner is not None and spec.pid is None:
        if "scale-invariant" in assume and inner.kind == "invstd" and inner.id in uses.origin:
            # norm(y / std(y)) = norm(y): a positive per-token scale, measured on both sides
            node = uses.origin[inner.id]
            uses.append(Use("scale-invariant", spec.node, spec.eps, Fraction(1),
                            "scale-invariant-invstd", node))
            return norm_term(terms, assume, uses, spec, inner.children[0], node).scale(sign)
        if eps_key == 0 and inner.kind == "norm" and inner.fields[1] == 0 \
                and inner.fields[2] is None and inner.fields[0] in (kind, "layernorm"):
            # norm(norm(y)) = norm(y) with ε = 0 and no affine inside (a layernorm's output
            # has mean 0 and std 1, an rmsnorm's rms 1: the outer norm leaves either)
            return Lin.of(inner, sign * spec.gain)
        if eps_key == 0 and inner.kind == "h0" and inner.fields[0] != "input" \
                and "embed-normalised" in assume:  # (the embedding: not a body's input)
            return Lin.of(inner, sign * spec.gain)  # norm(h0) = h0
    label = kind if scale2 == 1 or eps_key != eps / scale2 else f"{kind}[{_scaled(scale2)}]"
    atom = terms.atom("norm", (kind, eps_key, spec.pid), (x,), label=label)
    return Lin.of(atom, sign * spec.gain)


def _scaled(scale2: Fraction) -> str:
    """How ε/c² prints: ε/4, ε·4, ε·0.44."""
    inv = 1 / scale2
    if scale2.denominator == 1:
        return f"ε/{scale2.numerator}"
    if inv.denominator == 1:
        return f"ε·{inv.numerator}"
    return f"ε·{fmt_fraction(inv, 3)}"


def invstd_term(terms: Terms, assume: frozenset[str], uses: Uses, node: str,
                x: Lin) -> Lin:
    """x / std(x) (centred std, no ε: HC Eq. 16's weight)."""
    if not x:
        return Lin()
    if "mean-zero" in assume and centred(terms, x):  # std = rms: x/std(x) = rmsnorm(x; 0)
        return norm_term(terms, assume, uses, NormSpec(node, "rmsnorm", 0.0, None, K.const(1)),
                         x)
    lead = x.lead()
    assert lead is not None
    sign = K.const(1)
    c = lead[1]
    if c.exact is not None and c.exact != 1:  # invstd(c x) = sign(c) invstd(x)
        sign = K.const(1 if c.exact > 0 else -1)
        x = x.scale(c.inverse())
    atom = terms.atom("invstd", (), (x,), label="invstd")
    uses.origin.setdefault(atom.id, node)
    return Lin.of(atom, sign)
