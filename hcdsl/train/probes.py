"""Looking inside while training: what the connections learned, and whether layers collapse.

Every probe runs on a fresh CPU copy of the model (built from the run's Compilation, which
compiled the spec once for the whole run, and loaded with the run's current weights, in
memory; float32, no autocast), on a fixed batch of validation sequences, so it never
disturbs training (RNG forked) and works the same for one process, DDP and FSDP.

(a) connections: C^(0), the dense connection matrix of the HC paper (arXiv 2409.19606,
    Eqs. 20-23): C0[k, j] = weight of layer j's output (j = 0: the embedding) in layer k's
    input (k = L + 1: the readout), from hcdsl.proofs.unfold.unfold_numeric, averaged over
    the probe tokens for dynamic connections. Families it cannot unfold are recorded as
    "not available: reason".
(b) collapse: the HC paper's representation-collapse measure (its Fig. 3): the cosine
    similarity between the input of each layer and the input of the previous layer, per
    token; median and 5th/95th percentiles over tokens. Inputs are what each layer module
    receives (after its pre-norm), captured by forward pre-hooks; attention's is its query.
(c) mHC stability (arXiv 2512.24880's measures of the residual stream's conditioning):
    from the output M = [[0, H_post], [H_pre^T, H_res^T]] of every generator whose residual
    mix is constrained to be doubly stochastic (`mhc`, or a generator with a sinkhorn,
    permutations or kronecker constraint): max_i |row sum_i(H_res) - 1| and max_j |column
    sum_j(H_res) - 1|, and of the composed residual map P = H_res^L ... H_res^1 the forward
    gain max_i sum_j |P_ij| and backward gain max_j sum_i |P_ij|; each averaged over tokens.
(d) generators: for every layer's generator (dynamic HC, mHC, any `generator { ... }`), the
    mean and std over tokens and streams of its read weights (READ), write weights (OUT),
    and of RES's diagonal and off-diagonal entries, with RES's row and column sum deviations
    (max over streams, averaged over tokens).
(e) history (DenseFormer, MUDD, attention residuals, Multi-Head AttnRes, DCA: a `state =
    history` connection or its preset): for every aggregate, in execution order, the weight
    of each history entry (the embedding, then the earlier outputs) in each way (MUDD's q, k,
    v, r; DCA's q, k, v; else x), averaged over the channels (a channel group's weight
    counted by its width: Multi-Head AttnRes's H softmaxes, DCA's per-channel b) and then
    over the tokens; with the layer that reads the aggregate (L + 1: the readout).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import hcdsl
from hcdsl.compiler import Compilation
from hcdsl.ir.nodes import DenseCoef as DenseNode
from hcdsl.ir.nodes import Layer
from hcdsl.nn.dense import DenseCoef as DenseModule
from hcdsl.nn.generator import GeneratorCoef
from hcdsl.nn.modules import attr_name

UNFOLD_TOKENS = 2  # sequences unfold_numeric runs (its float64 interpreter is slow)


def layer_ids(model: nn.Module) -> list[str]:
    """IR node ids of the model's layers ("L1.attn", ...), in IR order."""
    ir = model.hc_ir
    return [v for v in ir.order() if isinstance(ir.payload(v), Layer)]


