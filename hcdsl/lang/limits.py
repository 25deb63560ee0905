"""The limits of what a spec may ask for, as data: each is checked when the spec is read or
validated, and a spec over one gets a located error naming the limit ("... over the limit of
1,024 (limit 'heads')"). They are far above every model in the papers (OLMo-7B: dim 4096;
Llama-3-405B: 126 blocks, dim 16384, vocab 128256) and far below what would overflow a size
computation or run for minutes before failing. docs/security.md prints this table (a test
keeps the two equal).

An option bounded by a limit declares it with `at_most(name)` (pydantic `le=` plus the
limit's name, which the front end puts in its message)."""

from __future__ import annotations

from typing import Any, NamedTuple


class Limit(NamedTuple):
    name: str
    value: int | float
    what: str


MAX_SOURCE_BYTES = 1 << 20
MAX_TOKENS = 32_000
MAX_DIM = 1 << 16
MAX_VOCAB = 1 << 21
MAX_CONTEXT = 1 << 21
MAX_HIDDEN = 1 << 18
MAX_HEADS = 1024
MAX_LAYERS = 1024
MAX_STREAMS = 64
MAX_LOWRANK = 1 << 16
MAX_ITERS = 1000
MAX_MULTIPLE = 1 << 16
MAX_WEIGHT = 1e6

LIMITS: tuple[Limit, ...] = (
    Limit("source", MAX_SOURCE_BYTES, "bytes of spec text"),
    Limit("tokens", MAX_TOKENS, "tokens of spec text (names, numbers, symbols; comments "
                                "and white space are free), checked before parsing"),
    Limit("dim", MAX_DIM, "model width"),
    Limit("vocab", MAX_VOCAB, "vocabulary size"),
    Limit("context", MAX_CONTEXT, "context length"),
    Limit("hidden", MAX_HIDDEN, "hidden width of an mlp or opaque layer"),
    Limit("heads", MAX_HEADS, "attention heads"),
    Limit("layers", MAX_LAYERS, "layers in the body (attention and FFN count one each); "
                                "also bounds repeat counts and the dense families' k, p "
                                "and window"),
    Limit("streams", MAX_STREAMS, "streams or fractions of a connection (n, m, streams), "
                                  "so a literal matrix has at most 65 x 128 entries"),
    Limit("lowrank", MAX_LOWRANK, "rank of a low-rank state map"),
    Limit("iters", MAX_ITERS, "Sinkhorn-Knopp iterations of mHC"),
    Limit("multiple", MAX_MULTIPLE, "rounding multiple of grown FFN widths (mudd)"),
    Limit("weight", MAX_WEIGHT, "magnitude of a literal matrix entry, a param's init, and "
                                "a connection's init, readout and value_residual weights "
                                "(and they must be finite)"),
)
BY_NAME: dict[str, Limit] = {limit.name: limit for limit in LIMITS}


def at_most(name: str) -> dict[str, Any]:
    """pydantic Field arguments bounding an option by the named limit: Field(ge=1,
    **at_most("heads")). The front end reads the name back to say which limit was hit."""
    return {"le": BY_NAME[name].value, "json_schema_extra": {"limit": name}}


def limit_of(field: Any) -> Limit | None:
    """The limit a pydantic FieldInfo declares with at_most, or None."""
    extra = getattr(field, "json_schema_extra", None)
    return BY_NAME.get(extra.get("limit")) if isinstance(extra, dict) else None


def over(name: str, value: object) -> str:
    """The message part for a value over a limit: "1,025 is over the limit of 1,024 (limit
    'heads')"."""
    limit = BY_NAME[name]
    shown = f"{value:,}" if isinstance(value, int) else str(value)
    return f"{shown} is over the limit of {fmt_limit(limit)} (limit '{name}')"


def fmt_limit(limit: Limit) -> str:
    """1,024 or 1e+06: how a limit's value is written in messages and docs."""
    return f"{limit.value:,}" if isinstance(limit.value, int) else f"{limit.value:g}"


def markdown() -> str:
    """The limits as a Markdown table (docs/security.md holds it; a test keeps it equal)."""
    rows = ["| limit | value | what it bounds |", "|---|---:|---|"]
    rows += [f"| `{limit.name}` | {fmt_limit(limit)} | {limit.what} |" for limit in LIMITS]
    return "\n".join(rows)
