"""Scheme (a state of S streams, one step per layer or parallel group) -> IR.

Node ids are stable and readable: L3.read, L3.in, L3.norm, L3.attn, L3.out, L3.stack,
L3.write, L3.coef (L1-2.* for a step that runs layers 1 and 2 in parallel).
"""

from __future__ import annotations

from collections import defaultdict

from hcdsl.ir import nodes as n
from hcdsl.ir.build_common import (
    branch_dropout, coef_dropout, finish, layer_node, norm_node, start, step_label,
)
from hcdsl.ir.build_maps import add_channel_reads, add_channel_writes, add_maps, entry_coef
from hcdsl.ir.graph import IR
from hcdsl.lang.catalog import attends
from hcdsl.lang.connections import Param
from hcdsl.schemes.primitive import Scheme, Step
from hcdsl.spec import ModelSpec


def template_node(ir: IR, node_id: str, template: tuple[tuple[object, ...], ...],
                  params: tuple[Param, ...]) -> str:
    """A TemplateCoef; a tied param is owned by the first node that uses it, and later
    nodes read that node's scalar (`shared`)."""
    own: list[tuple[str, float, str]] = []
    shared: list[tuple[str, str, float, str]] = []
    for p in params:
        owner = _owner(ir, p.name) if p.tied else None
        if owner is None:
            own.append((p.name, p.init, p.bound))
        else:
            shared.append((p.name, owner, p.init, p.bound))
    return ir.add(node_id, n.TemplateCoef(template, tuple(own), tuple(shared)))


def _owner(ir: IR, name: str) -> str | None:
    for v in ir.g.nodes:
        p = ir.payload(v)
        if isinstance(p, n.TemplateCoef) and any(q[0] == name for q in p.params):
            return v
    return None


def _coef(ir: IR, spec: ModelSpec, label: str, step: Step, scheme: Scheme, state: str) -> str:
    c = step.coef
    if not c.learn:
        return ir.add(f"{label}.coef", n.ConstCoef(c.init))
    if c.generator == "template":
        return template_node(ir, f"{label}.coef", c.template, c.params)
    if c.generator == "program":
        assert c.program is not None
        return ir.add(f"{label}.coef", n.GeneratorCoef(c.program, scheme.streams,
                                                       scheme.width, "step", c.names),
                      x=coef_dropout(ir, spec, label, state))
    # static HC/FC's learned entries; their dynamic forms are generators (program, above)
    assert not c.dynamic, "a dynamic coefficient is a generator (Coef.program)"
    return ir.add(f"{label}.coef", n.LearnedCoef(
        init=c.init, fractions=step.fractions, gain=c.gain, dynamic=False, tanh=c.tanh,
        scale_init=c.scale_init, norm=c.norm.kind, norm_affine=c.norm.affine,
        norm_eps=c.norm.eps, width=scheme.width,
    ))


def _layer(ir: IR, spec: ModelSpec, scheme: Scheme, step: Step, k: int, x: str,
           values: list[str]) -> str:
    """Layer k reading x. With a value residual, the first attention layer exposes its
    projected values (appended to `values`) and later ones mix them into their own."""
    lid, layer = f"L{k + 1}", spec.sequence[k]
    inputs: dict[str, str] = defaultdict(lambda: x)
    if step.value_mix is None or not attends(layer.kind, layer.extern):
        return layer_node(ir, spec, k, scheme.out_scale, inputs)
    if not values:  # the first attention layer: V_first is its own values
        both = layer_node(ir, spec, k, scheme.out_scale, inputs, taps=("v",))
        values.append(ir.add(f"{lid}.values", n.Tap(1), x=both))
        return ir.add(f"{lid}.y", n.Tap(0), x=both)
    lam = step.value_mix  # V <- λ1 V_first + λ2 V
    if any(isinstance(e, str) for e in lam):
        vmix = template_node(ir, f"{lid}.vmix", (lam,), step.value_params)
    else:
        vmix = ir.add(f"{lid}.vmix", n.ConstCoef((tuple(float(e) for e in lam),)))
    inputs.update(vres=values[0], vmix=vmix)
    return layer_node(ir, spec, k, scheme.out_scale, inputs, extra=("vres", "vmix"))


