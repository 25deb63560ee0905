"""What a compiled model takes and gives besides the tokens, shared by both backends:

    model(tokens)                                  -> logits (B, T, vocab)
    model(tokens, mask=m)                          -> logits, attention restricted by m
    model(tokens, targets=y)                       -> ModelOutput(logits, loss, None)
    model(tokens, return_hidden=True)              -> ModelOutput(logits, None, hidden)

mask: a padding mask (B, T) (true/1: a real token, false/0: padding), or an attention mask
(B, T, T) or (T, T) (true: query t may attend to key s); causality always holds on top.
A query that may attend to no key (a padding position before any real token) attends to
itself, so no row is empty (an empty softmax is NaN).
targets: (B, T) token ids, targets[:, t] the token that follows tokens[:, t] (the trainer's
x[:, 1:]); the loss is the mean next-token cross-entropy, ignoring targets of -100.
hidden: one (B, T, dim) tensor per layer, in layer order: the value the layer reads from the
connection (its first input port), before its own pre-norm.

A body (`input = hidden`) maps hidden states (B, T, dim) to hidden states and takes
return_hidden only.
"""

from __future__ import annotations

import inspect
import re
from typing import NamedTuple

import torch
import torch.nn.functional as F

from hcdsl.errors import CompileError
from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR

LAYER_ID = re.compile(r"^L(\d+)\.")


class ModelOutput(NamedTuple):
    logits: torch.Tensor  # the model's output: logits, or a body's hidden states
    loss: torch.Tensor | None
    hidden: tuple[torch.Tensor, ...] | None


def attention_mask(mask: torch.Tensor | None, tokens: torch.Tensor) -> torch.Tensor | None:
    """The user's mask as a boolean (B, 1, T, T) mask, causal included; None stays None."""
    if mask is None:
        return None
    B, T = tokens.shape[0], tokens.shape[1]
    shape = tuple(mask.shape)
    causal = torch.ones(T, T, dtype=torch.bool, device=tokens.device).tril()
    if shape == (B, T):  # padding: keys that are real tokens
        allowed = mask.bool()[:, None, None, :] & causal
    elif shape == (B, T, T):
        allowed = mask.bool()[:, None] & causal
    elif shape == (T, T):
        allowed = (mask.bool() & causal)[None, None].expand(B, 1, T, T)
    else:
        raise CompileError(
            f"mask of shape {shape} does not fit tokens of shape (batch, time) = {(B, T)}: "
            f"give a padding mask {(B, T)} (1 = token, 0 = padding) or an attention mask "
            f"{(B, T, T)} or {(T, T)} (True = query t may attend to key s)")
    empty = ~allowed.any(dim=-1, keepdim=True)  # a query with no key attends to itself
    return allowed | (empty & torch.eye(T, dtype=torch.bool, device=tokens.device))


def hidden_list(return_hidden: bool, layers: int) -> list[torch.Tensor | None] | None:
    """The slots of the per-layer hidden states, or None when they are not asked for (then
    nothing is kept alive)."""
    return [None] * layers if return_hidden else None


def keep(hidden: list[torch.Tensor | None] | None, index: int,
         value: torch.Tensor) -> list[torch.Tensor | None] | None:
    """Record layer `index`'s input (0-based) when hidden states are asked for."""
    if hidden is not None:
        hidden[index] = value
    return hidden


def finish(out: torch.Tensor, targets: torch.Tensor | None,
           hidden: list[torch.Tensor | None] | None) -> torch.Tensor | ModelOutput:
    """The output alone, or a ModelOutput when a loss or the hidden states are asked for."""
    if targets is None and hidden is None:
        return out
    loss = None
    if targets is not None:
        if tuple(targets.shape) != tuple(out.shape[:-1]):
            raise CompileError(f"targets of shape {tuple(targets.shape)} do not fit logits of "
                               f"shape {tuple(out.shape)}: give (batch, time) = "
                               f"{tuple(out.shape[:-1])} token ids, targets[:, t] the token "
                               "after tokens[:, t]")
        loss = F.cross_entropy(out.flatten(0, -2).float(), targets.flatten().long(),
                               ignore_index=-100)
    kept = tuple(hidden) if hidden is not None else None
    return ModelOutput(out, loss, kept)  # type: ignore[arg-type]


def check_tokens(tokens: torch.Tensor, vocab: int) -> torch.Tensor:
    """A model's input must be token ids (batch, time) of an integer dtype in 0..vocab-1.
    Shape and dtype are checked while tracing (static under torch.compile); the range is
    checked eagerly with the value seen, and under torch.compile by an assertion in the
    graph (no graph break, no host sync)."""
    if not isinstance(tokens, torch.Tensor):
        raise CompileError(f"this model reads token ids (batch, time) as a torch tensor of "
                           f"integers; got {type(tokens).__name__}")
    if tokens.dim() != 2 or tokens.is_floating_point() or tokens.is_complex() or \
            tokens.dtype == torch.bool:
        raise CompileError(f"this model reads token ids: an integer tensor (batch, time) in "
                           f"0..{vocab - 1}; got a {tokens.dtype} tensor of shape "
                           f"{tuple(tokens.shape)}"
                           + (" (a single sequence: use tokens[None])" if tokens.dim() == 1
                              else ""))
    inside = ((tokens >= 0) & (tokens < vocab)).all()
    if torch.compiler.is_compiling():  # (torch re-raises it as the cause of its own error)
        torch._assert_async(inside, f"token ids must lie in 0..{vocab - 1} (the vocabulary)")
    elif not bool(inside):
        bad = tokens[(tokens < 0) | (tokens >= vocab)]
        at = torch.nonzero((tokens < 0) | (tokens >= vocab))[0].tolist()
        raise CompileError(f"token {int(bad[0])} at (batch, time) = {tuple(at)} is outside "
                           f"the vocabulary 0..{vocab - 1} ({bad.numel()} token"
                           f"{'s' if bad.numel() != 1 else ''} out of range)")
    return tokens


def check_hidden_input(x: torch.Tensor, dim: int) -> torch.Tensor:
    """A body's input must be hidden states (B, T, dim)."""
    if x.dim() != 3 or x.shape[-1] != dim or not x.is_floating_point():
        raise CompileError(f"this model reads hidden states (batch, time, dim = {dim}); got a "
                           f"{x.dtype} tensor of shape {tuple(x.shape)}")
    return x


def layer_inputs(ir: IR) -> list[tuple[int, str, str]]:
    """(0-based layer position, the node that runs the layer, the value it reads) for every
    layer: the value on its first port, before its pre-norm when that port is read through a
    norm. A fused parallel block (ParallelLayers) runs several layers that read one value: one
    entry per layer, each naming the fused node."""
    out = []
    count = 0
    for v in ir.order():
        p = ir.payload(v)
        if not isinstance(p, (n.Layer, n.ParallelLayers)):
            continue
        src = ir.inputs(v)[p.ports()[0]]
        if isinstance(ir.payload(src), n.Norm):
            src = ir.inputs(src)["x"]
        for layer_id in p.ids if isinstance(p, n.ParallelLayers) else (v,):
            m = LAYER_ID.match(layer_id)
            out.append((int(m.group(1)) - 1 if m else count, v, src))
            count += 1
    return out


def layer_count(ir: IR) -> int:
    return 1 + max((k for k, _, _ in layer_inputs(ir)), default=-1)


def takes_mask(module: torch.nn.Module) -> bool:
    """A layer module that accepts a `mask` keyword gets the attention mask."""
    try:
        params = inspect.signature(module.forward).parameters
    except (TypeError, ValueError):
        return False
    return "mask" in params
