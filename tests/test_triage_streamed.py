"""The triage page's streamed read of the chromium events, checked against the shared read.

A streamed read of the chromium events (a log past chromium_events.BUDGET, or a render
without a memo) skips, unparsed, the payloads that cannot belong to a compile id the triage
page shows phases for: the page must be the one the shared read (every event parsed) makes,
and an event whose compile id is spelled with a JSON escape must still count.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from conftest import data_path

from tldb import chromium_events
from tldb import db as dbmod
from tldb.loader import build_database
from tldb.module_api import Manifest, ModuleContext, ReportConfig
from tldb.registry import ModuleRegistry

META = {"frame_id": 0, "frame_compile_id": 0, "attempt": 0}


def triage_pages(log: Path, tmp_path: Path, monkeypatch, slowest: int) -> tuple[str, str]:
    """The triage page of `log` rendered with the shared events (memo) and streamed (none),
    showing phases for the `slowest` slowest compiles."""
    build_database([log], tmp_path / "trace.db", pipelined=False)
    module = ModuleRegistry.discover().modules["triage"]
    monkeypatch.setattr(sys.modules[type(module).__module__], "SLOWEST", slowest)
    db = dbmod.open_readonly(tmp_path / "trace.db")
    pages = []
    try:
        for memo in ({}, None):
            ctx = ModuleContext(
                db=db,
                out_dir=tmp_path,
                config=ReportConfig(),
                manifest=Manifest(()),
                log_id=1,
                module_dir=module.folder,
                memo=memo,
            )
            pages.append(dict(module.render(ctx).files)["triage.html"])
    finally:
        db.conn.close()
    return pages[0], pages[1]


def counting_filter(monkeypatch) -> dict[str, int]:
    """Count the payloads the streamed read parses and skips."""
    seen = {"parsed": 0, "skipped": 0}
    real = chromium_events._may_hold

    def spy(payload: bytes, needles) -> bool:
        kept = real(payload, needles)
        seen["parsed" if kept else "skipped"] += 1
        return kept

    monkeypatch.setattr(chromium_events, "_may_hold", spy)
    return seen


def test_streamed_triage_equals_shared_on_a_real_log(tmp_path, monkeypatch):
    """One compile id shown: the streamed read skips the other ids' events and still makes
    the shared read's page, phases included."""
    seen = counting_filter(monkeypatch)
    shared, streamed = triage_pages(data_path("torch213/dynamo.log"), tmp_path, monkeypatch, 1)
    assert seen["skipped"] > 0 and seen["parsed"] > 0
    assert "entire_frame_compile" in streamed  # a phase of the slowest compile
    assert streamed == shared


def event(name: str, ph: str, ts: float, compile_id: str) -> str:
    fields = {"name": name, "ts": ts, "args": {"compile_id": compile_id}, "ph": ph}
    return json.dumps({**fields, "cat": "dynamo_timed", "tid": 0, "pid": 0}, indent=1)


def test_escaped_compile_id_still_counts(tmp_path, monkeypatch, log_writer):
    """`0\\u002f0` is the JSON of the compile id 0/0 without its text: the payload's backslash
    makes the streamed read parse it, and its phase is shown as when every event is parsed."""
    metrics = {"co_name": "f", "entire_frame_compile_time_s": 2.0, "restart_reasons": []}
    begin = event("escaped_phase", "B", 1000.0, "0/0").replace('"0/0"', '"0\\u002f0"')
    other = event("other_phase", "B", 1000.0, "1/0")
    log_writer.add({"dynamo_start": {"stack": []}, **META})
    for payload in (
        begin,
        event("escaped_phase", "E", 1500.0, "0/0"),
        other,
        other.replace('"B"', '"E"'),
    ):
        log_writer.add({"chromium_event": {}, **META}, payload=payload)
    log_writer.add({"compilation_metrics": metrics, **META})
    seen = counting_filter(monkeypatch)
    shared, streamed = triage_pages(log_writer.write(tmp_path / "e.log"), tmp_path, monkeypatch, 10)
    assert "escaped_phase" in streamed
    assert "other_phase" not in shared  # not a compile id with metrics: never shown
    # The begin (a backslash) and the end (0/0) are parsed, the other id's two skipped.
    assert seen == {"parsed": 2, "skipped": 2}
    assert streamed == shared
