"""hcdsl.wrap(model, connection): an existing model, its weights kept, with another connection.

    recognise (hf.py, blocks.py) -> the .hc text of the model (text.py) -> the front end,
    the scheme, the IR and the passes, as for any spec -> the IR's modules: the model's own
    (sub-layers as extern layers, their pre-norms, embedding, final norm, head) and new ones
    for the connection -> the fx GraphModule (or the reference interpreter)

so the wrapped model is an hcdsl model: `.hc_ir` (for `hcdsl.prove`), `.hc_spec`, `.hc_text`,
`.hc_compilation` (what hcdsl.compiler.Compilation.load gives for it),
forward(tokens, mask=None, return_hidden=False, targets=None) -> logits (a ModuleList of
blocks: forward(x, return_hidden=False), hidden states in and out).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from torch import nn

from hcdsl.compiler import BACKENDS, Compilation
from hcdsl.errors import CompileError
from hcdsl.frontend.source import text_source
from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.passes.pipeline import DEFAULT
from hcdsl.wrap.blocks import recognise_blocks
from hcdsl.wrap.hf import model_type, recognise_hf
from hcdsl.wrap.recognise import Recognised, Sublayer
from hcdsl.wrap.text import FACTORY, spec_text


def recognise(model: nn.Module) -> Recognised:
    """The blocks of a model: a transformers causal LM (hf.py) or a ModuleList (blocks.py)."""
    if isinstance(model, nn.ModuleList):
        return recognise_blocks(model)
    if model_type(model) is not None:
        return recognise_hf(model)
    raise CompileError(
        f"hcdsl.wrap does not recognise {type(model).__name__}: it wraps transformers causal "
        "LMs (GPT-2, Llama, Qwen2, Mistral) and an nn.ModuleList of pre-norm blocks, each "
        "with a method hc_sublayers() giving (norm, layer) pairs, or attributes norm1, attn, "
        "norm2, mlp, or itself a sequence of (norm, layer) pairs (docs/wrap.md)")


def wrap(model: nn.Module, connection: str | None = None, *, inplace: bool = False,
         backend: str = "fx", seed: int | None = None,
         passes: Iterable[str] | None = DEFAULT) -> nn.Module:
    """`model` with the connection `connection`, every weight of the original kept.

    connection: None (the model's own: read out of a multi-stream model such as DeepSeek-V4,
    with its weights, see deepseek_v4.py; residual for the Pre-Norm ones), a preset
    ("residual", "hyper(n=4, dynamic)", "mhc(n=4, identity, readout=mean)", ...) or .hc
    text with `connection NAME { ... }` blocks and `connect NAME`. The model is deep-copied (inplace=True reuses its modules; the caller's model is
    never changed otherwise). The connection's new parameters follow torch's global RNG
    unless `seed` is given. The HC paper's output-projection scale (§4) is not applied: the
    model's weights are kept as they are.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"hcdsl.wrap takes an nn.Module, got {type(model).__name__}")
    if backend not in BACKENDS:
        raise CompileError(f"unknown backend '{backend}': choose 'fx' or 'reference'")
    src = model if inplace else _without_capture_hooks(copy.deepcopy(model))
    rec = recognise(src)
    own = connection is None and rec.carry is not None  # the model's own (multi-stream) one
    text = spec_text(rec, (rec.connection or "residual") if connection is None else connection)
    subs = {(i, j): s for i, block in enumerate(rec.blocks) for j, s in enumerate(block)}

    def factory(dim: int, block: int, index: int, out_scale: float = 1.0) -> nn.Module:
        # out_scale is taken and not applied: wrap keeps the model's weights as they are
        return subs[(block, index)].module

    factories = {FACTORY: factory}
    program = Compilation.from_source(text_source(text, f"<hcdsl.wrap {rec.name}>"),
                                      factories)
    param = next(src.parameters(), None)
    device = param.device if param is not None else None
    dtype = param.dtype if param is not None else None
    module, ir = program.wrapped_module(passes, factories,
                                        lambda ir: _model_modules(ir, rec, subs), seed,
                                        device, dtype, backend)
    if own:
        rec.carry(module)
    module.hc_ir = ir  # type: ignore[assignment]
    module.hc_spec, module.hc_text = program.spec, text  # type: ignore[assignment]
    module.hc_compilation = program  # type: ignore[assignment]
    module.train(src.training)
    return module


def _without_capture_hooks(model: nn.Module) -> nn.Module:
    """The copy without the forward hooks transformers installs on a model's first forward
    to collect output_hidden_states / output_attentions: they do nothing outside its own
    forward, and torch.compile cannot trace them (a graph break per layer). With inplace=True
    the caller's modules keep them (so the wrapped model still runs, with those breaks)."""
    for m in model.modules():
        for key, hook in list(m._forward_hooks.items()):
            if getattr(hook, "__module__", "") == "transformers.utils.output_capturing":
                del m._forward_hooks[key]
    return model


def _model_modules(ir: IR, rec: Recognised,
                   subs: dict[tuple[int, int], Sublayer]) -> dict[str, nn.Module]:
    """Node id -> the model's module: every layer's pre-norm (a layer read on several ports
    through several norms, as MUDD's q, k, v, gets copies of its norm for the others), the
    embedding, the final norm and the head."""
    out: dict[str, nn.Module] = {}
    owner: dict[str, str] = {}
    for v in ir.order():
        p = ir.payload(v)
        if isinstance(p, n.Embed):
            out[v] = rec.embed
        elif isinstance(p, n.Unembed):
            out[v] = rec.head
            src = ir.inputs(v)["x"]
            if isinstance(ir.payload(src), n.Norm):
                out[src] = rec.final_norm
        elif isinstance(p, n.Layer) and p.extern and p.kind == FACTORY:
            args = dict(p.args)
            sub = subs[(int(args["block"]), int(args["index"]))]
            if sub.norm is None:  # a layer without a pre-norm of its own (Qwen4-exp)
                continue
            for i, port in enumerate(p.ports()):
                norm = ir.inputs(v)[port]
                if not isinstance(ir.payload(norm), n.Norm):
                    raise CompileError(
                        f"the connection gives layer '{p.name}' no pre-norm of its own: "
                        "hcdsl.wrap keeps every block's norms, so the connection must "
                        "normalise each layer's input (Pre-Norm style; not residual(post) "
                        "or prenorm=false)")
                if norm in owner and owner[norm] != v:
                    if any(True for _ in sub.norm.parameters()):
                        raise CompileError(
                            f"the connection shares one norm between layers "
                            f"'{ir.payload(owner[norm]).name}' and '{p.name}' (a parallel "
                            "block with one norm): hcdsl.wrap keeps each sub-layer's own "
                            "norm; use e.g. parallel(separate)")
                    continue
                if norm not in owner:
                    owner[norm] = v
                    out[norm] = sub.norm if i == 0 else copy.deepcopy(sub.norm)
    return out
