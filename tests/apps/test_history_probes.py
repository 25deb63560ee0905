"""The trainer's probes record history weights (hcdsl/train/probes.py, (e)): for every
aggregate of a `state = history` connection, the weight of each history entry in each way,
averaged over the channels (channel groups counted by their width), then over the tokens.
Checked against the equations recomputed by hand (tests/history_by_hand.py) with weights
moved far from their init, and in a tiny `hcdsl train` run's probes.jsonl."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import hcdsl
from helpers import attn_ffn, model_text, perturb
from history_by_hand import dca, mh_attnres
from hcdsl.train import TrainConfig, train
from hcdsl.train.logs import read_jsonl
from hcdsl.train.probes import probe

FAMILIES = Path(__file__).resolve().parents[2] / "specs" / "families"
pytestmark = pytest.mark.usefixtures("one_thread")


def _moved(spec: Path, seed: int) -> tuple[dict[str, torch.Tensor], torch.nn.Module]:
    """Moved weights (float32, as training holds them) and the same model in float64."""
    m = hcdsl.compile(spec, seed=seed)
    perturb(m, seed=seed + 1, rel=2.0, const=1.0)
    m64 = hcdsl.compile(spec, seed=seed, dtype=torch.float64)
    m64.load_state_dict({k: v.double() for k, v in m.state_dict().items()})
    return m.state_dict(), m64


def _tokens(seed: int) -> torch.Tensor:
    return torch.randint(0, 256, (2, 9), generator=torch.Generator().manual_seed(seed))


def _weights(entry: dict) -> np.ndarray:
    return np.array(entry["weights"])


def test_multihead_attnres_probe_is_the_by_hand_softmax_weights() -> None:
    """Multi-Head AttnRes (arXiv 2607.27230): read l's α (B, T, S, 4 heads) averaged over
    the heads (equal widths), then over the tokens; layer 2 reads the first aggregate, the
    readout (9) the last."""
    spec = FAMILIES / "attnres_multihead.hc"
    state, m64 = _moved(spec, seed=21)
    toks = _tokens(22)
    hist = probe(spec, state, toks, matrices=False)["history"]
    with torch.no_grad():
        _, alphas, _ = mh_attnres(m64, toks, heads=4, layers=8)
    assert [h["reads_into"] for h in hist] == list(range(2, 10))
    assert all(h["ways"] == ["x"] for h in hist)
    for h, alpha in zip(hist, alphas):
        expect = alpha.mean(dim=3).mean(dim=(0, 1)).numpy()[:, None]
        np.testing.assert_allclose(_weights(h), expect, atol=2e-5)
    assert np.abs(_weights(hist[-1]) - 1 / 9).max() > 1e-2  # not the uniform init


def test_dca_probe_is_the_by_hand_grn_weights() -> None:
    """DCA (arXiv 2502.06785): GRN-v3's b + ReLU(w · RMSNorm(g_j)) per channel, averaged over
    the channels then the tokens, for the q, k, v ways of every block and the readout's."""
    spec = FAMILIES / "dca.hc"
    state, m64 = _moved(spec, seed=23)
    toks = _tokens(24)
    hist = probe(spec, state, toks, matrices=False)["history"]
    with torch.no_grad():
        _, recorded, _ = dca(m64, toks, blocks=4)
    assert [h["reads_into"] for h in hist] == [1, 3, 5, 7, 9]
    assert [h["ways"] for h in hist] == [["q", "k", "v"]] * 4 + [["x"]]
    for h, ws in zip(hist, recorded):
        expect = np.stack([w.mean(dim=-1).mean(dim=(0, 1)).numpy() for w in ws], axis=1)
        np.testing.assert_allclose(_weights(h), expect, atol=2e-5)
    q, k = _weights(hist[2])[:, 0], _weights(hist[2])[:, 1]
    assert np.abs(q - k).max() > 1e-2  # q, k, v are different combinations


def test_specs_without_a_history_record_none() -> None:
    spec = Path(__file__).resolve().parents[2] / "specs" / "tiny_dhc4.hc"
    m = hcdsl.compile(spec, seed=0)
    assert probe(spec, m.state_dict(), _tokens(1), matrices=False)["history"] is None


def test_a_training_run_records_the_history(tmp_path: Path) -> None:
    """A tiny `hcdsl train` run of attention residuals: probes.jsonl has one history entry
    per aggregate, uniform at step 0 (the pseudo-queries are 0) and each a convex combination
    (softmax) after training."""
    path = tmp_path / "attnres.hc"
    path.write_text(model_text("attnres", name="tiny", dim=32, vocab=256,
                               layers=attn_ffn(2, "mlp(hidden=64)"), body="[attn, ffn]"))
    cfg = TrainConfig(spec=str(path), out=tmp_path / "run", steps=4, batch=4, seq=16,
                      warmup=1, eval_every=4, probe_every=4, ckpt_every=0, val_sequences=4,
                      max_bytes=200_000, progress=False, tensorboard=False, lr=3e-2)
    train(cfg)
    probes = read_jsonl(cfg.out / "probes.jsonl")
    assert [p["step"] for p in probes] == [0, 4]
    first, last = probes[0]["history"], probes[-1]["history"]
    assert [h["reads_into"] for h in first] == [2, 3]  # layer 2 and the readout
    for h in first:
        np.testing.assert_allclose(_weights(h), 1 / len(h["weights"]), atol=1e-6)
    for h in last:
        np.testing.assert_allclose(_weights(h).sum(), 1.0, atol=1e-5)
    assert max(np.abs(_weights(h) - 1 / len(h["weights"])).max() for h in last) > 1e-6


@pytest.mark.parametrize("spec, said", [
    ("attnres_multihead.hc", "a history of 9 entries (the embedding, then one per layer)"),
    ("attnres_tiny.hc", "a history of 9 entries (the embedding, then one per layer)"),
    ("dca.hc", "a history of 5 entries (the embedding, then one per block)"),
    ("mudd_tiny.hc", "a history of 5 entries (the embedding, then one per block)"),
])
def test_stats_says_what_the_history_holds(spec: str, said: str) -> None:
    """`hcdsl stats` said "a history of block outputs" for layer granularity too (8 layers,
    4 blocks: attention residuals keep one entry per layer, MUDD and DCA one per block)."""
    from typer.testing import CliRunner

    from hcdsl.cli import app

    r = CliRunner().invoke(app, ["stats", str(FAMILIES / spec)])
    assert r.exit_code == 0, r.output
    assert f"no step matrices: the state is {said}, read by depth-wise aggregates" in r.output
