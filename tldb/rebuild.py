"""Write a loaded log back, byte for byte, from the database (the proof that it is lossless)."""

from __future__ import annotations

import heapq
from collections.abc import Iterator

import sqlite_utils


def log_bytes(db: sqlite_utils.Database, log_id: int) -> Iterator[bytes]:
    """The original file's bytes, in chunks, rebuilt from envelopes, payloads and lines."""
    conn = db.conn
    eol_text, final_newline, total = conn.execute(
        "SELECT eol, final_newline, lines FROM logs WHERE id = ?", [log_id]
    ).fetchone()
    eol = eol_text.encode()
    special: dict[int, dict[str, tuple]] = {}
    for line, kind, text, data in conn.execute(
        "SELECT line, kind, text, data FROM lines WHERE log_id = ?", [log_id]
    ):
        special.setdefault(line, {})[kind] = (text, data)

    def physical() -> Iterator[tuple[int, bytes | None]]:
        """(line number, body) for envelope and payload lines; None marks a line to look up."""
        rows = conn.execute(
            "SELECT e.line, e.header, e.metadata, e.payload_lines, p.text "
            "FROM envelopes e LEFT JOIN payloads p ON p.id = e.payload_id "
            "WHERE e.log_id = ? ORDER BY e.line",
            [log_id],
        )
        for line, header, metadata, payload_lines, payload in rows:
            yield line, (header + metadata).encode()
            if payload_lines:
                raw = special.get(line, {}).get("payload_bytes")
                data = raw[1] if raw else payload.encode()
                parts = data.split(b"\n")
                number = line
                for part in parts:
                    number += 1
                    while "blank" in special.get(number, {}):
                        number += 1
                    yield number, b"\t" + part

    def others() -> Iterator[tuple[int, bytes | None]]:
        for line in sorted(special):
            kinds = special[line]
            if "blank" in kinds:
                yield line, b""
            elif "fail_glog" in kinds:
                yield line, kinds["fail_glog"][0].encode()

    for line, body in heapq.merge(physical(), others(), key=lambda item: item[0]):
        kinds = special.get(line, {})
        if "bytes" in kinds:
            body = kinds["bytes"][1]
        if "eol" in kinds:
            eol = kinds["eol"][0].encode()
        ending = eol
        if line == total and not final_newline:
            ending = b""
        yield body + ending
