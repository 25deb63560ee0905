"""DenseScheme -> IR: a growing history of block outputs read by depth-wise aggregates.

    X_0 = embed;  ways = DA_i(X_0..X_i);  X_{i+1} = Block_{i+1}(ways);  output = DA_L(...)
Node ids: A{i}.coef / A{i}.stack / A{i}.{x|q|k|v|r} for the aggregate after block i,
A{i}.gen_norm (MUDD's RMSNorm(X_i) without scale), A{i}.key_norm (attention residuals'
RMSNorm of the keys), X{j}.prenorm / A{i}.{way}.postnorm (PrePostDANorm), L{k}.* for layers
as in the stream schemes.
"""

from __future__ import annotations

from collections import defaultdict

from hcdsl.ir import nodes as n
from hcdsl.ir.build_common import (
    branch_dropout, coef_dropout, finish, layer_node, norm_node, start,
)
from hcdsl.ir.graph import IR
from hcdsl.schemes.primitive import Aggregate, DenseBlock, DenseScheme
from hcdsl.spec import ModelSpec

WAY_NAMES = {1: ("x",), 3: ("q", "k", "v"), 4: ("q", "k", "v", "r")}


def _rms(spec: ModelSpec, affine: bool, scale_init: float = 1.0) -> n.Norm:
    """The RMSNorm the dense papers name, whatever the model's own norm; the model's eps
    (MUDD's released code uses config.norm_eps for its RMSnormNoscale)."""
    return n.Norm("rmsnorm", affine, spec.norm.eps, spec.dim, scale_init)


def _prenormed(ir: IR, spec: ModelSpec, history: list[str], j: int) -> str:
    """PreDANorm: RMSNorm(X_j) with its own scale, one per history entry, shared by every
    later aggregate (the official JAX code's mudd_prenorm_{j}, computed once)."""
    node = f"X{j}.prenorm"
    if node not in ir.g:
        ir.add(node, _rms(spec, affine=True), x=history[j])
    return node


def _aggregate(ir: IR, spec: ModelSpec, label: str, agg: Aggregate,
               history: list[str]) -> list[str]:
    """The `ways` values of one aggregate, each a Hidden node."""
    # PrePostDANorm (MUDD Eq. 10): mix the normalised sources, then per way
    # Norm(DA(...)) + X_i with X_i the newest raw output
    prepost = agg.source_norm
    sources = [_prenormed(ir, spec, history, j) if prepost else history[j]
               for j in agg.sources]
    stack = ir.add(f"{label}.stack", n.Stack(len(sources)),
                   **{f"s{i}": s for i, s in enumerate(sources)})
    gen = agg.generator
    if not agg.learn:
        coef = ir.add(f"{label}.coef", n.ConstCoef(agg.init))
    else:
        grouped_norm = gen.grouped_norm()
        payload = n.DenseCoef.of(agg.init, gen, spec.dim,
                              **({"eps": spec.norm.eps} if grouped_norm else {}))
        ports: dict[str, str] = {}
        # the generator's input: the newest source (MUDD: A_i(X_i) = GELU(RMSNorm(X_i) W1)
        # W2 + a_i) or every source (attention residuals' keys k_j = RMSNorm(X_j), DCA)
        if gen.input != "none":
            x = history[agg.sources[-1]] if gen.input == "newest" else stack
            if gen.norm is not None and not grouped_norm:  # a norm over D: an IR node
                name = "gen_norm" if gen.input == "newest" else "key_norm"
                x = ir.add(f"{label}.{name}", _rms(spec, affine=gen.norm.weight == "scale"),
                           x=x)
            ports["x"] = coef_dropout(ir, spec, label, x)
        if payload.grouped():
            ports["src"] = stack
        coef = ir.add(f"{label}.coef", payload, **ports)
    if agg.learn and payload.grouped():  # the coefficient node mixed the sources itself
        return [_post(ir, spec, agg, history, f"{label}.{name}",
                      ir.add(f"{label}.{name}.h", n.Merge(),
                             x=ir.add(f"{label}.{name}", n.Take(w, w + 1), x=coef)))
                for w, name in enumerate(WAY_NAMES[agg.ways])]
    ways = []
    for w, name in enumerate(WAY_NAMES[agg.ways]):
        mixed = ir.add(f"{label}.{name}", n.Mix((0, len(sources)), (w, w + 1)),
                       x=stack, coef=coef)
        way = ir.add(f"{label}.{name}.h", n.Merge(), x=mixed)
        ways.append(_post(ir, spec, agg, history, f"{label}.{name}", way))
    return ways


