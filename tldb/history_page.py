"""The static page of a run history: a table of runs and a line chart per trend.

Charts are inline SVG written here (a polyline and one circle per run, each with a <title>
tooltip), so the page needs no script and no network: it opens from a file, offline, in a CI
artifact. Runs without a value (no cache lookups: no hit rate) get no point rather than a
made-up zero. Everything from the history (labels, paths, versions) is autoescaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2

#: The charts: runs column, title, unit, how a value is printed.
CHARTS = (
    ("compile_seconds", "Compile time", "s", "{:.2f}"),
    ("graph_breaks", "Graph breaks", "", "{:.0f}"),
    ("recompiles", "Recompiles", "", "{:.0f}"),
    ("cache_hit_rate", "Cache hit rate", "%", "{:.0f}"),
)
WIDTH, HEIGHT, PAD = 640, 220, 40


@dataclass
class Point:
    x: float
    y: float
    title: str


@dataclass
class Chart:
    column: str
    title: str
    points: list[Point]
    top: str  # the value at the top of the y axis, printed


def chart(runs: list[dict], column: str, title: str, unit: str, fmt: str) -> Chart:
    """Place each run's value: x by the order runs were added, y from 0 to the largest."""
    scale = 100.0 if column == "cache_hit_rate" else 1.0
    values = [
        (i, run, run[column] * scale) for i, run in enumerate(runs) if run[column] is not None
    ]
    top = max([v for _, _, v in values] + [0.0])
    top = 100.0 if column == "cache_hit_rate" else (top * 1.1 or 1.0)
    span = max(len(runs) - 1, 1)
    points = []
    for i, run, value in values:
        x = PAD + (WIDTH - 2 * PAD) * (i / span if len(runs) > 1 else 0.5)
        y = HEIGHT - PAD - (HEIGHT - 2 * PAD) * value / top
        label = f"{run['label']} (run {run['id']}): {fmt.format(value)}{unit and ' ' + unit}"
        points.append(Point(round(x, 1), round(y, 1), label))
    return Chart(column, title, points, f"{fmt.format(top)}{unit and ' ' + unit}")


PAGE = jinja2.Environment(autoescape=True).from_string(
    """<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8"><title>tldb run history</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; border: 1px solid #ddd; padding: 0.5em; }
svg .axis { stroke: #999; } svg .line { fill: none; stroke: #1f6feb; stroke-width: 2; }
svg .point { fill: #1f6feb; } svg text { font-size: 11px; fill: #555; }
table { border-collapse: collapse; } td, th { border: 1px solid #ddd; padding: 2px 8px; }
td.num { text-align: right; }
</style></head><body>
<h1>Run history</h1>
<p>{{ runs | length }} run(s), in the order they were added.</p>
<nav>{% for c in charts %}<a href="#chart-{{ c.column }}">{{ c.title }}</a> · {% endfor %}<a href="#runs">Runs</a></nav>
<div class="charts">
{% for c in charts %}<figure id="chart-{{ c.column }}"><figcaption>{{ c.title }}</figcaption>
<svg class="chart" data-column="{{ c.column }}" width="{{ width }}" height="{{ height }}" viewBox="0 0 {{ width }} {{ height }}" role="img" aria-label="{{ c.title }} per run">
<line class="axis" x1="{{ pad }}" y1="{{ height - pad }}" x2="{{ width - pad }}" y2="{{ height - pad }}"/>
<line class="axis" x1="{{ pad }}" y1="{{ pad }}" x2="{{ pad }}" y2="{{ height - pad }}"/>
<text x="2" y="{{ pad + 4 }}">{{ c.top }}</text><text x="2" y="{{ height - pad + 4 }}">0</text>
{% if c.points | length > 1 %}<polyline class="line" points="{% for p in c.points %}{{ p.x }},{{ p.y }} {% endfor %}"/>{% endif %}
{% for p in c.points %}<circle class="point" cx="{{ p.x }}" cy="{{ p.y }}" r="4"><title>{{ p.title }}</title></circle>
{% endfor %}</svg></figure>
{% endfor %}</div>
<h2>Runs</h2>
<table id="runs"><tr><th>id</th><th>label</th><th>ran at</th><th>torch</th><th>ranks</th><th>compiles</th>
<th>graph breaks</th><th>recompiles</th><th>failures</th><th>cache hits / misses</th><th>hit rate</th><th>compile s</th></tr>
{% for r in runs %}<tr id="run-{{ r.id }}"><td class="num">{{ r.id }}</td><td title="{{ r.source }}">{{ r.label }}</td>
<td>{{ r.started_at or '' }}</td><td>{{ r.torch_version or '' }}</td><td class="num">{{ r.ranks }}</td>
<td class="num">{{ r.compiles }}</td><td class="num">{{ r.graph_breaks }}</td><td class="num">{{ r.recompiles }}</td>
<td class="num">{{ r.failures }}</td><td class="num">{{ r.cache_hits }} / {{ r.cache_misses }}</td>
<td class="num">{{ rate(r.cache_hit_rate) }}</td><td class="num">{{ '%.2f' % r.compile_seconds }}</td></tr>
{% endfor %}</table>
</body></html>
"""
)


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def render_page(runs: list[dict]) -> str:
    charts = [chart(runs, *spec) for spec in CHARTS]
    return PAGE.render(runs=runs, charts=charts, width=WIDTH, height=HEIGHT, pad=PAD, rate=rate)


def write_page(runs: list[dict], out_dir: Path) -> Path:
    """Write OUT/index.html (the only file of the page)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    page = out_dir / "index.html"
    page.write_text(render_page(runs), encoding="utf-8")
    return page


def table_lines(runs: list[dict]) -> list[str]:
    """The runs as an aligned text table, for the terminal."""
    header = ("id", "label", "ran at", "compiles", "breaks", "recompiles", "failures", "hit rate")
    rows = [(*header, "compile s")]
    for r in runs:
        rows.append(
            (
                str(r["id"]),
                r["label"],
                r["started_at"] or "",
                str(r["compiles"]),
                str(r["graph_breaks"]),
                str(r["recompiles"]),
                str(r["failures"]),
                rate(r["cache_hit_rate"]),
                f"{r['compile_seconds']:.2f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
