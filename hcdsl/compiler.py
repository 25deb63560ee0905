"""One `Compilation` owns the stage sequence of a spec; every entry point goes through it.

    text / Path / ModelSpec / Program
      -> checked spec (front end; its Source and the span index of what it declares)
      -> scheme (the connection desugared to the primitive form)
      -> raw IR (before passes: the modules come from it)
      -> optimised IR, one per pass list
      -> modules (nn/assemble.py) -> a backend's module (fx GraphModule or the reference)

Each stage runs once per Compilation and is kept on it (a frozen object with a private
cache), so the trainer, `hcdsl.stats`, the memory check and the prover ask one object
instead of compiling the spec again. The IR is mutable (networkx): the cached graphs are
never handed out; `raw_ir()` and `ir()` give copies, and every module gets its own copy,
so no caller can corrupt what later callers read. Modules are built fresh on each call
(they hold weights that their caller trains).

A caller that makes a Compilation for one question (`hcdsl.lower(text)`, `hcdsl check`)
loads it with once=True: then an IR is handed out itself, not a copy, and the Compilation
keeps no reference to it (asked again, it computes it again), so one question costs what
the stages cost and no copy more (benchmarks/engine.py).

Errors: a mistake in the spec is an HcError located by the front end; a preset that cannot
apply is reported at the `connect` line; `located(...)` is the one place where an error
about a declared name (a setting, a layer) gets its file, line and column.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hcdsl import memory
from hcdsl.errors import CompileError, Diagnostic, HcError
from hcdsl.frontend.source import Source, read_path, text_source
from hcdsl.frontend.validate import Checked, check
from hcdsl.ir import nodes as n
from hcdsl.ir.build import build
from hcdsl.ir.graph import IR
from hcdsl.ir.verify import verify
from hcdsl.lang.catalog import LAYER_KINDS
from hcdsl.passes.freeze import freeze_coefficients
from hcdsl.passes.pipeline import DEFAULT, run_pipeline
from hcdsl.schemes import desugar
from hcdsl.schemes.program import Program, SpecLike, declared_ports, with_ports
from hcdsl.schemes.registry import SchemeError
from hcdsl.spec import ConnectionSpec, ModelSpec

if TYPE_CHECKING:  # torch is imported where a module is built
    import torch
    from torch import nn

Layers = Collection[str] | Mapping[str, object]
BACKENDS = ("fx", "reference")


def source_of(spec: str | Path) -> Source:
    """A str is spec text; a Path is a file to read."""
    if isinstance(spec, Path):
        return read_path(spec)
    return text_source(spec)


def _passes_key(passes: Iterable[str] | None, disable: Iterable[str]) -> tuple:
    return (None if passes is None else tuple(passes), tuple(sorted(set(disable))))


@dataclass(frozen=True, eq=False)
class Compilation(Program):
    """A spec and every stage computed from it, each once (see the module doc)."""

    checked: Checked | None = None  # None: built from a ModelSpec in Python
    once: bool = False  # made for one question: IR handed out, not copied (module doc)
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    # -- loading ------------------------------------------------------------------------
    @classmethod
    def load(cls, spec: SpecLike | Program, layers: Layers = (),
             once: bool = False) -> "Compilation":
        """Text, a file (Path), a ModelSpec, a Program, a Compilation or a wrapped model
        (hcdsl.wrap's, which keeps its own) -> a Compilation (HcError on any mistake).
        layers: the names of extern layers (so `extern` may be left out), or the factories
        by name, whose `ports` attributes declare their input ports. A Compilation whose
        ports already agree is returned as it is (with its own `once`)."""
        held = getattr(spec, "hc_compilation", None)
        if isinstance(held, Compilation):  # a wrapped model
            spec = held
        ports = declared_ports(layers)
        if isinstance(spec, Program):
            fixed = with_ports(spec.spec, ports)
            if isinstance(spec, Compilation) and fixed is spec.spec:
                return spec
            if fixed is spec.spec:
                return cls(spec.spec, spec.scheme, spec.source,
                           getattr(spec, "checked", None), once)
            return cls.from_spec(fixed, spec.source, once)
        if isinstance(spec, ModelSpec):
            return cls.from_spec(with_ports(spec, ports), once=once)
        if not isinstance(spec, (str, Path)):
            raise TypeError(f"a spec is .hc text (str), a pathlib.Path or a ModelSpec, got "
                            f"{type(spec).__name__}")
        return cls.from_source(source_of(spec), layers, once)

    @classmethod
    def from_source(cls, source: Source, layers: Layers = (),
                    once: bool = False) -> "Compilation":
        """Spec text already read (a Source: its text and file name)."""
        checked = check(source, declared_ports(layers))
        try:
            return cls(checked.spec, desugar(checked.spec), checked.source, checked, once)
        except SchemeError as exc:
            raise HcError([Diagnostic(str(exc), checked.connect_span, exc.hint)],
                          source.filename, source.text) from None

    @classmethod
    def from_spec(cls, spec: ModelSpec, source: Source | None = None,
                  once: bool = False) -> "Compilation":
        clash = [layer.name for layer in spec.layers
                 if layer.extern and layer.kind in LAYER_KINDS]
        if clash:  # the schemes would take it for the built-in (its ports, its taps)
            raise HcError([Diagnostic(f"extern layer '{clash[0]}' has the kind of a built-in "
                                      f"layer ('{spec.layer(clash[0]).kind}')", None,
                                      "give the extern layer's kind another name")],
                          spec.name, "")
        try:
            return cls(spec, desugar(spec), source, None, once)
        except SchemeError as exc:
            raise HcError([Diagnostic(f"connection {spec.connection.kind}: {exc}", None,
                                      exc.hint)], spec.name, "") from None

    @property
    def program(self) -> Program:
        return Program(self.spec, self.scheme, self.source)

    def baseline(self) -> "Compilation":
        """The same spec connected by Pre-Norm residual (HC paper, arXiv 2409.19606,
        Eq. 15): what extra parameters and traffic are measured against."""
        if "baseline" not in self._cache:
            self._cache["baseline"] = Compilation.from_spec(self.spec.model_copy(update={
                "connection": ConnectionSpec(kind="residual")}), once=self.once)
        return self._cache["baseline"]

    # -- errors -------------------------------------------------------------------------
    def located(self, message: str, where: str | None = None,
                hint: str | None = None) -> HcError:
        """An HcError about a declared name ("setting vocab", "layer attn", "connect"),
        at its line and column in the source; at the file when the spec does not write it
        (or was built in Python)."""
        span = None
        if self.checked is not None and where is not None:
            span = self.checked.spans.get(where)
        if self.source is None:
            return HcError([Diagnostic(message, None, hint)], self.spec.name, "")
        return HcError([Diagnostic(message, span, hint)], self.source.filename,
                       self.source.text)

    # -- the IR -------------------------------------------------------------------------
    def _build(self) -> IR:
        ir = build(self.spec, self.scheme)
        verify(ir, after="build")
        return ir

    @staticmethod
    def _optimise(ir: IR, key: tuple) -> IR:
        run_pipeline(ir, key[0], key[1])
        verify(ir, after="pipeline")
        return ir

    def _raw(self) -> IR:
        """The kept raw IR (never handed out)."""
        if "raw" not in self._cache:
            self._cache["raw"] = self._build()
        return self._cache["raw"]

    def _ir(self, passes: Iterable[str] | None = DEFAULT, disable: Iterable[str] = ()) -> IR:
        """The kept IR after passes (never handed out)."""
        key = _passes_key(passes, disable)
        if key[0] is None:
            return self._raw()
        if key not in self._cache:  # the passes rewrite a copy: the raw IR stays as built
            self._cache[key] = self._optimise(self._raw().copy(), key)
        return self._cache[key]

    def raw_ir(self) -> IR:
        """The verified IR before any pass, the caller's own (a copy; once: the IR itself,
        no longer kept)."""
        if not self.once:
            return self._raw().copy()
        kept = self._cache.pop("raw", None)
        return kept if kept is not None else self._build()

    def ir(self, passes: Iterable[str] | None = DEFAULT, disable: Iterable[str] = ()) -> IR:
        """The verified IR after the pass pipeline (None: none), the caller's own (a copy;
        once: the IR itself, no longer kept)."""
        key = _passes_key(passes, disable)
        if key[0] is None:
            return self.raw_ir()
        if not self.once:
            return self._ir(passes, disable).copy()
        kept = self._cache.pop(key, None)
        if kept is not None:
            return kept
        raw = self._cache.get("raw")  # kept for the modules: the passes rewrite a copy
        return self._optimise(raw.copy() if raw is not None else self._build(), key)

    def estimate(self, passes: Iterable[str] | None = DEFAULT, disable: Iterable[str] = (),
                 batch: int = 0, seq: int = 0, dtype_bytes: int = 4,
                 use: str = "compile") -> memory.Estimate:
        """hcdsl/memory.py's estimate of a use of this model (weights from the raw IR,
        activations from the optimised one)."""
        return memory.estimate(self._raw(), self._ir(passes, disable), batch, seq,
                               dtype_bytes, use)

    # -- modules ------------------------------------------------------------------------
    def module(  # noqa: PLR0913 - hcdsl.compile's options
        self, *, backend: str = "fx", passes: Iterable[str] | None = DEFAULT,
        disable: Iterable[str] = (), layers: Mapping[str, Any] | None = None,
        seed: int | None = None, device: "str | torch.device | None" = None,
        dtype: "torch.dtype | None" = None, recompute: bool | str = False,
        recompute_every: int | None = None,
        state_dict: "Mapping[str, torch.Tensor] | None" = None, freeze: bool = False,
        check_memory: bool = True,
    ) -> "nn.Module":
        """A new module of the model (hcdsl.compile documents the options): the modules
        of the raw IR, running the optimised IR on `backend`."""
        import torch

        from hcdsl.nn.assemble import assemble, load_weights, lower, static_matrices

        if backend not in BACKENDS:
            raise CompileError(f"unknown backend '{backend}': choose 'fx' or 'reference'")
        factories = dict(layers or {})
        raw = self._raw()
        if check_memory and _allocates(device):
            itemsize = (dtype or torch.get_default_dtype()).itemsize
            est = memory.estimate(raw, dtype_bytes=itemsize)
            memory.check(est, f"model '{self.spec.name}'")
            if device is not None and torch.device(device).type == "cuda":
                memory.check(est, f"model '{self.spec.name}'", device)
        raw_parts = assemble(raw, raw, factories, seed, dtype)
        if state_dict is not None:
            load_weights(raw_parts, state_dict)
        if freeze:  # the passes run once the trained values are in the IR
            ir = raw.copy()
            freeze_coefficients(ir, static_matrices(ir, raw_parts))
            if passes is not None:
                run_pipeline(ir, passes, disable)
                verify(ir, after="pipeline")
        else:
            ir = self.ir(passes, disable)
        parts = assemble(raw, ir, factories, seed, dtype, parts=raw_parts)
        every = memory.layers_per_segment(ir, recompute, recompute_every)  # checks both
        module = lower(ir, parts, backend, recompute, every)
        if freeze:
            module.requires_grad_(False)
        return module.to(device=device, dtype=dtype)

    def wrapped_module(self, passes: Iterable[str] | None, layers: Mapping[str, Any],
                       given: Callable[[IR], Mapping[str, "nn.Module"]], seed: int | None,
                       device: "torch.device | None", dtype: "torch.dtype | None",
                       backend: str = "fx") -> tuple["nn.Module", IR]:
        """hcdsl.wrap's rule: the modules of the IR that runs, the ones given(ir) maps by
        node id used as they are (the wrapped model's own: they stay where they are), the
        connection's new ones moved to the model's device and dtype; (module, its IR)."""
        from hcdsl.nn.assemble import assemble, attr_name, lower_plain

        ir = self.ir(passes)
        mine = given(ir)
        parts = assemble(ir, ir, layers, seed, dtype, prebuilt=mine)
        kept = {attr_name(v) for v in mine} | {
            attr_name(v) for v in ir.g.nodes if isinstance(ir.payload(v), n.Layer)}
        for name, child in parts.named_children():  # the connection's modules join the model
            if name not in kept:
                child.to(device=device, dtype=dtype)
        return lower_plain(ir, parts, backend), ir


def _allocates(device: "str | torch.device | None") -> bool:
    """False on the meta device (`hcdsl show --code` builds there: nothing is allocated)."""
    import torch

    target = torch.device(device) if device is not None else torch.get_default_device()
    return target.type != "meta"


def checked(source: Source, layers: Layers = ()) -> Checked:
    """The front end alone: text -> a validated spec with its span index (the trainer
    compares the spec a checkpoint was written for with its own)."""
    return check(source, declared_ports(layers))
