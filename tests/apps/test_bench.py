"""`hcdsl bench` (hcdsl/bench/): baselines, weight sharing, memory accounting, the package's
models, and the `hcdsl bench` command. Eager only and tiny shapes: no torch.compile, and no timing is asserted
(timings belong to benchmarks, not to pass/fail tests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import hcdsl
from hcdsl.bench import measure, package
from hcdsl.cli import app
from hcdsl.bench.models import baseline_key, baseline_spec, build_pairs, family
from hcdsl.bench.runner import Settings, run_bench

SPECS = Path(__file__).resolve().parents[2] / "specs"
pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: 2 threads only add stalls

TINY = """model tiny_{name} {{
  dim = 32
  vocab = 64
  layer attn = attention(heads=4)
  layer ffn  = mlp(hidden=64)
  body = repeat 2 [attn, ffn]
  connect {connect}
}}
"""


@pytest.fixture
def specs(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, connect in (("dhc", "hyper(n=4, dynamic)"), ("fc", "frac(m=4, dynamic)"),
                          ("mhc", "mhc(n=2)"), ("mudd", "mudd")):
        out[name] = tmp_path / f"{name}.hc"
        out[name].write_text(TINY.format(name=name, connect=connect))
    return out


def invoke(*args: object):  # noqa: ANN201 - a click Result
    return CliRunner().invoke(app, ["bench", *map(str, args)])


QUICK = ("--no-compile", "--batch", 2, "--seq", 8, "--rounds", 2, "--warmup", 1, "--steps", 1)


# --- models -----------------------------------------------------------------------------------


def test_baseline_is_the_same_spec_with_residual(specs: dict[str, Path]) -> None:
    spec = hcdsl.parse(specs["dhc"])
    base = baseline_spec(spec)
    assert base.connection.kind == "residual" and family(base) == "pre-norm"
    assert base.layers == spec.layers and base.body == spec.body and base.norm == spec.norm
    # specs that differ only in their connection share one baseline
    assert baseline_key(spec) == baseline_key(hcdsl.parse(specs["mhc"]))
    assert baseline_key(spec) != baseline_key(hcdsl.parse(SPECS / "tiny_dhc4.hc"))


def test_baseline_gets_the_spec_models_layer_weights(specs: dict[str, Path]) -> None:
    built = build_pairs([str(specs["dhc"]), str(specs["mhc"])], torch.device("cpu"))
    assert built[0].base is built[1].base  # one shared baseline
    model, base = built[0].model.state_dict(), built[0].base.state_dict()
    layers = [k for k in base if k.startswith(("L1_attn", "L2_ffn", "L1_norm", "embed"))]
    assert layers and built[0].shared_tensors == len(base)  # every baseline tensor shared
    for k in layers:
        assert torch.equal(model[k], base[k]), k
    assert any(k.endswith("_coef.w_mix") for k in model)  # the connection is not in the base


# --- memory accounting ------------------------------------------------------------------------


class Toy(torch.nn.Module):
    """logits = relu(x W1) W2 with x = embedding: autograd saves relu's output (B, T, 16)
    once for relu's and W2's backward, and the embedding's indices."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(10, 8)
        self.w1 = torch.nn.Linear(8, 16, bias=False)
        self.w2 = torch.nn.Linear(16, 10, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.w2(torch.relu(self.w1(self.emb(tokens))))


def test_saved_bytes_count_each_storage_once_and_skip_parameters() -> None:
    tokens = torch.zeros(3, 5, dtype=torch.long)
    saved = measure.saved_tensor_bytes(Toy(), tokens, tokens)
    # emb output (3,5,8) for w1, relu output (3,5,16) (shared by relu and w2), the logits'
    # log-softmax (15, 10) for cross-entropy, tokens and targets (int64): no weight
    floats = 4 * (3 * 5 * 8 + 3 * 5 * 16 + 15 * 10)
    assert floats <= saved <= floats + 2 * 8 * 15 + 64
    assert all(p.grad is None for p in Toy().parameters())


def test_peak_bytes_of_a_step() -> None:
    """The profiler's allocator events: at least what is saved for backward, at most every
    tensor of the step kept at once (loose: the exact figure depends on kernels)."""
    model, tokens = Toy(), torch.zeros(4, 64, dtype=torch.long)
    peak = measure.peak_step_bytes(model, tokens, tokens, torch.device("cpu"))
    saved = measure.saved_tensor_bytes(model, tokens, tokens)
    assert peak is not None and saved <= peak <= 20 * saved


class CheckpointedToy(Toy):
    """Toy with its MLP under a non-reentrant torch.utils.checkpoint (as hcdsl's regions and
    segments); selective: the matmuls' outputs cached (MUST_SAVE), as backends/segments.py
    caches what it does not recompute."""

    def __init__(self, selective: bool) -> None:
        super().__init__()
        self.selective = selective

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        from functools import partial

        from torch.utils.checkpoint import (CheckpointPolicy, checkpoint,
                                            create_selective_checkpoint_contexts)

        def policy(ctx: object, op: object, *args: object, **kwargs: object) -> object:
            keep = op in (torch.ops.aten.mm.default, torch.ops.aten.addmm.default)
            return CheckpointPolicy.MUST_SAVE if keep else CheckpointPolicy.PREFER_RECOMPUTE

        extra = ({"context_fn": partial(create_selective_checkpoint_contexts, policy)}
                 if self.selective else {})
        return checkpoint(lambda x: self.w2(torch.relu(self.w1(x))), self.emb(tokens),
                          use_reentrant=False, **extra)


def test_kept_bytes_see_what_checkpointing_hides_from_saved_tensor_hooks() -> None:
    """A selective checkpoint caches the two matmuls' outputs, (15, 16) and (15, 10) fp32:
    the allocator count (kept) grows by exactly their bytes, the saved-tensor hooks see
    nothing more (the undercount kept was added for). Plain, kept covers what is saved but
    the int64 tokens/targets, which were allocated before the step."""
    tokens = torch.zeros(3, 5, dtype=torch.long)
    cpu = torch.device("cpu")
    plain, cached = CheckpointedToy(selective=False), CheckpointedToy(selective=True)
    cache = 4 * (15 * 16 + 15 * 10)
    kept_plain = measure.kept_bytes(plain, tokens, tokens, cpu)
    kept_cached = measure.kept_bytes(cached, tokens, tokens, cpu)
    assert kept_plain is not None and kept_cached is not None
    assert kept_cached - kept_plain == cache
    assert measure.saved_tensor_bytes(cached, tokens, tokens) == \
        measure.saved_tensor_bytes(plain, tokens, tokens)
    toy_kept = measure.kept_bytes(Toy(), tokens, tokens, cpu)
    assert toy_kept is not None
    assert toy_kept >= measure.saved_tensor_bytes(Toy(), tokens, tokens) - 2 * 8 * 15


def test_recomputing_sinkhorn_saves_less_than_the_unrolled_loop(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The bench's saved-tensor figure sees what the Sinkhorn op's recomputation buys."""
    import hcdsl.nn.generator as generator
    from tests.backends.test_sinkhorn import sinkhorn_log

    model = hcdsl.compile(TINY.format(name="m", connect="mhc(n=4)"))
    tokens = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(0))
    with_op = measure.saved_tensor_bytes(model, tokens, tokens)
    monkeypatch.setattr(generator, "sinkhorn_paper", sinkhorn_log)  # mhc is a generator
    unrolled = measure.saved_tensor_bytes(model, tokens, tokens)
    # 4 layers x 20 iterations x 2 steps x (B, T, 4, 4) fp32 saved at least once each
    assert unrolled - with_op >= 4 * 40 * 2 * 16 * 16 * 4


# --- the hyper-connections package ------------------------------------------------------------


def test_counterparts() -> None:
    assert package.counterpart("DHC x4") == ("hc", 4)
    assert package.counterpart("DFC x4") == ("fc", 4)
    assert package.counterpart("mHC x2") == ("mhc", 2)
    for fam in ("SHC x4", "SFC x4", "MUDD", "pre-norm"):
        assert package.counterpart(fam) is None


@pytest.mark.skipif(not package.installed(), reason=package.MISSING)
@pytest.mark.parametrize("variant", [None, ("hc", 4), ("fc", 4), ("mhc", 2)])
def test_package_models_run_the_same_layers(specs: dict[str, Path],
                                            variant: tuple[str, int] | None) -> None:
    spec = hcdsl.parse(specs["dhc"])
    like = hcdsl.compile(spec)
    kind, k = variant or (None, 1)
    model = package.build(spec, kind, k, like, torch.device("cpu"))
    assert model.load_hcdsl_layers(like, spec) == 2 + 1 + 2 * len(spec.sequence)
    assert torch.equal(model.blocks[1].branch.layer.fc1.weight, like.L2_ffn.fc1.weight)
    tokens = torch.randint(0, 64, (2, 8))
    logits = model(tokens)
    assert logits.shape == (2, 8, 64)
    logits.sum().backward()
    if kind is None:  # the package's `disable=True` residual is Pre-Norm: equal to hcdsl's
        base = hcdsl.compile(baseline_spec(spec))
        model = package.build(spec, None, 1, base, torch.device("cpu"))
        assert (model(tokens) - base(tokens)).abs().max() <= 1e-5


LEARNED = TINY.replace("  vocab = 64\n", "  vocab = 64\n  context = 16\n  pos = learned\n")


@pytest.mark.skipif(not package.installed(), reason=package.MISSING)
def test_package_models_take_learned_positions(tmp_path: Path) -> None:
    """`pos = learned`: the package's models get hcdsl's position table too, so its residual
    (Pre-Norm) equals hcdsl's Pre-Norm of the spec, positions included; and `hcdsl bench`
    runs such a spec with the package (it exited 3: an unexpected `positions` key)."""
    path = tmp_path / "learned.hc"
    path.write_text(LEARNED.format(name="learned", connect="hyper(n=2, dynamic)"))
    spec = hcdsl.parse(path)
    base = hcdsl.compile(baseline_spec(spec))
    model = package.build(spec, None, 1, base, torch.device("cpu"))
    assert torch.equal(model.embed.positions, base.embed.positions)
    tokens = torch.randint(0, 64, (2, 8))
    assert (model(tokens) - base(tokens)).abs().max() <= 1e-5
    result = invoke(path, *QUICK, "--no-memory")
    assert result.exit_code == 0, result.output
    assert "hyper-connections DHC x2" in result.output


def test_missing_package_is_reported(specs: dict[str, Path],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(package, "installed", lambda: False)
    result = invoke(specs["dhc"], *QUICK, "--no-memory")
    assert result.exit_code == 0, result.output
    assert "hyper-connections not installed: pip install hyper-connections" in result.output
    assert "hcdsl DHC x4" in result.output


# --- the command ------------------------------------------------------------------------------


def test_bench_json(specs: dict[str, Path]) -> None:
    result = invoke(specs["dhc"], specs["mudd"], *QUICK, "--json", "--no-package")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["settings"]["compile"] is False and report["settings"]["rounds"] == 2
    assert report["machine"]["device"] == "cpu"
    assert "saved_tensors_hooks" in report["memory_method"]
    assert "kept" in report["memory_method"]
    assert "torch.profiler" in report["memory_method"]
    labels = [p["label"] for p in report["pairs"]]
    assert labels == ["hcdsl DHC x4", "hcdsl MUDD"]
    for p in report["pairs"]:
        assert p["baseline"] == "hcdsl Pre-Norm" and p["params"] > p["base_params"]
        assert [m["mode"] for m in p["modes"]] == ["train eager", "infer eager"]
        for m in p["modes"]:
            r = m["ratio"]
            assert 0 < r["min"] <= r["median"] <= r["max"] and m["ms"] > 0
        mem = p["memory"]
        assert mem["saved_bytes"] > 0 and mem["base_saved_bytes"] > 0
        assert mem["saved_ratio"] == pytest.approx(mem["saved_bytes"] / mem["base_saved_bytes"])
        assert mem["peak_bytes"] > 0 and mem["peak_ratio"] > 0
        assert mem["kept_bytes"] > 0 and mem["kept_ratio"] == pytest.approx(
            mem["kept_bytes"] / mem["base_kept_bytes"])


def test_bench_recompute_saves_memory(specs: dict[str, Path]) -> None:
    """--recompute compiles the specs with recompute=True: MUDD saves fewer tensors for
    backward (its generator's activations), Pre-Norm (the baseline) is unchanged; the kept
    figure also counts what the checkpoints hold besides (each keeps the CPU RNG state, 5 KB,
    which is why it does not shrink at this tiny shape), which saved-tensor hooks cannot see."""
    saved = {}
    kept = {}
    for flags in ((), ("--recompute",)):
        result = invoke(specs["mudd"], *QUICK, "--json", "--no-package", *flags)
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["settings"]["recompute"] is bool(flags)
        mem = report["pairs"][0]["memory"]
        saved[bool(flags)] = (mem["saved_bytes"], mem["base_saved_bytes"])
        kept[bool(flags)] = (mem["kept_bytes"], mem["base_kept_bytes"])
    assert saved[True][0] < saved[False][0] and saved[True][1] == saved[False][1]
    assert kept[True][1] == kept[False][1]
    # what checkpointing hides: kept - saved grows when the regions are recomputed
    assert kept[True][0] - saved[True][0] > kept[False][0] - saved[False][0]


def test_bench_recompute_layers(specs: dict[str, Path]) -> None:
    """--recompute-layers compiles the specs (not the Pre-Norm baseline) with
    recompute="layers": DHC keeps fewer bytes at its step's end, the baseline the same; both
    recompute switches at once, or --recompute-every alone, are usage errors (exit 2)."""
    saved = {}
    for flags in ((), ("--recompute-layers", "--recompute-every", 2)):
        result = invoke(specs["dhc"], *QUICK, "--json", "--no-package", "--no-infer", *flags)
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["settings"]["recompute_layers"] is bool(flags)
        mem = report["pairs"][0]["memory"]
        saved[bool(flags)] = (mem["peak_bytes"], mem["base_peak_bytes"])
    assert saved[True][0] < saved[False][0] and saved[True][1] == saved[False][1]
    both = invoke(specs["dhc"], *QUICK, "--recompute", "--recompute-layers")
    assert both.exit_code == 2 and "--recompute-layers" in both.output
    assert invoke(specs["dhc"], *QUICK, "--recompute-every", 2).exit_code == 2


def test_bench_disable_and_train_only(specs: dict[str, Path]) -> None:
    result = invoke(specs["dhc"], *QUICK, "--json", "--no-package", "--no-memory",
                    "--no-infer", "--disable", "merge-sibling-mixes", "--disable", "cse")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["settings"]["disable"] == ["merge-sibling-mixes", "cse"]
    assert [m["mode"] for m in report["pairs"][0]["modes"]] == ["train eager"]
    result = invoke(specs["dhc"], *QUICK, "--disable", "no-such-pass")
    assert result.exit_code == 1 and "unknown pass 'no-such-pass'; passes are:" in result.output


def test_bench_table_with_the_package(specs: dict[str, Path]) -> None:
    result = invoke(specs["dhc"], specs["fc"], specs["mhc"], specs["mudd"], *QUICK,
                    "--no-memory")
    assert result.exit_code == 0, result.output
    out = result.output
    for label in ("hcdsl DHC x4", "hcdsl DFC x4", "hcdsl mHC x2", "hcdsl MUDD"):
        assert label in out
    assert "train eager" in out and "infer eager" in out and "compiled" not in out
    if package.installed():
        for label in ("hyper-connections DHC x4", "hyper-connections FC m=4",
                      "hyper-connections mHC x2"):
            assert label in out
        assert "has no counterpart of MUDD" in out
    else:
        assert package.MISSING in out


def test_bench_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.hc"
    bad.write_text("model bad {\n  dim = 32\n  vocab = 64\n  body = [nope]\n}\n")
    result = invoke(bad, *QUICK)
    assert result.exit_code == 1 and "bad.hc:4" in result.output
    result = invoke(SPECS / "pre_norm.hc", "--device", "nonsense")
    assert result.exit_code == 2


def test_run_bench_reports_progress(specs: dict[str, Path]) -> None:
    seen: list[tuple[int, int]] = []
    report = run_bench([str(specs["mhc"])],
                       Settings(batch=1, seq=4, rounds=1, warmup=1, steps=1, compile=False,
                                package=False, memory=False),
                       lambda what, done, total: seen.append((done, total)))
    assert seen and seen[-1][0] == seen[-1][1]  # ends complete
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert report.pairs[0].label == "hcdsl mHC x2"
