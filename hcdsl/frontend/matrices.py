"""Literal matrices of a `connect ... { rules }` block: selectors and shape checks."""

from __future__ import annotations

from pydantic import BaseModel

from hcdsl.errors import ErrorSink
from hcdsl.frontend import syntax as s
from hcdsl.frontend.numbers import Capped, count, weight_problem
from hcdsl.lang.connections import Preset
from hcdsl.spec import Matrix


class MatrixRules:
    """Mixin of the validator: per-layer literal matrices, later rules overriding earlier."""

    err: ErrorSink

    def text(self, value: s.Value) -> str:  # pragma: no cover - provided by the validator
        raise NotImplementedError

    def matrices(self, cd: s.ConnectDef, chosen: Preset, opts: BaseModel,
                 n_layers: int) -> tuple[tuple[int, Matrix], ...]:
        if not cd.rules:
            return ()
        if chosen.matrix_shape is None:
            self.err.error(f"connection '{chosen.name}' takes no literal matrices",
                           cd.rules[0].span, "literal matrices are for hyper-connections")
            return ()
        shape = chosen.matrix_shape(opts)
        out: dict[int, Matrix] = {}
        for rule in cd.rules:
            matrix = self.matrix(rule.value, shape, chosen, opts)
            for k in self.select(rule.selector, n_layers):
                if matrix is not None:
                    out[k] = matrix  # a later rule overrides an earlier one
        return tuple(sorted(out.items()))

    def select(self, sel: s.Selector, n: int) -> list[int]:
        def check(k: int) -> bool:
            if 1 <= k <= n:
                return True
            self.err.error(f"layer {count(k)} does not exist: the body has {n} layers",
                           sel.span, f"layers are numbered from 1 to {n}" if n else None)
            return False

        if sel.kind == "all":
            return list(range(1, n + 1))
        if sel.kind in ("odd", "even"):
            return list(range(1 if sel.kind == "odd" else 2, n + 1, 2))
        if sel.kind == "layer":
            return [sel.args[0]] if check(sel.args[0]) else []
        if sel.kind == "range":
            lo, hi = sel.args
            if lo > hi:
                self.err.error(f"empty range {count(lo)}..{count(hi)}", sel.span,
                               "write low..high")
                return []
            return list(range(lo, hi + 1)) if check(lo) and check(hi) else []
        step, start = sel.args[0], (sel.args[1] if len(sel.args) > 1 else 1)
        if step < 1:
            self.err.error("'every' needs a step of at least 1", sel.span)
            return []
        return list(range(start, n + 1, step)) if check(start) else []

    def matrix(self, value: s.Value, shape: tuple[int, int], chosen: Preset,
               opts: BaseModel) -> Matrix | None:
        rows, cols = shape
        # the integer options fix the shape (n for hyper); flags like `dynamic` do not
        context = ", ".join(f"{k}={v}" for k, v in opts.model_dump().items()
                            if isinstance(v, int) and not isinstance(v, bool))
        expect = f"expected a {rows}x{cols} matrix for {context}"
        shape_help = chosen.matrix_help or None
        if not isinstance(value, s.ListValue) or not all(
                isinstance(r, s.ListValue) for r in value.items):
            self.err.error(f"{expect}, got '{self.text(value)}'", value.span,
                           "write a matrix as a list of rows, e.g. [[0, 1], [1, 1]]"
                           + (f"; {shape_help}" if shape_help else ""))
            return None
        if len(value.items) != rows:
            self.err.error(f"{expect}, got {len(value.items):,} rows", value.span, shape_help)
            return None
        # the shape first (one look per row), the entries only once it is right
        shape = Capped(self.err)
        for i, row in enumerate(value.items):
            if len(row.items) != cols:
                shape.error(f"{expect}, got {len(row.items):,} entries in row {i + 1}",
                            row.span, shape_help)
        shape.close("rows of the wrong length")
        if not shape.ok:
            return None
        entries = Capped(self.err)
        out = []
        for i, row in enumerate(value.items):
            nums = []
            for j, entry in enumerate(row.items):
                if not isinstance(entry, s.Number):
                    entries.error(f"matrix entry ({i + 1}, {j + 1}) is not a number: "
                                  f"'{self.text(entry)}'", entry.span,
                                  "matrix entries are numbers such as 0, 1, -0.5, 1e-3")
                    continue
                problem = weight_problem(entry.value, entry.text,
                                         f"matrix entry ({i + 1}, {j + 1})")
                if problem:
                    entries.error(problem, entry.span)
                    continue
                nums.append(entry.value)
            out.append(tuple(nums))
        entries.close("entries that are not numbers or too large")
        return tuple(out) if entries.ok else None
