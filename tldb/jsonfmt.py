"""JSON reading and writing that matches tlparse's serde_json output byte for byte.

orjson formats floats with the same shortest-round-trip algorithm (ryu) as serde_json, sorts
keys bytewise and escapes the same characters, so it is both the fast path and the compatible
one. The stdlib is the fallback for what orjson refuses (NaN, integers beyond 64 bits).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

_SORTED = orjson.OPT_SORT_KEYS
_PRETTY = orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2


def loads(text: str | bytes) -> Any:
    """Parse JSON strictly like serde_json would (no NaN, no Infinity). Raises ValueError."""
    return orjson.loads(text)


U64_MAX = 2**64 - 1
_POW10 = [float(f"1e{i}") for i in range(309)]
_NUMBER = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?")


def _serde_f64(negative: bool, significand: int, exponent: int) -> float:
    """serde_json's f64_from_parts: the significand as f64, then one scaling by a power of 10."""
    value = float(significand)
    while True:
        if abs(exponent) < len(_POW10):
            if exponent >= 0:
                value *= _POW10[exponent]
                if math.isinf(value):
                    raise ValueError("number out of range")
            else:
                value /= _POW10[-exponent]
            break
        if value == 0.0:
            break
        if exponent >= 0:
            raise ValueError("number out of range")
        value /= 1e308
        exponent += 308
    return -value if negative else value


def _serde_digits(negative: bool, int_digits: str, frac_digits: str, exponent: int) -> float:
    """serde_json's significand/exponent accumulation, for numbers of 20 digits or more."""
    limit, last = divmod(U64_MAX, 10)
    significand = 0
    overflowed = False
    for ch in int_digits:
        digit = ord(ch) - 48
        if overflowed or (significand >= limit and (significand > limit or digit > last)):
            overflowed = True
            exponent += 1
        else:
            significand = significand * 10 + digit
    for ch in frac_digits:
        digit = ord(ch) - 48
        if significand >= limit and (significand > limit or digit > last):
            break  # serde ignores the remaining fraction digits
        significand = significand * 10 + digit
        exponent -= 1
    return _serde_f64(negative, significand, exponent)


def serde_number(text: str) -> int | float:
    """Parse one JSON number exactly as serde_json does without `float_roundtrip`."""
    found = _NUMBER.fullmatch(text)
    if found is None:
        raise ValueError(f"invalid number {text!r}")
    negative = found.group(1) == "-"
    int_digits, frac_digits, exp_text = found.group(2), found.group(3) or "", found.group(4)
    if not frac_digits and exp_text is None:
        value = int(int_digits)
        if value <= U64_MAX:
            if not negative:
                return value
            return -value if value <= 2**63 else -float(value)
    explicit = 0
    if exp_text is not None:
        explicit = int(exp_text)
        if abs(explicit) > 2**31 - 1:
            if int(int_digits + frac_digits) != 0 and explicit > 0:
                raise ValueError("number out of range")
            return -0.0 if negative else 0.0
    if len(int_digits) + len(frac_digits) <= 19:  # fits in u64: no digit is dropped
        exponent = max(-(2**31), min(2**31 - 1, explicit - len(frac_digits)))
        return _serde_f64(negative, int(int_digits + frac_digits), exponent)
    return _serde_digits(negative, int_digits, frac_digits, explicit)


def _serde_float_hook(text: str) -> float:
    return float(serde_number(text))


def _serde_float(x: float) -> float:
    """The value serde_json holds for a float written as Python writes it (its repr).

    Only floats with 16+ significant digits or an exponent can differ from orjson's correctly
    rounded value; the others come back unchanged without any work.
    """
    text = repr(x)
    if len(text) < 17 and "e" not in text:
        return x
    return float(serde_number(text))


def _serde_repr(text: str) -> float:
    """serde's value of a float spelled as its repr `text`. Without an exponent and with at
    most 19 digits (every chromium event's `ts`, like 1752877801875006.0) that is the digits
    as one integer, made a float, divided once by a power of ten, as _serde_f64 does: done
    here without serde_number's regular expression."""
    negative = text[0] == "-"
    body = text[1:] if negative else text
    if len(body) <= 20 and "e" not in body and "n" not in body:  # not inf/nan either
        whole, _, fraction = body.partition(".")
        value = float(int(whole + fraction))
        if fraction:
            value /= _POW10[len(fraction)]
        return -value if negative else value
    return float(serde_number(text))