def _step(ir: IR, spec: ModelSpec, scheme: Scheme, step: Step, state: str,
          values: list[str]) -> str:
    label = step_label(step)
    coef = _coef(ir, spec, label, step, scheme, state)
    inline = None  # a generator that computes the read itself: (x, M)
    channel = None  # and per-channel write weights: (x, M, W)
    if step.coef.program is not None and step.coef.program.inline_read():
        gen = coef
        inline = ir.add(f"{label}.gen_read", n.Tap(0), x=gen)
        coef = ir.add(f"{label}.gen_coef", n.Tap(1), x=gen)
        if step.coef.program.channel_write():
            channel = ir.add(f"{label}.gen_write", n.Tap(2), x=gen)
    F, S, R = step.fractions, scheme.streams, step.reads
    cols_total = len(step.coef.init[0])
    shared_norm = None
    outputs = []
    for li, k in enumerate(step.layers):
        lid = f"L{k + 1}"
        cols = step.inputs[li]
        if shared_norm is not None:  # one norm for the whole parallel block (GPT-J)
            x = shared_norm
        elif inline is not None:
            x = inline
            if step.prenorm == "separate":
                x = ir.add(f"{lid}.norm", norm_node(spec.norm, spec.dim), x=x)
        else:
            # width connection: this layer's input, h_in = READ[:, cols]ᵀ H (concatenated)
            read = ir.add(f"{lid}.read", n.Mix((F, F + S), (cols[0], cols[-1] + 1)),
                          x=state, coef=coef)
            x = ir.add(f"{lid}.in", n.Merge(), x=read)
            if step.channels:  # + g ⊙ H_s for vector entries of READ (build_maps.py)
                x = add_channel_reads(ir, step, label, lid, scheme.width, state, x)
            if step.prenorm == "separate":
                x = ir.add(f"{lid}.norm", norm_node(spec.norm, spec.dim), x=x)
            elif step.prenorm == "shared":
                x = shared_norm = ir.add(f"{label}.norm", norm_node(spec.norm, spec.dim), x=x)
        body = branch_dropout(ir, spec, k, _layer(ir, spec, scheme, step, k, x, values))
        outputs.append(ir.add(f"{lid}.out", n.Split(len(step.outputs[li])), x=body))
    # depth connection: H' = [OUT; RES]ᵀ [O; H]
    stack = ir.add(f"{label}.stack", n.Stack(len(outputs) + 1),
                   **{f"s{i}": o for i, o in enumerate(outputs + [state])})
    new = ir.add(f"{label}.write", n.Mix((0, F + S), (R, cols_total)), x=stack, coef=coef)
    if channel is not None:  # OUT is 0 in M: + W_t ⊙ o, per stream and channel
        gated = ir.add(f"{label}.channel", n.ChannelWrite(), o=outputs[0], w=channel)
        new = ir.add(f"{label}.written", n.Add(2), s0=new, s1=gated)
    if step.lowrank:  # LAuReL-LR: + B A H
        low = ir.add(f"{label}.lowrank", n.LowRank(scheme.width, step.lowrank), x=state)
        new = ir.add(f"{label}.sum", n.Add(2), s0=new, s1=low)
    if step.maps:  # + w B A H_source into a target stream (build_maps.py)
        new = add_maps(ir, step, label, S, scheme.width, state, new)
    if step.channels:  # + g ⊙ (o or H_s) for vector entries of OUT and RES
        new = add_channel_writes(ir, step, label, S, scheme.width, state, outputs[0], new)
    if step.post == "norm" and step.post_streams is not None:
        nm = spec.norm
        new = ir.add(f"{label}.post", n.NormStreams(nm.kind, nm.affine, nm.eps, scheme.width,
                                                    S, step.post_streams), x=new)
    elif step.post == "norm":
        new = ir.add(f"{label}.post", norm_node(spec.norm, scheme.width), x=new)
    elif step.post == "invstd":
        new = ir.add(f"{label}.post", n.InvStd(scheme.width), x=new)
    return new


def build_streams(spec: ModelSpec, scheme: Scheme) -> IR:
    ir, h0 = start(spec)
    S = scheme.streams
    if scheme.init == "split":
        state = ir.add("init.split", n.Split(S), x=h0)
    else:
        state = ir.add("init.split", n.Split(1), x=h0)
        weights = scheme.init_weights or (1.0,) * S
        if weights != (1.0,):  # H^0 = n copies of h^0 (or w_s h^0)
            ir.add("init.coef", n.ConstCoef((tuple(weights),)))
            state = ir.add("init.copy", n.Mix((0, 1), (0, S)), x=state, coef="init.coef")
    values: list[str] = []  # the first attention layer's values, for a value residual
    for step in scheme.steps:
        state = _step(ir, spec, scheme, step, state, values)
    if scheme.readout_norm:  # normalise some streams before the readout (ResiDual: LN(res))
        nm = spec.norm
        state = ir.add("readout.norm", n.NormStreams(nm.kind, nm.affine, nm.eps, scheme.width,
                                                     S, scheme.readout_norm), x=state)
    if scheme.readout_generator is not None:  # h^L from per-token weights
        gen = n.GeneratorCoef(scheme.readout_generator, S, scheme.width, "readout")
        return finish(ir, spec, ir.add("readout.gen", gen, x=state))
    if scheme.readout in ("sum", "mean"):  # h^L = sum (or mean) of the rows of H^L
        weights = scheme.readout_weights or (1.0 if scheme.readout == "sum" else 1.0 / S,) * S
        if weights != (1.0,):  # numbers, or entries naming learned params
            entry_coef(ir, "readout.coef", tuple((w,) for w in weights), scheme.readout_params)
            state = ir.add("readout.sum", n.Mix((0, S), (0, 1)), x=state, coef="readout.coef")
    return finish(ir, spec, ir.add("readout.merge", n.Merge(), x=state))

