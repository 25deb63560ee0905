"""Hostile inputs for hcdsl, shared by the tests (tests/frontend/test_fuzz.py) and the benchmark
(benchmarks/fuzz.py).

- `mutate(text, rng)`: 1 to 3 token- or byte-level edits of a spec: a token deleted,
  duplicated or swapped, a number replaced by a huge, negative, fractional or NaN-like one
  (or one just over a limit), a random name, bracket or keyword inserted, the text
  truncated, unicode (controls, surrogates, BOM, right-to-left marks, emoji) inserted, a
  value wrapped in thousands of brackets, a character flipped.
- `big_inputs()`: specs at the size limits, each built to be as costly as the limits allow
  (a megabyte of numbers, of comments, of white space; just under the token limit: literal
  matrices, layer definitions, connection blocks, errors; brackets nested 20,000 deep).
- hypothesis strategies: any text, token soup from the language's vocabulary, and a bundled
  spec with a slice replaced by token soup.
- `run_case(text)`: the input through hcdsl.parse, hcdsl.lower and hcdsl.stats; the outcome
  is "ok", "error" (hcdsl's own HcError or CompileError, with a message) or "crash"
  (anything else, with its traceback), and the seconds it took: at most 2 s, of which the
  front end always; a valid spec of more than 256 layers may take 10 ms per layer more in
  all (its IR grows with depth, quadratically for the dense families: a big model, not
  hostile input).
"""

from __future__ import annotations

import random
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

import hcdsl
from hcdsl.errors import CompileError, HcError
from hcdsl.frontend.source import count_tokens
from hcdsl.lang.limits import LIMITS, MAX_SOURCE_BYTES, MAX_TOKENS

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").rglob("*.hc"))
BUNDLED = [(str(p.relative_to(ROOT / "specs")), p.read_text()) for p in SPECS]
DEADLINE = 2.0  # CPU seconds a case may take (process time: a hang burns CPU, a busy
# machine does not count against the case; a case normally takes 0.001-0.3 s) ...
DEEP = 256  # ... unless it is a valid spec deeper than this many layers:
PER_LAYER = 0.01  # then lowering (quadratic in depth for dense families) may take this more


def budget(layers: int) -> float:
    """Seconds a case may take: DEADLINE, plus PER_LAYER per layer for a valid spec of more
    than DEEP layers (a big model is not hostile input; its IR grows with depth)."""
    return DEADLINE + (PER_LAYER * layers if layers > DEEP else 0.0)

# -- the vocabulary ------------------------------------------------------------------------
KEYWORDS = ["model", "connection", "layer", "layers", "body", "repeat", "connect", "head",
            "extern", "param", "all", "odd", "even", "every", "from", "dim", "vocab",
            "context", "norm", "true", "false", "hyper", "frac", "mhc", "mudd", "attnres",
            "denseformer", "residual", "parallel", "attention", "mlp", "opaque", "unembed",
            "layernorm", "rmsnorm", "scalar", "streams", "state", "history", "init",
            "readout", "lowrank", "n", "m", "k", "p", "iters", "heads", "hidden"]
SYMBOLS = ["{", "}", "[", "]", "(", ")", "=", ",", "..", "#", '"', "-", "+", "."]
# a number's replacement: huge, negative, fractional, NaN-like, and just over a limit
NUMBERS = ["-1", "0", "-0", "1.5", "0.5", "1e999", "-1e999", "1e-400", "2147483648",
           "9223372036854775808", "1" + "0" * 30, "9" * 400, "nan", "inf", "-inf", "NaN",
           "0x10", "1_000", "1e", ".5", "5.", "+3", "٣", "１"]
NUMBERS += [str(int(limit.value) + 1) for limit in LIMITS if isinstance(limit.value, int)]
UNICODE = ["\x00", "\x1b[31m", "\x7f", "\ufeff", "\u202e", "\u200b", "\ud800", "é", "ß",
           "名前", "🙂", "\u0301", "\r", "\r\n", "\t", "\x0c", "\u2028"]


def tokens(text: str) -> list[str]:
    """Text cut into tokens and the gaps between them (joined back, the same text)."""
    out: list[str] = []
    word = ""
    for c in text:
        if c.isalnum() or c in "_.+-" and word:
            word += c
            continue
        if word:
            out.append(word)
            word = ""
        out.append(c)
    if word:
        out.append(word)
    return out


def _is_number(tok: str) -> bool:
    return tok[:1].isdigit() or tok[:1] in "+-." and tok[1:2].isdigit()


