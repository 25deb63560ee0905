"""Hostile and huge input through the API: a str is always spec text, a Path is the only
thing read from disk, every limit of hcdsl/lang/limits.py is enforced with a located error
that names it, and inputs at the size limits fail (or pass) fast."""

from __future__ import annotations

import builtins
import io
import os
import time
from pathlib import Path

import pytest

import hcdsl
from hcdsl.errors import HcError
from hcdsl.lang.catalog import LAYER_KINDS
from hcdsl.lang.connections import PRESETS
from hcdsl.lang.limits import LIMITS, MAX_SOURCE_BYTES, MAX_TOKENS, limit_of

from fuzz import DEADLINE, big_inputs

SECRET = "s3cr3t-first-line-of-the-file"
GOOD = "model m { dim = 16 vocab = 32 layer a = attention(heads=2) layer f = mlp body = [a, f] }"


def error_of(spec: object) -> HcError:
    with pytest.raises(HcError) as info:
        hcdsl.parse(spec)  # type: ignore[arg-type]
    text = str(info.value)
    assert "Traceback" not in text and ": error: " in text
    return info.value


# -- a str is text, a Path is a file -----------------------------------------------------
def test_a_nul_byte_is_a_located_syntax_error() -> None:
    err = error_of("\x00")
    assert str(err).startswith("<spec>:1:1: error: unexpected character '\\x00'")
    assert "\x00" not in str(err)  # control characters are shown escaped, never raw


def test_terminal_escapes_and_surrogates_are_shown_escaped() -> None:
    for text in ("model m { dim = 8 \x1b[2J }", "\ud800"):
        rendered = str(error_of(text))
        rendered.encode("utf-8")  # printable: no lone surrogate reaches the terminal
        assert "\x1b" not in rendered


def test_a_path_in_a_str_is_text_not_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret.hc"
    secret.write_text(SECRET + "\n" + GOOD)
    for text in (str(secret), "/etc/passwd"):
        err = error_of(text)
        assert err.filename == "<spec>"
        assert SECRET not in str(err)
        if Path("/etc/passwd").exists() and text == "/etc/passwd":
            first = Path("/etc/passwd").read_text().splitlines()[0]
            assert first not in str(err)
    good = tmp_path / "good.hc"
    good.write_text(GOOD)
    assert hcdsl.parse(good).name == "m" and hcdsl.load(str(good)).name == "m"


@pytest.mark.parametrize("kind", ["missing", "directory", "binary", "latin-1", "too big",
                                  "unreadable", "nul in the name"])