def probe(spec: str | Path | Compilation, state: dict[str, torch.Tensor], tokens: torch.Tensor,
          seed: int = 0, matrices: bool = True) -> dict:
    """All three probes on `tokens` (B, T) with the weights `state` (see the module doc)."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        model = hcdsl.compile(spec, seed=seed, device="cpu")
        model.load_state_dict(state)
        model.eval()
        inputs, coefs, stochastic, dense = _capture(model, tokens)
        out = {"collapse": collapse(inputs),
               "mhc": mhc_stability([m for m, ds in zip(coefs, stochastic) if ds]),
               "generators": generator_stats(coefs),
               "history": history_stats(model, dense)}
        if matrices:
            out["connections"] = connections(spec, state, tokens[:UNFOLD_TOKENS], seed)
    return out


def doubly_stochastic(module: nn.Module) -> bool:
    """True for a coefficient module whose H_res is constrained to be doubly stochastic."""
    res = module.rec.output("res") if isinstance(module, GeneratorCoef) else None
    return res is not None and res.constraint is not None


def _capture(model: nn.Module, tokens: torch.Tensor) \
        -> tuple[list[torch.Tensor], list[torch.Tensor], list[bool],
                 list[tuple[str, torch.Tensor]]]:
    """The layers' inputs, every step generator's M (B, T, 1 + n, 1 + n) in execution
    order, each with whether its H_res is doubly stochastic, and every history aggregate's
    (IR node id, weights (sources, ways) averaged over channel groups and tokens)."""
    inputs: list[torch.Tensor] = []
    coefs: list[torch.Tensor] = []
    stochastic: list[bool] = []
    dense: list[tuple[str, torch.Tensor]] = []
    ids = {id(getattr(model, attr_name(v))): v for v in model.hc_ir.order()
           if isinstance(model.hc_ir.payload(v), DenseNode)}

    def history(module: nn.Module, args: tuple, kwargs: dict, _out: torch.Tensor) -> None:
        x = args[0] if args else kwargs.get("x")
        a = module.weights(x).detach().float()  # (S, W) or (B, T, S, W), [groups]
        if module.groups > 1:
            a = a.mean(dim=-1)  # groups of equal width D / G: the channels' mean
        dense.append((ids[id(module)], a.mean(dim=(0, 1)) if a.dim() == 4 else a))

    def pre(_module: nn.Module, args: tuple, kwargs: dict) -> None:
        x = args[0] if args else next(iter(kwargs.values()))
        inputs.append(x.detach().float())

    def post(module: nn.Module, _args: tuple, out: torch.Tensor | tuple) -> None:
        m = out if isinstance(out, torch.Tensor) else out[1]  # (x, M[, W]): a read inline
        coefs.append(m.detach().float())
        stochastic.append(doubly_stochastic(module))

    handles = [getattr(model, attr_name(v)).register_forward_pre_hook(pre, with_kwargs=True)
               for v in layer_ids(model)]
    handles += [m.register_forward_hook(post) for m in model.modules()
                if isinstance(m, GeneratorCoef) and m.role == "step"]
    handles += [m.register_forward_hook(history, with_kwargs=True) for m in model.modules()
                if isinstance(m, DenseModule)]
    try:
        model(tokens)
    finally:
        for h in handles:
            h.remove()
    return inputs, coefs, stochastic, dense


WAYS = {1: ["x"], 3: ["q", "k", "v"], 4: ["q", "k", "v", "r"]}  # a history's `ways`


def history_stats(model: nn.Module, dense: list[tuple[str, torch.Tensor]]) -> list[dict] | None:
    """None without a history; else one entry per aggregate (execution order): its IR node,
    the layer that reads it (1-based, in execution order; L + 1: the readout), its ways, and
    weights[s][w]: the weight of history entry s in way w (see the module doc, (e))."""
    if not dense:
        return None
    ir = model.hc_ir
    layers = {v: k for k, v in enumerate(layer_ids(model), start=1)}
    out = []
    for node, a in dense:
        ways = a.shape[1]
        out.append({"node": node, "reads_into": _first_reader(ir, node, layers),
                    "ways": WAYS.get(ways, [str(w) for w in range(ways)]),
                    "weights": [[round(float(x), 6) for x in row] for row in a]})
    return out


def _first_reader(ir: object, v: str, layers: dict[str, int]) -> int:
    """The first layer (by position) that v's value reaches; len(layers) + 1: the readout."""
    seen, todo, found = {v}, [v], []
    while todo:
        for u, _ in ir.users(todo.pop()):  # type: ignore[attr-defined]
            if u in layers:
                found.append(layers[u])
            elif u not in seen:
                seen.add(u)
                todo.append(u)
    return min(found, default=len(layers) + 1)


