"""Which layers may run in parallel, from the zeros of C^(0) (HC App. D).

Layer k reads layer j's output iff C^(0)[k, j] != 0 (with Frac-Connections: iff any fraction
of layer k's input reads any fraction of layer j's output, the block (k, j) of C^(0) by
fraction; unfold.py). Consecutive layers form a parallel group
when no member reads another member's output: they all read values computed before the
group, so they can run side by side (the optimiser folds such groups into one step).
Groups are taken greedily from the first layer on, so each is as long as possible.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hcdsl.proofs.unfold import Unfolded, unfold


def groups_from_matrix(C0: np.ndarray, tol: float = 0.0) -> list[list[int]]:
    """1-based layer groups from C^(0) of shape (L+2, L+2)."""
    L = C0.shape[0] - 2
    out: list[list[int]] = []
    for k in range(1, L + 1):
        if out and all(abs(float(C0[k, j])) <= tol for j in out[-1]):
            out[-1].append(k)
        else:
            out.append([k])
    return out


def arrangement(spec: str | Path | object | Unfolded, tol: float = 0.0) -> list[list[int]]:
    """The layer groups (1-based, in order) that the static connections let run in
    parallel; a sequential layer is a group of one. Dynamic specs: at init."""
    u = spec if isinstance(spec, Unfolded) else unfold(spec)
    return groups_from_matrix(u.reads(), tol if not u.exact else 0.0)


def describe(groups: list[list[int]]) -> str:
    """'layers 1-2 parallel, 3-4 parallel, layer 5' (runs of single layers: 'layers 5-8
    sequential')."""
    parts: list[str] = []
    run: list[int] = []

    def flush() -> None:
        if not run:
            return
        parts.append(f"layer {run[0]}" if len(run) == 1 else
                     f"layers {run[0]}-{run[-1]} sequential")
        run.clear()

    for g in groups:
        if len(g) == 1:
            run.append(g[0])
            continue
        flush()
        first = not any("parallel" in x for x in parts)
        parts.append(f"{'layers ' if first else ''}{g[0]}-{g[-1]} parallel")
    flush()
    return ", ".join(parts)


def arrangement_text(spec: str | Path | object) -> str:
    """The text of `hcdsl show FILE --arrangement`."""
    u = unfold(spec)
    groups = arrangement(u)
    head = f"{u.name}: {describe(groups)}"
    return head + f"\n({u.note}; derived from the zeros of C^(0))"
