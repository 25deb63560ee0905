"""Proof-only: every learned coefficient takes its value at init."""

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.passes.driver import Rewriter
from hcdsl.passes.registry import pattern
from hcdsl.spec import Matrix


def value_at_init(p: n.Node) -> Matrix | None:
    """The matrix a learned coefficient node produces at init, if it is a constant then."""
    if isinstance(p, n.LearnedCoef):
        # HC/FC: static init + s * act(norm(H) W) with W = 0
        return p.init
    if isinstance(p, n.DenseCoef):
        if p.generator == "softmax":  # softmax_j(q · k_j) with q = 0: uniform
            rows = len(p.init)
            return tuple((1.0 / rows,) * len(p.init[0]) for _ in range(rows))
        return p.init  # static a_i; MUDD: GELU(...) W2 + a_i with W2 = 0
    if isinstance(p, n.ManifoldCoef) and p.init == "identity":
        # φ = 0: H_pre = sigmoid(-log(n-1)) = 1/n, H_post = 2 sigmoid(0) = 1, H_res = the
        # Sinkhorn normalisation of a constant matrix = uniform 1/n
        k = 1.0 / p.n
        return ((0.0,) + (1.0,) * p.n,) + tuple((k,) * (p.n + 1) for _ in range(p.n))
    if isinstance(p, n.TemplateCoef):  # named scalars at their init values
        init = {name: value for name, value, _ in p.params}
        return tuple(tuple(init[e] if isinstance(e, str) else float(e) for e in row)
                     for row in p.template)
    return None


@pattern("freeze-at-init", "proofs at init: a learned M becomes the constant of its init "
         "(dynamic parts are zero at init: W = 0, W2 = 0, q = 0, φ = 0); changes meaning after "
         "training: never in the default pipeline", n.LearnedCoef, n.DenseCoef, n.ManifoldCoef,
         n.TemplateCoef, n.LowRank)
def freeze_at_init(ir: IR, v: str, rw: Rewriter) -> bool:
    p = ir.payload(v)
    if isinstance(p, n.LowRank):
        # add(x, B A H) with B = 0 at init -> x   (LAuReL-LR)
        for user, _ in ir.users(v):
            q = ir.payload(user)
            if isinstance(q, n.Add) and q.arity == 2:
                other = next(u for u in ir.inputs(user).values() if u != v)
                rw.replace_uses(user, other)
                return True
        return False
    value = value_at_init(p)
    if value is None:
        return False
    # learned(init, dynamic part 0 at init) -> const(init)
    rw.replace_inputs(v, n.ConstCoef(value))
    return True