#: Types a parsed JSON value has that serde holds as orjson does (see _serde_values).
_EXACT_TYPES = frozenset({str, int, bool, type(None)})


def _serde_values(value: Any) -> Any:
    """Replace, in place, each float by serde's value (see _serde_float, inlined: this walks
    every value of every chromium event and raw.jsonl line). A list of strings and numbers
    only (a cache event's `components`, hundreds of lines) is passed over in one C-level
    look at its element types rather than element by element."""
    kind = type(value)
    if kind is dict:
        items: Any = value.items()
    elif kind is list:
        if _EXACT_TYPES.issuperset(map(type, value)):
            return value
        items = enumerate(value)
    elif kind is float:
        if not -_MAX_INTEGER < value < _MAX_INTEGER:
            raise _MaybeBigInteger
        return _serde_float(value)
    else:
        return value
    for key, item in items:
        kind = type(item)
        if kind is float:
            if -_EXACT_WHOLE < item < _EXACT_WHOLE and item.is_integer():
                continue  # serde's value is the float itself (see _EXACT_WHOLE)
            if not -_MAX_INTEGER < item < _MAX_INTEGER:
                raise _MaybeBigInteger
            text = repr(item)
            if len(text) >= 17 or "e" in text:
                value[key] = _serde_repr(text)
        elif kind is dict or kind is list:
            _serde_values(item)
    return value


def loads_like_serde(text: str | bytes) -> Any:
    """Parse JSON to the values tlparse (serde_json, default features) would hold.

    orjson rounds decimal numbers correctly; serde_json's default parser can be one unit in the
    last place off for numbers with 16+ significant digits or an exponent, and tlparse writes
    what it parsed. TORCH_TRACE JSON is written by Python's json module, which spells every
    float as its shortest repr, so serde's value is recomputed from repr(x) for just those
    floats. (For JSON that spells a float otherwise, `loads_exactly_like_serde` reads the text
    itself, at a higher cost.) Integers past 64 bits are another number serde reads with that
    parser, from their digits, which orjson's float no longer has: text holding a float of
    2**64 or more takes the exact path. Raises ValueError on text serde_json rejects.
    """
    try:
        return _serde_values(orjson.loads(text))
    except _MaybeBigInteger:
        return loads_exactly_like_serde(text)


class _MaybeBigInteger(Exception):
    """A float of 2**64 or more: it may have been an integer past 64 bits in the text, which
    serde reads from its digits (see loads_like_serde). Rare, so the walk just starts over."""


#: Integers serde holds exactly (up to u64); a number at or past this may have been one.
_MAX_INTEGER = float(2**64)

