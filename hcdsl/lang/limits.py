"""The limits of what a spec may ask for, as data: each is checked when the spec is validated
and a spec over one gets a located error naming the limit. They are far above every model in
the papers (OLMo-7B: dim 4096; Llama-3-405B: 126 blocks, dim 16384, vocab 128256) and far
below what would overflow a size computation or run for hours before failing."""

from __future__ import annotations

from typing import NamedTuple


class Limit(NamedTuple):
    name: str
    value: int
    what: str


MAX_SOURCE_BYTES = 1 << 20
MAX_DIM = 1 << 16
MAX_VOCAB = 1 << 21
MAX_CONTEXT = 1 << 21
MAX_HIDDEN = 1 << 18
MAX_HEADS = 1024
MAX_LAYERS = 1024
MAX_STREAMS = 64
MAX_LOWRANK = 1 << 16
MAX_ITERS = 1000
MAX_MULTIPLE = 1 << 16

LIMITS: tuple[Limit, ...] = (
    Limit("source", MAX_SOURCE_BYTES, "bytes of spec text"),
    Limit("dim", MAX_DIM, "model width"),
    Limit("vocab", MAX_VOCAB, "vocabulary size"),
    Limit("context", MAX_CONTEXT, "context length"),
    Limit("hidden", MAX_HIDDEN, "hidden width of an mlp or opaque layer"),
    Limit("heads", MAX_HEADS, "attention heads"),
    Limit("layers", MAX_LAYERS, "layers in the body (attention and FFN count one each)"),
    Limit("streams", MAX_STREAMS, "streams or fractions of a connection (n, m, streams)"),
    Limit("lowrank", MAX_LOWRANK, "rank of a low-rank state map"),
    Limit("iters", MAX_ITERS, "Sinkhorn-Knopp iterations of mHC"),
    Limit("multiple", MAX_MULTIPLE, "rounding multiple of grown FFN widths (mudd)"),
)
