"""Render fast paths (issues 14 and 17) give what the general code they skip would give.

Each test compares a shortcut with the slower function it stands in for, on generated values
that include the edges where the two could part (64-bit bounds, booleans, nested values).
"""

from __future__ import annotations

import functools
import importlib

from hypothesis import given
from hypothesis import strategies as st

from tldb import jsonfmt
from tldb.registry import ModuleRegistry


@functools.cache
def _module(name: str):
    ModuleRegistry.discover()
    return importlib.import_module(f"tldb_modules.{name}.module")


EDGES = st.sampled_from([0, -1, 2**63 - 1, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64, 10**30])
SCALARS = st.none() | st.booleans() | st.integers() | EDGES | st.floats() | st.text(max_size=8)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)


@given(VALUES)
def test_other_metrics_value_text_is_compact_json(value):
    """An Other Metrics cell: null, booleans and integers are spelled without the encoder,
    exactly as dumps_compact (serde's spelling) writes them; strings stay as they are."""
    value_text = _module("compilation_metrics").value_text
    expected = value if isinstance(value, str) else jsonfmt.dumps_compact(value)
    assert value_text(value) == expected
