from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.passes.driver import Rewriter
from hcdsl.passes.registry import pattern


@pattern("merge-sibling-mixes", "two mixes of one state by adjacent columns of one matrix are "
         "one contraction: HC's width connection reads h_in and A_r^T H from [A_m | A_r] at "
         "once", n.Mix)
def merge_sibling_mixes(ir: IR, v: str, rw: Rewriter) -> bool:
    p = ir.payload(v)
    ins = ir.inputs(v)
    for w, port in ir.users(ins["x"]):
        q = ir.payload(w)
        if w == v or port != "x" or not isinstance(q, n.Mix) or q.rows != p.rows:
            continue
        if ir.inputs(w)["coef"] != ins["coef"] or q.cols[0] != p.cols[1]:
            continue
        # mix(H, M[:, a:b]), mix(H, M[:, b:c]) -> take(mix(H, M[:, a:c]), 0..b-a), take(..)
        both = rw.add(f"{v}.both", n.Mix(p.rows, (p.cols[0], q.cols[1])), x=ins["x"],
                      coef=ins["coef"])
        width = p.cols[1] - p.cols[0]
        rw.replace_inputs(v, n.Take(0, width), x=both)
        rw.replace_inputs(w, n.Take(width, width + q.cols[1] - q.cols[0]), x=both)
        return True
    return False
