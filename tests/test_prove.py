"""hcdsl.prove: the equivalences and refutations of issue 4, and each canonicalisation pass."""

from __future__ import annotations

from pathlib import Path

import pytest

import hcdsl
from hcdsl.api import parse
from hcdsl.ir import nodes as n
from hcdsl.passes.registry import get
from hcdsl.proofs.prove import prove
from hcdsl.proofs.source import raw_ir
from hcdsl.proofs.reference_forms import hc_literal_spec, hc_parallel_matrices, paper_parallel

P, D = Path("specs/proofs"), Path("specs/duality")


def names(result):  # noqa: ANN001, ANN201
    return [a.name for a in result.assumptions]


# -- equivalences ------------------------------------------------------------------------
def test_prenorm_is_hc_n1() -> None:
    r = prove(P / "prenorm.hc", P / "hc_prenorm_n1.hc")
    assert r.equivalent and names(r) == [] and not r.at_init
    assert "isomorphism" in r.method


def test_postnorm_is_hc_n1_with_eq16_weights() -> None:
    r = prove(P / "postnorm.hc", P / "hc_postnorm_n1.hc")
    assert r.equivalent
    assert set(names(r)) == {"no-affine", "no-eps", "mean-zero"}  # App. E.2's three
    text = r.render()
    assert "norm without affine" in text and "mean 0" in text and "eps ignored" in text


def test_postnorm_needs_its_assumptions() -> None:
    r = prove(P / "postnorm.hc", P / "hc_postnorm_n1.hc", assume=["no-eps"], witness=False)
    assert not r.equivalent


@pytest.mark.parametrize("n_streams", [2, 3, 4])
def test_hc_sequential_is_prenorm(n_streams: int) -> None:
    r = prove(P / "prenorm.hc", D / f"hc_sequential_n{n_streams}.hc")
    assert r.equivalent
    assert names(r) == ["scale-invariant"]  # the readout is n x h: only the final norm hides it


def test_hc_sequential_without_scale_invariance_is_refuted() -> None:
    r = prove(P / "prenorm.hc", D / "hc_sequential_n2.hc", assume=[], witness=False)
    assert not r.equivalent and "c_7,0: A 1 vs B 2" in r.difference


def test_hc_parallel_is_paper_parallel_arrangement() -> None:
    r = prove(D / "hc_parallel_n2.hc", paper_parallel(D / "hc_parallel_n2.hc", 2))
    assert r.equivalent and names(r) == []


def test_hc_parallel_is_the_paper_parallel_spec() -> None:
    """The same arrangement written in .hc: connect parallel(residual=each)."""
    r = prove(D / "hc_parallel_n2.hc", D / "paper_parallel.hc")
    assert r.equivalent and names(r) == []


def test_paper_parallel_spec_is_not_gptj() -> None:
    r = prove(D / "paper_parallel.hc", D / "gptj_parallel.hc")
    assert not r.equivalent and r.witness is not None


@pytest.mark.parametrize("spec", ["shc_n4.hc", "dhc_n4.hc", "dhc_n2_notanh.hc"])
def test_hc_at_init_is_prenorm(spec: str) -> None:
    r = prove(P / "prenorm.hc", P / spec, at_init=True)
    assert r.equivalent and r.at_init and names(r) in ([], ["scale-invariant"])
    assert "at init" in r.render()


def test_learned_hc_is_not_prenorm_for_all_parameters() -> None:
    r = prove(P / "prenorm.hc", P / "shc_n4.hc")
    assert not r.equivalent and "symbolic in the learned entries" in r.method
    assert r.witness is not None and r.witness.max_diff > 1e-3


def test_same_learned_parametrisation_is_equivalent() -> None:
    assert prove(P / "shc_n4.hc", P / "shc_n4.hc").equivalent


# -- refutations with counterexamples -----------------------------------------------------
@pytest.mark.parametrize("a, b", [
    (D / "hc_parallel_n2.hc", P / "prenorm.hc"),
    (D / "hc_parallel_n2.hc", D / "gptj_parallel.hc"),
    (P / "postnorm.hc", P / "prenorm.hc"),
    (D / "hc_sequential_n2.hc", P / "hc_seq_n2_changed.hc"),
])
def test_refutations_have_witnesses(a: str, b: str) -> None:
    r = prove(a, b)
    assert not r.equivalent
    assert r.difference
    assert r.tried  # refuted even under every assumption
    w = r.witness
    assert w is not None and len(w.tokens) == 8 and len(w.out_a) == 4
    assert w.max_diff > 1e-3
    text = r.render()
    assert "NOT EQUIVALENT" in text and "max |A - B|" in text


