"""format_model prints a ModelSpec as canonical .hc text that parses back to the same spec;
and a printed spec compiles to fx and reference modules that agree."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hcdsl
from hcdsl.frontend.parser import parse_syntax
from hcdsl.frontend.printer import format_model
from hcdsl.lang.catalog import LAYER_KINDS, AttentionArgs, MlpArgs, NormArgs, OpaqueArgs
from hcdsl.lang.connections import HyperOptions
from hcdsl.lang.connections import ParallelOptions, ResidualOptions
from hcdsl.spec import ConnectionSpec, DropoutSpec, HeadSpec, LayerSpec, ModelSpec, NormSpec

LAYER_NAMES = ["attn", "ffn", "T", "mix", "norm_a", "odd", "layer"]
ENTRIES = st.sampled_from([0.0, 1.0, -1.0, 0.5, -0.25, 2.0, 1e-3])


def _set(model, dim: int, **kwargs) -> tuple:
    """A layer's options as validate stores them: every option, defaults filled in."""
    full = model(**kwargs).normalised(dim).model_dump()
    return tuple((k, v) for k, v in full.items() if v is not None)


@st.composite
def _layer(draw, name: str, heads: int, dim: int, small: bool) -> LayerSpec:
    kinds = ["attention", "mlp", "opaque", "rmsnorm"] + ([] if small else ["extern"])
    kind = draw(st.sampled_from(kinds))
    if kind == "extern":  # options as written, and declared input ports
        ports = draw(st.sampled_from([(), ("q", "k", "v"), ("a", "b")]))
        args = (("w", draw(st.integers(1, 8))),) if draw(st.booleans()) else ()
        return LayerSpec(name=name, kind="mine", args=args, extern=True, ports=ports)
    hidden = st.sampled_from([8, 16] if small else [8, 32, 100])
    if kind == "attention":
        opts = {"heads": heads}
        if draw(st.booleans()):
            opts["bias"] = draw(st.booleans())
        if draw(st.booleans()):
            opts["rope"] = draw(st.booleans())
        args = _set(AttentionArgs, dim, **opts)
    elif kind == "mlp":
        opts = {"act": draw(st.sampled_from(["gelu", "swiglu"]))}
        if draw(st.booleans()):
            opts["hidden"] = draw(hidden)
        args = _set(MlpArgs, dim, **opts)
    elif kind == "opaque":
        args = _set(OpaqueArgs, dim, **({"hidden": draw(hidden)} if draw(st.booleans()) else {}))
    else:
        args = _set(NormArgs, dim, **({"affine": draw(st.booleans())} if draw(st.booleans()) else {}))
    return LayerSpec(name=name, kind=kind, args=args)


@st.composite
def _connection(draw, n_layers: int) -> ConnectionSpec:
    kind = draw(st.sampled_from(["residual", "parallel", "hyper"]))
    if kind == "residual":
        opts = {"norm": draw(st.sampled_from(["pre", "post"]))} if draw(st.booleans()) else {}
        return ConnectionSpec(kind=kind, options=ResidualOptions(**opts))
    if kind == "parallel":
        opts = ({"norms": draw(st.sampled_from(["shared", "separate"]))}
                if draw(st.booleans()) else {})
        return ConnectionSpec(kind=kind, options=ParallelOptions(**opts))
    n = draw(st.integers(1, 3))
    opts = {"n": n}
    for key in ("dynamic", "tanh"):
        if draw(st.booleans()):
            opts[key] = draw(st.booleans())
    if not opts.get("dynamic") and draw(st.booleans()):
        opts["learn"] = draw(st.booleans())
    matrices = ()
    if draw(st.booleans()):
        which = draw(st.sets(st.integers(1, n_layers), min_size=1))
        square = st.lists(st.tuples(*[ENTRIES] * (n + 1)), min_size=n + 1, max_size=n + 1)
        matrices = tuple((k, tuple(draw(square))) for k in sorted(which))
    return ConnectionSpec(kind=kind, options=HyperOptions(**opts), matrices=matrices)


