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

from tldb import jsonfmt, logfile
from tldb.envelope import CompileId, kind_of, tlparse_accepts, unknown_keys
from tldb.stats import Stats

GLOG = re.compile(
    r"(?P<level>[VIWEC])(?P<month>\d{2})(?P<day>\d{2}) (?P<hour>\d{2}):(?P<minute>\d{2}):"
    r"(?P<second>\d{2}).(?P<micro>\d{6}) (?P<thread>\d+)(?P<pathname>[^:]+):(?P<lineno>\d+)\] "
    r"(?P<payload>.)"
)
_PAYLOAD_GROUP = GLOG.groupindex["payload"]

CHUNK = 2 << 20  # bytes read at a time (more when a line or payload is longer than that)
#: A line ending after which the next line is neither a TAB (payload) line nor a blank line:
#: where a payload block ends (tlparse skips blank lines even inside payloads).
_BLOCK_END = re.compile(rb"\n(?![\t\n]|\r\n)")
#: A line ending not followed by a TAB line: where a run of TAB lines ends.
_TAB_RUN_END = re.compile(rb"\n(?!\t)")

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
    #: A plain payload block not read yet (deferred reading): file offset, length, CRLF endings.
    payload_span: tuple[int, int, bool] | None = None


@dataclass(slots=True)
class RawLine:
    """A physical line that is not an envelope, or whose bytes need keeping as they were.

    kind: `fail_glog` (no glog prefix, kept as text), `blank` (empty line), `bytes` (the
    exact bytes of a line that is not valid UTF-8), `eol` (from this line on, lines end with
    `text` until the next `eol` row; before the first one they end with the log's `eol`).
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
    """The glog thread or line number; as text when it does not fit SQLite's 64-bit integer."""
    if len(digits) < 19:
        return int(digits)
    value = int(digits)
    return value if value < 2**63 else digits


def parse_metadata(metadata: str) -> tuple[dict[str, Any] | None, bool]:
    """The envelope's JSON object (None if it is not one) and whether it is strict JSON.

    Python's json also writes NaN, Infinity and huge integers; such lines are still read (to
    keep their fields in the database) but tlparse rejects them.
    """
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
    return (meta if isinstance(meta, dict) else None), strict_ok


def _parse_envelope(line: int, text: str, match: re.Match[str]) -> Envelope:
    start = match.start(_PAYLOAD_GROUP)
    metadata = text[start:]
    level, month, day, hour, minute, second, micro, thread, pathname, lineno, _ = match.groups()
    header = text[:start]
    meta_dict, strict_ok = parse_metadata(metadata)
    if meta_dict is None or not strict_ok:
        status = BAD_JSON
    else:
        status = OK if tlparse_accepts(meta_dict) else BAD_TYPE
    rank = meta_dict.get("rank") if meta_dict else None
    # Positional, in field order (keywords cost more, once per envelope); kind, compile id
    # and unknown keys are left to the Completion.
    return Envelope(
        line,
        header,
        level,
        f"{month}-{day}T{hour}:{minute}:{second}.{micro}",
        int(thread) if len(thread) < 19 else _int_or_text(thread),
        pathname.lstrip(),
        int(lineno) if len(lineno) < 19 else _int_or_text(lineno),
        metadata,
        meta_dict,
        status,
        None,
        None,
        rank if isinstance(rank, int) and not isinstance(rank, bool) else None,
    )


def strip_payload(block: bytes, crlf: bool, start: int = 0, end: int | None = None) -> bytes:
    """The payload of a plain block (TAB lines, one kind of line ending): TABs and ends cut.
    The block is block[start:end], so that a reader's buffer is not copied out first."""
    if end is None:
        end = len(block)
    if crlf:
        return block[start + 1 : end - 2].replace(b"\r\n\t", b"\n")
    return block[start + 1 : end - 1].replace(b"\n\t", b"\n")


def finish_payload(envelope: Envelope, data: bytes, lines: int, stats: Stats) -> None:
    """Attach the payload text and check its md5 (counting mismatches and bad UTF-8)."""
    digest = hashlib.md5(data, usedforsecurity=False).hexdigest()
    try:
        envelope.payload = data.decode()
    except UnicodeDecodeError:
        stats.invalid_utf8 += 1
        envelope.payload = data.decode(errors="replace")
        envelope.payload_bytes = data
    envelope.payload_lines = lines
    envelope.payload_md5 = digest
    if digest != envelope.has_payload:
        stats.fail_payload_md5 += 1


