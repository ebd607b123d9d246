"""Modules are found without core edits: from a --module-path folder, selectable with --modules."""

from __future__ import annotations

import textwrap

from conftest import data_path, run_tldb
from torch213_log import envelopes

MODULE_SOURCE = textwrap.dedent(
    """
    from tldb.module_api import IndexContribution, Module, ModuleOutput

    class KindCounts(Module):
        id = "kind_counts"
        name = "Envelope kinds"
        subscriptions = ("envelopes",)

        def render(self, ctx):
            rows = list(ctx.query("counts"))
            page = ctx.render("page.html", rows=rows)
            section = IndexContribution("kind_counts", '<h2>Kinds</h2><a href="kinds.html">kinds</a>')
            return ModuleOutput(files=[("kinds.html", page)], index_html=[section])

    MODULE = KindCounts()
    """
)


def test_module_from_a_folder_adds_page_and_section(tmp_path):
    folder = tmp_path / "extra" / "kind_counts"
    folder.mkdir(parents=True)
    (folder / "module.py").write_text(MODULE_SOURCE)
    (folder / "counts.sql").write_text(
        "SELECT kind, count(*) AS n FROM envelopes WHERE log_id = :log_id GROUP BY kind ORDER BY kind"
    )
    (folder / "page.html").write_text(
        "<ul>{% for r in rows %}<li>{{ r.kind }}: {{ r.n }}</li>{% endfor %}</ul>"
    )
    out = tmp_path / "out"
    log = data_path("torch213/dynamo.log")
    result = run_tldb(
        "report", str(log), "-o", str(out), "--no-browser", "--module-path", str(tmp_path / "extra")
    )
    assert result.returncode == 0, result.stderr
    page = (out / "kinds.html").read_text()
    # The module's SQL sees every envelope: its count is the log's, read independently.
    metrics = sum(kind == "compilation_metrics" for kind, _, _ in envelopes("dynamo"))
    assert metrics > 1
    assert f"<li>compilation_metrics: {metrics}</li>" in page
    assert '<a href="kinds.html">kinds</a>' in (out / "index.html").read_text()


def test_modules_option_selects_a_subset(tmp_path):
    out = tmp_path / "out"
    log = data_path("torch213/regional.log")
    result = run_tldb(
        "report", str(log), "-o", str(out), "--no-browser", "--modules", "compile_directory"
    )
    assert result.returncode == 0, result.stderr
    assert (out / "compile_directory.json").exists()
    assert not (out / "raw.jsonl").exists()
    bad = run_tldb("report", str(log), "-o", str(out), "--overwrite", "--modules", "nope")
    assert bad.returncode == 1
    assert bad.stderr.strip().startswith("Error: unknown module(s): nope")
