"""param_groups: the HC paper's recipe (arXiv 2409.19606 §4): static connection parameters,
norms, biases and embeddings are not decayed; dynamic projections and weight matrices are."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

import hcdsl
from hcdsl.nn.groups import classify, param_groups
from hcdsl.train.parallel import AsScalar

SPECS = Path(__file__).parents[2] / "specs"


def _decay_of(model: nn.Module) -> dict[str, float]:
    """{parameter name: the weight decay of its group}, asserting each is in one group."""
    groups = param_groups(model, weight_decay=0.1)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)), "a parameter in two groups"
    assert set(ids) == {id(p) for p in model.parameters()}, "a parameter in no group"
    assert all(isinstance(g["name"], str) and g["params"] for g in groups)
    decay = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    return {name: decay[id(p)] for name, p in model.named_parameters()}


@pytest.mark.parametrize("spec, static, dynamic", [
    ("pre_norm.hc", [], []),
    ("tiny_dhc4.hc", ["static_gain", "static_mix", "s_gain", "s_mix"], ["w_gain", "w_mix"]),
    ("families/mhc_tiny_paper4.hc", ["alpha_pre", "alpha_post", "alpha_res", "b_pre",
                                     "b_post", "b_res"], ["phi_pre", "phi_post", "phi_res"]),
    ("families/mudd_tiny.hc", ["static"], ["w1", "w2"]),
])
def test_recipe_on_each_family(spec: str, static: list[str], dynamic: list[str]) -> None:
    model = hcdsl.compile(SPECS / spec, seed=0)
    decay = _decay_of(model)
    leaf = {name: name.rsplit(".", 1)[-1] for name in decay}
    for name, wd in decay.items():
        if leaf[name] in static:
            assert wd == 0.0, f"{name} is static: no decay"
        if leaf[name] in dynamic:
            assert wd == 0.1, f"{name} is a dynamic projection: decay"
        if "norm" in name.lower() or name == "embed.weight":
            assert wd == 0.0, f"{name}: norms and embeddings are not decayed"
        if name.endswith(("q_proj.weight", "fc1.weight", "fc2.weight")):
            assert wd == 0.1, f"{name}: layer weights are decayed"
    for want in static + dynamic:  # the names exist: the table matches the modules
        assert want in leaf.values(), f"{spec}: no parameter named {want}"
    if "dhc4" in spec:  # w_gain is 1-D, yet decayed (the table beats the generic 1-D rule)
        assert any(leaf[n] == "w_gain" and model.get_parameter(n).dim() == 1 for n in decay)


def test_any_module_tied_weights_once() -> None:
    emb = nn.Embedding(10, 8)
    head = nn.Linear(8, 10, bias=True)
    head.weight = emb.weight  # tied
    model = nn.Sequential(emb, nn.Linear(8, 8), nn.LayerNorm(8), head)
    decay = _decay_of(model)
    assert decay == {"0.weight": 0.0, "1.weight": 0.1, "1.bias": 0.0, "2.weight": 0.0,
                     "2.bias": 0.0, "3.bias": 0.0}
    opt = torch.optim.AdamW(param_groups(model), lr=1e-3)  # AdamW accepts the groups
    assert sum(len(g["params"]) for g in opt.param_groups) == 6


def test_parametrized_scalars_keep_their_owner() -> None:
    """FSDP2 stores HC's scalar s_gain as a 1-element vector through a parametrization; its
    group must stay 'static' (not the 1-D rule's, not unknown)."""
    model = hcdsl.compile(SPECS / "tiny_dhc4.hc", seed=0)
    coef = model.L1_coef
    parametrize.register_parametrization(coef, "s_gain", AsScalar())
    groups = classify(model)
    assert groups["L1_coef.parametrizations.s_gain.original"] == "no decay: static connections"
    _decay_of(model)
