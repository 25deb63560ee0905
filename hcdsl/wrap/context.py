"""What the layers of a wrapped multi-stream model share within one forward, and over a
decoding run: the model's own transformers cache.

transformers' models compute some things once per forward, before their layer loop: the
positions (from the cache's length), the masks, the rotary tables; the layers read them and
update one shared `Cache` (`DynamicCache(config=...)`: a cache layer per decoder layer, of the
kind the layer needs: sliding window, compressor states, linear-attention recurrent states).
`ForwardContext` does the same for the wrapped model: the embedding adapter (`TapEmbed`)
calls `begin(tokens, embeds)` at the start of every forward, before any layer; while
decoding (`start()` .. `stop()`, called through the adapters' decode protocol, see
hcdsl/nn/decode.py) it holds the model's cache and `step`, what the model's forward would
compute for these tokens (`prepare`, per model), counting the tokens already cached with
hcdsl's decode-state position (`past`: a tensor, so a compiled step has no graph break and
no guard on it). Outside a decoding run `cache` and `step` are None and the adapters compute
their inputs from the sequence alone, as before.

transformers is not imported here: the cache class and the mask functions are looked up in
the model's own modeling file (`namespace(model)`).
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import torch
from torch import nn

from hcdsl.nn.kv import DecodeState


def namespace(module: nn.Module) -> ModuleType:
    """The modeling file a transformers module was defined in (its helpers, masks, caches)."""
    return sys.modules[type(module).__module__]


class ForwardContext(nn.Module):
    """The tokens of the current forward (hash-routed experts read them), what one layer
    hands the next (GLM-5-next's indexer top-k), and while decoding the model's cache and
    the per-forward inputs `prepare` makes. Not a submodule of the wrapped model (no
    state_dict entry): the adapters hold it in a list."""

    def __init__(self, config: Any, ns: ModuleType) -> None:  # noqa: ANN401 - a transformers config
        super().__init__()
        self._config, self._ns = [config], [ns]
        self.tokens: torch.Tensor | None = None
        self.topk: torch.Tensor | None = None
        self.cache: Any = None  # a transformers Cache while decoding
        self.state: DecodeState | None = None  # hcdsl's decode state (its position counter)
        self.step: dict[str, Any] | None = None

    @property
    def config(self) -> Any:  # noqa: ANN401
        return self._config[0]

    @property
    def ns(self) -> ModuleType:
        return self._ns[0]

    def begin(self, tokens: torch.Tensor, embeds: torch.Tensor) -> None:
        """A new forward: no layer has run yet."""
        self.tokens, self.topk = tokens, None
        if self.cache is not None:
            self.step = self.prepare(embeds)

    def start(self, state: DecodeState) -> None:
        """A decoding run begins: a fresh cache of the model's own kind (idempotent: every
        adapter of the model calls it)."""
        if self.cache is None:
            self.cache = self.ns.DynamicCache(config=self.config)
            self.state = state

    def stop(self) -> None:
        self.cache, self.state, self.step = None, None, None

    def past(self) -> torch.Tensor:
        """Tokens already in the cache, what the model's forward reads before its layers
        (`cache.get_seq_length()`), as the decode state's position counter: a 0-d int64
        tensor the decoding loop advances after every forward (hcdsl/nn/decode.py). A tensor,
        not a Python int: the cache's own length is a tensor for a linear-attention cache
        layer (its `int()` breaks a compiled graph) and a Python int for a sliding-window
        one (a compiled step specialises on it; transformers' own cache and mask code still
        reads those ints: docs/wrap.md, Compiled decoding and fullgraph)."""
        assert self.state is not None  # set by start(), with the cache
        return self.state.position

    def prepare(self, embeds: torch.Tensor) -> dict[str, Any]:
        """What the model's forward computes for these tokens before its layers."""
        return {}


class Decodes(nn.Module):
    """An adapter that decodes with its layer's own cache, held by the context (the decode
    protocol of hcdsl/nn/decode.py)."""

    def __init__(self, context: ForwardContext | None) -> None:
        super().__init__()
        self._context = [context]

    @property
    def context(self) -> ForwardContext | None:
        return self._context[0]

    def start_decoding(self, state: DecodeState) -> None:
        if self.context is not None:
            self.context.start(state)

    def stop_decoding(self) -> None:
        if self.context is not None:
            self.context.stop()

    def step(self) -> dict[str, Any] | None:
        """The per-forward inputs while decoding, or None (the whole sequence is here)."""
        return None if self.context is None else self.context.step


class PerToken(nn.Module):
    """A layer acting on each token alone (an MLP, a MoE) as an extern layer that decodes
    without a cache (`mixes_time = False`, hcdsl/nn/decode.py)."""

    mixes_time = False

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layer(x)
        return out[0] if isinstance(out, tuple) else out
