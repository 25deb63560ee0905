"""Equivalence proofs and the unfolded connection matrix."""
