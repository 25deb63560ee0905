"""One home per node kind: every kind of IR node has every entry its stages need (module,
fx lowering, reference evaluation, symbolic rule, value at init), and its parameter count
from shapes is what the module really holds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import hcdsl
from hcdsl.ir import nodes as n
from hcdsl.kinds import missing, table
from hcdsl.nn.modules import attr_name

SPECS = sorted((Path(__file__).resolve().parents[2] / "specs").rglob("*.hc"))


def test_every_kind_has_every_entry() -> None:
    assert missing() == []


def test_the_table_lists_every_payload_class() -> None:
    """A payload class that is not in KINDS would have no entries checked."""
    def subclasses(cls: type) -> set[type]:
        return {c for s in cls.__subclasses__() for c in (s, *subclasses(s))}

    assert subclasses(n.Node) == set(n.KINDS)
    assert set(table()) == {k.op for k in n.KINDS}


def test_a_missing_entry_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    from hcdsl.backends import fx

    monkeypatch.delitem(fx.FX, n.Mix)
    assert "mix: no fx rule" in missing()


@pytest.mark.parametrize("spec", [s for s in SPECS if "olmo" not in s.name
                                  and "pythia" not in s.name], ids=lambda p: p.stem)
def test_param_count_from_shapes_matches_the_modules(spec: Path) -> None:
    """Every node's param_count (what `hcdsl stats` adds up without torch) is exactly the
    number of parameters its module holds."""
    with torch.device("meta"):
        model = hcdsl.compile(spec, passes=None, seed=0)
    ir = model.hc_ir
    for v in ir.g.nodes:
        p = ir.payload(v)
        if not p.has_module:
            continue
        module = model.get_submodule(attr_name(v))
        own = sum(t.numel() for t in module.parameters())
        if isinstance(p, n.Unembed) and p.tied:
            own = 0  # the embedding's weight, counted there
        assert p.param_count() == own, (v, p.op)


def test_a_module_against_the_builds_module_trait_is_reported(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from hcdsl.nn import modules

    monkeypatch.setitem(modules.MODULES, n.Mix, lambda p, ctx: None)
    monkeypatch.setitem(modules.MODULES, n.ConstCoef, None)
    assert set(missing()) == {"mix: has a module factory but its class says builds_module = False",
                              "const: builds_module but its MODULES entry is None"}
