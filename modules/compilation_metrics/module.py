"""Compilation metrics pages, the failures and restarts table, and its index section.

One page per `compilation_metrics`, `bwd_compilation_metrics` and
`aot_autograd_backward_compilation_metrics` envelope, at the path the central plan numbered.
A compilation metrics page also shows what tlparse had gathered for that compile id when it
reached the metrics line: the files listed so far, the latest `dynamo_start` stack, and the
symbolic shape specializations and fast guards logged since the previous page of that id.
Records are matched on the compile id as logged with the attempt set to 0 (when a
frame_compile_id is present), as tlparse does.

Two additions of tlparse's later versions (0.4.8 and its main line) are shown only where
their input is present, so a log tlparse 0.4.3 reads fully gets 0.4.3's page: the Created
Symbols and Unbacked Symbols tables (when the log has create_symbol or
create_unbacked_symbol envelopes) and the Other Metrics table (metrics fields tlparse does
not model, when there are some).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from markupsafe import Markup

from tldb import jsonfmt
from tldb.module_api import (
    DEFAULT_MODE,
    DirectoryEntry,
    IndexContribution,
    Module,
    ModuleContext,
    ModuleOutput,
    autoescape_text,
)
from tldb.stack_records import stack_records
from tldb.stacks import Frame, frames_of, load_strings, stack_html

#: Shown where tlparse 0.4.3 aborts the whole run (a failure type without a reason).
MISSING_REASON = "(the log gives a failure type but no fail_reason)"

#: Metrics fields per page kind; float fields are shown as floats even when logged as integers.
FLOATS = {
    "start_time",
    "elapsed_time",
    "entire_frame_compile_time_s",
    "backend_compile_time_s",
    "inductor_compile_time_s",
    "code_gen_time_s",
    "dynamo_time_before_restart_s",
}
FIELDS = {
    "compilation_metrics": (
        "co_name co_filename co_firstlineno cache_size accumulated_cache_size guard_count "
        "shape_env_guard_count graph_op_count graph_node_count graph_input_count start_time "
        "entire_frame_compile_time_s backend_compile_time_s inductor_compile_time_s "
        "code_gen_time_s dynamo_time_before_restart_s fail_type fail_reason "
        "fail_user_frame_filename fail_user_frame_lineno non_compliant_ops "
        "compliant_custom_ops restart_reasons"
    ),
    "bwd_compilation_metrics": "inductor_compile_time_s code_gen_time_s fail_type fail_reason",
    "aot_autograd_backward_compilation_metrics": "start_time elapsed_time fail_type fail_reason",
}
TEMPLATES = {
    "compilation_metrics": "compilation_metrics.html",
    "bwd_compilation_metrics": "bwd_compilation_metrics.html",
    "aot_autograd_backward_compilation_metrics": "aot_backward_metrics.html",
}


def _label(compile_id: str) -> str:
    return "(unknown)" if compile_id == "unknown" else compile_id


def metrics_fields(parser: str, logged: dict[str, Any]) -> dict[str, Any]:
    """The page's metrics, every field present (None when absent), from the logged metrics
    object (parsed once per page, as serde parses: see `logged_metrics`)."""
    names = FIELDS[parser].split()
    values = {name: logged.get(name) for name in names}
    for name in FLOATS.intersection(names):
        if isinstance(values[name], int):
            values[name] = float(values[name])
    return values


def logged_metrics(parser: str, metadata: str) -> dict[str, Any]:
    """The metrics object of a metrics envelope, parsed as serde parses."""
    return jsonfmt.loads_like_serde(metadata)[parser]


#: Other Metrics values longer than this are folded into a collapsed block.
LONG_VALUE = 200


#: The fields of each page kind, as sets (other_metrics skips them on every page).
_KNOWN = {parser: frozenset(names.split()) for parser, names in FIELDS.items()}


def value_text(value: Any) -> str:
    """An Other Metrics value as text: strings as they are, anything else as compact JSON.
    A page of the benchmark log has ~80 values, most of them null, integers or booleans:
    those are spelled here as JSON spells them rather than through a JSON encoder."""
    kind = type(value)
    if kind is str:
        return value
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int and -(2**63) <= value < 2**64:  # past 64 bits: serde's float (dumps)
        return str(value)
    return jsonfmt.dumps_compact(value)


def other_metrics(parser: str, logged: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics fields tlparse does not model, sorted by name: each with its value as text
    (strings as they are, null as `null`, anything else as compact JSON) and whether it is
    long enough to be folded."""
    known = _KNOWN[parser]
    rows = []
    for name in sorted(k for k in logged if k not in known):
        text = value_text(logged[name])
        rows.append({"key": name, "value": text, "long": len(text) > LONG_VALUE})
    return rows


