"""`tldb serve`: Datasette over corpus databases answers every table, view and canned query.

Databases are built from the corpus once per module and served through the same code path as
`tldb serve` (plan_serve + make_datasette), using Datasette's in-process test client.
"""

from __future__ import annotations

import shutil
import sqlite3
from html.parser import HTMLParser
from pathlib import Path

import pytest
import pytest_asyncio
import yaml
from conftest import run_tldb

from tldb.combine import combine
from tldb.directory import build_manifest
from tldb.loader import build_database
from tldb.report import ReportRequest, run_report
from tldb.resources import metadata_file
from tldb.serve import TEMPLATE_DATABASE, make_datasette, parse_settings, plan_serve

INPUTS = Path("tlparse-tests") / "inputs"
G2 = Path("torch213") / "g_2ranks"

#: Databases served in these tests: name -> corpus logs (several logs: the `tldb combine` of
#: one database per log).
SOURCES = {
    "comp_metrics": [INPUTS / "comp_metrics.log"],
    "comp_failure": [INPUTS / "comp_failure.log"],
    "cache_hit_miss": [INPUTS / "cache_hit_miss.log"],
    "rank_1": [G2 / "dedicated_log_torch_trace_rank_1_c51nhzd7.log"],
    "ranks": [
        G2 / "dedicated_log_torch_trace_rank_0_5lbcawvb.log",
        G2 / "dedicated_log_torch_trace_rank_1_c51nhzd7.log",
    ],
}

#: Sample parameters of every canned query, and the databases where the corpus has rows for it.
QUERIES = {
    "distinct_graph_breaks": ({}, ["comp_metrics", "rank_1", "ranks"]),
    "recompiles_by_frame": ({}, ["rank_1", "ranks"]),
    "failures_and_restarts": ({}, ["comp_metrics", "comp_failure", "rank_1"]),
    "slowest_compiles": ({"rank": ""}, list(SOURCES)),
    "compile_phases": ({"compile_id": "4/0", "rank": "1"}, ["rank_1", "ranks"]),
    "phase_totals": ({}, ["comp_failure", "cache_hit_miss", "rank_1", "ranks"]),
    "cache_hit_rate": ({}, ["cache_hit_miss", "rank_1", "ranks"]),
    "guards_per_compile": ({}, ["comp_metrics", "cache_hit_miss", "rank_1", "ranks"]),
    "unknown_envelope_kinds": ({}, ["rank_1", "ranks"]),
    "compile_envelopes": ({"compile_id": "[4/0]", "rank": ""}, ["rank_1", "ranks"]),
    "rank_compile_ids": ({}, ["rank_1", "ranks"]),
    "rank_cache_outcomes": ({}, ["cache_hit_miss", "rank_1", "ranks"]),
    "rank_collectives": ({}, ["rank_1", "ranks"]),
}


@pytest.fixture(scope="module")
def served_dir(corpus, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("served")
    parts = tmp_path_factory.mktemp("rank_databases")
    for name, logs in SOURCES.items():
        if len(logs) == 1:
            build_database([corpus / logs[0]], folder / f"{name}.db")
            continue
        for rank, log in enumerate(logs):
            build_database([corpus / log], parts / f"{name}_{rank}.db")
        combine([(r, parts / f"{name}_{r}.db") for r in range(len(logs))], folder / f"{name}.db")
    return folder


@pytest_asyncio.fixture
async def ds(served_dir):
    datasette = make_datasette(plan_serve([served_dir]))
    yield datasette
    for database in datasette.databases.values():
        database.close()


async def _json(ds, path: str):
    response = await ds.client.get(path)
    assert response.status_code == 200, (path, response.text[:500])
    return response.json()


def _relations(path: Path) -> dict[str, int]:
    """Every table and view of a database file, with its row count."""
    conn = sqlite3.connect(path)
    try:
        names = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
        ]
        return {n: conn.execute(f"SELECT count(*) FROM [{n}]").fetchone()[0] for n in names}
    finally:
        conn.close()


@pytest.mark.asyncio
async def test_databases_are_named_and_immutable(ds):
    databases = await _json(ds, "/-/databases.json")
    assert sorted(d["name"] for d in databases) == sorted(SOURCES)
    assert all(not d["is_mutable"] for d in databases)


@pytest.mark.asyncio
async def test_every_table_and_view_page_answers_with_its_rows(ds, served_dir):
    for name in SOURCES:
        for relation, count in _relations(served_dir / f"{name}.db").items():
            page = await ds.client.get(f"/{name}/{relation}")
            assert page.status_code == 200, (name, relation, page.text[:300])
            data = await _json(ds, f"/{name}/{relation}.json?_shape=array&_size=5")
            assert (len(data) > 0) == (count > 0), (name, relation)


