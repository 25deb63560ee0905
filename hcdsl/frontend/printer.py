"""ModelSpec -> canonical .hc text: parse(format_model(spec)) == spec.

Canonical means: every option written as key=value (no flags), settings first, then layers,
body (runs of equal blocks as `repeat`), connection (literal matrices as `layer K = ...`
rules), head. Numbers keep their type: ints as 3, floats as 3.0 or 1e-05.
"""

from __future__ import annotations

import re

from pydantic import BaseModel

from hcdsl.lang.generator import generator_lines
from hcdsl.lang.history_generator import history_lines
from hcdsl.lang.catalog import LAYER_KINDS
from hcdsl.spec import ConnectionSpec, DropoutSpec, LayerSpec, Matrix, ModelSpec, Scalar

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def format_value(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        if text in ("inf", "-inf", "nan"):
            raise ValueError(f"{value} cannot be written in .hc")
        return text
    if _NAME.fullmatch(value) and value not in ("true", "false"):
        return value
    if "\n" in value or "\r" in value:
        raise ValueError(f"a string with a line break cannot be written in .hc: {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _call(name: str, options: tuple[tuple[str, Scalar], ...]) -> str:
    if not options:
        return name
    return f"{name}(" + ", ".join(f"{k}={format_value(v)}" for k, v in options) + ")"


def _written(options: BaseModel, skip: tuple[str, ...] = ()) -> tuple[tuple[str, Scalar], ...]:
    """The options that differ from their defaults (required ones always), in field order."""
    out = []
    for key, info in type(options).model_fields.items():
        value = getattr(options, key)
        if key not in skip and (info.is_required() or value != info.default):
            out.append((key, value))
    return tuple(out)


def _layer(layer: LayerSpec) -> str:
    extern = "extern " if layer.extern else ""
    args = layer.args
    if not layer.extern:  # normalised: every option is set; write the non-default ones
        args = _written(LAYER_KINDS[layer.kind].model_validate(dict(layer.args)))
    call = _call(layer.kind, args)
    if layer.ports:  # an extern layer's declared input ports
        ports = "ports=[" + ", ".join(layer.ports) + "]"
        call = call[:-1] + f", {ports})" if args else f"{call}({ports})"
    return f"  layer {layer.name} = {extern}{call}"


def _body(body: tuple[tuple[str, ...], ...]) -> str:
    parts: list[str] = []
    i = 0
    while i < len(body):
        run = 1
        while i + run < len(body) and body[i + run] == body[i]:
            run += 1
        group = "[" + ", ".join(body[i]) + "]"
        parts.append(f"repeat {run} {group}" if run > 1 else group)
        i += run
    return "  body = " + ", ".join(parts)


def _matrix(matrix: Matrix) -> str:
    return "[" + ", ".join(
        "[" + ", ".join(format_value(float(x)) for x in row) + "]" for row in matrix) + "]"


def _entry(x: float | str) -> str:
    return x if isinstance(x, str) else format_value(float(x))


def _list(values: tuple) -> str:
    return "[" + ", ".join(format_value(v) for v in values) + "]"


def _definition(conn: ConnectionSpec) -> list[str]:
    """A user-defined connection as its `connection NAME { ... }` block."""
    opts = conn.options
    lines = [f"connection {opts.name} {{"]
    for p in opts.params:
        tied = ", tied=true" if p.tied else ""
        lines.append(f"  param {p.name} = {p.kind}(init={format_value(float(p.init))}, "
                     f"bound={p.bound}{tied})")
    for key, value in _written(opts, skip=("name", "params", "generator", "readout_generator",
                                           "history_generator")):
        if key == "maps":  # low-rank maps: lowrank(...) calls, every option written
            text = "[" + ", ".join(_call(m.kind, tuple(
                (k, v) for k, v in m.model_dump().items()
                if k != "kind" and not (k == "rank" and m.kind == "linear"))) for m in value) + "]"
        else:
            text = _list(value) if isinstance(value, tuple) else format_value(value)
        lines.append(f"  {key} = {text}")
    for gen, name in ((opts.generator, ""), (opts.readout_generator, "readout")):
        if gen is not None:
            lines += ["  " + line for line in generator_lines(gen, name)]
    if opts.history_generator is not None:
        lines += ["  " + line for line in history_lines(opts.history_generator)]
    lines += [f"  layer {k} = [" + ", ".join("[" + ", ".join(_entry(x) for x in row) + "]"
                                             for row in m) + "]" for k, m in conn.matrices]
    return lines + ["}", ""]


def _connection(conn: ConnectionSpec) -> list[str]:
    if conn.kind == "custom":
        return [f"  connect {conn.options.name}"]
    head = f"  connect {_call(conn.kind, _written(conn.options))}"
    if not conn.matrices:
        return [head]
    rules = [f"    layer {k} = {_matrix(m)}" for k, m in conn.matrices]
    return [head + " {", *rules, "  }"]


def format_model(spec: ModelSpec) -> str:
    """The canonical .hc text of a validated model."""
    norm = spec.norm
    prelude = _definition(spec.connection) if spec.connection.kind == "custom" else []
    hidden = spec.input == "hidden"
    lines = [*prelude, f"model {spec.name} {{", f"  dim = {spec.dim}"]
    lines.append("  input = hidden" if hidden else f"  vocab = {spec.vocab}")
    if spec.context is not None:
        lines.append(f"  context = {spec.context}")
    if spec.pos != "none":
        lines.append(f"  pos = {spec.pos}")
    lines.append(f"  norm = {_call(norm.kind, (('affine', norm.affine), ('eps', norm.eps)))}")
    if spec.dropout != DropoutSpec():
        lines.append(f"  dropout = {_call('rates', tuple(spec.dropout.model_dump().items()))}")
    lines.extend(_layer(layer) for layer in spec.layers)
    lines.append(_body(spec.body))
    lines.extend(_connection(spec.connection))
    head = (("tied", spec.head.tied), ("final_norm", spec.head.final_norm))
    if not hidden:
        lines.append(f"  head = {_call('unembed', head)}")
    lines.append("}")
    return "\n".join(lines) + "\n"
