"""The records that carry stacks, shape facts or metrics, read in one pass per render.

The stack tries (dynamo_start stacks, top-level stacks, the metrics that colour a compile id)
and the compilation metrics pages (dynamo_start stacks, specializations, fast guards, created
and unbacked symbols) each scanned every record's metadata for their keys, and that scan is
most of either query. A render now makes one pass for both (ModuleContext.shared); each module
reads its columns and skips rows where they are all NULL. Without a memo (`tldb serve`), each
caller gets its own pass, streamed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from tldb.module_api import ModuleContext

_KEY = "tldb.stack_records"

#: The JSON parts the modules read (column, path, JSON type): NULL when absent or not that type.
_PARTS = (
    ("start_stack", "$.dynamo_start.stack", "array"),
    ("top_stack", "$.stack", "array"),
    ("specialization", "$.symbolic_shape_specialization", "object"),
    ("guard", "$.guard_added_fast", "object"),
    ("created_symbol", "$.create_symbol", "object"),
    ("unbacked_symbol", "$.create_unbacked_symbol", "object"),
)

#: In log order. `raw_key`: the compile id as logged ('unknown' for unreadable ids), how
#: tlparse files stacks, specializations and guards. `symbol_key`: how its later versions file
#: symbols (a missing attempt read as 0 when a frame_compile_id is present). `metrics_key`: how
#: it files metrics (the attempt set to 0 whenever a frame_compile_id is present, so a restart
#: [0/0_1] colours [0/0]). `failed`, `empty`, `restarted`: a compilation_metrics record's
#: colour; a missing restart list counts as a restart.
_SQL = """
SELECT id, label, raw_key,
       CASE WHEN frame IS NULL THEN raw_key ELSE frame || ifnull(attempt, 0) END AS symbol_key,
       CASE WHEN frame IS NULL THEN raw_key ELSE frame || '0' END AS metrics_key,
       start_stack, top_stack, specialization, guard, created_symbol, unbacked_symbol,
       has_metrics, failed, empty, restarted
FROM (
SELECT id, attempt,
       compile_id AS label,
       CASE WHEN compile_id = 'unknown' THEN 'unknown' ELSE compile_dir END AS raw_key,
       CASE WHEN compile_id IS NOT 'unknown' AND frame_compile_id IS NOT NULL
            THEN printf('%s_%s_%s_', ifnull(compiled_autograd_id, '-'), ifnull(frame_id, '-'),
                        frame_compile_id)
       END AS frame,
       {parts},
       json_type(metadata, '$.compilation_metrics') = 'object' AS has_metrics,
       metadata ->> '$.compilation_metrics.fail_type' IS NOT NULL AS failed,
       ifnull(metadata ->> '$.compilation_metrics.graph_op_count', 0) = 0 AS empty,
       CASE json_type(metadata, '$.compilation_metrics.restart_reasons')
         WHEN 'array' THEN json_array_length(metadata, '$.compilation_metrics.restart_reasons') > 0
         ELSE 1
       END AS restarted
FROM records
WHERE log_id = :log_id
  AND ({found} OR json_type(metadata, '$.compilation_metrics') = 'object')
)
ORDER BY id
""".format(
    parts=",\n       ".join(
        f"CASE WHEN json_type(metadata, '{path}') = '{kind}' THEN metadata -> '{path}' END AS {name}"
        for name, path, kind in _PARTS
    ),
    found=" OR ".join(f"json_type(metadata, '{path}') = '{kind}'" for _, path, kind in _PARTS),
)


def stack_records(ctx: ModuleContext) -> Iterable[dict[str, Any]]:
    """Every record with a stack (dynamo_start's or top-level), a specialization, a fast
    guard, a created or unbacked symbol, or compilation metrics, in log order. Shared within a
    render: read the rows, never change them."""
    if ctx.memo is None:
        return _rows(ctx)
    return ctx.shared(_KEY, lambda: list(_rows(ctx)))


def _rows(ctx: ModuleContext) -> Iterator[dict[str, Any]]:
    cursor = ctx.db.conn.execute(_SQL, {"log_id": ctx.log_id})
    columns = [c[0] for c in cursor.description]
    for row in cursor:
        yield dict(zip(columns, row, strict=True))
