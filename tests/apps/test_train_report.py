"""Probes (connection matrices, collapse, mHC stability) and the comparison report, down to
the HTML opening in headless Chromium.

CI needs Chromium for the last test: `apt-get install -y chromium` (it skips, saying so,
when /usr/bin/chromium is absent)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import matplotlib.image
import pytest
import torch

import hcdsl
from hcdsl.train.compare import compare
from hcdsl.train.probes import probe

CHROMIUM = Path("/usr/bin/chromium")
TINY = """model {name} {{
  dim = 32
  vocab = 256
  norm = rmsnorm
  layer attn = attention(heads=2)
  layer ffn  = mlp(hidden=64)
  body = repeat 2 [attn, ffn]
  connect {connect}
}}
"""

pytestmark = pytest.mark.usefixtures("one_thread")


def _probe(connect: str) -> dict:
    text = TINY.format(name="t", connect=connect)
    model = hcdsl.compile(text, seed=0)
    tokens = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(0))
    return probe(text, model.state_dict(), tokens)


def test_mhc_probe_at_init() -> None:
    out = _probe("mhc(n=4)")
    mhc = out["mhc"]
    assert len(mhc["row_dev"]) == 4  # one ManifoldCoef per layer
    assert mhc["max_row_dev"] < 1e-5 and mhc["max_col_dev"] < 1e-3  # Sinkhorn-Knopp
    # a product of doubly stochastic matrices is doubly stochastic: gains are 1
    assert mhc["gain_fwd"] == pytest.approx(1, abs=1e-3)
    assert mhc["gain_bwd"] == pytest.approx(1, abs=1e-3)
    assert len(out["connections"]["C0"]) == 6  # 4 layers: (L + 2) x (L + 2)


def test_collapse_and_connections_of_pre_norm() -> None:
    out = _probe("residual")
    assert out["mhc"] is None
    col = out["collapse"]
    assert [c["layer"] for c in col] == [2, 3, 4]
    assert all(-1 <= c["p05"] <= c["median"] <= c["p95"] <= 1 for c in col)
    c0 = out["connections"]["C0"]  # Pre-Norm: every layer reads h0 + all earlier outputs
    assert [row[:k] for k, row in enumerate(c0) if 0 < k] == [[1.0] * k for k in range(1, 6)]


def test_a_family_unfold_cannot_do_is_recorded_not_fatal(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every preset unfolds now (Frac-Connections too: their matrices are below); a state
    unfold cannot follow is recorded as "not available", not fatal."""
    from hcdsl.proofs import unfold

    def cannot(*args: object, **kwargs: object) -> None:
        raise unfold.UnfoldError("a state hcdsl cannot follow")

    monkeypatch.setattr(unfold, "unfold_numeric", cannot)
    out = _probe("frac(m=2, dynamic)")
    assert out["connections"]["unavailable"] == (
        "not available: UnfoldError: a state hcdsl cannot follow")
    assert out["collapse"]


def test_frac_connections_have_matrices() -> None:
    out = _probe("frac(m=2, dynamic)")
    assert len(out["connections"]["C0"]) == 6  # 4 layers: (L + 2) x (L + 2)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("compare")
    specs = []
    for name, connect in (("pre", "residual"), ("mhc", "mhc(n=2)")):
        (tmp / f"{name}.hc").write_text(TINY.format(name=name, connect=connect))
        specs.append(str(tmp / f"{name}.hc"))
    options = {"steps": 6, "batch": 4, "seq": 32, "warmup": 1, "eval_every": 3,
               "probe_every": 3, "val_sequences": 8, "max_bytes": 200_000,
               "tensorboard": False}
    return compare(specs, tmp / "out", seeds=2, options=options, jobs=2, progress=False)


def test_compare_writes_the_report(report: Path) -> None:
    out = report.parent
    for name in ("report.md", "report.html", "table.json", "loss.png", "collapse.png",
                 "mhc.png", "matrices_pre.png", "matrices_mhc.png"):
        assert (out / name).stat().st_size > 0, name
    rows = json.loads((out / "table.json").read_text())["rows"]
    assert [r["spec"] for r in rows] == ["pre", "mhc"] and all(r["seeds"] == 2 for r in rows)
    assert all(r["val_loss_mean"] < 5.6 and r["val_loss_std"] >= 0 for r in rows)
    html = report.read_text()
    assert html.count("data:image/png;base64,") == 6 and "<table>" in html  # + paired.png
    assert "src='loss.png'" not in html  # self-contained
    # identical data order: seed s of both specs saw the same tokens
    d = [json.loads((out / "runs" / f"{n}-s1" / "config.json").read_text())["data_seed"]
         for n in ("pre", "mhc")]
    assert d == [1, 1]


def test_html_opens_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium (install it with: apt-get install -y chromium)")
    shot = tmp_path / "shot.png"
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
           f"--screenshot={shot}", "--window-size=1200,900", report.resolve().as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    assert shot.exists() and shot.stat().st_size > 10_000
    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (900, 1200)
    assert pixels[..., :3].std() > 0.05  # not a blank page: text, table and pictures
