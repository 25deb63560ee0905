"""A numeric counterexample: both specs on the reference backend, the same tokens, the same
weights for corresponding modules (layers matched by position, other modules by node id)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hcdsl.backends import ReferenceModel
from hcdsl.errors import CompileError
from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.nn.modules import attr_name, build_parts
from hcdsl.proofs.source import Source, raw_ir
from hcdsl.proofs.symbolic import layer_position


@dataclass
class Witness:
    tokens: list[int]
    out_a: list[float]  # a few logits of A at the last position
    out_b: list[float]
    max_diff: float
    note: str = ""

    def render(self) -> str:
        fmt = lambda xs: "[" + ", ".join(f"{x:+.6f}" for x in xs) + ", ...]"  # noqa: E731
        lines = [
            f"  input tokens: {self.tokens}",
            f"  A logits[-1, :4]: {fmt(self.out_a)}",
            f"  B logits[-1, :4]: {fmt(self.out_b)}",
            f"  max |A - B| over all logits: {self.max_diff:.3e}",
        ]
        if self.note:
            lines.append(f"  ({self.note})")
        return "\n".join(lines)


def _compile(src: Source, seed: int) -> tuple[torch.nn.Module, IR]:
    ir = raw_ir(src)
    model = ReferenceModel(ir, build_parts(ir, seed=seed))
    return model.double(), ir


def _keys(ir: IR) -> dict[str, str]:
    """Module attribute name -> correspondence key."""
    out = {}
    count = 0
    for v in ir.order():
        p = ir.payload(v)
        if isinstance(p, n.Layer):
            count += 1
            out[attr_name(v)] = f"layer{layer_position(ir, v, count)}"
        elif p.has_module:
            out[attr_name(v)] = v
    return out


def numeric_witness(a: Source, b: Source, *, at_init: bool = False, seed: int = 0,
                    tokens: int = 8) -> Witness:
    try:
        ma, ia = _compile(a, seed)
        mb, ib = _compile(b, seed)
    except CompileError as exc:  # extern layers without factories: no numbers to show
        return Witness([], [], [], float("nan"), f"no numeric witness: {exc}")
    notes = []
    ka, kb = _keys(ia), _keys(ib)
    by_key = {key: name for name, key in ka.items()}
    copied = 0
    with torch.no_grad():
        for name, key in kb.items():
            src = by_key.get(key)
            if src is None:
                continue
            sa, sb = getattr(ma, src).state_dict(), getattr(mb, name).state_dict()
            if sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape for k in sa):
                getattr(mb, name).load_state_dict(sa)
                copied += 1
        if not at_init:
            # learned connections are free parameters: move them off their init (the same
            # draw for the same node id), so a difference in parametrisation shows
            gen = torch.Generator().manual_seed(seed + 7)
            perturbed = 0
            for model in (ma, mb):
                gen.manual_seed(seed + 7)
                for name, param in sorted(model.named_parameters()):
                    if any(part in name for part in ("static_", "w_gain", "w_mix")):
                        noise = torch.randn(param.shape, generator=gen, dtype=param.dtype)
                        param.add_(0.3 * noise)
                        perturbed += 1
            if perturbed:
                notes.append("learned connection weights perturbed off their init")
        # bigger layer weights make the layers' contributions visible in the logits
        for model in (ma, mb):
            for name, param in model.named_parameters():
                if "embed" not in name and "head" not in name and param.dim() == 2 \
                        and "static_" not in name:
                    param.mul_(10.0)
    notes.append("layer weights x10 from their init so layer outputs are O(1)")
    gen = torch.Generator().manual_seed(seed)
    vocab = next(ia.payload(v) for v in ia.of_type(n.Embed)).vocab
    x = torch.randint(0, vocab, (1, tokens), generator=gen)
    with torch.no_grad():
        ya, yb = ma(x), mb(x)
    if ya.shape != yb.shape:
        return Witness(x[0].tolist(), ya[0, -1, :4].tolist(), yb[0, -1, :4].tolist(),
                       float("inf"), "outputs of different shapes")
    return Witness(x[0].tolist(), ya[0, -1, :4].tolist(), yb[0, -1, :4].tolist(),
                   float((ya - yb).abs().max()), "; ".join(notes))
