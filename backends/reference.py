"""The reference backend: a plain eager interpreter of the IR, written to be obviously right.

It walks the IR in order and evaluates each node with explicit loops over streams. It holds
the same modules, under the same names, as the fx backend (hcdsl.nn.parts), so the two can
be compared on one state_dict.
"""

from __future__ import annotations

import torch
from torch import nn

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.nn.parts import attr_name


class ReferenceModel(nn.Module):
    def __init__(self, ir: IR, parts: nn.Module) -> None:
        super().__init__()
        self.ir = ir
        for name, module in parts.named_children():
            self.add_module(name, module)

    def mod(self, node_id: str) -> nn.Module:
        return getattr(self, attr_name(node_id))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.run(tokens)[self.ir.output()]

    def run(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every node's value, by IR node id (tests and `hcdsl unfold` read the states)."""
        assert tokens.dim() == 2, f"tokens must be (batch, time), got {tuple(tokens.shape)}"
        env: dict[str, torch.Tensor] = {}
        for v in self.ir.order():
            p = self.ir.payload(v)
            x = {port: env[src] for port, src in self.ir.inputs(v).items()}
            env[v] = self.eval_node(v, p, x, tokens)
        return env

    def eval_node(self, v: str, p: n.Node, x: dict[str, torch.Tensor],
             tokens: torch.Tensor) -> torch.Tensor:
        if isinstance(p, n.Input):
            return tokens
        if isinstance(p, n.Output):
            return x["x"]
        if isinstance(p, (n.Embed, n.Norm, n.Unembed, n.NormStreams, n.LowRank)):
            return self.mod(v)(x["x"])
        if isinstance(p, n.Layer):
            return self.mod(v)(*[x[port] for port in p.ports()])
        if isinstance(p, n.ConstCoef):
            return self.mod(v)()
        if isinstance(p, n.Tap):
            return x["x"][p.index]
        if isinstance(p, (n.ManifoldCoef, n.LearnedCoef, n.DenseCoef, n.TemplateCoef)):
            return self.mod(v)(*[x[port] for port in p.ports()])
        if isinstance(p, n.Split):
            B, T, d = x["x"].shape
            return x["x"].reshape(B, T, p.parts, d // p.parts)  # (B, T, parts, d/parts)
        if isinstance(p, n.Merge):
            h = x["x"]  # (B, T, S, w)
            return torch.cat([h[:, :, s, :] for s in range(h.shape[2])], dim=-1)
        if isinstance(p, n.Stack):
            parts = [x[port] for port in p.ports()]
            parts = [t.unsqueeze(2) if t.dim() == 3 else t for t in parts]
            return torch.cat(parts, dim=2)
        if isinstance(p, n.Copy):
            return x["x"].expand(-1, -1, p.n, -1)  # (B, T, 1, w) -> (B, T, n, w)
        if isinstance(p, n.SumStreams):
            return x["x"].sum(dim=2, keepdim=True)  # (B, T, S, w) -> (B, T, 1, w)
        if isinstance(p, n.InvStd):
            h = x["x"]
            return h / h.std(dim=-1, unbiased=False, keepdim=True)
        if isinstance(p, n.Add):
            total = x["s0"]
            for port in p.ports()[1:]:
                total = total + x[port]
            return total
        if isinstance(p, n.Mix):
            return self.mix(p, x["x"], x["coef"])
        raise NotImplementedError(f"reference backend: no rule for {p.op}")

    @staticmethod
    def mix(p: n.Mix, h: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """y_c = sum_s M[r0 + s, c0 + c] * h_s, one output stream at a time."""
        if h.dim() == 3:
            h = h.unsqueeze(2)
        (r0, r1), (c0, c1) = p.rows, p.cols
        assert r1 - r0 == h.shape[2], f"mix: {r1 - r0} rows for {h.shape[2]} streams"
        out = []
        for c in range(c0, c1):
            acc = torch.zeros_like(h[:, :, 0, :])
            for s in range(r1 - r0):
                w = m[..., r0 + s, c]  # scalar, or (B, T) when dynamic
                acc = acc + (w.unsqueeze(-1) if m.dim() == 4 else w) * h[:, :, s, :]
            out.append(acc)
        return torch.stack(out, dim=2)  # (B, T, c1 - c0, w)
