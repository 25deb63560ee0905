"""Under the assumption "norm is scale-invariant" (eps ignored): norm(c x) = norm(x), c > 0.

Two rewrites: a norm reading (through one-stream merges) a constant mix with one output
column, y = sum_s m_s x_s, reads y / |m_first| instead, the column scaled so its first nonzero
entry is +-1 (so HC's readout 2 (h + T) and Pre-Norm's h + T meet); a norm reading
invstd(x) = x / std(x), a positive per-token scale of x, reads x. Proofs only: with eps > 0
the values differ slightly.
"""


from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.passes.registry import register
from hcdsl.passes.util import as_matrix, const_of


def _rescale(ir: IR, v: str) -> bool:
    p = ir.payload(v)
    m = const_of(ir, ir.inputs(v)["coef"])
    (r0, r1), (c0, c1) = p.rows, p.cols
    if m is None or c1 - c0 != 1 or len(ir.users(v)) != 1:
        return False
    col = m[r0:r1, c0:c1]
    nz = col[col != 0]
    if nz.size == 0 or abs(nz[0]) == 1:
        return False
    # norm(c * y) -> norm(y), c = |first nonzero entry| > 0
    old = ir.inputs(v)["coef"]
    scaled = ir.add(ir.fresh_id(f"{v}.coef"), n.ConstCoef(as_matrix(col / abs(nz[0]))))
    ir.rewire(v, "coef", scaled)
    if not ir.users(old):
        ir.remove(old)
    ir.set_payload(v, n.Mix((0, r1 - r0), (0, 1)))
    return True


@register("scale-invariant-norm", "assumption 'norm is scale-invariant': norm(c x) -> norm(x) "
          "for a constant c > 0 or c = 1/std(x) (proofs only)")
def scale_invariant_norm(ir: IR) -> bool:
    for v in ir.of_type(n.Norm):
        src, first = ir.inputs(v)["x"], v
        while isinstance(ir.payload(src), n.Merge) and len(ir.users(src)) == 1:
            first, src = src, ir.inputs(src)["x"]
        p = ir.payload(src)
        if isinstance(p, n.InvStd):
            # norm(invstd(x)) -> norm(x)
            ir.rewire(first, "x", ir.inputs(src)["x"])
            if not ir.users(src):
                ir.remove(src)
            return True
        if isinstance(p, n.Mix) and _rescale(ir, src):
            return True
    return False


