"""The compile directory and manifest, read from the central output plan."""

from __future__ import annotations

import sqlite_utils

from tldb.module_api import CompileInfo, DirectoryEntry, Manifest


def compile_keys(db: sqlite_utils.Database, log_id: int) -> list[str]:
    """Compile ids of accepted envelopes, in order of first appearance (tlparse's index order)."""
    rows = db.conn.execute(
        "SELECT compile_id FROM envelopes WHERE log_id = ? AND status = 'ok' "
        "GROUP BY compile_id ORDER BY min(id)",
        [log_id],
    )
    return [r[0] for r in rows]


def plan_directory(
    db: sqlite_utils.Database,
    log_id: int,
    mode: str,
    plain_text: bool,
    keys: list[str] | None = None,
) -> dict[str, list[DirectoryEntry]]:
    """Every compile id (even those with no files) with its numbered entries. `keys`:
    compile_keys' list when the caller has it (a scan of every envelope, which a render makes
    once for this and the manifest)."""
    keys = compile_keys(db, log_id) if keys is None else keys
    directory: dict[str, list[DirectoryEntry]] = {key: [] for key in keys}
    rows = db.conn.execute(
        "SELECT compile_id, name, url, suffix, number, readable_path, path_plain FROM outputs "
        "WHERE log_id = ? AND mode = ? ORDER BY number",
        [log_id, mode],
    )
    for key, name, url, suffix, number, readable, path_plain in rows:
        if plain_text and path_plain:
            name = url = path_plain
        directory.setdefault(key, []).append(DirectoryEntry(name, url, suffix, number, readable))
    return directory


def _status(metrics: list[tuple]) -> str:
    """tlparse's stack-trie colour for a compile id, from its compilation_metrics rows."""
    if not metrics:
        return "missing"
    if any(fail_type is not None for fail_type, _, _ in metrics):
        return "error"
    if any(not op_count for _, op_count, _ in metrics):
        return "empty"
    if any(restarts is None or restarts != "[]" for _, _, restarts in metrics):
        return "break"
    return "ok"


def build_manifest(
    db: sqlite_utils.Database, log_id: int, keys: list[str] | None = None
) -> Manifest:
    """The manifest of the log's compile ids (`keys`: as for plan_directory)."""
    keys = compile_keys(db, log_id) if keys is None else keys
    metrics: dict[str, list[tuple]] = {}
    for key, fail_type, op_count, restarts in db.conn.execute(
        "SELECT compile_id, metadata ->> '$.compilation_metrics.fail_type', "
        "metadata ->> '$.compilation_metrics.graph_op_count', "
        "json(metadata -> '$.compilation_metrics.restart_reasons') "
        "FROM envelopes WHERE log_id = ? AND status = 'ok' AND kind = 'compilation_metrics'",
        [log_id],
    ):
        metrics.setdefault(key, []).append((fail_type, op_count, restarts))
    kinds: dict[str, set[str]] = {}
    for key, parser, suffix in db.conn.execute(
        "SELECT compile_id, parser, suffix FROM outputs WHERE log_id = ? AND mode = 'default'",
        [log_id],
    ):
        kinds.setdefault(key, set()).add(parser + suffix)
    compiles = []
    for key in keys:
        parsers = kinds.get(key, set())
        cache = (
            "miss"
            if any("❌" in p for p in parsers)
            else (
                "hit"
                if any("✅" in p for p in parsers)
                else ("bypass" if any("❓" in p for p in parsers) else "")
            )
        )
        compiles.append(
            CompileInfo(
                key=key,
                label=key if key != "unknown" else "(unknown)",
                status=_status(metrics.get(key, [])),
                cache_status=cache,
                has_metrics=key in metrics,
                has_graphs=any(p.endswith("graph") or p == "graph_dump" for p in parsers),
                has_guards=any(p.startswith("dynamo_guards") for p in parsers),
            )
        )
    return Manifest(tuple(compiles))
