"""hcdsl compare's statistics (issue: a comparison a reviewer accepts): Student-t quantiles
against published tables and a numerical integral of the density, the paired interval
against a hand computation, the validation loss over the whole held-out split against a
direct evaluation of the checkpoint, and the report's new parts (paired differences,
per-seed values, settings) in table.json, Markdown and the HTML that Chromium renders."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import hcdsl
from hcdsl.train import TrainConfig, train
from hcdsl.train import data as train_data
from hcdsl.train.compare import compare
from hcdsl.train.plots import row_scales
from hcdsl.train.stats import paired, t_cdf, t_quantile

CHROMIUM = Path("/usr/bin/chromium")
TINY = """model {name} {{
  dim = 32
  vocab = 256
  layer attn = attention(heads=2)
  layer ffn  = mlp(hidden=64)
  body = [attn, ffn]
  connect {connect}
}}
"""

pytestmark = pytest.mark.usefixtures("one_thread")

# two-sided 95% critical values t_{0.975, df} from a printed table (e.g. NIST/SEMATECH
# e-Handbook of Statistical Methods, 1.3.6.7.2), to the 3 decimals it gives
TABLE_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 9: 2.262,
             10: 2.228, 20: 2.086, 30: 2.042, 100: 1.984}


@pytest.mark.parametrize("df,value", sorted(TABLE_975.items()))
def test_t_quantile_matches_the_printed_table(df: int, value: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(value, abs=6e-4)
    assert t_quantile(0.025, df) == pytest.approx(-value, abs=6e-4)  # symmetric


@pytest.mark.parametrize("df", [1, 2, 3, 4, 7, 12])
@pytest.mark.parametrize("t", [-3.0, -0.7, 0.0, 0.4, 1.9, 5.0])
def test_t_cdf_against_the_integral_of_the_density(df: int, t: float) -> None:
    # f(x) = Gamma((v+1)/2) / (sqrt(v pi) Gamma(v/2)) (1 + x^2/v)^(-(v+1)/2); integrate from
    # 0 (where the CDF is 1/2) to t with Simpson's rule on a fine grid
    c = math.gamma((df + 1) / 2) / (math.sqrt(df * math.pi) * math.gamma(df / 2))
    x = np.linspace(0.0, t, 20_001)
    y = c * (1 + x ** 2 / df) ** (-(df + 1) / 2)
    h = (x[1] - x[0]) if t else 0.0
    integral = h / 3 * (y[0] + y[-1] + 4 * y[1:-1:2].sum() + 2 * y[2:-1:2].sum())
    assert t_cdf(t, df) == pytest.approx(0.5 + integral, abs=1e-10)


def test_paired_interval_by_hand() -> None:
    # differences -0.03, -0.01, -0.02: mean -0.02, sd 0.01, half width t_{.975,2} 0.01/sqrt 3
    p = paired("dhc", "pre", {0: 1.47, 1: 1.49, 2: 1.48, 3: None},
               {0: 1.50, 1: 1.50, 2: 1.50, 3: 1.51})
    assert p.seeds == (0, 1, 2) and p.diffs == pytest.approx((-0.03, -0.01, -0.02))
    half = 4.302652729911275 * 0.01 / math.sqrt(3)  # t_{0.975, 2} = 4.3026527...
    assert p.mean == pytest.approx(-0.02) and p.half_width == pytest.approx(half)
    assert p.interval == pytest.approx((-0.02 - half, -0.02 + half))
    assert half > 0.02  # the interval holds 0: no difference is claimed
    assert p.sentence("whole split") == (
        "dhc vs pre: no difference detected at this size (-0.0200 +- 0.0248 nats, "
        "95% interval, 3 paired seeds, whole split)")


def test_paired_sentences() -> None:
    clear = paired("mudd", "pre", {0: 1.40, 1: 1.41, 2: 1.42}, {0: 1.50, 1: 1.50, 2: 1.51})
    assert clear.sentence("whole split").startswith("mudd is 0.0933 +- ")
    assert "nats below pre (95% interval, 3 paired seeds, whole split)" in \
        clear.sentence("whole split")
    worse = paired("x", "pre", {0: 1.6, 1: 1.61}, {0: 1.5, 1: 1.5})
    assert " nats above pre " in worse.sentence("s")
    one = paired("x", "pre", {0: 1.6}, {0: 1.5})
    assert one.half_width is None and "one seed gives no interval" in one.sentence("s")
    assert "no seed finished" in paired("x", "pre", {0: None}, {0: 1.5}).sentence("s")


def test_rows_that_differ_by_orders_of_magnitude_get_their_own_scale() -> None:
    nan = np.nan
    dhc = np.array([[1.0, nan, nan], [0.9, 1.1, nan], [30.0, -25.0, 28.0]])  # readout row
    scale, ratio = row_scales([dhc])
    assert ratio == pytest.approx(30 / 1.0) and scale is not None
    assert scale[:, 0] == pytest.approx([1.0, 1.1, 30.0])
    pre = np.array([[1.0, nan], [1.0, 1.0]])
    assert row_scales([pre]) == (None, pytest.approx(1.0))


def _windows(tokens: torch.Tensor, seq: int) -> torch.Tensor:
    n = (tokens.numel() - 1) // seq
    return torch.stack([tokens[w * seq: w * seq + seq + 1] for w in range(n)]).long()


def test_whole_split_validation_equals_a_direct_evaluation(tmp_path: Path) -> None:
    spec = tmp_path / "t.hc"
    spec.write_text(TINY.format(name="t", connect="hyper(n=2, dynamic)"))
    cfg = TrainConfig(spec=str(spec), out=tmp_path / "run", steps=3, batch=4, seq=32,
                      warmup=1, eval_every=0, probe_every=0, max_bytes=60_000,
                      val_fraction=0.1, progress=False, tensorboard=False)
    summary = train(cfg)
    # the split, windowed here, not by the trainer: every window of the held-out tail
    corpus = train_data.load(None, train_data.Tokenizer("bytes"), 60_000, 0.1)
    windows = _windows(corpus.val, 32)
    assert summary["val_windows"] == windows.shape[0] > 100
    model = hcdsl.compile(spec.read_text(), seed=0)
    state = torch.load(max((tmp_path / "run" / "checkpoints").glob("step_*")) / "state.pt",
                       weights_only=True)["model"]
    model.load_state_dict(state)
    model.eval()
    with torch.no_grad():
        logits = model(windows[:, :-1])
        per_window = F.cross_entropy(logits.double().transpose(1, 2), windows[:, 1:],
                                     reduction="none").mean(1).numpy()
    assert summary["final_val_loss"] == pytest.approx(per_window.mean(), abs=1e-5)
    se = per_window.std(ddof=1) / math.sqrt(len(per_window))
    assert summary["final_val_se"] == pytest.approx(se, rel=1e-3)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("paired")
    specs = []
    for name, connect in (("pre", "residual"), ("dhc", "hyper(n=2, dynamic)"),
                          ("mudd", "mudd")):
        (tmp / f"{name}.hc").write_text(TINY.format(name=name, connect=connect))
        specs.append(str(tmp / f"{name}.hc"))
    options = {"steps": 4, "batch": 4, "seq": 32, "warmup": 1, "eval_every": 2,
               "probe_every": 2, "val_sequences": 24, "max_bytes": 200_000,
               "tensorboard": False}
    return compare(specs, tmp / "out", seeds=3, options=options, jobs=2, progress=False,
                   baseline=specs[1])


def test_report_pairs_every_spec_with_the_baseline_seed_by_seed(report: Path) -> None:
    out = report.parent
    table = json.loads((out / "table.json").read_text())
    assert table["baseline"] == "dhc"
    finals = {}
    for run in (out / "runs").iterdir():
        s = json.loads((run / "summary.json").read_text())
        finals[(run.name.rsplit("-s", 1)[0], s["seed"])] = s["final_val_loss"]
    for p in table["paired"]:
        assert p["baseline"] == "dhc" and p["seeds"] == [0, 1, 2]
        diffs = [finals[(p["spec"], k)] - finals[("dhc", k)] for k in range(3)]
        assert p["diffs"] == pytest.approx(diffs)
        m, sd = float(np.mean(diffs)), float(np.std(diffs, ddof=1))
        assert p["interval"] == pytest.approx([m - 4.302653 * sd / math.sqrt(3),
                                               m + 4.302653 * sd / math.sqrt(3)], abs=1e-6)
    assert sorted(p["spec"] for p in table["paired"]) == ["mudd", "pre"]
    rows = {r["spec"]: r for r in table["rows"]}
    assert rows["pre"]["per_seed"] == {str(k): finals[("pre", k)] for k in range(3)}
    assert rows["pre"]["val_windows"] == 24 and rows["pre"]["val_se"] > 0
    md = (out / "report.md").read_text()
    assert "## Paired differences to dhc" in md and "a fixed 24-window sample" in md
    for p in table["paired"]:
        assert p["sentence"] in md
    settings = "\n".join(table["settings"])
    for needle in ("warm-up 1 steps", "final lr 0.1 x peak", "weight decay 0.1",
                   "global norm 1.0", "sha256 ", "torch ", "commit ", "512 tokens seen"):
        assert needle in settings and needle in md, needle


def test_report_html_renders_the_new_parts(report: Path, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium (install it with: apt-get install -y chromium)")
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
           report.resolve().as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    assert "Paired differences to dhc" in dom and "95% interval (t)" in dom
    assert "<h2>Settings</h2>" in dom and "per seed (0, 1, ...)" in dom
    pictures = sorted(p.name for p in report.parent.glob("*.png"))
    assert "paired.png" in pictures and "loss.png" in pictures
    assert dom.count("data:image/png;base64,") == len(pictures)  # each one embedded


def test_report_shows_a_sample_of_every_spec(report: Path) -> None:
    from typer.testing import CliRunner

    from hcdsl.cli import app

    out = report.parent
    md = (out / "report.md").read_text()
    assert "## Samples" in md and report.read_text().count("<pre class='sample'>") == 3
    run = out / "runs" / "mudd-s0"
    newest = max((run / "checkpoints").glob("step_*"), key=lambda p: int(p.name[5:]))
    model = hcdsl.compile((run / "spec.hc").read_text(),
                          state_dict=torch.load(newest / "state.pt", weights_only=True)["model"])
    ids = model.eval().generate(torch.tensor([list(b"def ")]), 160, temperature=0.8, top_k=40,
                                generator=torch.Generator().manual_seed(0))
    text = bytes(ids[0].tolist()).decode("utf-8", "replace")
    assert f"### mudd\n\n~~~~text\n{text}\n~~~~" in md
    cli = CliRunner().invoke(app, ["sample", str(run / "spec.hc"), "--checkpoint", str(run),
                                   "-n", "160"])  # the run folder, as the report read it
    assert cli.exit_code == 0, cli.output
    assert cli.output.rstrip("\n") == text
