"""The `hyper-connections` package's connections (lucidrains, PyPI `hyper-connections`, read at
0.4.11) around the same attention and MLP blocks, for `hcdsl bench` to run beside hcdsl's.

Built from the package's documented usage (its README):

    init_hyper_conn, expand_stream, reduce_stream = get_init_and_expand_reduce_stream_functions(n)
    block = init_hyper_conn(dim=d, branch=branch, layer_index=i)   # one per layer
    x = expand_stream(x); for block in blocks: x = block(x); x = reduce_stream(x)

- DHC x n: `get_init_and_expand_reduce_stream_functions(n)`: `HyperConnections` (HC paper
  Algorithm 2, dynamic, tanh; the package normalises with an RMSNorm where the paper has a
  LayerNorm);
- FC m (dynamic): `get_init_and_expand_reduce_stream_functions(1, num_fracs=m)` (FC paper,
  arXiv 2503.14125);
- mHC x n: `mc_get_init_and_expand_reduce_stream_functions(n)`:
  `ManifoldConstrainedHyperConnections`, 20 Sinkhorn-Knopp iterations in the plain domain,
  unrolled (note: it computes H_pre, H_res from each stream's own RMS-normalised state, where
  the mHC paper, arXiv 2512.24880 §4.2, projects the flattened n·C state);
- the baseline: the same call with `disable=True`, which the package documents "to compare
  hyper connections to plain residual without changing the code": `Residual`,
  x + branch(x), i.e. Pre-Norm.

The branch of every layer is hcdsl's own pre-norm and layer module (attention or MLP) with the
hcdsl model's weights copied in, so the package's models differ from hcdsl's only in the
connection code. Streams live in the batch axis ((B·n, T, d)), as the package does it.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable

import torch
from torch import nn

from hcdsl.ir import nodes as n
from hcdsl.nn.layers import Attention, Embedding, Unembed, make_norm
from hcdsl.nn.modules import LAYER_MODULES, attr_name
from hcdsl.spec import ModelSpec

PACKAGE = "hyper-connections"
MODULE = "hyper_connections"
MISSING = "hyper-connections not installed: pip install hyper-connections"


def installed() -> bool:
    return importlib.util.find_spec(MODULE) is not None


def version() -> str | None:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as v

    try:
        return v(PACKAGE)
    except PackageNotFoundError:
        return None


def counterpart(family: str) -> tuple[str, int] | None:
    """The package's variant for an hcdsl family: ('hc', n), ('fc', m), ('mhc', n), or None
    (the package's connections are always dynamic: no SHC/SFC; no MUDD, DenseFormer, ...)."""
    m = re.fullmatch(r"(DHC|DFC|mHC) x(\d+)", family)
    if m is None:
        return None
    return {"DHC": "hc", "DFC": "fc", "mHC": "mhc"}[m.group(1)], int(m.group(2))


def describe(kind: str | None, k: int) -> str:
    if kind is None:
        return "residual (disable=True)"
    return {"hc": f"DHC x{k}", "fc": f"FC m={k}", "mhc": f"mHC x{k}"}[kind]


# the layer kinds the comparison builds (its models are blocks of attention and MLP)
PACKAGE_LAYERS = ("attention", "mlp")


class UnsupportedSpec(ValueError):
    """The spec has layers the package comparison cannot build (only attention and mlp)."""


class Branch(nn.Module):
    """What the package wraps: the layer's own pre-norm, then the layer."""

    def __init__(self, norm: nn.Module, layer: nn.Module) -> None:
        super().__init__()
        self.norm, self.layer = norm, layer
        self.attention = isinstance(layer, Attention)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        return self.layer(h, h, h) if self.attention else self.layer(h)


def _layer(spec: ModelSpec, index: int) -> nn.Module:
    layer = spec.sequence[index]
    if layer.extern or layer.kind not in PACKAGE_LAYERS:
        raise UnsupportedSpec(f"layer '{layer.name}' is {layer.kind}: the {PACKAGE} comparison "
                              "builds attention and mlp layers only")
    # hcdsl's own module of the kind, at out_scale 1 and no attention dropout
    return LAYER_MODULES[layer.kind](n.Layer(layer.name, layer.kind, layer.args, spec.dim,
                                             layer.in_ports, 1.0))


def _functions(kind: str | None, k: int) -> tuple[Callable[..., nn.Module], nn.Module, nn.Module]:
    import hyper_connections as hc

    if kind is None:
        return hc.get_init_and_expand_reduce_stream_functions(1, disable=True)
    if kind == "hc":
        return hc.get_init_and_expand_reduce_stream_functions(k)
    if kind == "fc":
        return hc.get_init_and_expand_reduce_stream_functions(1, num_fracs=k)
    if kind == "mhc":
        return hc.mc_get_init_and_expand_reduce_stream_functions(k)
    raise ValueError(f"unknown package variant {kind!r}")


def _positions(spec: ModelSpec) -> int:
    """The learned position table's size (`pos = learned`: `context` rows), as hcdsl's
    embedding has it, so its weights load into the package's model."""
    return (spec.context or 0) if spec.pos == "learned" else 0


class PackageModel(nn.Module):
    """Embedding, n layers each wrapped by the package's connection, reduce, norm, head."""

    def __init__(self, spec: ModelSpec, kind: str | None, k: int = 1) -> None:
        super().__init__()
        init, self.expand, self.reduce = _functions(kind, k)
        self.variant = describe(kind, k)
        norm = spec.norm
        self.embed = Embedding(spec.vocab, spec.dim, _positions(spec))
        self.blocks = nn.ModuleList(
            init(dim=spec.dim, layer_index=i,
                 branch=Branch(make_norm(norm.kind, spec.dim, norm.affine, norm.eps),
                               _layer(spec, i)))
            for i in range(len(spec.sequence)))
        self.final_norm = (make_norm(norm.kind, spec.dim, norm.affine, norm.eps)
                           if spec.head.final_norm else nn.Identity())
        self.head = Unembed(spec.vocab, spec.dim, self.embed if spec.head.tied else None)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.expand(self.embed(tokens))
        for block in self.blocks:
            x = block(x)
        return self.head(self.final_norm(self.reduce(x)))

    def load_hcdsl_layers(self, model: nn.Module, spec: ModelSpec) -> int:
        """Copy the hcdsl model's embedding, per-layer norms and layers, final norm and head
        (IR node names L{k}_norm, L{k}_{name}); the number of modules copied."""
        pairs: list[tuple[nn.Module, str]] = [(self.embed, "embed"), (self.head, "head")]
        if spec.head.final_norm:
            pairs.append((self.final_norm, "final_norm"))
        for i, layer in enumerate(spec.sequence):
            branch = self.blocks[i].branch
            pairs += [(branch.norm, attr_name(f"L{i + 1}.norm")),
                      (branch.layer, attr_name(f"L{i + 1}.{layer.name}"))]
        copied = 0
        for mine, name in pairs:
            try:
                theirs = model.get_submodule(name)
            except AttributeError:
                continue
            if type(theirs) is type(mine):
                mine.load_state_dict(theirs.state_dict())
                copied += 1
        return copied


def build(spec: ModelSpec, kind: str | None, k: int, like: nn.Module | None,
          device: torch.device) -> PackageModel:
    """The package's model for one variant (kind None: its plain residual), with the layer
    weights of the hcdsl model `like` where the modules match."""
    model = PackageModel(spec, kind, k)
    if like is not None:
        model.load_hcdsl_layers(like, spec)
    return model.to(device)