def collapse(inputs: list[torch.Tensor]) -> list[dict[str, float]]:
    """One entry per layer k >= 2 (in execution order): cos(x_k, x_(k-1)) over tokens."""
    out = []
    for k in range(1, len(inputs)):
        cos = F.cosine_similarity(inputs[k], inputs[k - 1], dim=-1).flatten()
        q = torch.quantile(cos, torch.tensor([0.05, 0.5, 0.95]))
        out.append({"layer": k + 1, "p05": float(q[0]), "median": float(q[1]),
                    "p95": float(q[2])})
    return out


def mhc_stability(coefs: list[torch.Tensor]) -> dict | None:
    """None without mHC; else per-layer deviations from doubly stochastic and the gains."""
    if not coefs:
        return None
    rows, cols, prod = [], [], None
    for m in coefs:
        h_res = m[..., 1:, 1:].transpose(-1, -2)  # (B, T, n, n)
        rows.append(float((h_res.sum(-1) - 1).abs().amax(-1).mean()))
        cols.append(float((h_res.sum(-2) - 1).abs().amax(-1).mean()))
        prod = h_res if prod is None else h_res @ prod
    return {"row_dev": rows, "col_dev": cols,
            "max_row_dev": max(rows), "max_col_dev": max(cols),
            "gain_fwd": float(prod.abs().sum(-1).amax(-1).mean()),
            "gain_bwd": float(prod.abs().sum(-2).amax(-1).mean())}


def generator_stats(coefs: list[torch.Tensor]) -> list[dict[str, float]] | None:
    """None without generators; else one entry per step generator (execution order): the
    mean and std of READ (M[1:, 0]), OUT (M[0, 1:]), RES's diagonal and off-diagonal entries,
    and RES's mean max |row sum - 1| and |column sum - 1| (the doubly-stochastic error; RES
    = H_resᵀ, so these are mHC's column and row deviations swapped)."""
    if not coefs:
        return None
    out = []
    for k, m in enumerate(coefs):
        n = m.shape[-1] - 1
        read, write, res = m[..., 1:, 0], m[..., 0, 1:], m[..., 1:, 1:]
        eye = torch.eye(n, dtype=torch.bool)
        diag, off = res[..., eye], res[..., ~eye]
        entry = {"step": k + 1,
                 "read_mean": float(read.mean()), "read_std": float(read.std(correction=0)),
                 "write_mean": float(write.mean()),
                 "write_std": float(write.std(correction=0)),
                 "res_diag_mean": float(diag.mean()),
                 "res_off_mean": float(off.mean()) if n > 1 else 0.0,
                 "res_row_dev": float((res.sum(-1) - 1).abs().amax(-1).mean()),
                 "res_col_dev": float((res.sum(-2) - 1).abs().amax(-1).mean())}
        out.append(entry)
    return out


def connections(spec: str | Path | Compilation, state: dict[str, torch.Tensor],
                tokens: torch.Tensor, seed: int = 0) -> dict:
    """{"C0": (L+2) x (L+2) nested list, "kinds": [...], "note": ...} or
    {"unavailable": "not available: reason"}."""
    from hcdsl.proofs.unfold import unfold_numeric

    try:
        u = unfold_numeric(spec, checkpoint=state, tokens=tokens, seed=seed)
        note = u.note.replace("the given weights", "the run's weights")
        c0 = [[round(float(x), 6) for x in row] for row in u.C0]
        return {"C0": c0, "kinds": list(u.kinds), "note": note}
    except Exception as exc:  # noqa: BLE001 - any family unfold cannot do is recorded, not fatal
        return {"unavailable": f"not available: {type(exc).__name__}: {exc}"}
