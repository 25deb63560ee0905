"""Proof-only: every learned coefficient takes its value at init."""

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.passes.registry import register
from hcdsl.passes.util import prune


def value_at_init(p: n.Node) -> n.Matrix | None:
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


@register("freeze-at-init", "proofs at init: a learned M becomes the constant of its init "
          "(dynamic parts are zero at init: W = 0, W2 = 0, q = 0, φ = 0); changes meaning after "
          "training: never in the default pipeline")
def freeze_at_init(ir: IR) -> bool:
    changed = False
    for v in ir.order():
        if v not in ir:
            continue
        if isinstance(ir.payload(v), n.LowRank):
            # add(x, B A H) with B = 0 at init -> x   (LAuReL-LR)
            for user, _ in ir.users(v):
                if isinstance(ir.payload(user), n.Add) and ir.payload(user).arity == 2:
                    other = [u for p, u in ir.inputs(user).items() if u != v][0]
                    ir.replace_uses(user, other)
                    prune(ir, user)
                    changed = True
            continue
        value = value_at_init(ir.payload(v))
        if value is None:
            continue
        # learned(init, dynamic part 0 at init) -> const(init)
        inputs = list(ir.inputs(v).values())
        ir.g.remove_edges_from([(u, v, k) for u, _, k in ir.g.in_edges(v, keys=True)])
        ir.set_payload(v, n.ConstCoef(value))
        prune(ir, *inputs)
        changed = True
    return changed