def other_metrics_html(rows: list[dict[str, Any]]) -> Markup:
    """The Other Metrics table rows, escaped here rather than in the template: a page of the
    benchmark log has ~80 of them, and the template's loop (attribute look-ups, an escape
    call per cell) was most of a page's rendering time. The text is what the loop wrote."""
    return Markup("".join(_row_html(row["key"], row["value"], row["long"]) for row in rows))


def _row_html(name: str, text: str, long: bool) -> str:
    value = autoescape_text(text)
    if long:
        value = f"<details><summary>(click to expand)</summary><pre>{value}</pre></details>"
    return f"\n<tr>\n<td>{autoescape_text(name)}</td>\n<td>{value}</td>\n</tr>\n"


#: Value types whose Other Metrics row depends only on (name, type, value): the type is part
#: of the key, since True == 1 as dict keys (floats are left out: 0.0 == -0.0).
_REPEATABLE = frozenset({str, int, bool, type(None)})


class OtherMetrics:
    """The Other Metrics rows of the pages of one render, each row made once per (name,
    type, value) and reused: the pages of a log repeat most values (the run's configuration,
    counters that stay 0) page after page, and making the rows was a fifth of a page on the
    benchmark log. The same as other_metrics_html(other_metrics(...)) (a test holds them to
    it); at most BUDGET characters of rows are kept."""

    BUDGET = 8 << 20

    def __init__(self) -> None:
        self._rows: dict[tuple[str, type, Any], str] = {}
        self._kept = 0

    def html(self, parser: str, logged: dict[str, Any]) -> Markup:
        known = _KNOWN[parser]
        rows = self._rows
        parts = []
        for name in sorted(k for k in logged if k not in known):
            value = logged[name]
            kind = type(value)
            key = (name, kind, value) if kind in _REPEATABLE else None
            row = rows.get(key) if key is not None else None
            if row is None:
                text = value_text(value)
                row = _row_html(name, text, len(text) > LONG_VALUE)
                if key is not None and self._kept + len(row) <= self.BUDGET:
                    rows[key] = row
                    self._kept += len(row)
            parts.append(row)
        return Markup("".join(parts))


def listed_file(folder: str, entry: DirectoryEntry) -> dict[str, Any]:
    """An "Output files" line as tlparse writes it: the first path segment of the entry is
    replaced by the metrics page's own folder and the other segments are glued together, so
    nested names, links and dump files come out mangled; kept so the pages match."""
    return {
        "href": f"{folder}/{''.join(entry.url.split('/')[1:])}",
        "text": "".join(entry.name.split("/")[1:]),
        "number": entry.number,
    }


class OutputFiles:
    """The "Output files" list of each metrics page: the files its compile id had before it.

    Pages come in number order, so each (compile id, folder) keeps a cursor into its directory
    entries and the lines rendered so far; a page costs only its new lines plus one join (the
    pages themselves grow with the log, as tlparse's do).
    """

    def __init__(self, directory) -> None:
        self._directory = directory
        self._state: dict[tuple[str, str], tuple[int, list[str]]] = {}

    def html(self, compile_id: str, folder: str, number: int) -> Markup:
        entries = self._directory.get(compile_id, ())
        cursor, lines = self._state.get((compile_id, folder), (0, []))
        while cursor < len(entries) and entries[cursor].number < number:
            f = listed_file(folder, entries[cursor])
            lines.append(
                f'<li><a href="{autoescape_text(f["href"])}">{autoescape_text(f["text"])}</a>'
                f" ({f['number']})</li>\n"
            )
            cursor += 1
        self._state[(compile_id, folder)] = (cursor, lines)
        return Markup("".join(lines))


