"""The prover's soundness harness: random small spec pairs, each verdict checked against
numbers the prover did not compute.

A pair is a random spec A and a spec B made from it by an edit (a changed matrix entry, eps,
norm, layer option, layer order, connection) or by a rewrite that keeps the function (a
stream permutation, a stream scaling with compensating matrices, a dead stream, repeat vs
unrolled, literal matrices vs the preset, a user-defined connection vs the preset).

The independent numbers: both specs built by hcdsl.compile on the reference backend in
float64 with one seed; layers share weights by position; every other module is tied to the
other spec's module of the same name *when their weights at init are equal* (the harness's
own rule, not the prover's), and for the "learned" question moved off the init by noise
keyed by that name. An assumption the verdict used is made true in the numbers: eps = 0
(scale-invariant, no-eps), norms without gain and bias (no-affine), layer outputs and the
embedding re-centred (mean-zero), the embedding normalised (embed-normalised).

Questions: the learned one (sometimes with --tie-inits: the harness then ties modules of
equal shapes), at init, and checkpoints (A's trained weights for both when they fit B);
sometimes a restricted --assume set. Pairs reach every connection (LAuReL-LR's low rank and
user connections too), non-dyadic, tiny and large entries, learned positions and extern
layers.

Unsound (problem()): EQUIVALENT while the numbers differ by more than 1e-8 of the outputs'
size (at least 1e-8) (or by a quarter
of the logits with the real ε); NOT EQUIVALENT with a witness that does not differ, or
"under every assumption" while the numbers with all of them true agree.
"""

from __future__ import annotations

import hashlib
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

import hcdsl
from hcdsl.ir import nodes as n
from hcdsl.nn.layers import Opaque
from hcdsl.proofs.coefs import exact
from hcdsl.proofs.prove import EQUIVALENT, NOT_EQUIVALENT, ProofResult, prove
from hcdsl.proofs.symbolic import layer_position
from helpers import model_text

TOL = 1e-8
# an ε assumption is an approximation: with the real ε the logits may differ, but by a
# fraction of their size (the side condition's margin keeps ε/var <= 1/10 at every use)
APPROX = 0.25


@dataclass
class Base:
    dim: int
    norm: str  # the `norm = ...` setting
    layers: list[tuple[str, str]]  # (name, call)
    body: list[list[str]]  # blocks
    connect: str
    prelude: str = ""  # a user-defined connection
    extra: str = ""  # more settings (learned positions)
    body_only: bool = False  # a body: hidden states in, hidden states out (`input = hidden`)

    def text(self) -> str:
        body = ", ".join("[" + ", ".join(b) + "]" for b in self.body)
        settings = ("input = hidden\n" if self.body_only else "") + f"{self.extra}\nnorm = {self.norm}"
        return model_text(self.connect, dim=self.dim, vocab=None if self.body_only else 32,
                          settings=settings, layers=self.layers, body=body, prelude=self.prelude)

    @property
    def L(self) -> int:
        return sum(len(b) for b in self.body)

    def copy(self, **kw: object) -> "Base":
        out = Base(self.dim, self.norm, list(self.layers), [list(b) for b in self.body],
                   self.connect, self.prelude, self.extra, self.body_only)
        for k, v in kw.items():
            setattr(out, k, v)
        return out


# dyadic, non-dyadic (0.1, 1/3 as its float), tiny and large entries
ENTRIES = [0.0, 1.0, 1.0, 1.0, 2.0, 0.5, -1.0]
# the harness's literal matrices: also non-dyadic (0.1, 1/3 as its float), tiny and large
WIDE = [*ENTRIES, 0.1, 1 / 3, 0.3, 1e-170, 1e-3, 1e5]
DECIMAL = [1.0, 2.0, 0.5, -1.0, 0.1, 0.3, 0.7]


def _fmt(x: float) -> str:
    return repr(float(x))