def _edit(toks: list[str], rng: random.Random) -> list[str]:
    kind = rng.choice(["delete", "duplicate", "swap", "number", "number", "name", "bracket",
                       "truncate", "unicode", "nest", "flip", "keyword", "block"])
    solid = [i for i, t in enumerate(toks) if not t.isspace()] or [0]
    i = rng.choice(solid)
    if kind == "delete" and toks:
        return toks[:i] + toks[i + 1:]
    if kind == "duplicate" and toks:
        return toks[:i + 1] + [" ", toks[i]] + toks[i + 1:]
    if kind == "swap" and len(solid) > 1:
        j = rng.choice(solid)
        toks = list(toks)
        toks[i], toks[j] = toks[j], toks[i]
        return toks
    if kind == "number":
        numbers = [k for k, t in enumerate(toks) if _is_number(t)] or [i]
        k = rng.choice(numbers)
        return toks[:k] + [rng.choice(NUMBERS)] + toks[k + 1:]
    if kind == "name":
        name = rng.choice(["x", "_", "a" * rng.randint(1, 300), "é", "attn", "ffn", "L1"])
        return toks[:i] + [" ", name, " "] + toks[i:]
    if kind == "keyword":
        return toks[:i] + [" ", rng.choice(KEYWORDS), " "] + toks[i:]
    if kind == "bracket":
        return toks[:i] + [rng.choice(SYMBOLS)] + toks[i:]
    if kind == "truncate":
        return toks[:i]
    if kind == "unicode":
        return toks[:i] + [rng.choice(UNICODE)] + toks[i:]
    if kind == "nest":
        depth = rng.choice([3, 50, 500, 5000, 20000])
        return toks[:i] + ["[" * depth] + toks[i:i + 1] + ["]" * depth] + toks[i + 1:]
    if kind == "block":  # a random slice repeated: long bodies, many layers or rules
        j = min(len(toks), i + rng.randint(1, 12))
        return toks[:j] + toks[i:j] * rng.choice([2, 10, 300]) + toks[j:]
    # flip: one character replaced by a random code point
    tok = toks[i] if toks else ""
    if not tok:
        return toks
    k = rng.randrange(len(tok))
    c = chr(rng.choice([rng.randint(0, 127), rng.randint(0, 0x10FFFF)]))
    if 0xD800 <= ord(c) <= 0xDFFF and rng.random() < 0.5:
        c = "?"
    return toks[:i] + [tok[:k] + c + tok[k + 1:]] + toks[i + 1:]


def mutate(text: str, rng: random.Random) -> str:
    """1 to 3 random edits of text (module doc)."""
    toks = tokens(text)
    for _ in range(rng.choice([1, 1, 2, 3])):
        toks = _edit(toks, rng)
    return "".join(toks)


def mutants(count: int, seed: int = 0):  # noqa: ANN201 - an iterator of (name, text)
    """`count` mutants of the bundled specs, reproducible from the seed."""
    rng = random.Random(seed)
    for i in range(count):
        name, text = BUNDLED[rng.randrange(len(BUNDLED))]
        yield f"{i}:{name}", mutate(text, rng)


# -- inputs at the size limits ---------------------------------------------------------------
HEAD = ("model m {\n dim = 64\n vocab = 32\n layer a = attention(heads=2)\n layer f = mlp\n")


def _matrix(rng: random.Random, rows: int, cols: int, entries: list[str]) -> str:
    return "[" + ", ".join("[" + ", ".join(rng.choice(entries) for _ in range(cols)) + "]"
                           for _ in range(rows)) + "]"


