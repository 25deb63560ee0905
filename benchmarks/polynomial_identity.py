"""Why the prover evaluates learned coefficients at random points (docs/proving.md).

The polynomial part of a proof: is the product of L learned 2x2 mixing matrices, multiplied
in two orders, the same polynomial? Three ways to decide it: sympy's expand, equality
saturation with egglog (commutativity, associativity, distributivity), and evaluation at a
random point modulo 2^61 - 1 (what hcdsl does, twice). egglog is optional:

    .venv/bin/pip install egglog   # then:
    .venv/bin/python benchmarks/polynomial_identity.py
"""
import random
import time

import sympy

try:
    from egglog import EGraph, Expr, StringLike, eq, i64Like, rewrite, vars_
except ImportError:  # measured where installed
    EGraph = None

def sym_mats(L):
    return [sympy.Matrix(2, 2, sympy.symbols(f"a{k}_0:4")) for k in range(L)]

def sympy_time(L):
    ms = sym_mats(L)
    t = time.perf_counter()
    left = ms[0]
    for m in ms[1:]:
        left = left * m
    right = ms[-1]
    for m in reversed(ms[:-1]):
        right = m * right
    ok = all(sympy.expand(left[i] - right[i]) == 0 for i in range(4))
    return ok, time.perf_counter() - t, len(sympy.expand(left[0]).args)

P = (1 << 61) - 1
def pit_time(L):
    rng = random.Random(0)
    vals = [[rng.randrange(P) for _ in range(4)] for _ in range(L)]
    def mul(a, b):
        return [(a[0]*b[0]+a[1]*b[2]) % P, (a[0]*b[1]+a[1]*b[3]) % P,
                (a[2]*b[0]+a[3]*b[2]) % P, (a[2]*b[1]+a[3]*b[3]) % P]
    t = time.perf_counter()
    left = vals[0]
    for m in vals[1:]:
        left = mul(left, m)
    right = vals[-1]
    for m in reversed(vals[:-1]):
        right = mul(m, right)
    return left == right, time.perf_counter() - t

if EGraph is not None:
    class Num(Expr):
        def __init__(self, v: i64Like) -> None: ...
        @classmethod
        def var(cls, name: StringLike) -> "Num": ...
        def __add__(self, other: "Num") -> "Num": ...
        def __mul__(self, other: "Num") -> "Num": ...


def egg_time(L, limit=30):
    if EGraph is None:
        return None, float("nan"), None
    eg = EGraph()
    a, b, c = vars_("a b c", Num)
    eg.register(
        rewrite(a + b).to(b + a), rewrite(a * b).to(b * a),
        rewrite(a + (b + c)).to((a + b) + c), rewrite(a * (b * c)).to((a * b) * c),
        rewrite(a * (b + c)).to(a * b + a * c),
    )
    ms = [[Num.var(f"a{k}_{i}") for i in range(4)] for k in range(L)]
    def mul(x, y):
        return [x[0]*y[0]+x[1]*y[2], x[0]*y[1]+x[1]*y[3], x[2]*y[0]+x[3]*y[2], x[2]*y[1]+x[3]*y[3]]
    left = ms[0]
    for m in ms[1:]:
        left = mul(left, m)
    right = ms[-1]
    for m in reversed(ms[:-1]):
        right = mul(m, right)
    l0, r0 = eg.let("l", left[0]), eg.let("r", right[0])
    t = time.perf_counter()
    for i in range(limit):
        eg.run(1)
        if eg.check_bool(eq(l0).to(r0)):
            return True, time.perf_counter() - t, i + 1
        if time.perf_counter() - t > 60:
            return False, time.perf_counter() - t, i + 1
    return False, time.perf_counter() - t, limit

for L in (2, 3, 4, 5, 6, 8, 12, 16, 32):
    ok, t, terms = sympy_time(L) if L <= 12 else (None, float("nan"), None)
    pok, pt = pit_time(L)
    eok, et, it = egg_time(L) if L <= 6 else (None, float("nan"), None)
    print(f"L={L:3d}  sympy {t:8.3f} s ({terms} terms/entry)   egglog {et:8.3f} s "
          f"(proved: {eok}, {it} iterations)   random point {pt * 1e3:7.3f} ms", flush=True)
