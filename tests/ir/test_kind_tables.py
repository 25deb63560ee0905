"""One home per fact about a kind: every IR node kind declares its traits in its payload class
(and the tables once written by hand are views of them), the per-kind tables are filled by
one decorator, payload fields with a fixed set of values share the schemes' Literals, and
every built-in layer kind is one LayerKind record with a module factory.

The messages are written for the author of a new kind: they name the class, the file and
the attribute to add.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from functools import cache
from pathlib import Path

import pytest

from hcdsl.api import lowered
from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.ir.nodes.base import TRAITS
from hcdsl.ir.tables import registrar
from hcdsl.ir.types import Coef

SPECS = sorted((Path(__file__).resolve().parents[2] / "specs").rglob("*.hc"))


def payload_classes() -> list[type[n.Node]]:
    """Every subclass of Node, listed in KINDS or not (a new one is checked all the same)."""
    def below(cls: type) -> list[type]:
        return [c for s in cls.__subclasses__() for c in (s, *below(s))]

    return sorted(set(below(n.Node)), key=lambda c: c.__name__)


@cache
def spec_irs() -> tuple[IR, ...]:
    """The IR of every spec of the repository, before and after the default passes."""
    out = []
    for spec in SPECS:
        lw = lowered(spec)
        out += [lw.raw, lw.ir]
    return tuple(out)


def spec_payloads() -> list[tuple[str, n.Node]]:
    return [(f"{ir.name}:{v}", ir.payload(v)) for ir in spec_irs() for v in ir.g.nodes]


# -- traits ---------------------------------------------------------------------------------
def test_every_payload_class_declares_every_trait() -> None:
    """Set in the class's own body, not inherited: a new kind's author decides each one."""
    problems = []
    for cls in payload_classes():
        where = f"{cls.__name__} (op '{cls.op}', {inspect.getsourcefile(cls)})"
        for trait, meaning in TRAITS.items():
            if trait not in vars(cls):
                problems.append(f"{where}: add `{trait}: ClassVar[bool] = True | False` to "
                                f"the class body ({trait}: {meaning})")
            elif not isinstance(vars(cls)[trait], bool):
                problems.append(f"{where}: `{trait}` is {vars(cls)[trait]!r}, not a bool")
        if "op" not in vars(cls):
            problems.append(f"{where}: add `op: ClassVar[str] = \"...\"` (its name in dumps)")
    assert not problems, "\n".join(problems)


def test_every_op_name_is_unique() -> None:
    ops = [cls.op for cls in n.KINDS]
    assert len(set(ops)) == len(ops), sorted(o for o in ops if ops.count(o) > 1)


# (rule, why): each must hold for every kind
RULES = [
    (lambda k: not k.has_module or k.builds_module,
     "has_module (holds parameters) needs builds_module (a module holds them)"),
    (lambda k: not k.calls_module or k.builds_module,
     "calls_module needs builds_module: there is a module to call"),
    (lambda k: not k.free or not k.builds_module,
     "free (a view) cannot build a module: a view holds nothing"),
    (lambda k: not k.freezable or k.has_module,
     "freezable needs has_module: a trained value to freeze"),
    (lambda k: not (k.pure and k.compute),
     "pure and compute exclude each other: cse never merges the layers' own work"),
    (lambda k: not (k.pure and k.has_module) or k.is_pure is not n.Node.is_pure,
     "pure with parameters must refuse the nodes that hold some (override is_pure)"),
]


@pytest.mark.parametrize("rule,why", RULES, ids=[why.split(" ")[0] for _, why in RULES])
def test_traits_agree(rule, why: str) -> None:
    bad = [k.__name__ for k in payload_classes() if not rule(k)]
    assert not bad, f"{bad}: {why}"


def test_a_rule_can_fail() -> None:
    """The rules are not vacuous: a kind that is a view holding a module breaks one (a
    stand-in class, not a Node: a subclass would join the kinds of the other tests)."""
    broken = type("Broken", (), {t: False for t in TRAITS} | {"free": True,
                                                               "builds_module": True})
    assert [why for rule, why in RULES if not rule(broken)] == [RULES[2][1]]


def test_the_trait_tables_are_the_tuples_they_replace() -> None:
    """The tables once written by hand, now views of the traits, hold what they held."""
    from hcdsl.ir.regions import COMPUTE
    from hcdsl.passes.freeze import FREEZABLE, FREEZE
    from hcdsl.passes.patterns.cse import PURE
    from hcdsl.passes.registry import PATTERNS
    from hcdsl.traffic import FREE

    assert set(PURE) == {n.Split, n.Merge, n.Stack, n.Mix, n.Add, n.ConstCoef, n.Copy,
                         n.SumStreams, n.InvStd, n.Norm}
    assert set(PATTERNS["cse"].kinds) == set(PURE)
    assert set(FREE) == {n.Split, n.Merge, n.Take, n.Tap, n.Input, n.Output, n.Copy}
    assert set(FREEZABLE) == set(FREEZE.kinds) == {n.LearnedCoef, n.TemplateCoef, n.DenseCoef}
    assert set(COMPUTE) == {n.Input, n.Embed, n.Layer, n.ParallelLayers, n.Tap, n.Dropout,
                            n.Unembed, n.Output}
    assert set(n.having("builds_module")) == {
        k for k in n.KINDS if k.has_module} | {n.ConstCoef}
    with pytest.raises(KeyError, match="no trait 'purity'"):
        n.having("purity")


def test_the_backends_and_modules_follow_the_traits() -> None:
    """The kinds lowered as a call of their module, and those without a module."""
    from hcdsl.backends.fx import FX, Builder
    from hcdsl.backends.reference import EVAL
    from hcdsl.nn.modules import MODULES

    called = {k for k in n.KINDS if k.calls_module}
    assert called == {n.Embed, n.Norm, n.Unembed, n.NormStreams, n.LowRank,
                      n.LearnedCoef, n.DenseCoef, n.TemplateCoef, n.GeneratorCoef,
                      n.ChannelGain}
    assert {k for k, rule in FX.items() if rule is Builder.call_module} == called
    assert len({EVAL[k] for k in called}) == 1
    assert {k for k, f in MODULES.items() if f is None} == {
        n.Input, n.Output, n.Split, n.Merge, n.Stack, n.Mix, n.Take, n.Copy, n.SumStreams,
        n.Add, n.Tap, n.InvStd, n.Dropout, n.ChannelWrite}


def test_traits_hold_on_every_node_of_every_spec() -> None:
    """Per node: a pure one holds no parameters, a freezable one is a coefficient that does
    not depend on the tokens, a view holds nothing."""
    problems = []
    for where, p in spec_payloads():
        if p.is_pure() and p.param_count() != 0:
            problems.append(f"{where}: pure but holds {p.param_count()} parameters")
        if p.is_pure() and not type(p).pure:
            problems.append(f"{where}: is_pure() of a kind that is not pure")
        if p.is_freezable() and not type(p).freezable:
            problems.append(f"{where}: is_freezable() of a kind that is not freezable")
        if type(p).free and p.param_count() != 0:
            problems.append(f"{where}: a view with parameters")
    assert not problems, "\n".join(problems[:10])
    seen = {type(p) for _, p in spec_payloads()}
    assert {n.Norm, n.LearnedCoef, n.DenseCoef, n.TemplateCoef} <= seen  # the refined kinds


def test_a_freezable_node_is_a_static_coefficient() -> None:
    count = 0
    for ir in spec_irs():
        for v in ir.g.nodes:
            if ir.payload(v).is_freezable():
                t = ir.type_of(v)
                assert isinstance(t, Coef) and not t.dynamic, (ir.name, v, t)
                count += 1
    assert count > 0


def test_is_pure_and_is_freezable_refine_per_node() -> None:
    assert n.Norm("rmsnorm", False, 1e-5, 8).is_pure()
    assert not n.Norm("rmsnorm", True, 1e-5, 8).is_pure()
    m = ((0.0, 1.0), (1.0, 1.0))
    static = n.LearnedCoef(m, 1, "row", False, True, 0.01, "rmsnorm", True, 1e-5, 8)
    assert static.is_freezable()
    assert not n.LearnedCoef(m, 1, "row", True, True, 0.01, "rmsnorm", True, 1e-5, 8)\
        .is_freezable()
    from hcdsl.schemes.dense import STATIC, mudd_generator, resolve
    assert n.DenseCoef.of(m, STATIC, 8).is_freezable()
    assert not n.DenseCoef.of(m, resolve(mudd_generator(True, False, False), 2, 2), 8)\
        .is_freezable()
    assert not n.Mix((0, 2), (0, 2)).is_freezable()


# -- the table decorator --------------------------------------------------------------------
def test_one_decorator_fills_every_kind_table() -> None:
    from hcdsl.backends import fx, reference
    from hcdsl.nn import modules
    from hcdsl.proofs import at_init, symbolic

    for module, name in ((modules, "module"), (fx, "rule"), (reference, "rule"),
                         (symbolic, "rule"), (at_init, "at_init")):
        assert getattr(module, name).__qualname__ == "registrar.<locals>.register", module


def test_a_kind_registered_twice_is_an_error() -> None:
    table: dict = {}
    register = registrar(table, "TABLE")

    @register(n.Add, n.Mix)
    def first() -> None: ...

    assert table == {n.Add: first, n.Mix: first}
    with pytest.raises(ValueError, match="TABLE: Mix registered twice"):
        register(n.Mix)(lambda: None)
    register(n.Copy)(None)  # "no entry", said explicitly
    assert table[n.Copy] is None


# -- Literal fields -------------------------------------------------------------------------
# a spec's names: any identifier (and a matrix entry over vector params, as written)
OPEN_STRINGS = {(n.Layer, "name"), (n.Layer, "kind"), (n.ChannelGain, "entry")}


def literal_fields() -> list[tuple[type[n.Node], str, tuple]]:
    """(kind, field, allowed values) of every payload field typed by a Literal, also inside
    a tuple (a template's bounds)."""
    out = []
    for cls in n.KINDS:
        for name, hint in typing.get_type_hints(cls).items():
            if name in {f.name for f in dataclasses.fields(cls)}:
                out += [(cls, name, typing.get_args(h)) for h in _literals(hint)]
    return out


def _literals(hint: object) -> list[object]:
    if typing.get_origin(hint) is typing.Literal:
        return [hint]
    return [h for arg in typing.get_args(hint) for h in _literals(arg)]


def test_no_payload_field_is_a_free_string() -> None:
    """A field with a fixed set of values is a Literal (shared with the schemes' and the
    language's), so a typo is caught where the node is made, not three stages later."""
    loose = [f"{cls.__name__}.{name}" for cls in n.KINDS
             for name, hint in typing.get_type_hints(cls).items()
             if hint is str and (cls, name) not in OPEN_STRINGS
             and name in {f.name for f in dataclasses.fields(cls)}]
    assert not loose, f"{loose}: type them with a Literal (hcdsl/schemes/primitive.py, " \
        "hcdsl/lang/) or, for a name from the spec, list them in OPEN_STRINGS"


def test_payload_literals_are_the_schemes_and_languages() -> None:
    from hcdsl.lang.connections import MhcOptions, Param
    from hcdsl.lang.history_generator import (
        HistNorm, HistoryGenerator, HistProj, HistStatic,
    )
    from hcdsl.schemes.primitive import Coef as SchemeCoef
    from hcdsl.spec import NormSpec

    def values(model: type, name: str) -> tuple:
        return typing.get_args(model.model_fields[name].annotation)

    fields = {(cls, name): allowed for cls, name, allowed in literal_fields()}
    assert fields == {
        (n.LearnedCoef, "gain"): values(SchemeCoef, "gain"),
        (n.LearnedCoef, "norm"): values(NormSpec, "kind"),
        (n.DenseCoef, "input"): values(HistoryGenerator, "input"),
        (n.DenseCoef, "norm"): ("none", "rmsnorm"),  # no norm, or HistNorm
        (n.DenseCoef, "norm_weight"): values(HistNorm, "weight"),
        (n.DenseCoef, "proj"): values(HistProj, "kind"),
        (n.DenseCoef, "act"): values(HistoryGenerator, "act"),
        (n.DenseCoef, "mid"): values(HistProj, "mid"),
        (n.DenseCoef, "static"): ("none",) + values(HistStatic, "per"),  # no a, or HistStatic
        (n.DenseCoef, "static_init"): values(HistStatic, "init"),
        (n.TemplateCoef, "params"): values(Param, "bound"),
        (n.TemplateCoef, "shared"): values(Param, "bound"),
        (n.ChannelGain, "params"): values(Param, "bound"),
        (n.ChannelGain, "shared"): values(Param, "bound"),
        (n.GeneratorCoef, "role"): ("step", "readout"),  # a step's M, or the readout
        (n.GeneratorCoef, "names"): values(SchemeCoef, "names"),  # where params are kept
        (n.Norm, "kind"): values(NormSpec, "kind"),
        (n.NormStreams, "kind"): values(NormSpec, "kind"),
    }
    assert values(NormSpec, "kind") == ("layernorm", "rmsnorm")


def test_every_node_of_every_spec_keeps_to_its_literals() -> None:
    problems, checked = [], 0
    for where, p in spec_payloads():
        for cls, name, allowed in literal_fields():
            if type(p) is cls:
                value = getattr(p, name)
                got = ([t[-1] for t in value] if name in ("params", "shared")  # (…, bound)
                       else [value])
                checked += len(got)
                problems += [f"{where}: {name} = {g!r} not in {allowed}"
                             for g in got if g not in allowed]
    assert not problems, problems[:10]
    assert checked > 100


# -- layer kinds ----------------------------------------------------------------------------
def test_every_layer_kind_has_a_module_factory() -> None:
    from hcdsl.lang.catalog import LAYERS
    from hcdsl.nn.modules import LAYER_MODULES

    missing = sorted(set(LAYERS) - set(LAYER_MODULES))
    assert not missing, f"{missing}: register a factory with @layer_module(name) in " \
        "hcdsl/nn/modules.py"
    stray = sorted(set(LAYER_MODULES) - set(LAYERS))
    assert not stray, f"{stray}: a module factory for a kind hcdsl/lang/catalog.py lacks"


def test_the_old_layer_tables_are_views_of_the_records() -> None:
    from hcdsl.lang import catalog as c

    assert c.LAYER_KINDS == {"attention": c.AttentionArgs, "mlp": c.MlpArgs,
                             "layernorm": c.LayerNormArgs, "rmsnorm": c.RmsNormArgs,
                             "opaque": c.OpaqueArgs}
    assert c.LAYER_PORTS == {"attention": ("q", "k", "v")}
    assert c.ports_of("attention") == ("q", "k", "v") and c.ports_of("myblock") == ("x",)
    assert [k for k, r in c.LAYERS.items() if r.attends] == ["attention"]
    assert [k for k, r in c.LAYERS.items() if r.fusable] == ["attention", "mlp"]
    assert [k for k, r in c.LAYERS.items() if r.feed_forward] == ["mlp"]
    assert c.layer_kind("attention", extern=True) is None and c.layer_kind("myblock") is None
    assert not c.attends("attention", extern=True)


@pytest.mark.parametrize("kind", ["attention", "mlp", "layernorm", "rmsnorm", "opaque"])
def test_a_layer_kinds_record_says_what_its_module_is(kind: str) -> None:
    """Built by its factory at its default options: as many parameters as the record counts,
    one input per port, fusable exactly when the module has input projections to fuse,
    attending exactly when it takes the attention mask and can return its values."""
    import torch

    from hcdsl.lang.catalog import LAYERS
    from hcdsl.nn.io import takes_mask
    from hcdsl.nn.modules import LAYER_MODULES

    record, dim = LAYERS[kind], 16
    defaults = {"heads": 2} if kind == "attention" else {}
    args = tuple(record.options.model_validate(defaults).normalised(dim).model_dump().items())
    module = LAYER_MODULES[kind](n.Layer("x", kind, args, dim, record.ports, 1.0))
    assert sum(p.numel() for p in module.parameters()) == record.param_count(args, dim)
    x = torch.randn(2, 3, dim)
    assert module(*[x] * len(record.ports)).shape == x.shape
    assert record.fusable == (hasattr(module, "in_projections") and hasattr(module, "finish"))
    assert record.attends == (takes_mask(module) and hasattr(module, "return_values"))
    assert record.feed_forward <= ("hidden" in record.options.model_fields)
    assert record.args(args).kept(dim, seq=5) > 0


def test_no_code_tests_a_layer_kind_by_its_name() -> None:
    """`kind == "attention"` and the like: ask the kind's record (hcdsl.lang.catalog) for the
    trait instead. The norm kinds are also the norm setting's values, so not counted here."""
    import ast

    from hcdsl.lang.catalog import LAYERS, NormKind

    names = set(LAYERS) - set(typing.get_args(NormKind))
    root = Path(__file__).resolve().parents[2]
    found = []
    for path in sorted([*root.joinpath("hcdsl").rglob("*.py"),
                        *root.joinpath("backends").rglob("*.py")]):
        if path.name == "catalog.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Compare):
                continue
            operands = [node.left, *node.comparators]
            consts = [c.value for o in operands for c in ast.walk(o)
                      if isinstance(c, ast.Constant) and isinstance(c.value, str)]
            if names & set(consts):
                found.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)}")
    assert not found, "\n".join(found)