#: Below this, a whole float (every chromium event's `ts`, like 1752877801875006.0) is read
#: by serde as itself: its repr `N.0` is read as the integer N0 (10x: even, and exact below
#: 2**54) divided by ten, an exact quotient. _serde_values skips such floats without a repr.
_EXACT_WHOLE = float(2**54 // 10)


def loads_exactly_like_serde(text: str | bytes) -> Any:
    """Like loads_like_serde, from each number's own text (slow: every number in Python)."""
    orjson.loads(text)  # reject what serde_json rejects (NaN, ...) with the same errors
    raw = text.decode() if isinstance(text, bytes) else text
    return json.loads(raw, parse_float=_serde_float_hook, parse_int=serde_number)


def loads_lenient(text: str | bytes) -> Any:
    """Parse JSON, also accepting what Python's json writes (NaN, Infinity, huge integers)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _serde_safe(value: Any) -> Any:
    """Map values orjson writes differently from serde_json to what serde_json writes.

    Integers beyond 64 bits become floats (serde_json parsed them as f64), and floats of 1e16
    and up are written in serde's exponent form (`1e16`; orjson writes `1e+16`).
    """
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else _serde_safe(float(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return orjson.Fragment(format_float(value)) if abs(value) >= 1e16 else value
    if isinstance(value, dict):
        return {str(k): _serde_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_serde_safe(v) for v in value]
    return value


def _dumps_bytes(value: Any, option: int) -> bytes:
    try:
        out = orjson.dumps(value, option=option)
    except TypeError:
        return orjson.dumps(_serde_safe(value), option=option)
    if has_e_plus(out):
        out = orjson.dumps(_serde_safe(value), option=option)
    return out


#: '+' signs has_e_plus looks at one by one before it searches the rest for `e+` at once.
PLUS_LOOKS = 64


def has_e_plus(out: bytes) -> bool:
    """Whether `out` holds `e+` (orjson's spelling of a float of 1e16 or more), i.e.
    `b"e+" in out`, found from the '+' signs instead: a search for `e+` stops at every 'e',
    about one byte in ten of JSON text, and took longer than orjson took to write it, while
    '+' is rare and found with memchr. Past PLUS_LOOKS '+' signs (text full of them), the
    rest is searched for `e+` directly: every '+' before that one was not after an 'e'."""
    at = out.find(b"+", 1)  # a '+' at 0 has no 'e' before it
    for _ in range(PLUS_LOOKS):
        if at == -1:
            return False
        if out[at - 1] == 0x65:  # 'e'
            return True
        at = out.find(b"+", at + 1)
    return at != -1 and out.find(b"e+", at - 1) != -1


def dumps_compact(value: Any) -> str:
    """Compact JSON with sorted keys, as serde_json::to_string on an unordered map."""
    return _dumps_bytes(value, _SORTED).decode()


def dumps_compact_bytes(value: Any) -> bytes:
    """dumps_compact, as UTF-8 bytes (for files written as they are)."""
    return _dumps_bytes(value, _SORTED)


def dumps_pretty(value: Any) -> str:
    """Two-space indented JSON with sorted keys, as serde_json::to_string_pretty."""
    return _dumps_bytes(value, _PRETTY).decode()


def dumps_pretty_bytes(value: Any) -> bytes:
    """dumps_pretty, as UTF-8 bytes (for files written as they are)."""
    return _dumps_bytes(value, _PRETTY)


#: Elements formatted per orjson call in pretty_array: few calls, small batches in memory.
ARRAY_BATCH = 512


def pretty_array(items: Iterable[Any], sort_keys: bool = True) -> Iterator[bytes]:
    """A pretty JSON array (serde_json's layout), written a batch of elements at a time.

    orjson indents a list's elements exactly as they sit in the whole array, so each batch is
    dumped as a list and its brackets are cut; the whole list is never in memory. Keys are
    sorted as dumps_pretty sorts them, or with sort_keys=False kept in the order written
    (tlparse's struct field order).
    """

    def dump(batch: list[Any]) -> bytes:
        if sort_keys:
            return _dumps_bytes(batch, _PRETTY)
        return orjson.dumps(batch, option=orjson.OPT_INDENT_2)

    batch: list[Any] = []
    started = False
    for item in items:
        batch.append(item)
        if len(batch) >= ARRAY_BATCH:
            yield (b",\n" if started else b"[\n") + dump(batch)[2:-2]
            started, batch = True, []
    if batch:
        yield (b",\n" if started else b"[\n") + dump(batch)[2:-2]
        started = True
    yield b"\n]" if started else b"[]"


def format_float(x: float) -> str:
    """Format a float the way serde_json/ryu does: `2.0`, `0.00001`, `1e-6`, `1e16`.

    Positional between 1e-5 and 1e16 (with `.0` when integral), exponent form otherwise,
    never a `+` in the exponent. Python's repr differs (`1e-06`, `1e+16`), hence this.
    """
    if not math.isfinite(x):
        return "null"
    if x == 0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    text = repr(x)
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    mantissa, _, exp_text = text.partition("e")
    exponent = int(exp_text) if exp_text else 0
    int_part, _, frac_part = mantissa.partition(".")
    all_digits = int_part + frac_part
    stripped = all_digits.lstrip("0")
    point = len(int_part) + exponent - (len(all_digits) - len(stripped))
    digits = stripped.rstrip("0") or "0"
    scientific = point - 1
    if -5 <= scientific < 16:
        if point <= 0:
            return f"{sign}0.{'0' * -point}{digits}"
        if point >= len(digits):
            return f"{sign}{digits}{'0' * (point - len(digits))}.0"
        return f"{sign}{digits[:point]}.{digits[point:]}"
    rest = f".{digits[1:]}" if len(digits) > 1 else ""
    return f"{sign}{digits[0]}{rest}e{scientific}"


def format_number(value: Any) -> str:
    """Render a JSON scalar as tlparse's templates do (floats via ryu, None as empty)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_float(value)
    return str(value)
