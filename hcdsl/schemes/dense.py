"""Dense connections over a growing history: DenseFormer, MUDD (and DDFormer), attention
residuals. See schemes/primitive.py (Aggregate, DenseBlock, DenseScheme).

History X_0 = embedding, X_i = output of block i. A depth-wise aggregate (DA) after block i
forms the next block's input from X_0..X_i; the last DA (one way) is the model output.
"""

from __future__ import annotations

from hcdsl.lang.catalog import layer_kind
from hcdsl.lang.connections import AttnResOptions, DenseFormerOptions, MuddOptions
from hcdsl.lang.history_generator import (
    HistNorm, HistoryGenerator, HistProj, HistStatic, static_init,
)
from hcdsl.schemes.primitive import Aggregate, DenseBlock, DenseScheme
from hcdsl.schemes.registry import SchemeError, register
from hcdsl.spec import ModelSpec

# -- the presets' generators: the records a user writes in `generator { ... }` -------------
# DenseFormer, static MUDD: learned a only, one-hot on the newest source at init
STATIC = HistoryGenerator()
# attention residuals: A_j = softmax_j(q · RMSNorm(X_j)), keys with their own scale
ATTNRES = HistoryGenerator(input="sources", norm=HistNorm(weight="scale"),
                           proj=HistProj(kind="query"), act="softmax", static=None)


def mudd_generator(dynamic: bool, prepost: bool, round_up: bool,
                   rank_ways: int = 0) -> HistoryGenerator:
    """MUDD Eq. 6: A_i = GELU(RMSNorm(X_i) W1) W2 + a_i, RMSNorm without scale; a_i one-hot
    on X_i (Pre-Norm at init), or 0 with PrePostDANorm, as X_i is added after the
    post-norm (paper §3, "Implementation Details"). Static: a_i only."""
    static = HistStatic(init="zero" if prepost else "newest")
    if not dynamic:
        return HistoryGenerator(static=static)
    return HistoryGenerator(
        input="newest", norm=HistNorm(weight="none"),
        proj=HistProj(kind="lowrank", round=64 if round_up else 0, rank_ways=rank_ways),
        static=static)


