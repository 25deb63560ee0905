"""A connection's generator: per-token weights of the step matrix M from the state H, as
written in a `generator { ... }` block (the record hcdsl/lang/generator.py says what each
field means; docs/language.md, "Generators").

    step:    H (B, T, n, C) -> M (B, T, 1 + n, 1 + n) = [[0, write], [read, RES]]
             or, when the read is computed here (per-channel weights, or weights on the
             normalised state), the tuple (x, M) with x (B, T, C) the layer's input
    readout: H (B, T, n, C) -> h (B, T, C)

Dtype rule: the coefficients are computed in float32 at least (float64 stays float64) with
autocast off, whatever the model's dtype (mHC computes them in float32, arXiv 2512.24880
§4.3; DeepSeek-V4 and GLM-5 cast the state to float32 for them); M, x and h are returned in the
state's dtype.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hcdsl.lang.generator import Constraint, GenNorm, GenOut, GenProj, Generator
from hcdsl.nn.preset_params import PRESET_PARAMS, View
from hcdsl.nn.sinkhorn import sinkhorn


def act(name: str, x: Tensor, dim: int = -1) -> Tensor:
    if name == "sigmoid":
        return torch.sigmoid(x)
    if name == "double_sigmoid":
        return 2 * torch.sigmoid(x)
    if name == "tanh":
        return torch.tanh(x)
    if name == "softmax":
        return torch.softmax(x, dim=dim)
    if name == "silu":
        return F.silu(x)
    return x


def permutation_matrices(n: int) -> Tensor:
    """The n! permutation matrices P_k[s, t] = 1 if σ_k(s) = t, in itertools order."""
    perms = list(itertools.permutations(range(n)))
    out = torch.zeros(len(perms), n, n, dtype=torch.float64)
    for k, perm in enumerate(perms):
        out[k, torch.arange(n), torch.tensor(perm)] = 1.0
    return out


class _Norm(nn.Module):
    def __init__(self, rec: GenNorm, width: int, groups: int) -> None:
        super().__init__()
        self.kind, self.mode, self.eps, self.groups = rec.kind, rec.weight, rec.eps, groups
        if rec.weight != "none":
            init = torch.zeros(width) if rec.weight == "offset" else torch.ones(width)
            self.weight = nn.Parameter(init)
        if rec.weight == "affine":
            self.bias = nn.Parameter(torch.zeros(width))

    def forward(self, z: Tensor) -> Tensor:
        shape = z.shape
        if self.groups > 1:
            z = z.unflatten(-1, (self.groups, shape[-1] // self.groups))
        if self.kind == "rmsnorm":
            z = z * torch.rsqrt(z.pow(2).mean(-1, keepdim=True) + self.eps)
        else:
            z = F.layer_norm(z, z.shape[-1:], eps=self.eps)
        z = z.reshape(shape)
        gamma, beta = self.affine(z.dtype)
        if gamma is not None:
            z = z * gamma
        return z + beta if beta is not None else z

    def affine(self, dt: torch.dtype) -> tuple[Tensor | None, Tensor | None]:
        """(γ, β) of z' γ + β, None where there is none."""
        if self.mode == "none":
            return None, None
        w = self.weight.to(dt)
        if self.mode == "offset":
            return 1.0 + w, None
        return w, self.bias.to(dt) if self.mode == "affine" else None


def _norm_terms(norm: nn.Module, dt: torch.dtype) -> tuple[str, float, Tensor | None,
                                                            Tensor | None]:
    """(kind, eps, γ, β) of a generator's norm: its own (_Norm) or the torch module the HC/FC
    presets keep under their papers' names (nn.LayerNorm, nn.RMSNorm)."""
    if isinstance(norm, _Norm):
        return (norm.kind, norm.eps) + norm.affine(dt)
    gamma, beta = getattr(norm, "weight", None), getattr(norm, "bias", None)
    eps = norm.eps if norm.eps is not None else torch.finfo(dt).eps
    kind = "layernorm" if isinstance(norm, nn.LayerNorm) else "rmsnorm"
    return (kind, eps, None if gamma is None else gamma.to(dt),
            None if beta is None else beta.to(dt))


