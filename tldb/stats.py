"""Counters of what happened to each line, printed in tlparse's `Stats { ... }` form."""

from __future__ import annotations

from dataclasses import dataclass, fields

#: tlparse's counters, in its display order.
TLPARSE_FIELDS = (
    "ok",
    "other_rank",
    "fail_glog",
    "fail_json",
    "fail_payload_md5",
    "fail_dynamo_guards_json",
    "fail_parser",
    "fail_key_conflict",
    "fail_json_serialization",
    "unknown",
)
#: Counters that make `--strict` fail, as in tlparse.
STRICT_FIELDS = (
    "fail_glog",
    "fail_json",
    "fail_payload_md5",
    "other_rank",
    "fail_dynamo_guards_json",
    "fail_parser",
)


@dataclass
class Stats:
    """tlparse's counters plus tldb's own (lines tlparse would drop or die on)."""

    ok: int = 0
    other_rank: int = 0
    fail_glog: int = 0
    fail_json: int = 0
    fail_payload_md5: int = 0
    fail_dynamo_guards_json: int = 0
    fail_parser: int = 0
    fail_key_conflict: int = 0
    fail_json_serialization: int = 0
    unknown: int = 0
    # tldb only: kept in the database, never lost, but not part of tlparse's line.
    blank_lines: int = 0
    invalid_utf8: int = 0

    def add(self, other: Stats) -> None:
        """Add another's counters to these (a reader process's, to its consumer's)."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def tlparse_line(self) -> str:
        """`Stats { ok: 64, fail_payload_md5: 1 }`: only non-zero counters, tlparse's order."""
        parts = [f"{name}: {getattr(self, name)}" for name in TLPARSE_FIELDS if getattr(self, name)]
        return f"Stats {{ {', '.join(parts)} }}" if parts else "Stats { }"

    def extra_line(self) -> str | None:
        """tldb's own counters, or None when they are all zero."""
        extra = [f.name for f in fields(self) if f.name not in TLPARSE_FIELDS]
        parts = [f"{name}: {getattr(self, name)}" for name in extra if getattr(self, name)]
        return f"tldb: {', '.join(parts)}" if parts else None

    def strict_failures(self) -> int:
        return sum(getattr(self, name) for name in STRICT_FIELDS)

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
