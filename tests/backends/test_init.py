"""At the paper's init (HC Eq. 14) SHC and DHC are Pre-Norm, stream by stream.

B = 1, A_m = e_(k mod n), A_r = I, W = 0: every stream of H^k equals the Pre-Norm hidden
state h^k after every layer, and Σ_rows H^L = n h^L. The logits then differ only through
the final norm's eps (LayerNorm(n h) = LayerNorm(h) when eps = 0).

HC scales the init std of output projections by 1/sqrt(n) (§4), so the layer weights are
copied by name from the Pre-Norm model instead of relying on the seed.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from helpers import run_recording as recording
import hcdsl
from hcdsl.nn.modules import attr_name
from helpers import model_text

pytestmark = pytest.mark.usefixtures("one_thread")

VOCAB = 32
LAYERS = 4


def spec(connect: str) -> str:
    return model_text(connect, name="init_eq", vocab=VOCAB)


def run_recording(model: torch.nn.Module, tokens: torch.Tensor):
    """Reference backend: logits and every node's value, by IR node id."""
    with torch.no_grad():
        return recording(model, tokens)


def copy_shared(src: torch.nn.Module, dst: torch.nn.Module) -> int:
    """Copy every parameter of src whose name dst also has; return how many were copied."""
    theirs = dst.state_dict()
    shared = {k: v for k, v in src.state_dict().items() if k in theirs}
    dst.load_state_dict(shared, strict=False)
    return len(shared)


def state_after(seen: dict[str, torch.Tensor], k: int, batch: tuple[int, int]) -> torch.Tensor:
    """The state after layer k as (B, T, streams, d), whatever form the passes left it in."""
    x = seen[f"L{k}.write"]
    return x.reshape(*batch, -1, x.shape[-1])


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("kind", ["static", "dynamic"])
def test_every_stream_equals_pre_norm_at_init(n: int, kind: str) -> None:
    pre = hcdsl.compile(spec("residual"), backend="reference", seed=1)
    hc = hcdsl.compile(spec(f"hyper(n={n}, {kind})"), backend="reference", seed=2)
    # embed, head, final_norm, L{k}_norm and every layer: all but the HC coefficients
    n_layer_params = sum(1 for k in pre.state_dict() if k.startswith("L"))
    assert copy_shared(pre, hc) == len(pre.state_dict())
    assert n_layer_params > 0
    tokens = torch.randint(0, VOCAB, (2, 6), generator=torch.Generator().manual_seed(0))
    pre_logits, pre_seen = run_recording(pre, tokens)
    hc_logits, hc_seen = run_recording(hc, tokens)
    for k in range(1, LAYERS + 1):
        h = state_after(pre_seen, k, (2, 6))  # (B, T, 1, d)
        H = state_after(hc_seen, k, (2, 6))  # (B, T, n, d)
        assert H.shape[2] == n
        diff = (H - h).abs().max().item()
        assert diff <= 1e-6, f"layer {k}: a stream differs from Pre-Norm by {diff:.3g}"
    # the value the final norm reads: Σ_rows H^L for HC, h^L for Pre-Norm
    row_sum = hc_seen[hc.ir.inputs("final.norm")["x"]]
    pre_final = pre_seen[pre.ir.inputs("final.norm")["x"]]
    assert (row_sum.reshape(pre_final.shape) - n * pre_final).abs().max().item() <= 1e-5
    # logits agree up to the final norm's eps: LayerNorm(n h; eps) = LayerNorm(h; eps / n²),
    # so HC's logits are exactly Pre-Norm's with the final eps divided by n²
    logit_diff = (hc_logits - pre_logits).abs().max().item()
    print(f"\n{kind} HC x{n} vs Pre-Norm at init: max |logit diff| = {logit_diff:.3e}")
    norm = pre.final_norm
    with torch.no_grad():
        h = F.layer_norm(pre_final, norm.normalized_shape, norm.weight, norm.bias, norm.eps / n**2)
        predicted = pre.head(h)
    assert (hc_logits - predicted).abs().max().item() <= 1e-5
    if n == 1:
        assert logit_diff <= 1e-6


@pytest.mark.parametrize("n", [2, 4])
def test_logit_gap_is_the_final_norm_eps(n: int) -> None:
    """With eps -> 0 in the final norm the gap closes: it is eps, not a wiring error."""
    pre = hcdsl.compile(spec("residual"), backend="reference", seed=1)
    hc = hcdsl.compile(spec(f"hyper(n={n}, dynamic)"), backend="reference", seed=2)
    copy_shared(pre, hc)
    tokens = torch.randint(0, VOCAB, (2, 6), generator=torch.Generator().manual_seed(0))
    gaps = {}
    for eps in (1e-5, 0.0):
        pre.final_norm.eps = hc.final_norm.eps = eps
        with torch.no_grad():
            pre32, hc32 = pre(tokens), hc(tokens)
        gaps[eps] = (hc32 - pre32).abs().max().item()
    print(f"\nDHC x{n}: max |logit diff| eps=1e-5: {gaps[1e-5]:.3e}, eps=0: {gaps[0.0]:.3e}")
    assert gaps[0.0] <= 1e-5
    assert gaps[0.0] <= gaps[1e-5]


def test_hc_output_projections_are_scaled_at_init() -> None:
    """§4: output projections start with std / sqrt(n) (why weights are copied above)."""
    pre = hcdsl.compile(spec("residual"), seed=0)
    hc = hcdsl.compile(spec("hyper(n=4, static)"), seed=0)
    assert torch.allclose(hc.get_submodule(attr_name("L1.attn")).out_proj.weight,
                          pre.get_submodule(attr_name("L1.attn")).out_proj.weight / 2)
