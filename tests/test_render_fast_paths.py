"""Render fast paths (issues 14 and 17) give what the general code they skip would give.

Each test compares a shortcut with the slower function it stands in for, on generated values
that include the edges where the two could part (64-bit bounds, booleans, nested values).
"""

from __future__ import annotations

import importlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tldb import jsonfmt
from tldb.registry import ModuleRegistry


@pytest.fixture(scope="module")
def metrics_module():
    """compilation_metrics' code, imported once (outside the timed examples)."""
    ModuleRegistry.discover()
    return importlib.import_module("tldb_modules.compilation_metrics.module")


EDGES = st.sampled_from([0, -1, 2**63 - 1, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64, 10**30])
SCALARS = st.none() | st.booleans() | st.integers() | EDGES | st.floats() | st.text(max_size=8)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)


@settings(deadline=None)  # a loaded machine must not fail a correct example
@given(VALUES)
def test_other_metrics_value_text_is_compact_json(metrics_module, value):
    """An Other Metrics cell: null, booleans and integers are spelled without the encoder,
    exactly as dumps_compact (serde's spelling) writes them; strings stay as they are."""
    value_text = metrics_module.value_text
    expected = value if isinstance(value, str) else jsonfmt.dumps_compact(value)
    assert value_text(value) == expected


def _bits(value):
    """A parsed value with each float as its exact bits (== would call 0.0 and -0.0 equal)."""
    if isinstance(value, float):
        return ("float", value.hex())
    if isinstance(value, list):
        return [_bits(v) for v in value]
    if isinstance(value, dict):
        return {k: _bits(v) for k, v in value.items()}
    return value


#: Floats where serde's reading parts from the correctly rounded one: 16+ digits, exponents.
HARD_FLOATS = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [1795857002892060.5, 1795857003379427.2, 9007199254740993.0, 1e-7, 2.5e-308, 1e22, 1e23]
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | EDGES | HARD_FLOATS | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
)


@settings(deadline=None)  # a loaded machine must not fail a correct example
@given(JSON_VALUES)
def test_serde_walk_skipping_plain_lists_reads_as_serde(value):
    """loads_like_serde's walk passes over lists holding no float and no container; with or
    without such lists, it reads Python-written JSON to exactly serde's values (the slow
    reading of every number's text)."""
    text = json.dumps(value)
    assert _bits(jsonfmt.loads_like_serde(text)) == _bits(jsonfmt.loads_exactly_like_serde(text))


@settings(deadline=None)  # a loaded machine must not fail a correct example
@given(
    st.binary(max_size=300)
    | st.lists(st.sampled_from([b"e", b"+", b"1", b"e+", b"+e", b"x"]), max_size=400).map(b"".join)
)
def test_e_plus_found_from_the_plus_signs_as_by_a_search(data):
    """has_e_plus finds `e+` from the (rare) '+' signs, and searches the rest at once past
    PLUS_LOOKS of them: the answer is always that of `b"e+" in data` (the generated texts hold
    up to 400 pieces, many '+', so both ways are taken)."""
    assert jsonfmt.has_e_plus(data) == (b"e+" in data)
    assert jsonfmt.has_e_plus(b"+" * 100 + data) == (b"e+" in data)


def test_e_plus_right_at_the_end_of_the_one_by_one_looks():
    """An `e+` whose '+' is the first, the PLUS_LOOKS-th or the next '+' of the text."""
    for count in range(2 * jsonfmt.PLUS_LOOKS + 2):
        assert jsonfmt.has_e_plus(b"x" + b"+" * count + b"e+")
        assert jsonfmt.has_e_plus(b"+" * count + b"e+1")
        assert not jsonfmt.has_e_plus(b"+" * count + b"x+" + b"+" * count)
        assert not jsonfmt.has_e_plus(b"e" * count + b"x+e")


#: Metrics fields of a page: names (some compilation_metrics models, left out of the table)
#: with values where the cache's keys could mix up rows (True == 1 == 1.0, 0.0 == -0.0).
METRICS_NAMES = st.sampled_from(["a", "b", "<b>", "co_name", "guard_count", "x" * 3])
METRICS_VALUES = (
    st.sampled_from([True, 1, 1.0, False, 0, 0.0, -0.0, None, "1", "true", "x" * 250])
    | SCALARS
    | VALUES
)


@settings(deadline=None)  # a loaded machine must not fail a correct example
@given(st.lists(st.dictionaries(METRICS_NAMES, METRICS_VALUES), min_size=1, max_size=6))
def test_other_metrics_rows_reused_as_made(metrics_module, pages):
    """The Other Metrics rows of successive pages, reused from earlier pages of the render
    (OtherMetrics), are the rows other_metrics_html makes for that page alone: generated
    pages repeat names with values equal in Python but spelled apart (True and 1, 0.0 and
    -0.0). With no room kept (BUDGET 0) nothing is reused, and the rows are the same."""
    reused = metrics_module.OtherMetrics()
    unkept = metrics_module.OtherMetrics()
    unkept.BUDGET = 0
    for logged in pages + pages:
        expected = metrics_module.other_metrics_html(
            metrics_module.other_metrics("compilation_metrics", logged)
        )
        assert reused.html("compilation_metrics", logged) == expected
        assert unkept.html("compilation_metrics", logged) == expected