@pytest.mark.asyncio
async def test_every_canned_query_answers_with_rows_where_the_corpus_has_data(ds):
    shipped = yaml.safe_load(metadata_file().read_text(encoding="utf-8"))
    assert set(shipped["databases"][TEMPLATE_DATABASE]["queries"]) == set(QUERIES)
    for query, (params, with_rows) in QUERIES.items():
        args = "".join(f"&{k}={v}" for k, v in params.items())
        for name in SOURCES:
            page = await ds.client.get(f"/{name}/{query}?{args.lstrip('&')}")
            assert page.status_code == 200, (name, query, page.text[:300])
            rows = await _json(ds, f"/{name}/{query}.json?_shape=array{args}")
            if name in with_rows:
                assert rows, f"{query} has no rows on {name}"


@pytest.mark.asyncio
async def test_queries_answer_the_questions(ds):
    breaks = await _json(ds, "/rank_1/distinct_graph_breaks.json?_shape=array")
    assert len(breaks) == 3
    assert breaks[0]["first_location"].endswith("torch/nn/parallel/distributed.py:1757")
    recompiles = await _json(ds, "/rank_1/recompiles_by_frame.json?_shape=array")
    assert [(r["frame_id"], r["compiles"]) for r in recompiles] == [(5, 3)]
    assert "step == 0" in recompiles[0]["reasons"]
    failures = await _json(ds, "/comp_failure/failures_and_restarts.json?_shape=array")
    assert failures[0]["fail_type"] == "BackendCompilerFailed"
    hits = await _json(ds, "/rank_1/cache_hit_rate.json?_shape=array")
    assert {(r["cache"], r["hits"], r["lookups"]) for r in hits} == {
        ("aotautograd", 1, 6),
        ("fx_graph", 1, 9),
    }
    phases = await _json(ds, "/rank_1/compile_phases.json?_shape=array&compile_id=[4/0]&rank=")
    assert {"dynamo", "backend_compile", "inductor_compile"} <= {p["name"] for p in phases}
    assert max(p["percent"] for p in phases) == 100.0
    ranks = await _json(ds, "/ranks/rank_compile_ids.json?_shape=array")
    divergent = {r["compile_id"]: r["missing_on"] for r in ranks if not r["same_on_all_ranks"]}
    assert divergent == {"[5/1]": "0", "[5/2]": "0"}
    slow = await _json(ds, "/ranks/slowest_compiles.json?_shape=array&rank=0")
    assert slow[0]["compile_id"] == "[4/0]" and {r["rank"] for r in slow} == {0}


def test_compiles_view_agrees_with_the_report_manifest(served_dir):
    """The compiles view's status and cache status are the ones the report shows."""
    import sqlite_utils

    for name in (n for n, logs in SOURCES.items() if len(logs) == 1):
        db = sqlite_utils.Database(sqlite3.connect(served_dir / f"{name}.db"))
        for (log_id,) in db.conn.execute("SELECT id FROM logs").fetchall():
            manifest = {
                c.key: (c.status, c.cache_status) for c in build_manifest(db, log_id).compiles
            }
            view = {
                key: (status, cache)
                for key, status, cache in db.conn.execute(
                    "SELECT compile_id, status, cache_status FROM compiles WHERE log_id = ?",
                    [log_id],
                )
            }
            assert view == manifest, name
        db.conn.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "sql",
    [
        "delete from meta",
        "update meta set value = 'x'",
        "insert into meta values ('a', 'b')",
        "drop table meta",
        "attach database 'x.db' as x",
        "pragma writable_schema = 1",
        "select 1; delete from meta",
    ],
)
async def test_write_sql_is_refused(ds, served_dir, sql):
    response = await ds.client.get(f"/rank_1.json?sql={sql}")
    assert response.status_code == 400
    assert _relations(served_dir / "rank_1.db")["meta"] == 3


