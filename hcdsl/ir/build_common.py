"""Pieces every IR builder shares: the embedding at the start, the head at the end, a layer
node wired by port, a norm node, and readable step labels (L3, L1-2)."""

from __future__ import annotations

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.lang.catalog import ports_of
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
    ports = (ports_of(layer.kind) if not layer.extern else ("x",)) + extra
    args = tuple((dict(layer.args) | (overrides or {})).items())
    payload = n.Layer(layer.name, layer.kind, args, spec.dim, ports, out_scale, layer.extern,
                      taps)
    return ir.add(f"L{k + 1}.{layer.name}", payload, **{p: inputs[p] for p in ports})


def start(spec: ModelSpec) -> IR:
    ir = IR(spec.name)
    ir.add("tokens", n.Input())
    ir.add("embed", n.Embed(spec.vocab, spec.dim), x="tokens")
    return ir


def finish(ir: IR, spec: ModelSpec, h: str) -> IR:
    """Final norm, unembedding and output after the readout value h."""
    if spec.head.final_norm:
        h = ir.add("final.norm", norm_node(spec.norm, spec.dim), x=h)
    ir.add("head", n.Unembed(spec.vocab, spec.dim, spec.head.tied), x=h)
    ir.add("output", n.Output(), x="head")
    return ir
