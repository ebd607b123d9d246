"""raw.log and raw.jsonl: the log itself, and every envelope as one JSON line.

raw.log is a copy of the loaded file (rebuilt byte for byte from the database when the file
has gone or changed). raw.jsonl is tlparse's: the string table first, then each envelope's JSON
with its glog fields added and the name of the file holding its payload.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator

from tldb import jsonfmt
from tldb.loader import RAW_JSONL_KEYS
from tldb.module_api import DEFAULT_MODE, Module, ModuleContext, ModuleOutput
from tldb.paths import saved_payload_path
from tldb.reader import GLOG

#: An envelope holding one of these keys is left out of raw.jsonl (tlparse's rule).
_GLOG_KEYS = frozenset(RAW_JSONL_KEYS)


class RawLog(Module):
    id = "raw_log"
    name = "Raw log and JSONL"
    subscriptions = ("envelopes", "payloads", "outputs", "strings", "logs")
    modes = frozenset({DEFAULT_MODE})
    cost = 3
    on_demand = True  # its files are made lazily, streamed when asked for
    long_files = frozenset({"raw.jsonl", "raw.log"})  # raw.log: when rebuilt from the DB

    def render(self, ctx: ModuleContext) -> ModuleOutput:
        plain = int(ctx.config.plain_text)
        return ModuleOutput(
            files=[("raw.log", ctx.raw_log()), ("raw.jsonl", self._raw_jsonl(ctx, plain))]
        )

    def _raw_jsonl(self, ctx: ModuleContext, plain: int) -> Iterator[str | bytes]:
        """tlparse's raw.jsonl: the string table, then each envelope with its glog fields.
        Lines are bytes, as orjson writes them (a str would be encoded again to be written),
        and rows are read as tuples (tens of thousands on a big log: a dict each cost more
        than the fields the loop reads)."""
        table: list[str | None] = []
        for row in ctx.query("strings"):
            table.extend([None] * (row["idx"] + 1 - len(table)))
            table[row["idx"]] = row["value"]
        yield jsonfmt.dumps_compact({"string_table": table or [None]}) + "\n"
        year = datetime.datetime.now(datetime.UTC).year
        for header, metadata, status, has_payload, payload_size, filename in ctx.rows(
            "raw_jsonl", plain=plain
        ):
            meta = jsonfmt.loads_like_serde(metadata)
            if not _GLOG_KEYS.isdisjoint(meta):
                continue
            match = GLOG.search(header + "x")
            assert match is not None
            month, day, hour, minute, second, micro, thread, pathname, lineno = match.group(
                "month", "day", "hour", "minute", "second", "micro", "thread", "pathname", "lineno"
            )
            meta["timestamp"] = f"{year}-{month}-{day}T{hour}:{minute}:{second}.{micro}Z"
            meta["thread"] = int(thread)
            meta["pathname"] = pathname
            meta["lineno"] = int(lineno)
            if filename is None and status == "ok" and (payload_size or 0) > 0:
                filename = saved_payload_path(has_payload)
            if filename is not None:
                if "payload_filename" in meta:
                    continue
                meta["payload_filename"] = filename
            yield jsonfmt.dumps_compact_bytes(meta) + b"\n"


MODULE = RawLog()
