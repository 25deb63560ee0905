"""The primitive connection form every named scheme desugars to.

One idea covers every family (docs/architecture.md): a *state* of S streams of width w flows between
layers. Each *step* runs one or more layers and is governed by one mixing matrix

    M = [[0,      OUT],        rows: F layer-output fractions, then the S state streams
         [READ,   RES]]        cols: R reads,                  then the S' new streams

    reads      X   = READᵀ H                    (R rows; each layer's input concatenates some)
    new state  H'  = [OUT; RES]ᵀ [O; H]         (O: the layers' outputs, split into fractions)

HC is F = R = 1 (M is the paper's HC matrix, Eq. 1); FC is F = R = m (OUT = diag(B)); a
parallel block is F = #layers; Pre-Norm is M = [[0, 1], [1, 1]]. The *weights* of M are
constant, learned, or dynamic (static + scale * act(norm(H) W)); the *readout* sums streams
or concatenates fractions. The IR is built from this form only: it never sees preset names.
"""

from __future__ import annotations

from typing import Literal

from hcdsl.lang.connections import Entry, Param
from hcdsl.lang.generator import Generator
from hcdsl.lang.history_generator import HistoryGenerator
from hcdsl.spec import Frozen, Matrix, NormSpec

# the fixed sets of values the IR's payloads share (hcdsl/ir/nodes: one definition each)
Gain = Literal["row", "diag"]  # OUT of M: one row (HC) or a diagonal (FC)
GeneratorNames = Literal["outputs", "hc", "mhc"]  # a generator's parameter names


class Coef(Frozen):
    """How the step's matrix M is made."""

    init: Matrix  # M at init, (F + S) x (R + S')
    learn: bool = False  # False: a constant buffer; True: learned parameters
    dynamic: bool = False  # add s * act(norm(H_s) W) per source stream (HC Eqs. 10-13)
    tanh: bool = True
    scale_init: float = 0.01
    gain: Gain = "row"  # OUT is one row (HC) or a diagonal (FC)
    norm: NormSpec = NormSpec()  # the norm of the dynamic generator, over w
    # hyper: static (HC) or static + dynamic per stream (FC); template: named scalars;
    # program: a generator (`program`, hcdsl/lang/generator.py): a user's, or dynamic HC's and
    # mHC's (their presets desugar to one)
    generator: Literal["hyper", "template", "program"] = "hyper"
    # template: M's entries are numbers or names of learned scalars (user-defined schemes)
    template: tuple[tuple[Entry, ...], ...] = ()
    params: tuple[Param, ...] = ()
    # program: the typed record of a `generator { ... }` block: input, norm, projections,
    # activations and constraints of the read / write / res weights (dynamic, per token);
    # the dynamic presets desugar to one too (hyper dynamic, mhc)
    program: Generator | None = None
    # where the generator's module keeps its parameters: each output's own, or under the
    # names a preset had before it desugared (hcdsl/nn/preset_params.py); never what is computed
    names: GeneratorNames = "outputs"


class Map(Frozen):
    """H'_target += weight · B A H_source after the write: a low-rank map of one old stream
    into one new stream (0-based), B = 0 at init; weight an entry as in M, with its params."""

    source: int
    target: int
    rank: int
    full: bool = False  # one w x w matrix W instead of B A
    weight: Entry = 1.0
    params: tuple[Param, ...] = ()


class ChannelEntry(Frozen):
    """An entry of M over learned vectors (one weight per channel: a vector's name, or
    arithmetic of vector names and numbers): its part of the step is e ⊙ (the row's value)
    added to the column's; M holds 0 there."""

    row: int  # 0: the layer output; 1..S: the old streams
    col: int  # 0: the read; 1..S: the new streams
    entry: str
    params: tuple[Param, ...]  # the vectors it names


