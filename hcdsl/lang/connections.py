"""The connection presets of the language: each preset's options (a typed pydantic model that
the validated spec carries as is), its bare flags, and the shape of its literal matrices.
What a preset *means* (its desugaring to the primitive form) lives in hcdsl.schemes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from hcdsl.lang.generator import Generator
from hcdsl.lang.history_generator import HistoryGenerator
from hcdsl.lang.limits import at_most


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- residual and parallel -------------------------------------------------------------------
class ResidualOptions(Options):
    norm: Literal["pre", "post"] = "pre"


class ParallelOptions(Options):
    norms: Literal["shared", "separate"] = "shared"
    # once: h' = h + sum_i T_i(h) (GPT-J, NeoX); each: h' = sum_i (T_i(h) + h), every layer
    # keeps its own residual (the HC paper's parallel arrangement, App. F.2 Eq. 47)
    residual: Literal["once", "each"] = "once"


# -- Hyper-Connections and Frac-Connections --------------------------------------------------
class LearnedMixOptions(Options):
    """Options shared by HC and FC: static or dynamic (Eqs. 10-13), tanh, learned or fixed."""

    dynamic: bool = False
    tanh: bool = True
    learn: bool = True
    scale: float = Field(default=0.01, allow_inf_nan=False,
                         description="init of s_alpha and s_beta")

    @model_validator(mode="after")
    def _dynamic_needs_learn(self) -> "LearnedMixOptions":
        if self.dynamic and not self.learn:
            raise ValueError("a dynamic connection must be learned: drop learn=false")
        return self


class HyperOptions(LearnedMixOptions):
    n: int = Field(ge=1, description="expansion rate: the number of streams",
                   **at_most("streams"))
    out_scale: bool = True  # divide the init std of output projections by sqrt(n) (§4)
    # invstd: scale every new stream by 1/std(stream), i.e. B = A_r = 1/sqrt(σ_h² + σ_T² +
    # 2σ_hT) of Eq. 16 (with the literal [[0, 1], [1, 1]]): Post-Norm written as HC, n = 1
    postscale: Literal["none", "invstd"] = "none"
    # the layer's own pre-norm, T := T∘Norm (false for Post-Norm written as HC)
    prenorm: bool = True

    @property
    def out_factor(self) -> float:
        return 1.0 / math.sqrt(self.n) if self.out_scale else 1.0


class FracOptions(LearnedMixOptions):
    m: int = Field(ge=1, description="number of fractions; must divide dim",
                   **at_most("streams"))

    @model_validator(mode="after")
    def _m_divides_dim(self, info: ValidationInfo) -> "FracOptions":
        dim = (info.context or {}).get("dim")
        if dim and dim % self.m:
            raise ValueError(f"m = {self.m} must divide dim = {dim} "
                             f"(divisors: {[k for k in range(1, 17) if dim % k == 0]})")
        return self


# -- mHC -------------------------------------------------------------------------------------
ManifoldInit = Literal["paper", "identity"]  # mHC's gates at init (also the IR's manifold node)


class MhcOptions(Options):
    n: int = Field(ge=1, description="number of streams", **at_most("streams"))
    iters: int = Field(default=20, ge=1, description="Sinkhorn-Knopp iterations",
                       **at_most("iters"))
    init: ManifoldInit = "paper"
    alpha: float = Field(default=0.01, allow_inf_nan=False,
                         description="init of the gates α_pre, α_post, α_res")
    readout: Literal["sum", "mean"] = "sum"

    @model_validator(mode="after")
    def _identity_needs_two(self) -> "MhcOptions":
        if self.init == "identity" and self.n < 2:
            raise ValueError("init=identity needs n >= 2: sigmoid(b) < 1 cannot read one "
                             "stream with weight 1")
        return self


# -- dense families --------------------------------------------------------------------------
class DenseFormerOptions(Options):
    k: int = Field(default=1, ge=1, **at_most("layers"),
                   description="dilation: DWA_i sees X_j with j = i mod k")
    p: int = Field(default=1, ge=1, **at_most("layers"),
                   description="period: a DWA after blocks i with i % p == 0")
    learn: bool = True


class MuddOptions(Options):
    ways: Literal[1, 4] = 4  # 4: Q, K, V, R (MUDD); 1: DDFormer
    dynamic: bool = True  # false: static multiway, a_i only
    k: int = Field(default=1, ge=1, description="sparse: every k-th source",
                   **at_most("layers"))
    p: int = Field(default=1, ge=1, description="sparse: a DA every p blocks",
                   **at_most("layers"))
    window: int = Field(default=0, ge=0, **at_most("layers"),
                        description="sliding window SWn: the last n blocks plus the embedding")
    # PrePostDANorm (Eq. 10): mix RMSNorm(X_j), then Norm(DA) + X_i per way; a_i = 0 at init
    prepost: bool = False
    round: bool = False  # released code: hidden K rounded up as (K // 64 + 1) * 64
    ffn_growth: bool = False  # FFN width 0.5x -> 1.5x linearly over depth (Eq. 9)
    ffn_multiple: int = Field(default=1, ge=1, **at_most("multiple"),
                              description="round grown FFN widths to a multiple (released: 128)")


class AttnResOptions(Options):
    granularity: Literal["layer", "block"] = "layer"


# -- user-defined connections (`connection NAME { ... }`) -------------------------------------
Entry = Union[float, str]  # a number, or the name of a learned scalar (see Param)
# a Param's range (also the IR's template node): raw, σ, 2σ, exp (positive: a / (a + b)
# over exp-bounded params is a softmax over entries)
Bound = Literal["none", "unit", "double", "exp"]


class Param(Options):
    """A learned scalar of a user-defined connection, used by name in its matrices, or a
    learned vector (`vector(...)`: one value per channel of a stream, every channel starting
    at `init`), which stands alone in a matrix entry and weights that entry per channel.
    bound: none (raw value), unit (sigmoid: (0, 1)), double (2 sigmoid: (0, 2)), exp
    (exp: (0, inf))."""

    name: str
    init: float
    bound: Bound = "none"
    tied: bool = False  # one scalar shared by every layer (default: one per layer)
    kind: Literal["scalar", "vector"] = "scalar"


class StreamMap(Options):
    """A learned low-rank map from one stream into another, added in every layer from `start`
    on: H'_target += weight · B A H_source (A: rank x w, B: w x rank, B = 0 at init); kind
    linear: weight · W H_source with a full w x w matrix W = 0 at init.
    Streams and layers are numbered from 1; weight is an entry of the step (a number, a param
    of the connection, or arithmetic over them), evaluated with that layer's params."""

    kind: Literal["lowrank", "linear"] = "lowrank"  # B A (rank r), or one full w x w W
    rank: int = Field(default=0, ge=0, **at_most("lowrank"))  # lowrank only
    source: int = Field(ge=1, **at_most("streams"))
    target: int = Field(ge=1, **at_most("streams"))
    weight: Entry = 1.0
    start: int = Field(default=1, ge=1, **at_most("layers"))

    @model_validator(mode="after")
    def _rank_for_lowrank(self) -> "StreamMap":
        if self.kind == "lowrank" and self.rank < 1:
            raise ValueError("lowrank(...) needs a rank of at least 1")
        if self.kind == "linear" and self.rank:
            raise ValueError("linear(...) is a full w x w map and takes no rank")
        return self


