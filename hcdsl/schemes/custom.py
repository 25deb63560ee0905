"""User-defined connections: a `connection NAME { ... }` block of a .hc file, written with the
primitives directly (state / read / write / weights / readout), no Python.

Stream state (one step per layer, F = R = 1): every layer's matrix M = [[0, OUT], [READ,
RES]] is given by selector rules like HC's literal matrices, and its entries may name learned
scalars declared with `param`. History state: depth-wise aggregates (static or softmax
weights) over earlier outputs, per layer or per block.
"""

from __future__ import annotations

from hcdsl.lang.catalog import attends
from hcdsl.lang.connections import CustomOptions, Entry, Param
from hcdsl.lang.expr import evaluate, names
from hcdsl.schemes.dense import ATTNRES, STATIC, history_scheme
from hcdsl.schemes.primitive import ChannelEntry, Coef, DenseScheme, Map, Scheme, Step
from hcdsl.schemes.registry import SchemeError, register
from hcdsl.spec import ModelSpec


def _streams(spec: ModelSpec, o: CustomOptions) -> Scheme:
    S = o.streams
    templates = dict(spec.connection.matrices)
    missing = [k for k in range(1, len(spec.sequence) + 1) if k not in templates]
    if o.generator is not None:
        return _generated(spec, o)
    if missing:
        raise SchemeError(f"connection '{o.name}' gives no matrix for layer(s) {missing}",
                          "add a rule such as `all = [[0, 1], [1, 1]]` to the connection")
    known = {p.name for p in o.params}
    init_of = {p.name: p.init for p in o.params}
    for entry in o.value_residual or ():
        if isinstance(entry, str) and entry not in known:
            raise SchemeError(f"value_residual names '{entry}', which is not a declared param",
                              f"declare it: param {entry} = 0.5")
    attention = [layer.name for layer in spec.sequence if attends(layer.kind, layer.extern)]
    if o.value_residual is not None and len(attention) < 2:
        raise SchemeError(f"connection '{o.name}': value_residual mixes the first attention "
                          f"layer's values into later ones, but the model has "
                          f"{len(attention)} attention layer(s)",
                          "drop value_residual, or add attention layers to the body")
    steps = []
    vectors = {p.name: p for p in o.params if p.kind == "vector"}
    for k in range(len(spec.sequence)):
        template, channels = _split(templates[k + 1], vectors)
        used = {name for row in template for e in row for name in names(e)}
        # M at init with every entry (a vector's channels all start at its init value)
        init = tuple(tuple(float(evaluate(e, init_of, float)) for e in row)
                     for row in templates[k + 1])
        coef = (Coef(init=init) if not used and not channels else Coef(
            init=init, learn=True, generator="template", template=template,
            params=tuple(p for p in o.params if p.name in used)))
        steps.append(Step(
            layers=(k,), inputs=((0,),), outputs=((0,),), coef=coef,
            prenorm="separate" if o.prenorm else "none", post=o.post,
            post_streams=tuple(s - 1 for s in o.post_streams) if o.post_streams else None,
            lowrank=o.lowrank, value_mix=o.value_residual,
            value_params=tuple(p for p in o.params if p.name in (o.value_residual or ())),
            maps=_maps(o, k), channels=channels,
        ))
    return Scheme(
        streams=S, width=spec.dim, init="copy", init_weights=o.init, steps=tuple(steps),
        readout="sum", readout_weights=o.readout, readout_params=_readout_params(o),
        readout_norm=tuple(s - 1 for s in o.readout_norm), out_scale=o.out_scale,
        readout_generator=o.readout_generator, family=f"custom: {o.name}",
    )


def _generated(spec: ModelSpec, o: CustomOptions) -> Scheme:
    """Every layer's M from the `generator` block (per token); the matrix at init is only
    the shape (the weights not generated are read 1, write 1, res the identity)."""
    S, m = o.streams, o.fractions
    if m > 1:  # FC's split state (arXiv 2503.14125 §3): m fractions of width d/m
        if spec.dim % m:
            raise SchemeError(f"connection '{o.name}': fractions = {m} splits h into {m} "
                              f"fractions of width d/m, but dim = {spec.dim} is not a multiple "
                              f"of {m}", f"choose fractions dividing {spec.dim}")
        return _split_generated(spec, o)
    shape = ((0.0,) + (1.0,) * S,) + tuple(
        (1.0,) + tuple(1.0 if j == i else 0.0 for j in range(S)) for i in range(S))
    steps = _generated_steps(spec, o, shape, (0,))
    return Scheme(
        streams=S, width=spec.dim, init="copy", init_weights=o.init, steps=steps,
        readout="sum", readout_weights=o.readout, readout_params=_readout_params(o),
        readout_norm=tuple(s - 1 for s in o.readout_norm), out_scale=o.out_scale,
        readout_generator=o.readout_generator, family=f"custom: {o.name}",
    )


