"""DenseScheme -> IR: a growing history of block outputs read by depth-wise aggregates.

    X_0 = embed;  ways = DA_i(X_0..X_i);  X_{i+1} = Block_{i+1}(ways);  output = DA_L(...)
Node ids: A{i}.coef / A{i}.stack / A{i}.way{w} for the aggregate after block i (A0 reads the
embedding alone), L{k}.* for layers as in the stream schemes.
"""

from __future__ import annotations

from collections import defaultdict

from hcdsl.ir import nodes as n
from hcdsl.ir.build import finish, layer_node, norm_node, start
from hcdsl.ir.graph import IR
from hcdsl.schemes.primitive import Aggregate, DenseBlock, DenseScheme
from hcdsl.spec import ModelSpec

WAY_NAMES = {1: ("x",), 4: ("q", "k", "v", "r")}


def _aggregate(ir: IR, spec: ModelSpec, label: str, agg: Aggregate,
               history: list[str]) -> list[str]:
    """The `ways` values of one aggregate, each a Hidden node."""
    sources = [history[j] for j in agg.sources]
    stack = ir.add(f"{label}.stack", n.Stack(len(sources)),
                   **{f"s{i}": s for i, s in enumerate(sources)})
    if agg.source_norm:  # PrePostDANorm: every source normalised before mixing
        stack = ir.add(f"{label}.srcnorm", norm_node(spec.norm, spec.dim), x=stack)
    if not agg.learn:
        coef = ir.add(f"{label}.coef", n.ConstCoef(agg.init))
    else:
        payload = n.DenseCoef(agg.init, agg.generator, agg.hidden, spec.dim)
        inputs = {"mudd": {"x": history[agg.sources[-1]]}, "softmax": {"x": stack}}
        coef = ir.add(f"{label}.coef", payload, **inputs.get(agg.generator, {}))
    ways = []
    for w, name in enumerate(WAY_NAMES[agg.ways]):
        mixed = ir.add(f"{label}.{name}", n.Mix((0, len(sources)), (w, w + 1)),
                       x=stack, coef=coef)
        ways.append(ir.add(f"{label}.{name}.h", n.Merge(), x=mixed))
    return ways


def _block(ir: IR, spec: ModelSpec, scheme: DenseScheme, block: DenseBlock,
           ways: list[str]) -> str:
    overrides: dict[int, dict[str, object]] = defaultdict(dict)
    for k, key, value in scheme.layer_args:
        overrides[k][key] = value
    first, *rest = block.layers
    lid = f"L{first + 1}"
    if len(ways) == 4:  # MUDD: q, k, v through three separate norms; r is the residual
        inputs = {p: ir.add(f"{lid}.norm_{p}", norm_node(spec.norm, spec.dim), x=w)
                  for p, w in zip("qkv", ways)}
        residual = ways[3]
    else:
        normed = ir.add(f"{lid}.norm", norm_node(spec.norm, spec.dim), x=ways[0])
        inputs, residual = defaultdict(lambda: normed), ways[0]
    out = layer_node(ir, spec, first, 1.0, inputs, overrides[first])
    if block.residual:
        out = ir.add(f"{lid}.add", n.Add(2), s0=out, s1=residual)
    for k in rest:  # the block's other layers: plain Pre-Norm residual sublayers
        lid = f"L{k + 1}"
        normed = ir.add(f"{lid}.norm", norm_node(spec.norm, spec.dim), x=out)
        y = layer_node(ir, spec, k, 1.0, defaultdict(lambda: normed), overrides[k])
        out = ir.add(f"{lid}.add", n.Add(2), s0=y, s1=out) if block.residual else y
    return out


def build_dense(spec: ModelSpec, scheme: DenseScheme) -> IR:
    ir = start(spec)
    history = ["embed"]
    for i, block in enumerate(scheme.blocks):
        if block.read is None:
            ways = [history[-1]]
        else:
            ways = _aggregate(ir, spec, f"A{i}", block.read, history)
        history.append(_block(ir, spec, scheme, block, ways))
    if scheme.final is None:
        h = history[-1]
    else:
        h = _aggregate(ir, spec, f"A{len(scheme.blocks)}", scheme.final, history)[-1]
    return finish(ir, spec, h)
