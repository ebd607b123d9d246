"""Numbers are written as serde_json writes them, and parsed as serde_json parses them."""

from __future__ import annotations

import json
import math
import random
import struct

import pytest
from conftest import data_logs, data_path

from tldb import jsonfmt
from tldb.jsonfmt import dumps_compact, format_float, loads_like_serde, serde_number


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (2.0, "2.0"),
        (0.00001, "0.00001"),
        (1e-6, "1e-6"),
        (1e16, "1e16"),
        (1e15, "1000000000000000.0"),
        (1.2345678901234568e17, "1.2345678901234568e17"),
        (-0.5, "-0.5"),
        (0.0, "0.0"),
        (123.456, "123.456"),
    ],
)
def test_format_float_like_ryu(value, text):
    assert format_float(value) == text
    assert dumps_compact(value) == text


def test_serde_default_parser_is_reproduced():
    # A correct parser gives ...9018195; serde_json without float_roundtrip gives ...9018197.
    assert serde_number("1715885247.9018195") == 1715885247.9018197
    assert loads_like_serde('{"t": 1715885247.9018195}')["t"] == 1715885247.9018197
    assert serde_number("99999999999999999999") == 1e20
    assert serde_number("-9223372036854775808") == -9223372036854775808
    assert serde_number("18446744073709551615") == 18446744073709551615
    with pytest.raises(ValueError):
        serde_number("1e400")


def _check_fast_parse(logs) -> int:
    """The orjson-then-patch path gives the same values as a number-by-number serde parse, on
    every envelope and payload line of the logs that is JSON; returns how many were checked."""
    import orjson

    from tldb.jsonfmt import loads_exactly_like_serde

    checked = 0
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            text = line[line.find("] ") + 2 :] if "] " in line else line.lstrip("\t")
            try:
                orjson.loads(text)
            except orjson.JSONDecodeError:
                continue
            exact = loads_exactly_like_serde(text)
            assert orjson.dumps(loads_like_serde(text)) == orjson.dumps(exact)
            checked += 1
    return checked


def test_fast_serde_parse_equals_exact_parse_on_the_data_logs():
    assert _check_fast_parse(data_path(name) for name in data_logs()) > 1000


def _numbers_log(path, lines: list[str]) -> list:
    path.write_text("\n".join(lines) + "\n")
    return [path]


def test_fast_serde_parse_on_numbers_that_round_differently(tmp_path):
    """Numbers as Python's json writes them (TORCH_TRACE's writer) that a correct parser and
    serde's default parser read differently, and numbers at the 64-bit limits."""
    values = [
        {"t": 1715885247.9018195, "n": [-9223372036854775808, 18446744073709551615]},
        {"a": {"b": [0.1, 2.5e-7, 1e16, 1.2345678901234568e20, 1e300, 5e-324]}},
        {"dur": 0.30000000000000004, "ts": 1700000000.000001, "x": -0.0, "y": 2.0**70},
    ]
    lines = [json.dumps(value) for value in values]
    assert _check_fast_parse(_numbers_log(tmp_path / "numbers.log", lines)) == len(lines)


def test_fast_serde_parse_of_an_integer_past_64_bits(tmp_path):
    """Python's json writes big integers as digits; serde reads 123456789012345678901 as
    1.2345678901234567e20 (tlparse writes that into chromium_events.json), where orjson's
    correctly rounded value is 1.2345678901234568e20."""
    lines = ['{"ts": 123456789012345678901}']
    assert _check_fast_parse(_numbers_log(tmp_path / "numbers.log", lines)) == len(lines)


@pytest.mark.extended
def test_fast_serde_parse_equals_exact_parse_on_the_corpus(corpus):
    assert _check_fast_parse(sorted(corpus.rglob("*.log"))) > 1000


def test_serde_value_of_a_repr_without_its_regular_expression():
    # The fast path (jsonfmt._serde_repr) gives serde's value bit for bit, as serde_number
    # does: chromium timestamps, long fractions, both signs, zeros, and repr with exponents.
    rng = random.Random(17)
    values = [1752877801875006.0, -1752877801875006.5, -0.0, 0.0, 1e-7, 1e22, 2.5e-310]
    values += [rng.randint(10**14, 10**18) / 10 ** rng.randint(0, 6) for _ in range(4000)]
    values += [rng.uniform(-1e17, 1e17) for _ in range(4000)]
    values += [rng.random() * 10 ** rng.randint(-8, 20) for _ in range(4000)]
    bits = [struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0] for _ in range(4000)]
    values += [v for v in bits if math.isfinite(v)]
    for value in values:
        text = repr(value)
        fast, slow = jsonfmt._serde_repr(text), float(jsonfmt.serde_number(text))
        assert struct.pack("d", fast) == struct.pack("d", slow), text


def test_whole_floats_skipped_by_the_walk_are_serde_values():
    # _serde_values leaves whole floats below jsonfmt._EXACT_WHOLE as they are, without a
    # repr (chromium timestamps): each must be what serde reads from its repr, bit for bit,
    # up to the bound and on both sides of it.
    rng = random.Random(54)
    bound = int(jsonfmt._EXACT_WHOLE)
    wholes = [rng.randint(-bound, bound) for _ in range(6000)]
    wholes += [bound - i for i in range(200)] + [-bound + i for i in range(200)]
    wholes += [rng.randint(10**15, bound) for _ in range(6000)] + [0, 1, 2**53, 2**53 + 2]
    values = [float(w) for w in wholes] + [-0.0, float(bound + 1), float(bound * 3)]
    walked = jsonfmt._serde_values({"ts": list(values), "one": values[0]})
    for value, got in zip(values, walked["ts"], strict=True):
        slow = float(jsonfmt.serde_number(repr(value)))
        assert struct.pack("d", got) == struct.pack("d", slow), repr(value)
