"""The prover's terms: linear forms over hash-consed atoms.

An atom is an uninterpreted value of width w per token: the embedding h0, a layer's output
T_k(inputs), a norm of a linear form, ... Atoms are interned in one table shared by both specs
of a proof, so structurally equal atoms are the same object and compare in O(1); each also
has a structural digest, independent of the order atoms were made in, which orders the
atoms of a form canonically (the "leading" atom of a norm's input).

A linear form (Lin) maps atoms to coefficients (hcdsl.proofs.coefs.K); its key is the set of
(atom id, coefficient at the random point), so equal forms have equal keys.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from hcdsl.proofs.coefs import ONE, K


@dataclass(eq=False)
class Atom:
    id: int
    kind: str  # h0 | T | V | norm | invstd | slice | concat | lowrank | bias | head
    fields: tuple  # kind-specific; child forms appear as Lin keys
    digest: str
    children: tuple["Lin", ...] = ()  # the forms it applies to (for rendering, reachability)
    label: str = ""  # how it prints

    def __repr__(self) -> str:
        return f"Atom({self.label or self.kind})"


class Lin:
    """sum_a c_a a over atoms, coefficients K; an immutable value with a canonical key."""

    __slots__ = ("terms", "_key")

    def __init__(self, terms: dict[Atom, K] | None = None) -> None:
        self.terms = {a: c for a, c in (terms or {}).items() if not c.is_zero()}
        self._key: frozenset | None = None

    @staticmethod
    def of(atom: Atom, c: K = ONE) -> "Lin":
        return Lin({atom: c})

    def __add__(self, other: "Lin") -> "Lin":
        out = dict(self.terms)
        for a, c in other.terms.items():
            out[a] = out[a] + c if a in out else c
        return Lin(out)

    def scale(self, c: K) -> "Lin":
        if c.is_zero():
            return Lin()
        return Lin({a: k * c for a, k in self.terms.items()})

    def key(self) -> frozenset:
        """(atom id, value at the point) per term: equal forms have equal keys; two forms
        with equal keys are equal unless a constant differs exactly (compatible())."""
        if self._key is None:
            self._key = frozenset((a.id, c.mod) for a, c in self.terms.items())
        return self._key

    def compatible(self, other: "Lin") -> bool:
        """No atom whose coefficients are constants in both forms with different values
        (two constants whose fingerprints collide are still told apart)."""
        for a, c in self.terms.items():
            d = other.terms.get(a)
            if d is None or not c.same(d):
                return False
        return True

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Lin) and self.key() == other.key() and self.compatible(other)

    def __hash__(self) -> int:
        return hash(self.key())

    def coef(self, a: Atom) -> K:
        return self.terms.get(a, K.const(0))

    def digest(self) -> str:
        """Structural: the same for equal forms, whatever the atom ids."""
        items = sorted(f"{a.digest}*{c.key}" for a, c in self.terms.items())
        return hashlib.sha1("+".join(items).encode()).hexdigest()

    def ordered(self) -> list[tuple[Atom, K]]:
        """The terms in canonical order: h0, T_1, T_2, ..., then the rest by digest."""
        return sorted(self.terms.items(), key=lambda t: atom_order(t[0]))

    def lead(self) -> tuple[Atom, K] | None:
        return self.ordered()[0] if self.terms else None

    def __bool__(self) -> bool:
        return bool(self.terms)

    def render(self, depth: int = 2) -> str:
        if not self.terms:
            return "0"
        out = []
        for a, c in self.ordered():
            name = render_atom(a, depth)
            if c.exact == 1:
                term = name
            elif c.exact == -1:
                term = "-" + name
            else:
                term = f"{c.render()}·{name}"
            out.append(term)
        return " + ".join(out).replace("+ -", "- ")

    def __str__(self) -> str:
        return self.render()


def atom_order(a: Atom) -> tuple:
    if a.kind == "h0":
        return (0, 0, a.digest)
    if a.kind == "T":
        return (1, a.fields[0], a.digest)
    return (2, 0, a.digest)


def render_atom(a: Atom, depth: int = 2) -> str:
    """T3(layernorm(h0 + T1(…) + T2(…))): nested terms to `depth`, then elided; a layer
    whose ports all read one value (attention's q, k, v) shows it once."""
    if not a.children:
        return a.label
    if depth <= 0:
        return f"{a.label}(…)"
    children = a.children
    if a.kind == "T" and all(c == children[0] for c in children):
        children = children[:1]
    inner = ", ".join(c.render(depth - 1) for c in children)
    return f"{a.label}({inner})"


@dataclass
class Terms:
    """The interning table of one proof: both specs' atoms live here."""

    table: dict[tuple, Atom] = field(default_factory=dict)
    max_degree: int = 0  # of any coefficient inside an atom (for the error bound)
    centred: dict[int, bool] = field(default_factory=dict)  # atom id -> mean 0 (mean-zero)

    def atom(self, kind: str, fields: tuple, children: tuple[Lin, ...] = (),
             label: str = "") -> Atom:
        key: tuple = (kind, fields, tuple(c.key() for c in children))
        found = self.table.get(key)
        while found is not None:
            if all(x.compatible(y) for x, y in zip(children, found.children)):
                return found
            key = (*key, "collision")  # a constant differs exactly: another atom
            found = self.table.get(key)
        for child in children:
            for k in child.terms.values():
                self.max_degree = max(self.max_degree, k.degree)
        text = repr((kind, fields, tuple(c.digest() for c in children)))
        digest = hashlib.sha1(text.encode()).hexdigest()
        atom = Atom(len(self.table), kind, fields, digest, children, label or kind)
        self.table[key] = atom
        return atom


def reachable(root: Atom) -> set[int]:
    """Ids of every atom the root's value depends on."""
    seen: set[int] = set()
    work = [root]
    while work:
        a = work.pop()
        if a.id in seen:
            continue
        seen.add(a.id)
        for child in a.children:
            work.extend(child.terms)
    return seen