def _matrix(m: list[list[float]]) -> str:
    return "[" + ", ".join("[" + ", ".join(_fmt(x) for x in row) + "]" for row in m) + "]"


def hc_init(k: int, n_: int) -> list[list[float]]:
    """HC Eq. 14 for 0-based layer k: [[0, 1...], [e_(k mod n), I]]."""
    top = [0.0] + [1.0] * n_
    return [top] + [[1.0 if i == k % n_ else 0.0] + [1.0 if j == i else 0.0
                                                      for j in range(n_)] for i in range(n_)]


def random_matrix(rng: random.Random, n_: int, entries: list[float] = ENTRIES
                  ) -> list[list[float]]:
    m = [[0.0] + [rng.choice(entries) for _ in range(n_)]]
    m += [[rng.choice(entries) for _ in range(n_ + 1)] for _ in range(n_)]
    m[1][0] = m[1][0] or 1.0  # read something
    return m


def base_spec(rng: random.Random) -> Base:
    """A random small spec (also tests/differential.py's generator: kept as it is)."""
    dim = rng.choice([8, 16])
    kinds = [("attn", "attention(heads=2)"), ("ffn", f"mlp(hidden={2 * dim})"),
             ("o", "opaque")]
    used = rng.sample(kinds, rng.randint(1, 3))
    blocks = rng.randint(1, 3)
    block = [name for name, _ in used]
    body = [list(block) for _ in range(blocks)]
    norm = rng.choice(["layernorm", "rmsnorm"]) + rng.choice(["", "(affine=false)"])
    base = Base(dim, norm, used, body, "residual")
    L = base.L
    choice = rng.choice(["residual", "post", "parallel", "hyper_fixed", "hyper_literal",
                         "hyper_learned", "frac", "mhc", "dense", "custom"])
    if choice == "residual":
        base.connect = "residual"
    elif choice == "post":
        base.connect = "residual(post)"
    elif choice == "parallel":
        base.connect = "parallel(" + rng.choice(["shared", "separate"]) + ")"
    elif choice == "hyper_fixed":
        base.connect = f"hyper(n={rng.randint(1, 3)}, fixed)"
    elif choice == "hyper_literal":
        n_ = rng.randint(1, 3)
        rules = " ".join(f"layer {k + 1} = {_matrix(random_matrix(rng, n_))}" for k in range(L))
        base.connect = f"hyper(n={n_}, fixed) {{ {rules} }}"
    elif choice == "hyper_learned":
        base.connect = f"hyper(n={rng.randint(1, 3)}, {rng.choice(['static', 'dynamic'])})"
    elif choice == "frac":
        base.connect = f"frac(m={rng.choice([1, 2, 4])}, {rng.choice(['static', 'dynamic'])})"
    elif choice == "mhc":
        base.connect = f"mhc(n={rng.randint(2, 3)}, {rng.choice(['identity', 'paper'])})"
    elif choice == "dense":
        base.connect = rng.choice(["denseformer", "denseformer(k=2)", "mudd(ways=1)",
                                   "mudd(static, ways=1)", "attnres"])
    else:
        base.prelude = ("connection lrw {\n  param a = scalar(init=1, bound=double)\n"
                        "  all = [[0, a], [1, 1]]\n}\n")
        base.connect = "lrw"
    return base


