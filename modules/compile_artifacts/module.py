"""The files taken from payloads: graphs, artifacts, output code, dump files, saved payloads.

Everything here is one row of the central output plan (or one envelope) turned into one file;
the numbered names come from the plan, never from a counter of this module.
"""

from __future__ import annotations

from collections.abc import Iterator

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


class CompileArtifacts(Module):
    id = "compile_artifacts"
    name = "Compile artifacts"
    subscriptions = ("outputs", "envelopes", "payloads", "strings", "logs")
    modes = frozenset({DEFAULT_MODE, EXPORT_MODE})
    cost = 5
    shards = 2  # thousands of independent files: split by output number

    def render(self, ctx: ModuleContext) -> ModuleOutput:
        return ModuleOutput(files=self._files(ctx))

    def _files(self, ctx: ModuleContext) -> Iterator[tuple[str, object]]:
        config = ctx.config
        mode = config.mode
        part, parts = ctx.shard
        for row in ctx.query("files", mode=mode, part=part, parts=parts):
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
        for row in ctx.query("saved_payloads", mode=mode, plain=plain, part=part, parts=parts):
            yield saved_payload_path(row["has_payload"]), row["payload"]


MODULE = CompileArtifacts()