class CustomOptions(Options):
    """The settings of a `connection` block (streams and layers are numbered from 1)."""

    name: str = "custom"
    state: Literal["streams", "history"] = "streams"
    # -- stream state --
    streams: int = Field(default=1, ge=1, **at_most("streams"))
    # m > 1: the state is h split into m fractions of width d/m (Frac-Connections, arXiv
    # 2503.14125 §3): streams = m, a generator over the fractions (m read columns, OUT on the
    # diagonal), the readout concatenates; needs a generator and m dividing the model's dim
    fractions: int = Field(default=1, ge=1, **at_most("streams"))
    init: tuple[float, ...] | None = None  # H^0_s = init_s h^0 (default: copies)
    prenorm: bool = True  # T := T∘Norm
    post: Literal["none", "norm"] = "none"  # normalise new streams after the write
    post_streams: tuple[int, ...] | None = None  # which (1-based); default all
    # + B A H (LAuReL-LR), B = 0 at init
    lowrank: int = Field(default=0, ge=0, **at_most("lowrank"))
    value_residual: tuple[Entry, Entry] | None = None  # V <- λ1 V_first + λ2 V
    # h^L = sum_s readout_s H_s (default all 1); an entry may name a param (a learned readout)
    readout: tuple[Entry, ...] | None = None
    # low-rank maps from one stream into another (LAuReL-PA's h_j on a previous activation)
    maps: tuple[StreamMap, ...] = ()
    readout_norm: tuple[int, ...] = ()  # streams (1-based) normalised before the readout
    out_scale: float = Field(default=1.0, allow_inf_nan=False)  # init std of output projections
    params: tuple[Param, ...] = ()
    # -- history state: what is remembered, and how it is read --
    # static: DenseFormer's depth-weighted averages (learned, identity at init) over the
    # outputs of blocks (or single layers), Pre-Norm residuals inside a block;
    # softmax: attention residuals over raw outputs (a learned query per read)
    granularity: Literal["layer", "block"] = "block"
    weights: Literal["static", "softmax"] = "static"
    # the values an aggregate makes: x (one), qkvr (MUDD: the first layer of a block reads
    # q, k, v, its residual r), qkv (DCA: q, k, v, the residual q)
    ways: Literal["x", "qkv", "qkvr"] = "x"
    # what the history keeps: outputs (raw layer outputs, no residual: attention
    # residuals), states (block outputs, residual inside: DenseFormer, MUDD), updates (what
    # a block adds, its residual excluded: DCA); default outputs for softmax weights,
    # states otherwise
    keep: Literal["outputs", "states", "updates"] | None = None
    # `generator { ... }` (history state): how every aggregate's weights are made
    history_generator: HistoryGenerator | None = None
    # -- generators (stream state): `generator { ... }` and `generator readout { ... }` --
    generator: Generator | None = None  # per-token weights of every layer's M
    readout_generator: Generator | None = None  # per-token weights of the readout