def normed_project(x: Tensor, norm: nn.Module | None, weight: Tensor) -> Tensor:
    """F.linear(norm(x), weight) with the norm's statistics applied after the projection
    (x̂ Wᵀ = (x (W ⊙ γ)ᵀ - μ (W γ)) r + β Wᵀ, r = 1/√(var + ε); RMSNorm: μ = 0, β = 0): the
    mHC paper's reordering (arXiv 2512.24880 §4.3), so no normalised copy of the state is
    made or kept for backward. Exact up to rounding (hcdsl.nn.ops.normed_linear, for any
    norm a generator holds)."""
    if norm is None:
        return F.linear(x, weight)
    kind, eps, gamma, beta = _norm_terms(norm, x.dtype)
    w = weight * gamma if gamma is not None else weight  # (out, in)
    proj = F.linear(x, w)
    if kind == "layernorm":
        var, mean = torch.var_mean(x, dim=-1, correction=0, keepdim=True)
        proj = (proj - mean * w.sum(-1)) * torch.rsqrt(var + eps)
    else:
        proj = proj * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    if beta is not None:
        proj = proj + F.linear(beta, weight)
    return proj


class GeneratorOut(nn.Module):
    """One output: proj, div, scale, bias, then act (+ add) or a constraint. It holds its
    parameters (`own`) unless the generator keeps them under a preset's names."""

    def __init__(self, rec: GenOut, d_in: int, d_out: int, n: int, flat: bool,
                 own: bool = True) -> None:
        super().__init__()
        self.rec, self.n = rec, n
        p = rec.proj
        if own and p.kind == "linear":
            self.weight = nn.Parameter(torch.randn(d_out, d_in) * p.init_std)
        elif own:
            self.down = nn.Parameter(torch.randn(p.rank, d_in) * p.init_std)
            self.up = nn.Parameter(torch.randn(d_out, p.rank) * p.init_std)
        if own and rec.scale is not None:
            self.scale = nn.Parameter(torch.tensor(float(rec.scale)))
        if own and rec.bias is not None:
            self.bias = nn.Parameter(bias_init(rec, (d_out,) if flat else (n, d_out)))
        c = rec.constraint
        if c is not None and c.kind == "permutations":
            self.register_buffer("perms", permutation_matrices(n), persistent=False)
        if c is not None and c.kind == "kronecker":
            for i, f in enumerate(c.factors):
                self.register_buffer(f"perms{i}", permutation_matrices(f), persistent=False)

    def view(self, shared: "GeneratorOut | None") -> View:
        scale = shared.scale if shared is not None else getattr(self, "scale", None)
        return View(getattr(self, "weight", None), getattr(self, "down", None),
                    getattr(self, "up", None), scale, getattr(self, "bias", None))

    def logits(self, z: Tensor, v: View, y: Tensor | None = None) -> Tensor:
        """proj(z) / div (then scale and bias unless affine = after_act); `y`: the projection
        already made (the generator's one GEMM for all outputs)."""
        rec, dt = self.rec, z.dtype
        if y is None and rec.proj.kind == "linear":
            y = F.linear(z, v.weight.to(dt))
        elif y is None:
            mid = F.linear(z, v.down.to(dt))
            if rec.proj.mid_div != 1.0:
                mid = mid / rec.proj.mid_div
            y = F.linear(act(rec.proj.mid, mid), v.up.to(dt))
        if rec.div != 1.0:
            y = y / rec.div
        return y if rec.affine == "after_act" else self.affine(y, v)

    def affine(self, y: Tensor, v: View) -> Tensor:
        if v.scale is not None:
            y = y * v.scale.to(y.dtype)
        if v.bias is not None:
            y = y + v.bias.to(y.dtype)
        return y

    def activate(self, y: Tensor, v: View, dim: int = -1,
                 shape: tuple[int, int] | None = None) -> Tensor:
        """act (and the affine map after it, for affine = after_act), then + add. With
        `shape`, the flat logits y (..., a*b) are viewed as (..., a, b) for the activation
        (a softmax over `dim` of that view) and the result has that shape."""
        w = act(self.rec.act, y.unflatten(-1, shape) if shape else y, dim)
        if self.rec.affine == "after_act":
            w = self.affine(w.flatten(-2) if shape else w, v)
            w = w.unflatten(-1, shape) if shape else w
        return w + self.rec.add if self.rec.add else w

    def res(self, y: Tensor, v: View, flat: bool) -> Tensor:
        """RES (B, T, n, n), [s, t] = old stream s into new stream t, from the logits y."""
        n, c = self.n, self.rec.constraint
        if c is None:  # a softmax over each row of RES (or, axis = cols, each column)
            dim = -2 if self.rec.axis == "cols" else -1
            return self.activate(y, v, dim, (n, n)) if flat else self.activate(y, v, dim)
        if c.kind == "sinkhorn":
            logits = y.unflatten(-1, (n, n)) if flat else y
            return _sinkhorn(logits, c)
        if c.kind == "permutations":  # Σ_k softmax(y)_k P_k (mHC-lite, arXiv 2601.05732)
            a = torch.softmax(y, dim=-1)
            return torch.einsum("...k,kst->...st", a, self.perms.to(a.dtype))
        out = None  # kronecker: U_1 ⊗ ... ⊗ U_K, U_i = Σ_k softmax(y_i)_k P_k (KromHC)
        start = 0
        for i, f in enumerate(c.factors):
            count = math.factorial(f)
            a = torch.softmax(y[..., start:start + count], dim=-1)
            start += count
            u = torch.einsum("...k,kst->...st", a, getattr(self, f"perms{i}").to(a.dtype))
            out = u if out is None else _kron(out, u)
        return out


