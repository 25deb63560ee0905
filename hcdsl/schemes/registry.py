"""Named connection presets: each has an options model, a matrix shape, and a desugaring."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from pydantic import BaseModel

from hcdsl.schemes.primitive import Scheme
from hcdsl.spec import ModelSpec


@dataclass(frozen=True)
class Preset:
    name: str
    options: type[BaseModel]
    desugar: Callable[[ModelSpec, BaseModel], Scheme]
    # the shape literal matrices must have, or None if the preset takes none
    matrix_shape: Callable[[BaseModel], tuple[int, int]] | None = None
    matrix_help: str = ""
    # bare flags that set an option to a value, e.g. `static` -> dynamic=False
    flags: dict[str, tuple[str, object]] = field(default_factory=dict)
    # False for the preset behind `connection NAME { ... }` blocks: not nameable in `connect`
    visible: bool = True


PRESETS: dict[str, Preset] = {}


class SchemeError(ValueError):
    """A preset that cannot apply to this model (reported at the `connect` line)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def register(preset: Preset) -> Preset:
    PRESETS[preset.name] = preset
    return preset


def preset(name: str) -> Preset:
    from hcdsl.schemes import load_all

    load_all()
    return PRESETS[name]


def preset_names() -> list[str]:
    from hcdsl.schemes import load_all

    load_all()
    return sorted(name for name, p in PRESETS.items() if p.visible)