def resolve(gen: HistoryGenerator, sources: int, ways: int) -> HistoryGenerator:
    """The generator of one aggregate: MUDD's rank K made concrete (rank = 0 means
    K = ways x sources, `rank_ways` ways if given, rounded up as (K // round + 1) *
    round)."""
    p = gen.proj
    if p.kind != "lowrank" or (p.rank and not p.round and not p.rank_ways):
        return gen
    k = p.rank or (p.rank_ways or ways) * sources
    k = (k // p.round + 1) * p.round if p.round else k
    return gen.model_copy(update={"proj": HistProj(kind="lowrank", rank=k, mid=p.mid)})


def aggregate(gen: HistoryGenerator, sources: tuple[int, ...], ways: int,
              learn: bool = True, source_norm: bool = False) -> Aggregate:
    """An aggregate over `sources` made by `gen`; `init` is a at init (ones without a)."""
    init = static_init(gen.static.init if gen.static else "ones", len(sources), ways)
    return Aggregate(sources=sources, ways=ways, init=init, learn=learn,
                     generator=resolve(gen, len(sources), ways), source_norm=source_norm)


def dilated(i: int, k: int) -> tuple[int, ...]:
    """Sources j <= i with j = i (mod k): DenseFormer's dilation, MUDD's sparse k."""
    return tuple(j for j in range(i + 1) if (i - j) % k == 0)


# -- DenseFormer (arXiv 2402.02622) --------------------------------------------------------
def depth_weighted(spec: ModelSpec, k: int, p: int, learn: bool,
                   groups: list[list[int]] | None = None) -> DenseScheme:
    """DenseFormer over `groups` of layers (default: the model's blocks):
    Y_i = sum_{j <= i} α_ij X_j;  X_{i+1} = Block_{i+1}(Y_i);  output Y_L.
    init α_ii = 1, others 0 -> exactly the plain (Pre-Norm) Transformer."""
    def dwa(i: int) -> Aggregate | None:
        if i == 0 or i % p:
            return None  # Y_0 = X_0, and no DWA off the period: the block reads X_i
        return aggregate(STATIC, dilated(i, k), 1, learn=learn)

    groups = groups if groups is not None else spec.blocks
    blocks = tuple(DenseBlock(layers=tuple(b), read=dwa(i)) for i, b in enumerate(groups))
    return DenseScheme(blocks=blocks, final=dwa(len(groups)), family=f"DenseFormer {k}x{p}")


@register("denseformer")
def _denseformer(spec: ModelSpec, o: DenseFormerOptions) -> DenseScheme:
    return depth_weighted(spec, o.k, o.p, o.learn)


# -- MUDD (arXiv 2502.12170) ---------------------------------------------------------------
def mudd_sources(i: int, k: int, window: int) -> tuple[int, ...]:
    """Sources of the DA after block i: every k-th output back from X_i (k x p); with a
    window n (SWn) only the last n block outputs, plus the embedding X_0 (§3.6)."""
    src = dilated(i, k)
    if not window:
        return src
    return (0,) + tuple(j for j in src if j > 0)[-window:]


@register("mudd")
def _mudd(spec: ModelSpec, o: MuddOptions) -> DenseScheme:
    if o.window and o.k > 1:
        raise SchemeError("mudd: window and k > 1 together are not a variant of the paper",
                          "use either window=n (SWn) or k, p (k x p)")

    def da(i: int, ways: int, rank_ways: int) -> Aggregate | None:
        if i == 0 or i % o.p:
            return None
        # K = C (i + 1) with C = rank_ways; the released configs round K up
        gen = mudd_generator(o.dynamic, o.prepost, o.round,
                             rank_ways if rank_ways != ways else 0)
        return aggregate(gen, mudd_sources(i, o.k, o.window), ways, source_norm=o.prepost)

    check_qkv(spec, spec.blocks, o.ways, "mudd(ways=4)", "or use mudd(ways=1)")
    blocks = [DenseBlock(layers=tuple(b), read=da(i, o.ways, o.ways))
              for i, b in enumerate(spec.blocks)]
    layer_args = _ffn_growth(spec, o.ffn_multiple) if o.ffn_growth else ()
    # the last DA makes only R, with the hidden size of a 4-way DA ("hidden x4")
    final = da(len(spec.blocks), 1, 4)
    name = "MUDD" if o.ways == 4 else "DDFormer"
    return DenseScheme(blocks=tuple(blocks), final=final, layer_args=layer_args,
                       family=f"{name}{'' if o.dynamic else ' static'}")


def check_qkv(spec: ModelSpec, groups: list[list[int]], ways: int, what: str,
              other: str) -> None:
    """Ways q, k, v feed the first layer of every group: it must have those input ports."""
    if ways < 3:
        return
    for i, b in enumerate(groups):
        first = spec.sequence[b[0]]
        if first.in_ports == ("q", "k", "v"):
            continue
        kind = f"extern {first.kind}" if first.extern else first.kind
        raise SchemeError(
            f"{what} feeds separate q, k and v inputs to the first layer of every "
            f"block, but block {i + 1} starts with '{first.name}' ({kind}), whose input "
            f"ports are ({', '.join(first.in_ports)})",
            "start every block with a layer of ports q, k, v: attention, or an extern "
            "layer that declares them (`extern NAME(ports=qkv)` in the spec, or a class "
            f"attribute ports = (\"q\", \"k\", \"v\") on its factory); {other}")


def ffn_width(base: int, i: int, blocks: int, multiple: int = 1) -> int:
    """MUDD Eq. 9 for 0-based block i of L: D_f (0.5 (L - 1 - i) + 1.5 i) / (L - 1),
    rounded to the nearest multiple (Python round, as the released code); L = 1: D_f."""
    factor = (0.5 * (blocks - 1 - i) + 1.5 * i) / (blocks - 1) if blocks > 1 else 1.0
    return max(multiple, round(base * factor / multiple) * multiple)


def _ffn_growth(spec: ModelSpec, multiple: int) -> tuple[tuple[int, str, int], ...]:
    """mlp hidden of block i grows linearly from 0.5x (first block) to 1.5x (last)."""
    blocks = spec.blocks
    out = []
    for i, b in enumerate(blocks):
        for k in b:
            layer = spec.sequence[k]
            record = layer_kind(layer.kind, layer.extern)
            if record is not None and record.feed_forward:
                base = int(layer.arg("hidden") or 4 * spec.dim)
                out.append((k, "hidden", ffn_width(base, i, len(blocks), multiple)))
    return tuple(out)


# -- attention residuals -------------------------------------------------------------------
@register("attnres")
def _attnres(spec: ModelSpec, o: AttnResOptions) -> DenseScheme:
    return attention_residuals(spec, o.granularity)


def attention_residuals(spec: ModelSpec, granularity: str,
                        gen: HistoryGenerator = ATTNRES) -> DenseScheme:
    # layer: every layer reads softmax_j(q_k · RMSNorm(v_j)) v_j over the embedding and all
    # earlier raw layer outputs v_j (no additive residual); block (Block AttnRes): every
    # layer attends over the completed block sums and its block's partial sum
    groups = ([[k] for k in range(len(spec.sequence))] if granularity == "layer"
              else spec.blocks)

    def agg(i: int) -> Aggregate:
        return aggregate(gen, tuple(range(i + 1)), 1)

    # the first layer reads the embedding alone: a softmax over one source is 1, and its
    # query and key norm would be parameters without a gradient
    if granularity == "block":  # Block AttnRes: every layer reads blocks + partial sum
        blocks = tuple(DenseBlock(layers=tuple(g), read=agg(i), residual=False,
                                  write="accumulate") for i, g in enumerate(groups))
    else:
        blocks = tuple(DenseBlock(layers=tuple(g), read=agg(i) if i else None,
                                  residual=False) for i, g in enumerate(groups))
    return DenseScheme(blocks=blocks, final=agg(len(groups)),
                       family=f"attention residuals ({granularity})")


# -- a user-written history connection (`connection NAME { state = history ... }`) ---------
def history_scheme(spec: ModelSpec, gen: HistoryGenerator, granularity: str, ways: int,
                   keep: str, family: str) -> DenseScheme:
    """Aggregates made by `gen` over every earlier entry, after every layer or block.
    keep = outputs: attention residuals' structure (raw layer outputs, no residual);
    states: DenseFormer's and MUDD's (block outputs; block 1 reads the embedding as is);
    updates: DCA's (every block, the first too, reads an aggregate; its residual is way q
    and the history keeps what the block adds). The last aggregate (one way) is the
    output."""
    if keep == "outputs":
        if ways > 1:
            raise SchemeError(
                "a history of raw layer outputs (keep = outputs, the default for softmax "
                "weights) feeds every layer one value, and this connection asks for "
                f"{'qkv' if ways == 3 else 'qkvr'} ways",
                "write keep = states (MUDD: ways = qkvr) or keep = updates (DCA: ways = qkv)")
        return attention_residuals(spec, granularity, gen).model_copy(
            update={"family": family})
    groups = ([[k] for k in range(len(spec.sequence))] if granularity == "layer"
              else spec.blocks)
    check_qkv(spec, groups, ways, f"ways = {'qkv' if ways == 3 else 'qkvr'}",
              "or write ways = x")

    def agg(i: int, w: int) -> Aggregate:
        return aggregate(gen, tuple(range(i + 1)), w)

    if keep == "states":
        blocks = tuple(DenseBlock(layers=tuple(g), read=agg(i, ways) if i else None)
                       for i, g in enumerate(groups))
    else:
        blocks = tuple(DenseBlock(layers=tuple(g), read=agg(i, ways), write="update")
                       for i, g in enumerate(groups))
    return DenseScheme(blocks=blocks, final=agg(len(groups), 1), family=family)
