"""Mistakes at the Python API's edges are clear hcdsl errors, never raw torch errors: token
ids of the wrong shape, dtype or range given to a compiled model (both backends, and under
torch.compile), and a file path given as a str where a str is spec text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import hcdsl
from hcdsl.errors import CompileError, HcError

SPECS = Path(__file__).resolve().parents[2] / "specs"
TINY = """model tiny {
  dim = 16
  vocab = 32
  layer attn = attention(heads=2)
  layer ffn = mlp(hidden=32)
  body = repeat 1 [attn, ffn]
  connect hyper(n=2, dynamic)
}"""


@pytest.fixture(scope="module", params=["fx", "reference"])
def model(request: pytest.FixtureRequest) -> torch.nn.Module:
    return hcdsl.compile(TINY, backend=request.param, seed=0)


@pytest.mark.parametrize("tokens, message", [
    (torch.tensor([[1, 2, 32]]), "token 32 at (batch, time) = (0, 2) is outside the vocabulary "
                                 "0..31 (1 token out of range)"),
    (torch.tensor([[-1, 2], [3, 99]]), "token -1 at (batch, time) = (0, 0) is outside the "
                                       "vocabulary 0..31 (2 tokens out of range)"),
    (torch.tensor([[1.0, 2.0]]), "this model reads token ids: an integer tensor (batch, time) "
                                 "in 0..31; got a torch.float32 tensor of shape (1, 2)"),
    (torch.tensor([1, 2, 3]), "got a torch.int64 tensor of shape (3,) (a single sequence: "
                              "use tokens[None])"),
    (torch.zeros(1, 2, 3, dtype=torch.long), "got a torch.int64 tensor of shape (1, 2, 3)"),
    (torch.tensor([[True, False]]), "got a torch.bool tensor of shape (1, 2)"),
])
def test_bad_tokens_are_clear_errors(model: torch.nn.Module, tokens: torch.Tensor,
                                     message: str) -> None:
    with pytest.raises(CompileError, match=re.escape(message)):
        model(tokens)


def test_good_tokens_of_any_integer_dtype_run(model: torch.nn.Module) -> None:
    for dtype in (torch.int32, torch.int64):
        assert model(torch.tensor([[0, 31]], dtype=dtype)).shape == (1, 2, 32)


def test_the_check_is_one_graph_under_torch_compile() -> None:
    """The shape/dtype check is static while tracing and the range check an assertion in the
    graph: torch.compile(fullgraph=True) still traces one graph, and an out-of-range token
    in the compiled model is an error naming the vocabulary, not an out-of-bounds read."""
    model = hcdsl.compile(TINY, seed=0)
    tokens = torch.randint(0, 32, (2, 5), generator=torch.Generator().manual_seed(1))
    torch._dynamo.reset()
    explained = torch._dynamo.explain(model)(tokens)
    assert explained.graph_count == 1 and explained.graph_break_count == 0, explained
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    assert torch.allclose(compiled(tokens), model(tokens), atol=1e-6)
    with pytest.raises(Exception) as info:  # noqa: PT011 - torch wraps the assertion
        compiled(torch.tensor([[1, 40, 2, 3, 4], [0, 0, 0, 0, 0]]))
    chain, exc = [], info.value
    while exc is not None:
        chain.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    assert any("token ids must lie in 0..31 (the vocabulary)" in text for text in chain), chain
    torch._dynamo.reset()


@pytest.mark.parametrize("text", ["x.hc", "  specs/pre_norm.hc\n", str(SPECS / "pre_norm.hc"),
                                  "README.md"])
@pytest.mark.parametrize("call", [hcdsl.compile, hcdsl.parse, hcdsl.lower])
def test_a_path_given_as_a_str_gets_a_hint(text: str, call: object) -> None:
    with pytest.raises(HcError) as info:
        call(text)  # type: ignore[operator]
    word = text.strip()
    assert info.value.first.hint == (
        f"a str is spec text; to read the file {word!r} pass pathlib.Path({word!r}) or call "
        f"hcdsl.load({word!r})")


def test_real_spec_text_keeps_its_own_hint() -> None:
    with pytest.raises(HcError) as info:
        hcdsl.parse("model m {\n  dim = 16\n  vocab = 32\n  body = [nope]\n}\n")
    assert "pathlib" not in str(info.value)
