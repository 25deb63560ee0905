"""Golden IR dumps and golden gm.code of small specs (tests/golden/<name>.ir.txt, .code.txt).

Regenerate after an intended change with

    HCDSL_UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/ir/test_goldens.py

then READ the diff and check it against the papers' equations (docs/families/) before accepting it:
a golden copied blindly is worthless. What each golden must show is written next to its spec.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import hcdsl
from hcdsl.ir.dump import dump
from helpers import model_text

GOLDEN = Path(__file__).parents[1] / "golden"
UPDATE = os.environ.get("HCDSL_UPDATE_GOLDEN") == "1"


def spec(name: str, connect: str, body: str = "[attn], [ffn]") -> str:
    return model_text(connect, name=name, body=body)


SPECS = {
    # h1 = h0 + attn(norm(h0)); h2 = h1 + ffn(norm(h1)); logits = head(norm(h2))
    "pre_norm": spec("pre_norm", "residual"),
    # h1 = norm(h0 + attn(h0)); h2 = norm(h1 + ffn(h1))
    "post_norm": spec("post_norm", "residual(post)"),
    # one block, one norm: h1 = h0 + attn(N(h0)) + ffn(N(h0))
    "parallel_shared": spec("parallel_shared", "parallel(shared)", "[attn, ffn]"),
    # HC x2, Eq. 14 init: layer 1 reads stream 0 (A_m = e_1), layer 2 stream 1 (e_2);
    # H' = Bᵀ T(A_mᵀ H) + A_rᵀ H with learned B, A_m, A_r; logits = head(norm(H_0 + H_1))
    "shc2": spec("shc2", "hyper(n=2, static)"),
    # as shc2, the coefficients computed from the state H (Eqs. 10-13)
    "dhc2": spec("dhc2", "hyper(n=2, dynamic)"),
    # DDFormer (MUDD Eq. 6, one way): block i reads x_i = sum_j A_ij x_j over h0 and every
    # earlier block output, A = GELU(RMSNorm(x_newest) W1) W2 + a per token; in gm.code the
    # mix takes the parts (mix_parts), no concatenation of the history is built or kept
    "ddformer3": spec("ddformer3", "mudd(ways=1)", "[attn, ffn], [attn, ffn], [attn, ffn]"),
}


def check(path: Path, text: str) -> None:
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text)
        return
    assert path.exists(), f"no golden {path.name}: run with HCDSL_UPDATE_GOLDEN=1 and read it"
    assert text == path.read_text(), (
        f"{path.name} changed: if intended, regenerate with HCDSL_UPDATE_GOLDEN=1 and read "
        "the diff against the equations")


@pytest.mark.parametrize("name", list(SPECS))
def test_ir_dump_golden(name: str) -> None:
    check(GOLDEN / f"{name}.ir.txt", dump(hcdsl.lower(SPECS[name])))


@pytest.mark.parametrize("name", list(SPECS))
def test_raw_ir_dump_golden(name: str) -> None:
    """Before any pass: the primitive form, one read and one write per step."""
    check(GOLDEN / f"{name}.raw.ir.txt", dump(hcdsl.lower(SPECS[name], passes=None)))


@pytest.mark.parametrize("name", list(SPECS))
def test_gm_code_golden(name: str) -> None:
    code = hcdsl.compile(SPECS[name]).code
    check(GOLDEN / f"{name}.code.txt", code.strip() + "\n")
