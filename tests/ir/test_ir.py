"""The IR: the verifier catches broken graphs and names the pass; dump and DOT are stable."""

from __future__ import annotations

import re

import pytest

import hcdsl
from hcdsl.ir import nodes as n
from hcdsl.ir.dump import dump, to_dot
from hcdsl.ir.graph import IR
from hcdsl.ir.verify import IRVerifyError, verify
from helpers import model_text


def spec(connect: str = "residual", body: str = "repeat 2 [attn, ffn]") -> str:
    return model_text(connect, name="ir_t", body=body)


def raw(connect: str = "residual") -> IR:
    return hcdsl.lower(spec(connect), passes=None)


def broken(ir: IR, pass_name: str) -> str:
    with pytest.raises(IRVerifyError) as err:
        verify(ir, after=pass_name)
    msg = str(err.value)
    assert f"after '{pass_name}'" in msg
    return msg


def test_fresh_ir_verifies() -> None:
    for connect in ("residual", "residual(post)", "parallel(separate)", "hyper(n=3, dynamic)"):
        verify(raw(connect))


def test_verifier_catches_a_cycle() -> None:
    ir = raw()
    ir.rewire("L1.norm", "x", "L2.write")  # L1.norm now reads a value computed after it
    assert "cycle" in broken(ir, "bad-pass")


def test_verifier_catches_a_missing_port() -> None:
    ir = raw()
    ir.g.remove_edge("L1.norm", "L1.attn", key="k")
    msg = broken(ir, "bad-pass")
    assert "L1.attn" in msg and "'k'" in msg


def test_verifier_catches_a_mix_with_the_wrong_row_count() -> None:
    ir = raw("hyper(n=2, static)")
    ir.set_payload("L1.write", n.Mix((1, 3), (1, 3)))  # 2 rows for a 3-stream stack
    msg = broken(ir, "bad-pass")
    assert "mix" in msg and "2 coefficient rows for 3 streams" in msg


def test_verifier_catches_a_width_mismatch() -> None:
    ir = raw()
    ir.set_payload("L1.norm", n.Norm("layernorm", True, 1e-5, 8))
    assert "norm over 8" in broken(ir, "bad-pass")


def test_verifier_catches_a_dead_node() -> None:
    ir = raw()
    ir.add("orphan.coef", n.ConstCoef(((1.0,),)))
    msg = broken(ir, "bad-pass")
    assert "never reach the output" in msg and "orphan.coef" in msg


def test_dump_is_deterministic_and_natural_order() -> None:
    text = spec(body="repeat 6 [attn, ffn]")  # 12 layers: L2 must come before L10
    a, b = dump(hcdsl.lower(text)), dump(hcdsl.lower(text))
    assert a == b
    a_raw, b_raw = dump(hcdsl.lower(text, passes=None)), dump(hcdsl.lower(text, passes=None))
    assert a_raw == b_raw
    ids = [line.split(" = ", 1)[0] for line in a_raw.splitlines()[1:]]
    assert ids.index("L2.read") < ids.index("L10.read")
    assert ids.index("L2.ffn") < ids.index("L10.ffn") < ids.index("L11.attn")


def test_node_ids_are_readable() -> None:
    ir = raw()
    assert {"L3.attn", "L3.norm", "L4.ffn", "L1.write", "embed", "head"} <= set(ir.g)


def test_dot_export_is_dot() -> None:
    ir = raw("hyper(n=2, dynamic)")
    dot = to_dot(ir)
    lines = dot.strip().splitlines()
    assert re.fullmatch(r'digraph "ir_t" \{', lines[0])
    assert lines[-1] == "}"
    assert dot.count("{") == dot.count("}")
    node_lines = [l for l in lines if re.fullmatch(r'\s+"[^"]+" \[label="[^"]*"\];', l)]
    edge_lines = [l for l in lines if re.fullmatch(r'\s+"[^"]+" -> "[^"]+" \[label="[^"]*"\];', l)]
    assert len(node_lines) == len(ir)
    assert len(edge_lines) == ir.g.number_of_edges()
    assert '"L1.attn" [label=' in dot and "layer attention" in dot
    # every edge endpoint is a declared node
    declared = {re.match(r'\s+"([^"]+)"', l).group(1) for l in node_lines}
    for l in edge_lines:
        src, dst = re.findall(r'"([^"]+)" ->  ?"?([^"]+)"', l.replace('-> "', '->  "'))[0]
        assert src in declared and dst in declared


def test_parallel_shared_norm_builds() -> None:
    ir = hcdsl.lower(spec("parallel(shared)"), passes=None)
    verify(ir)
    assert ir.inputs("L1.attn")["q"] == ir.inputs("L2.ffn")["x"] == "L1-2.norm"


def test_dot_label_line_break_is_a_dot_newline() -> None:
    dot = to_dot(raw())
    assert '"L1.attn" [label="L1.attn\\nlayer attention"];' in dot
