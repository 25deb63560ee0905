"""The unfolded connection matrices of HC Eqs. 20-23, for any spec whose state is linear.

Indices run over 0..L+1: j = 0 is the embedding h0, j = 1..L the layers (in sequence order),
k = L+1 the readout (what the final norm reads). Every matrix is strictly lower-triangular:

    C^(0)[k, j] = coefficient of T^j's output in layer k's input (before its pre-norm)
    C^(i)[k, j] = coefficient of T^j's output in stream i of the state layer k reads
                  (row L+1: the final state the readout sums)

Frac-Connections (arXiv 2503.14125) split the hidden state into m fractions of d/m, and a
fraction of a layer's input may read any fraction of an earlier output, so the connection
unfolds per fraction, as HC's Fig. 7 does per layer (the definition hcdsl chooses, since
the FC paper draws no unfolded matrix):

    C^(0)_frac[(k, c), (j, f)] = coefficient of fraction f of T^j's output in fraction c
                                 of layer k's input  (((L+2)m) x ((L+2)m), `by_fraction`)
    C^(0)[k, j] = (1/m) sum_c sum_f C^(0)_frac[(k, c), (j, f)]
                  (the weight of T^j in layer k's input, averaged over its input fractions)
    C^(i)[k, j] = sum_f (coefficient of fraction f of T^j in state fraction i)

so FC at init (Y = A = I, B = 1) has identity blocks in C^(0)_frac and the all-ones lower
triangle of Pre-Norm in C^(0), as HC with n = 1; with m = 1 every definition is HC's. The
arrangement reads the blocks of C^(0)_frac (layer k reads layer j iff its block is not
zero), so entries that cancel in the average never hide a dependence.

Static specs: exact (Fractions) from a symbolic evaluation of the IR, learned matrices at
their init. With a checkpoint or an input (and always for dynamic connections or norms on the
state, e.g. Post-Norm), numeric: the reference backend runs the tokens, every coefficient
matrix and every norm on the state is taken per token (a norm as the scale 1/std(x), i.e.
mean and affine ignored, as HC Eq. 16 reads Post-Norm) and the matrices are averaged over
the tokens. A weight that differs per channel (a generator's per-channel read or write,
Qwen4-exp) or per channel group (a history generator with heads or a per channel:
Multi-Head Attention Residuals arXiv 2607.27230, DCA arXiv 2502.06785) is taken as its mean
over the channels (each group counted by its width), then averaged over the tokens; the note
says so. A layer whose inputs differ (MUDD's, DCA's q, k, v) shows its first.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from hcdsl.backends import ReferenceModel
from hcdsl.errors import CompileError
from hcdsl.ir import nodes as n
from hcdsl.nn.assemble import assemble
from hcdsl.nn.generator import read_weights
from hcdsl.proofs.checkpoint import load_file, loaded
from hcdsl.proofs.source import Source, name_of, raw_ir
from hcdsl.proofs.coefs import Point, fmt_fraction
from hcdsl.proofs.identity import Identity
from hcdsl.proofs.symbolic import evaluate, final_state_node, layer_position, state_before
from hcdsl.proofs.terms import Lin, Terms


class UnfoldError(Exception):
    """The spec's state is not a linear combination of the layer outputs (symbolically)."""


@dataclass
class Unfolded:
    name: str
    C0: np.ndarray  # (L+2, L+2); dtype object (Fraction) when exact, else float64
    Ci: list[np.ndarray]  # one per state stream (may be empty when streams vary)
    kinds: list[str]  # kinds[j-1] = layer j's kind
    exact: bool
    note: str = ""
    fractions: int = 1  # m: FC's fractions of the hidden state (1: no split)
    by_fraction: np.ndarray | None = None  # C^(0)_frac ((L+2)m, (L+2)m) when fractions > 1

    @property
    def L(self) -> int:
        return len(self.kinds)

    def as_float(self, m: np.ndarray) -> np.ndarray:
        return np.array([[float(x) for x in row] for row in m], dtype=np.float64)

    def reads(self) -> np.ndarray:
        """(L+2, L+2) float: the largest |coefficient| of T^j's output (any fraction) in
        layer k's input (any fraction); zero exactly when layer k does not read layer j."""
        if self.by_fraction is None:
            return np.abs(self.as_float(self.C0))
        m = self.fractions
        blocks = np.abs(self.as_float(self.by_fraction))
        n = blocks.shape[0] // m
        return blocks.reshape(n, m, n, m).max(axis=(1, 3))

    def render(self, streams: bool = True) -> str:
        out = [f"unfolded connections of {self.name}: {self.L} layers "
               f"({', '.join(f'{j + 1}={k}' for j, k in enumerate(self.kinds))})",
               "rows k = 1..L+1: layer k's input (L+1 = the readout); columns j = 0..L: "
               "h0, then layer j's output"]
        if self.note:
            out.append(self.note)
        kind = "fraction" if self.fractions > 1 else "stream"
        mats = [("C^(0) (layer inputs)" + (f", averaged over the {self.fractions} fractions"
                                           if self.fractions > 1 else ""), self.C0)]
        if streams:
            mats += [(f"C^({i + 1}) ({kind} {i + 1})", m) for i, m in enumerate(self.Ci)]
        for title, m in mats:
            out.append("")
            out.append(title)
            out.append(_table(m, self.exact))
        if self.by_fraction is not None:
            out += ["", f"C^(0) by fraction (row k.c: fraction c of layer k's input; column "
                        f"j.f: fraction f of T^j's output)",
                    _table(self.by_fraction, self.exact, self.fractions)]
        return "\n".join(out)


