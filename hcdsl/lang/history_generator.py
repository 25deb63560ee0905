"""History generators: the weights of a depth-wise aggregate over a history of layer
outputs, as typed records (`generator { ... }` in a `state = history` connection;
docs/language.md, "History generators").

An aggregate reads sources X_{j_1} .. X_{j_S} of the history (X_0 the embedding) and makes
`ways` values (MUDD's Q, K, V, R; DCA's Q, K, V; one for DenseFormer and attention
residuals), way w = sum_s A[s, w] ⊙ X_{j_s}. The weights A come from one fixed pipeline:

    z  = input                  none: no generator (static weights only);
                                newest: the newest source X_{j_S} (MUDD, arXiv 2502.12170 Eq. 6);
                                sources: every source X_j on its own (attention residuals'
                                keys, arXiv 2603.15031; DCA's GRN-v3, arXiv 2502.06785)
    z' = norm(z)                rmsnorm, weight none | scale (the model's norm eps)
    y  = proj(z')               none: 0;
                                lowrank(rank=K, mid=gelu): mid(z' W1) W2, S x ways values from
                                  the newest source (MUDD; W1 ~ N(0, 1/D), W2 = 0 at init);
                                linear: z' W, one value per way (per source for `sources`,
                                  S x ways for `newest`); W = 0 at init;
                                query(heads=H): q_w,h · z'_{j,h} per source, way and channel
                                  group h of D/H channels (z' normalised per group when
                                  H > 1); q = 0 at init
    A  = act(y) + a             act: identity | relu | gelu | silu | tanh | sigmoid, or softmax
                                  over the sources (per way and channel group);
                                a: learned static weights per source and way (DenseFormer's
                                  α, MUDD's a_i) or per source, way and channel (DCA's b);
                                  init newest (one-hot on the newest source), zero or ones

A is a scalar per token, source and way unless the query has heads > 1 or `a` is per
channel: then A holds one weight per channel group (heads) or channel, and the aggregate
mixes each group with its own weights. The records are pure data: the front end validates
them (hcdsl/frontend/history_generator.py), the schemes resolve MUDD's rank K per
aggregate (hcdsl/schemes/dense.py), the IR node counts their parameters
(hcdsl/ir/nodes/history.py), hcdsl/nn/dense.py runs them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

HistAct = Literal["identity", "relu", "gelu", "silu", "tanh", "sigmoid", "softmax"]
HIST_ACTS: tuple[str, ...] = ("identity", "relu", "gelu", "silu", "tanh", "sigmoid", "softmax")
MID_ACTS: tuple[str, ...] = ("identity", "relu", "gelu", "silu", "tanh", "sigmoid")
HistInput = Literal["none", "newest", "sources"]
ProjKind = Literal["none", "lowrank", "linear", "query"]
StaticInit = Literal["newest", "zero", "ones"]


class _Rec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HistNorm(_Rec):
    """RMSNorm of the generator's input, over D (or over each channel group of a query with
    heads > 1); its eps is the model's norm eps (as MUDD's released RMSnormNoscale)."""

    weight: Literal["none", "scale"] = "none"


class HistProj(_Rec):
    kind: ProjKind = "none"
    # lowrank: the hidden size K (0: ways x sources, MUDD's K = C (i + 1), resolved per
    # aggregate by the scheme), rounded up as (K // round + 1) * round when round > 0
    # (released: 64), counting `rank_ways` ways (0: the aggregate's; MUDD's last DA counts
    # 4, "hidden x4")
    rank: int = 0
    round: int = 0
    rank_ways: int = 0
    mid: HistAct = "gelu"  # lowrank: the activation between W1 and W2
    heads: int = 1  # query: channel groups, each with its own query and softmax


class HistStatic(_Rec):
    """The learned static weights a, added after the activation."""

    per: Literal["source", "channel"] = "source"
    init: StaticInit = "newest"


class HistoryGenerator(_Rec):
    input: HistInput = "none"
    norm: HistNorm | None = None
    proj: HistProj = HistProj()
    act: HistAct = "identity"
    static: HistStatic | None = HistStatic()

    @property
    def dynamic(self) -> bool:
        """True when the weights depend on the token."""
        return self.proj.kind != "none"

    @property
    def heads(self) -> int:
        return self.proj.heads if self.proj.kind == "query" else 1

    def groups(self, width: int) -> int:
        """Channel groups of A: 1 (a scalar per source and way), heads, or width."""
        if self.static is not None and self.static.per == "channel":
            return width
        return self.heads

    def grouped_norm(self) -> bool:
        """The input norm runs per channel group (inside the aggregate's module)."""
        return self.norm is not None and self.heads > 1

    def param_count(self, sources: int, ways: int, width: int) -> int:
        """a, the projection and a grouped norm's scale (a norm over D is an IR node of its
        own and counts there)."""
        count = 0
        if self.static is not None:
            count += sources * ways * (width if self.static.per == "channel" else 1)
        p = self.proj
        if p.kind == "lowrank":
            count += width * p.rank + p.rank * sources * ways
        elif p.kind == "linear":
            count += width * ways * (sources if self.input == "newest" else 1)
        elif p.kind == "query":
            count += width * ways
        if self.grouped_norm() and self.norm is not None and self.norm.weight == "scale":
            count += width
        return count


def static_init(init: StaticInit, sources: int, ways: int) -> tuple[tuple[float, ...], ...]:
    """The matrix of a at init (sources x ways): one-hot on the newest source, 0 or 1."""
    return tuple(tuple(1.0 if init == "ones" or init == "newest" and j == sources - 1 else 0.0
                       for _ in range(ways)) for j in range(sources))


# -- the canonical .hc text of a history generator (the printer and the IR dump) -----------
def proj_text(p: HistProj) -> str:
    if p.kind in ("none", "linear"):
        return p.kind
    if p.kind == "query":
        return f"query(heads={p.heads})" if p.heads != 1 else "query"
    args = [f"rank={p.rank}" if p.rank else "rank=auto"]
    args += [f"round={p.round}"] if p.round else []
    args += [f"rank_ways={p.rank_ways}"] if p.rank_ways else []
    args += [f"mid={p.mid}"] if p.mid != "gelu" else []
    return f"lowrank({', '.join(args)})"


def history_lines(gen: HistoryGenerator) -> list[str]:
    """The block as written in a connection (two-space indent inside the block)."""
    norm = "none" if gen.norm is None else f"rmsnorm(weight={gen.norm.weight})"
    static = ("none" if gen.static is None
              else f"{gen.static.per}(init={gen.static.init})")
    return ["generator {", f"  input = {gen.input}", f"  norm = {norm}",
            f"  proj = {proj_text(gen.proj)}", f"  act = {gen.act}", f"  static = {static}", "}"]
