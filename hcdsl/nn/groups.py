"""AdamW parameter groups with the Hyper-Connections weight-decay recipe.

HC paper (arXiv 2409.19606) §4, implementation details: "The static component ... does not
utilize weight decay, whereas the dynamic component does." Together with the usual LLM
practice (no decay on norms, biases and embeddings), a parameter is decayed when it is

- a dynamic projection of a connection (HC's W_β and [W_m | W_r], mHC's φ, MUDD's W1 and
  W2, attention residuals' pseudo-query, a low-rank map on the state, a generator's
  projections), or
- a weight matrix of a layer (attention and MLP projections, an untied unembedding),

and not decayed when it is

- a static connection parameter (HC's B, A_m, A_r and scales s_α, s_β; mHC's α and b;
  DenseFormer and MUDD static weights; a user-defined connection's learned scalars; a
  generator's scales and biases),
- a norm's gain or bias, any bias or other 1-D parameter, or an embedding.

`NO_DECAY` and `DECAY` name the parameters of hcdsl's connection modules by class; anything
else is classified generically, so `param_groups` works on any nn.Module (a wrapped Hugging
Face model, DDP, FSDP2, torch.compile). Tied parameters appear once (in the group of the
first module that owns them). Parameters registered through a parametrization
(`module.parametrizations.NAME.original`) count as their owner's `NAME`.
"""

from __future__ import annotations

from fnmatch import fnmatch

from torch import nn

from hcdsl.nn.coef import HyperCoef
from hcdsl.nn.dense import DenseCoef
from hcdsl.nn.generator import GeneratorCoef, GeneratorOut
from hcdsl.nn.layers import Embedding
from hcdsl.nn.preset_params import PRESET_PARAMS
from hcdsl.nn.template import ChannelGain, LowRank, TemplateCoef

# module class -> patterns of its parameters that are static (no weight decay)
NO_DECAY: dict[type[nn.Module], tuple[str, ...]] = {
    HyperCoef: ("static_gain", "static_mix"),  # static HC/FC (dynamic: a generator's layout)
    TemplateCoef: ("raw_*",),
    ChannelGain: ("raw_*",),  # a connection's learned vectors, as its scalars
    DenseCoef: ("static",),
    GeneratorOut: ("scale", "bias"),  # a generator output's static part
}
# module class -> patterns of its dynamic projections (decayed, even when 1-D)
DECAY: dict[type[nn.Module], tuple[str, ...]] = {
    DenseCoef: ("w1", "w2", "query"),
    GeneratorOut: ("weight", "down", "up"),  # a generator output's projection
    LowRank: ("down", "up"),
}

# group names, in the order param_groups returns them
DYNAMIC, WEIGHTS = "decay: dynamic connections", "decay: weights"
STATIC, NORMS = "no decay: static connections", "no decay: norms"
EMBED, BIASES = "no decay: embeddings", "no decay: biases and 1-D"
ORDER = (WEIGHTS, DYNAMIC, STATIC, NORMS, EMBED, BIASES)


def _matches(module: nn.Module, name: str, table: dict[type[nn.Module], tuple[str, ...]]) -> bool:
    if isinstance(module, GeneratorCoef) and module.params_as in PRESET_PARAMS:
        # a desugared preset (hyper dynamic, mhc) keeps its parameters under its own names
        layout = PRESET_PARAMS[module.params_as]
        pats = layout.static if table is NO_DECAY else layout.dynamic
        return any(fnmatch(name, pat) for pat in pats)
    return any(isinstance(module, cls) and any(fnmatch(name, pat) for pat in pats)
               for cls, pats in table.items())


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, (nn.LayerNorm, nn.RMSNorm, nn.GroupNorm)) or \
        "Norm" in type(module).__name__


def classify(model: nn.Module) -> dict[str, str]:
    """{qualified parameter name: group name}, each parameter once (see the module doc)."""
    modules = dict(model.named_modules())
    seen: set[int] = set()
    out: dict[str, str] = {}
    for path, module in modules.items():
        for name, param in module.named_parameters(recurse=False):
            if id(param) in seen:
                continue
            seen.add(id(param))
            owner, attr = module, name
            parts = path.split(".")
            if len(parts) >= 3 and parts[-2] == "parametrizations":  # parametrize's original
                owner, attr = modules.get(".".join(parts[:-2]), module), parts[-1]
            out[f"{path}.{name}" if path else name] = _group(owner, attr, param)
    return out


def _group(owner: nn.Module, name: str, param: nn.Parameter) -> str:
    if _matches(owner, name, NO_DECAY):
        return STATIC
    if _matches(owner, name, DECAY):
        return DYNAMIC
    if _is_norm(owner):
        return NORMS
    if isinstance(owner, (Embedding, nn.Embedding)):
        return EMBED
    if name.endswith("bias") or param.dim() < 2:
        return BIASES
    return WEIGHTS


def param_groups(model: nn.Module, weight_decay: float = 0.1) -> list[dict]:
    """Groups for torch.optim.AdamW: every trainable parameter in exactly one group, each
    group a dict with "name", "params" and "weight_decay" (0 for the no-decay groups).
    Empty groups are left out. Frozen parameters (requires_grad=False) are left out."""
    by_name = dict(model.named_parameters())  # deduplicated: tied weights once
    params: dict[str, list[nn.Parameter]] = {g: [] for g in ORDER}
    for qual, group in classify(model).items():
        p = by_name.get(qual)
        if p is not None and p.requires_grad:
            params[group].append(p)
    return [{"name": g, "params": ps, "weight_decay": weight_decay if g.startswith("decay")
             else 0.0} for g, ps in params.items() if ps]
