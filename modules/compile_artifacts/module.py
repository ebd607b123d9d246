"""The files taken from payloads: graphs, artifacts, output code, dump files, raw.jsonl, raw.log.

Everything here is one row of the central output plan (or one envelope) turned into one file;
the numbered names come from the plan, never from a counter of this module.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import orjson

from tldb import jsonfmt
from tldb.highlight import highlight_page
from tldb.loader import RAW_JSONL_KEYS
from tldb.module_api import (
    DEFAULT_MODE,
    EXPORT_MODE,
    Module,
    ModuleContext,
    ModuleOutput,
    encode_text,
    lines_of,
)
from tldb.paths import safe_component
from tldb.reader import GLOG


def pretty_json_or_raw(payload: str) -> str:
    """A JSON artifact pretty-printed with sorted keys, or the raw text if it is not JSON."""
    try:
        return jsonfmt.dumps_pretty(jsonfmt.loads_like_serde(payload))
    except ValueError:
        return payload


def readable_traces(payload: str) -> str:
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


def saved_payload_path(has_payload: str) -> str:
    return f"payloads/{safe_component(has_payload)}.txt"


class CompileArtifacts(Module):
    id = "compile_artifacts"
    name = "Compile artifacts"
    subscriptions = ("outputs", "envelopes", "payloads", "strings", "logs")
    modes = frozenset({DEFAULT_MODE, EXPORT_MODE})

    def render(self, ctx: ModuleContext) -> ModuleOutput:
        return ModuleOutput(files=self._files(ctx))

    def _files(self, ctx: ModuleContext) -> Iterator[tuple[str, object]]:
        config = ctx.config
        mode = config.mode
        for row in ctx.query("files", mode=mode):
            payload = row["payload"] or ""
            parser = row["parser"]
            if parser == "inductor_output_code":
                if config.plain_text:
                    yield row["path_plain"], payload
                else:
                    yield row["path"], highlight_page(payload)
            elif parser == "dump_file":
                yield row["path"], ctx.render("dump_file.html", lines=lines_of(payload))
            elif row["kind"] == "reformat":
                yield row["path"], pretty_json_or_raw(payload)
                if row["readable_path"]:
                    yield row["readable_path"], readable_traces(payload)
            else:
                yield row["path"], payload
        plain = int(config.plain_text)
        for row in ctx.query("saved_payloads", mode=mode, plain=plain):
            yield saved_payload_path(row["has_payload"]), row["payload"]
        if mode == DEFAULT_MODE:
            yield "raw.log", ctx.raw_log()
            yield "raw.jsonl", self._raw_jsonl(ctx, plain)

    def _raw_jsonl(self, ctx: ModuleContext, plain: int) -> Iterator[str]:
        """tlparse's raw.jsonl: the string table, then each envelope with its glog fields."""
        table: list[str | None] = []
        for row in ctx.query("strings"):
            table.extend([None] * (row["idx"] + 1 - len(table)))
            table[row["idx"]] = row["value"]
        yield jsonfmt.dumps_compact({"string_table": table or [None]}) + "\n"
        year = datetime.datetime.now(datetime.UTC).year
        for row in ctx.query("raw_jsonl", plain=plain):
            meta = jsonfmt.loads_like_serde(row["metadata"])
            if any(key in meta for key in RAW_JSONL_KEYS):
                continue
            match = GLOG.search(row["header"] + "x")
            assert match is not None
            g = match.group
            meta["timestamp"] = (
                f"{year}-{g('month')}-{g('day')}T{g('hour')}:{g('minute')}:{g('second')}."
                f"{g('micro')}Z"
            )
            meta["thread"] = int(g("thread"))
            meta["pathname"] = g("pathname")
            meta["lineno"] = int(g("lineno"))
            filename = row["payload_file"]
            if filename is None and row["status"] == "ok" and (row["payload_size"] or 0) > 0:
                filename = saved_payload_path(row["has_payload"])
            if filename is not None:
                if "payload_filename" in meta:
                    continue
                meta["payload_filename"] = filename
            yield jsonfmt.dumps_compact(meta) + "\n"


MODULE = CompileArtifacts()