@dataclass
class Failure:
    path: str
    label: str
    kind: str
    description: str
    source: str | None  # None for restarts


def failure_rows(ctx: ModuleContext) -> list[Failure]:
    rows = []
    for row in ctx.query("failures", mode=ctx.config.mode):
        label = _label(row["compile_id"])
        for reason in orjson.loads(row["restart_reasons"] or "null") or ():
            rows.append(Failure(row["path"], label, "RestartAnalysis", reason, None))
        if row["fail_type"] is not None:
            lineno = row["fail_lineno"] if row["fail_lineno"] is not None else 0
            source = f"{row['fail_filename'] or 'N/A'}:{lineno}"
            reason = row["fail_reason"] if row["fail_reason"] is not None else MISSING_REASON
            rows.append(Failure(row["path"], label, row["fail_type"], reason, source))
    return rows


class PageContext:
    """What tlparse had indexed by compile id when it reached a metrics line, replayed in log
    order from the database: the latest dynamo_start stack per id, and the specializations and
    fast guards not yet shown on a page."""

    def __init__(self, ctx: ModuleContext):
        self.strings = load_strings(ctx.db, ctx.log_id)
        self._rows = iter(stack_records(ctx))  # shared with stack_trie (one pass)
        self._next: dict[str, Any] | None = next(self._rows, None)
        #: The latest dynamo_start stack per compile id: its JSON text and its frames.
        self._stacks: dict[str, tuple[str, list[Frame]]] = {}
        #: Stack HTML by the stack's JSON text: a big log's 1,800 pages show 9 distinct stacks.
        self._stack_html: dict[str, str] = {}
        self._mini_stacks: dict[Frame, str] = {}
        self._specializations: dict[str, list[dict]] = {}
        self._guards: dict[str, list[dict]] = {}
        self._created: dict[str, list[dict]] = {}
        self._unbacked: dict[str, list[dict]] = {}
        self.symbols_shown = bool(next(ctx.query("symbols_present"))["present"])

    def advance(self, envelope_id: int) -> None:
        """Take in every record logged before `envelope_id` (a metrics line sees its own
        envelope's stack and tables only afterwards, as in tlparse)."""
        while self._next is not None and self._next["id"] < envelope_id:
            row, key = self._next, self._next["raw_key"]
            if row["start_stack"] is not None:
                text = row["start_stack"]
                self._stacks[key] = (text, frames_of(orjson.loads(text)))
            if row["specialization"] is not None:
                self._specializations.setdefault(key, []).append(
                    self._with_stacks(orjson.loads(row["specialization"]))
                )
            if row["guard"] is not None:
                self._guards.setdefault(key, []).append(
                    self._with_stacks(orjson.loads(row["guard"]))
                )
            for column, tables in (
                ("created_symbol", self._created),
                ("unbacked_symbol", self._unbacked),
            ):
                if row[column] is not None:
                    tables.setdefault(row["symbol_key"], []).append(
                        self._with_stacks(orjson.loads(row[column]))
                    )
            self._next = next(self._rows, None)

    def _with_stacks(self, record: dict[str, Any]) -> dict[str, Any]:
        """A table row: the logged fields a table shows (None when absent) and both stacks."""
        user, framework = frames_of(record.get("user_stack")), frames_of(record.get("stack"))
        return {
            **{name: record.get(name) for name in ("symbol", "sources", "value", "expr")},
            **{name: _text(record.get(name)) for name in ("val", "vr", "source")},
            "user_stack_html": stack_html(user, self.strings, "User Stack"),
            "stack_html": stack_html(framework, self.strings, "Framework Stack"),
        }

    def stack(self, key: str) -> str:
        found = self._stacks.get(key)
        if found is None:
            return ""
        text, frames = found
        html = self._stack_html.get(text)
        if html is None:
            html = self._stack_html[text] = stack_html(frames, self.strings, "Stack")
        return html

    def mini_stack(self, frame: Frame) -> str:
        """The one-frame stack of a page's code object, made once per code object (the pages
        of a recompiled function share it)."""
        found = self._mini_stacks.get(frame)
        if found is None:
            found = self._mini_stacks[frame] = stack_html([frame], self.strings, "Stack")
        return found

    def take_tables(self, key: str) -> tuple[list[dict], list[dict]]:
        return self._specializations.pop(key, []), self._guards.pop(key, [])

    def take_symbols(self, key: str) -> tuple[list[dict], list[dict]]:
        """Created and unbacked symbols of a compile id logged so far, each shown once."""
        return self._created.pop(key, []), self._unbacked.pop(key, [])


