"""The Python API: parse, load, lower, compile.

A `str` is always spec text and a `pathlib.Path` a file to read (`load` reads a path given
as a str). Nothing here imports torch until a module is built (`compile`). Every call goes
through one `Compilation` (hcdsl/compiler.py), which runs each stage once.

A compiled model holds the modules of the IR *before* passes (every parameter-holding node;
passes never rename those) and runs the IR *after* them, so its state_dict is the same
whatever passes ran: a checkpoint saved with the optimiser on loads strictly with it off,
and back. A module the optimised graph does not use (a dead layer) stays a submodule, its
parameters frozen (requires_grad False: they can get no gradient). (hcdsl/nn/assemble.py
holds that rule.)
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hcdsl.compiler import BACKENDS, Compilation
from hcdsl.errors import CompileError, HcError
from hcdsl.ir.graph import IR
from hcdsl.passes.pipeline import DEFAULT
from hcdsl.schemes.program import Program, SpecLike
from hcdsl.spec import ModelSpec

if TYPE_CHECKING:  # torch is imported by compile() only
    import torch
    from torch import nn


def parse(spec: str | Path, layers: Iterable[str] = ()) -> ModelSpec:
    """Parse and validate .hc text, or the file at a pathlib.Path (a str is always text;
    `load` takes a path as a str too). Raises HcError with every mistake, each located.
    `layers` names the extern layers you will pass to `compile`, so `layer a = myattn(...)`
    may omit the word `extern`."""
    if not isinstance(spec, (str, Path)):
        raise TypeError(f"parse takes .hc text (str) or a pathlib.Path, got "
                        f"{type(spec).__name__}")
    return _program(spec, tuple(layers)).spec


def _program(spec: SpecLike | Program, layers: Collection[str] | Mapping[str, Any] = (),
             once: bool = False) -> Compilation:
    """Compilation.load, with a hint when spec text that does not parse looks like a file path
    (`hcdsl.compile("model.hc")`: a str is always text)."""
    try:
        return Compilation.load(spec, layers, once)
    except HcError as exc:
        if isinstance(spec, str) and _looks_like_path(spec):
            hint = (f"a str is spec text; to read the file {spec.strip()!r} pass "
                    f"pathlib.Path({spec.strip()!r}) or call hcdsl.load({spec.strip()!r})")
            exc.diagnostics[0] = replace(exc.diagnostics[0], hint=hint)
        raise


def _looks_like_path(text: str) -> bool:
    """One word ending in .hc, or naming a file that exists."""
    word = text.strip()
    if not word or len(word) > 4096 or any(c.isspace() or c in "{}=" for c in word):
        return False
    if word.endswith(".hc"):
        return True
    try:
        return Path(word).is_file()
    except (OSError, ValueError):
        return False


def load(path: str | Path, layers: Iterable[str] = ()) -> ModelSpec:
    """Read, parse and validate a .hc file."""
    return Compilation.load(Path(path), tuple(layers)).spec


def lower(spec: SpecLike, passes: Iterable[str] | None = DEFAULT, disable: Iterable[str] = (),
          layers: Iterable[str] = ()) -> IR:
    """Spec -> primitive scheme -> verified IR, after the pass pipeline (None: no passes)."""
    return _program(spec, tuple(layers), once=True).ir(passes, disable)


@dataclass(frozen=True)
class Lowered:
    """A program with its IR before passes (the modules come from it) and after them (what
    runs). `compile` takes one, so a caller that estimated memory lowers only once."""

    program: Program  # a Compilation (hcdsl/compiler.py): compile builds from it
    raw: IR
    ir: IR
    passes: tuple[str, ...] | None = field(default=tuple(DEFAULT), repr=False)
    disable: tuple[str, ...] = field(default=(), repr=False)


def lowered(spec: SpecLike | Program, passes: Iterable[str] | None = DEFAULT,
            disable: Iterable[str] = (),
            layers: Collection[str] | Mapping[str, Any] = ()) -> Lowered:
    """The IR of a spec before and after the pass pipeline (the same IR when passes=None).
    `layers`: extern layer names, or their factories (whose `ports` declare input ports)."""
    comp = _program(spec, layers)
    raw = comp.raw_ir()
    keep = None if passes is None else tuple(passes)
    ir = raw if passes is None else comp.ir(keep, disable)
    return Lowered(comp, raw, ir, keep, tuple(disable))


def compile(  # noqa: A001 - the package's verb
    spec: SpecLike | Program | Lowered,
    *,
    layers: Mapping[str, Any] | None = None,
    backend: str = "fx",
    passes: Iterable[str] | None = DEFAULT,
    disable: Iterable[str] = (),
    seed: int | None = None,
    device: "str | torch.device | None" = None,
    dtype: "torch.dtype | None" = None,
    recompute: bool | str = False,
    recompute_every: int | None = None,
    state_dict: "Mapping[str, torch.Tensor] | None" = None,
    freeze: bool = False,
    check_memory: bool = True,
) -> "nn.Module":
    """Compile a spec to a module mapping tokens (B, T) to logits (B, T, vocab); called as
    model(tokens, mask=None, return_hidden=False, targets=None) (hcdsl.nn.io: a padding or
    attention mask, the per-layer hidden states, the next-token loss), and
    model.generate(tokens, max_new_tokens, temperature, top_k, top_p, eos) decodes with a
    key/value cache (hcdsl.nn.decode). A body (`input = hidden`) maps hidden states
    (B, T, dim) to hidden states.

    `layers` maps extern layer names of the spec to factories: factory(dim=..., **options)
    returns an nn.Module (a `ports` attribute declares its input ports; hcdsl/nn/extern.py
    says how the connection's out_scale reaches it). Weights follow torch's global generator
    (torch.manual_seed) unless `seed` is given; then they depend only on `seed` and the IR
    node ids, so a module before and after a pass can be compared directly.
    `recompute`: the connection's operations between layers are recomputed in backward
    instead of stored, where that keeps less (MUDD's generator, norms over the streams; HC,
    FC and mHC already keep only their state): less memory, a little more time; fx backend.
    `recompute="layers"`: recomputation across layers (arXiv 2512.24880 §4.3): the
    connection's state is kept only every `recompute_every` layers (default: the memory
    model's choice, hcdsl.memory.layers_per_segment) and rebuilt in backward from there and
    from the layers' kept outputs; the layers are not recomputed. Exact: the same logits
    and gradients (backends/segments.py); fx backend. `recompute="auto"`: "layers" where
    more than one hidden vector crosses between layers, else off (hcdsl train's default).
    `state_dict`: trained weights, loaded strictly. `freeze`: the trained static
    coefficients (HC/FC static, DenseFormer, user params) become constants that the passes
    fold: for inference. `check_memory`: refuse (MemoryLimitError, a CompileError) a model
    whose weights would not fit in the available memory (hcdsl/memory.py); a Lowered spec
    was lowered with its own passes (`passes` is ignored unless `freeze` needs to run them
    again).
    """
    if backend not in BACKENDS:
        raise CompileError(f"unknown backend '{backend}': choose 'fx' or 'reference'")
    if isinstance(spec, Lowered):  # lowered with its own passes
        comp = Compilation.load(spec.program, layers or {})
        if not freeze:
            passes, disable = spec.passes, spec.disable
    else:
        comp = _program(spec, layers or {}, once=True)  # a given Compilation keeps its own
    return comp.module(backend=backend, passes=passes, disable=disable, layers=layers,
                       seed=seed, device=device, dtype=dtype, recompute=recompute,
                       recompute_every=recompute_every,
                       state_dict=state_dict, freeze=freeze, check_memory=check_memory)
