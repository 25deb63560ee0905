"""Proofs about specs: equivalence (prove.py), the unfolded connection matrices (unfold.py),
and the layer arrangement they imply (arrangement.py). See docs/proving.md."""
