"""The house stacks in layers and every import points down (docs/architecture.md):

    language < front end < schemes < IR < passes < nn/backends
      < analysis < compiler < proofs < api < apps < cli          (the attic)

Read from the source with `ast`: no module imports a higher layer (the libraries train/,
bench/, wrap/ never the CLI, and know nothing of typer), the modules import each
other without cycles (function-level imports counted: none dodges one), only the attic
imports our own code inside a function (to load torch late), nothing below nn/backends
imports torch, and no module outside hcdsl/compiler.py chains the stages (front end,
scheme, IR, passes, modules, backend) itself.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = [  # (layer, module prefixes), lowest first; a module is in its longest prefix's
    ("language", ("hcdsl.errors", "hcdsl.spec", "hcdsl.lang")),
    ("front end", ("hcdsl.frontend",)),
    ("schemes", ("hcdsl.schemes",)),
    ("IR", ("hcdsl.ir",)),
    ("passes", ("hcdsl.passes",)),
    ("nn/backends", ("hcdsl.nn", "hcdsl.backends")),
    # the attic: what compiles, reads and runs compiled models
    ("analysis", ("hcdsl.memory",)),  # estimates over an IR, which the compiler checks
    ("compiler", ("hcdsl.compiler",)),  # the one owner of the stage sequence
    ("proofs", ("hcdsl.proofs",)),
    ("api", ("hcdsl", "hcdsl.api", "hcdsl.counts", "hcdsl.traffic", "hcdsl.kinds",
             "hcdsl.plot", "hcdsl.wrap")),  # "hcdsl": the package itself (lazy names)
    ("apps", ("hcdsl.train", "hcdsl.bench", "hcdsl.smoke")),
    ("cli", ("hcdsl.cli", "hcdsl.__main__")),
]
NO_TORCH_BELOW = 5  # layers 0-4 never import torch
LIBRARIES = ("hcdsl.train", "hcdsl.bench", "hcdsl.wrap")  # typer-free: the CLI calls them
ATTIC = 6  # layers from here on may import our own code inside a function (torch late)


def module_files() -> dict[str, Path]:
    out = {}
    for base, prefix in ((ROOT / "hcdsl", "hcdsl"), (ROOT / "backends", "hcdsl.backends")):
        for path in base.rglob("*.py"):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([prefix, *parts])] = path
    return out


MODULES = module_files()


def layer_of(module: str) -> int:
    """The layer of a module: its longest prefix's ("hcdsl" itself: only the package)."""
    best, found = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".") and p != "hcdsl") and len(p) > best:
                best, found = len(p), i
    assert found is not None, f"{module} is in no layer of LAYERS"
    return found


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".")
    is_package = MODULES[module].name == "__init__.py"
    base = package if is_package else package[:-1]
    base = base[:len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


@lru_cache(maxsize=None)
def imports(module: str) -> tuple[list[str], list[str]]:
    """(top-level imports, function-level imports) of a module, TYPE_CHECKING blocks
    excluded, each as the imported module's dotted name (a `from m import x` names m.x
    when m.x is a module of ours, else m)."""
    tree = ast.parse(MODULES[module].read_text())
    top: list[str] = []
    inner: list[str] = []

    def names(node: ast.AST) -> list[str]:
        if isinstance(node, ast.Import):
            return [a.name for a in node.names]
        assert isinstance(node, ast.ImportFrom)
        base = _resolve(module, node)
        return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                for a in node.names]

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                (inner if nested else top).extend(names(child))
            else:
                visit(child, nested or isinstance(
                    child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return top, inner


def ours(name: str) -> str | None:
    """The module of ours an import names (the longest known prefix), or None."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module: str) -> None:
    top, inner = imports(module)
    mine = layer_of(module)
    for name in top + inner:
        target = ours(name)
        if target is None or target == module:
            continue
        assert layer_of(target) <= mine, (
            f"{module} ({LAYERS[mine][0]}) imports {target} ({LAYERS[layer_of(target)][0]})")


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_function_level_imports_of_hcdsl(module: str) -> None:
    """Below the attic a function-level import of our own code is a cycle being dodged; the
    attic's load torch late (a module built only when asked for), and the cycle test below
    counts them, so none of those dodges a cycle either."""
    _, inner = imports(module)
    lazy = [n for n in inner if ours(n) is not None and layer_of(module) < ATTIC]
    assert not lazy, f"{module} imports {lazy} inside a function"


def imported(target: str) -> list[str]:
    """What importing `target` runs: the packages above it (their __init__) and itself."""
    parts = target.split(".")
    return [m for m in (".".join(parts[:i]) for i in range(2, len(parts) + 1)) if m in MODULES]


def test_no_import_cycles() -> None:
    """No cycle, counting function-level imports (a lazy import that would close a cycle at
    the top is a cycle dodged) and the package __init__ each import runs first."""
    g = nx.DiGraph()
    for module in MODULES:
        top, inner = imports(module)
        for name in top + inner:
            target = ours(name)
            for runs in imported(target) if target is not None else ():
                if runs != module and not module.startswith(runs + "."):
                    g.add_edge(module, runs)
    cycles = list(nx.simple_cycles(g))
    assert not cycles, f"import cycles: {cycles[:5]}"


@pytest.mark.parametrize("module", [m for m in sorted(MODULES) if m.startswith(LIBRARIES)])
def test_the_libraries_know_no_cli(module: str) -> None:
    """train/, bench/ and wrap/ are libraries: the CLI imports them, never the reverse, and
    none of them imports typer (a command's options and exit status are the CLI's)."""
    top, inner = imports(module)
    assert not [n for n in top + inner if n == "typer" or n.startswith(("typer.", "click"))]
    assert not [n for n in top + inner if (ours(n) or "").startswith("hcdsl.cli")], module


@pytest.mark.parametrize("module", [m for m in sorted(MODULES) if layer_of(m) < NO_TORCH_BELOW])
def test_no_torch_below_nn(module: str) -> None:
    top, inner = imports(module)
    assert not [n for n in top + inner if n == "torch" or n.startswith("torch.")], module


# the prover's numeric side runs models (torch): witnesses, checkpoints, side conditions checked
# on random inputs, unfolding a trained model; the symbolic side (terms, rules, identity) does
# not, and a new proofs module is torch-free unless it is named here
PROOFS_WITH_TORCH = {
    "hcdsl.proofs.arrangement", "hcdsl.proofs.checkpoint", "hcdsl.proofs.numeric",
    "hcdsl.proofs.prove", "hcdsl.proofs.rules", "hcdsl.proofs.shapes", "hcdsl.proofs.side",
    "hcdsl.proofs.unfold",
    "hcdsl.proofs.witness",
}


_VISITING: set[str] = set()  # the modules on the current path (the import graph is acyclic:
#                              test_no_import_cycles; this only guards the walk)


@lru_cache(maxsize=None)
def torch_path(module: str) -> tuple[str, ...] | None:
    """The chain of top-level imports by which module reaches torch, or None (each module
    walked once: without the cache the walk re-reads every path, exponential in depth)."""
    _VISITING.add(module)
    try:
        for name in imports(module)[0]:
            if name == "torch" or name.startswith("torch."):
                return (module, name)
            target = ours(name)
            if target is None or target == module or target in _VISITING \
                    or module.startswith(target + "."):
                continue
            chain = torch_path(target)
            if chain is not None:
                return (module, *chain)
        return None
    finally:
        _VISITING.discard(module)


@pytest.mark.parametrize("module", [m for m in sorted(MODULES) if m.startswith("hcdsl.proofs")
                                    and m not in PROOFS_WITH_TORCH])
def test_the_symbolic_prover_never_reaches_torch(module: str) -> None:
    """Not even through a module of ours (attr_name once pulled torch in through nn)."""
    chain = torch_path(module)
    assert chain is None, " -> ".join(chain or [])


def test_the_layer_table_covers_every_module() -> None:
    """A new module or package lands in a named layer, never by accident."""
    missing = []
    for module in MODULES:
        try:
            layer_of(module)
        except AssertionError:
            missing.append(module)
    assert not missing, missing


# The stages and the one module that may chain them (hcdsl/compiler.py). A stage's own
# package may use it (the front end parses, the IR builds), and the modules that a stage
# hands its work to: nn/assemble.py lowers to the backends; the prover builds reference
# models of the IRs it reads (proofs/: assemble + the reference interpreter).
STAGES = {  # (module, name) -> modules (prefixes) that may import it besides its own package
    ("hcdsl.frontend.validate", "check"): ("hcdsl.compiler",),
    ("hcdsl.frontend.validate", "validate"): ("hcdsl.compiler",),
    ("hcdsl.frontend.parser", "parse_syntax"): ("hcdsl.compiler",),
    ("hcdsl.schemes", "desugar"): ("hcdsl.compiler",),
    ("hcdsl.ir.build", "build"): ("hcdsl.compiler",),
    ("hcdsl.passes.pipeline", "run_pipeline"): ("hcdsl.compiler",),
    ("hcdsl.passes.driver", "rewrite"): ("hcdsl.compiler",),
    ("hcdsl.nn.modules", "build_parts"): (),
    ("hcdsl.nn.assemble", "assemble"): ("hcdsl.compiler", "hcdsl.proofs"),
    ("hcdsl.nn.assemble", "lower"): ("hcdsl.compiler",),
    ("hcdsl.nn.assemble", "lower_plain"): ("hcdsl.compiler",),
    ("hcdsl.backends", "lower_fx"): ("hcdsl.nn.assemble",),
    ("hcdsl.backends.fx", "lower_fx"): ("hcdsl.nn.assemble",),
    ("hcdsl.backends", "ReferenceModel"): ("hcdsl.nn.assemble", "hcdsl.proofs"),
    ("hcdsl.backends.reference", "ReferenceModel"): ("hcdsl.nn.assemble", "hcdsl.proofs"),
}


def stage_imports(module: str) -> list[tuple[str, str]]:
    """The (module, name) stages a module imports (from m import name), anywhere in it."""
    out = []
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.ImportFrom):
            base = _resolve(module, node)
            out += [(base, a.name) for a in node.names if (base, a.name) in STAGES]
    return out


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_stage_assembly_outside_the_compiler(module: str) -> None:
    """Only hcdsl/compiler.py runs text -> spec -> scheme -> IR -> passes -> modules ->
    backend; everyone else asks a Compilation (issue 20)."""
    for (where, name) in stage_imports(module):
        own = ".".join(where.split(".")[:2])  # the stage's package: hcdsl.frontend, ...
        allowed = (own, *STAGES[(where, name)])
        assert any(_within(module, p) for p in allowed), (
            f"{module} imports the stage {where}.{name}: ask hcdsl.compiler.Compilation")


def test_the_stage_rule_sees_the_stages() -> None:
    """The rule finds the imports it forbids: the compiler's own are all of the front end,
    scheme, IR and pass stages."""
    assert {("hcdsl.frontend.validate", "check"), ("hcdsl.schemes", "desugar"),
            ("hcdsl.ir.build", "build"), ("hcdsl.passes.pipeline", "run_pipeline")} <= set(
        stage_imports("hcdsl.compiler"))
