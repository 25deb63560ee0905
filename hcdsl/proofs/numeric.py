"""Both specs as numbers: reference models of the canonical IRs in float64, with their
parameters made equal exactly where the proof ties them (layers by position, every other
module by its identity) and, for the "learned" question, moved off their init the same way
wherever they are tied."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from hcdsl.backends import ReferenceModel
from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.nn.layers import Opaque
from hcdsl.nn.assemble import assemble
from hcdsl.nn.modules import attr_name
from hcdsl.proofs.identity import Identity
from hcdsl.proofs.symbolic import layer_position, signature


@contextmanager
def one_thread() -> Iterator[None]:
    """The prover's models are tiny: one thread is faster, and never oversubscribes a
    machine already busy (the setting is restored)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class _ExternStandIn(nn.Module):
    """An extern layer's stand-in: layers are uninterpreted, so any function will do; a
    small MLP of the sum of its inputs (one per port)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.body = Opaque(dim)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.body(sum(xs[1:], xs[0]))


def _stand_in(dim: int, out_scale: float = 1.0, **options: object) -> nn.Module:
    """Any function will do (out_scale is accepted so no warning is raised: a stand-in's
    init is irrelevant)."""
    return _ExternStandIn(dim)


class StandIn(nn.Module):
    """Any function will do for an uninterpreted layer: a small MLP of the sum of its ports'
    projections, with biases (so T(0) != 0), and its value projection when it has a tap."""

    def __init__(self, p: n.Layer, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        d = p.dim
        ports = [q for q in p.in_ports if q not in ("vres", "vmix")]
        self.ports, self.taps = ports, p.taps
        self.proj = nn.ParameterList(
            [nn.Parameter(torch.randn(d, d, generator=g) / d ** 0.5) for _ in ports])
        self.w1 = nn.Parameter(torch.randn(d, d, generator=g) / d ** 0.5)
        self.b1 = nn.Parameter(torch.randn(d, generator=g))
        self.w2 = nn.Parameter(torch.randn(d, d, generator=g) / d ** 0.5)
        self.b2 = nn.Parameter(torch.randn(d, generator=g))

    def forward(self, *xs: torch.Tensor):  # noqa: ANN201 - a tensor, or (tensor, values)
        h = sum(x @ w for x, w in zip(xs, self.proj))
        y = torch.tanh(h @ self.w1 + self.b1) @ self.w2 + self.b2
        return (y, xs[-1] @ self.proj[-1]) if self.taps else y


def reference(ir: IR, seed: int, stand_ins: bool = False) -> ReferenceModel:
    """A float64 reference model of ir; extern layers become fixed small MLPs, and with
    stand_ins every layer becomes a StandIn seeded by its position."""
    externs = {ir.payload(v).kind for v in ir.g.nodes
               if isinstance(ir.payload(v), n.Layer) and ir.payload(v).extern}
    parts = assemble(ir, ir, {kind: _stand_in for kind in externs}, seed,
                     torch.float64)  # inits rounded once, to float64
    if stand_ins:
        for k, v in _layers(ir).items():
            setattr(parts, attr_name(v), StandIn(ir.payload(v), seed * 1000 + k))
    return ReferenceModel(ir, parts).double().train(False)


@dataclass
class Pair:
    a: ReferenceModel
    b: ReferenceModel


def _layers(ir: IR) -> dict[int, str]:
    out, count = {}, 0
    for v in ir.order():
        if isinstance(ir.payload(v), n.Layer):
            count += 1
            out[layer_position(ir, v, count)] = v
    return out


def _pids(ir: IR, ident: Identity) -> dict[str, str]:
    """module attribute -> parameter identity, for every module that is not a layer."""
    return {attr_name(v): ident.pid(v, ir.payload(v), attr_name(v)) for v in ir.g.nodes
            if ir.payload(v).has_module and not isinstance(ir.payload(v), n.Layer)}


def _noise(pid: str, shape: torch.Size, scale: float) -> torch.Tensor:
    seed = int.from_bytes(hashlib.sha1(pid.encode()).digest()[:6], "little")
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64) * scale


def tied_pair(ia: IR, ib: IR, ia_ident: Identity, ib_ident: Identity, seed: int,
              perturb: bool, layer_gain: float, stand_ins: bool = False) -> Pair:
    """Both models, B's tied parameters copied from A's; perturb: every non-layer parameter
    moved off its init by noise keyed by its identity (tied ones move together);
    layer_gain: layer weight matrices scaled so the layers' outputs are O(1)."""
    ma, mb = reference(ia, seed, stand_ins), reference(ib, seed, stand_ins)
    with torch.no_grad():
        la, lb = _layers(ia), _layers(ib)
        for k, vb in lb.items():
            va = la.get(k)
            if va is not None and signature(ia.payload(va)) == signature(ib.payload(vb)):
                _copy(ma.mod(va), mb.mod(vb))
            else:  # a different function T_k (kind, options, extern name): its own weights
                for name, param in mb.mod(vb).named_parameters():
                    param.add_(_noise(f"layer/{signature(ib.payload(vb))}/{k}/{name}",
                                      param.shape, 0.3))
        pa, pb = _pids(ia, ia_ident), _pids(ib, ib_ident)
        by_pid = {pid: attr for attr, pid in pa.items()}
        for attr, pid in pb.items():
            if pid in by_pid:
                _copy(getattr(ma, by_pid[pid]), getattr(mb, attr))
        if perturb:
            for model, pids in ((ma, pa), (mb, pb)):
                for attr, pid in pids.items():
                    for name, param in getattr(model, attr).named_parameters():
                        param.add_(_noise(f"{pid}/{name}", param.shape, 0.3))
        if layer_gain != 1.0:
            for model, layers in ((ma, la), (mb, lb)):
                for v in layers.values():
                    for param in model.mod(v).parameters():
                        if param.dim() == 2:
                            param.mul_(layer_gain)
    return Pair(ma, mb)


def _copy(src: nn.Module, dst: nn.Module) -> None:
    a, b = src.state_dict(), dst.state_dict()
    if a.keys() == b.keys() and all(a[k].shape == b[k].shape for k in a):
        dst.load_state_dict(a)


def tokens(vocab: int, seed: int, batch: int = 2, length: int = 8) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


def vocab_of(ir: IR) -> int:
    return next(ir.payload(v).vocab for v in ir.g.nodes if isinstance(ir.payload(v), n.Embed))


def input_of(ir: IR) -> tuple[str, int]:
    """("tokens", vocab), or ("hidden", width) for a body (`input = hidden`)."""
    width = next(ir.payload(v).width for v in ir.g.nodes if isinstance(ir.payload(v), n.Input))
    return ("hidden", width) if width else ("tokens", vocab_of(ir))


def model_input(ir: IR, seed: int, batch: int = 2, length: int = 8) -> torch.Tensor:
    """Random tokens, or random hidden states (float64) for a body; at most as many tokens
    as a learned position table has rows (`pos = learned` with a small `context`)."""
    kind, size = input_of(ir)
    table = [ir.payload(v).positions for v in ir.g.nodes
             if isinstance(ir.payload(v), n.Embed) and ir.payload(v).positions]
    length = min([length, *table])
    if kind == "tokens":
        return tokens(size, seed, batch, length)
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, length, size, generator=g, dtype=torch.float64)