def test_gptj_difference_names_the_residual() -> None:
    r = prove(paper_parallel(D / "hc_parallel_n2.hc", 2), D / "gptj_parallel.hc", witness=False)
    assert not r.equivalent
    # the paper's arrangement carries the residual twice: 2 h0 in layer 1's input... (h = 2 h0)
    assert "c_1,0: A 2 vs B 1" in r.difference


def test_changed_entry_points_at_the_entry() -> None:
    r = prove(D / "hc_sequential_n2.hc", P / "hc_seq_n2_changed.hc", witness=False)
    assert "c_7,0: A 2 vs B 3/2" in r.difference


def test_different_layers_are_refuted() -> None:
    spec = parse(P / "prenorm.hc")
    other = spec.model_copy(update={"body": (("ffn", "attn"),) * 3})
    r = prove(spec, other, witness=False)
    assert not r.equivalent and r.difference.startswith("layer 1:")


# -- the general-n parallel arrangement, Eqs. 47-49 -----------------------------------------
@pytest.mark.parametrize("n_streams", [2, 3, 4])
def test_eqs_47_49_indexing(n_streams: int) -> None:
    base = parse(D / "opaque8.hc")
    ref = paper_parallel(base, n_streams)
    fixed = hc_literal_spec(base, n_streams, hc_parallel_matrices(n_streams, 12, False))
    printed = hc_literal_spec(base, n_streams, hc_parallel_matrices(n_streams, 12, True))
    assert prove(fixed, ref, witness=False).equivalent
    r = prove(printed, ref)
    assert not r.equivalent and r.witness.max_diff > 1e-3  # the printed e_i is off by one


# -- the canonicalisation passes, each on its own --------------------------------------------
def _run(ir, *passes):  # noqa: ANN001, ANN002, ANN202
    from hcdsl.ir.verify import verify
    from hcdsl.passes.pipeline import run_pipeline

    run_pipeline(ir, list(passes), check=True)
    verify(ir, after="test")
    return ir


def test_freeze_at_init() -> None:
    ir = _run(raw_ir(P / "dhc_n4.hc"), "freeze-at-init")
    assert not ir.of_type(n.LearnedCoef) and ir.of_type(n.ConstCoef)


def test_merge_equal_streams_folds_hc_sequential_to_one_stream() -> None:
    ir = _run(raw_ir(D / "hc_sequential_n3.hc"), "fold-const-slice", "merge-equal-streams")
    types = ir.types()
    assert all(types[v].count == 1 for v in ir.of_type(n.Mix))  # every state: one stream
    readout = ir.payload(ir.inputs("readout.sum")["coef"]).value
    assert readout == ((3.0,),)


def test_merge_equal_streams_keeps_values() -> None:
    import torch

    from hcdsl.backends import ReferenceModel
    from hcdsl.nn.modules import build_parts

    before = raw_ir(D / "hc_sequential_n3.hc")
    after = _run(raw_ir(D / "hc_sequential_n3.hc"), "fold-const-slice", "merge-equal-streams")
    # the same node ids get the same weights (node_seed), so the two models compare directly
    a = ReferenceModel(before, build_parts(before, seed=3)).double()
    b = ReferenceModel(after, build_parts(after, seed=3)).double()
    x = torch.randint(0, 64, (2, 5))
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x))


def test_scale_invariant_norm() -> None:
    ir = _run(raw_ir(D / "hc_sequential_n2.hc"), "fold-const-slice", "merge-equal-streams",
              "scale-invariant-norm")
    readout = ir.payload(ir.inputs("readout.sum")["coef"]).value
    assert readout == ((1.0,),)  # norm(2 y) -> norm(y)
    ir = _run(raw_ir(P / "hc_postnorm_n1.hc"), "scale-invariant-norm")
    users = {ir.inputs(v)["x"] for v in ir.of_type(n.Norm)}
    assert not any(isinstance(ir.payload(u), n.InvStd) for u in users)


def test_assumption_passes() -> None:
    ir = _run(raw_ir(P / "postnorm.hc"), "drop-norm-affine", "ignore-norm-eps")
    assert all(not ir.payload(v).affine and ir.payload(v).eps == 0 for v in ir.of_type(n.Norm))
    ir = _run(raw_ir(P / "hc_postnorm_n1.hc"), "invstd-to-norm")
    assert not ir.of_type(n.InvStd)