def harness_spec(rng: random.Random) -> Base:
    """base_spec, widened for the prover: sometimes an extern layer, learned positions with a
    small context or a body (`input = hidden`), LAuReL-LR's low rank, literal matrices with
    non-dyadic, tiny and large entries."""
    base = base_spec(rng)
    if rng.random() < 0.2:
        k = rng.randrange(len(base.layers))
        base.layers[k] = (base.layers[k][0], rng.choice(EXTERNS))
    if rng.random() < 0.15:
        base.extra = f"  context = {rng.choice([2, 4, 8])}\n  pos = learned\n"
    elif rng.random() < 0.1:
        base.body_only = True
    if rng.random() < 0.1:
        base.prelude = "connection lr {\n  lowrank = 2\n  all = [[0, 1], [1, 1]]\n}\n"
        base.connect = "lr"
    elif "{" in base.connect and rng.random() < 0.5:
        n_ = int(base.connect.split("n=")[1].split(",")[0])
        base.connect = f"hyper(n={n_}, fixed) {{ " + " ".join(
            f"layer {k + 1} = {_matrix(random_matrix(rng, n_, WIDE))}"
            for k in range(base.L)) + " }"
    return base


EXTERNS = ["extern myattn(heads=2, ports=x)", "extern myattn(ports=x, heads=2)",
           "extern other(heads=2, ports=x)"]


