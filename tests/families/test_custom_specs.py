"""User-defined connections (`connection NAME { ... }`, docs/families/custom.md), the five
methods of specs/custom/ (LAuReL-RW, LAuReL-LR, value residual, ResiDual, attention
residuals): each parses and prints back to the same spec, runs the same on both backends with
random parameters; identity at init where the method has one; parameter counts; every
connection block in the docs parses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from custom_helpers import (
    SPECS, DIM, LAYERS, path, text, tokens, n_params, pre_norm_text,
    assert_fx_equals_reference, LEARNED_VRES, model,
)
import hcdsl
from hcdsl.frontend.printer import format_model

pytestmark = pytest.mark.usefixtures("one_thread")


# -- every spec: parse, round-trip, fx == reference ------------------------------------------

@pytest.mark.parametrize("name", SPECS)
def test_spec_parses_and_round_trips(name: str) -> None:
    spec = hcdsl.parse(path(name))
    assert spec.connection.kind == "custom"
    assert dict(spec.connection.options)["name"] == name
    printed = format_model(spec)
    assert printed.startswith(f"connection {name} {{")
    assert hcdsl.parse(printed).model_dump() == spec.model_dump()
    assert format_model(hcdsl.parse(printed)) == printed  # the canonical text is a fixed point


@pytest.mark.parametrize("name", SPECS)
def test_fx_equals_reference_with_random_parameters_and_every_gradient(name: str) -> None:
    assert_fx_equals_reference(path(name))




# -- identity at init --------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["laurel_rw", "laurel_lr"])
def test_laurel_equals_pre_norm_at_init(name: str) -> None:
    """α = β = 2σ(0) = 1 (RW) and B = 0 (LR): exactly Pre-Norm. The shared weights are copied
    from a Pre-Norm compile by name; the only extra ones are the connection's."""
    m = hcdsl.compile(path(name), seed=0)
    pre = hcdsl.compile(pre_norm_text(text(name)), seed=5)
    missing, unexpected = m.load_state_dict(pre.state_dict(), strict=False)
    assert not unexpected
    extra = "_coef." if name == "laurel_rw" else "_lowrank."
    assert missing and all(extra in k for k in missing), missing
    toks = tokens()
    with torch.no_grad():
        assert (m(toks) - pre(toks)).abs().max().item() <= 1e-6


# -- parameter counts --------------------------------------------------------------------------

def test_parameter_counts() -> None:
    """RW: 2 per layer; LR: 2 d r per layer; value residual: 0 with fixed λ, 2 per attention
    layer after the first with learned λ."""
    base = n_params(hcdsl.compile(pre_norm_text(text("laurel_rw"))))
    count = lambda spec: n_params(hcdsl.compile(spec)) - base  # noqa: E731
    assert count(path("laurel_rw")) == 2 * LAYERS
    assert count(path("laurel_lr")) == 2 * DIM * 8 * LAYERS
    assert count(path("value_residual")) == 0
    assert count(LEARNED_VRES) == 2  # one attention layer after the first
    three = LEARNED_VRES.replace("repeat 2", "repeat 3")
    assert n_params(hcdsl.compile(three)) - n_params(
        hcdsl.compile(pre_norm_text(three))) == 2 * 2
    # ResiDual: a post-LN per layer instead of a pre-LN, plus LN(d): one more LayerNorm
    assert count(path("residual_dual")) == 2 * DIM
    # attention residuals: a query and an RMSNorm scale per aggregate after the first layer
    assert count(path("attention_residuals")) == 2 * DIM * LAYERS




# -- the docs' examples parse -----------------------------------------------------------------

def test_every_connection_block_in_the_docs_parses() -> None:
    """Every ``` block of docs/families/custom.md and docs/language.md that defines a
    connection parses (blocks without a model get a small one that connects them)."""
    docs = Path(__file__).resolve().parents[2] / "docs"
    blocks = [b.split("\n", 1)[1] for doc in ("families/custom.md", "language.md")
              for b in (docs / doc).read_text().split("```")[1::2]]
    conns = [b for b in blocks if re.search(r"^connection \w+ {", b, re.M)]
    assert len(conns) >= 8
    for block in conns:
        if not re.search(r"^model ", block, re.M):
            name = re.search(r"^connection (\w+)", block, re.M).group(1)
            block += model(name)
        spec = hcdsl.parse(block)
        assert spec.connection.kind == "custom"
