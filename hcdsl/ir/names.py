"""The name under which a node's module is held: an IR node id made a Python identifier.

Both backends, the checkpoints and the prover's identity of learned parameters use it, so it
lives with the IR (torch-free) rather than with the modules."""

from __future__ import annotations


def attr_name(node_id: str) -> str:
    """'L3.attn' -> 'L3_attn', a valid Python identifier."""
    out = "".join(c if c.isalnum() else "_" for c in node_id)
    return out if out[0].isalpha() else "n_" + out