class Extern(torch.nn.Module):
    """The harness's extern layers: a small MLP (the structure `hcdsl prove` builds for an
    extern layer, so a checkpoint fits it); layers of different names or options are never
    tied by the harness (numbers())."""

    def __init__(self, dim: int, out_scale: float = 1.0, **options: object) -> None:
        super().__init__()
        self.body = Opaque(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


FACTORIES = {"myattn": Extern, "other": Extern}


# -- B from A --------------------------------------------------------------------------------
def _custom(name: str, streams: int, matrices: list[list[list[float]]], init: list[float],
            readout: list[float]) -> str:
    rules = "\n".join(f"  layer {k + 1} = {_matrix(m)}" for k, m in enumerate(matrices))
    return (f"connection {name} {{\n  streams = {streams}\n  init = {init}\n"
            f"  readout = {readout}\n{rules}\n}}\n")


def _basis(rng: random.Random, mats: list[list[list[float]]], n_: int) -> str:
    """The same connection in the stream basis H' = Qᵀ H, Q invertible with non-dyadic
    entries (exact Fractions, written as the floats nearest them): reads Q⁻¹ A_m, writes
    Qᵀ B, residual Q⁻¹ A_r Q, init Qᵀ 1, readout Q⁻¹ 1."""
    from fractions import Fraction as F
    for _ in range(20):
        q = [[F(int(i == j)) for j in range(n_)] for i in range(n_)]
        for _ in range(3):  # elementary steps with finite-decimal inverses
            i, j = rng.sample(range(n_), 2) if n_ > 1 else (0, 0)
            if rng.random() < 0.5 or n_ == 1:
                s = F(rng.choice(["0.5", "2", "0.1", "10", "0.2", "5", "-1"]))
                q = [[x * s if r == i else x for x in row] for r, row in enumerate(q)]
            else:
                s = F(rng.choice(["0.1", "0.3", "0.5", "-1", "2"]))
                q = [[x + s * q[j][c] if r == i else x for c, x in enumerate(row)]
                     for r, row in enumerate(q)]
        inv = _inverse(q)
        assert inv is not None
        out, init, readout = _in_basis(mats, q, inv, n_)
        if max(abs(x) for m in out for row in m for x in row) <= 1e6:  # limit 'weight'
            return _custom("basis", n_, out, init, readout)
    return _custom("basis", n_, mats, [1.0] * n_, [1.0] * n_)


def _in_basis(mats: list, q: list, inv: list, n_: int) -> tuple[list, list, list]:
    from fractions import Fraction as F
    out = []
    for m in mats:
        mm = [[exact(x) for x in row] for row in m]  # 1/3 as 1/3 (ENTRIES holds its float)
        b = [mm[0][1 + j] for j in range(n_)]
        am = [mm[1 + i][0] for i in range(n_)]
        ar = [[mm[1 + i][1 + j] for j in range(n_)] for i in range(n_)]
        b2 = [sum(q[i][j] * b[i] for i in range(n_)) for j in range(n_)]
        am2 = [sum(inv[j][i] * am[i] for i in range(n_)) for j in range(n_)]
        ar2 = _matmul(_matmul(inv, ar), q)
        out.append([[0.0] + [float(x) for x in b2]]
                   + [[float(am2[i])] + [float(x) for x in ar2[i]] for i in range(n_)])
    init = [float(sum(q[i][j] for i in range(n_))) for j in range(n_)]
    readout = [float(sum(inv[j][i] for i in range(n_))) for j in range(n_)]
    return out, init, readout


def _matmul(x: list, y: list) -> list:
    return [[sum(x[i][k] * y[k][j] for k in range(len(y))) for j in range(len(y[0]))]
            for i in range(len(x))]


def _inverse(q: list) -> list | None:
    """Gauss-Jordan over Fractions; None when q is singular."""
    from fractions import Fraction as F
    size = len(q)
    m = [row[:] + [F(int(i == j)) for j in range(size)] for i, row in enumerate(q)]
    for col in range(size):
        pivot = next((r for r in range(col, size) if m[r][col] != 0), None)
        if pivot is None:
            return None
        m[col], m[pivot] = m[pivot], m[col]
        m[col] = [x / m[col][col] for x in m[col]]
        for r in range(size):
            if r != col and m[r][col] != 0:
                m[r] = [x - m[r][col] * y for x, y in zip(m[r], m[col])]
    return [row[size:] for row in m]


def rewrite(rng: random.Random, a: Base) -> tuple[Base, Base, str]:
    """A spec computing the same function as a fixed HC connection (a is replaced by one)."""
    n_ = rng.randint(2, 3)
    L = a.L
    mats = [random_matrix(rng, n_, WIDE) for _ in range(L)]
    literal = a.copy(connect=f"hyper(n={n_}, fixed) {{ " + " ".join(
        f"layer {k + 1} = {_matrix(m)}" for k, m in enumerate(mats)) + " }")
    kind = rng.choice(["permute", "scale", "dead", "unroll", "preset", "custom", "basis"])
    if kind == "basis":  # decimal entries, which the new basis keeps finite decimals
        mats = [[[rng.choice(DECIMAL) if x else 0.0 for x in row] for row in m] for m in mats]
        for m in mats:
            m[1][0] = m[1][0] or 1.0
        b = a.copy(connect="basis", prelude=_basis(rng, mats, n_))
        lit = a.copy(connect="plain", prelude=_custom("plain", n_, mats, [1.0] * n_,
                                                       [1.0] * n_))
        return lit, b, "change of stream basis"
    if kind == "permute":  # streams renumbered: M' = blockdiag(1, P) M blockdiag(1, P)^T
        perm = list(range(n_))
        rng.shuffle(perm)
        out = []
        for m in mats:
            q = [[m[0][0]] + [m[0][1 + perm.index(j)] for j in range(n_)]]
            for i in range(n_):
                row = m[1 + perm.index(i)]
                q.append([row[0]] + [row[1 + perm.index(j)] for j in range(n_)])
            out.append(q)
        b = a.copy(connect=f"hyper(n={n_}, fixed) {{ " + " ".join(
            f"layer {k + 1} = {_matrix(q)}" for k, q in enumerate(out)) + " }")
        return literal, b, "stream permutation"
    if kind == "scale":  # stream s carries lam * H_s: reads of s / lam, writes into s * lam
        lam = [rng.choice([0.5, 2.0, 4.0, -1.0]) for _ in range(n_)]
        out = []
        for m in mats:
            q = [row[:] for row in m]
            for j in range(n_):
                q[0][1 + j] *= lam[j]  # the layer output written into stream j
            for i in range(n_):
                q[1 + i][0] /= lam[i]  # stream i read
                for j in range(n_):
                    q[1 + i][1 + j] *= lam[j] / lam[i]
            out.append(q)
        b = a.copy(connect="scaled", prelude=_custom("scaled", n_, out, lam,
                                                      [1 / x for x in lam]))
        lit = a.copy(connect="plain", prelude=_custom("plain", n_, mats, [1.0] * n_,
                                                       [1.0] * n_))
        return lit, b, "stream scaling with compensating matrices"
    if kind == "dead":  # one more stream, never read, never written into the readout
        out = [[row + [0.0] for row in m] + [[0.0] * (n_ + 1) + [1.0]] for m in mats]
        b = a.copy(connect="wider", prelude=_custom("wider", n_ + 1, out, [1.0] * (n_ + 1),
                                                    [1.0] * n_ + [0.0]))
        lit = a.copy(connect="plain", prelude=_custom("plain", n_, mats, [1.0] * n_,
                                                       [1.0] * n_))
        return lit, b, "a dead stream"
    if kind == "unroll":
        return literal, literal.copy(body=[[x for blk in a.body for x in blk]]), "unrolled body"
    if kind == "preset":
        preset = a.copy(connect=f"hyper(n={n_}, fixed)")
        lit = a.copy(connect=f"hyper(n={n_}, fixed) {{ " + " ".join(
            f"layer {k + 1} = {_matrix(hc_init(k, n_))}" for k in range(L)) + " }")
        return preset, lit, "preset vs its literal matrices"
    custom = a.copy(connect="mine", prelude=_custom("mine", 1, [[[0.0, 1.0], [1.0, 1.0]]] * L,
                                                     [1.0], [1.0]))
    return a.copy(connect="residual"), custom, "user connection vs residual"


def _scaled_reads(a: Base, factor: float, k: int) -> Base:
    """a with layer k's reads of a fixed one-stream HC scaled by factor."""
    rules = " ".join(f"layer {j + 1} = {_matrix([[0.0, 1.0], [factor if j == k else 1.0, 1.0]])}"
                     for j in range(a.L))
    return a.copy(connect=f"hyper(n=1, fixed) {{ {rules} }}", prelude="")


def edit(rng: random.Random, a: Base) -> tuple:
    kind = rng.choice(["eps", "norm", "affine", "swap", "option", "connect", "entry",
                       "read_scale", "read_sign", "extern", "lowrank", "conn_option"])
    if kind == "conn_option" and a.connect.endswith("dynamic)"):
        return a.copy(connect=a.connect[:-1] + ", tanh=false)"), "connection option"
    if kind == "conn_option" and a.connect.startswith("mhc("):
        extra = rng.choice([", iters=3", ", alpha=0.5", ", readout=mean"])
        return a.copy(connect=a.connect[:-1] + extra + ")"), "connection option"
    if kind == "extern" and any(c.startswith("extern") for _, c in a.layers):
        return a.copy(layers=[(x, rng.choice(EXTERNS) if c.startswith("extern") else c)
                              for x, c in a.layers]), "extern layer"
    if kind == "lowrank":
        return a.copy(prelude="connection lr {\n  lowrank = 2\n  all = [[0, 1], [1, 1]]\n}\n",
                      connect="lr"), "low rank added"
    if kind in ("read_scale", "read_sign"):
        factor = rng.choice([1e-6, 1e-3, 4.0, 0.1, 1e-170]) if kind == "read_scale" else -1.0
        k = rng.randrange(a.L)
        return _scaled_reads(a, 1.0, -1), _scaled_reads(a, factor, k), kind
    if kind == "eps":
        return a.copy(norm=a.norm.split("(")[0] + "(eps=0.001)"), "eps"
    if kind == "norm":
        other = "rmsnorm" if a.norm.startswith("layernorm") else "layernorm"
        return a.copy(norm=other + a.norm[len(a.norm.split("(")[0]):]), "norm kind"
    if kind == "affine":
        kind_ = a.norm.split("(")[0]
        return a.copy(norm=kind_ if "affine=false" in a.norm else kind_ + "(affine=false)"), \
            "norm affine"
    if kind == "swap" and len(a.body[0]) > 1:
        return a.copy(body=[list(reversed(b)) for b in a.body]), "layer order"
    if kind == "option" and any(c.startswith("mlp") for _, c in a.layers):
        return a.copy(layers=[(x, f"mlp(hidden={3 * a.dim})" if c.startswith("mlp") else c)
                              for x, c in a.layers]), "mlp hidden"
    if kind == "entry" and "{" in a.connect and "layer 1 = [[" in a.connect:
        head, rest = a.connect.split("layer 1 = [[", 1)
        first, tail = rest.split(",", 1)
        new = "0.25" if first.strip() != "0.25" else "0.75"
        return a.copy(connect=f"{head}layer 1 = [[{new},{tail}"), "matrix entry"
    return a.copy(connect=rng.choice(["residual", "hyper(n=2, fixed)", "parallel(separate)",
                                      "residual(post)"]), prelude=""), "connection"


def pair(rng: random.Random) -> tuple[str, str, str]:
    a = harness_spec(rng)
    if rng.random() < 0.45:
        lit, b, note = rewrite(rng, a)
        return lit.text(), b.text(), note
    if rng.random() < 0.1:
        return a.text(), a.text(), "identical"
    edited = edit(rng, a)
    if len(edited) == 3:  # the edit also rewrote A
        return edited[0].text(), edited[1].text(), edited[2]
    return a.text(), edited[0].text(), edited[1]


# -- the independent numbers -------------------------------------------------------------------
def _layers(model) -> dict[int, str]:  # noqa: ANN001
    ir = model.ir
    return {layer_position(ir, v, 0): v for v in ir.g.nodes
            if isinstance(ir.payload(v), n.Layer)}


def _noise(key: str, shape: torch.Size) -> torch.Tensor:
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:6], "little")
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64) * 0.3