@pytest.fixture(scope="module")
def report_dir(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "out"
    run_report(ReportRequest(source=corpus / INPUTS / "comp_metrics.log", out_dir=out))
    return out


@pytest.mark.asyncio
async def test_report_folder_is_mounted_beside_its_database(report_dir):
    ds = make_datasette(plan_serve([report_dir]))
    index = await ds.client.get("/report/")
    assert index.status_code == 200 and "tldb-datasette" in index.text
    assert (await ds.client.get("/report")).status_code == 302
    assert (await ds.client.get("/report/compile_directory.json")).json()
    for outside in ("/report/%2e%2e/%2e%2e/etc/passwd", "/report/..%2f..%2fetc%2fpasswd"):
        assert (await ds.client.get(outside)).status_code == 404
    folder = next(p.name for p in report_dir.iterdir() if p.is_dir())
    assert (await ds.client.get(f"/report/{folder}")).status_code == 302
    marker = await _json(ds, "/-/tldb.json")
    assert marker["reports"] == [{"url": "/report/", "databases": ["trace"]}]
    assert marker["databases"]["trace"]["sql"].startswith("/trace?sql=select+")
    assert (await ds.client.get(marker["databases"]["trace"]["sql"])).status_code == 200


def test_multi_rank_folder_names_databases_after_their_folders(report_dir, tmp_path):
    out = tmp_path / "out"
    for rank in (0, 1):
        shutil.copytree(report_dir, out / f"rank_{rank}")
    shutil.copy(report_dir / "trace.db", out / "combined.db")
    (out / "index.html").write_text("<html>ranks</html>")
    (out / ".trace.db.tmp-1").write_bytes(b"")  # a load in progress is not served
    plan = plan_serve([out])
    assert [(d.name, d.report_url) for d in plan.databases] == [
        ("combined", "/report/"),
        ("rank_0", "/report/rank_0/"),
        ("rank_1", "/report/rank_1/"),
    ]
    assert plan.mounts == {"report": out.resolve()}


def test_database_files_and_several_folders(report_dir, tmp_path):
    """A database file named directly brings its report folder; each folder gets a mount."""
    plan = plan_serve([report_dir / "trace.db"])
    assert [(d.name, d.report_url) for d in plan.databases] == [("trace", "/report/")]
    other = tmp_path / "other"
    shutil.copytree(report_dir, other)
    plan = plan_serve([report_dir, other])
    assert [(d.name, d.report_url) for d in plan.databases] == [
        ("trace", "/report/"),
        ("trace_2", "/report_2/"),
    ]
    assert plan.mounts == {"report": report_dir.resolve(), "report_2": other.resolve()}


@pytest.mark.asyncio
async def test_multi_rank_report_serves_every_rank_beside_its_database(corpus, tmp_path):
    """`tldb report DIR --all-ranks-html -o OUT`, then `tldb serve OUT`: OUT/ranks.db beside
    the landing page, each OUT/rank_N/trace.db beside its rank's report."""
    out = tmp_path / "out"
    logs = corpus / INPUTS / "multi_rank_schedule"
    result = run_tldb("report", str(logs), "--all-ranks-html", "-o", str(out), "--no-browser")
    assert result.returncode == 0, result.stderr
    plan = plan_serve([out])
    assert [(d.name, d.report_url) for d in plan.databases] == [
        ("ranks", "/report/"),
        ("rank_0", "/report/rank_0/"),
        ("rank_1", "/report/rank_1/"),
        ("rank_2", "/report/rank_2/"),
    ]
    ds = make_datasette(plan)
    assert (await ds.client.get("/report/")).status_code == 200
    rank_page = await ds.client.get("/report/rank_1/")
    assert rank_page.status_code == 200 and "tldb-datasette" in rank_page.text
    schedules = await _json(ds, "/ranks/rank_collectives.json?_shape=array")
    assert [r["compile_id"] for r in schedules if not r["same_on_all_ranks"]] == ["[0/0]"]
    assert (await _json(ds, "/rank_1/slowest_compiles.json?_shape=array&rank="))[0]["rank"] == 1


def test_report_index_shows_no_datasette_text_as_plain_files(report_dir):
    """Opened from disk the section is empty and hidden: its links come only from the server."""

    class Text(HTMLParser):
        def __init__(self):
            super().__init__()
            self.skip, self.text = 0, []

        def handle_starttag(self, tag, attrs):
            self.skip += tag == "script"

        def handle_endtag(self, tag):
            self.skip -= tag == "script"

        def handle_data(self, data):
            if not self.skip:
                self.text.append(data)

    parser = Text()
    page = (report_dir / "index.html").read_text()
    parser.feed(page)
    assert '<div id="tldb-datasette" hidden></div>' in page
    assert "Datasette" not in "".join(parser.text)


def test_settings_are_typed_like_datasettes():
    assert parse_settings([("sql_time_limit_ms", "20000"), ("suggest_facets", "on")]) == {
        "sql_time_limit_ms": 20000,
        "suggest_facets": True,
    }
    with pytest.raises(Exception, match="unknown Datasette setting"):
        parse_settings([("nope", "1")])


def test_serve_help_explains_the_sql_page():
    result = run_tldb("serve", "--help")
    assert result.returncode == 0
    assert "?sql=" in result.stdout and "SQL box" in result.stdout


def test_serve_refuses_what_is_not_a_database(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_tldb("serve", str(tmp_path / "empty"))
    assert result.returncode == 1
    assert (
        result.stderr.strip() == f"Error: no tldb database (*.db) found under {tmp_path / 'empty'}"
    )
