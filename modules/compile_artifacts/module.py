"""The files taken from payloads: graphs, artifacts, output code, dump files, saved payloads.

Everything here is one row of the central output plan (or one envelope) turned into one file;
the numbered names come from the plan, never from a counter of this module.

Payloads are read as their UTF-8 bytes (CAST AS BLOB): most files are a payload as it is, or
its JSON pretty-printed by orjson (which reads and writes bytes), so a payload is decoded into
a Python string only for the pages made from its text. Read as text, each payload was decoded
and then encoded again to be written: a tenth of this module's CPU on a rank log's
non-ASCII JSON artifacts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import orjson

from tldb import jsonfmt
from tldb.highlight import highlight_page
from tldb.module_api import (
    DEFAULT_MODE,
    EXPORT_MODE,
    Module,
    ModuleContext,
    ModuleOutput,
    encode_text,
    lines_of,
)
from tldb.paths import saved_payload_path


def pretty_json_or_raw(payload: bytes) -> bytes:
    """A JSON artifact pretty-printed with sorted keys, or the raw text if it is not JSON."""
    try:
        return jsonfmt.dumps_pretty_bytes(jsonfmt.loads_like_serde(payload))
    except ValueError:
        return payload


def as_is(payload: bytes) -> bytes:
    """A file that is the payload itself."""
    return payload


def _text(make: Callable[[str], object]) -> Callable[[bytes], object]:
    """`make`, for a page made from the payload's text."""
    return lambda payload: make(payload.decode())


def readable_traces(payload: bytes) -> str:
    """The readable page of inductor_provenance_tracking_kernel_stack_traces: one <pre> a trace."""
    traces = orjson.loads(payload)  # the plan made this page only for {kernel: [str]}
    parts = ["<html><body>\n"]
    for kernel in sorted(traces):
        parts.append(f"<h3>{encode_text(kernel)}</h3>\n")
        for trace in traces[kernel]:
            text = trace.replace("\\n", "\n").rstrip("\n")
            parts.append(f"<pre>{encode_text(text)}</pre>\n")
    parts.append("</body></html>\n")
    return "".join(parts)


def row_outputs(ctx: ModuleContext, row: dict) -> list[tuple[str, Callable[[bytes], object]]]:
    """The files one output row makes, in writing order: (path, payload bytes -> content)."""
    if row["parser"] == "inductor_output_code":
        if ctx.config.plain_text:
            return [(row["path_plain"], as_is)]
        return [(row["path"], _text(highlight_page))]
    if row["parser"] == "dump_file":
        return [
            (row["path"], _text(lambda text: ctx.render("dump_file.html", lines=lines_of(text))))
        ]
    if row["kind"] == "reformat":
        made = [(row["path"], pretty_json_or_raw)]
        if row["readable_path"]:
            made.append((row["readable_path"], readable_traces))
        return made
    return [(row["path"], as_is)]


class CompileArtifacts(Module):
    id = "compile_artifacts"
    name = "Compile artifacts"
    subscriptions = ("outputs", "envelopes", "payloads", "strings", "logs")
    modes = frozenset({DEFAULT_MODE, EXPORT_MODE})
    cost = 5
    shards = 2  # thousands of independent files: split by output number
    on_demand = True  # each file is one output row, or one saved payload

    def render(self, ctx: ModuleContext) -> ModuleOutput:
        return ModuleOutput(files=self._files(ctx))

    def _files(self, ctx: ModuleContext) -> Iterator[tuple[str, object]]:
        config = ctx.config
        mode = config.mode
        part, parts = ctx.shard
        for row in ctx.query("files", mode=mode, part=part, parts=parts, with_text=1):
            payload = row["payload"] or b""
            for path, make in row_outputs(ctx, row):
                yield path, make(payload)
        plain = int(config.plain_text)
        for row in ctx.query(
            "saved_payloads", mode=mode, plain=plain, part=part, parts=parts, with_text=1
        ):
            yield saved_payload_path(row["has_payload"]), row["payload"]

    def file_keys(self, ctx: ModuleContext) -> Iterator[tuple[str, object]]:
        """Output rows as ("output", number, position), saved payloads as ("payload", id);
        dump_file pages and saved payloads come in the order `render` writes them, so the
        last of several files at one path wins, as it does on disk."""
        config = ctx.config
        for row in ctx.query("files", mode=config.mode, part=0, parts=1, with_text=0):
            for position, (path, _) in enumerate(row_outputs(ctx, row)):
                yield path, ("output", row["number"], position)
        plain = int(config.plain_text)
        rows = ctx.query(
            "saved_payloads", mode=config.mode, plain=plain, part=0, parts=1, with_text=0
        )
        for row in rows:
            yield saved_payload_path(row["has_payload"]), ("payload", row["envelope_id"])

    def render_file(self, ctx: ModuleContext, key: object) -> object:
        kind, *where = key  # type: ignore[misc]
        if kind == "payload":
            return next(ctx.query("saved_payload", envelope_id=where[0]))["payload"]
        number, position = where
        row = next(ctx.query("file", mode=ctx.config.mode, number=number))
        _, make = row_outputs(ctx, row)[position]
        return make(row["payload"] or b"")


MODULE = CompileArtifacts()