def bias_init(rec: GenOut, shape: tuple[int, ...]) -> Tensor:
    """The bias at init: one number for all, or the values written (`bias=[...]`)."""
    if isinstance(rec.bias, tuple):
        return torch.tensor(rec.bias, dtype=torch.get_default_dtype()).reshape(shape)
    return torch.full(shape, float(rec.bias))


def _kron(a: Tensor, b: Tensor) -> Tensor:
    """Batched Kronecker product of (..., p, p) and (..., q, q)."""
    p, q = a.shape[-1], b.shape[-1]
    out = a[..., :, None, :, None] * b[..., None, :, None, :]
    return out.reshape(*out.shape[:-4], p * q, p * q)


def sinkhorn_paper(logits: Tensor, iters: int) -> Tensor:
    """mHC's Sinkhorn-Knopp on H_res (arXiv 2512.24880 Eq. 9): exp, then `iters` rounds of
    column then row normalisation (hcdsl.nn.sinkhorn.sinkhorn, one op with an exact
    backward). A module-level name, so a test can record the dtype it runs in."""
    return sinkhorn(logits, iters)


def _sinkhorn(logits: Tensor, c: Constraint) -> Tensor:
    if c.order == "paper":  # mHC: exp, then columns/rows of H_res = RESᵀ (the one op)
        return sinkhorn_paper(logits.transpose(-1, -2), c.iters).transpose(-1, -2)
    eps = c.eps  # DeepSeek-V4: softmax over rows + eps, columns, (iters - 1) row/col rounds
    m = torch.softmax(logits, dim=-1) + eps
    m = m / (m.sum(dim=-2, keepdim=True) + eps)
    for _ in range(c.iters - 1):
        m = m / (m.sum(dim=-1, keepdim=True) + eps)
        m = m / (m.sum(dim=-2, keepdim=True) + eps)
    return m


