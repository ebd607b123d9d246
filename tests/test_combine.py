"""`tldb combine`: per-rank databases into one, with a `rank` column in every table."""

from __future__ import annotations

import re
import sqlite3
import subprocess
from pathlib import Path

import pytest
from conftest import LogWriter, data_path, run_tldb
from torch213_log import envelopes

from tldb import db as dbmod
from tldb.combine import AGGREGATE_VIEWS, MATERIALIZED_VIEWS, VIEW_INPUTS
from tldb.loader import build_database

#: Four gloo ranks of one torch 2.13 job (tests/data/torch213): the last compiles one more graph.
RANK_LOG = "ranks4/dedicated_log_torch_trace_rank_{}"


def _tables(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]


def _count(path: Path, table: str, where: str = "", args: tuple = ()) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute(f'SELECT count(*) FROM "{table}" {where}', args).fetchone()[0]


def rank_log(rank: int) -> Path:
    return data_path(f"torch213/{RANK_LOG.format(rank)}.log")


@pytest.fixture(scope="module")
def rank_dbs(tmp_path_factory) -> dict[int, Path]:
    """The four ranks, each in its own database (rank from the file name)."""
    base = tmp_path_factory.mktemp("ranks")
    dbs = {}
    for rank in range(4):
        dbs[rank] = base / f"r{rank}.db"
        build_database([rank_log(rank)], dbs[rank])
    return dbs


@pytest.fixture(scope="module")
def combined(rank_dbs, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("combined") / "all.db"
    result = run_tldb("combine", *map(str, rank_dbs.values()), "-o", str(target))
    assert result.returncode == 0, result.stderr
    assert "rank(s) 0, 1, 2, 3" in result.stderr
    return target


def test_every_table_has_a_rank_column_and_the_rank_dbs_rows(rank_dbs, combined):
    # A load with serving tables holds MATERIALIZED_VIEWS as tables; combine derives them.
    # VIEW_INPUTS only feed views the combined database holds as tables: not copied.
    tables = [
        t for t in _tables(rank_dbs[0]) if t not in MATERIALIZED_VIEWS and t not in VIEW_INPUTS
    ]
    # Plus the views canned queries need fast, held as tables (MATERIALIZED_VIEWS).
    assert set(_tables(combined)) == set(tables) | set(MATERIALIZED_VIEWS)
    for table in tables:
        with sqlite3.connect(combined) as conn:
            columns = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]
        assert columns[0] == "rank", table
        for rank, path in rank_dbs.items():
            own = _count(path, table)
            # meta: one more row per rank, saying where that rank's database is
            own += table == "meta"
            assert _count(combined, table, "WHERE rank = ?", (rank,)) == own, (table, rank)
    # The combined database's own facts (meta rows with rank NULL) make it a tldb database.
    assert _count(combined, "meta", "WHERE rank IS NULL AND key = 'load_complete'") == 1
    with sqlite3.connect(combined) as conn:
        where = dict(conn.execute("SELECT rank, value FROM meta WHERE key = 'rank_database'"))
    folder = combined.parent
    assert {r: (folder / v).resolve() for r, v in where.items()} == {
        r: p.resolve() for r, p in rank_dbs.items()
    }


#: Payloads whose text the combined database keeps: those cross-rank questions read from the
#: combined tables (output code, collective schedules, runtime estimates and tensor metadata,
#: execution orders, graph break and recompile reasons). Chromium events and guards are read
#: in the rank databases (their views are computed there, rank by rank).
CROSS_RANK = (
    "inductor_output_code",
    "inductor_collective_schedule",
    "inductor_runtime_and_tensor_meta",
    "graph_execution",
    "dynamo_graph_break_reason",
    "recompile_reasons",
)


def cross_rank_md5s(rank: int) -> set[str]:
    """md5s of the rank log's payloads the cross-rank analyses read, read from the log."""
    md5s = set()
    for kind, meta, payload in envelopes(RANK_LOG.format(rank)):
        name = meta["artifact"]["name"] if kind == "artifact" else kind
        if payload is not None and name.startswith(CROSS_RANK):
            md5s.add(meta["has_payload"])
    return md5s


def test_payload_texts_only_where_cross_rank_analyses_read_them(rank_dbs, combined):
    """The other texts stay in the rank databases only: every payload row is there, with its
    md5 and size, and the texts kept are the rank database's."""
    with sqlite3.connect(combined) as conn:
        for rank, path in rank_dbs.items():
            kept = dict(
                conn.execute(
                    "SELECT md5, text FROM payloads WHERE rank = ? AND text IS NOT NULL", (rank,)
                )
            )
            assert set(kept) == cross_rank_md5s(rank) and kept, rank
            with sqlite3.connect(path) as own:
                texts = dict(own.execute("SELECT md5, text FROM payloads"))
            assert {md5: texts[md5] for md5 in kept} == kept