def _fill(unit: str, fixed: str, budget: int = MAX_TOKENS - 200) -> int:
    """How many copies of unit fit in the token budget next to fixed."""
    return max(1, (budget - count_tokens(fixed)) // max(1, count_tokens(unit)))


def big_inputs() -> dict[str, str]:
    """Specs as costly as the limits allow (module doc); each under MAX_SOURCE_BYTES, and
    all but the first three under MAX_TOKENS."""
    rng = random.Random(0)
    mb = MAX_SOURCE_BYTES
    out: dict[str, str] = {}
    nums = ["0", "1", "0.5", "-1"]
    # over the token limit: a megabyte of numbers, right and wrong shaped
    flat = "model m { dim = 64 vocab = 32 layer a = extern f(x=["
    out["megabyte of numbers"] = flat + ",".join(["1"] * ((mb - 100) // 2)) + "]) body=[a] }"
    side = 450
    out["450x450 literal"] = (HEAD + " body = [a]\n connect hyper(n=2) {\n all = "
                              + _matrix(rng, side, side, nums) + "\n }\n}\n")
    out["megabyte of brackets"] = "model m { dim = 64 vocab = 32 x = " + "[" * (mb - 100)
    # under the token limit
    out["megabyte of comments"] = ("# " + "c" * 200 + "\n") * ((mb - 200) // 203) + HEAD \
        + " body = [a, f\n"
    out["megabyte of white space"] = " " * (mb - 100) + "model m { dim = 64 body = [a"
    out["megabyte string"] = ('model m { dim = 64 vocab = 32 layer a = extern f(x="'
                              + "s" * (mb - 100) + '") body=[a] }')
    lit = f"  layer {{k}} = {_matrix(rng, 65, 65, nums)}\n"
    k = _fill(lit.format(k=1), HEAD + " body = repeat 512 [a, f]\n connect hyper(n=64) {}\n")
    out["full 65x65 literals"] = (HEAD + " body = repeat 512 [a, f]\n connect hyper(n=64, "
                                  "fixed) {\n" + "".join(lit.format(k=i + 1) for i in range(k))
                                  + " }\n}\n")
    bad = lit.replace("0.5", "x")
    out["65x65 literals of names"] = out["full 65x65 literals"].replace(lit.format(k=1),
                                                                        bad.format(k=1))
    unit = " layer l{} = mlp\n"
    k = _fill(unit.format(1), "model m { dim = 64 vocab = 32 body = [l0] }")
    out["layer definitions"] = ("model m {\n dim = 64\n vocab = 32\n"
                                + "".join(unit.format(i) for i in range(k)) + " body = [l0]\n}\n")
    unit = " layer l{} = attention(heads=2, bias=true)\n"
    k = _fill(unit.format(1), "model m { dim = 64 vocab = 32 body = [l0] }")
    out["attention definitions"] = ("model m {\n dim = 64\n vocab = 32\n"
                                    + "".join(unit.format(i) for i in range(k))
                                    + " body = [l0]\n}\n")
    unit = "  all = [[0, 1], [1, 1]]\n"
    k = _fill(unit, HEAD + " body = repeat 512 [a, f] connect hyper(n=1, fixed) {}")
    out["rules on every layer"] = (HEAD + " body = repeat 512 [a, f]\n connect hyper(n=1, "
                                   "fixed) {\n" + unit * k + " }\n}\n")
    unit = "connection c{} {{ all = [[0, 1], [1, 1]] }}\n"
    k = _fill(unit.format(1), HEAD + " body = repeat 512 [a, f] connect c0 }")
    out["connection blocks"] = ("".join(unit.format(i) for i in range(k)) + HEAD
                                + " body = repeat 512 [a, f]\n connect c0\n}\n")
    unit = " param p{} = 1\n"
    k = _fill(unit.format(1), HEAD + "connection c { all = [[0, p1], [1, p2]] } body = [a]")
    out["params"] = ("connection c {\n" + "".join(unit.format(i) for i in range(k))
                     + " all = [[0, p1], [1, p2]]\n}\n" + HEAD + " body = [a, f]\n connect c\n}\n")
    k = _fill("a, ", HEAD + " body = [ ] }")
    out["long body"] = HEAD + " body = [" + ", ".join(["a"] * k) + "]\n}\n"
    unit = " dimm{} = 3\n"
    k = _fill(unit.format(1), "model m { }")
    out["thousands of errors"] = "model m {\n" + "".join(unit.format(i) for i in range(k)) + "}\n"
    depth = MAX_TOKENS // 2 - 100
    out["nested 20,000 deep"] = ("model m { dim = 64 vocab = 32 layer a = extern f(x="
                                 + "[" * depth + "1" + "]" * depth + ") body=[a] }")
    return out


# -- hypothesis strategies -------------------------------------------------------------------
_piece = st.sampled_from(KEYWORDS + SYMBOLS + NUMBERS + UNICODE + ["x", "a", "1", "2", "\n"])
token_soup = st.lists(_piece, max_size=60).map(" ".join)
any_text = st.text(max_size=300)


@st.composite
def spliced(draw) -> str:  # noqa: ANN001 - hypothesis's draw
    """A bundled spec with a slice replaced by token soup."""
    _, text = draw(st.sampled_from(BUNDLED))
    i = draw(st.integers(0, len(text)))
    j = draw(st.integers(i, min(len(text), i + 40)))
    return text[:i] + draw(token_soup) + text[j:]


# -- one case --------------------------------------------------------------------------------
@dataclass
class Result:
    kind: str  # ok | error | crash
    seconds: float  # the whole case
    detail: str = ""  # the error's message, or the crash's traceback
    front: float = 0.0  # seconds in hcdsl.parse
    layers: int = 0  # of the spec, when it parsed

    @property
    def over(self) -> bool:
        """Took longer than allowed: DEADLINE for the front end, budget() in all."""
        return self.front >= DEADLINE or self.seconds >= budget(self.layers)


def run_case(text: str, lower: bool = True) -> Result:
    """The input through hcdsl.parse, then (when it parses) hcdsl.lower and hcdsl.stats."""
    t0 = time.process_time()
    front, layers = 0.0, 0
    try:
        spec = hcdsl.parse(text)
        front, layers = time.process_time() - t0, len(spec.sequence)
        if lower:
            hcdsl.lower(spec)
            hcdsl.stats(spec)
    except (HcError, CompileError) as exc:
        detail = str(exc)
        kind = "error"
        if isinstance(exc, HcError) and not detail.rstrip().endswith(f"in {exc.filename}"):
            kind, detail = "crash", "an HcError rendered without its summary line:\n" + detail
        return Result(kind, time.process_time() - t0, detail, front or time.process_time() - t0,
                      layers)
    except Exception:  # noqa: BLE001 - what the fuzzer looks for
        return Result("crash", time.process_time() - t0, traceback.format_exc(), front, layers)
    return Result("ok", time.process_time() - t0, "", front, layers)