def _enforce(model, assumed: set[str]) -> None:  # noqa: ANN001
    """Make the assumptions the verdict used true in the model."""
    for module in model.modules():
        if isinstance(module, (torch.nn.LayerNorm, torch.nn.RMSNorm)):
            if assumed & {"scale-invariant", "no-eps"}:
                module.eps = 0.0
            if "no-affine" in assumed and module.weight is not None:
                torch.nn.init.ones_(module.weight)
                if getattr(module, "bias", None) is not None:
                    torch.nn.init.zeros_(module.bias)
    if assumed & {"mean-zero", "embed-normalised"} and hasattr(model, "embed"):  # h0
        normalise = "embed-normalised" in assumed
        model.embed.register_forward_hook(
            lambda m, i, o: (o - o.mean(-1, keepdim=True)) / (
                o.std(-1, unbiased=False, keepdim=True) if normalise else 1))
    if "mean-zero" in assumed:
        for v in _layers(model).values():
            model.mod(v).register_forward_hook(
                lambda m, i, o: o - o.mean(-1, keepdim=True) if isinstance(o, torch.Tensor)
                else o)


def numbers(a: str, b: str, question: str, assumed: set[str], seed: int = 0,
            checkpoints: tuple[dict, dict] | None = None, tie: bool = False
            ) -> tuple[float, float]:
    """(max |A - B|, max |A|) of the logits under the harness's own ties (module doc); with
    checkpoints (two state_dicts), each model holds its own, nothing else is tied."""
    # the raw IR (no passes): the spec's own layers, one module each (a pass may fuse
    # layers, e.g. fuse-parallel-inputs, and the harness ties weights layer by layer)
    ma = hcdsl.compile(a, backend="reference", seed=seed, dtype=torch.float64, passes=None,
                       layers=FACTORIES)
    mb = hcdsl.compile(b, backend="reference", seed=seed, dtype=torch.float64, passes=None,
                       layers=FACTORIES)
    ma.train(False)
    mb.train(False)
    if checkpoints is not None:
        with torch.no_grad():
            for model, state in zip((ma, mb), checkpoints):
                model.load_state_dict({k: v.double() for k, v in state.items()}, strict=False)
                _enforce(model, assumed)
            x = _tokens(ma, seed)
            ya = ma(x)
            return float((ya - mb(x)).abs().max()), float(ya.abs().max())
    with torch.no_grad():
        la, lb = _layers(ma), _layers(mb)
        for k, vb in lb.items():
            va = la.get(k)
            sa = ma.mod(va).state_dict() if va is not None else {}
            target = mb.mod(vb)
            if va is not None and _same_call(ma.ir.payload(va), mb.ir.payload(vb)) \
                    and _same(sa, target.state_dict(), shapes_only=True):
                target.load_state_dict(sa)
            else:  # another function T_k: its own weights (not the same node's draw)
                for pname, p in target.named_parameters():
                    p.add_(_noise(f"B/layer{k}/{pname}", p.shape))
        layer_attrs = {ma.mod(v) for v in la.values()} | {mb.mod(v) for v in lb.values()}
        for name, mod_a in ma.named_children():
            mod_b = getattr(mb, name, None)
            tied = (mod_b is not None and mod_a not in layer_attrs
                    and _same(mod_a.state_dict(), mod_b.state_dict(), tie))
            if question == "learned" and mod_a not in layer_attrs:
                for pname, p in mod_a.named_parameters():
                    p.add_(_noise(f"{name}/{pname}", p.shape))
                if tied:
                    mod_b.load_state_dict(mod_a.state_dict())
        if question == "learned":
            for name, mod_b in mb.named_children():
                mod_a = getattr(ma, name, None)
                if mod_b in layer_attrs or (mod_a is not None and _same(
                        mod_a.state_dict(), mod_b.state_dict(), tie)):
                    continue
                for pname, p in mod_b.named_parameters():
                    p.add_(_noise(f"B/{name}/{pname}", p.shape))
        for model, layers in ((ma, la), (mb, lb)):
            for v in layers.values():
                for p in model.mod(v).parameters():
                    if p.dim() == 2:
                        p.mul_(10.0)
            _enforce(model, assumed)
        x = _tokens(ma, seed)
        ya = ma(x)
        return float((ya - mb(x)).abs().max()), float(ya.abs().max())


