"""manifest.json: a machine-readable summary of the report (compile ids and their status,
stack trie, failures, cache outcomes, row counts), for scripts and dashboards.

tlparse has no such file; it is written in default mode beside its outputs.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from tldb import __version__, jsonfmt
from tldb.envelope import CompileId
from tldb.module_api import DEFAULT_MODE, Module, ModuleContext, ModuleOutput
from tldb.stacks import StackTrie, frames_of, load_strings, strip_convert_frame

VERSION = "2.1"
_CACHE_KIND = re.compile(r"_cache_(hit|miss|bypass)$")
TABLES = ("envelopes", "payloads", "lines", "strings", "outputs")


class Manifest(Module):
    id = "manifest"
    name = "Manifest"
    subscriptions = ("envelopes", "outputs", "strings", "logs", "payloads", "lines")
    modes = frozenset({DEFAULT_MODE})
    late = True  # sees the merged compile directory

    def render(self, ctx: ModuleContext) -> ModuleOutput:
        return ModuleOutput(files=[("manifest.json", jsonfmt.dumps_pretty(self.build(ctx)))])

    def build(self, ctx: ModuleContext) -> dict[str, Any]:
        conn = ctx.db.conn
        name, size, lines, stats = conn.execute(
            "SELECT name, size, lines, stats FROM logs WHERE id = ?", [ctx.log_id]
        ).fetchone()
        directory = ctx.directory
        compiles = [
            {
                "id": info.key,
                "display_name": info.label,
                "status": info.status,
                "cache_status": info.cache_status or None,
                "has_metrics": info.has_metrics,
                "has_graphs": info.has_graphs,
                "has_guards": info.has_guards,
                "files": len(directory.get(info.key, [])),
            }
            for info in ctx.manifest.compiles
        ]
        return {
            "version": VERSION,
            "generator": f"tldb {__version__}",
            "log": {"name": name, "size": size, "lines": lines},
            "stats": orjson.loads(stats),
            "compile_ids": compiles,
            "stack_trie": self._stack_trie(ctx),
            "failures": self._failures(ctx),
            "cache": self._cache(ctx),
            "tables": {
                table: conn.execute(
                    f"SELECT count(*) FROM {table} WHERE log_id = ?",
                    [ctx.log_id],
                ).fetchone()[0]
                for table in TABLES
                if table != "payloads"
            },
        }

    def _stack_trie(self, ctx: ModuleContext) -> list[dict[str, Any]]:
        strings = load_strings(ctx.db, ctx.log_id)
        trie = StackTrie()
        for row in ctx.query("starts"):
            cid = CompileId(
                row["compiled_autograd_id"],
                row["frame_id"],
                row["frame_compile_id"],
                row["attempt"],
            )
            frames = strip_convert_frame(frames_of(orjson.loads(row["stack"])), strings)
            trie.insert(frames, cid.display())
        return trie.to_json(strings)

    def _failures(self, ctx: ModuleContext) -> dict[str, Any]:
        rows = []
        restarts = 0
        for row in ctx.query("failures"):
            reasons = orjson.loads(row["restart_reasons"] or "null") or []
            restarts += len(reasons)
            for reason in reasons:
                rows.append({"compile_id": row["compile_id"], "type": "restart", "reason": reason})
            if row["fail_type"] is not None:
                rows.append(
                    {
                        "compile_id": row["compile_id"],
                        "type": row["fail_type"],
                        "reason": row["fail_reason"],
                    }
                )
        return {"failures": len(rows) - restarts, "restarts": restarts, "rows": rows}

    def _cache(self, ctx: ModuleContext) -> dict[str, Any]:
        totals = {"hit": 0, "miss": 0, "bypass": 0}
        by_kind: dict[str, dict[str, int]] = {}
        for row in ctx.query("cache"):
            kind = _CACHE_KIND.sub("", row["artifact"])
            by_kind.setdefault(kind, {"hit": 0, "miss": 0, "bypass": 0})[row["outcome"]] += row["n"]
            totals[row["outcome"]] += row["n"]
        return {
            "hits": totals["hit"],
            "misses": totals["miss"],
            "bypasses": totals["bypass"],
            "by_kind": by_kind,
        }


MODULE = Manifest()