def _text(value: Any) -> str:
    """A symbol table cell: nothing for a missing value, else as an Other Metrics value."""
    return "" if value is None else value_text(value)


class CompilationMetrics(Module):
    id = "compilation_metrics"
    name = "Compilation metrics"
    subscriptions = ("outputs", "envelopes", "records", "strings")
    modes = frozenset({DEFAULT_MODE})
    cost = 4

    def render(self, ctx: ModuleContext) -> ModuleOutput:
        failures = failure_rows(ctx)
        index = []
        if failures:
            section = ctx.render("failures_section.html", count=len(failures))
            index.append(IndexContribution("failures", section))
        return ModuleOutput(files=self._files(ctx, failures), index_html=index)

    def _files(self, ctx: ModuleContext, failures: list[Failure]) -> Iterator[tuple[str, str]]:
        yield from self._pages(ctx)
        yield "failures_and_restarts.html", ctx.render("failures.html", failures=failures)

    def _pages(self, ctx: ModuleContext) -> Iterator[tuple[str, str]]:
        context = PageContext(ctx)
        output_files = OutputFiles(ctx.directory)
        others = OtherMetrics()
        for row in ctx.query("pages", mode=ctx.config.mode):
            parser = row["parser"]
            logged = logged_metrics(parser, row["metadata"])
            values = {
                "label": _label(row["compile_id"]),
                "m": metrics_fields(parser, logged),
                "missing_reason": MISSING_REASON,
            }
            if parser == "compilation_metrics":
                context.advance(row["envelope_id"])
                values.update(
                    self._main_page(context, row, logged, values["m"], output_files, others)
                )
            yield row["path"], ctx.render(TEMPLATES[parser], **values)

    def _main_page(
        self,
        context: PageContext,
        row: dict[str, Any],
        logged: dict[str, Any],
        m: dict[str, Any],
        output_files: OutputFiles,
        others: OtherMetrics,
    ) -> dict[str, Any]:
        mini_stack = ""
        if None not in (m["co_name"], m["co_filename"], m["co_firstlineno"]):
            frame = Frame(0, m["co_firstlineno"], m["co_name"], None, m["co_filename"])
            mini_stack = context.mini_stack(frame)
        key = row["lookup_key"]
        specializations, guards = context.take_tables(key)
        created, unbacked = context.take_symbols(row["symbol_key"])
        return {
            "symbols_shown": context.symbols_shown,
            "created_symbols": created,
            "unbacked_symbols": unbacked,
            "other_metrics_html": others.html("compilation_metrics", logged),
            "mini_stack": mini_stack,
            "outputs_html": output_files.html(row["compile_id"], row["compile_dir"], row["number"]),
            "stack": context.stack(key),
            "specializations": specializations,
            "guards": guards,
        }


MODULE = CompilationMetrics()
