"""Mistakes in the parts of a connection block added for the static families: vector params,
low-rank maps between streams, raw inits, learned readouts. Each is one diagnostic at
file:line:col with a caret under the offending text and a hint; none is a traceback."""

from __future__ import annotations

import pytest

from test_custom_errors import at, check, source

pytestmark = pytest.mark.usefixtures("one_thread")


def test_vector_and_scalar_in_one_entry() -> None:
    src = source("""
        connection c {
          param g = vector(init=1)
          param s = 0.5
          all = [[0, 1], [1, s * g]]
        }
    """)
    check(src, at(src, "s * g"), "matrix entry (2, 2) mixes the vector param 'g' with the "
          "scalar param 's'", "declare 's' as vector(...)")


def test_vector_in_readout() -> None:
    src = source("""
        connection c {
          param g = vector(init=1)
          readout = [g]
          all = [[0, 1], [1, 1]]
        }
    """)
    check(src, at(src, "readout"), "connection 'c': readout names 'g', a vector param",
          "declare it as scalar(...)")


def test_vector_as_a_map_weight() -> None:
    src = source("""
        connection c {
          param g = vector(init=1)
          maps = [lowrank(rank=4, source=1, target=1, weight=g)]
          all = [[0, 1], [1, 1]]
        }
    """)
    check(src, at(src, "g)]"), "connection 'c': map 1: weight 'g' is a vector param",
          "declare g as scalar(...)")


def test_map_to_a_stream_that_does_not_exist() -> None:
    src = source("""
        connection c {
          maps = [lowrank(rank=4, source=1, target=3)]
          all = [[0, 1], [1, 1]]
        }
    """)
    check(src, at(src, "maps"), "connection 'c': map 1: target = 3 names a stream that does "
          "not exist; streams are 1..1", "streams are numbered from 1")


def test_map_without_its_rank() -> None:
    src = source("""
        connection c {
          maps = [lowrank(source=1, target=1)]
          all = [[0, 1], [1, 1]]
        }
    """)
    check(src, at(src, "lowrank("), "connection 'c': map 1 needs rank", "write maps = [lowrank(")


def test_map_that_is_not_lowrank() -> None:
    src = source("""
        connection c {
          maps = [dense(source=1, target=1)]
          all = [[0, 1], [1, 1]]
        }
    """)
    check(src, at(src, "dense("), "connection 'c': map 1 is not a `lowrank(...)` or "
          "`linear(...)` call", "write maps = [lowrank(")


def test_linear_map_with_a_rank() -> None:
    src = source("""
        connection c {
          maps = [linear(rank=4, source=1, target=1)]
          all = [[0, 1], [1, 1]]
        }
    """)
    check(src, at(src, "rank=4"), "connection 'c': map 1: linear(...) is a full w x w map and "
          "takes no rank", "drop rank=...")


def test_map_rank_not_a_whole_number() -> None:
    src = source("""
        connection c {
          maps = [lowrank(rank=2.5, source=1, target=1)]
          all = [[0, 1], [1, 1]]
        }
    """)
    check(src, at(src, "rank=2.5"), "connection 'c': map 1: 'rank' must be a whole number, "
          "got '2.5'", "write maps = [lowrank(")


def test_map_weight_undeclared() -> None:
    src = source("""
        connection c {
          maps = [lowrank(rank=2, source=1, target=1, weight=gamma)]
          all = [[0, 1], [1, 1]]
        }
    """)
    check(src, at(src, "gamma"), "connection 'c': map 1: weight names 'gamma', which is not "
          "a declared param", "param gamma = 1")


def test_param_with_init_and_raw() -> None:
    src = source("""
        connection c {
          param g = scalar(init=1, raw=0, bound=double)
          all = [[0, g], [1, 1]]
        }
    """)
    check(src, at(src, "scalar("), "param 'g': both init and raw given", "give one")


def test_vector_with_unknown_option() -> None:
    src = source("""
        connection c {
          param g = vector(size=64)
          all = [[0, g], [1, 1]]
        }
    """)
    check(src, at(src, "size=64"), "param 'g': unknown or bad option 'size'",
          "write vector(init=1")


def test_division_by_zero() -> None:
    src = source("""
        connection c {
          all = [[0, 1], [1, 2 / (1 - 1)]]
        }
    """)
    check(src, at(src, "2 / (1 - 1)"), "matrix entry (2, 2) divides by zero: '2 / (1 - 1)'",
          "a divisor must not be 0")


def test_division_by_a_param_that_is_zero_at_init() -> None:
    src = source("""
        connection c {
          param g = 0
          all = [[0, 1], [1, 1 / g]]
        }
    """)
    check(src, at(src, "1 / g"), "matrix entry (2, 2) divides by zero at init: '1 / g'",
          "a positive bound (unit, double, exp)")


def test_map_weight_whose_param_is_invalid_is_reported_once() -> None:
    src = source("""
        connection c {
          param g = scalar(init=3, bound=unit)
          maps = [lowrank(rank=2, source=1, target=1, weight=g)]
          all = [[0, 1], [1, 1]]
        }
    """)
    check(src, at(src, "scalar("), "param 'g': init 3 is outside the open range",
          "choose an init strictly between them")


def test_map_option_given_twice() -> None:
    src = source("""
        connection c {
          maps = [lowrank(rank=2, rank=4, source=1, target=1)]
          all = [[0, 1], [1, 1]]
        }
    """)
    check(src, at(src, "rank=4"), "connection 'c': map 1: 'rank' given twice",
          "give each option once")


def test_vector_in_the_corner_of_m() -> None:
    src = source("""
        connection c {
          param g = vector(init=1)
          all = [[g, 1], [1, 1]]
        }
    """)
    check(src, at(src, "g, 1]"), "matrix entry (1, 1) names the vector param 'g'; it is M's "
          "corner", "write 0 there")