# -- the table of presets --------------------------------------------------------------------
@dataclass(frozen=True)
class Preset:
    name: str
    options: type[Options]
    # bare flags that set an option to a value, e.g. `static` -> dynamic=False
    flags: dict[str, tuple[str, object]] = field(default_factory=dict)
    # the shape literal matrices must have, or None if the preset takes none
    matrix_shape: Callable[[Options], tuple[int, int]] | None = None
    matrix_help: str = ""
    # False for the preset behind `connection NAME { ... }` blocks: not nameable in `connect`
    visible: bool = True


_LEARNED_FLAGS = {"static": ("dynamic", False), "dynamic": ("dynamic", True),
                  "fixed": ("learn", False)}

PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("residual", ResidualOptions, {"pre": ("norm", "pre"), "post": ("norm", "post")}),
    Preset("parallel", ParallelOptions,
           {"shared": ("norms", "shared"), "separate": ("norms", "separate"),
            "each": ("residual", "each"), "once": ("residual", "once")}),
    Preset("hyper", HyperOptions, _LEARNED_FLAGS,
           matrix_shape=lambda o: (o.n + 1, o.n + 1),
           matrix_help="HC = [[0, B], [A_m, A_r]] is (n+1) x (n+1)"),
    Preset("frac", FracOptions, _LEARNED_FLAGS,
           matrix_shape=lambda o: (o.m + 1, 2 * o.m),
           matrix_help="FC = [[0_{1xm}, B], [Y, A]] is (m+1) x 2m"),
    Preset("mhc", MhcOptions, {"identity": ("init", "identity"), "paper": ("init", "paper")}),
    Preset("denseformer", DenseFormerOptions, {"fixed": ("learn", False)}),
    Preset("mudd", MuddOptions, {"static": ("dynamic", False), "dynamic": ("dynamic", True)}),
    Preset("attnres", AttnResOptions,
           {"layer": ("granularity", "layer"), "block": ("granularity", "block")}),
    Preset("custom", CustomOptions, matrix_shape=lambda o: (o.streams + 1, o.streams + 1),
           matrix_help="M = [[0, OUT], [READ, RES]] is (streams+1) x (streams+1)",
           visible=False),
)}


def preset_names() -> list[str]:
    """The presets a spec can name in `connect`."""
    return sorted(name for name, p in PRESETS.items() if p.visible)


def has_dynamic_weights(kind: str, options: Options) -> bool:
    """Whether a connection computes weights from the state (what `dropout coef` acts on):
    dynamic HC and FC, mHC, dynamic MUDD, attention residuals (softmax over the history)."""
    if kind in ("hyper", "frac", "mudd"):
        return bool(getattr(options, "dynamic", False))
    if kind in ("mhc", "attnres"):
        return True
    if kind == "custom":
        return getattr(options, "state", "") == "history" and \
            getattr(options, "weights", "") == "softmax"
    return False