def _tokens(model, seed: int) -> torch.Tensor:  # noqa: ANN001
    """2 x 8 random tokens of the model's vocab (at most its learned position table), or
    random hidden states for a body."""
    g = torch.Generator().manual_seed(seed)
    embed = next((model.ir.payload(v) for v in model.ir.g.nodes
                  if isinstance(model.ir.payload(v), n.Embed)), None)
    if embed is None:
        width = next(model.ir.payload(v).width for v in model.ir.g.nodes
                     if isinstance(model.ir.payload(v), n.Input))
        return torch.randn(2, 8, width, generator=g, dtype=torch.float64)
    length = min(8, embed.positions) if embed.positions else 8
    return torch.randint(0, embed.vocab, (2, length),
                         generator=torch.Generator().manual_seed(seed))


def _same_call(p: n.Layer, q: n.Layer) -> bool:
    """The harness's own rule for one layer function: the same kind (extern name) and the
    same options, in any order."""
    return p.kind == q.kind and sorted(map(repr, p.args)) == sorted(map(repr, q.args))


def _same(a: dict, b: dict, shapes_only: bool = False) -> bool:
    """Tied by the harness: equal weights at init (with --tie-inits: equal shapes)."""
    return a.keys() == b.keys() and all(
        a[k].shape == b[k].shape and (shapes_only or torch.equal(a[k], b[k])) for k in a)


