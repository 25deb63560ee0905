"""Pieces every IR builder shares: the embedding at the start, the head at the end, a layer
node wired by port, a norm node, and readable step labels (L3, L1-2)."""

from __future__ import annotations

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.lang.catalog import attends
from hcdsl.schemes.primitive import Step
from hcdsl.spec import ModelSpec, NormSpec


def step_label(step: Step) -> str:
    first, last = step.layers[0] + 1, step.layers[-1] + 1
    return f"L{first}" if first == last else f"L{first}-{last}"


def norm_node(norm: NormSpec, width: int) -> n.Norm:
    return n.Norm(norm.kind, norm.affine, norm.eps, width)


def layer_node(ir: IR, spec: ModelSpec, k: int, out_scale: float,
               inputs: dict[str, str], overrides: dict[str, object] | None = None,
               taps: tuple[str, ...] = (), extra: tuple[str, ...] = ()) -> str:
    """Add layer k of the sequence as node L{k+1}.{name}, its ports wired from `inputs`."""
    layer = spec.sequence[k]
    ports = layer.in_ports + extra
    args = tuple((dict(layer.args) | (overrides or {})).items())
    attn_drop = spec.dropout.attn if attends(layer.kind, layer.extern) else 0.0
    payload = n.Layer(layer.name, layer.kind, args, spec.dim, ports, out_scale, layer.extern,
                      attn_drop, taps)
    return ir.add(f"L{k + 1}.{layer.name}", payload, **{p: inputs[p] for p in ports})


def branch_dropout(ir: IR, spec: ModelSpec, k: int, out: str) -> str:
    """Layer k's output after `dropout` branch (the value the connection writes)."""
    if not spec.dropout.branch:
        return out
    return ir.add(f"L{k + 1}.drop", n.Dropout(spec.dropout.branch), x=out)


def coef_dropout(ir: IR, spec: ModelSpec, label: str, x: str) -> str:
    """The input of a connection's dynamic weights after `dropout` coef."""
    if not spec.dropout.coef:
        return x
    return ir.add(f"{label}.coef_drop", n.Dropout(spec.dropout.coef), x=x)


def start(spec: ModelSpec) -> tuple[IR, str]:
    """The IR with its input, and h0: the embedding (with learned positions when `pos =
    learned`), or the input hidden states (`input = hidden`); after `dropout` embed."""
    ir = IR(spec.name)
    if spec.input == "hidden":
        h = ir.add("input", n.Input(spec.dim))
    else:
        ir.add("tokens", n.Input())
        positions = spec.context or 0 if spec.pos == "learned" else 0
        h = ir.add("embed", n.Embed(spec.vocab, spec.dim, positions), x="tokens")
    if spec.dropout.embed:
        h = ir.add("embed.drop", n.Dropout(spec.dropout.embed), x=h)
    return ir, h


def finish(ir: IR, spec: ModelSpec, h: str) -> IR:
    """Final norm, unembedding and output after the readout value h (a hidden-input body:
    the output is h itself)."""
    if spec.input == "hidden":
        ir.add("output", n.Output(), x=h)
        return ir
    if spec.head.final_norm:
        h = ir.add("final.norm", norm_node(spec.norm, spec.dim), x=h)
    ir.add("head", n.Unembed(spec.vocab, spec.dim, spec.head.tied), x=h)
    ir.add("output", n.Output(), x="head")
    return ir
