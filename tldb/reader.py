"""Stream a TORCH_TRACE log into records, line by line, counting what tlparse counts.

A log is glog-prefixed JSON envelopes, each optionally followed by TAB-indented payload lines
(only when the envelope declares `has_payload`). The reader reproduces tlparse 0.4.3's rules
(blank lines dropped everywhere, unanchored prefix match, md5 check, first-seen rank filter,
`str` interning) and, unlike tlparse, keeps every byte: lines it rejects, blank lines,
unusual line endings and undecodable bytes come out as `RawLine` records, so the database can
give back the original file.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from tldb import jsonfmt
from tldb.envelope import CompileId, kind_of, tlparse_accepts, unknown_keys
from tldb.stats import Stats

GLOG = re.compile(
    r"(?P<level>[VIWEC])(?P<month>\d{2})(?P<day>\d{2}) (?P<hour>\d{2}):(?P<minute>\d{2}):"
    r"(?P<second>\d{2}).(?P<micro>\d{6}) (?P<thread>\d+)(?P<pathname>[^:]+):(?P<lineno>\d+)\] "
    r"(?P<payload>.)"
)

# Envelope statuses: what tlparse did with the line.
OK = "ok"  # accepted and processed
OTHER_RANK = "other_rank"  # rejected by the rank filter
INTERN = "intern"  # a `str` entry of the filename table
BAD_TYPE = "bad_type"  # JSON object, but a known field has the wrong type (fail_json +1)
BAD_JSON = "bad_json"  # not JSON, or not an object (fail_json +2)


@dataclass(slots=True)
class Envelope:
    """One glog-prefixed line and its payload."""

    line: int
    header: str
    level: str
    timestamp: str
    thread: int | str
    pathname: str
    lineno: int | str
    metadata: str
    meta: dict[str, Any] | None
    status: str
    kind: str | None
    compile_id: CompileId | None
    rank: int | None
    has_payload: str | None = None
    payload: str | None = None
    payload_lines: int = 0
    payload_md5: str | None = None
    payload_bytes: bytes | None = None  # exact payload bytes, kept only when not valid UTF-8
    unknown: list[str] = field(default_factory=list)


@dataclass(slots=True)
class RawLine:
    """A physical line that is not an envelope, or whose bytes need keeping as they were.

    kind: `fail_glog` (no glog prefix, kept as text), `blank` (empty line), `bytes` (the
    exact bytes of a line that is not valid UTF-8), `eol` (a line ending other than the
    log's usual one; text holds the ending).
    """

    line: int
    kind: str
    text: str | None = None
    data: bytes | None = None


@dataclass
class LogShape:
    """Facts about the file needed to rebuild it byte for byte."""

    eol: str = "\n"
    final_newline: bool = True
    lines: int = 0
    size: int = 0


Record = Envelope | RawLine


def _int_or_text(digits: str) -> int | str:
    value = int(digits)
    return value if value < 2**63 else digits


def _parse_envelope(line: int, text: str, match: re.Match[str]) -> Envelope:
    start = match.start("payload")
    metadata = text[start:]
    g = match.group
    header = text[:start]
    meta: Any
    try:
        meta = orjson.loads(metadata)
        strict_ok = True
    except orjson.JSONDecodeError:
        strict_ok = False
        try:
            meta = jsonfmt.loads_lenient(metadata)
        except ValueError:
            meta = None
    if not isinstance(meta, dict):
        meta_dict = None
        status = BAD_JSON
    else:
        meta_dict = meta
        status = OK if strict_ok and tlparse_accepts(meta) else BAD_TYPE
        if not strict_ok:
            status = BAD_JSON
    rank = meta_dict.get("rank") if meta_dict else None
    return Envelope(
        line=line,
        header=header,
        level=g("level"),
        timestamp=f"{g('month')}-{g('day')}T{g('hour')}:{g('minute')}:{g('second')}.{g('micro')}",
        thread=_int_or_text(g("thread")),
        pathname=g("pathname").lstrip(),
        lineno=_int_or_text(g("lineno")),
        metadata=metadata,
        meta=meta_dict,
        status=status,
        kind=kind_of(meta_dict) if meta_dict else None,
        compile_id=CompileId.from_meta(meta_dict) if meta_dict else None,
        rank=rank if isinstance(rank, int) and not isinstance(rank, bool) else None,
    )


class Reader:
    """Iterate records of one log; `stats`, `shape` and `strings` are complete at the end."""

    def __init__(self, stream: BinaryIO, progress: Callable[[int], None] | None = None):
        self._stream = stream
        self._progress = progress
        self.stats = Stats()
        self.shape = LogShape()
        self.expected_rank: int | None = None
        #: The `str` interning table: index -> filename (later entries overwrite).
        self.strings: dict[int, str] = {}

    def __iter__(self) -> Iterator[Record]:
        stats = self.stats
        pending: Envelope | None = None  # envelope whose payload lines are being collected
        chunks: list[bytes] = []
        eol: bytes | None = None
        lineno = 0
        consumed = 0
        progress = self._progress
        for raw in self._stream:
            lineno += 1
            consumed += len(raw)
            if progress is not None and lineno & 0x3FFF == 0:
                progress(consumed)
            if raw.endswith(b"\n"):
                if raw.endswith(b"\r\n"):
                    body, this_eol = raw[:-2], b"\r\n"
                else:
                    body, this_eol = raw[:-1], b"\n"
                if eol is None:
                    eol = this_eol
                elif this_eol != eol:
                    yield RawLine(lineno, "eol", this_eol.decode())
            else:
                body = raw
                self.shape.final_newline = False
            if not body:
                stats.blank_lines += 1
                yield RawLine(lineno, "blank")
                continue
            if pending is not None:
                if body[0] == 9:  # TAB: one more payload line
                    chunks.append(body)
                    continue
                yield self._finish(pending, chunks)
                pending = None
            try:
                text = body.decode()
            except UnicodeDecodeError:
                stats.invalid_utf8 += 1
                yield RawLine(lineno, "bytes", data=body)
                text = body.decode(errors="replace")
            match = GLOG.search(text)
            if match is None:
                stats.fail_glog += 1
                yield RawLine(lineno, "fail_glog", text)
                continue
            envelope = _parse_envelope(lineno, text, match)
            if envelope.status == BAD_JSON:
                stats.fail_json += 2
                yield envelope
                continue
            meta = envelope.meta
            assert meta is not None
            unknown = unknown_keys(meta)
            if envelope.status == BAD_TYPE:
                stats.fail_json += 1
                yield envelope
                continue
            envelope.unknown = unknown
            stats.unknown += len(unknown)
            entry = meta.get("str")
            if entry is not None:
                self.strings[entry[1]] = entry[0]
                envelope.status = INTERN
                yield envelope
                continue
            has_payload = meta.get("has_payload")
            if has_payload is not None:
                envelope.has_payload = has_payload
                pending = envelope
                chunks = []
                continue
            self._admit(envelope)
            yield envelope
        if pending is not None:
            yield self._finish(pending, chunks)
        self.shape.eol = (eol or b"\n").decode()
        self.shape.lines = lineno
        self.shape.size = consumed
        if progress is not None:
            progress(consumed)

    def _finish(self, envelope: Envelope, chunks: list[bytes]) -> Envelope:
        """Attach the collected payload, check its md5, then apply the rank filter."""
        data = b"\n".join([c[1:] for c in chunks])
        digest = hashlib.md5(data, usedforsecurity=False).hexdigest()
        try:
            envelope.payload = data.decode()
        except UnicodeDecodeError:
            self.stats.invalid_utf8 += 1
            envelope.payload = data.decode(errors="replace")
            envelope.payload_bytes = data
        envelope.payload_lines = len(chunks)
        envelope.payload_md5 = digest
        if digest != envelope.has_payload:
            self.stats.fail_payload_md5 += 1
        self._admit(envelope)
        return envelope

    def _admit(self, envelope: Envelope) -> None:
        """tlparse's rank filter: the first ranked line fixes the rank; others are rejected."""
        rank = envelope.rank
        if self.expected_rank is None:
            if rank is not None:
                self.expected_rank = rank
        elif rank != self.expected_rank:
            envelope.status = OTHER_RANK
            self.stats.other_rank += 1
            return
        self.stats.ok += 1


def open_log(path: Path) -> BinaryIO:
    """Open a log for streaming (large buffer: the reader is line-bound)."""
    return path.open("rb", buffering=1 << 20)
