"""The prover's rules for norms, applied as each norm term is made (innermost first, so every
term is built in normal form; a rule fires only when its guard holds):

exact, always:
- norm(0) = 0 (RMSNorm, or a norm whose bias is 0);
- norm(c·x; ε) = norm(x; ε/c²) for a constant c > 0, and norm(-x) = -norm(x) without a
  learned affine part: the input is scaled so its leading term has coefficient 1;
- a norm whose gain is a known constant g and bias 0 (a norm at init) is g · norm(x);
- invstd(c·x) = sign(c) · invstd(x) (x / std(x) has no ε).

under an assumption (each use recorded, with the node, for its side condition):
- scale-invariant: norm(c·x; ε) = norm(x; ε): the ε the spec states is kept, only the change
  ε -> ε/c² that a connection's scale c brings is dropped (side condition: var ≫ ε at both
  scales, measured); and norm(invstd(y)) = norm(y) (a positive per-token scale);
- no-eps: ε = 0 (side condition: var ≫ ε, measured; refused outright when the two specs
  state different eps values: an eps a spec states is never ignored);
- mean-zero: layernorm(x) = rmsnorm(x) for a norm without a learned affine part, and
  invstd(x) = rmsnorm(x; ε = 0) (HC App. E.2);
- no-affine: a norm's gain and bias are folded into the next layer (HC App. E.2), so
  different norm instances are one function;
- with ε = 0: norm(norm(x)) = norm(x) for an inner norm without affine;
- embed-normalised: norm(h0) = h0 (the embedding has mean 0 and std 1 per token).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from hcdsl.proofs.coefs import K
from hcdsl.proofs.terms import Atom, Lin, Terms


@dataclass(frozen=True)
class Use:
    """One use of an assumption at a norm node (for its side condition)."""

    assumption: str
    node: str
    eps: float
    scale2: Fraction  # c² of the scale dropped (1 when none)


@dataclass(frozen=True)
class NormSpec:
    """One norm as the prover sees it."""

    node: str
    kind: str  # layernorm | rmsnorm
    eps: float
    pid: str | None  # identity of a learned gain and bias; None: no learned affine part
    gain: K  # a known constant gain (1 without affine; its init value at init)


def _single(x: Lin) -> Atom | None:
    """The atom of x when x is exactly 1 · atom."""
    if len(x.terms) == 1:
        (a, c), = x.terms.items()
        if c.exact == 1:
            return a
    return None


def norm_term(terms: Terms, assume: frozenset[str], uses: list[Use], spec: NormSpec,
              x: Lin) -> Lin:
    kind = spec.kind
    if "mean-zero" in assume and kind == "layernorm" and spec.pid is None:
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
    eps = Fraction(repr(float(spec.eps)))
    eps_key: Fraction = eps / scale2
    if scale2 != 1 and "scale-invariant" in assume:
        eps_key = eps
        uses.append(Use("scale-invariant", spec.node, spec.eps, scale2))
    if "no-eps" in assume and eps_key != 0:
        eps_key = Fraction(0)
        uses.append(Use("no-eps", spec.node, spec.eps, scale2))
    inner = _single(x)
    if inner is not None and spec.pid is None:
        if "scale-invariant" in assume and inner.kind == "invstd":
            # norm(y / std(y)) = norm(y): a positive per-token scale
            uses.append(Use("scale-invariant", spec.node, spec.eps, Fraction(1)))
            return norm_term(terms, assume, uses, spec, inner.children[0]).scale(sign)
        if eps_key == 0 and inner.kind == "norm" and inner.fields[1] == 0 \
                and inner.fields[2] is None and inner.fields[0] in (kind, "layernorm"):
            # norm(norm(y)) = norm(y) with ε = 0 and no affine inside (a layernorm's output
            # has mean 0 and std 1, an rmsnorm's rms 1: the outer norm leaves either)
            return Lin.of(inner, sign * spec.gain)
        if eps_key == 0 and inner.kind == "h0" and "embed-normalised" in assume:
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
    return f"ε·{float(inv):.3g}"


def invstd_term(terms: Terms, assume: frozenset[str], uses: list[Use], node: str,
                x: Lin) -> Lin:
    """x / std(x) (centred std, no ε: HC Eq. 16's weight)."""
    if not x:
        return Lin()
    if "mean-zero" in assume:  # mean 0: std = rms, so x / std(x) = rmsnorm(x; ε = 0)
        return norm_term(terms, assume, uses, NormSpec(node, "rmsnorm", 0.0, None, K.const(1)),
                         x)
    lead = x.lead()
    assert lead is not None
    sign = K.const(1)
    c = lead[1]
    if c.exact is not None and c.exact != 1:  # invstd(c x) = sign(c) invstd(x)
        sign = K.const(1 if c.exact > 0 else -1)
        x = x.scale(c.inverse())
    return Lin.of(terms.atom("invstd", (), (x,), label="invstd"), sign)
