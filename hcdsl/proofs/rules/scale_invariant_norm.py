"""Under the assumption "norm is scale-invariant" (eps ignored): norm(c x) = norm(x), c > 0.

Two rewrites: a norm reading (through one-stream merges) a constant mix with one output
column, y = sum_s m_s x_s, reads y / |m_first| instead, the column scaled so its first nonzero
entry is +-1 (so HC's readout 2 (h + T) and Pre-Norm's h + T meet); a norm reading
invstd(x) = x / std(x), a positive per-token scale of x, reads x. Proofs only: with eps > 0
the values differ slightly.
"""

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.passes.driver import Rewriter
from hcdsl.passes.matrix import block, const_mix, scale
from hcdsl.passes.registry import pattern


def _rescale(ir: IR, v: str, rw: Rewriter) -> bool:
    found = const_mix(ir, v)
    if found is None:
        return False
    p, _x, _coef, m = found
    (r0, r1), (c0, c1) = p.rows, p.cols
    if c1 - c0 != 1 or len(ir.users(v)) != 1:
        return False
    col = block(m, p.rows, p.cols)
    nz = [row[0] for row in col if row[0] != 0]
    if not nz or abs(nz[0]) == 1:
        return False
    # norm(c * y) -> norm(y), c = |first nonzero entry| > 0
    scaled = rw.add(f"{v}.coef", n.ConstCoef(scale(col, 1.0 / abs(nz[0]))))
    rw.rewire(v, "coef", scaled)
    rw.set_payload(v, n.Mix((0, r1 - r0), (0, 1)))
    return True


@pattern("scale-invariant-norm", "assumption 'norm is scale-invariant': norm(c x) -> norm(x) "
         "for a constant c > 0 or c = 1/std(x) (proofs only)", n.Norm)
def scale_invariant_norm(ir: IR, v: str, rw: Rewriter) -> bool:
    src, first = ir.inputs(v)["x"], v
    while isinstance(ir.payload(src), n.Merge) and len(ir.users(src)) == 1:
        first, src = src, ir.inputs(src)["x"]
    p = ir.payload(src)
    if isinstance(p, n.InvStd):
        # norm(invstd(x)) -> norm(x)
        rw.rewire(first, "x", ir.inputs(src)["x"])
        return True
    return isinstance(p, n.Mix) and _rescale(ir, src, rw)
