"""Proofs about specs: equivalence (prove), the unfolded connection matrices (unfold), and
the layer arrangement they imply (arrangement). See docs/proving.md."""

from hcdsl.proofs.assumptions import ASSUMPTIONS, Assumption
from hcdsl.proofs.prove import ProofResult, Witness, prove

__all__ = ["ASSUMPTIONS", "Assumption", "ProofResult", "Witness", "arrangement", "prove",
           "unfold"]


def unfold(*args, **kwargs):  # noqa: ANN002, ANN003, ANN201
    from hcdsl.proofs.unfold import unfold as _unfold

    return _unfold(*args, **kwargs)


def arrangement(*args, **kwargs):  # noqa: ANN002, ANN003, ANN201
    from hcdsl.proofs.arrangement import arrangement as _arrangement

    return _arrangement(*args, **kwargs)