def _cell(x: object, exact: bool) -> str:
    if exact:
        return fmt_fraction(x) if x != 0 else "."
    return "." if abs(float(x)) < 5e-7 else f"{float(x):.3f}"


def _table(m: np.ndarray, exact: bool, fractions: int = 1) -> str:
    """Rows k = 1..L+1, columns j = 0..L (with fractions > 1: rows k.c, columns j.f)."""
    f = fractions
    n = m.shape[0] // f  # L + 2
    label = (lambda i: str(i)) if f == 1 else (lambda i: f"{i // f}.{i % f + 1}")
    cols, rows = range((n - 1) * f), range(f, n * f)
    cells = [[_cell(m[r, c], exact) for c in cols] for r in rows]
    width = max([len(c) for row in cells for c in row] + [len(label(i)) for i in cols])
    lead = max(3, max(len(label(r)) for r in rows))
    head = " " * (lead + 2) + " ".join(f"{label(c):>{width}}" for c in cols)
    lines = [f"{label(r):>{lead}}: " + " ".join(f"{c:>{width}}" for c in row)
             for r, row in zip(rows, cells)]
    return "\n".join([head, *lines])


def fractions_of(ir: object) -> int:
    """m: the hidden state's fractions (the least common multiple of the IR's splits; 1 when
    nothing is split, HC's streams being whole copies)."""
    return math.lcm(*[ir.payload(v).parts for v in ir.g.nodes  # type: ignore[attr-defined]
                      if isinstance(ir.payload(v), n.Split)])  # type: ignore[attr-defined]


def _rows(lin: Lin, L: int, m: int, where: str) -> np.ndarray:
    """A value as rows over the sources (j, f) -> column j*m + f: one row per fraction of
    width d/m it holds (m for a hidden state, 1 for an FC fraction or a whole HC stream)."""
    out = None
    for atom, c in lin.terms.items():
        k = c.exact
        if k is None:
            raise UnfoldError(f"{where} is not a linear combination of h0 and the layer "
                              f"outputs: {lin}")
        rows = _atom_rows(atom, L, m, where, lin) * k
        if out is not None and out.shape != rows.shape:
            raise UnfoldError(f"{where} adds values of different widths: {lin}")
        out = rows if out is None else out + rows
    if out is None:  # zero: as wide as a hidden state
        return np.full((m, (L + 2) * m), Fraction(0), dtype=object)
    return out


def _atom_rows(atom: object, L: int, m: int, where: str, lin: Lin) -> np.ndarray:
    kind, fields = atom.kind, atom.fields  # type: ignore[attr-defined]
    if kind in ("h0", "T"):  # a whole output: fraction c is source (j, c)
        j = 0 if kind == "h0" else fields[0]
        rows = np.full((m, (L + 2) * m), Fraction(0), dtype=object)
        for c in range(m):
            rows[c, j * m + c] = Fraction(1)
        return rows
    if kind == "slice":  # part i of parts: the rows of that part
        i, parts = fields
        inner = _rows(atom.children[0], L, m, where)  # type: ignore[attr-defined]
        if inner.shape[0] % parts:
            raise UnfoldError(f"{where} cuts a value of {inner.shape[0]} fractions into "
                              f"{parts}: {lin}")
        g = inner.shape[0] // parts
        return inner[i * g:(i + 1) * g]
    if kind == "concat":
        children = atom.children  # type: ignore[attr-defined]
        return np.vstack([_rows(ch, L, m, where) for ch in children])
    raise UnfoldError(f"{where} is not a linear combination of h0 and the layer outputs: "
                      f"{lin}")


