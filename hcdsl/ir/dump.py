"""Deterministic text dump (goldens, `hcdsl show --ir`) and Graphviz DOT export."""

from __future__ import annotations

from hcdsl.ir.graph import IR


def dump(ir: IR) -> str:
    types = ir.types()
    lines = [f"ir {ir.name}  # {len(ir)} nodes"]
    for v in ir.order():
        ins = ", ".join(f"{p}={u}" for p, u in ir.inputs(v).items())
        lines.append(f"{v} = {ir.payload(v).describe()} ({ins}) -> {types[v]}")
    return "\n".join(lines) + "\n"


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(ir: IR) -> str:
    types = ir.types()
    lines = [f"digraph {_q(ir.name)} {{", "  rankdir=TB;", "  node [shape=box, fontname=Helvetica];"]
    for v in ir.order():
        p = ir.payload(v)
        label = f"{v}\n{p.op}" + (f" {getattr(p, 'kind')}" if hasattr(p, "kind") else "")
        lines.append(f"  {_q(v)} [label={_q(label)}];")
    for v in ir.order():
        for port, u in ir.inputs(v).items():
            lines.append(f"  {_q(u)} -> {_q(v)} [label={_q(f'{port}: {types[u]}')}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
