"""Triage: the page to read first. What went wrong or slow in this run, deduplicated and explained.

triage.html gathers, from the typed views of sql/kinds.sql: distinct graph breaks (with counts,
the reason and the user frame), recompiles per frame with their reasons, failed compiles, the
slowest compiles with where their time went (chromium begin/end spans and the time fields of
compilation_metrics), and the outcome of every cache lookup. The index gets a short summary
that links to it. A log without any compile (no metrics, breaks or cache lookups) gets neither.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from tldb import chromium_events
from tldb.module_api import DEFAULT_MODE, IndexContribution, Module, ModuleContext, ModuleOutput

PAGE = "triage.html"
SLOWEST = 10
PHASES_SHOWN = 12
#: compilation_metrics time fields shown in the phase breakdown, with a label (µs fields).
TIME_FIELDS_US = (
    ("dynamo_cumulative_compile_time_us", "Dynamo (whole frame)"),
    ("aot_autograd_cumulative_compile_time_us", "AOTAutograd"),
    ("inductor_cumulative_compile_time_us", "Inductor"),
    ("inductor_code_gen_cumulative_compile_time_us", "Inductor code generation"),
    ("backward_cumulative_compile_time_us", "backward compile"),
    ("triton_compile_time_us", "Triton kernels"),
    ("pre_grad_pass_time_us", "pre-grad passes"),
    ("joint_graph_pass_time_us", "joint-graph passes"),
    ("post_grad_pass_time_us", "post-grad passes"),
    ("compile_time_autotune_time_us", "autotuning"),
    ("gc_time_us", "garbage collection"),
    ("structured_logging_overhead_us", "trace logging"),
)
TIME_FIELDS_S = (
    ("entire_frame_compile_time_s", "whole frame"),
    ("backend_compile_time_s", "backend"),
    ("inductor_compile_time_s", "Inductor"),
    ("code_gen_time_s", "code generation"),
    ("dynamo_time_before_restart_s", "lost to restarts"),
)
#: The metrics fields this page reads; the rest (configs run to kilobytes a record) is dropped
#: as rows are read, so memory does not grow with the number of compiles times their configs.
USED_FIELDS = frozenset(
    {
        "duration_us",
        "entire_frame_compile_time_s",
        "elapsed_time",
        "recompile_reason",
        "restart_reasons",
        "fail_type",
        "fail_reason",
        "fail_user_frame_filename",
        "fail_user_frame_lineno",
        "co_name",
    }
    | {name for name, _ in TIME_FIELDS_US}
    | {name for name, _ in TIME_FIELDS_S}
)
_LOCATION = re.compile(r"^Graph break in user code at (.*)$")
_FILE_LINE = re.compile(r'^\s*File "([^"]+)", line (\d+), in (.*)$')


@dataclass
class GraphBreak:
    """One distinct graph break: same reason at the same user location."""

    location: str
    reason: str
    summary: str
    hint: str
    user_frame: str
    compile_ids: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.lines)


def parse_graph_break(payload: str) -> tuple[str, str, str, str, str]:
    """(location, reason, one-line summary, hint, innermost user frame) of a break report."""
    text = payload or ""
    first, _, rest = text.partition("\n")
    found = _LOCATION.match(first)
    location = found.group(1).strip() if found else ""
    body = rest if found else text
    marker = "Graph Break Reason:"
    if marker in body:
        body = body.split(marker, 1)[1]
    reason, _, traceback = body.partition("User code traceback:")
    reason = reason.strip()
    lines = [ln.strip() for ln in reason.splitlines() if ln.strip()]
    summary = next((ln for ln in lines[1:] if not ln.endswith(":")), lines[0] if lines else "")
    if lines and not lines[0].startswith("Encountered graph break"):
        summary = lines[0]
    hint = next((ln[len("Hint:") :].strip() for ln in lines if ln.startswith("Hint:")), "")
    user_frame = ""
    tb_lines = traceback.split("\n\n", 1)[0].splitlines() if traceback else []
    for i, ln in enumerate(tb_lines):
        frame = _FILE_LINE.match(ln)
        if frame:
            code = tb_lines[i + 1].strip() if i + 1 < len(tb_lines) else ""
            user_frame = f"{frame.group(1)}:{frame.group(2)} in {frame.group(3)}"
            user_frame += f"\n    {code}" if code and not _FILE_LINE.match(tb_lines[i + 1]) else ""
    return location, reason, summary, hint, user_frame


def recompile_reasons(payload: str | None) -> list[str]:
    """The reasons of a recompile_reasons artifact: a JSON list, or one bare string."""
    if not payload:
        return []
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return [payload.strip()]
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def frame_key(compile_id: str | None) -> str:
    """`[0/1_2]` -> `0/1`: the compile id chromium events carry (no attempt, no brackets)."""
    key = (compile_id or "").strip("[]")
    return key.split("_", 1)[0]


def begin_end_events(events) -> Iterator[tuple[dict[str, Any], Any]]:
    """The B and E events among parsed chromium events, each with its compile id (the
    events are shared with other modules: read, never changed)."""
    for event in events:
        if isinstance(event, dict) and event.get("ph") in ("B", "E"):
            args = event.get("args")
            yield event, args.get("compile_id") if isinstance(args, dict) else None


def pair_spans(events, wanted: Collection[str] | None = None) -> dict[str, dict[str, list[float]]]:
    """Durations (µs) of begin/end pairs (from begin_end_events), per event compile id and
    phase name; with `wanted`, only for those compile ids (pairs never cross compile ids)."""
    open_spans: dict[tuple, list[float]] = defaultdict(list)
    spans: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for event, cid in events:
        if wanted is not None and str(cid or "") not in wanted:
            continue
        try:
            ts = float(event.get("ts"))
        except (TypeError, ValueError):
            continue
        key = (cid, event.get("name"), event.get("tid"), event.get("pid"))
        if event["ph"] == "B":
            open_spans[key].append(ts)
        elif open_spans[key]:
            start = open_spans[key].pop()
            spans[str(cid or "")][str(event.get("name"))].append(ts - start)
    return spans


def compile_id_needles(wanted: Collection[str]) -> list[bytes] | None:
    """What the JSON of an event of one of the `wanted` compile ids holds (the id as a JSON
    string; see chromium_events.every), or None when an empty id is wanted: events without a
    compile id (or with a falsy one) count under it, and their text need not spell it."""
    if "" in wanted:
        return None
    return [orjson.dumps(key) for key in wanted]


def metrics_rows(rows) -> Iterator[dict[str, Any]]:
    """Metrics rows with their fields as keys (the fields a record lacks are None)."""
    for row in rows:
        try:
            fields = orjson.loads(row.pop("fields") or "{}")
        except orjson.JSONDecodeError:
            fields = {}
        if not isinstance(fields, dict):
            fields = {}
        merged = defaultdict(lambda: None, {k: v for k, v in fields.items() if k in USED_FIELDS})
        merged.update(row)
        duration = merged["duration_us"]
        if duration is None and merged["entire_frame_compile_time_s"] is not None:
            duration = float(merged["entire_frame_compile_time_s"]) * 1e6
        if duration is None and merged["elapsed_time"] is not None:
            duration = float(merged["elapsed_time"]) * 1e6
        merged["duration_us"] = duration
        yield merged


class Triage(Module):
    id = "triage"
    name = "Triage"
    subscriptions = (
        "artifact_envelopes",
        "compilation_metrics",
        "trace_events",
        "shape_env_events",
        "envelopes",
    )
    modes = frozenset({DEFAULT_MODE})
    cost = 3

    def render(self, ctx: ModuleContext) -> ModuleOutput:
        data = self.build(ctx)
        if not (
            data["compiles"] or data["graph_breaks"] or data["slowest"] or data["cache"]["lookups"]
        ):
            return ModuleOutput()  # nothing was compiled: no page, nothing on the index
        page = ctx.render("triage.html", **data)
        section = ctx.render("section.html", page=PAGE, **data)
        return ModuleOutput(files=[(PAGE, page)], index_html=[IndexContribution("triage", section)])

    def build(self, ctx: ModuleContext) -> dict[str, Any]:
        metrics = list(metrics_rows(ctx.query("metrics")))
        forward = [m for m in metrics if m["kind"] == "compilation_metrics"]
        return {
            "compiles": len({m["compile_id"] for m in forward}),
            "graph_breaks": self._graph_breaks(ctx, forward),
            "recompiles": self._recompiles(ctx, forward),
            "failures": [m for m in metrics if m["fail_type"]],
            "slowest": self._slowest(ctx, metrics),
            "cache": self._cache(ctx),
        }

    def _graph_breaks(self, ctx: ModuleContext, forward) -> list[GraphBreak]:
        groups: dict[tuple[str, str], GraphBreak] = {}
        for row in ctx.query("graph_breaks"):
            location, reason, summary, hint, user_frame = parse_graph_break(row["payload"])
            key = (location, reason)
            if key not in groups:
                groups[key] = GraphBreak(location, reason, summary, hint, user_frame)
            groups[key].compile_ids.append(row["compile_id"])
            groups[key].lines.append(row["line"])
        if not groups:  # older logs: restarts recorded in compilation_metrics only
            for m in forward:
                reasons = m["restart_reasons"] or []
                for reason in reasons if isinstance(reasons, list) else [reasons]:
                    text = str(reason)
                    key = ("", text)
                    if key not in groups:
                        first = text.strip().splitlines()[0] if text.strip() else text
                        groups[key] = GraphBreak("", text, first, "", "")
                    groups[key].compile_ids.append(m["compile_id"])
                    groups[key].lines.append(m["line"])
        return sorted(groups.values(), key=lambda g: (-g.count, g.lines[0]))

    def _recompiles(self, ctx: ModuleContext, forward) -> list[dict[str, Any]]:
        reasons: dict[str, list[str]] = defaultdict(list)
        for row in ctx.query("recompile_reasons"):
            reasons[row["compile_id"]].extend(recompile_reasons(row["payload"]))
        symbols: dict[str, dict[str, str]] = defaultdict(dict)
        for row in ctx.query("symbols"):
            symbols[row["compile_id"]][row["kind"]] = row["symbols"]
        frames: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
        for m in forward:
            if m["frame_id"] is None:
                continue
            frames[(m["compiled_autograd_id"], m["frame_id"])].append(m)
        result = []
        for rows in frames.values():
            compiles = {}
            for m in rows:
                compiles.setdefault(
                    frame_key(m["compile_id"]),
                    {
                        "compile_id": m["compile_id"],
                        "reasons": reasons.get(m["compile_id"])
                        or ([m["recompile_reason"]] if m["recompile_reason"] else []),
                        "dynamic": symbols.get(m["compile_id"], {}).get("create_symbol"),
                    },
                )
            if len(compiles) < 2:
                continue
            first = rows[0]
            ordered = list(compiles.values())
            result.append(
                {
                    "co_name": first["co_name"],
                    "where": f"{first['co_filename']}:{first['co_firstlineno']}",
                    "count": len(ordered),
                    "compiles": ordered,
                    "pair": (
                        frame_key(ordered[0]["compile_id"]),
                        frame_key(ordered[1]["compile_id"]),
                    ),
                }
            )
        return sorted(result, key=lambda r: -r["count"])

    def _slowest(self, ctx: ModuleContext, metrics) -> list[dict[str, Any]]:
        timed = [m for m in metrics if m["duration_us"] is not None]
        timed.sort(key=lambda m: -float(m["duration_us"]))
        # Phases are shown for the slowest forward compiles only: only their events are
        # paired, and a streamed read (a big log) parses little else.
        wanted = {
            frame_key(m["compile_id"])
            for m in timed[:SLOWEST]
            if m["kind"] == "compilation_metrics"
        }
        spans: dict[str, dict[str, list[float]]] = {}
        if wanted:
            events = chromium_events.every(ctx, orjson.loads, compile_id_needles(wanted))
            spans = pair_spans(begin_end_events(events), wanted)
        result = []
        shown_keys: set[str] = set()
        for m in timed[:SLOWEST]:
            total = float(m["duration_us"])
            key = frame_key(m["compile_id"])
            phases = []
            if m["kind"] == "compilation_metrics" and key not in shown_keys:
                shown_keys.add(key)
                by_name = spans.get(key, {})
                phases = sorted(
                    ((name, sum(d), len(d)) for name, d in by_name.items()),
                    key=lambda p: -p[1],
                )[:PHASES_SHOWN]
            fields = [(label, m[name]) for name, label in TIME_FIELDS_US if m[name] is not None]
            fields += [
                (label, float(m[name]) * 1e6)
                for name, label in TIME_FIELDS_S
                if m[name] is not None
            ]
            result.append(
                {
                    "compile_id": m["compile_id"],
                    "kind": m["kind"],
                    "co_name": m["co_name"],
                    "duration_ms": total / 1e3,
                    "phases": [
                        {
                            "name": n,
                            "ms": d / 1e3,
                            "count": c,
                            "percent": 100 * d / total if total else 0,
                        }
                        for n, d, c in phases
                    ],
                    "fields": [
                        {
                            "label": label,
                            "ms": float(v) / 1e3,
                            "percent": 100 * float(v) / total if total else 0,
                        }
                        for label, v in fields
                    ],
                }
            )
        return result

    def _cache(self, ctx: ModuleContext) -> dict[str, Any]:
        lookups = list(ctx.query("cache"))
        totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for row in lookups:
            totals[row["cache"]][row["outcome"]] += 1
        return {
            "lookups": lookups,
            "totals": {cache: dict(outcomes) for cache, outcomes in totals.items()},
        }


MODULE = Triage()