class Completion:
    """The work on an envelope that needs no reader state: kind, compile id, unknown keys, and
    reading, un-indenting and checking a deferred payload.

    The Reader does it itself unless told to defer it; then it can run in another process
    than the reader (see tldb/pipeline.py), reading deferred payloads from the file with
    `read_span(offset, length)`. Its counters go to its own `stats`, to be added to the
    reader's.
    """

    def __init__(self, stats: Stats, read_span: Callable[[int, int], bytes] | None = None):
        self.stats = stats
        self._read_span = read_span

    def __call__(self, envelope: Envelope) -> Envelope:
        meta = envelope.meta
        if meta is not None:
            envelope.kind = kind_of(meta)
            envelope.compile_id = CompileId.from_meta(meta)
            if envelope.status in (OK, INTERN, OTHER_RANK):
                envelope.unknown = unknown_keys(meta)
                self.stats.unknown += len(envelope.unknown)
        span = envelope.payload_span
        if span is not None:
            assert self._read_span is not None, "a deferred payload needs read_span"
            offset, length, crlf = span
            data = strip_payload(self._read_span(offset, length), crlf)
            finish_payload(envelope, data, envelope.payload_lines, self.stats)
            envelope.payload_span = None
        return envelope


class Reader:
    """Iterate records of one log; `stats`, `shape` and `strings` are complete at the end.

    With `defer=True` envelopes come out unfinished: no kind, compile id or unknown keys yet,
    and plain payloads only as `payload_span`; a `Completion` finishes them, and its counters
    (unknown, fail_payload_md5, invalid_utf8 of payloads) are not in this reader's `stats`.
    """

    def __init__(
        self,
        stream: BinaryIO,
        progress: Callable[[int], None] | None = None,
        defer: bool = False,
    ):
        self._stream = stream
        self._progress = progress
        self._defer = defer
        self.stats = Stats()
        self._complete = Completion(self.stats)
        self.shape = LogShape()
        self.expected_rank: int | None = None
        #: The `str` interning table: index -> filename (later entries overwrite).
        self.strings: dict[int, str] = {}

    def __iter__(self) -> Iterator[Record]:
        """Records in log order (blank and line-ending records may precede their envelope)."""
        stats = self.stats
        self._buf = b""
        self._pos = 0
        self._base = 0  # file offset of _buf[0]
        self._eof = False
        self._eol: bytes | None = None  # ending of the latest line
        self._lineno = 0
        first_eol = None
        progress = self._progress
        next_progress = 0
        while True:
            buf = self._buf
            newline = buf.find(b"\n", self._pos)
            if newline < 0:
                if not self._eof:
                    self._read_more()
                    continue
                if self._pos >= len(buf):
                    break
                line = buf[self._pos :]
                self._pos = len(buf)
                ending = b""
                self.shape.final_newline = False
            else:
                line = buf[self._pos : newline]
                self._pos = newline + 1
                ending = b"\n"
            self._lineno += 1
            lineno = self._lineno
            if line.endswith(b"\r") and ending:
                line = line[:-1]
                ending = b"\r\n"
            if ending and ending != self._eol:
                if self._eol is None:
                    first_eol = ending
                else:
                    yield RawLine(lineno, "eol", ending.decode())
                self._eol = ending
            if progress is not None and self._base + self._pos >= next_progress:
                progress(self._base + self._pos)
                next_progress = self._base + self._pos + (4 << 20)
            if not line:
                stats.blank_lines += 1
                yield RawLine(lineno, "blank")
                continue
            try:
                text = line.decode()
            except UnicodeDecodeError:
                stats.invalid_utf8 += 1
                yield RawLine(lineno, "bytes", data=line)
                text = line.decode(errors="replace")
            match = GLOG.search(text)
            if match is None:
                stats.fail_glog += 1
                yield RawLine(lineno, "fail_glog", text)
                continue
            envelope = _parse_envelope(lineno, text, match)
            if envelope.status == BAD_JSON:
                stats.fail_json += 2
                yield self._finished(envelope)
                continue
            meta = envelope.meta
            assert meta is not None
            if envelope.status == BAD_TYPE:
                stats.fail_json += 1
                yield self._finished(envelope)
                continue
            entry = meta.get("str")
            if entry is not None:
                self.strings[entry[1]] = entry[0]
                envelope.status = INTERN
                yield self._finished(envelope)
                continue
            has_payload = meta.get("has_payload")
            if has_payload is not None:
                envelope.has_payload = has_payload
                yield from self._take_payload(envelope)
            self._admit(envelope)
            yield self._finished(envelope)
        self.shape.eol = (first_eol or b"\n").decode()
        self.shape.lines = self._lineno
        self.shape.size = self._base + len(self._buf)
        if progress is not None:
            progress(self.shape.size)

    def _finished(self, envelope: Envelope) -> Envelope:
        return envelope if self._defer else self._complete(envelope)

    def _read_more(self) -> None:
        # Reading as much again as is pending keeps a 100 MB payload linear, not quadratic.
        chunk = self._stream.read(max(CHUNK, len(self._buf) - self._pos))
        if not chunk:
            self._eof = True
            return
        self._base += self._pos
        self._buf = self._buf[self._pos :] + chunk
        self._pos = 0

    def _block_end(self) -> int:
        """Where the run of TAB and blank lines starting at _pos ends in the buffer."""
        buf, pos = self._buf, self._pos
        first = buf[pos : pos + 1]
        if first == b"\t" or first == b"\n" or buf[pos : pos + 2] == b"\r\n":
            match = _BLOCK_END.search(buf, pos)
            return match.end() if match else len(buf)
        return pos

    def _tab_run_end(self) -> int | None:
        """End of the TAB lines starting at _pos when a line that is neither TAB nor blank
        follows them: the usual payload block, found with one regex search (reading more as
        needed). None when the block starts or ends otherwise (the general rules decide)."""
        if self._buf[self._pos : self._pos + 1] != b"\t":
            return None
        resume = self._pos
        while True:
            match = _TAB_RUN_END.search(self._buf, resume)
            if match is not None and match.end() < len(self._buf):
                break
            if self._eof:
                return None
            scanned = len(self._buf) - self._pos
            self._read_more()
            resume = max(self._pos, scanned - 1)  # recheck the last line ending's successor
        end = match.end()
        return None if self._buf[end] in (10, 13) else end

    def _take_payload(self, envelope: Envelope) -> Iterator[RawLine]:
        """Consume the TAB lines (and blank lines) after an envelope as its payload.

        The common block (only TAB lines, one kind of line ending) is found with one regex
        search and checked with a byte search or two; it is un-indented here or, when reading
        is deferred, left to the Completion as a span of the file. Anything unusual goes line
        by line.
        """
        end = self._tab_run_end()
        tab_lines_only = end is not None  # every line ending in the block is followed by a TAB
        if end is None:
            while True:
                end = self._block_end()
                head = self._buf[end : end + 2]
                complete = head[:1] not in (b"\t", b"\r") or (head[:1] == b"\r" and len(head) == 2)
                if self._eof or (head and complete):
                    break
                self._read_more()  # the block may go on past what has been read
        buf = self._buf
        start = self._pos
        if self._eof and buf[end : end + 1] == b"\t" and buf.find(b"\n", end) < 0:
            end = len(buf)  # the file ends inside the payload, without a final newline
        self._pos = end
        if start == end:
            self._finish(envelope, b"", 0)
            return
        plain = (
            buf[start] == 9
            and buf[end - 1] == 10
            and (tab_lines_only or buf.find(b"\n\n", start, end) < 0)
            and self._eol is not None
        )
        crlf = self._eol == b"\r\n"
        if plain and not crlf:
            # A byte search first (memchr): a block without any CR has no CRLF either.
            plain = buf.find(b"\r", start, end) < 0 or buf.find(b"\r\n", start, end) < 0
            if plain and tab_lines_only and not self._defer:
                # Every line ending but the last is followed by a TAB, which un-indenting
                # removes: the lines are counted by the bytes it took away (the count was
                # a byte-by-byte pass over the block, 4% of a rank's load).
                data = strip_payload(buf, crlf, start, end)
                lines = end - start - 1 - len(data)
                self._lineno += lines
                self._finish(envelope, data, lines)
                return
        lines = buf.count(b"\n", start, end)
        if plain and crlf:
            plain = buf.count(b"\r\n", start, end) == lines and buf.find(b"\n\r\n", start, end) < 0
        if plain:
            self._lineno += lines
            if self._defer:
                envelope.payload_span = (self._base + start, end - start, crlf)
                envelope.payload_lines = lines
            else:
                self._finish(envelope, strip_payload(buf, crlf, start, end), lines)
            return
        yield from self._take_lines(envelope, buf[start:end], lines)

    def _take_lines(self, envelope: Envelope, block: bytes, lines: int) -> Iterator[RawLine]:
        """An unusual payload block, line by line: blank lines, changing line endings, no
        final newline."""
        chunks: list[bytes] = []
        parts = block.split(b"\n")
        if block.endswith(b"\n"):
            parts.pop()
        else:
            self.shape.final_newline = False
        for index, line in enumerate(parts):
            self._lineno += 1
            ending = b"\n" if index < lines else b""
            if line.endswith(b"\r") and ending:
                line = line[:-1]
                ending = b"\r\n"
            if ending and ending != self._eol:
                yield RawLine(self._lineno, "eol", ending.decode())
                self._eol = ending
            if line:
                chunks.append(line[1:])
            else:
                self.stats.blank_lines += 1
                yield RawLine(self._lineno, "blank")
        self._finish(envelope, b"\n".join(chunks), len(chunks))

    def _finish(self, envelope: Envelope, data: bytes, lines: int) -> None:
        """Attach a payload read here (the rank filter comes after, in the caller)."""
        finish_payload(envelope, data, lines, self.stats)

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
    """Open a log for streaming (large buffer: the reader is line-bound); a `.gz` log gives
    its decompressed bytes (tldb/logfile.py)."""
    return logfile.open_log(path)
