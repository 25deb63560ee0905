"""hcdsl plot: a PNG of the expected size."""

from __future__ import annotations

from pathlib import Path

from PIL import Image  # matplotlib depends on pillow

from hcdsl.plot import figure_size, plot
from hcdsl.proofs.unfold import unfold

D = Path("specs/duality")


def test_plot_writes_png(tmp_path) -> None:  # noqa: ANN001
    out = plot([D / "hc_parallel_n2.hc"], tmp_path / "c.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(out) as im:
        assert im.size == figure_size([unfold(D / "hc_parallel_n2.hc")]) == (1600, 440)


def test_cli_plot(tmp_path) -> None:  # noqa: ANN001
    from typer.testing import CliRunner

    from hcdsl.cli import app

    out = tmp_path / "two.png"
    r = CliRunner().invoke(app, ["plot", str(D / "gptj_parallel.hc"), "specs/proofs/prenorm.hc",
                                 "-o", str(out), "--no-streams"])
    assert r.exit_code == 0, r.output
    with Image.open(out) as im:
        assert im.size == (800, 880)


def test_plot_of_a_frac_spec_has_the_fraction_panel(tmp_path) -> None:  # noqa: ANN001
    """FC: C^(0), one C^(i) per fraction (4), C^(0) by fraction, the arrangement: 7 panels
    (plot refused every FC spec before)."""
    spec = Path("specs/families/frac_tiny_sfc4.hc")
    out = plot([spec], tmp_path / "fc.png")
    with Image.open(out) as im:
        assert im.size == figure_size([unfold(spec)]) == (2800, 440)
