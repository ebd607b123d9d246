"""The envelope_kinds section lists the unrecognised kinds from its one scan of the envelopes
(kinds.sql) rather than through the unrecognised_kinds view: the list must be the view's."""

from __future__ import annotations

import importlib
import sqlite3

from tldb.loader import build_database
from tldb.registry import ModuleRegistry

KINDS_SQL_COLUMNS = ("kind", "envelopes", "first_line", "with_payload", "a_compile_id")


def test_unrecognised_kinds_are_the_views(tmp_path, log_writer):
    """Kinds with equal counts (ordered by name, where byte and code point order could part:
    capitals, accents, an emoji), with and without payloads and compile ids, among
    recognised ones."""
    meta = {"frame_id": 0, "frame_compile_id": 0}
    log_writer.add({"dynamo_start": {"stack": []}, **meta})
    counts = {"zeta": 2, "Alpha": 2, "éclair": 2, "e_kind": 2, "🙂": 2, "b": 1, "solo": 3}
    for kind, count in counts.items():
        for n in range(count):
            with_id = meta if n % 2 else {}
            log_writer.add({kind: {"n": n}, **with_id}, payload="p" if n == 0 else None)
    log_writer.add({"dynamo_start": {"stack": []}, "frame_id": 1, "frame_compile_id": 0})
    path = tmp_path / "trace.db"
    build_database([log_writer.write(tmp_path / "kinds.log")], path)
    ModuleRegistry.discover()
    module = importlib.import_module("tldb_modules.envelope_kinds.module")
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    kinds_sql = (module.MODULE.folder / "kinds.sql").read_text(encoding="utf-8")
    kinds = [dict(row) for row in conn.execute(kinds_sql, {"log_id": 1})]
    view = conn.execute(
        f"SELECT {', '.join(KINDS_SQL_COLUMNS)} FROM unrecognised_kinds WHERE log_id = 1 "
        "ORDER BY envelopes DESC, kind"
    ).fetchall()
    conn.close()
    listed = [tuple(k[c] for c in KINDS_SQL_COLUMNS) for k in module.unrecognised_kinds(kinds)]
    assert listed == [tuple(row) for row in view]
    assert [row[0] for row in listed[:1]] == ["solo"] and len(listed) == len(counts)
