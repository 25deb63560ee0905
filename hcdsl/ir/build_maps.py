"""The parts of a user-defined connection's step beyond its matrix M: low-rank (or full) maps
from one stream into another (LAuReL-PA's h_j on a previous activation), a learned readout,
and M's entries over vector params (per-channel gains, `gain` nodes).

A map `H'_t += w · B A H_s` is: Take(s) -> LowRank -> Mix by a 1 x S row that holds w at t
(a ConstCoef, or a TemplateCoef when w names params) -> Add to the new state. A param named
in w is the same scalar as in that layer's matrix (the step's TemplateCoef owns it; the
weight's node reads it through `shared`), so `g` in M and in a map's weight are one value.
An entry over vectors, e, is e ⊙ (the output, or Take(s)) placed by a one-hot row (a write)
or added to the layer's input (a read); M holds 0 there.
"""

from __future__ import annotations

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.lang.connections import Entry, Param
from hcdsl.schemes.primitive import ChannelEntry, Step


def owned_by(ir: IR, node_id: str, name: str) -> str | None:
    """The node that owns the scalar `name` as read by node_id (itself or its owner)."""
    if node_id not in ir.g.nodes:
        return None
    p = ir.payload(node_id)
    if not isinstance(p, n.TemplateCoef):
        return None
    if any(q[0] == name for q in p.params):
        return node_id
    return next((owner for q, owner, _, _ in p.shared if q == name), None)


def global_owner(ir: IR, name: str) -> str | None:
    """A tied param's owner: the first TemplateCoef that holds it."""
    for v in ir.g.nodes:
        p = ir.payload(v)
        if isinstance(p, n.TemplateCoef) and any(q[0] == name for q in p.params):
            return v
    return None


def entry_coef(ir: IR, node_id: str, template: tuple[tuple[Entry, ...], ...],
               params: tuple[Param, ...], near: tuple[str, ...] = ()) -> str:
    """A coefficient matrix: a ConstCoef of numbers, or a TemplateCoef whose params are the
    ones of the nodes in `near` (the layer's matrix) when they hold them, tied ones the
    model's, and its own otherwise."""
    if not params:
        return ir.add(node_id, n.ConstCoef(tuple(tuple(float(e) for e in r) for r in template)))
    own: list[tuple[str, float, str]] = []
    shared: list[tuple[str, str, float, str]] = []
    for p in params:
        owner = global_owner(ir, p.name) if p.tied else next(
            (o for v in near if (o := owned_by(ir, v, p.name)) is not None), None)
        if owner is None:
            own.append((p.name, p.init, p.bound))
        else:
            shared.append((p.name, owner, p.init, p.bound))
    return ir.add(node_id, n.TemplateCoef(template, tuple(own), tuple(shared)))


def add_maps(ir: IR, step: Step, label: str, streams: int, width: int, state: str,
             new: str) -> str:
    """new + Σ_maps (w · B A H_source placed in the target stream)."""
    near = (f"{label}.coef",)
    for i, mp in enumerate(step.maps, start=1):
        tag = f"{label}.map{i}"
        src = ir.add(f"{tag}.take", n.Take(mp.source, mp.source + 1), x=state)
        low = ir.add(f"{tag}.lowrank", n.LowRank(width, mp.rank or width, mp.full), x=src)
        row = tuple(mp.weight if t == mp.target else 0.0 for t in range(streams))
        coef = entry_coef(ir, f"{tag}.coef", (row,), mp.params, near)
        near = near + (coef,)
        placed = ir.add(f"{tag}.place", n.Mix((0, 1), (0, streams)), x=low, coef=coef)
        new = ir.add(f"{tag}.sum", n.Add(2), s0=new, s1=placed)
    return new


def _gain(ir: IR, node_id: str, ce: ChannelEntry, width: int, label: str, x: str) -> str:
    """e ⊙ x for the entry e over vector params: the step's first use of a vector holds it
    (the model's first use, when tied); later uses read that node's vector."""
    def holder(name: str, tied: bool) -> str | None:
        for v in ir.g.nodes:
            p = ir.payload(v)
            if isinstance(p, n.ChannelGain) and (tied or v.startswith(f"{label}.")) and \
                    any(q[0] == name for q in p.params):
                return v
        return None

    own: list[tuple[str, float, str]] = []
    shared: list[tuple[str, str, float, str]] = []
    for p in ce.params:
        owner = holder(p.name, p.tied)
        if owner is None:
            own.append((p.name, p.init, p.bound))
        else:
            shared.append((p.name, owner, p.init, p.bound))
    return ir.add(node_id, n.ChannelGain(ce.entry, width, tuple(own), tuple(shared)), x=x)


def add_channel_reads(ir: IR, step: Step, label: str, lid: str, width: int, state: str,
                      x: str) -> str:
    """x + Σ g ⊙ H_s over the vector entries of M's read column (row s + 1)."""
    for ce in step.channels:
        if ce.col != 0:
            continue
        src = ir.add(f"{lid}.vread{ce.row}.take", n.Take(ce.row - 1, ce.row), x=state)
        one = ir.add(f"{lid}.vread{ce.row}.in", n.Merge(), x=src)
        gained = _gain(ir, f"{lid}.vread{ce.row}.gain", ce, width, label, one)
        x = ir.add(f"{lid}.vread{ce.row}.sum", n.Add(2), s0=x, s1=gained)
    return x


def add_channel_writes(ir: IR, step: Step, label: str, streams: int, width: int, state: str,
                       output: str, new: str) -> str:
    """new + g ⊙ (the layer output, or an old stream) placed in a new stream, for every
    vector entry of M's new-stream columns."""
    for ce in step.channels:
        if ce.col == 0:
            continue
        tag = f"{label}.vwrite{ce.row}_{ce.col}"
        src = output if ce.row == 0 else ir.add(f"{tag}.take", n.Take(ce.row - 1, ce.row),
                                                x=state)
        gained = _gain(ir, f"{tag}.gain", ce, width, label, src)
        row = tuple(1.0 if t == ce.col - 1 else 0.0 for t in range(streams))
        coef = ir.add(f"{tag}.coef", n.ConstCoef((row,)))
        placed = ir.add(f"{tag}.place", n.Mix((0, 1), (0, streams)), x=gained, coef=coef)
        new = ir.add(f"{tag}.sum", n.Add(2), s0=new, s1=placed)
    return new