def test_a_path_that_is_not_a_spec_file_is_one_clear_error(
        kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "spec.hc"
    expect = {"missing": "no such spec file", "directory": "is a directory",
              "binary": "is not UTF-8 text", "latin-1": "is not UTF-8 text",
              "too big": "(limit 'source')", "unreadable": "permission denied",
              "nul in the name": "cannot read"}[kind]
    if kind == "directory":
        path.mkdir()
    elif kind == "binary":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    elif kind == "latin-1":
        path.write_bytes("model é { }".encode("latin-1"))
    elif kind == "too big":
        path.write_text("#" * (MAX_SOURCE_BYTES + 1))
    elif kind == "unreadable":
        path.write_text(GOOD)
        path.chmod(0)
        if os.geteuid() == 0:  # root reads anything: make open() refuse as for a user
            _refuse_open(monkeypatch, path)
    elif kind == "nul in the name":
        path = tmp_path / "spec\x00.hc"
    err = error_of(path)
    assert expect in str(err), str(err)
    assert err.first.span is None and err.filename == str(path)
    with pytest.raises(HcError, match=expect.replace("(", r"\(").replace(")", r"\)")):
        hcdsl.load(str(path))


def _refuse_open(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    real = builtins.open

    def guarded(file, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
    monkeypatch.setattr(io, "open", guarded)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_an_endless_file_is_read_only_up_to_the_limit() -> None:
    t0 = time.process_time()
    err = error_of(Path("/dev/zero"))
    assert "more than 1,048,576 bytes" in str(err) and "(limit 'source')" in str(err)
    assert time.process_time() - t0 < DEADLINE


def test_text_over_the_size_limit() -> None:
    err = error_of(" " * (MAX_SOURCE_BYTES + 1))
    assert "(limit 'source')" in str(err)


def test_a_byte_order_mark_in_a_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "bom.hc"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert hcdsl.parse(path).name == "m"


def test_not_text_nor_path_is_a_type_error() -> None:
    for spec in (b"model", None, 3):
        with pytest.raises(TypeError):
            hcdsl.parse(spec)  # type: ignore[arg-type]


# -- every limit, located and named ------------------------------------------------------
M = "model m {{ dim = 16 vocab = 32 layer a = attention(heads=2) layer f = mlp {} }}"
OVER = {  # limit -> (spec, the text the error points at (None: the file as a whole))
    "source": (" " * (MAX_SOURCE_BYTES + 1), None),
    "tokens": ("model m { x = [" + "1," * MAX_TOKENS + "1] }", "checked below"),
    "dim": (M.format("body = [a]").replace("dim = 16", "dim = 65537"), "65537"),
    "vocab": (M.format("body = [a]").replace("vocab = 32", "vocab = 2097153"), "2097153"),
    "context": (M.format("context = 2097153 body = [a]"), "2097153"),
    "hidden": (M.format("layer g = mlp(hidden=262145) body = [g]"), "hidden=262145"),
    "heads": (M.format("layer g = attention(heads=1025) body = [g]"), "heads=1025"),
    "layers": (M.format("body = repeat 1025 [a]"), "repeat 1025 [a]"),
    "streams": (M.format("body = [a] connect hyper(n=65)"), "n=65"),
    "lowrank": ("connection c { lowrank = 65537 }\n" + M.format("body = [a] connect c"),
                "lowrank = 65537"),
    "iters": (M.format("body = [a] connect mhc(n=2, iters=1001)"), "iters=1001"),
    "multiple": (M.format("body = [a] connect mudd(ffn_multiple=65537)"), "ffn_multiple=65537"),
    "weight": (M.format("body = [a] connect hyper(n=1) { all = [[0, 1e999], [1, 1]] }"),
               "1e999"),
}
# more places each limit is checked
MORE = [
    ("layers", M.format("body = repeat 600 [a], repeat 600 [f]"), "repeat 600 [f]"),
    ("layers", M.format("body = [a] connect mudd(k=1025)"), "k=1025"),
    ("layers", M.format("body = [a] connect mudd(window=1025)"), "window=1025"),
    ("layers", M.format("body = [a] connect denseformer(p=1025)"), "p=1025"),
    ("layers", M.format("body = repeat " + "9" * 5000 + " [a]"), "repeat 99"),
    ("streams", M.format("body = [a] connect frac(m=65)"), "m=65"),
    ("streams", M.format("body = [a] connect mhc(n=65)"), "n=65"),
    ("streams", "connection c { streams = 65 }\n" + M.format("body = [a] connect c"),
     "streams = 65"),
    ("streams", "connection c { init = [" + "1, " * 65 + "1] }\n"
     + M.format("body = [a] connect c"), "init = ["),
    ("hidden", M.format("layer g = opaque(hidden=262145) body = [g]"), "hidden=262145"),
    ("weight", M.format("body = [a] connect hyper(n=1) { all = [[0, 1], [-2e6, 1]] }"), "-2e6"),
    ("weight", "connection c { param p = 1e7 all = [[0, p], [1, 1]] }\n"
     + M.format("body = [a] connect c"), "1e7"),
    ("weight", "connection c { all = [[0, 1e999], [1, 1]] }\n" + M.format("body = [a] connect c"),
     "1e999"),
    ("weight", "connection c { streams = 2 readout = [1, 1e9] all = [[0, 1, 1], [1, 1, 0], "
     "[0, 0, 1]] }\n" + M.format("body = [a] connect c"), "1e9"),
    ("weight", "connection c { value_residual = [1e9, 1] all = [[0, 1], [1, 1]] }\n"
     + M.format("body = [a] connect c"), "1e9"),
]


@pytest.mark.parametrize("name", [limit.name for limit in LIMITS])
def test_every_limit_is_enforced_and_named(name: str) -> None:
    text, needle = OVER[name]
    err = error_of(text)
    assert f"(limit '{name}')" in str(err), str(err)
    _located(err, text, needle)


@pytest.mark.parametrize(("name", "text", "needle"), MORE, ids=[f"{m[0]}-{i}"
                                                                  for i, m in enumerate(MORE)])
def test_limits_elsewhere(name: str, text: str, needle: str) -> None:
    err = error_of(text)
    assert f"(limit '{name}')" in str(err), str(err)
    _located(err, text, needle)


def _located(err: HcError, text: str, needle: str | None) -> None:
    """The diagnostic naming the limit points at the needle (None: at the whole file)."""
    d = next(d for d in err.diagnostics if "(limit '" in d.message)
    if needle is None:
        assert d.span is None
        return
    if needle == "checked below":
        return
    pos = text.index(needle)
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    assert d.span is not None and d.span.line == line, d
    assert d.span.column <= col and (d.span.end_line > line or d.span.end_column > col), d


def test_a_value_at_every_limit_is_accepted() -> None:
    text = "connection c { streams = 64 lowrank = 65536 }\n"
    assert "(limit" not in _errors(M.format("layer g = attention(heads=1024) body = [g]"))
    assert "(limit" not in _errors(M.format("body = [a] connect hyper(n=64) "))
    assert "(limit" not in _errors(M.format("body = [a] connect mhc(n=2, iters=1000)"))
    assert "(limit" not in _errors(text + M.format("body = [a] connect c"))


def _errors(text: str) -> str:
    try:
        hcdsl.parse(text)
    except HcError as err:
        return str(err)
    return ""


def test_every_bounded_integer_option_declares_its_limit() -> None:
    """An integer option with an upper bound names a limit of the table (at_most), so its
    error says which limit it hit; a new option cannot forget it."""
    models = [*LAYER_KINDS.values(), *(p.options for p in PRESETS.values())]
    for model in models:
        for name, field in model.model_fields.items():
            bounded = any(hasattr(m, "le") or hasattr(m, "lt") for m in field.metadata)
            if bounded and "int" in str(field.annotation):
                assert limit_of(field) is not None, f"{model.__name__}.{name}"


# -- many problems in one literal: reported once, counted --------------------------------
def test_a_literal_full_of_mistakes_reports_five_and_counts_the_rest() -> None:
    rows = ", ".join("[" + ", ".join(["x"] * 65) + "]" for _ in range(65))
    err = error_of(M.format(f"body = [a] connect hyper(n=64) {{ all = [{rows}] }}"))
    assert len(err.diagnostics) == 6
    assert "... and 4,220 more entries" in err.diagnostics[-1].message


def test_thousands_of_errors_render_fifty() -> None:
    err = error_of("model m {\n" + "".join(f" dimm{i} = 3\n" for i in range(500)) + "}\n")
    rendered = str(err)
    assert rendered.count(": error: ") == 50 and "more errors not shown" in rendered
    assert rendered.endswith(f"{len(err.diagnostics):,} errors in <spec>")


def test_a_long_line_is_shown_as_a_window_around_the_error() -> None:
    text = "model m { dim = 16 vocab = 32 x = [" + "1, " * 5000 + "y] body = [a] }"
    rendered = str(error_of(text))
    assert max(len(line) for line in rendered.splitlines()) < 300


# -- big inputs: rejected or accepted fast -----------------------------------------------
BIG = big_inputs()
FAST = ["megabyte of numbers", "450x450 literal", "megabyte of brackets",
        "megabyte of comments", "megabyte of white space", "nested 20,000 deep",
        "65x65 literals of names", "long body"]


def parses_within_the_deadline(name: str) -> None:
    """The big input parses or fails cleanly in under DEADLINE seconds of this process's CPU
    time (tests/fuzz.py: a busy machine does not count against it)."""
    t0 = time.process_time()
    try:
        hcdsl.parse(BIG[name])
    except HcError as err:
        assert "Traceback" not in str(err)
    assert time.process_time() - t0 < DEADLINE


@pytest.mark.parametrize("name", FAST)
def test_big_inputs_are_handled_fast(name: str) -> None:
    parses_within_the_deadline(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(BIG) - set(FAST)))
def test_big_inputs_under_the_token_limit_parse_in_two_seconds(name: str) -> None:
    parses_within_the_deadline(name)


def test_the_token_limit_is_checked_before_parsing() -> None:
    text = "model m { x = [" + ",".join(["1"] * MAX_TOKENS) + "] }"
    err = error_of(text)
    assert f"over the limit of {MAX_TOKENS:,} (limit 'tokens')" in str(err)
    # tokens: model m { x = [ then 1 , 1 , ...: token MAX_TOKENS + 1 is a '1' or a ','
    col = len("model m { x = [") + (MAX_TOKENS + 1 - 6)
    assert err.first.span is not None and (err.first.span.line, err.first.span.column) == (1, col)


# -- what the fuzzer found ---------------------------------------------------------------
def test_an_extern_layer_named_like_a_built_in_is_refused() -> None:
    """`layer attn = extern attention(...)` made mudd and value residuals treat a one-port
    user layer as attention (q, k, v ports: a KeyError while building the IR)."""
    text = ("model m { dim = 8 vocab = 4 layer a = extern attention(heads=2) body = [a] "
            "connect mudd }")
    err = error_of(text)
    assert "extern layer 'attention' has the name of a built-in layer kind" in str(err)
    assert err.first.span is not None and err.first.span.column == text.index("attention") + 1
    from hcdsl.spec import LayerSpec

    spec = hcdsl.parse(text.replace("extern attention", "extern att").replace(
        " connect mudd", ""))
    clash = spec.model_copy(update={"layers": (LayerSpec(name="a", kind="attention",
                                                         extern=True),)})
    with pytest.raises(HcError, match="has the kind of a built-in layer"):
        hcdsl.lower(clash)


@pytest.mark.parametrize("where", ["body = [{}]", "{} = 3", "layer g = {}", "layer g = mlp({}=1)"])
def test_a_name_of_a_megabyte_is_quoted_short(where: str) -> None:
    name = "n" * 500_000
    rendered = str(error_of("model m { dim = 8 vocab = 4 layer f = mlp body = [f] "
                            + where.format(name) + " }"))
    assert max(len(line) for line in rendered.splitlines()) < 400, rendered[:500]
