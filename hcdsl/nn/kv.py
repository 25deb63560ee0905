"""The state of a decoding run: where the next tokens stand (one position counter for the
model) and each attention layer's key/value cache, preallocated to the run's length so a
decoding step has static shapes (torch.compile traces it once).

Only attention mixes over time; everything else a connection does (stream mixing, dynamic
coefficients, depth-wise aggregates) acts token by token, so the connection state needs no
cache: a step runs the whole graph on the new tokens alone.
"""

from __future__ import annotations

import torch


class DecodeState:
    """`position` (a 0-d int64 tensor): how many tokens are already in the caches."""

    def __init__(self, length: int, device: torch.device) -> None:
        self.length = length
        self.position = torch.zeros((), dtype=torch.long, device=device)

    def positions(self, count: int) -> torch.Tensor:
        """(count,) positions of the next `count` tokens."""
        return self.position + torch.arange(count, device=self.position.device)

    def advance(self, count: int) -> None:
        self.position += count


class KVCache:
    """Keys and values (B, H, length, hd) of one attention layer, zero where not yet written
    (zeros, not garbage: a masked key still multiplies its value by 0)."""

    def __init__(self, state: DecodeState) -> None:
        self.state = state
        self.keys: torch.Tensor | None = None
        self.values: torch.Tensor | None = None

    def positions(self, count: int) -> torch.Tensor:
        return self.state.positions(count)

    def store(self, k: torch.Tensor, v: torch.Tensor,
              at: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Write the new (B, H, T, hd) keys and values at positions `at` (T,); return all
        keys, all values, and the (T, length) mask of the keys each new query may see."""
        if self.keys is None:
            B, H, _, hd = k.shape
            shape = (B, H, self.state.length, hd)
            self.keys = torch.zeros(shape, dtype=k.dtype, device=k.device)
            self.values = torch.zeros(shape, dtype=v.dtype, device=v.device)
        self.keys.index_copy_(2, at, k)
        self.values.index_copy_(2, at, v)
        slots = torch.arange(self.state.length, device=at.device)
        return self.keys, self.values, slots[None, :] <= at[:, None]
