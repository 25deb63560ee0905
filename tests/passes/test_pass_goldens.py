"""Per-pass golden cases (tests/passes/<pass>/<case>.ir, format in tests/passes/README.md): the
input IR, parsed, after exactly that one pass run by the driver to its fixed point, is the
expected IR; a case marked unchanged must not fire; the expected IR computes what the input
computes (reference backend: logits and every parameter's gradient), and every registered
pass has a case where it fires."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import hcdsl.passes  # noqa: F401 - registers every pattern
from hcdsl.backends.reference import ReferenceModel
from hcdsl.ir.graph import IR
from hcdsl.ir.text import differences, dump_exact, parse, same
from hcdsl.ir.verify import verify
from hcdsl.nn.modules import build_parts
from hcdsl.passes.driver import rewrite
from hcdsl.passes.registry import PATTERNS, get
from helpers import perturb

pytestmark = pytest.mark.usefixtures("one_thread")

HERE = Path(__file__).parents[1] / "passes"
CASES = sorted(HERE.glob("*/*.ir"))
INPUT, EXPECTED, UNCHANGED = "// input", "// expected", "// expected: unchanged"


class Case:
    """One golden file: its pass (the folder), the input text and the expected text (None:
    the pass must leave the input unchanged)."""

    def __init__(self, path: Path) -> None:
        self.path, self.pass_name = path, path.parent.name
        lines = path.read_text().splitlines(keepends=True)
        marks = [i for i, ln in enumerate(lines) if ln.rstrip("\n") in (INPUT, EXPECTED, UNCHANGED)]
        assert [lines[i].rstrip("\n") for i in marks] in ([INPUT, EXPECTED], [INPUT, UNCHANGED]), (
            f"{path}: needs a line '{INPUT}' and then '{EXPECTED}' or '{UNCHANGED}'")
        self.header = lines[:marks[0]]
        self.input = "".join(lines[marks[0] + 1:marks[1]])
        rest = "".join(lines[marks[1] + 1:])
        self.expected = rest if lines[marks[1]].rstrip("\n") == EXPECTED else None
        if self.expected is None:
            assert not rest.strip(), f"{path}: text after '{UNCHANGED}'"

    def parse_input(self) -> IR:
        return parse(self.input, f"{self.path.name} (input)")


def load(path: Path) -> Case:
    return Case(path)


def test_every_registered_pass_has_a_case_where_it_fires() -> None:
    folders = {p.name for p in HERE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders <= set(PATTERNS), f"folders of no pass: {sorted(folders - set(PATTERNS))}"
    firing = {c.pass_name for c in map(load, CASES) if c.expected is not None}
    assert set(PATTERNS) <= firing, f"passes without a case: {sorted(set(PATTERNS) - firing)}"


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_pass_golden(path: Path) -> None:
    case = load(path)
    # the reviewer's note: what changed and why it is right (README.md)
    assert sum(ln.startswith("//") for ln in case.header) >= 3, f"{path}: no note"
    ir = case.parse_input()
    verify(ir, after="parse")
    assert dump_exact(ir) == case.input, f"{path}: the input is not in dump_exact's form"
    fired = rewrite(ir, [get(case.pass_name)], check=True, prune_first=False)
    if case.expected is None:
        assert not fired, f"{case.pass_name} fired on {path.name}, which is marked unchanged"
        assert same(ir, case.parse_input())
        return
    assert fired and set(fired) == {case.pass_name}
    got = dump_exact(ir)
    assert got == case.expected, (
        f"{path}: {case.pass_name} gives another IR ({differences(ir, parse(case.expected))}); "
        "if intended, regenerate with tests/passes/regen.py and read the diff")
    assert same(ir, parse(case.expected, f"{path.name} (expected)"))
    assert not rewrite(ir, [get(case.pass_name)], prune_first=False), "not a fixed point"


def outputs(ir: IR, state: dict[str, torch.Tensor] | None, tokens: torch.Tensor,
            probe: torch.Tensor):
    """Reference-backend logits, state_dict and gradients of sum(logits * probe); weights
    from `state` where given (the names are node ids, the same on both sides of a pass)."""
    torch.manual_seed(0)
    model = ReferenceModel(ir, build_parts(ir, seed=3)).double()
    if state is None:
        perturb(model, seed=5)  # off the init: zero gates and unit gains hide nothing
    else:
        mine = model.state_dict()
        made = sorted(set(mine) - set(state))
        assert not made, f"parameters the pass made: {made}"
        model.load_state_dict({k: state[k] for k in mine})
    model.eval()
    logits = model(tokens)
    (logits * probe).sum().backward()
    grads = {k: p.grad for k, p in model.named_parameters()}
    return logits.detach(), model.state_dict(), grads


@pytest.mark.parametrize("path", [p for p in CASES if UNCHANGED not in p.read_text()],
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_pass_golden_preserves_numerics(path: Path) -> None:
    """The expected IR (as written in the file, not as the pass makes it now) computes the
    input IR's function: the same logits and the same gradient for every parameter."""
    case = load(path)
    before, after = case.parse_input(), parse(case.expected)
    tokens = torch.randint(0, 32, (2, 5), generator=torch.Generator().manual_seed(0))
    probe = torch.randn(2, 5, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    out_a, state, grads_a = outputs(before, None, tokens, probe)
    out_b, _, grads_b = outputs(after, state, tokens, probe)
    assert (out_a - out_b).abs().max().item() <= 1e-10
    for name, g in grads_b.items():
        ref = grads_a[name]
        assert g is not None and ref is not None, f"{name}: no gradient"
        assert (g - ref).abs().max().item() <= 1e-9 * max(1.0, ref.abs().max().item()), name
