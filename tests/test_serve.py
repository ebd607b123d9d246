"""`tldb serve`: Datasette over tldb databases answers every table, view and canned query.

Databases are built once per module from the torch 2.13 logs of tests/data (one database per
log, and the `tldb combine` of a four-rank job) and served through the same code path as
`tldb serve` (plan_serve + make_datasette), using Datasette's in-process test client. Expected
answers are read from the logs with plain json (tests/torch213_log.py).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
import pytest_asyncio
import yaml
from conftest import data_path, run_tldb
from torch213_log import envelopes, label

from tldb.combine import combine
from tldb.directory import build_manifest
from tldb.loader import build_database
from tldb.report import ReportRequest, run_report
from tldb.resources import metadata_file
from tldb.serve import TEMPLATE_DATABASE, make_datasette, parse_settings, plan_serve

#: The four-rank gloo job (tests/data/torch213/ranks4): rank 3 compiles a second graph and its
#: compiled step also broadcasts, so compile ids and collective schedules differ across ranks.
RANK = "ranks4/dedicated_log_torch_trace_rank_{}"

#: Databases served in these tests: name -> torch 2.13 logs (several logs: the `tldb combine`
#: of one database per log).
SOURCES = {
    "dynamo": ["dynamo"],  # graph break, recompile, failure; aot_eager (no Inductor caches)
    "cache": ["cache_1"],  # Inductor cache misses, a recompile on a size change
    "shapes": ["shapes"],  # dynamic shapes, a dumped guards list
    "rank_3": [RANK.format(3)],
    "ranks": [RANK.format(rank) for rank in range(4)],
}

#: Sample parameters of every canned query, and the databases whose logs have what it lists
#: (it answers with no rows on the others).
QUERIES = {
    "distinct_graph_breaks": ({}, ["dynamo"]),
    "recompiles_by_frame": ({}, ["dynamo", "cache"]),
    "failures_and_restarts": ({}, ["dynamo"]),
    "slowest_compiles": ({"rank": ""}, list(SOURCES)),
    "compile_phases": ({"compile_id": "0/0", "rank": ""}, ["dynamo", "cache", "shapes", "rank_3"]),
    "phase_totals": ({}, ["dynamo", "cache", "shapes", "rank_3"]),
    "cache_hit_rate": ({}, ["cache", "rank_3", "ranks"]),
    "guards_per_compile": ({}, list(SOURCES)),
    # tlparse does not know create_symbol (the dynamic-shape logs)
    "unknown_envelope_kinds": ({}, ["cache", "shapes"]),
    "compile_envelopes": ({"compile_id": "[0/0]", "rank": ""}, list(SOURCES)),
    # the rank queries need ranks: from the file names of the rank logs
    "rank_compile_ids": ({}, ["rank_3", "ranks"]),
    "rank_cache_outcomes": ({}, ["cache", "rank_3", "ranks"]),
    "rank_collectives": ({}, ["rank_3", "ranks"]),
    # vLLM's queries: no vLLM in these logs (tests/test_vllm.py serves a vLLM log's database)
    "vllm_subgraphs_per_range": ({}, []),
    "vllm_pass_diffs_per_subgraph": ({}, []),
}
#: (query, database) pairs checked on their own (test_phase_queries_answer_on_a_combined_database):
#: a combined database keeps the chromium event texts its phase queries read.
COMBINED_PHASES = {("compile_phases", "ranks"), ("phase_totals", "ranks")}


def log_path(name: str) -> Path:
    return data_path(f"torch213/{name}.log")


@pytest.fixture(scope="module")
def served_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("served")
    parts = tmp_path_factory.mktemp("rank_databases")
    for name, logs in SOURCES.items():
        if len(logs) == 1:
            build_database([log_path(logs[0])], folder / f"{name}.db")
            continue
        for rank, log in enumerate(logs):
            build_database([log_path(log)], parts / f"{name}_{rank}.db")
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
async def test_every_canned_query_answers_with_rows_where_the_log_has_data(ds):
    shipped = yaml.safe_load(metadata_file().read_text(encoding="utf-8"))
    assert set(shipped["databases"][TEMPLATE_DATABASE]["queries"]) == set(QUERIES)
    for query, (params, with_rows) in QUERIES.items():
        args = "".join(f"&{k}={v}" for k, v in params.items())
        for name in SOURCES:
            page = await ds.client.get(f"/{name}/{query}?{args.lstrip('&')}")
            assert page.status_code == 200, (name, query, page.text[:300])
            rows = await _json(ds, f"/{name}/{query}.json?_shape=array{args}")
            if (query, name) not in COMBINED_PHASES:
                assert bool(rows) == (name in with_rows), (query, name, rows[:1])


@pytest.mark.asyncio
async def test_phase_queries_answer_on_a_combined_database(ds):
    for query, (params, _) in QUERIES.items():
        if (query, "ranks") in COMBINED_PHASES:
            args = "".join(f"&{k}={v}" for k, v in params.items())
            assert await _json(ds, f"/ranks/{query}.json?_shape=array{args}"), query


def _metrics(name: str) -> list[tuple[str, dict]]:
    """(compile id label, compilation_metrics fields) of each metrics envelope of a log."""
    return [
        (label(meta), meta["compilation_metrics"])
        for kind, meta, _ in envelopes(name)
        if kind == "compilation_metrics"
    ]


def _artifacts(name: str, artifact: str) -> list[tuple[dict, str]]:
    return [
        (meta, payload)
        for kind, meta, payload in envelopes(name)
        if kind == "artifact" and meta["artifact"]["name"] == artifact
    ]


@pytest.mark.asyncio
async def test_queries_answer_the_questions(ds):
    # The graph break: its reason and the user line, as the log's break artifact says.
    (_, text), *more = _artifacts("dynamo", "dynamo_graph_break_reason")
    assert not more
    where = text.split("\n")[0].removeprefix("Graph break in user code at ")
    breaks = await _json(ds, "/dynamo/distinct_graph_breaks.json?_shape=array")
    assert [(b["first_location"], b["occurrences"]) for b in breaks] == [(where, 1)]
    assert "torch._dynamo.graph_break()" in breaks[0]["reason"]
    # The recompiled frame: every frame with two compile ids, with the recompile reasons.
    frames = Counter(
        meta["frame_id"] for kind, meta, _ in envelopes("dynamo") if kind == "dynamo_start"
    )
    recompiles = await _json(ds, "/dynamo/recompiles_by_frame.json?_shape=array")
    assert [(r["frame_id"], r["compiles"]) for r in recompiles] == [
        (frame, n) for frame, n in frames.items() if n > 1
    ]
    for _, payload in _artifacts("dynamo", "recompile_reasons"):
        try:  # a JSON list, or the reason itself when there is one
            reasons = json.loads(payload)
        except ValueError:
            reasons = [payload]
        assert all(reason in recompiles[0]["reasons"] for reason in reasons)
    # Failures and restarts: the metrics' fail types and restart reasons.
    failures = await _json(ds, "/dynamo/failures_and_restarts.json?_shape=array")
    metrics = _metrics("dynamo")
    assert [f["fail_type"] for f in failures if f["failure"] == "failure"] == [
        m["fail_type"] for _, m in metrics if m.get("fail_type")
    ]
    assert [f["compile_id"] for f in failures if f["failure"] == "restart"] == [
        cid for cid, m in metrics for _ in m.get("restart_reasons") or []
    ]
    # Cache lookups: the cache artifacts of the log (the first run misses every lookup).
    outcomes = Counter()
    for kind, meta, _ in envelopes("cache_1"):
        name = meta["artifact"]["name"] if kind == "artifact" else ""
        for cache in ("fx_graph", "aotautograd"):
            for outcome in ("hit", "miss", "bypass"):
                outcomes[cache, outcome] += name == f"{cache}_cache_{outcome}"
    hits = await _json(ds, "/cache/cache_hit_rate.json?_shape=array")
    assert {(r["cache"], r["hits"], r["misses"], r["lookups"]) for r in hits} == {
        (
            c,
            outcomes[c, "hit"],
            outcomes[c, "miss"],
            sum(outcomes[c, o] for o in ("hit", "miss", "bypass")),
        )
        for c in ("fx_graph", "aotautograd")
    }
    assert outcomes["fx_graph", "miss"] > 0
    # The phases of one compile: the chromium events logged for it, the longest at 100%.
    spans = set()
    for kind, _, payload in envelopes(RANK.format(3)):
        event = json.loads(payload) if kind == "chromium_event" else {}
        if event.get("ph") in ("B", "X") and (event.get("args") or {}).get("compile_id") == "0/0":
            spans.add(event["name"])
    phases = await _json(ds, "/rank_3/compile_phases.json?_shape=array&compile_id=[0/0]&rank=")
    assert {p["name"] for p in phases} == spans
    assert max(p["percent"] for p in phases) == 100.0
    # Across ranks: the compile ids not on every rank, and where they are missing.
    starts = {
        rank: {label(m) for k, m, _ in envelopes(RANK.format(rank)) if k == "dynamo_start"}
        for rank in range(4)
    }
    common = set.intersection(*starts.values())
    expected = {
        cid: ",".join(str(r) for r in range(4) if cid not in starts[r])
        for cid in set.union(*starts.values()) - common
    }
    assert expected
    ranks = await _json(ds, "/ranks/rank_compile_ids.json?_shape=array")
    divergent = {r["compile_id"]: r["missing_on"] for r in ranks if not r["same_on_all_ranks"]}
    assert divergent == expected
    # The slowest compiles of one rank: its metrics, longest first.
    slow = await _json(ds, "/ranks/slowest_compiles.json?_shape=array&rank=3")
    longest = max(_metrics(RANK.format(3)), key=lambda item: item[1]["duration_us"])[0]
    assert slow[0]["compile_id"] == longest and {r["rank"] for r in slow} == {3}


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
    before = _relations(served_dir / "rank_3.db")
    response = await ds.client.get(f"/rank_3.json?sql={sql}")
    assert response.status_code == 400
    assert _relations(served_dir / "rank_3.db") == before
    assert before["meta"] > 0


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "out"
    run_report(ReportRequest(source=log_path("dynamo"), out_dir=out))
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


def _schedules(rank: int) -> dict[str, list[str]]:
    """Collective schedule of each compile of a rank, from its log."""
    return {
        label(meta): json.loads(payload)
        for meta, payload in _artifacts(RANK.format(rank), "inductor_collective_schedule")
    }


@pytest.mark.asyncio
async def test_multi_rank_report_serves_every_rank_beside_its_database(tmp_path):
    """`tldb report DIR --all-ranks-html -o OUT`, then `tldb serve OUT`: OUT/ranks.db beside
    the landing page, each OUT/rank_N/trace.db beside its rank's report."""
    out = tmp_path / "out"
    logs = data_path("torch213/ranks4")
    result = run_tldb("report", str(logs), "--all-ranks-html", "-o", str(out), "--no-browser")
    assert result.returncode == 0, result.stderr
    plan = plan_serve([out])
    assert [(d.name, d.report_url) for d in plan.databases] == [
        ("ranks", "/report/"),
        *((f"rank_{r}", f"/report/rank_{r}/") for r in range(4)),
    ]
    ds = make_datasette(plan)
    assert (await ds.client.get("/report/")).status_code == 200
    rank_page = await ds.client.get("/report/rank_1/")
    assert rank_page.status_code == 200 and "tldb-datasette" in rank_page.text
    # The compile whose schedule is not the same on every rank (rank 3 also broadcasts).
    by_rank = [_schedules(rank) for rank in range(4)]
    differ = sorted(
        cid for cid in by_rank[0] if any(s.get(cid) != by_rank[0][cid] for s in by_rank)
    )
    assert differ
    schedules = await _json(ds, "/ranks/rank_collectives.json?_shape=array")
    assert [r["compile_id"] for r in schedules if not r["same_on_all_ranks"]] == differ
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
