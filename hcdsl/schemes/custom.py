"""User-defined connections: a `connection NAME { ... }` block of a .hc file, written with the
primitives directly (state / read / write / weights / readout), no Python.

Stream state (one step per layer, F = R = 1): every layer's matrix M = [[0, OUT], [READ,
RES]] is given by selector rules like HC's literal matrices, and its entries may name learned
scalars declared with `param`. History state: depth-wise aggregates (static or softmax
weights) over earlier outputs, per layer or per block.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hcdsl.schemes.dense import attention_residuals, depth_weighted
from hcdsl.schemes.primitive import Coef, DenseScheme, Entry, Param, Scheme, Step
from hcdsl.schemes.registry import Preset, SchemeError, register
from hcdsl.spec import ModelSpec


class CustomOptions(BaseModel):
    """The settings of a `connection` block (streams and layers are numbered from 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = "custom"
    state: Literal["streams", "history"] = "streams"
    # -- stream state --
    streams: int = Field(default=1, ge=1)
    init: tuple[float, ...] | None = None  # H^0_s = init_s h^0 (default: copies)
    prenorm: bool = True  # T := T∘Norm
    post: Literal["none", "norm"] = "none"  # normalise new streams after the write
    post_streams: tuple[int, ...] | None = None  # which (1-based); default all
    lowrank: int = Field(default=0, ge=0)  # + B A H on the state (LAuReL-LR), B = 0 at init
    value_residual: tuple[Entry, Entry] | None = None  # V <- λ1 V_first + λ2 V
    readout: tuple[float, ...] | None = None  # h^L = sum_s readout_s H_s (default all 1)
    readout_norm: tuple[int, ...] = ()  # streams (1-based) normalised before the readout
    out_scale: float = 1.0  # init std factor of output projections
    params: tuple[Param, ...] = ()
    # -- history state: what is remembered, and how it is read --
    # static: DenseFormer's depth-weighted averages (learned, identity at init) over the
    # outputs of blocks (or single layers), Pre-Norm residuals inside a block;
    # softmax: attention residuals over raw outputs (a learned query per read)
    granularity: Literal["layer", "block"] = "block"
    weights: Literal["static", "softmax"] = "static"


def _streams(spec: ModelSpec, o: CustomOptions) -> Scheme:
    S = o.streams
    templates = dict(spec.connection.matrices)
    missing = [k for k in range(1, len(spec.sequence) + 1) if k not in templates]
    if missing:
        raise SchemeError(f"connection '{o.name}' gives no matrix for layer(s) {missing}",
                          "add a rule such as `all = [[0, 1], [1, 1]]` to the connection")
    known = {p.name for p in o.params}
    init_of = {p.name: p.init for p in o.params}
    for entry in o.value_residual or ():
        if isinstance(entry, str) and entry not in known:
            raise SchemeError(f"value_residual names '{entry}', which is not a declared param",
                              f"declare it: param {entry} = 0.5")
    attention = [layer.name for layer in spec.sequence if layer.kind == "attention"]
    if o.value_residual is not None and len(attention) < 2:
        raise SchemeError(f"connection '{o.name}': value_residual mixes the first attention "
                          f"layer's values into later ones, but the model has "
                          f"{len(attention)} attention layer(s)",
                          "drop value_residual, or add attention layers to the body")
    steps = []
    for k in range(len(spec.sequence)):
        template = templates[k + 1]
        used = {e for row in template for e in row if isinstance(e, str)}
        init = tuple(tuple(init_of[e] if isinstance(e, str) else float(e) for e in row)
                     for row in template)
        coef = (Coef(init=init) if not used else Coef(
            init=init, learn=True, generator="template", template=template,
            params=tuple(p for p in o.params if p.name in used)))
        steps.append(Step(
            layers=(k,), inputs=((0,),), outputs=((0,),), coef=coef,
            prenorm="separate" if o.prenorm else "none", post=o.post,
            post_streams=tuple(s - 1 for s in o.post_streams) if o.post_streams else None,
            lowrank=o.lowrank, value_mix=o.value_residual,
            value_params=tuple(p for p in o.params if p.name in (o.value_residual or ())),
        ))
    return Scheme(
        streams=S, width=spec.dim, init="copy", init_weights=o.init, steps=tuple(steps),
        readout="sum", readout_weights=o.readout,
        readout_norm=tuple(s - 1 for s in o.readout_norm), out_scale=o.out_scale,
        family=f"custom: {o.name}",
    )


def _history(spec: ModelSpec, o: CustomOptions) -> DenseScheme:
    if o.weights == "softmax":
        scheme = attention_residuals(spec, o.granularity)
    else:
        groups = [[k] for k in range(len(spec.sequence))] if o.granularity == "layer" else None
        scheme = depth_weighted(spec, k=1, p=1, learn=True, groups=groups)
    return scheme.model_copy(update={"family": f"custom: {o.name}"})


def _custom(spec: ModelSpec, o: CustomOptions) -> Scheme | DenseScheme:
    return _history(spec, o) if o.state == "history" else _streams(spec, o)


register(Preset(
    name="custom", options=CustomOptions, desugar=_custom,
    matrix_shape=lambda o: (o.streams + 1, o.streams + 1),
    matrix_help="M = [[0, OUT], [READ, RES]] is (streams+1) x (streams+1)",
    visible=False,
))
