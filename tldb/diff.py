"""`tldb diff`: what changed between two compiles.

Two compile ids of one database (a frame and its recompile), or one compile id in two databases
(two runs, two ranks). Compared, part by part: the guards Dynamo installed, the graphs (Dynamo's
output graph, AOTAutograd's graphs, Inductor's post-grad graph), the generated code, and the
fields of compilation_metrics. Text parts are shown as unified diffs; metrics as `field: value`
lines, long values (configs) replaced by their length and digest so a change still shows.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import orjson

from tldb.errors import InputError

#: Graph kinds compared (envelopes of the `graphs` view), plus the post-grad graph artifact.
GRAPH_KINDS = (
    "dynamo_output_graph",
    "aot_joint_graph",
    "aot_forward_graph",
    "aot_backward_graph",
    "aot_inference_graph",
    "inductor_post_grad_graph",
)
#: Metrics values longer than this are shown as `<N chars, md5 …>`.
LONG_VALUE = 160
_LATENCY = re.compile(r"^Guard latency = .*$", re.M)
_COMPILE_ID = re.compile(r"^\[?\s*(!\d+/)?(\d+|-)/(\d+|-)(_\d+)?\s*\]?$")

PARTS_SQL = """
SELECT envelope_id, 'guards' AS section, kind AS name, payload FROM guard_dumps
 WHERE log_id = :log AND (compile_id = :exact OR compile_id LIKE :attempts ESCAPE '\\')
UNION ALL
SELECT envelope_id, 'graphs', coalesce(kind || ' ' || name, kind), payload FROM graphs
 WHERE log_id = :log AND (compile_id = :exact OR compile_id LIKE :attempts ESCAPE '\\')
   AND kind IN ({graph_kinds})
UNION ALL
SELECT envelope_id, 'graphs', name, payload FROM artifact_envelopes
 WHERE log_id = :log AND (compile_id = :exact OR compile_id LIKE :attempts ESCAPE '\\')
   AND name = 'inductor_post_grad_graph'
UNION ALL
SELECT envelope_id, 'output code', coalesce(kind || ' ' || name, kind), payload FROM output_code
 WHERE log_id = :log AND (compile_id = :exact OR compile_id LIKE :attempts ESCAPE '\\')
UNION ALL
SELECT envelope_id, 'metrics', kind, fields FROM compilation_metrics
 WHERE log_id = :log AND (compile_id = :exact OR compile_id LIKE :attempts ESCAPE '\\')
ORDER BY envelope_id
"""
SECTIONS = ("guards", "graphs", "output code", "metrics")


@dataclass
class Side:
    """One side of a comparison: a database, one of its logs, a compile id."""

    conn: sqlite3.Connection
    log_id: int
    compile_id: str
    label: str


@dataclass
class Change:
    section: str
    name: str
    status: str  # identical | changed | only in A | only in B
    diff: list[str] = field(default_factory=list)
    lines_a: int = 0
    lines_b: int = 0


def normalize_compile_id(text: str) -> str:
    """`0/1`, `[0/1]`, ` [0/1_2] `, `!3/0/1` -> tldb's label (`[0/1]`, `[0/1_2]`, `[!3/0/1]`)."""
    found = _COMPILE_ID.match(text.strip())
    if not found:
        raise InputError(f"{text!r} is not a compile id (write it like 0/1, [0/1] or 0/1_2)")
    ca, frame, fcid, attempt = found.groups()
    attempt = "" if attempt in (None, "_0") else attempt
    return f"[{ca or ''}{frame}/{fcid}{attempt}]"


def metrics_text(fields_json: str | None) -> str:
    """compilation_metrics fields as sorted `field: value` lines (long values digested)."""
    try:
        fields = orjson.loads(fields_json or "{}")
    except orjson.JSONDecodeError:
        return fields_json or ""
    lines = []
    for key in sorted(fields):
        value = fields[key]
        text = value if isinstance(value, str) else orjson.dumps(value).decode()
        if len(text) > LONG_VALUE:
            digest = hashlib.md5(text.encode()).hexdigest()[:12]
            text = f"<{len(text)} chars, md5 {digest}>"
        lines.append(f"{key}: {text}")
    return "\n".join(lines)


def _parts(side: Side) -> dict[tuple[str, str], str]:
    """The comparable texts of one compile, keyed by (section, name #n)."""
    exact = side.compile_id
    attempts = exact[:-1].replace("_", "\\_") + "\\_%]"
    kinds = ", ".join(f"'{k}'" for k in GRAPH_KINDS)
    rows = side.conn.execute(
        PARTS_SQL.format(graph_kinds=kinds),
        {"log": side.log_id, "exact": exact, "attempts": attempts},
    ).fetchall()
    seen: dict[tuple[str, str], int] = defaultdict(int)
    parts = {}
    for _, section, name, payload in rows:
        seen[(section, name)] += 1
        n = seen[(section, name)]
        key = (section, name if n == 1 else f"{name} #{n}")
        if section == "metrics":
            text = metrics_text(payload)
        elif section == "guards":
            text = _LATENCY.sub("", payload or "").rstrip("\n")
        else:
            text = payload or ""
        parts[key] = text
    return parts


