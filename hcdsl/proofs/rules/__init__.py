"""The prover's own rewrite patterns: each licensed by an assumption (or by "at init"),
registered in the one pattern table but never in the default pipeline."""

from hcdsl.proofs.rules import (  # noqa: F401 - each registers itself
    drop_norm_affine, embed_normalised, freeze_at_init, ignore_norm_eps, invstd_to_norm,
    norm_idempotent, scale_invariant_norm,
)
