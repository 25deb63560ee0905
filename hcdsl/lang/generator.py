"""Generators: token-dependent weights of a user-defined connection, as typed records.

A `generator { ... }` block inside `connection NAME { ... }` (docs/language.md, "Generators")
computes, per token and per layer, the weights of the step matrix M = [[0, OUT], [READ, RES]]
from the state H (n streams of width C), in one fixed pipeline:

    z  = input(H)                 flat: vec(H), 1 x nC (mHC, arXiv 2512.24880 Eq. 7);
                                  each: every stream H_s, 1 x C (HC, arXiv 2409.19606 Eq. 10)
    z' = norm(z)                  rmsnorm | layernorm, weight none | scale | offset (1 + w),
                                  over all of z or per stream (groups = streams)
    y  = proj(z') / div           linear, or lowrank: up(mid(down(z') / mid_div))
    y  = scale * y + bias         scale: one learned scalar; bias: one learned value per output
                                  (affine = after_act: w = bias + scale * act(y), HC Eq. 11)
    w  = act(y) + add             sigmoid | double_sigmoid (2 sigmoid) | tanh | softmax | silu |
                                  identity; or a constraint on res (sinkhorn, permutations,
                                  kronecker) that replaces the activation

Each output fills one part of M: `read` (READ, per stream or per channel), `write` (OUT), `res`
(RES, n x n, entry [s, t] weighs old stream s into new stream t) or, in a `generator readout`
block, `readout` (the final h^L = combine_s w_s src_s). A weight not generated is constant:
read 1, write 1, res the identity. Coefficients are computed in float32 at least (float64
stays float64), whatever the model's dtype.

The records are pure data: the front end validates them (hcdsl/frontend/generator.py), the
IR node counts their parameters from shapes (`param_count`), hcdsl/nn/generator.py runs them.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict

Act = Literal["sigmoid", "double_sigmoid", "tanh", "softmax", "silu", "identity"]
ACTS: tuple[str, ...] = ("sigmoid", "double_sigmoid", "tanh", "softmax", "silu", "identity")
ROLES_STEP = ("read", "write", "res")
ROLES_READOUT = ("readout",)


class _Rec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GenNorm(_Rec):
    kind: Literal["rmsnorm", "layernorm"] = "rmsnorm"
    # scale: w z' (w = 1); offset: (1 + w) z'; affine: w z' + b (w = 1, b = 0; LayerNorm's
    # elementwise affine, dynamic HC/FC over a model norm with affine=true)
    weight: Literal["none", "scale", "offset", "affine"] = "none"
    eps: float = 1e-6
    per_stream: bool = False  # flat input: normalise each stream's C entries on their own


class GenProj(_Rec):
    kind: Literal["linear", "lowrank"] = "linear"
    rank: int = 0  # lowrank: the hidden size r
    mid: Act = "identity"  # lowrank: the activation between down and up
    mid_div: float = 1.0  # lowrank: down(z') / mid_div before `mid`
    init_std: float = 0.02  # std of the projection weights at init (0: zeros)


class Constraint(_Rec):
    kind: Literal["sinkhorn", "permutations", "kronecker"]
    # sinkhorn orders: paper = exp, then alternate normalisation (mHC, arXiv 2512.24880 Eq. 9,
    # on H_res = RESᵀ); softmax_rows = DeepSeek-V4 (softmax over each row of RES + eps, then
    # columns, then (iters - 1) row/column rounds, eps in every denominator)
    order: Literal["paper", "softmax_rows"] = "paper"
    iters: int = 20
    eps: float = 1e-6
    factors: tuple[int, ...] = ()  # kronecker: factor sizes, their product = n


class GenOut(_Rec):
    role: Literal["read", "write", "res", "readout"]
    proj: GenProj = GenProj()
    act: Act = "identity"
    # act = softmax: over the streams (read/write/readout; per channel also `channels`),
    # over each row of RES (`rows`, the default for res) or each column (`cols`)
    axis: Literal["default", "streams", "channels", "rows", "cols"] = "default"
    div: float = 1.0
    scale: float | None = None  # a learned scalar, its init (None: no scale)
    # the learned scalar of another output of the same generator, shared (written
    # `scale=read`): dynamic HC's one s_α for A_m and A_r (arXiv 2409.19606 Eqs. 12-13)
    scale_of: Literal["read", "write", "res"] | None = None
    # a learned value per output, their init (None: no bias): one number for all, or one per
    # value (written `bias=[...]`, row-major: flat input, the logits; input = each, stream by
    # stream, that stream's logits: HC's static A_m = e_(k mod n), A_r = I, Eq. 14);
    # input = each: one per stream and output (HC's static part per stream, Eqs. 10-13)
    bias: float | tuple[float, ...] | None = None
    # before_act: act(scale * y + bias) (mHC); after_act: bias + scale * act(y) (HC Eq. 11)
    affine: Literal["before_act", "after_act"] = "before_act"
    add: float = 0.0  # a constant added after the activation (DeepSeek-V4's hc_eps)
    per: Literal["stream", "channel"] = "stream"  # read/readout/write: per stream or per entry
    source: Literal["state", "normed"] = "state"  # read/readout: what the weights multiply
    combine: Literal["sum", "mean"] = "sum"  # read/readout: sum or mean over the streams
    constraint: Constraint | None = None  # res only

    def logits(self, n: int, width: int, flat: bool, reads: int = 1) -> int:
        """How many values the projection makes (per token for flat input, per stream for
        each-stream input); `reads`: the read columns of M (m for a split state, FC)."""
        if self.constraint is not None and self.constraint.kind == "permutations":
            return math.factorial(n)
        if self.constraint is not None and self.constraint.kind == "kronecker":
            return sum(math.factorial(f) for f in self.constraint.factors)
        per_stream = {"read": reads, "readout": 1, "write": 1, "res": n}[self.role]
        if self.per == "channel":
            per_stream = width
        return per_stream * n if flat else per_stream

    def param_count(self, n: int, width: int, flat: bool, reads: int = 1) -> int:
        d_in = n * width if flat else width
        out = self.logits(n, width, flat, reads)
        p = self.proj
        count = d_in * out if p.kind == "linear" else p.rank * (d_in + out)
        biases = self.bias_count(n, width, flat, reads) if self.bias is not None else 0
        return count + (self.scale is not None) + biases

    def bias_count(self, n: int, width: int, flat: bool, reads: int = 1) -> int:
        return self.logits(n, width, flat, reads) * (1 if flat else n)


class Generator(_Rec):
    input: Literal["flat", "each"] = "flat"
    norm: GenNorm | None = GenNorm()
    outputs: tuple[GenOut, ...] = ()
    # m > 1: the state is h split into m fractions of width d/m (Frac-Connections, arXiv
    # 2503.14125 §3; the connection's `fractions = m`): M is 2m x 2m, the read makes m values
    # per fraction (READ, FC's Y: fraction s into each of the m reads, concatenated back to
    # width d), the write one per fraction on OUT's diagonal (FC's diag(B)); input = each
    fractions: int = 1

    def output(self, role: str) -> GenOut | None:
        return next((o for o in self.outputs if o.role == role), None)

    def channel_write(self) -> bool:
        """True when the write weights are per stream and channel (n x C): the generator
        returns them apart, and OUT in M is 0."""
        w = self.output("write")
        return w is not None and w.per == "channel"

    def inline_read(self) -> bool:
        """True when the generator computes the read itself (per-channel weights, weights on
        the normalised state, or a per-channel write): then it returns the layer input along
        with M (and the write weights)."""
        r = self.output("read") or self.output("readout")
        return self.channel_write() or r is not None and (
            r.per == "channel" or r.source == "normed")

    def param_count(self, n: int, width: int) -> int:
        flat = self.input == "flat"
        count = 0
        if self.norm is not None and self.norm.weight != "none":
            count += (n * width if flat else width) * (2 if self.norm.weight == "affine" else 1)
        return count + sum(o.param_count(n, width, flat, self.fractions)
                           for o in self.outputs)


# -- the canonical .hc text of a generator (the printer and the IR dump both use it) --------
def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))


def _kw(rec: _Rec, skip: tuple[str, ...] = ()) -> list[str]:
    out = []
    for key, value in rec:
        if key in skip or value == type(rec).model_fields[key].default:
            continue
        if isinstance(value, float):
            out.append(f"{key}={_num(value)}")
        elif isinstance(value, tuple) and value and isinstance(value[0], float):
            out.append(f"{key}=[{', '.join(_num(v) for v in value)}]")
        elif isinstance(value, tuple):
            out.append(f"{key}=[{', '.join(str(v) for v in value)}]")
        elif key == "scale_of":
            out.append(f"scale={value}")
        elif isinstance(value, Constraint):
            out.append(f"{key}={constraint_text(value)}")
        else:
            out.append(f"{key}={value}")
    return out


def constraint_text(c: Constraint) -> str:
    """A Sinkhorn constraint always says its order and iterations (and its eps where it is
    used): a reader of the dump sees how many rounds run without knowing the default."""
    if c.kind != "sinkhorn":
        return f"{c.kind}({', '.join(_kw(c, ('kind',)))})"
    args = [f"order={c.order}", f"iters={c.iters}"]
    if c.order == "softmax_rows" or c.eps != Constraint.model_fields["eps"].default:
        args.append(f"eps={_num(c.eps)}")
    return f"sinkhorn({', '.join(args)})"


def norm_text(norm: GenNorm | None) -> str:
    if norm is None:
        return "none"
    args = [f"weight={norm.weight}", f"eps={_num(norm.eps)}"]
    if norm.per_stream:
        args.append("groups=streams")
    return f"{norm.kind}({', '.join(args)})"


def out_text(o: GenOut) -> str:
    p = o.proj
    args = [f"rank={p.rank}"] if p.kind == "lowrank" else []
    args += [f"mid={p.mid}"] if p.kind == "lowrank" and p.mid != "identity" else []
    args += [f"mid_div={_num(p.mid_div)}"] if p.mid_div != 1.0 else []
    args += [f"std={_num(p.init_std)}"] if p.init_std != 0.02 else []
    args += _kw(o, ("role", "proj"))
    return f"{p.kind}({', '.join(args)})"


def generator_lines(gen: Generator, name: str = "") -> list[str]:
    """The block as written in a connection (two-space indent inside the block)."""
    head = f"generator {name} {{" if name else "generator {"
    lines = [head, f"  input = {gen.input}", f"  norm = {norm_text(gen.norm)}"]
    lines += [f"  {o.role} = {out_text(o)}" for o in gen.outputs]
    return lines + ["}"]