def tlparse_ok(oracle, log: Path, out: Path) -> int:
    """tlparse's `ok` count of one log (its Stats line)."""
    reference = subprocess.run(
        [*oracle, str(log), "-o", str(out), "--no-browser"], capture_output=True, text=True
    )
    found = re.search(r"Stats \{ ok: (\d+)", reference.stderr)
    assert found is not None, reference.stderr
    return int(found.group(1))


def test_group_by_rank(combined, oracle, tmp_path):
    with sqlite3.connect(combined) as conn:
        rows = conn.execute(
            "SELECT rank, count(*) FROM envelopes WHERE status = 'ok' GROUP BY rank ORDER BY rank"
        ).fetchall()
        # The tlparse `ok` counts of each rank log (the last rank's is larger: one more graph).
        expected = [(r, tlparse_ok(oracle, rank_log(r), tmp_path / str(r))) for r in range(4)]
        assert rows == expected
        assert expected[3][1] > expected[0][1]
        # The envelope's own rank key is kept, renamed beside the new column.
        columns = [r[1] for r in conn.execute("PRAGMA table_info(envelopes)")]
        assert columns[0] == "rank" and "envelope_rank" in columns


def test_ids_are_remapped_consistently(combined):
    with sqlite3.connect(combined) as conn:
        for sql in (
            # every reference lands on a row of the same rank
            "SELECT count(*) FROM envelopes e JOIN payloads p ON p.id = e.payload_id "
            "WHERE p.rank <> e.rank",
            "SELECT count(*) FROM envelopes e JOIN logs l ON l.id = e.log_id WHERE l.rank <> e.rank",
            "SELECT count(*) FROM outputs o JOIN envelopes e ON e.id = o.envelope_id "
            "WHERE e.rank <> o.rank",
            "SELECT count(*) FROM strings s JOIN logs l ON l.id = s.log_id WHERE l.rank <> s.rank",
            # and no reference is left dangling
            "SELECT count(*) FROM envelopes WHERE payload_id IS NOT NULL "
            "AND payload_id NOT IN (SELECT id FROM payloads)",
            "SELECT count(*) FROM outputs WHERE envelope_id NOT IN (SELECT id FROM envelopes)",
        ):
            assert conn.execute(sql).fetchone()[0] == 0, sql
        # The same payload text in two ranks is two rows, one per rank.
        dupes = conn.execute(
            "SELECT count(*) FROM (SELECT md5 FROM payloads GROUP BY md5 HAVING count(*) > 1)"
        ).fetchone()[0]
        assert dupes > 0


#: The views cross-rank canned queries read on the combined database.
CROSS_RANK_VIEWS = (*(v for v in MATERIALIZED_VIEWS if v not in AGGREGATE_VIEWS), "failures")
#: Columns holding ids, which the combined database shifts (compared by what they point at).
ID_COLUMNS = {"envelope_id": "envelopes", "log_id": "logs"}


def _view_rows(conn: sqlite3.Connection, view: str, where: str = "", args: tuple = ()) -> list:
    """The view's rows as sorted tuples, each id column replaced by the line (envelopes) or
    path (logs) of the row it points to, so two databases with other ids compare equal, and
    without the rank (selected by `where` on the combined side)."""
    columns = [r[1] for r in conn.execute(f"PRAGMA table_info({view})")]
    picked = []
    for column in columns:
        if column == "rank":
            continue  # the combined database's own rank (the rank database may have none)
        if column == "envelope_id":
            picked.append("(SELECT line FROM envelopes WHERE id = v.envelope_id)")
        elif column == "log_id":
            picked.append("(SELECT path FROM logs WHERE id = v.log_id)")
        else:
            picked.append(f'v."{column}"')
    sql = f"SELECT {', '.join(picked)} FROM {view} v {where}"
    return sorted(conn.execute(sql, args).fetchall(), key=repr)


#: Single-rank fixtures combined as ranks 0-2: together they have graph breaks, recompiles,
#: a failure, cache hits and misses, guards and chromium spans (the rank fixtures have no
#: graph break or recompile).
MIXED = ("torch213/dynamo.log", "torch213/cache_1.log", "torch213/cache_2.log")


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> tuple[dict[int, Path], Path]:
    base = tmp_path_factory.mktemp("mixed")
    dbs = {}
    for rank, name in enumerate(MIXED):
        (base / f"rank_{rank}").mkdir()
        dbs[rank] = base / f"rank_{rank}" / "trace.db"
        # Loaded for serving: the analysis views are tables there, copied rank by rank.
        build_database([data_path(name)], dbs[rank], serving_tables=True)
    target = base / "ranks.db"
    result = run_tldb("combine", *map(str, dbs.values()), "-o", str(target))
    assert result.returncode == 0, result.stderr
    return dbs, target


