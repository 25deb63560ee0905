"""One forward+backward of a built model on random input: what `hcdsl run` times and
`hcdsl demo` runs once per spec."""

from __future__ import annotations

import torch

from hcdsl.spec import ModelSpec


def sample_input(spec: ModelSpec, batch: int, seq: int,
                 gen: torch.Generator) -> torch.Tensor:
    """Random tokens, or random hidden states for a body (`input = hidden`)."""
    if spec.input == "hidden":
        return torch.randn(batch, seq, spec.dim, generator=gen)
    return torch.randint(0, spec.vocab, (batch, seq), generator=gen)


def train_step(model: torch.nn.Module, tokens: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Forward + backward of next-token cross-entropy (a body: the mean square of its
    output); (output, loss)."""
    logits = model(tokens)
    if tokens.is_floating_point():
        loss = logits.float().pow(2).mean()
    else:
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten())
    loss.backward()
    return logits, loss.item()
