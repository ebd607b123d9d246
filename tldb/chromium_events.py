"""The log's chromium trace events, parsed once per render for the modules that read them.

chromium_trace writes every accepted event to chromium_events.json and triage pairs the
begin/end ones; each parsed the same payloads (~1 KB of JSON an event), and the second parse
was about a tenth of a rank's render. A render now parses them once, into the values tlparse
would hold (jsonfmt.loads_like_serde), and shares the list through ModuleContext.shared.
A log whose events hold more than BUDGET bytes of JSON is streamed by each module instead, as
before: the big benchmark log's list would hold gigabytes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Any

from tldb import jsonfmt
from tldb.module_api import ModuleContext

#: Bytes of event JSON a render parses into memory to share (Python holds ~3x as much): a
#: 2.5 MB rank log has ~700 events in 1.2 MB, the 406 MB benchmark log 66,600 in 200 MB.
BUDGET = 8 << 20

#: (status is 'ok', payload) of every chromium_event envelope that parsed as JSON, in log
#: order. chromium_events.json takes the accepted ones; the triage page all (other ranks' too).
_EVENTS = """
SELECT e.status = 'ok', CAST(p.text AS BLOB) -- bytes: orjson reads them without a decode
FROM envelopes e JOIN payloads p ON p.id = e.payload_id
WHERE e.log_id = :log_id AND e.kind = 'chromium_event' AND e.status <> 'bad_json'
ORDER BY e.id
"""
_ANY_ACCEPTED = """
SELECT 1 FROM envelopes
WHERE log_id = :log_id AND kind = 'chromium_event' AND status = 'ok' AND payload_id IS NOT NULL
LIMIT 1
"""
_KEY = "tldb.chromium_events"


def has_accepted(ctx: ModuleContext) -> bool:
    """Whether the log has an accepted event with a payload (chromium_events.json has content
    and the index links it), without reading any payload."""
    return ctx.db.conn.execute(_ANY_ACCEPTED, {"log_id": ctx.log_id}).fetchone() is not None


def accepted(ctx: ModuleContext) -> Iterable[Any]:
    """The accepted events (status ok), as serde would hold them: chromium_events.json's."""
    shared = _shared(ctx)
    if shared is None:
        return _parsed(ctx, jsonfmt.loads_like_serde, accepted_only=True)
    return (event for ok, event in shared if ok)


def every(
    ctx: ModuleContext,
    parse: Callable[[bytes], Any],
    needles: Collection[bytes] | None = None,
) -> Iterable[Any]:
    """Every event that parses, other ranks' too. Shared, they are serde's values; streamed
    (a log past BUDGET), they are `parse`'s: a caller that reads only a few fields passes a
    plain parser (orjson.loads), and a float past 16 digits may then differ in its last bit.

    `needles` (JSON text, such as the quoted compile ids a caller wants) lets a streamed read
    skip, unparsed, an event whose payload holds none of them: the caller must need only
    events whose JSON spells one of them. Parsing is most of a streamed read (66,600 events
    on the benchmark log, of which the triage page wants a few compile ids' worth). A payload
    with a backslash is always parsed, since an escape (\\u002f for `/`) can spell a needle
    otherwise. Shared events are all returned: they are parsed already."""
    shared = _shared(ctx)
    if shared is None:
        return _parsed(ctx, parse, accepted_only=False, needles=needles)
    return (event for _, event in shared)


def _shared(ctx: ModuleContext) -> list[tuple[bool, Any]] | None:
    """The render's shared list of (accepted, event), or None to stream (no memo, or too many)."""
    if ctx.memo is None:
        return None
    return ctx.shared(_KEY, lambda: _small_list(ctx))


def _small_list(ctx: ModuleContext) -> list[tuple[bool, Any]] | None:
    """Fetch the payloads, giving up (None) past BUDGET bytes, then parse them: one query
    where a separate total of the sizes first cost a third of the fetch again."""
    fetched = []
    size = 0
    for ok, payload in ctx.db.conn.execute(_EVENTS, {"log_id": ctx.log_id}):
        size += len(payload)  # payloads.size: its UTF-8 bytes, as CAST(text AS BLOB) gives
        if size > BUDGET:
            return None
        fetched.append((ok, payload))
    events = []
    for ok, payload in fetched:
        try:
            events.append((bool(ok), jsonfmt.loads_like_serde(payload)))
        except ValueError:
            continue  # a cut payload: tlparse skips it too (its md5 failure is counted)
    return events


def _parsed(
    ctx: ModuleContext,
    parse: Callable[[bytes], Any],
    accepted_only: bool,
    needles: Collection[bytes] | None = None,
) -> Iterator[Any]:
    for ok, payload in ctx.db.conn.execute(_EVENTS, {"log_id": ctx.log_id}):
        if accepted_only and not ok:
            continue
        if needles is not None and not _may_hold(payload, needles):
            continue
        try:
            yield parse(payload)
        except ValueError:
            continue


def _may_hold(payload: bytes, needles: Collection[bytes]) -> bool:
    """Whether the JSON text `payload` may spell one of `needles` (see `every`). A loop of
    `in` tests: faster here than any() over a generator or one regular expression."""
    if b"\\" in payload:
        return True
    for needle in needles:  # noqa: SIM110 (a loop: 1.5x faster than any() here)
        if needle in payload:
            return True
    return False
