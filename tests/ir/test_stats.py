"""hcdsl.stats: parameter counts on the meta device, extra parameters over Pre-Norm."""

from __future__ import annotations

import subprocess
import sys

import time
from pathlib import Path

import pytest
import torch

from hcdsl.counts import count_params, describe_layers, stats

SPECS = Path(__file__).resolve().parents[2] / "specs"

TINY = """
model tiny {
  dim = 32
  vocab = 64
  norm = layernorm(affine=false)
  layer attn = attention(heads=4)
  layer ffn  = mlp(hidden=64)
  body = repeat 2 [attn, ffn]
  connect CONNECT
}
"""


def tiny(connect: str) -> str:
    return TINY.replace("CONNECT", connect)


def test_pre_norm_has_no_extra_params() -> None:
    st = stats(SPECS / "pre_norm.hc")
    assert st.extra_params == 0 and st.extra_percent == 0.0
    assert st.params == st.baseline_params
    assert st.family == "pre-norm" and st.streams == 1 and st.layers == 4


def test_counts_match_a_real_model() -> None:
    import hcdsl

    for connect in ("residual", "hyper(n=2, static)", "hyper(n=3, dynamic)"):
        real = hcdsl.compile(tiny(connect))
        assert stats(tiny(connect)).params == sum(p.numel() for p in real.parameters())


@pytest.mark.parametrize("n", [1, 2, 4])
def test_hc_extra_params_follow_the_paper(n: int) -> None:
    d, layers = 32, 4
    static = stats(tiny(f"hyper(n={n}, static)"))
    dynamic = stats(tiny(f"hyper(n={n}, dynamic)"))
    assert static.extra_params == layers * (n + n * (n + 1))
    # + W_beta (d), [W_m | W_r] (d x (n+1)), s_alpha, s_beta; the norm is not affine
    assert dynamic.extra_params == layers * (n + n * (n + 1) + d * (n + 1) + d + 2)
    assert static.streams == n and static.family == f"SHC x{n}"


def test_tied_weights_count_once() -> None:
    tied = stats(tiny("residual").rstrip()[:-1] + "  head = unembed(tied=true)\n}")
    untied = stats(tiny("residual"))
    assert untied.params - tied.params == 64 * 32  # one vocab x dim matrix fewer


def test_counting_builds_nothing_and_needs_no_torch() -> None:
    """stats counts from shapes: in a fresh interpreter it does not even import torch."""
    code = ("import sys; from pathlib import Path; import hcdsl; "
            f"st = hcdsl.stats(Path({str(SPECS / 'olmo_1b_dhc4.hc')!r})); "
            "print(st.extra_params, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["394048", "False"]


def test_7b_size_spec_is_fast() -> None:
    spec = """
    model seven_b {
      dim = 4096
      vocab = 32000
      norm = rmsnorm
      layer attn = attention(heads=32)
      layer ffn  = mlp(hidden=11008, act=swiglu)
      body = repeat 32 [attn, ffn]
      connect hyper(n=4, dynamic)
    }
    """
    t0 = time.perf_counter()
    st = stats(spec)
    assert time.perf_counter() - t0 < 20  # about 1 s here; a real build takes minutes
    assert st.baseline_params == 6_738_415_616  # LLaMA-7B
    # the generator's RMSNorm has a weight of d
    assert st.extra_params == 64 * (4 + 4 * 5 + 4096 * 5 + 4096 + 2 + 4096)


def test_static_matrices_are_the_init_of_each_step() -> None:
    st = stats(SPECS / "hc_parallel_n2.hc")
    odd = ((0, 1, 0), (1, 1, 1), (1, 1, 1))
    even = ((0, 0, 1), (0, 1, 0), (1, 0, 1))
    assert [m.matrix for m in st.matrices] == [odd, even, odd, even]
    assert [m.layers for m in st.matrices] == [(1,), (2,), (3,), (4,)]
    assert not any(m.learn for m in st.matrices)
    assert [where for where, _ in st.matrix_groups()] == ["odd", "even"]
    hc = stats(SPECS / "tiny_shc4.hc")
    # Eq. 14: A_m = e_(k mod n), k 0-based: layer 1 reads stream 0, layer 2 stream 1, ...
    assert [m.matrix[1 + (k % 4)][0] for k, m in enumerate(hc.matrices)] == [1.0] * 6


def test_describe_layers() -> None:
    assert describe_layers([3], 8) == "layer 3"
    assert describe_layers(list(range(1, 9)), 8) == "all"
    assert describe_layers([1, 3, 5, 7], 8) == "odd"
    assert describe_layers([2, 4, 6, 8], 8) == "even"
    assert describe_layers([2, 3, 4], 8) == "layers 2..4"
    assert describe_layers([2, 6], 8) == "every 4 from 2"
    assert describe_layers([1, 2, 7], 8) == "layers 1, 2, 7"


def test_count_params_ignores_buffers() -> None:
    from hcdsl import parse

    fixed = parse(tiny("hyper(n=2, fixed)"))
    assert count_params(fixed) == count_params(parse(tiny("residual")))


def test_package_level_stats_can_be_called_twice() -> None:
    import hcdsl

    assert hcdsl.stats(SPECS / "pre_norm.hc").extra_params == 0
    assert hcdsl.stats(SPECS / "pre_norm.hc").extra_params == 0