@pytest.mark.parametrize("which", ["ranks4", "mixed"])
def test_cross_rank_views_hold_each_ranks_own_rows(which, request):
    """Every view a cross-rank question reads gives, for each rank, exactly the rows that view
    gives in the rank's own database: nothing lost to the texts the combined database leaves
    out (graph break reasons, recompile reasons, cache keys once came out NULL), ids shifted
    onto the right rows."""
    if which == "ranks4":
        rank_dbs, combined = (
            request.getfixturevalue("rank_dbs"),
            request.getfixturevalue("combined"),
        )
    else:
        rank_dbs, combined = request.getfixturevalue("mixed")
    with sqlite3.connect(combined) as conn:
        for rank, path in rank_dbs.items():
            with sqlite3.connect(path) as own:
                for view in CROSS_RANK_VIEWS:
                    expected = _view_rows(own, view)
                    got = _view_rows(conn, view, "WHERE v.rank = ?", (rank,))
                    assert got == expected, (rank, view)
        assert _count(combined, "chromium_spans") > 0 and _count(combined, "guards") > 0
        if which == "mixed":
            for view, column in (
                ("graph_breaks", "reason"),
                ("recompiles", "reason"),
                ("cache_events", "key"),
                ("failures", "reason"),
            ):
                assert _count(combined, view, f"WHERE {column} IS NOT NULL") > 0, view
        # The raw chromium events stay in the rank databases only (no silently empty view).
        assert not conn.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'chromium_events'"
        ).fetchall()
        assert _count(rank_dbs[0], "chromium_events") > 0


def test_views_work_on_the_combined_database(combined):
    db = dbmod.open_readonly(combined)
    try:
        rows = db.conn.execute(
            "SELECT rank, count(*) FROM records GROUP BY rank ORDER BY rank"
        ).fetchall()
    finally:
        db.conn.close()
    assert [r[0] for r in rows] == [0, 1, 2, 3]


def _small_db(path: Path, rank: int | None, frames: int = 2) -> Path:
    writer = LogWriter()
    for frame in range(frames):
        meta = {"dynamo_start": {}, "frame_id": frame, "frame_compile_id": 0, "attempt": 0}
        if rank is not None:
            meta["rank"] = rank
        writer.add(meta)
        writer.add({"dynamo_output_graph": {}, "frame_id": frame, "frame_compile_id": 0}, "graph")
    path.parent.mkdir(parents=True, exist_ok=True)
    log = writer.write(path.with_suffix(".log"))
    build_database([log], path)
    return path


def test_more_than_ten_ranks(tmp_path):
    dbs = [
        _small_db(tmp_path / f"rank_{r}" / "trace.db", rank=None, frames=r + 1) for r in range(12)
    ]
    target = tmp_path / "all.db"
    result = run_tldb("combine", *map(str, dbs), "-o", str(target))
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(target) as conn:
        counts = dict(conn.execute("SELECT rank, count(*) FROM envelopes GROUP BY rank"))
        assert counts == {r: 2 * (r + 1) for r in range(12)}
        assert conn.execute("SELECT count(DISTINCT id) FROM envelopes").fetchone()[0] == sum(
            counts.values()
        )
        # sqlite's attach limit never applies: nothing stays attached
        assert [r[1] for r in conn.execute("PRAGMA database_list")] == ["main"]


def test_rank_from_envelopes_and_errors(tmp_path):
    ranked = _small_db(tmp_path / "a" / "x.db", rank=7)
    unranked = _small_db(tmp_path / "b" / "y.db", rank=None)
    target = tmp_path / "all.db"
    ok = run_tldb("combine", str(ranked), "-o", str(target))
    assert ok.returncode == 0, ok.stderr
    with sqlite3.connect(target) as conn:
        assert {r[0] for r in conn.execute("SELECT rank FROM envelopes")} == {7}
    unknown = run_tldb("combine", str(unranked), "-o", str(target))
    assert unknown.returncode == 1
    assert "cannot tell the rank of" in unknown.stderr
    twice = run_tldb("combine", str(ranked), str(ranked), "-o", str(target))
    assert twice.returncode == 1
    assert "several databases for rank(s) 7" in twice.stderr
    not_db = tmp_path / "not.db"
    not_db.write_text("hello")
    bad = run_tldb("combine", str(not_db), "-o", str(target))
    assert bad.returncode == 1 and bad.stderr.startswith("Error:")


def test_derived_tables_hold_their_views_rows_over_all_ranks_in_order(mixed):
    """compiles and recompiles, computed rank by rank over each rank's rows (combine's
    _derive_rank), hold exactly the rows, in the same order, that their shipped views give
    over every rank's combined rows at once."""
    from tldb.combine import DERIVED_VIEWS, shipped_views

    _, combined = mixed
    conn = sqlite3.connect(combined)
    try:
        for name in DERIVED_VIEWS:
            whole = shipped_views()[name].replace(
                f"CREATE VIEW {name} AS", f"CREATE TEMP VIEW all_{name} AS", 1
            )
            conn.execute(whole)
            rows = conn.execute(f"SELECT * FROM main.{name}").fetchall()
            assert rows, name
            assert rows == conn.execute(f"SELECT * FROM temp.all_{name}").fetchall(), name
            ranks = {r for (r,) in conn.execute(f"SELECT DISTINCT rank FROM main.{name}")}
            assert len(ranks) >= 2, name  # rows of several ranks
    finally:
        conn.close()