class GeneratorCoef(nn.Module):
    """The module of one generator node (IR kind `generator`).

    `params` says where the parameters are kept, never what is computed: "outputs" (each
    output's own: outs.read.weight, outs.read.scale, outs.read.bias, ...), or the names and
    layouts of the presets that desugar to a generator (hcdsl/nn/preset_params.py: dynamic
    HC's static_gain, static_mix, w_gain, w_mix, s_gain, s_mix, norm; mHC's phi_*, alpha_*,
    b_*), so their checkpoints, optimiser groups and the papers' reference tests read the
    same tensors as before the presets were generators."""

    def __init__(self, rec: Generator, n: int, width: int, role: str,
                 params: str = "outputs", dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.rec, self.n, self.width, self.role = rec, n, width, role
        self.flat = rec.input == "flat"
        self.reads = R = rec.fractions  # read columns of M: 1, or m for a split state (FC)
        self.params_as = params
        d_in = n * width if self.flat else width
        own = params == "outputs"
        if own and rec.norm is not None:
            groups = n if self.flat and rec.norm.per_stream else 1
            self.norm = _Norm(rec.norm, d_in, groups)
        self.outs = nn.ModuleDict({
            o.role: GeneratorOut(o, d_in, o.logits(n, width, self.flat, R), n, self.flat, own)
            for o in rec.outputs})
        if not own:  # the preset's parameters, then its norm if that has none
            PRESET_PARAMS[params].build(self, rec, n, width, dtype)
            if rec.norm is not None and not hasattr(self, "norm"):
                self.norm = _Norm(rec.norm, d_in, 1)
        # one GEMM for every output when all are linear and the norm can follow it
        norm = rec.norm
        self.fused = all(o.proj.kind == "linear" and o.source == "state"
                         for o in rec.outputs) and (
            norm is None or not norm.per_stream)
        self.sizes = [o.logits(n, width, self.flat, R) for o in rec.outputs]
        # dynamic HC/FC's shape (every weight b + s act(H̄_s W), one activation): the one
        # projection is activated, scaled and biased as one tensor, not output by output
        roles = tuple(o.role for o in rec.outputs)
        self.affine_all = (self.fused and not self.flat and roles == ("read", "write", "res")
                           and len({o.act for o in rec.outputs}) == 1
                           and rec.outputs[0].act != "softmax" and not rec.inline_read()
                           and all(o.affine == "after_act" and o.constraint is None
                                   and o.per == "stream" and o.div == 1.0 and not o.add
                                   and o.combine == "sum" and o.bias is not None
                                   and (o.scale is not None or o.scale_of is not None)
                                   for o in rec.outputs))
        # mHC's generator kept under its preset's names: the one-GEMM path over φ as stored
        self.mhc_step = role == "step" and params == "mhc" and is_mhc(rec)

    def views(self) -> dict[str, View]:
        if self.params_as != "outputs":
            return PRESET_PARAMS[self.params_as].views(self)
        return {o.role: self.outs[o.role].view(
            self.outs[o.scale_of] if o.scale_of is not None else None)
            for o in self.rec.outputs}

    def _per_stream(self, o: GenOut, y: Tensor, v: View) -> Tensor:
        """(B, T, n) weights of a per-stream output from its logits; softmax runs over the
        streams."""
        out = self.outs[o.role]
        if self.flat:
            return out.activate(y, v, dim=-1)
        if o.affine == "after_act":  # y (B, T, n, 1)
            return out.activate(y, v, -2).squeeze(-1)
        return out.activate(y.squeeze(-1), v, -1)

    def _channel(self, o: GenOut, y: Tensor, v: View) -> Tensor:
        """(B, T, n, C) per-channel weights; a softmax runs over the streams (or, with
        axis = channels, over each stream's channels)."""
        n, C = self.n, self.width
        dim = -1 if o.axis == "channels" else -2
        return self.outs[o.role].activate(y, v, dim, (n, C) if self.flat else None)

    def _read(self, o: GenOut, y: Tensor, v: View, z: Tensor, x: Tensor) -> Tensor:
        """The layer input combine_s w_s ⊙ src_s, (B, T, C)."""
        n, C = self.n, self.width
        if o.per == "channel":
            w = self._channel(o, y, v)
        else:
            w = self._per_stream(o, y, v).unsqueeze(-1)  # (B, T, n, 1)
        src = x if o.source == "state" else (z.unflatten(-1, (n, C)) if self.flat else z)
        out = (w * src).sum(dim=-2)
        return out / n if o.combine == "mean" else out

    def _logits(self, x: Tensor, views: dict[str, View]) -> tuple[dict[str, Tensor], Tensor]:
        """Every output's logits (scale and bias applied unless affine = after_act), and the
        normalised input z (unmade, = x, when the norm follows the one projection)."""
        rec = self.rec
        z = x.flatten(-2) if self.flat else x
        norm = getattr(self, "norm", None) if rec.norm is not None else None
        if self.fused:  # one GEMM, the norm's statistics applied after it
            weight = torch.cat([views[o.role].weight.to(z.dtype) for o in rec.outputs])
            ys = normed_project(z, norm, weight).split(self.sizes, dim=-1)
            return ({o.role: self.outs[o.role].logits(z, views[o.role], y)
                     for o, y in zip(rec.outputs, ys)}, z)
        if norm is not None:
            z = norm(z)
        return {o.role: self.outs[o.role].logits(z, views[o.role]) for o in rec.outputs}, z

    def forward(self, h: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        dt = torch.promote_types(h.dtype, torch.float32)
        with torch.autocast(device_type=h.device.type, enabled=False):
            x = h.to(dt)  # (B, T, n, C)
            if self.role == "step" and self._affine_now():
                return self._affine_step(x).to(h.dtype)
            if self.mhc_step:
                return self._mhc_step(x).to(h.dtype)
            views = self.views()
            ys, z = self._logits(x, views)
            if self.role == "readout":
                o = self.rec.output("readout")
                return self._read(o, ys["readout"], views["readout"], z, x).to(h.dtype)
            return self._step(ys, views, z, x, h)

    def _affine_now(self) -> bool:
        """Whether this call takes the one-GEMM affine path. Always in eager (fewer ops) and
        for a split state (FC, as its preset ran); a compiled training step of one read
        column (dynamic HC) takes the per-output path instead, which Inductor partitions
        better: DHC x4 compiled training +4.8% CPU time on the affine path against 1549c84's
        per-output path, +0.3% back on it; compiled inference -5.5% on the affine path
        (`benchmarks/against_commit.py`, docs/optimiser.md "The presets against 1549c84")."""
        if not self.affine_all:
            return False
        return (self.reads > 1 or not torch.compiler.is_compiling()
                or not torch.is_grad_enabled())

    def _affine_step(self, x: Tensor) -> Tensor:
        """M when every output is bias + scale act(H̄_s W) (dynamic HC Eqs. 10-13, FC §3):
        one GEMM over the 1 + R + n values [write | read | res] per stream, then
        OUT = B + s_β act(p_0) and [READ | RES] = [A_m | A_r] + s_α act(p_1:) (as the presets
        computed them)."""
        rec = self.rec
        norm = getattr(self, "norm", None) if rec.norm is not None else None
        weight, gain, mix, s_gain, s_mix = self.packed()
        proj = normed_project(x, norm, weight.to(x.dtype))
        a, dt = rec.outputs[0].act, proj.dtype
        # activated part by part, as the presets did: one activation over the whole
        # projection cost DFC x4 +5.5% compiled inference and +1.8% compiled training (CPU
        # time against 1549c84's presets; part by part +0.8% and -0.5%: docs/optimiser.md)
        write = gain.to(dt) + s_gain.to(dt) * act(a, proj[..., 0])  # (B, T, n)
        both = mix.to(dt) + s_mix.to(dt) * act(a, proj[..., 1:])  # [READ | RES], (B, T, n, R + n)
        return self._assemble(None, write, None, both)

    def _mhc_step(self, x: Tensor) -> Tensor:
        """M of mHC (arXiv 2512.24880 Eqs. 5-9) read straight from φ_pre, φ_post, φ_res as
        kept (nC, n), (nC, n), (nC, n²): one GEMM x [φ_pre | φ_post | φ_res] with the RMS norm
        after it (§4.3), whose res logits are H_res row-major, as b_res is, so Sinkhorn runs on
        them as they come and RES = H_resᵀ is a view that the assembly copies. The same sums
        as the views' path (which reorders φ_res's columns and b_res to RES, runs Sinkhorn on
        the transpose and transposes back): the same M, without a gather of φ_res nor two
        transposed copies per call."""
        n, dt = self.n, x.dtype
        z = x.flatten(-2)  # (B, T, nC), a view
        # (2n + n², nC): F.linear's layout, the GEMMs the general path makes (x @ [φ...] made
        # the backward's GEMMs slower: 11.2 against 10.6 ms per compiled coefficient forward +
        # backward at 8 x 128 x 4 x 256, one thread, 7 interleaved rounds)
        phi = torch.cat([self.phi_pre.t(), self.phi_post.t(), self.phi_res.t()]).to(dt)
        proj = F.linear(z, phi) * torch.rsqrt(z.pow(2).mean(-1, keepdim=True) + self.eps)
        pre, post, res = proj.split([n, n, n * n], dim=-1)
        read = torch.sigmoid(pre * self.alpha_pre.to(dt) + self.b_pre.to(dt))
        write = 2 * torch.sigmoid(post * self.alpha_post.to(dt) + self.b_post.to(dt))
        logits = res * self.alpha_res.to(dt) + self.b_res.to(dt).reshape(n * n)
        h_res = sinkhorn_paper(logits.unflatten(-1, (n, n)), self.iters)  # (B, T, n, n)
        return self._assemble(read.unsqueeze(-1), write, h_res.transpose(-1, -2))

    def packed(self) -> tuple[Tensor, ...]:
        """The affine generator's terms in M's column order: the weight (1 + R + n, C) of
        [write | read | res], the write's bias (n,), [read | res]'s bias (n, R + n), the
        write's scale and [read | res]'s (one scalar when shared, else one per column)."""
        if self.params_as != "outputs" and PRESET_PARAMS[self.params_as].packed is not None:
            return PRESET_PARAMS[self.params_as].packed(self)
        views = self.views()
        vr, vw, vs = views["read"], views["write"], views["res"]
        R, n = self.reads, self.n
        s_mix = vr.scale if vs.scale is vr.scale else torch.cat(
            [vr.scale.expand(R), vs.scale.expand(n)])
        return (torch.cat([vw.weight, vr.weight, vs.weight]), vw.bias.squeeze(-1),
                torch.cat([vr.bias, vs.bias], dim=-1), vw.scale, s_mix)

    def _assemble(self, read: Tensor | None, write: Tensor, res: Tensor | None,
                  both: Tensor | None = None) -> Tensor:
        """M = [[0, OUT], [READ, RES]] from read (B, T, n, R), write (B, T, n), res (B, T, n, n)
        (or both = [READ | RES]): OUT is a row (R = 1) or, for a split state, the diagonal
        diag(write) (R = m = n)."""
        R = self.reads
        out = write.unsqueeze(-2) if R == 1 else torch.diag_embed(write)  # (B, T, R, n)
        top = torch.cat([out.new_zeros(out.shape[:-1] + (R,)), out], dim=-1)
        both = torch.cat([read, res], dim=-1) if both is None else both
        return torch.cat([top, both], dim=-2)

    def _step(self, ys: dict[str, Tensor], views: dict[str, View], z: Tensor, x: Tensor,
              h: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        n, rec = self.n, self.rec
        lead = x.shape[:-2]
        read_rec, write_rec, res_rec = rec.output("read"), rec.output("write"), rec.output("res")
        inline = rec.inline_read()
        if inline or read_rec is None:
            read = x.new_ones(*lead, n) if read_rec is None else x.new_zeros(*lead, n)
        elif self.reads > 1:  # m values per fraction (FC's Y), (B, T, n, m)
            read = self.outs["read"].activate(ys["read"], views["read"], -2)
        else:
            read = self._per_stream(read_rec, ys["read"], views["read"])
            if read_rec.combine == "mean":
                read = read / n
        channel = write_rec is not None and write_rec.per == "channel"
        if write_rec is None or channel:  # per channel: OUT is 0, the weights come apart
            write = x.new_zeros(*lead, n) if channel else x.new_ones(*lead, n)
        else:
            write = self._per_stream(write_rec, ys["write"], views["write"])
        if res_rec is None:
            res = torch.eye(n, dtype=x.dtype, device=x.device).expand(*lead, n, n)
        else:
            res = self.outs["res"].res(ys["res"], views["res"], self.flat)
        if read.dim() == x.dim() - 1:  # one read column
            read = read.unsqueeze(-1)
        m = self._assemble(read, write, res).to(h.dtype)
        if not inline:
            return m
        if read_rec is None:  # a per-channel write made the read inline: read 1 per stream
            xr = x.sum(dim=-2)
        else:
            xr = self._read(read_rec, ys["read"], views["read"], z, x)
        if channel:
            return xr.to(h.dtype), m, self._channel(write_rec, ys["write"],
                                                    views["write"]).to(h.dtype)
        return xr.to(h.dtype), m


def is_mhc(rec: Generator) -> bool:
    """rec is mHC's generator (hcdsl/schemes/mhc.py: flat input, an unweighted RMS norm,
    read = sigmoid, write = 2 sigmoid, res = Sinkhorn-Knopp in the paper's order, each with a
    scale and a bias, one linear projection each), whatever its numbers (init, α, b, ε, iters)."""
    outs = [rec.output(r) for r in ("read", "write", "res")]
    if rec.norm is None or any(o is None for o in outs) or len(rec.outputs) != 3:
        return False
    read, write, res = outs
    c = res.constraint
    if c is None or any(not isinstance(o.bias, float) or o.scale is None for o in outs):
        return False

    def out(o: GenOut, **kw: object) -> GenOut:
        return GenOut(role=o.role, proj=GenProj(init_std=o.proj.init_std), scale=o.scale,
                      bias=o.bias, **kw)

    return rec == Generator(
        input="flat", norm=GenNorm(kind="rmsnorm", weight="none", eps=rec.norm.eps),
        outputs=(out(read, act="sigmoid"), out(write, act="double_sigmoid"),
                 out(res, constraint=Constraint(kind="sinkhorn", order="paper",
                                                iters=c.iters))))


def read_weights(gen: GeneratorCoef, h: Tensor) -> tuple[Tensor, Tensor]:
    """What the read (role step) or readout of `gen` weighs each stream of H by, for the
    numeric unfolding (hcdsl/proofs/unfold.py): (w, s), both (B, T, n), such that the layer's
    input (or h^L) ≈ Σ_t w_t s_t H_t. Per-channel weights are averaged over the channels;
    `combine = mean` is in w; s is 1 for `source = state`, else the least-squares scale that
    maps each stream H_t to its normalised form (a norm read as a per-token scale, as HC
    Eq. 16 reads Post-Norm)."""
    rec = gen.rec.output("readout" if gen.role == "readout" else "read")
    x = h.to(torch.promote_types(h.dtype, torch.float32))
    n = gen.n
    if rec is None:  # no read generated: every stream read with weight 1
        return x.new_ones(x.shape[:-1]), x.new_ones(x.shape[:-1])
    views = gen.views()
    ys, z = gen._logits(x, views)  # z: normalised unless every source is the raw state
    y, v = ys[rec.role], views[rec.role]
    w = (gen._channel(rec, y, v).mean(-1) if rec.per == "channel"
         else gen._per_stream(rec, y, v))
    if rec.combine == "mean":
        w = w / n
    if rec.source == "state":
        return w, torch.ones_like(w)
    normed = z.unflatten(-1, (n, gen.width)) if gen.flat else z
    scale = (normed * x).sum(-1) / (x * x).sum(-1).clamp_min(torch.finfo(x.dtype).tiny)
    return w, scale


def channel_write(o: Tensor, w: Tensor) -> Tensor:
    """H'_t = w_t ⊙ o: o (B, T, C) or (B, T, 1, C), w (B, T, n, C)."""
    return w * (o if o.dim() == w.dim() else o.unsqueeze(-2))