def _split_generated(spec: ModelSpec, o: CustomOptions) -> Scheme:
    """`fractions = m`: H^0 = h split into m fractions, every layer's M (2m x 2m, m read
    columns, OUT on the diagonal) from the generator, the readout concatenates (FC §3)."""
    m = o.fractions
    eye = tuple(tuple(1.0 if j == i else 0.0 for j in range(m)) for i in range(m))
    shape = tuple((0.0,) * m + r for r in eye) + tuple(r + r for r in eye)  # the shape only
    steps = _generated_steps(spec, o, shape, tuple(range(m)))
    return Scheme(streams=m, width=spec.dim // m, init="split", steps=steps, readout="concat",
                  out_scale=o.out_scale, family=f"custom: {o.name}")


def _generated_steps(spec: ModelSpec, o: CustomOptions, shape: tuple[tuple[float, ...], ...],
                     streams: tuple[int, ...]) -> tuple[Step, ...]:
    """One step per layer whose M (of this shape) comes from the block's generator, reading
    and writing `streams`."""
    coef = Coef(init=shape, learn=True, dynamic=True, generator="program", program=o.generator)
    return tuple(Step(layers=(k,), inputs=(streams,), outputs=(streams,), coef=coef,
                      prenorm="separate" if o.prenorm else "none", post=o.post,
                      post_streams=tuple(s - 1 for s in o.post_streams)
                      if o.post_streams else None, lowrank=o.lowrank,
                      value_mix=o.value_residual, value_params=tuple(
                          p for p in o.params if p.name in (o.value_residual or ())),
                      maps=_maps(o, k))
                 for k in range(len(spec.sequence)))


def _split(template: tuple[tuple[Entry, ...], ...], vectors: dict[str, Param]
           ) -> tuple[tuple[tuple[Entry, ...], ...], tuple[ChannelEntry, ...]]:
    """M without its entries over vector params (0 there), and those entries."""
    def per_channel(e: Entry) -> bool:
        return bool(names(e) & set(vectors))

    channels = tuple(ChannelEntry(row=i, col=j, entry=e, params=tuple(
                         vectors[name] for name in sorted(names(e))))
                     for i, row in enumerate(template) for j, e in enumerate(row)
                     if per_channel(e))
    scalar = tuple(tuple(0.0 if per_channel(e) else e for e in row) for row in template)
    return scalar, channels


def _maps(o: CustomOptions, k: int) -> tuple[Map, ...]:
    """The low-rank maps of layer k (0-based): those whose `start` layer has come."""
    return tuple(Map(source=mp.source - 1, target=mp.target - 1, rank=mp.rank,
                     full=mp.kind == "linear", weight=mp.weight,
                     params=tuple(p for p in o.params if p.name in names(mp.weight)))
                 for mp in o.maps if k + 1 >= mp.start)


def _readout_params(o: CustomOptions) -> tuple:
    used = {name for e in o.readout or () for name in names(e)}
    return tuple(p for p in o.params if p.name in used)


def _history(spec: ModelSpec, o: CustomOptions) -> DenseScheme:
    """Depth-wise aggregates made by the connection's generator, or by the preset record
    `weights` names (static: DenseFormer's; softmax: attention residuals')."""
    gen = o.history_generator or (ATTNRES if o.weights == "softmax" else STATIC)
    keep = o.keep or ("outputs" if gen.act == "softmax" else "states")
    return history_scheme(spec, gen, o.granularity, {"x": 1, "qkv": 3, "qkvr": 4}[o.ways],
                          keep, f"custom: {o.name}")


@register("custom")
def _custom(spec: ModelSpec, o: CustomOptions) -> Scheme | DenseScheme:
    return _history(spec, o) if o.state == "history" else _streams(spec, o)
