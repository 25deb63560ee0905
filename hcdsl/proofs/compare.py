"""Where two evaluations first disagree: the first layer (by position) that both use and
that differs in kind, options or input, or that only one uses; then the head's input. A
layer whose output nothing downstream reads (OUT = 0, B = 0) is dead and not compared."""

from __future__ import annotations

from hcdsl.proofs.coefs import K
from hcdsl.proofs.symbolic import Evaluation, LayerInfo
from hcdsl.proofs.terms import Atom, Lin, reachable


def _alive(ev: Evaluation) -> dict[int, LayerInfo]:
    if ev.output is None:
        return {}
    seen = reachable(ev.output)
    return {k: info for k, info in ev.layers.items() if info.atom.id in seen}


def _sig(info: LayerInfo) -> str:
    kind, args, *_ = info.sig
    return kind + ("(" + ", ".join(f"{k}={v}" for k, v in args) + ")" if args else "")


def first_difference(ea: Evaluation, eb: Evaluation) -> str | None:
    """None when the evaluations agree, else a description of the first disagreement."""
    if ea.output is not None and eb.output is not None and ea.output is eb.output:
        return None
    la, lb = _alive(ea), _alive(eb)
    for k in sorted(set(la) | set(lb)):
        a, b = la.get(k), lb.get(k)
        if a is None or b is None:
            who, other = ("A", "B") if a is not None else ("B", "A")
            return (f"layer {k} is used by {who} only: its output reaches {who}'s logits, "
                    f"while {other} never reads it (or has no layer {k})")
        if a.atom is b.atom:
            continue
        if a.sig != b.sig:
            return f"layer {k}: A runs {_sig(a)}, B runs {_sig(b)}"
        lines = [f"input of layer {k} ({a.node} vs {b.node}):"]
        for i, (pa, pb) in enumerate(zip(a.ports, b.ports)):
            if pa != pb:
                lines += [f"  A: T{k}({pa.render()})", f"  B: T{k}({pb.render()})"]
                break
        else:
            lines.append("  the layer's own parameters differ (checkpoints)")
        if a.raw_input is not None and b.raw_input is not None:
            entry = entry_difference(a.raw_input, b.raw_input, k)
            if entry:
                lines.append(f"  connection matrix C^(0): {entry}")
        return "\n".join(lines)
    L1 = max(list(la) + list(lb) + [0]) + 1
    if ea.final is not None and eb.final is not None and ea.final == eb.final:
        return ("the head differs: A and B read the same final value but their unembeddings "
                "differ (vocab, dim, tying, or the checkpoints' weights)")
    lines = ["input of the head (after the final norm, if any):",
             f"  A: {ea.final.render() if ea.final is not None else '-'}",
             f"  B: {eb.final.render() if eb.final is not None else '-'}"]
    if ea.final_raw is not None and eb.final_raw is not None:
        entry = entry_difference(ea.final_raw, eb.final_raw, L1)
        if entry:
            lines.append(f"  connection matrix C^(0): {entry} (row {L1} = the readout)")
    return "\n".join(lines)


def entry_difference(a: Lin, b: Lin, k: int) -> str | None:
    """'c_{k},{j}: A x vs B y' for the first h0 / T_j atom whose coefficients differ."""
    atoms: dict[int, Atom] = {x.id: x for x in (*a.terms, *b.terms)}
    for atom in sorted(atoms.values(), key=lambda x: (x.kind != "h0", x.kind != "T",
                                                      x.fields[0] if x.kind == "T" else 0)):
        ca, cb = a.coef(atom), b.coef(atom)
        if not ca.same(cb):
            j = 0 if atom.kind == "h0" else atom.fields[0] if atom.kind == "T" else None
            col = f"c_{k},{j}" if j is not None else f"the coefficient of {atom.label}"
            return f"{col}: A {_fmt(ca)} vs B {_fmt(cb)}"
    return None


def _fmt(c: K) -> str:
    return c.render()