class Step(Frozen):
    layers: tuple[int, ...]  # 0-based indices into ModelSpec.sequence; >1 run in parallel
    inputs: tuple[tuple[int, ...], ...]  # per layer: the read columns concatenated as its input
    outputs: tuple[tuple[int, ...], ...]  # per layer: the rows of M its output fractions fill
    prenorm: Literal["none", "separate", "shared"] = "separate"
    # after the write: "norm" = Post-Norm (normalise every new stream with the model's norm);
    # "invstd" = scale every new stream by 1/std (centred std, no eps): HC Eq. 16's weights
    post: Literal["none", "norm", "invstd"] = "none"
    post_streams: tuple[int, ...] | None = None  # the new streams `post` applies to (all)
    coef: Coef
    # + B A H on the residual state (LAuReL-LR), rank r; B = 0 at init
    lowrank: int = 0
    # value residual (ResFormer): an attention layer's values V <- λ1 V_first + λ2 V, with
    # V_first the values of the model's first attention layer; (λ1, λ2) entries as in M
    value_mix: tuple[Entry, Entry] | None = None
    value_params: tuple[Param, ...] = ()
    maps: tuple[Map, ...] = ()  # low-rank maps from one stream into another
    channels: tuple[ChannelEntry, ...] = ()  # per-channel (vector) entries of M

    @property
    def fractions(self) -> int:
        return sum(len(o) for o in self.outputs)

    @property
    def reads(self) -> int:
        return 1 + max(c for cols in self.inputs for c in cols)


class Scheme(Frozen):
    streams: int  # S: number of state streams
    width: int  # w: width of one stream (d for HC, d/m for FC)
    init: Literal["copy", "split"]  # H^0: S copies of h^0, or h^0 split into S fractions
    init_weights: tuple[float, ...] | None = None  # copy: H^0_s = w_s h^0 (default all 1)
    steps: tuple[Step, ...]
    readout: Literal["sum", "mean", "concat"]
    # sum: h^L = sum_s w_s H_s (default 1); entries as in M (numbers or learned params)
    readout_weights: tuple[Entry, ...] | None = None
    readout_params: tuple[Param, ...] = ()
    readout_norm: tuple[int, ...] = ()  # streams normalised before the readout (ResiDual)
    # a `generator readout { ... }` block: h^L from per-token weights (replaces readout)
    readout_generator: Generator | None = None
    out_scale: float = 1.0  # init std factor of every layer's output projection
    family: str = "residual"  # for tables and stats only; the IR does not read it


class Aggregate(Frozen):
    """A depth-wise aggregate over the history X_0 (embedding) .. X_i (block outputs):
    `ways` values, way w = sum_j A[j, w] X_{sources[j]} (MUDD's Q, K, V, R; DCA's Q, K, V;
    one for DenseFormer and attention residuals)."""

    sources: tuple[int, ...]  # history indices read, ascending
    ways: int  # 1, 3 or 4
    init: Matrix  # len(sources) x ways: the static weights at init
    learn: bool = True
    # how A is made (hcdsl/lang/history_generator.py), MUDD's hidden size resolved: static
    # a only (DenseFormer), GELU(RMSNorm(X_newest) W1) W2 + a (MUDD), softmax_j(q ·
    # RMSNorm(X_j)) (attention residuals), ReLU(w · RMSNorm(X_j)) + b (DCA)
    generator: HistoryGenerator = HistoryGenerator()
    source_norm: bool = False  # normalise every source before mixing (PrePostDANorm)


class DenseBlock(Frozen):
    layers: tuple[int, ...]  # the block's layers in order; the first reads the ways
    read: Aggregate | None  # None: the block reads the newest history entry as is
    # True: out = way R + T1(...), then pre-norm residual sublayers (DenseFormer, MUDD);
    # False: out = T(norm(way)) (attention residuals: the history holds raw layer outputs)
    residual: bool = True
    # append: one read at the block start, its output appended. accumulate (Block AttnRes):
    # *every* layer reads, with `read`'s generator, the history plus the block's partial sum
    # of raw layer outputs; the full sum is appended when the block ends. update (DCA,
    # three ways q, k, v): the first layer's residual is way q, and the history keeps what
    # the block adds (its layers' outputs), not the residual it read
    write: Literal["append", "accumulate", "update"] = "append"


class DenseScheme(Frozen):
    """State = a growing history; write = append the block output; readout = `final`."""

    blocks: tuple[DenseBlock, ...]
    final: Aggregate | None  # the last aggregate (one way) is the model output; None: X_L
    # per-layer option overrides (0-based layer index, option, value), e.g. FFN width growth
    layer_args: tuple[tuple[int, str, int], ...] = ()
    family: str = "dense"
