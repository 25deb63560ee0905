"""Options of calls (`attention(heads=4)`, `hyper(n=2, dynamic)`), checked with pydantic,
and the plain-language messages for what pydantic rejects."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from pydantic import BaseModel, ValidationError

from hcdsl.errors import ErrorSink, Span
from hcdsl.frontend import syntax as s
from hcdsl.frontend.numbers import short
from hcdsl.lang.limits import fmt_limit, limit_of
from hcdsl.spec import Scalar


def did_you_mean(word: str, choices: Iterable[str], what: str) -> str:
    choices = sorted(choices)
    close = difflib.get_close_matches(word, choices, n=1)
    listing = ", ".join(choices) if choices else "none"
    return (f"did you mean '{close[0]}'? " if close else "") + f"{what}: {listing}"


_BOUNDS = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=",
           "less_than": "<"}


def _expected_value(e: dict) -> str:
    """What a pydantic error says the value should have been, in .hc words."""
    ctx = e.get("ctx") or {}
    kind = e["type"]
    if kind.startswith("int") or kind == "int_from_float":
        return "must be an integer"
    if kind.startswith("float"):
        return "must be a number"
    if kind.startswith("bool"):
        return "must be true or false"
    if kind.startswith("string") or kind.startswith("str"):
        return "must be a name or a string"
    if kind == "literal_error":
        return f"must be {ctx.get('expected', '')}".replace("'", "")
    if kind in _BOUNDS:
        limit = next(iter(ctx.values()), "?")
        return f"must be {_BOUNDS[kind]} {limit}"
    return e["msg"].removeprefix("Value error, ").replace("Input should", "should")


def pydantic_problem(e: dict, model: type[BaseModel], got: str) -> str:
    """What a pydantic error on one field says, in .hc words: "is 2,000, over the limit of
    1,024 (limit 'layers')" for a bound that is a limit (lang/limits.py), else "must be ...,
    got '...'"."""
    field = model.model_fields.get(str(e["loc"][0])) if e["loc"] else None
    limit = limit_of(field)
    if e["type"] == "less_than_equal" and limit is not None:
        return f"= {short(got)} is over the limit of {fmt_limit(limit)} (limit '{limit.name}')"
    return f"{_expected_value(e)}, got '{short(got)}'"


def value_hint(e: dict, got: str) -> str | None:
    if e["type"] == "literal_error":
        choices = [c.strip(" '") for c in str(e["ctx"]["expected"]).replace(" or ", ",")
                   .split(",")]
        close = difflib.get_close_matches(got, choices, n=1)
        return f"did you mean '{close[0]}'?" if close else None
    if e["type"].startswith("int") and got.replace(".", "", 1).isdigit():
        return "write a whole number such as 4"
    if e["type"].startswith("int") and got.isalpha():
        return "write the number in digits, e.g. 2"
    if e["type"] in _BOUNDS:
        return f"write a value {_BOUNDS[e['type']]} {next(iter((e.get('ctx') or {}).values()), '?')}"
    return None


def scalar(value: s.Value) -> Scalar | list | None:
    """A syntax value as plain Python (lists stay nested); calls give None."""
    if isinstance(value, s.Number):
        is_int = value.value.is_integer() and not any(c in value.text for c in ".eE")
        if is_int and len(value.text) <= 4000:  # exact, not through a float
            return int(value.text)
        return int(value.value) if is_int else value.value
    if isinstance(value, s.Name):
        return {"true": True, "false": False}.get(value.value, value.value)
    if isinstance(value, s.String):
        return value.value
    if isinstance(value, s.ListValue):
        return [scalar(v) for v in value.items]
    return None


class OptionRules:
    """Mixin of the validator: checks the options of one call against a pydantic model."""

    err: ErrorSink

    def options(self, call: s.Call, model: type[BaseModel], what: str,
                flags: dict[str, tuple[str, object]] | None = None,
                context: dict[str, object] | None = None) -> BaseModel | None:
        flags = flags or {}
        fields = model.model_fields
        values: dict[str, object] = {}
        spans: dict[str, Span] = {}
        texts: dict[str, str] = {}
        reported = False  # an option was already reported: a missing one is likely that one
        for arg in call.args:
            if arg.value is None:
                if arg.name in flags:
                    key, val = flags[arg.name]
                elif arg.name in fields and fields[arg.name].annotation is bool:
                    key, val = arg.name, True
                else:
                    self.unknown_option(arg, model, what, flags)
                    reported = True
                    continue
            else:
                if arg.name not in fields:
                    self.unknown_option(arg, model, what, flags)
                    reported = True
                    continue
                if isinstance(arg.value, s.Call):
                    self.err.error(f"option '{arg.name}' of {what} takes a value, not a call "
                                   f"'{self.text(arg.value)}'", arg.value.span)
                    reported = True
                    continue
                key, val = arg.name, scalar(arg.value)
            if key in spans:
                via = f" ('{arg.name}' sets {key})" if arg.name != key else ""
                self.err.error(f"option '{key}' of {what} is given twice{via}", arg.span,
                               "give each option once")
                continue
            values[key] = val
            spans[key] = arg.span
            texts[key] = self.text(arg.value) if arg.value is not None else arg.name
        try:
            # strict: `heads=true` is not 1, `affine=1` is not true
            return model.model_validate(values, context=context, strict=True)
        except ValidationError as exc:
            for e in exc.errors(include_url=False):
                field = str(e["loc"][0]) if e["loc"] else ""
                if e["type"] == "missing":
                    if reported:
                        continue
                    self.err.error(f"{what} needs option '{field}'", call.span,
                                   f"write {call.name}({field}=...)")
                elif field:
                    got = texts.get(field, str(e.get("input")))
                    self.err.error(f"option '{field}' of {what} "
                                   f"{pydantic_problem(e, model, got)}",
                                   spans.get(field, call.span), value_hint(e, got))
                else:
                    self.err.error(f"{what}: {e['msg'].removeprefix('Value error, ')}",
                                   call.span)
            return None

    def unknown_option(self, arg: s.Arg, model: type[BaseModel], what: str,
                       flags: dict[str, tuple[str, object]]) -> None:
        names = set(model.model_fields) | set(flags)
        self.err.error(f"unknown option '{arg.name}' for {what}", arg.span,
                       did_you_mean(arg.name, names, f"{what} takes"))

    # -- the model --------------------------------------------------------------------