@dataclass
class Outcome:
    a: str
    b: str
    note: str
    question: str
    result: ProofResult
    why: str | None  # why the verdict is unsound (problem()), None when it is sound

    @property
    def unsound(self) -> bool:
        return self.why is not None


ASSUME = ["scale-invariant", "no-affine", "no-eps", "mean-zero", "embed-normalised"]


def _checkpoint(text: str, seed: int, folder: Path) -> Path:
    """A checkpoint of text's model with every tensor moved off its init (trained weights)."""
    model = hcdsl.compile(text, backend="reference", seed=seed, passes=None, layers=FACTORIES)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.2)
    path = folder / f"{hashlib.sha1(text.encode()).hexdigest()[:12]}.pt"
    torch.save(model.state_dict(), path)
    return path


def _fits(path: Path, text: str) -> bool:
    model = hcdsl.compile(text, backend="reference", passes=None, layers=FACTORIES)
    mine, theirs = model.state_dict(), torch.load(path)
    return mine.keys() == theirs.keys() and all(mine[k].shape == theirs[k].shape for k in mine)


def run(seed: int, question: str | None = None) -> Outcome:
    """One pair, one question (learned, learned with --tie-inits, at init, or checkpoints:
    A's trained weights for both specs when they fit B, else B's own), sometimes with a
    restricted --assume set; the verdict checked by problem()."""
    rng = random.Random(seed)
    a, b, note = pair(rng)
    drawn = rng.choice(["learned", "learned", "init", "init", "tie", "checkpoint"])
    question = question or drawn
    assume = sorted(rng.sample(ASSUME, rng.randint(0, 4))) if rng.random() < 0.3 else None
    with tempfile.TemporaryDirectory() as tmp:
        checkpoints, states = None, None
        if question == "checkpoint":
            ca = _checkpoint(a, seed, Path(tmp))
            cb = ca if _fits(ca, b) else _checkpoint(b, seed + 1, Path(tmp))
            checkpoints = (ca, cb)
            states = (torch.load(ca), torch.load(cb))
        r = prove(a, b, at_init=question == "init", tie_inits=question == "tie",
                  checkpoints=checkpoints, assume=assume, seed=seed)
        why = problem(a, b, r, seed, states)
    out = Outcome(a, b, f"{note}; {question}" + (f"; assume {assume}" if assume is not None
                                                 else ""), question, r, why)
    return out


