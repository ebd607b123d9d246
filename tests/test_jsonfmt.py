"""Numbers are written as serde_json writes them, and parsed as serde_json parses them."""

from __future__ import annotations

import pytest

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


def test_fast_serde_parse_equals_exact_parse_on_the_corpus(corpus):
    """The orjson-then-patch path gives the same values as a number-by-number serde parse."""

    import orjson

    from tldb.jsonfmt import loads_exactly_like_serde

    checked = 0
    for log in sorted(corpus.rglob("*.log")):
        for line in log.read_text(errors="replace").splitlines():
            text = line[line.find("] ") + 2 :] if "] " in line else line.lstrip("\t")
            try:
                orjson.loads(text)
            except orjson.JSONDecodeError:
                continue
            exact = loads_exactly_like_serde(text)
            assert orjson.dumps(loads_like_serde(text)) == orjson.dumps(exact)
            checked += 1
    assert checked > 1000
