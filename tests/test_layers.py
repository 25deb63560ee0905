"""The house stacks in layers and every import points down (docs/architecture.md):

    language < front end < schemes < IR < passes < nn/backends < proofs < API < CLI

Read from the source with `ast`: no module imports a higher layer (the libraries train/,
bench/, wrap/ never the CLI, and know nothing of typer), the modules import each other
without cycles, no function-level import of an hcdsl module dodges one (below the API none
at all; in the API and the CLI a lazy import, for start-up time, must be one that could be
at the top without a cycle), and nothing below nn/backends imports torch.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = [  # (layer, module prefixes), lowest first
    ("language", ("hcdsl.errors", "hcdsl.spec", "hcdsl.lang")),
    ("front end", ("hcdsl.frontend",)),
    ("schemes", ("hcdsl.schemes",)),
    ("IR", ("hcdsl.ir",)),
    ("passes", ("hcdsl.passes",)),
    ("nn/backends", ("hcdsl.nn", "hcdsl.backends")),
    ("proofs", ("hcdsl.proofs",)),
    ("API", ("hcdsl",)),  # everything else: api, counts, kinds, plot, train, bench, wrap, ...
    ("CLI", ("hcdsl.cli", "hcdsl.__main__")),
]
API = 7  # the API's layer; the lists' order decides, not a module's name
NO_TORCH_BELOW = 5  # layers 0-4 never import torch
LIBRARIES = ("hcdsl.train", "hcdsl.bench", "hcdsl.wrap")  # typer-free: the CLI calls them


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
    for i, (_, prefixes) in reversed(list(enumerate(LAYERS))):
        if i != API and any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    return API


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".")
    is_package = MODULES[module].name == "__init__.py"
    base = package if is_package else package[:-1]
    base = base[:len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


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
    """Below the API, a function-level import of our own code is a cycle being dodged; the
    deliberate lazy imports (the API's and the CLI's, for start-up time: torch and what
    imports it) are checked for cycles by test_no_import_cycles."""
    _, inner = imports(module)
    lazy = [n for n in inner if ours(n) is not None and layer_of(module) < API]
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


def torch_path(module: str, seen: frozenset[str] = frozenset()) -> list[str] | None:
    """The chain of top-level imports by which module reaches torch, or None."""
    for name in imports(module)[0]:
        if name == "torch" or name.startswith("torch."):
            return [module, name]
        target = ours(name)
        if target is None or target == module or target in seen \
                or module.startswith(target + "."):
            continue
        chain = torch_path(target, seen | {module})
        if chain is not None:
            return [module, *chain]
    return None


@pytest.mark.parametrize("module", [m for m in sorted(MODULES) if m.startswith("hcdsl.proofs")
                                    and m not in PROOFS_WITH_TORCH])
def test_the_symbolic_prover_never_reaches_torch(module: str) -> None:
    """Not even through a module of ours (attr_name once pulled torch in through nn)."""
    chain = torch_path(module)
    assert chain is None, " -> ".join(chain or [])


def test_the_layer_table_covers_every_package() -> None:
    """A new package lands in a named layer, not by accident in API/CLI."""
    known = {p for _, prefixes in LAYERS for p in prefixes}
    top_level = {".".join(m.split(".")[:2]) for m in MODULES if m.count(".") >= 1}
    packages = {m for m in top_level if (MODULES.get(m) or Path()).name == "__init__.py"}
    api_packages = {"hcdsl.cli", "hcdsl.train", "hcdsl.bench", "hcdsl.wrap"}
    assert packages <= known | api_packages, sorted(packages - known - api_packages)
