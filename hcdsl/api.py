"""The Python API: parse, load, lower, compile.

A `str` is always spec text and a `pathlib.Path` a file to read (`load` reads a path given
as a str). Nothing here imports torch until a module is built (`compile`).

A compiled model holds the modules of the IR *before* passes (every parameter-holding node;
passes never rename those) and runs the IR *after* them, so its state_dict is the same
whatever passes ran: a checkpoint saved with the optimiser on loads strictly with it off,
and back. A module the optimised graph does not use (a dead layer) stays a submodule, its
parameters frozen (requires_grad False: they can get no gradient).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MethodType
from typing import TYPE_CHECKING, Any

from hcdsl import memory
from hcdsl.errors import CompileError, HcError
from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.ir.verify import verify
from hcdsl.passes.freeze import freezable, freeze_coefficients
from hcdsl.passes.pipeline import DEFAULT, lower_program, run_pipeline
from hcdsl.schemes.program import Program, SpecLike, load_program
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


def _program(spec: SpecLike | Program,
             layers: Collection[str] | Mapping[str, Any] = ()) -> Program:
    """load_program, with a hint when spec text that does not parse looks like a file path
    (`hcdsl.compile("model.hc")`: a str is always text)."""
    try:
        return load_program(spec, layers)
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
    return load_program(Path(path), tuple(layers)).spec


def lower(spec: SpecLike, passes: Iterable[str] | None = DEFAULT, disable: Iterable[str] = (),
          layers: Iterable[str] = ()) -> IR:
    """Spec -> primitive scheme -> verified IR, after the pass pipeline (None: no passes)."""
    return lower_program(_program(spec, tuple(layers)), passes, disable)


@dataclass(frozen=True)
class Lowered:
    """A program with its IR before passes (the modules come from it) and after them (what
    runs). `compile` takes one, so a caller that estimated memory lowers only once."""

    program: Program
    raw: IR
    ir: IR


def lowered(spec: SpecLike | Program, passes: Iterable[str] | None = DEFAULT,
            disable: Iterable[str] = (),
            layers: Collection[str] | Mapping[str, Any] = ()) -> Lowered:
    """The IR of a spec before and after the pass pipeline (the same IR when passes=None).
    `layers`: extern layer names, or their factories (whose `ports` declare input ports)."""
    program = _program(spec, layers)
    raw = lower_program(program, None)
    if passes is None:
        return Lowered(program, raw, raw)
    ir = raw.copy()
    run_pipeline(ir, passes, disable)
    verify(ir, after="pipeline")
    return Lowered(program, raw, ir)


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
    import torch

    from hcdsl.backends import ReferenceModel, lower_fx
    from hcdsl.nn.decode import generate
    from hcdsl.nn.modules import attr_name, load_weights

    if backend not in ("fx", "reference"):
        raise CompileError(f"unknown backend '{backend}': choose 'fx' or 'reference'")
    factories = dict(layers or {})
    if isinstance(spec, Lowered):
        low = spec
    else:  # with freeze the passes run once the trained values are in the IR
        low = lowered(spec, None if freeze else passes, disable, factories)
    if check_memory and _allocates(device):
        itemsize = (dtype or torch.get_default_dtype()).itemsize
        est = memory.estimate(low.raw, dtype_bytes=itemsize)
        memory.check(est, f"model '{low.program.spec.name}'")
        if device is not None and torch.device(device).type == "cuda":
            memory.check(est, f"model '{low.program.spec.name}'", device)
    raw_parts = _modules(low.raw, low.raw, factories, seed, dtype)
    if state_dict is not None:
        load_weights(raw_parts, state_dict)
    ir = low.ir
    if freeze:
        ir = low.raw.copy()
        freeze_coefficients(ir, {v: matrix_of(getattr(raw_parts, attr_name(v)))
                                 for v in ir.g.nodes if freezable(ir.payload(v))})
        if passes is not None:
            run_pipeline(ir, passes, disable)
            verify(ir, after="pipeline")
    parts = _modules(low.raw, ir, factories, seed, dtype, raw_parts)
    every = memory.layers_per_segment(ir, recompute, recompute_every)  # checks both
    module = (lower_fx(ir, parts, recompute, every) if backend == "fx"
              else ReferenceModel(ir, parts))
    _keep_originals(module, parts)
    _keep_unused(module, parts, ir)
    if freeze:
        module.requires_grad_(False)
    _attach(module, hc_ir=ir, generate=MethodType(generate, module))
    return module.to(device=device, dtype=dtype)


def _attach(module: "nn.Module", **attrs: object) -> None:
    """Set attributes that copies keep: a GraphModule's deepcopy rebuilds it from its graph
    and keeps only what its meta lists as user-preserved (torch.fx)."""
    for name, value in attrs.items():
        setattr(module, name, value)
    meta = getattr(module, "meta", None)
    if isinstance(meta, dict):
        meta.setdefault("_user_preserved_attributes", {}).update(attrs)


def matrix_of(module: "nn.Module") -> tuple[tuple[float, ...], ...]:
    """The matrix a static coefficient module produces, as exact floats."""
    import torch

    with torch.no_grad():
        return tuple(tuple(float(x) for x in row) for row in module().double().tolist())


def _allocates(device: "str | torch.device | None") -> bool:
    """False on the meta device (`hcdsl show --code` builds there: nothing is allocated)."""
    import torch

    target = torch.device(device) if device is not None else torch.get_default_device()
    return target.type != "meta"


def _modules(raw: IR, ir: IR, factories: Mapping[str, Any], seed: int | None,
             dtype: "torch.dtype | None", parts: "nn.Module | None" = None) -> "nn.Module":
    """The modules of every module-holding node of the IR before passes (built unless parts
    holds them), and of the nodes the passes created or changed (folded constants, fused
    parallel blocks: these hold no parameters of their own)."""
    import torch

    from hcdsl.nn.modules import MODULES, Context, attr_name, build_parts, node_seed

    if parts is None:
        parts = build_parts(raw, factories, seed=seed, dtype=dtype)
    ctx = Context(ir, parts, factories, dtype, seed)
    for v in ir.order():
        p = ir.payload(v)
        factory = MODULES[type(p)]
        if factory is None:
            continue
        same = v in raw.g and raw.payload(v) == p
        if same and attr_name(v) in parts._modules:
            continue
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(node_seed(seed, v))
            module = factory(p, ctx)
        old = parts._modules.get(attr_name(v))
        if old is not None and _shapes(old) != _shapes(module):  # a bug, not the user's
            raise RuntimeError(f"a pass changed the parameter shapes of node '{v}': "
                               "checkpoints would depend on the pass settings")
        parts.add_module(attr_name(v), module)
    return parts


def _shapes(module: "nn.Module") -> dict[str, tuple[int, ...]]:
    return {k: tuple(t.shape) for k, t in module.state_dict().items()}


def _keep_originals(module: "nn.Module", parts: "nn.Module") -> None:
    """A GraphModule reads a constant (get_attr L1_coef.value) from a plain copy of its
    owner; put the owner itself back (a ConstCoef, whose dtype conversions rebuild the
    entries exactly: `.double()` of an fx model must not round them through float32)."""
    for name, child in parts.named_children():
        held = getattr(module, name, None)
        if held is not None and held is not child and not any(True for _ in held.parameters()):
            setattr(module, name, child)


def _keep_unused(module: "nn.Module", parts: "nn.Module", ir: IR) -> None:
    """The modules of nodes the optimised IR no longer has (a dead layer) stay submodules,
    so the state_dict is the same with or without passes; their parameters are frozen (no
    gradient can reach them). A GraphModule copies only the modules its graph uses: the
    others are added back. Constants the passes dropped (no state) are left out."""
    from hcdsl.nn.modules import attr_name

    used = {attr_name(v) for v in ir.g.nodes}
    for v in ir.g.nodes:  # a fused parallel block runs its layers' own modules
        p = ir.payload(v)
        if isinstance(p, n.ParallelLayers):
            used |= {attr_name(layer) for layer in p.ids}
    for name, child in parts.named_children():
        if name in used or not child.state_dict():
            continue
        child.requires_grad_(False)
        if not hasattr(module, name):
            module.add_module(name, child)