def problem(a: str, b: str, r: ProofResult, seed: int = 0,
            checkpoints: tuple[dict, dict] | None = None) -> str | None:
    """Why verdict r on (a, b) is unsound by the independent numbers, or None. EQUIVALENT:
    the numbers with its premises made true (its assumptions; --tie-inits: modules of the
    same shape tied) must agree, and with the real ε roughly; NOT EQUIVALENT: its witness
    must differ and, when refuted "even under every assumption", the numbers with all of
    them made true must differ too."""
    question, tie = r.question, any("--tie-inits" in p for p in r.premises)
    if r.verdict == EQUIVALENT:
        used = {x.name for x in r.assumptions}
        diff, scale = numbers(a, b, question, used, seed, checkpoints, tie)
        if diff > TOL * max(1.0, scale):  # float64 rounding is relative (a body's outputs)
            return f"EQUIVALENT, but the numbers differ by {diff:.3g} (premises true)"
        if used & {"scale-invariant", "no-eps"}:
            real, _ = numbers(a, b, question, used - {"scale-invariant", "no-eps"}, seed,
                              checkpoints, tie)
            if real > APPROX * scale:
                return f"EQUIVALENT, but with the real ε the numbers differ by {real:.3g}"
        return None
    if r.verdict == NOT_EQUIVALENT:
        if r.witness is None or not r.witness.differs:
            return "NOT EQUIVALENT without a witness that differs"
        if r.tried and len(r.tried) == len(ASSUME):  # every assumption: they cannot rescue it
            diff, scale = numbers(a, b, question, set(ASSUME), seed, checkpoints, tie)
            if diff <= TOL * max(1.0, scale):
                return "NOT EQUIVALENT under every assumption, but they agree when all hold"
    return None
