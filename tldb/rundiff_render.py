"""How a whole-run diff is shown: terminal text, an HTML page, and the per-compile pages.

The terminal text is meant to be read in a CI log: one line per change, sections only when
they have something. The HTML page says the same, and links each compile whose graphs or
output code changed to a page made by the per-compile diff (tldb/diff.py), written next to it
under `<page stem>_compiles/` (file names are numbers: nothing from the logs reaches a path).
"""

from __future__ import annotations

import shlex
from pathlib import Path

import jinja2

from tldb import db as dbmod
from tldb import diff as compile_diff
from tldb.rundiff import CompileChange, CountChange, MultiDiff, PhaseChange, RankDiff, RunDiff

#: Longest reason shown in one line of text (the JSON output and the page keep all of it).
SHORT = 110


def short(text: str, limit: int = SHORT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def phase_text(p: PhaseChange) -> str:
    ratio = f", {p.ratio:+.0%}" if p.ratio is not None else ""
    return f"{p.phase}: {p.a:.2f} s -> {p.b:.2f} s ({p.delta:+.2f} s{ratio})"


def count_text(c: CountChange, what: str) -> str:
    where = f" at {c.key[-1]}" if c.key[-1] else ""
    kind = f"{c.key[0]}: " if what == "failure" else ""
    reason = c.key[0] if what == "graph break" else c.key[1]
    return f"{c.status} ({c.a} -> {c.b}): {kind}{short(reason)}{where}"


def compile_command(rank: RankDiff, change: CompileChange) -> str:
    """The per-compile diff command for a matched pair (databases as the user gave them)."""
    paths = f"{shlex.quote(str(rank.db_a))} {shlex.quote(str(rank.db_b))}"
    return f"tldb diff {paths} {change.id_a.strip('[]')} {change.id_b.strip('[]')}"


def _run_lines(diff: MultiDiff, rank: RankDiff) -> list[str]:
    d: RunDiff = rank.diff
    out: list[str] = []
    if d.compiles_added or d.compiles_removed:
        out.append(f"compiles: {len(d.compiles_added)} added, {len(d.compiles_removed)} removed")
        out += [f"  + {c}" for c in d.compiles_added]
        out += [f"  - {c}" for c in d.compiles_removed]
    if d.graph_breaks:
        out.append("graph breaks:")
        out += [f"  {count_text(c, 'graph break')}" for c in d.graph_breaks]
    if d.recompiles:
        out.append("recompiles:")
        for r in d.recompiles:
            out.append(f"  {r.frame}: {r.a} -> {r.b}")
            out += [f"    + {short(x)}" for x in r.reasons_added]
            out += [f"    - {short(x)}" for x in r.reasons_removed]
    if d.failures:
        out.append("failures:")
        out += [f"  {count_text(c, 'failure')}" for c in d.failures]
    for c in d.compiles_changed:
        out.append(f"compile {c.frame} #{c.index + 1} {c.id_a} -> {c.id_b}:")
        if c.status_a != c.status_b:
            out.append(f"  status: {c.status_a} -> {c.status_b}")
        if c.guards_added or c.guards_removed:
            out.append(f"  guards: {len(c.guards_added)} added, {len(c.guards_removed)} removed")
            out += [f"    + {short(g)}" for g in c.guards_added]
            out += [f"    - {short(g)}" for g in c.guards_removed]
        if c.became_dynamic:
            out.append(f"  became dynamic: {', '.join(c.became_dynamic)}")
        if c.became_static:
            out.append(f"  became static: {', '.join(c.became_static)}")
        if c.outputs_changed:
            out.append(f"  changed: {', '.join(c.outputs_changed)}")
            if diff.persistent:
                out.append(f"    {compile_command(rank, c)}")
            else:  # logs loaded for this diff only: no database to name
                out.append("    (--html FILE writes the per-compile diff pages)")
    if d.caches:
        out.append("caches:")
        for c in d.caches:
            outcomes = sorted(set(c.a) | set(c.b))
            counts = ", ".join(f"{o} {c.a.get(o, 0)} -> {c.b.get(o, 0)}" for o in outcomes)
            rates = f"hit rate {_rate(c.hit_rate_a)} -> {_rate(c.hit_rate_b)}"
            out.append(f"  {c.cache}: {counts}; {rates}")
    if d.phases:
        t = diff.threshold
        out.append(f"compile time (changes of at least {t.min_seconds} s and {t.min_ratio:.0%}):")
        out += [f"  {phase_text(p)}" for p in d.phases]
    return out


def render_text(diff: MultiDiff) -> str:
    """The terminal summary."""
    out = [f"A: {diff.label_a}", f"B: {diff.label_b}"]
    if diff.empty():
        return "\n".join([*out, "No differences."]) + "\n"
    if not diff.multi_rank:
        return "\n".join(out + _run_lines(diff, diff.ranks[0])) + "\n"
    changed = diff.changed_ranks()
    out.append(
        f"ranks: {len(diff.ranks)} compared, {len(changed)} changed"
        + (f" ({', '.join(map(str, changed))})" if changed else "")
    )
    if diff.only_a:
        out.append(f"ranks only in A: {', '.join(map(str, diff.only_a))}")
    if diff.only_b:
        out.append(f"ranks only in B: {', '.join(map(str, diff.only_b))}")
    for rank in diff.ranks:
        if not rank.diff.empty():
            out.append(f"== rank {rank.rank}")
            out += _run_lines(diff, rank)
    return "\n".join(out) + "\n"


PAGE = jinja2.Environment(autoescape=True).from_string(
    """<!DOCTYPE html>
<html><head><meta charset="UTF-8"><title>tldb run diff</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em; max-width: 70em; }
code, pre { font-family: ui-monospace, Menlo, Consolas, monospace; }
pre { background: #fafafa; padding: 6px; white-space: pre-wrap; }
.add { color: #116329; } .del { color: #82071e; } .muted { color: #666; }
table { border-collapse: collapse; } td, th { border: 1px solid #ddd; padding: 2px 8px; }
</style></head><body>
<h1>Run diff</h1>
<p>A: <code>{{ diff.label_a }}</code><br>B: <code>{{ diff.label_b }}</code></p>
{% if diff.empty() %}<p id="no-differences">No differences.</p>{% endif %}
{% if diff.multi_rank %}
<p>{{ diff.ranks | length }} rank(s) compared; changed: {{ diff.changed_ranks() | join(', ') or 'none' }}.
{% if diff.only_a %}Only in A: {{ diff.only_a | join(', ') }}.{% endif %}
{% if diff.only_b %}Only in B: {{ diff.only_b | join(', ') }}.{% endif %}</p>
{% endif %}
{% for rank in diff.ranks if not rank.diff.empty() %}{% set d = rank.diff %}
<section class="rank">
{% if diff.multi_rank %}<h2>Rank {{ rank.rank }}</h2>{% endif %}
{% if d.compiles_added or d.compiles_removed %}<h3>Compiles</h3><ul>
{% for c in d.compiles_added %}<li class="add">added: {{ c }}</li>{% endfor %}
{% for c in d.compiles_removed %}<li class="del">removed: {{ c }}</li>{% endfor %}</ul>{% endif %}
{% if d.graph_breaks %}<h3>Graph breaks</h3><table><tr><th>status</th><th>A</th><th>B</th><th>user frame</th><th>reason</th></tr>
{% for c in d.graph_breaks %}<tr><td>{{ c.status }}</td><td>{{ c.a }}</td><td>{{ c.b }}</td><td><code>{{ c.key[1] }}</code></td><td><pre>{{ c.key[0] }}</pre></td></tr>{% endfor %}</table>{% endif %}
{% if d.recompiles %}<h3>Recompiles</h3><ul>
{% for r in d.recompiles %}<li><code>{{ r.frame }}</code>: {{ r.a }} → {{ r.b }}<ul>
{% for x in r.reasons_added %}<li class="add">+ {{ x }}</li>{% endfor %}
{% for x in r.reasons_removed %}<li class="del">- {{ x }}</li>{% endfor %}</ul></li>{% endfor %}</ul>{% endif %}
{% if d.failures %}<h3>Failures</h3><table><tr><th>status</th><th>A</th><th>B</th><th>type</th><th>user frame</th><th>reason</th></tr>
{% for c in d.failures %}<tr><td>{{ c.status }}</td><td>{{ c.a }}</td><td>{{ c.b }}</td><td>{{ c.key[0] }}</td><td><code>{{ c.key[2] }}</code></td><td><pre>{{ c.key[1] }}</pre></td></tr>{% endfor %}</table>{% endif %}
{% if d.compiles_changed %}<h3>Matched compiles that changed</h3>
{% for c in d.compiles_changed %}<h4><code>{{ c.frame }}</code> #{{ c.index + 1 }}: {{ c.id_a }} → {{ c.id_b }}</h4><ul>
{% if c.status_a != c.status_b %}<li>status: {{ c.status_a }} → {{ c.status_b }}</li>{% endif %}
{% for g in c.guards_added %}<li class="add">guard added: <code>{{ g }}</code></li>{% endfor %}
{% for g in c.guards_removed %}<li class="del">guard removed: <code>{{ g }}</code></li>{% endfor %}
{% if c.became_dynamic %}<li>became dynamic: {{ c.became_dynamic | join(', ') }}</li>{% endif %}
{% if c.became_static %}<li>became static: {{ c.became_static | join(', ') }}</li>{% endif %}
{% if c.outputs_changed %}<li>changed: {{ c.outputs_changed | join(', ') }}
{% if links.get((rank.rank, loop.index0)) %} — <a class="compile-diff" href="{{ links[(rank.rank, loop.index0)] }}">per-compile diff</a>{% endif %}</li>{% endif %}
</ul>{% endfor %}{% endif %}
{% if d.caches %}<h3>Caches</h3><table><tr><th>cache</th><th>A</th><th>B</th><th>hit rate A</th><th>hit rate B</th></tr>
{% for c in d.caches %}<tr><td>{{ c.cache }}</td><td>{{ c.a }}</td><td>{{ c.b }}</td><td>{{ rate(c.hit_rate_a) }}</td><td>{{ rate(c.hit_rate_b) }}</td></tr>{% endfor %}</table>{% endif %}
{% if d.phases %}<h3>Compile time</h3><p class="muted">Changes of at least {{ diff.threshold.min_seconds }} s and {{ '%.0f' % (diff.threshold.min_ratio * 100) }}%; regressions first.</p><ul>
{% for p in d.phases %}<li class="{{ 'del' if p.delta > 0 else 'add' }}">{{ phase(p) }}</li>{% endfor %}</ul>{% endif %}
</section>
{% endfor %}
</body></html>
"""
)


def _compile_page(rank: RankDiff, change: CompileChange, label_a: str, label_b: str) -> str:
    dbs = [dbmod.open_readonly(rank.db_a), dbmod.open_readonly(rank.db_b)]
    try:
        a = compile_diff.Side(dbs[0].conn, rank.log_a, change.id_a, label_a)
        b = compile_diff.Side(dbs[1].conn, rank.log_b, change.id_b, label_b)
        return compile_diff.render_html(a, b, compile_diff.compare(a, b))
    finally:
        for database in dbs:
            database.conn.close()


def write_html(diff: MultiDiff, page: Path) -> list[Path]:
    """Write the page and, beside it, a per-compile diff page for each compile whose graphs or
    code changed. Returns every file written."""
    folder_name = f"{page.stem}_compiles"
    links: dict[tuple[int | None, int], str] = {}
    written = []
    number = 0
    for rank in diff.ranks:
        for index, change in enumerate(rank.diff.compiles_changed):
            if not change.outputs_changed:
                continue
            number += 1
            target = page.parent / folder_name / f"{number}.html"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(
                _compile_page(rank, change, diff.label_a, diff.label_b), encoding="utf-8"
            )
            written.append(target)
            links[(rank.rank, index)] = f"{folder_name}/{number}.html"
    page.write_text(
        PAGE.render(diff=diff, links=links, rate=_rate, phase=phase_text), encoding="utf-8"
    )
    return [page, *written]