def test_norm_idempotent_and_embed_normalised() -> None:
    ir = _run(raw_ir(P / "hc_postnorm_n1.hc"), "fold-const-slice", "drop-identity-mix",
              "drop-split-merge", "drop-norm-affine", "ignore-norm-eps", "invstd-to-norm",
              "norm-idempotent", "embed-normalised")
    norms = ir.of_type(n.Norm)
    # one norm per layer's post-scale; the pre-norms and the final norm are gone
    assert len(norms) == 6
    assert not any(isinstance(ir.payload(ir.inputs(v)["x"]), n.Norm) for v in norms)


def test_passes_registered() -> None:
    for name in ("freeze-at-init", "merge-equal-streams", "scale-invariant-norm",
                 "drop-norm-affine", "ignore-norm-eps", "invstd-to-norm", "norm-idempotent",
                 "embed-normalised"):
        assert get(name).name == name


# -- the command ---------------------------------------------------------------------------
def _app():  # noqa: ANN202

    from hcdsl.cli import app

    return app


def test_cli_exit_codes(tmp_path) -> None:  # noqa: ANN001
    from typer.testing import CliRunner

    runner = CliRunner()
    app = _app()
    ok = runner.invoke(app, ["prove", str(P / "prenorm.hc"), str(P / "hc_prenorm_n1.hc")])
    assert ok.exit_code == 0 and ok.output.startswith("EQUIVALENT")
    no = runner.invoke(app, ["prove", str(P / "postnorm.hc"), str(P / "prenorm.hc"), "--no-witness"])
    assert no.exit_code == 1 and "NOT EQUIVALENT" in no.output
    bad = tmp_path / "bad.hc"
    bad.write_text("model x {\n dim = 16\n vocab = 8\n layer a = atention\n body = [a]\n}\n")
    err = runner.invoke(app, ["prove", str(bad), str(P / "prenorm.hc")])
    assert err.exit_code == 2 and "unknown layer kind 'atention'" in err.output


def test_python_export() -> None:
    assert hcdsl.prove(P / "prenorm.hc", P / "hc_prenorm_n1.hc").equivalent


# -- every family at its init (issue: FC, MUDD, DenseFormer == Pre-Norm) -------------------
FAMILY = """
model fam {{
  dim = 16
  vocab = 64
  layer attn = attention(heads=2)
  layer ffn = mlp
  body = repeat 3 [attn, ffn]
  connect {connect}
}}
"""


@pytest.mark.parametrize("connect", [
    "frac(m=4, static)", "frac(m=4, dynamic)", "frac(m=2, dynamic, tanh=false)",
    "mudd", "mudd(static)", "mudd(ways=1)", "mudd(prepost)", "mudd(k=2, p=2)",
    "denseformer", "denseformer(k=2)", "denseformer(k=4, p=5)", "denseformer(k=1, p=3)",
    "mhc(n=4, identity, readout=mean)",
])
def test_family_at_init_is_prenorm(connect: str) -> None:
    r = prove(P / "prenorm.hc", FAMILY.format(connect=connect), at_init=True, witness=False)
    assert r.equivalent, r.render()
    assert names(r) == []  # no assumption beyond "at init"


@pytest.mark.parametrize("connect", ["mhc(n=4, identity)", "attnres", "hyper(n=4, dynamic)"])
def test_family_at_init_is_prenorm_up_to_scale(connect: str) -> None:
    """A sum readout of n equal streams (mHC, HC), or attention residuals' uniform weights at
    init (every layer reads the *mean* of the earlier outputs, (h0 + T1 + ...) / l), differ
    from Pre-Norm only by a positive scale that every pre-norm removes."""
    r = prove(P / "prenorm.hc", FAMILY.format(connect=connect), at_init=True, witness=False)
    assert r.equivalent, r.render()
    assert names(r) == ["scale-invariant"]


@pytest.mark.parametrize("name", ["laurel_rw", "laurel_lr"])
def test_user_defined_laurel_at_init_is_prenorm(name: str) -> None:
    spec = Path(__file__).resolve().parents[1] / "specs" / "custom" / f"{name}.hc"
    pre = spec.read_text().split("\nmodel ")[1].split("connect")[0]
    r = prove("model " + pre + "}", spec, at_init=True, witness=False)
    assert r.equivalent, r.render()
    assert names(r) == []


def test_attnres_is_not_prenorm_after_init() -> None:
    with pytest.raises(NotImplementedError, match="nonlinear function of the state"):
        prove(P / "prenorm.hc", FAMILY.format(connect="attnres"), witness=False)