def _post(ir: IR, spec: ModelSpec, agg: Aggregate, history: list[str], label: str,
          way: str) -> str:
    """PostDANorm (MUDD Eq. 10): Norm(DA(...)) + X_i, its scale starting at 1e-3 (§3)."""
    if not agg.source_norm:
        return way
    post = ir.add(f"{label}.postnorm", _rms(spec, True, 1e-3), x=way)
    return ir.add(f"{label}.add", n.Add(2), s0=post, s1=history[agg.sources[-1]])


def _block(ir: IR, spec: ModelSpec, scheme: DenseScheme, block: DenseBlock,
           ways: list[str]) -> str:
    overrides: dict[int, dict[str, object]] = defaultdict(dict)
    for k, key, value in scheme.layer_args:
        overrides[k][key] = value
    first, *rest = block.layers
    lid = f"L{first + 1}"
    if len(ways) >= 3:  # MUDD, DCA: q, k, v through three separate norms; the residual
        # is MUDD's way r, or DCA's way q
        inputs = {p: ir.add(f"{lid}.norm_{p}", norm_node(spec.norm, spec.dim), x=w)
                  for p, w in zip("qkv", ways)}
        residual = ways[3] if len(ways) == 4 else ways[0]
    else:
        normed = ir.add(f"{lid}.norm", norm_node(spec.norm, spec.dim), x=ways[0])
        inputs, residual = defaultdict(lambda: normed), ways[0]
    out = branch_dropout(ir, spec, first, layer_node(ir, spec, first, 1.0, inputs,
                                                      overrides[first]))
    update = out  # DCA: the sum of the block's layer outputs (without the residual)
    if block.residual:
        out = ir.add(f"{lid}.add", n.Add(2), s0=out, s1=residual)
    for k in rest:  # the block's other layers: plain Pre-Norm residual sublayers
        lid = f"L{k + 1}"
        normed = ir.add(f"{lid}.norm", norm_node(spec.norm, spec.dim), x=out)
        y = branch_dropout(ir, spec, k, layer_node(ir, spec, k, 1.0,
                                                   defaultdict(lambda: normed), overrides[k]))
        if block.write == "update":
            update = ir.add(f"{lid}.update", n.Add(2), s0=y, s1=update)
            if k == rest[-1]:
                break  # the block's own state after its last layer is not kept
        out = ir.add(f"{lid}.add", n.Add(2), s0=y, s1=out) if block.residual else y
    return update if block.write == "update" else out


def _accumulating_block(ir: IR, spec: ModelSpec, block: DenseBlock,
                        history: list[str]) -> str:
    """Block AttnRes: layer l reads softmax-attention over [b_0 .. b_{n-1}, partial sum];
    the block's entry b_n is the sum of its layers' raw outputs."""
    assert block.read is not None
    partial: str | None = None
    for k in block.layers:
        lid = f"L{k + 1}"
        sources = history + ([partial] if partial else [])
        if len(sources) == 1:  # one source: softmax is 1, read it as is
            way = sources[0]
        else:
            agg = block.read.model_copy(update={
                "sources": tuple(range(len(sources))),
                "init": tuple((1.0,) for _ in sources)})
            way = _aggregate(ir, spec, f"{lid}.read", agg, sources)[0]
        normed = ir.add(f"{lid}.norm", norm_node(spec.norm, spec.dim), x=way)
        out = branch_dropout(ir, spec, k, layer_node(ir, spec, k, 1.0,
                                                     defaultdict(lambda: normed)))
        partial = out if partial is None else ir.add(f"{lid}.partial", n.Add(2),
                                                     s0=partial, s1=out)
    assert partial is not None
    return partial


def build_dense(spec: ModelSpec, scheme: DenseScheme) -> IR:
    ir, h0 = start(spec)
    history = [h0]
    for i, block in enumerate(scheme.blocks):
        if block.write == "accumulate":
            history.append(_accumulating_block(ir, spec, block, history))
            continue
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
