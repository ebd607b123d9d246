"""Reading the committed torch 2.13 traces (tests/data/torch213) with plain json, so tests can
derive expected values independently of tldb's reader and loader."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path

TRACES = Path(__file__).resolve().parent / "data" / "torch213"
CONTEXT = {"rank", "frame_id", "frame_compile_id", "attempt", "compiled_autograd_id"}
CONTEXT |= {"has_payload", "subgraph_name", "stack"}
_HEADER = re.compile(r"^[VIWEC]\d{4} [^\]]*\] (\{.*)$")


def log_text(name: str) -> str:
    """The text of tests/data/torch213/<name>.log, stored plain or as <name>.log.gz."""
    plain = TRACES / f"{name}.log"
    if plain.is_file():
        return plain.read_text(encoding="utf-8")
    return gzip.decompress((TRACES / f"{name}.log.gz").read_bytes()).decode("utf-8")


def envelopes(name: str) -> Iterator[tuple[str, dict, str | None]]:
    """(kind, metadata, payload) of each envelope of tests/data/torch213/<name>.log(.gz)."""
    kind = meta = None
    payload: list[str] | None = None
    for line in log_text(name).splitlines():
        if line.startswith("\t") and meta is not None:
            payload = (payload or []) + [line[1:]]
            continue
        if meta is not None:
            yield kind, meta, None if payload is None else "\n".join(payload)
            kind = meta = payload = None
        found = _HEADER.match(line)
        if not found:
            continue
        try:
            meta = json.loads(found.group(1))
        except ValueError:
            continue
        keys = [k for k in meta if k not in CONTEXT]
        kind = keys[0] if keys else "stack"
    if meta is not None:
        yield kind, meta, None if payload is None else "\n".join(payload)


def label(meta: dict) -> str:
    """The compile id as tldb labels it: [frame/compile] plus _attempt when non-zero."""
    attempt = meta.get("attempt")
    suffix = f"_{attempt}" if attempt else ""
    return f"[{meta.get('frame_id')}/{meta.get('frame_compile_id')}{suffix}]"