@st.composite
def model_specs(draw, small: bool = False) -> ModelSpec:
    heads = draw(st.sampled_from([1, 2, 4] if not small else [1, 2]))
    # RoPE needs an even head dim
    dim = heads * 2 * draw(st.integers(2, 4) if small else st.integers(1, 32))
    names = draw(st.lists(st.sampled_from(LAYER_NAMES), min_size=1, max_size=4, unique=True))
    layers = tuple(draw(_layer(name, heads, dim, small)) for name in names)
    block = st.lists(st.sampled_from(names), min_size=1, max_size=3).map(tuple)
    body = tuple(draw(st.lists(block, min_size=1, max_size=4)))
    norm = NormSpec(kind=draw(st.sampled_from(["layernorm", "rmsnorm"])),
                    affine=draw(st.booleans()), eps=draw(st.sampled_from([1e-5, 1e-6, 0.001])))
    connection = draw(_connection(sum(len(b) for b in body)))
    # input = hidden (a body), learned positions, dropout: printed and parsed back
    hidden = not small and draw(st.integers(0, 3)) == 0
    context = None if small else draw(st.none() | st.integers(1, 4096))
    pos = "learned" if not hidden and context and draw(st.booleans()) else "none"
    dynamic = connection.kind == "hyper" and connection.options.dynamic
    rate = st.sampled_from([0.0, 0.1, 0.5])
    dropout = DropoutSpec() if small or draw(st.booleans()) else DropoutSpec(
        embed=draw(rate), attn=draw(rate), branch=draw(rate), coef=draw(rate) if dynamic else 0)
    return ModelSpec(
        name=draw(st.sampled_from(["m", "tiny", "model_2"])), dim=dim,
        vocab=32 if small else 0 if hidden else draw(st.integers(1, 50304)),
        context=context, norm=norm, layers=layers, body=body, connection=connection,
        head=HeadSpec() if hidden else HeadSpec(tied=draw(st.booleans()),
                                                final_norm=draw(st.booleans())),
        input="hidden" if hidden else "tokens", pos=pos, dropout=dropout,
    )


@settings(max_examples=300, deadline=None)
@given(model_specs())
def test_print_parse_roundtrip(spec: ModelSpec):
    text = format_model(spec)
    back = hcdsl.parse(text)
    assert back.model_dump() == spec.model_dump(), text
    assert format_model(back) == text  # printing is canonical: a fixed point


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(model_specs(small=True), st.integers(0, 2**16))
def test_printed_spec_compiles_and_backends_agree(spec: ModelSpec, seed: int):
    text = format_model(spec)
    fx = hcdsl.compile(text, backend="fx", seed=seed)
    ref = hcdsl.compile(text, backend="reference", seed=seed)
    tokens = torch.randint(0, spec.vocab, (2, 5), generator=torch.Generator().manual_seed(seed))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only add overhead
    try:
        with torch.no_grad():
            out_fx, out_ref = fx(tokens), ref(tokens)
    finally:
        torch.set_num_threads(threads)
    assert out_fx.shape == (2, 5, spec.vocab)
    assert (out_fx - out_ref).abs().max().item() <= 1e-5, text


SPECS_DIR = Path(__file__).resolve().parents[2] / "specs"
SPECS = sorted(SPECS_DIR.rglob("*.hc"))


@pytest.mark.parametrize("path", SPECS, ids=[str(p.relative_to(SPECS_DIR)) for p in SPECS])
def test_spec_files_roundtrip(path: Path):
    text = path.read_text()
    kinds = {ld.call.name for ld in parse_syntax(text, str(path)).layers}
    spec = hcdsl.parse(text, layers=kinds - set(LAYER_KINDS))
    printed = format_model(spec)
    assert hcdsl.parse(printed, layers=kinds - set(LAYER_KINDS)) == spec, printed