def _summary(rows: np.ndarray, m: int, L: int) -> np.ndarray:
    """One row over j = 0..L+1 of rows over (j, f): sum over the source fractions f, mean
    over the rows (the value's own fractions)."""
    per = rows.reshape(rows.shape[0], L + 2, m).sum(axis=2)
    return per.sum(axis=0) / rows.shape[0]


def unfold_exact(spec: Source) -> Unfolded:
    """Exact C^(0), C^(i) at init from the spec (see the module doc)."""
    ir = raw_ir(spec)
    ev = evaluate(ir, Terms(), Point(0), Identity("init"))
    L = ev.L
    m = fractions_of(ir)
    C0 = np.full((L + 2, L + 2), Fraction(0), dtype=object)
    frac = np.full(((L + 2) * m, (L + 2) * m), Fraction(0), dtype=object)
    streams = None
    for k, info in sorted(ev.layers.items()):
        raw = info.raw_input if info.raw_input is not None else info.ports[0]
        rows = _rows(raw, L, m, f"layer {k}'s input")
        frac[k * m:(k + 1) * m] = rows
        C0[k] = _summary(rows, m, L)
        if info.state is not None:
            streams = len(info.state) if streams in (None, len(info.state)) else -1
    if ev.final_raw is None:
        raise UnfoldError("the model has no head")
    rows = _rows(ev.final_raw, L, m, "the readout")
    frac[(L + 1) * m:] = rows
    C0[L + 1] = _summary(rows, m, L)
    Ci: list[np.ndarray] = []
    every = all(info.state is not None for info in ev.layers.values())
    if every and streams and streams > 0 and ev.final_state is not None and \
            len(ev.final_state) == streams:
        for i in range(streams):
            mat = np.full((L + 2, L + 2), Fraction(0), dtype=object)
            for k, info in ev.layers.items():
                mat[k] = _summary(_rows(info.state[i], L, m, f"stream {i + 1} before layer "
                                        f"{k}"), m, L)
            mat[L + 1] = _summary(_rows(ev.final_state[i], L, m, f"stream {i + 1} of the "
                                        "final state"), m, L)
            Ci.append(mat)
    dynamic = any(_dynamic(ir.payload(v)) for v in ir.g.nodes)
    learned = any(isinstance(ir.payload(v), (n.LearnedCoef, n.GeneratorCoef, n.DenseCoef))
                  for v in ir.g.nodes)
    note = "exact, from the spec"
    if learned:
        note += "; learned matrices at their init" + (" (dynamic parts at their init values)"
                                                       if dynamic else "")
    kinds = [ev.layers[k].sig[0] for k in sorted(ev.layers)]
    return Unfolded(name_of(spec), C0, Ci, kinds, True, note, m, frac if m > 1 else None)


# -- numeric, per token --------------------------------------------------------------------
_TOKEN_LIST = re.compile(r"[\s\d,+\-]*")  # what a list of tokens may hold ("1, 2,3")


def parse_tokens(text: str | None, vocab: int, seed: int = 0) -> torch.Tensor:
    """'1,2,3' or a path to a tensor saved with torch.save (integers, 1 or 2 dimensions);
    None: 2 x 32 random tokens. CompileError naming the problem when the input is not
    tokens of this vocabulary."""
    if text is None:
        gen = torch.Generator().manual_seed(seed)
        return torch.randint(0, vocab, (2, 32), generator=gen)
    path = Path(text)
    if not _TOKEN_LIST.fullmatch(text) and (path.exists() or "/" in text or
                                             path.suffix in (".pt", ".pth")):
        return check_tokens(_load_tokens(path), vocab, str(path))
    items = [x.strip() for x in text.split(",") if x.strip()]
    bad = next((x for x in items if not re.fullmatch(r"[+-]?\d+", x)), None)
    if bad is not None or not items:
        raise CompileError(f"--input '{text[:60]}': " + (
            f"'{bad[:30]}' is not a token number" if bad else "no tokens")
            + "; give tokens as integers, e.g. '1,2,3', or the path of a tensor file (.pt)")
    return check_tokens(torch.tensor([[int(x) for x in items]]), vocab, f"--input '{text[:60]}'")


def _load_tokens(path: Path) -> torch.Tensor:
    t = load_file(path, "token file")
    if not isinstance(t, torch.Tensor):
        raise CompileError(f"{path} holds a {type(t).__name__}, not a tensor of tokens")
    return t


