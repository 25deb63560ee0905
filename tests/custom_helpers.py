"""What the tests of user-defined connections share (tests/test_custom_*.py): the specs of
specs/custom/, random models, the layers of `repeat 2 [attn, ffn]`, and the small model that
connects a connection block under test."""

from __future__ import annotations

from pathlib import Path

import torch

import hcdsl
from helpers import assert_same, attn_ffn, model_text, perturb

CUSTOM = Path(__file__).resolve().parents[1] / "specs" / "custom"
SPECS = ["laurel_rw", "laurel_lr", "value_residual", "residual_dual", "attention_residuals"]
VOCAB, DIM, LAYERS = 256, 64, 4  # every spec in specs/custom/: repeat 2 [attn, ffn]


def path(name: str) -> Path:
    return CUSTOM / f"{name}.hc"


def text(name: str) -> str:
    return path(name).read_text()


def randomise(model: torch.nn.Module, seed: int) -> None:
    """0.3 on the constant parameters (learned scalars, B = 0, norm scales, queries), so every
    coefficient moves well away from its init."""
    perturb(model, seed, const=0.3)


def tokens(seed: int = 0, shape: tuple[int, int] = (2, 9), vocab: int = VOCAB) -> torch.Tensor:
    return torch.randint(0, vocab, shape, generator=torch.Generator().manual_seed(seed))


def random_model(spec, seed: int = 3) -> torch.nn.Module:
    m = hcdsl.compile(spec, seed=0)
    randomise(m, seed)
    return m


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def pre_norm_text(spec_text: str) -> str:
    """The same model without its connection: Pre-Norm residual."""
    model = spec_text[spec_text.index("\nmodel ") + 1:]
    return "\n".join(ln for ln in model.splitlines() if not ln.strip().startswith("connect "))


def assert_fx_equals_reference(spec, seed: int = 3) -> None:
    fx_model = random_model(spec, seed)
    ref = hcdsl.compile(spec, backend="reference", seed=1)
    ref.load_state_dict(fx_model.state_dict())
    assert_same(fx_model, ref, tokens(), nonzero=True)


def layer_of(m: torch.nn.Module, k: int) -> tuple[torch.nn.Module, bool]:
    """Layer k (1-based) of `repeat 2 [attn, ffn]`, and whether it is attention."""
    return (getattr(m, f"L{k}_attn"), True) if k % 2 else (getattr(m, f"L{k}_ffn"), False)


def run(layer: torch.nn.Module, is_attn: bool, x: torch.Tensor) -> torch.Tensor:
    return layer(x, x, x) if is_attn else layer(x)


def logits(m: torch.nn.Module, h: torch.Tensor) -> torch.Tensor:
    return m.head(m.final_norm(h))


LEARNED_VRES = text("value_residual").replace(
    "  value_residual = [0.5, 0.5]",
    "  param l1 = 0.5\n  param l2 = scalar(init=0.5, bound=unit)\n  value_residual = [l1, l2]")


def model(connect: str) -> str:
    """The small model the error and docs tests connect their connection blocks to."""
    return "\n" + model_text(connect, dim=32, vocab=64, layers=attn_ffn(4, "mlp(hidden=64)"))