def compare(a: Side, b: Side, context: int = 3) -> list[Change]:
    parts_a, parts_b = _parts(a), _parts(b)
    if not parts_a:
        raise InputError(f"{a.label}: no guards, graphs, code or metrics for {a.compile_id}")
    if not parts_b:
        raise InputError(f"{b.label}: no guards, graphs, code or metrics for {b.compile_id}")
    keys = list(parts_a) + [k for k in parts_b if k not in parts_a]
    keys.sort(key=lambda k: SECTIONS.index(k[0]))
    changes = []
    for key in keys:
        section, name = key
        text_a, text_b = parts_a.get(key), parts_b.get(key)
        if text_a is None or text_b is None:
            status = "only in A" if text_b is None else "only in B"
            changes.append(Change(section, name, status))
            continue
        lines_a, lines_b = text_a.splitlines(), text_b.splitlines()
        diff = list(
            difflib.unified_diff(
                lines_a,
                lines_b,
                f"A {a.label} {a.compile_id} {name}",
                f"B {b.label} {b.compile_id} {name}",
                n=0 if section == "metrics" else context,
                lineterm="",
            )
        )
        status = "changed" if diff else "identical"
        changes.append(Change(section, name, status, diff, len(lines_a), len(lines_b)))
    return changes


def summary(changes: list[Change]) -> list[str]:
    lines = []
    for section in SECTIONS:
        mine = [c for c in changes if c.section == section]
        if not mine:
            lines.append(f"{section}: none on either side")
            continue
        counts: dict[str, int] = defaultdict(int)
        for c in mine:
            counts[c.status] += 1
        lines.append(f"{section}: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return lines


def render_text(a: Side, b: Side, changes: list[Change]) -> str:
    out = [f"A: {a.label} {a.compile_id}", f"B: {b.label} {b.compile_id}", ""]
    out += summary(changes)
    for c in changes:
        out.append("")
        if c.status == "changed":
            out.append(f"### {c.section}: {c.name} (changed)")
            out.extend(c.diff)
        else:
            out.append(f"### {c.section}: {c.name} ({c.status})")
    return "\n".join(out) + "\n"


PAGE = jinja2.Environment(autoescape=True).from_string(
    """<!DOCTYPE html>
<html><head><meta charset="UTF-8"><title>tldb diff {{ a.compile_id }} / {{ b.compile_id }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em; }
pre { font-family: ui-monospace, Menlo, Consolas, monospace; background: #fafafa; padding: 6px; }
.add { background: #e6ffec; display: block; } .del { background: #ffebe9; display: block; }
.hunk { color: #6a737d; display: block; } .status { color: #555; }
</style></head><body>
<h1>Compile diff</h1>
<p>A: <code>{{ a.label }}</code> <strong>{{ a.compile_id }}</strong><br>
B: <code>{{ b.label }}</code> <strong>{{ b.compile_id }}</strong></p>
<ul>{% for line in summary %}<li>{{ line }}</li>{% endfor %}</ul>
{% for c in changes %}
<h2>{{ c.section }}: <code>{{ c.name }}</code> <span class="status">({{ c.status }})</span></h2>
{% if c.diff %}<pre>{% for line in c.diff %}<span class="{{ kind(line) }}">{{ line }}</span>
{% endfor %}</pre>{% endif %}
{% endfor %}
</body></html>
"""
)


def _line_class(line: str) -> str:
    if line.startswith("@@"):
        return "hunk"
    if line.startswith("+") and not line.startswith("+++"):
        return "add"
    if line.startswith("-") and not line.startswith("---"):
        return "del"
    return ""


def render_html(a: Side, b: Side, changes: list[Change]) -> str:
    return PAGE.render(a=a, b=b, changes=changes, summary=summary(changes), kind=_line_class)


def pick_log(conn: sqlite3.Connection, path: Path, wanted: int | None) -> int:
    ids = [r[0] for r in conn.execute("SELECT id FROM logs ORDER BY id")]
    if wanted is not None:
        if wanted not in ids:
            raise InputError(f"{path} has no log {wanted} (it has {ids})")
        return wanted
    if len(ids) != 1:
        raise InputError(f"{path} holds {len(ids)} logs ({ids}); choose one with --log-a/--log-b")
    return ids[0]