def check_tokens(t: torch.Tensor, vocab: int, what: str) -> torch.Tensor:
    """t as a (batch, time) tensor of tokens in 0..vocab-1, or a CompileError naming what."""
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise CompileError(f"{what}: tokens are integers, got a tensor of {t.dtype}")
    if t.dim() not in (1, 2) or t.numel() == 0:
        raise CompileError(f"{what}: tokens are a non-empty (time,) or (batch, time) tensor, "
                           f"got shape {tuple(t.shape)}")
    t = t.long().reshape(1, -1) if t.dim() == 1 else t.long()
    low, high = int(t.min()), int(t.max())
    if low < 0 or high >= vocab:
        bad = low if low < 0 else high
        raise CompileError(f"{what}: token {bad} is outside the vocabulary 0..{vocab - 1}")
    return t


def unfold_numeric(spec: Source,
                   checkpoint: str | Path | Mapping[str, torch.Tensor] | None = None,
                   tokens: torch.Tensor | str | None = None, seed: int = 0) -> Unfolded:
    """C^(0) and C^(i) measured on tokens; checkpoint: a file, or a state_dict in memory
    ("the given weights")."""
    ir = raw_ir(spec)
    if not ir.of_type(n.Embed):
        raise UnfoldError("numeric unfolding runs tokens through the model, and this one reads "
                          "hidden states (input = hidden); a static connection is unfolded "
                          "exactly without --input or --checkpoint")
    vocab = ir.payload(ir.of_type(n.Embed)[0]).vocab
    x = (check_tokens(tokens, vocab, "tokens") if isinstance(tokens, torch.Tensor)
         else parse_tokens(tokens, vocab, seed))
    if checkpoint is not None:  # every module strictly, or a CompileError naming the file
        model = loaded(ir, ir, checkpoint, name_of(spec))
    else:
        model = ReferenceModel(ir, assemble(ir, ir, None, seed, None)).double().train(False)
    layers = [v for v in ir.order() if isinstance(ir.payload(v), n.Layer)]
    pos = {v: layer_position(ir, v, i + 1) for i, v in enumerate(layers)}
    L = len(layers)
    m = fractions_of(ir)
    K = (L + 1) * m  # sources (j, f), j = 0..L: column j*m + f
    frac = np.zeros(((L + 2) * m, (L + 2) * m))
    rows_i: dict[int, np.ndarray] = {}
    final_state = None
    approx = False
    averaged = False  # per-channel weights taken as their mean over the channels
    first = None  # a layer's first input port, when its inputs differ (MUDD's, DCA's q, k, v)
    env: dict[str, torch.Tensor] = {}
    # every value's coefficients (B, T, S, g, K): S streams of g fractions each (a hidden
    # state: one stream of m fractions)
    tr: dict[str, torch.Tensor] = {}

    def source(j: int) -> torch.Tensor:
        z = torch.zeros(*x.shape, 1, m, K, dtype=torch.float64)
        for c in range(m):
            z[..., 0, c, j * m + c] = 1.0
        return z

    def mean_rows(t: torch.Tensor) -> np.ndarray:
        return t.mean(dim=(0, 1)).numpy()  # (S, g, K)

    with torch.no_grad():
        for v in ir.order():
            p = ir.payload(v)
            ins = ir.inputs(v)
            xv = {port: env[src] for port, src in ins.items()}
            env[v] = model.eval_node(v, xv, x)
            t = {port: tr.get(src) for port, src in ins.items()}
            if not isinstance(p, n.Embed) and any(
                    t.get(q) is None for q in _traced_ports(p)):
                raise UnfoldError(f"node {v} ({p.op}) reads a value that is not a linear "
                                  "combination hcdsl can follow (numerically)")
            if isinstance(p, n.Embed):
                tr[v] = source(0)
            elif isinstance(p, n.Split):
                h = t["x"]  # one stream of m fractions -> p.parts streams
                if h.shape[2] != 1 or h.shape[3] % p.parts:
                    raise UnfoldError(f"node {v} splits {h.shape[3]} fractions into "
                                      f"{p.parts}: not a split hcdsl can unfold")
                tr[v] = h.reshape(*h.shape[:2], p.parts, h.shape[3] // p.parts, K)
            elif isinstance(p, n.Merge):
                h = t["x"]
                tr[v] = h.reshape(*h.shape[:2], 1, h.shape[2] * h.shape[3], K)
            elif isinstance(p, n.Stack):
                tr[v] = torch.cat([t[q] for q in p.ports()], dim=2)
            elif isinstance(p, n.Take):
                tr[v] = t["x"][:, :, p.start:p.stop]
            elif isinstance(p, n.Copy):
                tr[v] = t["x"].expand(-1, -1, p.n, -1, -1)
            elif isinstance(p, n.SumStreams):
                tr[v] = t["x"].sum(dim=2, keepdim=True)
            elif isinstance(p, n.Dropout):  # eval mode: the identity
                tr[v] = t["x"]
            elif isinstance(p, n.GeneratorCoef):  # a read or readout made by a generator
                if _generator_reads(p):
                    w, scale = read_weights(model.mod(v), xv["x"])
                    tr[v] = torch.einsum("btsgk,bts->btgk", t["x"],
                                         (w * scale).double()).unsqueeze(2)
                    rec = p.spec.output("readout" if p.role == "readout" else "read")
                    if rec is not None and rec.per == "channel":
                        averaged = True
                    if rec is not None and rec.source == "normed":
                        approx = True
            elif isinstance(p, n.DenseCoef) and p.grouped():  # mixes the sources itself
                a = dense_weights(model.mod(v), xv)  # (B, T, S, ways): groups averaged
                tr[v] = torch.einsum("btsgk,btsw->btwgk", t["src"], a)
                averaged = True
            elif isinstance(p, n.Tap):  # a generator's read (element 0 of its tuple)
                if p.index == 0 and ins["x"] in tr:
                    tr[v] = tr[ins["x"]]
            elif isinstance(p, n.ChannelWrite):  # w_t ⊙ o: w averaged over the channels
                w = xv["w"].double().mean(dim=-1)  # (B, T, n)
                tr[v] = t["o"] * w[..., None, None]
                averaged = True
            elif isinstance(p, n.NormStreams):  # the chosen streams scaled by 1/std
                h = xv["x"]
                scale = torch.ones(h.shape[:3], dtype=torch.float64)
                chosen = list(p.which)
                scale[..., chosen] = 1.0 / torch.sqrt(
                    h[..., chosen, :].double().var(dim=-1, unbiased=False) + p.eps)
                tr[v] = t["x"] * scale[..., None, None]
                approx = True
            elif isinstance(p, n.Add):
                tr[v] = sum(t[q] for q in p.ports())
            elif isinstance(p, n.Mix):
                coef = env[ins["coef"]].to(torch.float64)
                (r0, r1), (c0, c1) = p.rows, p.cols
                sub = coef[..., r0:r1, c0:c1]
                eq = "btsgk,sc->btcgk" if sub.dim() == 2 else "btsgk,btsc->btcgk"
                tr[v] = torch.einsum(eq, t["x"], sub)
            elif isinstance(p, (n.Norm, n.InvStd)):
                h = xv["x"]
                h = h.unsqueeze(2) if h.dim() == 3 else h
                eps = getattr(p, "eps", 0.0)
                scale = 1.0 / torch.sqrt(h.var(dim=-1, unbiased=False) + eps)  # (B, T, S)
                tr[v] = t["x"] * scale[..., None, None]
                if any(q in _traced_ports(ir.payload(u)) for u, q in ir.users(v)):
                    approx = True  # on the state (not only a layer's or a generator's input)
            elif isinstance(p, n.Layer):
                k = pos[v]
                src = ins[p.ports()[0]]
                if len({ins[q] for q in p.ports()}) > 1:
                    first = p.ports()[0]
                raw = ir.inputs(src)["x"] if isinstance(ir.payload(src), n.Norm) else src
                frac[k * m:(k + 1) * m, :K] = mean_rows(_traced(tr, raw))[0]
                st = state_before(ir, src)
                if st is not None and st in tr:
                    rows_i[k] = mean_rows(tr[st])
                tr[v] = source(k)
            elif isinstance(p, n.Unembed):
                src = ins["x"]
                raw = ir.inputs(src)["x"] if isinstance(ir.payload(src), n.Norm) else src
                frac[(L + 1) * m:, :K] = mean_rows(_traced(tr, raw))[0]
                st = final_state_node(ir, src)
                if st is not None and st in tr:
                    final_state = mean_rows(tr[st])
    C0 = np.stack([_summary(frac[k * m:(k + 1) * m], m, L) for k in range(L + 2)])
    Ci: list[np.ndarray] = []
    S = {r.shape[0] for r in rows_i.values()}
    every = len(rows_i) == L  # every layer reads a state (not a history's aggregates)
    if every and final_state is not None and len(S) == 1 and S == {final_state.shape[0]}:
        for i in range(final_state.shape[0]):
            mat = np.zeros((L + 2, L + 2))
            for k, r in rows_i.items():
                mat[k] = _summary(np.pad(r[i], ((0, 0), (0, m))), m, L)
            mat[L + 1] = _summary(np.pad(final_state[i], ((0, 0), (0, m))), m, L)
            Ci.append(mat)
    src = ("the given weights" if isinstance(checkpoint, Mapping)
           else f"checkpoint {checkpoint}" if checkpoint is not None
           else f"init weights (seed {seed})")
    note = (f"numeric, from {src} on {x.shape[0]}x{x.shape[1]} input tokens, averaged over "
            "the tokens")
    if approx:
        note += ("; norms on the state taken as the per-token scale 1/std(x) (mean and affine "
                 "ignored, as HC Eq. 16)")
    if averaged:
        note += ("; per-channel weights taken as their mean over the channels (a channel "
                 "group's weight counts once per channel)")
    if first is not None:
        note += (f"; a layer with several inputs shows its first ({first}), the rest "
                 "are other combinations of the same sources")
    kinds = [ir.payload(v).kind for v in sorted(layers, key=lambda v: pos[v])]
    return Unfolded(name_of(spec), C0, Ci, kinds, False, note, m, frac if m > 1 else None)


def _traced(tr: dict[str, torch.Tensor], v: str) -> torch.Tensor:
    if v not in tr:
        raise UnfoldError(f"node {v} is not a linear combination hcdsl can follow "
                          "(numerically)")
    return tr[v]


def _traced_ports(p: n.Node) -> tuple[str, ...]:
    """The ports whose values the numeric unfolding must follow at node p."""
    if isinstance(p, (n.Split, n.Merge, n.Take, n.Copy, n.SumStreams, n.Dropout, n.Norm,
                      n.InvStd, n.NormStreams, n.Mix)):
        return ("x",)
    if isinstance(p, (n.Stack, n.Add)):
        return p.ports()
    if isinstance(p, n.GeneratorCoef):
        return ("x",) if _generator_reads(p) else ()
    if isinstance(p, n.ChannelWrite):
        return ("o",)
    if isinstance(p, n.DenseCoef):
        return ("src",) if p.grouped() else ()
    if isinstance(p, (n.Layer, n.Unembed)):
        return ()  # their inputs are looked up (and checked) where they are read
    return ()


def dense_weights(module: torch.nn.Module, xv: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """A history generator's weights per token, (B, T, sources, ways) in float64: with
    channel groups (heads, or a per channel), the mean over the groups weighted by their
    width (the groups are equally wide: the plain mean), i.e. the weight of each source in
    the aggregate averaged over its channels. A static aggregate's weights repeat over the
    tokens of xv's batch."""
    a = module.weights(xv.get("x")).double()
    if module.groups > 1:
        a = a.mean(dim=-1)  # (.., S, W, G) -> (.., S, W): G groups of width D/G each
    if a.dim() == 2:  # static: the same for every token
        ref = next(iter(xv.values()))
        a = a.expand(*ref.shape[:2], *a.shape)
    return a


def _generator_reads(p: n.GeneratorCoef) -> bool:
    """The generator computes a layer's input or h^L itself (not only a matrix M)."""
    return p.role == "readout" or p.spec.inline_read()


def _dynamic(p: n.Node) -> bool:
    """A token-dependent coefficient node (a generator: dynamic HC and FC, mHC, ...; a dynamic
    history generator: MUDD, attention residuals, DCA)."""
    return isinstance(p, n.GeneratorCoef) or isinstance(p, n.DenseCoef) and p.spec.dynamic


def unfold(spec: Source, checkpoint: str | Path | None = None,
           tokens: torch.Tensor | str | None = None, seed: int = 0) -> Unfolded:
    """Exact when the spec allows it (static, linear state, no checkpoint or input given);
    numeric otherwise (see the module doc)."""
    if checkpoint is None and tokens is None:
        try:
            exact = unfold_exact(spec)
        except UnfoldError:
            pass
        else:
            ir = raw_ir(spec)
            if not any(_dynamic(ir.payload(v)) for v in ir.g.nodes):
                return exact
            exact.note += ("; a dynamic spec: give --checkpoint and --input for the trained, "
                           "per-token matrices")
            return exact
    return unfold_numeric(spec, checkpoint, tokens, seed)
